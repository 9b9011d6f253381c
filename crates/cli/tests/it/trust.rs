//! `keys`, `sign`, `verify`, `trust-list`: the signature workflow as a user drives it, with
//! the exit codes that scripts rely on (0 valid, 1 invalid, 2 unreadable/usage, 3 cannot verify).

use std::path::{Path, PathBuf};

use crate::support::{run_text, tempdir};

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run_text(args, b"");
    assert_eq!(code, 0, "originlink {args:?}\nstdout: {out}\nstderr: {err}");
    out
}

/// Two authorities (KH ECDSA, TH ECDSA), an operator, and a trust list of both, in `dir`.
struct Network {
    dir: PathBuf,
}

impl Network {
    fn new(name: &str) -> Network {
        let dir = tempdir(name);
        for (c, a) in [("KH", "Ministry of Commerce"), ("TH", "Department of Foreign Trade")] {
            ok(&[
                "keys",
                "init",
                "--country",
                c,
                "--authority",
                a,
                "--out",
                p(&dir.join(c)),
                "--valid-from",
                "2026-01-01",
            ]);
        }
        ok(&["keys", "operator", "--out", p(&dir.join("op")), "--valid-from", "2026-01-01"]);
        let n = Network { dir };
        n.build_list("tl.json", &[]);
        n
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn build_list(&self, name: &str, extra: &[&str]) {
        let out = self.path(name);
        let (kh, th) = (self.path("KH"), self.path("TH"));
        let (key, cert) = (self.path("op/operator.key"), self.path("op/operator.crt"));
        let mut args = vec![
            "trust-list",
            "build",
            "--member",
            p(&kh),
            "--member",
            p(&th),
            "--operator-key",
            p(&key),
            "--operator-cert",
            p(&cert),
            "--issued-at",
            "2026-01-01T00:00:00Z",
            "--out",
            p(&out),
        ];
        args.extend_from_slice(extra);
        ok(&args);
    }
    /// Signs `doc` as `country`, returns the signed file.
    fn sign(&self, doc: &str, format: &str, country: &str) -> PathBuf {
        let unsigned = self.path(&format!("co-{country}.{format}"));
        std::fs::write(&unsigned, doc).unwrap();
        let signed = self.path(&format!("co-{country}.signed.{format}"));
        ok(&[
            "sign",
            p(&unsigned),
            "--key",
            p(&self.path(&format!("{country}/signing.key"))),
            "--cert",
            p(&self.path(&format!("{country}/signing.crt"))),
            "--out",
            p(&signed),
        ]);
        signed
    }
    fn verify(&self, file: &Path, list: &str, at: &str) -> (i32, String, String) {
        run_text(
            &[
                "verify",
                p(file),
                "--trust-list",
                p(&self.path(list)),
                "--operator",
                p(&self.path("op/operator.crt")),
                "--at",
                at,
            ],
            b"",
        )
    }
}

/// `originlink example` for a certificate from KH issued on 2026-01-10 is not possible (it uses
/// today), so the issue date is rewritten; the writer's output is otherwise untouched.
fn example(format: &str) -> String {
    let out = ok(&["example", "--agreement", "ATIGA", "--format", format, "--items", "5"]);
    let today = chrono::Utc::now().date_naive().to_string();
    assert!(out.contains(&today), "the example carries today's date");
    out.replace(&today, "2026-01-10")
}

const AT: &str = "2026-01-12T12:00:00Z";

#[test]
fn sign_then_verify_xml_and_json() {
    let n = Network::new("cli-sign-verify");
    for format in ["xml", "json"] {
        let signed = n.sign(&example(format), format, "KH");
        let (code, out, err) = n.verify(&signed, "tl.json", AT);
        assert_eq!(code, 0, "{format}: {out}{err}");
        assert!(out.starts_with("VALID issued by KH"), "{out}");
        // With the country CA alone.
        let (code, out, _) =
            run_text(&["verify", p(&signed), "--ca", p(&n.path("KH/ca.crt")), "--at", AT], b"");
        assert_eq!(code, 0, "{out}");
        // From standard input.
        let bytes = std::fs::read(&signed).unwrap();
        let (code, _, _) = run_text(&["verify", "-", "--ca", p(&n.path("KH/ca.crt")), "--at", AT], &bytes);
        assert_eq!(code, 0);
    }
    // Signed XML also verifies with xmlsec1, an implementation we did not write.
    let signed = n.path("co-KH.signed.xml");
    let o = std::process::Command::new("xmlsec1")
        .args(["--verify", "--trusted-pem", p(&n.path("KH/ca.crt")), p(&signed)])
        .output()
        .expect("xmlsec1 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn swapped_certificate_and_wrong_country_are_invalid() {
    let n = Network::new("cli-invalid");
    let signed = n.sign(&example("xml"), "xml", "KH");
    let text = std::fs::read_to_string(&signed).unwrap();
    let b64 = |pem: &str| pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    let kh = b64(&std::fs::read_to_string(n.path("KH/signing.crt")).unwrap());
    let th = b64(&std::fs::read_to_string(n.path("TH/signing.crt")).unwrap());
    assert!(text.contains(&kh));
    let swapped = n.path("swapped.xml");
    std::fs::write(&swapped, text.replace(&kh, &th)).unwrap();
    let (code, out, _) = n.verify(&swapped, "tl.json", AT);
    assert_eq!(
        (code, out.split_whitespace().take(2).collect::<Vec<_>>()),
        (1, vec!["INVALID", "BAD_SIGNATURE"]),
        "{out}"
    );

    // Thailand's key signs a certificate that says Cambodia issued it.
    let forged = n.sign(&example("json"), "json", "TH");
    let (code, out, _) = n.verify(&forged, "tl.json", AT);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID COUNTRY_MISMATCH"), "{out}");
}

#[test]
fn revoked_signing_certificate_is_revoked() {
    let n = Network::new("cli-revoked");
    let signed = n.sign(&example("xml"), "xml", "KH");
    let pem = std::fs::read(n.path("KH/signing.crt")).unwrap();
    let serial = originlink_serial(&pem);
    n.build_list("tl-revoked.json", &["--revoke", &format!("KH:{serial}")]);
    let (code, out, _) = n.verify(&signed, "tl-revoked.json", AT);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("INVALID REVOKED"), "{out}");
    // Revoked only from a later day: documents signed before stay valid.
    n.build_list("tl-later.json", &["--revoke", &format!("KH:{serial}@2026-01-11T00:00:00Z")]);
    assert_eq!(n.verify(&signed, "tl-later.json", AT).0, 0);
    // `trust-list show` lists the revocation.
    let out = ok(&[
        "trust-list",
        "show",
        p(&n.path("tl-revoked.json")),
        "--operator",
        p(&n.path("op/operator.crt")),
    ]);
    assert!(out.contains(&format!("revoked  serial {serial}")), "{out}");
}

fn originlink_serial(pem: &[u8]) -> String {
    let o = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(pem)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().trim_start_matches("serial=").to_ascii_lowercase()
}

#[test]
fn missing_expired_or_refused_trust_list_cannot_verify() {
    let n = Network::new("cli-cannot");
    let signed = n.sign(&example("xml"), "xml", "KH");
    let (code, out, _) = n.verify(&signed, "no-such-list.json", AT);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("CANNOT_VERIFY TRUST_LIST_MISSING"), "{out}");
    // The list is due for replacement after 30 days.
    let (code, out, _) = n.verify(&signed, "tl.json", "2026-02-15T00:00:00Z");
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("CANNOT_VERIFY TRUST_LIST_EXPIRED"), "{out}");
    // An unsigned list is refused.
    let list: serde_json::Value = serde_json::from_slice(&std::fs::read(n.path("tl.json")).unwrap()).unwrap();
    let mut unsigned = list.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    std::fs::write(n.path("unsigned.json"), serde_json::to_vec(&unsigned).unwrap()).unwrap();
    let (code, out, _) = n.verify(&signed, "unsigned.json", AT);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("CANNOT_VERIFY TRUST_LIST_UNTRUSTED") && out.contains("TRUST_LIST_UNSIGNED"),
        "{out}"
    );
    let (code, out, _) = run_text(
        &["trust-list", "verify", p(&n.path("unsigned.json")), "--operator", p(&n.path("op/operator.crt"))],
        b"",
    );
    assert_eq!((code, out.starts_with("INVALID TRUST_LIST_UNSIGNED")), (1, true), "{out}");
    // A list signed by a key the node does not expect is refused.
    let (code, out, _) = run_text(
        &["trust-list", "verify", p(&n.path("tl.json")), "--operator", p(&n.path("KH/ca.crt")), "--at", AT],
        b"",
    );
    assert_eq!((code, out.starts_with("INVALID TRUST_LIST_WRONG_KEY")), (1, true), "{out}");
    let (code, out, _) = run_text(
        &[
            "trust-list",
            "verify",
            p(&n.path("tl.json")),
            "--operator",
            p(&n.path("op/operator.crt")),
            "--at",
            AT,
        ],
        b"",
    );
    assert_eq!((code, out.starts_with("VALID trust list")), (0, true), "{out}");
}

