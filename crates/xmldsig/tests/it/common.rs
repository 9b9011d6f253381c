//! Shared test helpers: keys made with the `openssl` CLI (cached under the target dir),
//! the external tools, and sample documents.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use originlink_xmldsig::{Limits, Placement, SigningKey, sign_enveloped};

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A scratch directory for this test under the cargo target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xmldsig-it").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a command and returns its output; panics only if it cannot be started.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A private key and its self-signed certificate, in the forms the tests need.
#[derive(Debug)]
pub struct TestKey {
    pub key_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_der: Vec<u8>,
    pub cert_der: Vec<u8>,
}

impl TestKey {
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_pkcs8(&self.key_der).unwrap()
    }

    pub fn sign(&self, xml: &[u8], placement: Placement) -> Vec<u8> {
        sign_enveloped(xml, &self.signing_key(), std::slice::from_ref(&self.cert_der), placement).unwrap()
    }
}

/// Generates (once per machine, cached in the target dir) a key pair with a self-signed cert.
/// `newkey` is an `openssl req -newkey` argument.
fn make_key(name: &str, newkey: &[&str]) -> TestKey {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xmldsig-keys-v1");
    std::fs::create_dir_all(&base).unwrap();
    let dir = base.join(name);
    if !dir.join("cert.der").exists() {
        // Build in a private directory and rename: concurrent test processes never see half a key.
        let tmp = base.join(format!("{name}.tmp-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let p = |f: &str| tmp.join(f).to_str().unwrap().to_owned();
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(newkey);
        let (key, cert) = (p("key.pem"), p("cert.pem"));
        let subj = format!("/C=KH/O=OriginLink tests/CN=xmldsig {name}");
        args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &cert, "-days", "3650", "-subj", &subj]);
        run_ok("openssl", &args);
        run_ok(
            "openssl",
            &["pkcs8", "-topk8", "-nocrypt", "-in", &key, "-outform", "DER", "-out", &p("key.der")],
        );
        run_ok("openssl", &["x509", "-in", &cert, "-outform", "DER", "-out", &p("cert.der")]);
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process won the race; use its key.
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    TestKey {
        key_pem: dir.join("key.pem"),
        cert_pem: dir.join("cert.pem"),
        key_der: std::fs::read(dir.join("key.der")).unwrap(),
        cert_der: std::fs::read(dir.join("cert.der")).unwrap(),
    }
}

pub fn ec_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("ec-p256", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]))
}

pub fn ec_key_2() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("ec-p256-second", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]))
}

pub fn rsa_key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| make_key("rsa-2048", &["-newkey", "rsa:2048"]))
}

/// The minimal UBL 2.4 certificate of origin from testdata (schema-valid).
pub fn ubl_example() -> Vec<u8> {
    std::fs::read(testdata().join("ubl-2.4/examples/minimal-certificate-of-origin.xml")).unwrap()
}

/// A small generic (non-UBL) document with namespaces, attributes, comments, CDATA and a PI.
pub fn generic_doc() -> Vec<u8> {
    br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- issued by a test -->
<o:Order xmlns:o="urn:example:order" xmlns:unused="urn:unused" Id="order-1">
  <o:Line n="1" o:kind="goods">Tea &amp; coffee <![CDATA[<fragile>]]></o:Line>
  <!-- a comment inside -->
  <Note xmlns="urn:example:note" xml:lang="en">Handle with care</Note>
  <?process me?>
</o:Order>
"#
    .to_vec()
}

/// Verifies with `verify_enveloped`, after checking that its streaming fast path and the DOM
/// path agree on this document (see `stream_diff`).
pub fn verify(xml: &[u8]) -> Result<originlink_xmldsig::Verified, originlink_xmldsig::Error> {
    crate::stream_diff::verify_both(xml, &Limits::default())
}

/// The error code of a verification that must fail.
pub fn verify_err(xml: &[u8]) -> &'static str {
    match verify(xml) {
        Ok(v) => panic!("verification unexpectedly succeeded: {v:?}"),
        Err(e) => e.code(),
    }
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The UBL example grown with notes to about 6 KB once signed (the benchmark's document).
pub fn six_kb_certificate() -> Vec<u8> {
    let mut doc = String::from_utf8(ubl_example()).unwrap();
    let mut notes = String::new();
    let mut n = 0;
    while doc.len() + notes.len() < 4400 {
        n += 1;
        notes.push_str(&format!(
            "\n  <cbc:Note>Goods line {n}: 120 cartons of green tea, HS 0902.10, origin criterion WO.</cbc:Note>"
        ));
    }
    let at = doc.find("</cbc:IssueDate>").unwrap() + "</cbc:IssueDate>".len();
    doc.insert_str(at, &notes);
    doc.into_bytes()
}
