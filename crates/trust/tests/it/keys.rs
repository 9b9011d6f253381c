//! Key files, generated certificates, rotation.

use originlink_trust::keystore::{self, AuthorityDir};
use originlink_trust::{Cert, DOC_SIGNING_EKU, Error, KeyAlgorithm, PrivateKey};

use crate::support::{authority, day0, tempdir};

#[cfg(unix)]
#[test]
fn key_files_are_0600_and_a_readable_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("keyperm");
    let a = authority("KH");
    AuthorityDir(dir.clone()).write(&a).unwrap();
    for k in ["ca.key", "signing.key", "tls.key"] {
        let mode = std::fs::metadata(dir.join(k)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{k}");
    }
    let key = keystore::load_private_key(&dir.join("signing.key")).unwrap();
    assert_eq!(key.pkcs8_der(), a.signing.key.pkcs8_der());

    std::fs::set_permissions(dir.join("signing.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = keystore::load_private_key(&dir.join("signing.key")).unwrap_err();
    assert_eq!(err.code(), "KEY_PERMISSIONS");
    let msg = err.to_string();
    assert!(msg.contains("readable by group or others") && msg.contains("chmod 600"), "{msg}");
    assert!(matches!(err, Error::KeyPermissions { mode: 0o644, .. }));

    // Existing keys are never overwritten.
    assert_eq!(AuthorityDir(dir).write(&a).unwrap_err().code(), "IO");
}

#[test]
fn generated_certificates_have_the_right_roles() {
    let a = authority("KH");
    let ca = Cert::from_der(&a.ca.cert_der).unwrap();
    let signing = Cert::from_der(&a.signing.cert_der).unwrap();
    let tls = Cert::from_der(&a.tls.cert_der).unwrap();
    assert!(ca.is_ca() && !ca.is_document_signer());
    assert_eq!(ca.country(), Some("KH"));
    assert_eq!(ca.organization(), Some("Ministry of Commerce KH"));
    assert!(signing.is_document_signer() && !signing.is_ca());
    assert!(signing.is_issued_by(&ca) && tls.is_issued_by(&ca) && !signing.is_issued_by(&tls));
    assert!(!tls.is_document_signer(), "the TLS certificate must not sign documents");
    assert_eq!(signing.key_algorithm(), Some(KeyAlgorithm::EcdsaP256));
    assert_eq!(signing.not_before(), day0().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp());
    // openssl agrees about the EKU OID and the chain.
    let dir = tempdir("openssl-eku");
    std::fs::write(dir.join("ca.pem"), a.ca.cert_pem()).unwrap();
    std::fs::write(dir.join("signing.pem"), a.signing.cert_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("signing.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(DOC_SIGNING_EKU), "{text}");
    let out = std::process::Command::new("openssl")
        .args(["verify", "-attime", "1770000000", "-CAfile"])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("signing.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn rsa_keys_sign_certificates_and_jws() {
    for bits in [2048, 3072] {
        let key = crate::support::rsa_key(bits);
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa(bits));
        let pem = key.to_pem();
        assert_eq!(PrivateKey::from_pem(&pem).unwrap().pkcs8_der(), key.pkcs8_der());
        let a = originlink_trust::keys::init_authority("TH", "DFT", day0(), Some(key)).unwrap();
        let signing = Cert::from_der(&a.signing.cert_der).unwrap();
        assert_eq!(signing.key_algorithm(), Some(KeyAlgorithm::Rsa(bits)));
        assert!(signing.is_issued_by(&Cert::from_der(&a.ca.cert_der).unwrap()));
    }
}

#[test]
fn rotation_archives_the_old_pair_and_issues_from_the_same_ca() {
    let dir = tempdir("rotate");
    let a = authority("KH");
    let ad = AuthorityDir(dir.clone());
    ad.write(&a).unwrap();
    let ca_key = keystore::load_private_key(&ad.ca_key()).unwrap();
    let new = originlink_trust::keys::issue_signing_cert(
        &a.ca.cert_der,
        &ca_key,
        "Ministry of Commerce KH",
        crate::support::date(2026, 6, 1),
        730,
        PrivateKey::generate_p256().unwrap(),
    )
    .unwrap();
    let archived = ad.rotate(&new).unwrap();
    assert!(archived.exists());
    let all = ad.all_signing_certs().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].der(), new.cert_der.as_slice());
    assert_eq!(all[1].der(), a.signing.cert_der.as_slice());
    let ca = Cert::from_der(&a.ca.cert_der).unwrap();
    assert!(all.iter().all(|c| c.is_issued_by(&ca) && c.is_document_signer()));
    // A CA key that is not the CA's is refused.
    let wrong = originlink_trust::keys::issue_signing_cert(
        &a.ca.cert_der,
        &a.tls.key,
        "x",
        day0(),
        1,
        PrivateKey::generate_p256().unwrap(),
    );
    assert_eq!(wrong.unwrap_err().code(), "KEY_INVALID");
}

#[test]
fn keys_that_are_not_pkcs8_are_refused_clearly() {
    let e = PrivateKey::from_pem("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
        .unwrap_err();
    assert!(e.to_string().contains("PKCS#8"), "{e}");
    assert_eq!(PrivateKey::from_pkcs8_der(b"junk").unwrap_err().code(), "KEY_INVALID");
}

#[cfg(unix)]
#[test]
fn a_secret_is_created_0600_kept_and_refused_when_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("secret");
    let path = dir.join("audit.key");
    let made = keystore::load_or_create_secret(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(keystore::load_or_create_secret(&path).unwrap(), made, "an existing secret is kept");
    assert_eq!(keystore::load_secret(&path).unwrap(), made);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    for err in
        [keystore::load_secret(&path).unwrap_err(), keystore::load_or_create_secret(&path).unwrap_err()]
    {
        assert_eq!(err.code(), "KEY_PERMISSIONS");
        let msg = err.to_string();
        assert!(msg.contains("audit.key") && msg.contains("chmod 600"), "{msg}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, "not hex\n").unwrap();
    let msg = keystore::load_secret(&path).unwrap_err().to_string();
    assert!(msg.contains("audit.key") && msg.contains("64 hex digits"), "{msg}");
    assert_eq!(keystore::load_secret(&dir.join("missing.key")).unwrap_err().code(), "IO");
}