#[test]
fn rotation_keeps_documents_signed_before_valid() {
    let n = Network::new("cli-rotate");
    let old = n.sign(&example("xml"), "xml", "KH");
    let out = ok(&["keys", "rotate", "--dir", p(&n.path("KH")), "--valid-from", "2026-01-05"]);
    assert!(out.contains("previous certificate kept"), "{out}");
    n.build_list("tl-2.json", &["--sequence", "2"]);
    let new = n.sign(&example("json"), "json", "KH");
    // Both the old and the new document verify against the list built after the rotation.
    assert_eq!(n.verify(&old, "tl-2.json", AT).0, 0);
    assert_eq!(n.verify(&new, "tl-2.json", AT).0, 0);
    let out = ok(&["trust-list", "show", p(&n.path("tl-2.json"))]);
    assert_eq!(out.matches("  signing  ").count(), 3, "KH old + new, TH: {out}");
}

#[test]
fn key_readable_by_others_is_refused() {
    let n = Network::new("cli-keyperm");
    let key = n.path("KH/signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(n.path("doc.xml"), example("xml")).unwrap();
        let (code, _, err) = run_text(
            &["sign", p(&n.path("doc.xml")), "--key", p(&key), "--cert", p(&n.path("KH/signing.crt"))],
            b"",
        );
        assert_eq!(code, 2);
        assert!(err.contains("readable by group or others") && err.contains("chmod 600"), "{err}");
    }
    // keys init never overwrites.
    let (code, _, err) =
        run_text(&["keys", "init", "--country", "KH", "--authority", "x", "--out", p(&n.path("KH"))], b"");
    assert_eq!(code, 2, "{err}");
}

