//! Our detached JWS checked by an independent JOSE implementation (Python `jwcrypto`), and
//! the refusals of our own parser.

use std::process::Command;

use base64::Engine as _;
use originlink_trust::jws::{self, DetachedJws, JwsFailure};
use originlink_trust::{Cert, jcs};

use crate::support::{self, authority, rsa_key, tempdir};

/// Runs jwcrypto: verifies `token` over the detached `payload` with the key of `cert_pem`.
/// Prints OK or the failure; returns the output.
fn jwcrypto_verify(name: &str, token: &str, payload: &[u8], cert_pem: &str) -> String {
    let dir = tempdir(name);
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(dir.join("payload"), payload).unwrap();
    std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
    let script = r#"
import sys
from jwcrypto import jwk, jws
d = sys.argv[1]
key = jwk.JWK.from_pem(open(d + '/cert.pem', 'rb').read())
tok = jws.JWS()
tok.deserialize(open(d + '/token').read())
try:
    tok.verify(key, detached_payload=open(d + '/payload', 'rb').read())
    print('OK', tok.jose_header['alg'])
except Exception as e:
    print('FAIL', type(e).__name__, e)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python3 runs (scripts/setup.sh installs jwcrypto)");
    assert!(out.status.success(), "jwcrypto: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn jwcrypto_verifies_our_es256_and_rejects_a_changed_payload() {
    let a = authority("KH");
    let doc = support::json_doc("KH", support::date(2026, 3, 1));
    let payload = jcs::canonicalize(&doc).unwrap();
    let token =
        jws::sign_detached(&payload, &a.signing.key, std::slice::from_ref(&a.signing.cert_der)).unwrap();
    let pem = a.signing.cert_pem();
    assert_eq!(jwcrypto_verify("es256-ok", &token, &payload, &pem).trim(), "OK ES256");
    let mut changed = payload.clone();
    changed[10] ^= 1;
    assert!(jwcrypto_verify("es256-bad", &token, &changed, &pem).starts_with("FAIL"));
}

#[test]
fn jwcrypto_verifies_our_rs256() {
    let key = rsa_key(2048);
    let a = originlink_trust::keys::init_authority(
        "TH",
        "Department of Foreign Trade",
        support::day0(),
        Some(key),
    )
    .unwrap();
    let payload = br#"{"hello":"world"}"#;
    let token =
        jws::sign_detached(payload, &a.signing.key, std::slice::from_ref(&a.signing.cert_der)).unwrap();
    assert_eq!(jwcrypto_verify("rs256-ok", &token, payload, &a.signing.cert_pem()).trim(), "OK RS256");
}

#[test]
fn our_signed_json_verifies_with_jwcrypto_over_the_canonical_form() {
    let a = authority("KH");
    let doc = support::json_doc("KH", support::date(2026, 3, 1));
    let signed = jws::sign_json(&doc, &a.signing.key, std::slice::from_ref(&a.signing.cert_der)).unwrap();
    let split = jws::split_signed_json(&signed).unwrap();
    // What we sign is exactly JCS of the unsigned document.
    assert_eq!(split.canonical, jcs::canonicalize(&doc).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&signed).unwrap();
    let token = v["signature"].as_str().unwrap();
    assert_eq!(
        jwcrypto_verify("signed-json", token, &split.canonical, &a.signing.cert_pem()).trim(),
        "OK ES256"
    );
}

#[test]
fn header_tricks_are_refused() {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let sig = b64("x");
    for (header, want) in [
        (r#"{"alg":"none"}"#, "alg"),
        (r#"{"alg":"HS256"}"#, "alg"),
        (r#"{"alg":"ES256","jwk":{}}"#, "malformed"),
        (r#"{"alg":"ES256","crit":["b64"],"b64":false}"#, "malformed"),
        (r#"{"alg":"ES256","alg":"ES256"}"#, "malformed"),
    ] {
        let got = DetachedJws::parse(&format!("{}..{sig}", b64(header)));
        match (got, want) {
            (Err(JwsFailure::AlgorithmNotAllowed(_)), "alg")
            | (Err(JwsFailure::Malformed(_)), "malformed") => {}
            (other, _) => panic!("{header}: {other:?}"),
        }
    }
    // An attached payload is not our format.
    let a = authority("KH");
    let token = jws::sign_detached(b"{}", &a.signing.key, &[]).unwrap();
    let (h, s) = token.split_once("..").unwrap();
    assert!(matches!(DetachedJws::parse(&format!("{h}.{}.{s}", b64("{}"))), Err(JwsFailure::Malformed(_))));
}

#[test]
fn es256_signature_with_another_key_fails() {
    let a = authority("KH");
    let b = authority("KH");
    let token = jws::sign_detached(b"{}", &a.signing.key, &[]).unwrap();
    let parsed = DetachedJws::parse(&token).unwrap();
    assert!(parsed.verify(b"{}", &Cert::from_der(&a.signing.cert_der).unwrap()).is_ok());
    assert_eq!(
        parsed.verify(b"{}", &Cert::from_der(&b.signing.cert_der).unwrap()),
        Err(JwsFailure::BadSignature)
    );
    assert_eq!(
        parsed.verify(b"{ }", &Cert::from_der(&a.signing.cert_der).unwrap()),
        Err(JwsFailure::BadSignature)
    );
}
