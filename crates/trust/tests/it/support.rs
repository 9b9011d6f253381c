//! Fixtures: authorities, operators, trust lists and sample documents, all at fixed dates.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use originlink_model::{Agreement, CountryCode, sample};
use originlink_trust::keys::{self, AuthorityKeys, Issued};
use originlink_trust::trustlist::{self, Member, TrustList};
use originlink_trust::{PrivateKey, TrustStore, Verifier};

/// The day every fixture's certificates start.
pub fn day0() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

pub fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

pub fn authority(country: &str) -> AuthorityKeys {
    keys::init_authority(country, &format!("Ministry of Commerce {country}"), day0(), None).unwrap()
}

pub fn operator() -> Issued {
    keys::init_operator("OriginLink Network Operator", day0()).unwrap()
}

/// A member entry for `a` with its current signing certificate registered.
pub fn member(country: &str, a: &AuthorityKeys) -> Member {
    Member {
        country: cc(country),
        authorities: vec![format!("Ministry of Commerce {country}")],
        ca_certs: vec![trustlist::encode_cert(&a.ca.cert_der)],
        signing_certs: vec![trustlist::encode_cert(&a.signing.cert_der)],
        nodes: vec![trustlist::Node {
            url: "https://127.0.0.1:8443".into(),
            tls_cert: trustlist::encode_cert(&a.tls.cert_der),
        }],
        agreements: vec!["ATIGA".into(), "RCEP".into()],
        valid_from: None,
        valid_until: None,
        revoked: vec![],
    }
}

/// A list issued on day0 that is due for update 30 days later.
pub fn list(members: Vec<Member>) -> TrustList {
    TrustList {
        format: trustlist::FORMAT.into(),
        sequence: 1,
        issued_at: at(2026, 1, 1),
        next_update: at(2026, 1, 31),
        members,
        gateways: vec![],
    }
}

pub fn verifier(list: &TrustList) -> Verifier {
    Verifier::new(TrustStore::from_list(list).unwrap())
}

/// A sample ATIGA certificate from `from` to TH issued on `issued`, as UBL XML.
pub fn xml_doc(from: &str, issued: NaiveDate) -> Vec<u8> {
    let c = sample::sample(Agreement::parse("ATIGA").unwrap(), cc(from), cc("TH"), issued, 5, 0);
    originlink_formats::xml::write(&c).into_bytes()
}

/// The same as edi3 JSON.
pub fn json_doc(from: &str, issued: NaiveDate) -> Vec<u8> {
    let c = sample::sample(Agreement::parse("ATIGA").unwrap(), cc(from), cc("TH"), issued, 5, 0);
    originlink_formats::json::write(&c).into_bytes()
}

pub fn sign(doc: &[u8], who: &Issued) -> Vec<u8> {
    originlink_trust::sign(doc, &who.key, std::slice::from_ref(&who.cert_der)).unwrap()
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A fresh directory under the target dir.
pub fn tempdir(name: &str) -> PathBuf {
    let d = repo().join("target").join("test-tmp").join(format!(
        "trust-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An RSA key made by `openssl genpkey` (ring cannot generate RSA keys).
pub fn rsa_key(bits: u32) -> PrivateKey {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}")])
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PrivateKey::from_pem(&String::from_utf8(out.stdout).unwrap()).unwrap()
}
