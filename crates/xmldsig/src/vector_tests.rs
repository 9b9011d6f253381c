//! Known-answer tests on the xmlsec test vectors in testdata/xmldsig-vectors that use our
//! algorithms (SHA-256 with ECDSA or RSA). They are enveloping, or use inclusive C14N and an
//! XPath transform, so `verify_enveloped` must refuse them as a whole; here their digests
//! and signature values are checked piece by piece with our canonicalizer and crypto, which
//! proves the raw `r || s` ECDSA handling, RSA-SHA256 and the canonical bytes against an
//! independent signer. (For these documents inclusive and exclusive C14N give the same bytes:
//! one default namespace, declared on the apex's ancestor and used by the apex.)

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use crate::c14n::{ExcC14n, canonicalize_document, canonicalize_subtree};
use crate::keys::{SignatureAlgorithm, certificate_key, verify_with};
use crate::xml::{Limits, id_values, is_ds, parse};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/xmldsig-vectors")
}

fn b64(node: Node) -> Vec<u8> {
    let text: String = node.text().unwrap_or("").chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(text).unwrap()
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
    node.descendants().find(|n| is_ds(*n, name)).unwrap_or_else(|| panic!("no {name}"))
}

/// Checks digest and signature of a vector; `extra_cert` is used when KeyInfo only names the key.
/// `si_inclusive` lists the prefixes that make exclusive C14N of SignedInfo equal the
/// inclusive C14N the vector was signed with.
fn check(
    file: &str,
    alg: SignatureAlgorithm,
    extra_cert: Option<&str>,
    si_inclusive: &[Option<&str>],
    expected_policy_code: &str,
) {
    let xml = std::fs::read(vectors().join(file)).unwrap();
    let doc = parse(&xml, &Limits::default()).unwrap();
    let sig = doc.descendants().find(|n| is_ds(*n, "Signature")).unwrap();
    let signed_info = child(sig, "SignedInfo");
    let reference = child(signed_info, "Reference");
    let uri = reference.attribute("URI").unwrap();

    let mut canonical = Vec::new();
    if uri.is_empty() {
        // Enveloped: the XPath `not(ancestor-or-self::dsig:Signature)` is the enveloped transform.
        let opts = ExcC14n { exclude: Some(sig.id()), ..ExcC14n::default() };
        canonicalize_document(&doc, &opts, &mut canonical).unwrap();
    } else {
        let id = uri.strip_prefix('#').unwrap();
        let apex = doc.descendants().find(|n| id_values(*n).any(|v| v == id)).unwrap();
        canonicalize_subtree(apex, &ExcC14n::default(), &mut canonical).unwrap();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
    assert_eq!(digest.as_ref(), b64(child(reference, "DigestValue")).as_slice(), "{file}: digest");

    let mut si = Vec::new();
    let si_opts = ExcC14n { inclusive_prefixes: si_inclusive.to_vec(), ..ExcC14n::default() };
    canonicalize_subtree(signed_info, &si_opts, &mut si).unwrap();
    let value = b64(child(sig, "SignatureValue"));
    let mut certs: Vec<Vec<u8>> =
        sig.descendants().filter(|n| is_ds(*n, "X509Certificate")).map(b64).collect();
    if let Some(path) = extra_cert {
        certs.push(std::fs::read(vectors().join(path)).unwrap());
    }
    let verified =
        certs.iter().filter_map(|c| certificate_key(c).ok()).any(|k| verify_with(&k, alg, &si, &value));
    assert!(verified, "{file}: signature value does not verify");

    // A signature with one flipped bit of the signed info does not verify: the check can fail.
    si[10] ^= 1;
    let verified =
        certs.iter().filter_map(|c| certificate_key(c).ok()).any(|k| verify_with(&k, alg, &si, &value));
    assert!(!verified, "{file}: tampered signed info verified");

    let err = crate::verify_enveloped(&xml, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), expected_policy_code, "{file}: {err}");
}

#[test]
fn aleksey_enveloping_sha256_ecdsa_sha256() {
    check(
        "aleksey-xmldsig-01/enveloping-sha256-ecdsa-sha256.xml",
        SignatureAlgorithm::EcdsaP256Sha256,
        None,
        &[],
        "SIGNATURE_WRAPPING",
    );
}

#[test]
fn aleksey_enveloping_sha256_rsa_sha256() {
    check(
        "aleksey-xmldsig-01/enveloping-sha256-rsa-sha256.xml",
        SignatureAlgorithm::RsaPkcs1Sha256,
        None,
        &[],
        "SIGNATURE_WRAPPING",
    );
}

#[test]
fn aleksey_enveloped_sha256_ecdsa_sha256() {
    // Inclusive C14N as CanonicalizationMethod: refused by policy, correct cryptographically.
    check(
        "aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256.xml",
        SignatureAlgorithm::EcdsaP256Sha256,
        Some("keys/ec/ec-prime256v1-pubkey.crt"),
        // The XPath element declares `dsig` for its text: inclusive C14N renders it.
        &[None, Some("dsig")],
        "ALGORITHM_NOT_ALLOWED",
    );
}

/// The DER-encoded ECDSA value (not XML-DSig's raw `r || s`) must not verify.
#[test]
fn aleksey_ecdsa_with_asn1_signature_value_is_refused() {
    let file = "aleksey-xmldsig-01/enveloped-sha256-ecdsa-sha256-with-asn1.xml";
    let xml = std::fs::read(vectors().join(file)).unwrap();
    let doc = parse(&xml, &Limits::default()).unwrap();
    let sig = doc.descendants().find(|n| is_ds(*n, "Signature")).unwrap();
    let mut si = Vec::new();
    let si_opts = ExcC14n { inclusive_prefixes: vec![None, Some("dsig")], ..ExcC14n::default() };
    canonicalize_subtree(child(sig, "SignedInfo"), &si_opts, &mut si).unwrap();
    let value = b64(child(sig, "SignatureValue"));
    assert_ne!(value.len(), 64);
    let cert = std::fs::read(vectors().join("keys/ec/ec-prime256v1-pubkey.crt")).unwrap();
    let key = certificate_key(&cert).unwrap();
    assert!(!verify_with(&key, SignatureAlgorithm::EcdsaP256Sha256, &si, &value));
    // Control: the same signature re-encoded as raw `r || s` does verify.
    assert!(verify_with(&key, SignatureAlgorithm::EcdsaP256Sha256, &si, &der_to_raw(&value)));
}

/// ECDSA-Sig-Value DER (`SEQUENCE { INTEGER r, INTEGER s }`, short lengths) to raw `r || s`.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    let mut raw = Vec::new();
    let mut i = 2;
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        raw.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        raw.extend_from_slice(int);
        i += 2 + len;
    }
    raw
}

/// The vectors' P-256 key in SEC1 DER is not PKCS#8: refused with a clear code.
#[test]
fn sec1_key_is_refused() {
    let der = std::fs::read(vectors().join("keys/ec/ec-prime256v1-key.der")).unwrap();
    assert_eq!(crate::SigningKey::from_pkcs8(&der).unwrap_err().code(), "BAD_KEY");
}