#[test]
fn unreadable_and_unsigned_documents() {
    let n = Network::new("cli-unreadable");
    let (code, _, err) = run_text(&["verify", "-", "--ca", p(&n.path("KH/ca.crt"))], b"not a document");
    assert_eq!(code, 2, "{err}");
    std::fs::write(n.path("plain.xml"), example("xml")).unwrap();
    let (code, out, _) = n.verify(&n.path("plain.xml"), "tl.json", AT);
    assert_eq!(code, 1);
    assert!(out.starts_with("INVALID SIGNATURE_MISSING"), "{out}");
    // Usage: a trust list without the operator certificate it must be signed by.
    let (code, _, _) =
        run_text(&["verify", p(&n.path("plain.xml")), "--trust-list", p(&n.path("tl.json"))], b"");
    assert_eq!(code, 2);
}

#[test]
fn rsa_signing_keys_work_end_to_end() {
    let dir = tempdir("cli-rsa");
    ok(&[
        "keys",
        "init",
        "--country",
        "KH",
        "--authority",
        "MoC",
        "--out",
        p(&dir.join("KH")),
        "--algorithm",
        "rsa2048",
        "--valid-from",
        "2026-01-01",
    ]);
    let doc = dir.join("doc.xml");
    std::fs::write(&doc, example("xml")).unwrap();
    let signed = dir.join("signed.xml");
    ok(&[
        "sign",
        p(&doc),
        "--key",
        p(&dir.join("KH/signing.key")),
        "--cert",
        p(&dir.join("KH/signing.crt")),
        "-o",
        p(&signed),
    ]);
    let out = ok(&["verify", p(&signed), "--ca", p(&dir.join("KH/ca.crt")), "--at", AT]);
    assert!(out.contains("RSA-SHA256"), "{out}");
}
