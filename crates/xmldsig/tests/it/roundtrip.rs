//! Sign then verify with our own API, both algorithms and both placements, and the API's
//! refusals.

use originlink_xmldsig::{Placement, SignatureAlgorithm, SigningKey, sign_enveloped};

use crate::common::{ec_key, generic_doc, rsa_key, ubl_example, verify, verify_err};

#[test]
fn ecdsa_ubl_roundtrip_reports_signer_and_root() {
    let key = ec_key();
    let signed = key.sign(&ubl_example(), Placement::UblExtension);
    let v = verify(&signed).unwrap();
    assert_eq!(v.signer_certificate_der, key.cert_der);
    assert!(v.other_certificates_der.is_empty());
    assert_eq!(v.algorithm, SignatureAlgorithm::EcdsaP256Sha256);
    assert_eq!(v.root_name, "CertificateOfOrigin");
    assert_eq!(
        v.root_namespace.as_deref(),
        Some("urn:oasis:names:specification:ubl:schema:xsd:CertificateOfOrigin-2")
    );
    assert_eq!(v.placement, Placement::UblExtension);
}

#[test]
fn rsa_generic_roundtrip() {
    let key = rsa_key();
    let signed = key.sign(&generic_doc(), Placement::RootChild);
    let v = verify(&signed).unwrap();
    assert_eq!(v.algorithm, SignatureAlgorithm::RsaPkcs1Sha256);
    assert_eq!(v.placement, Placement::RootChild);
    assert_eq!(v.root_name, "Order");
}

#[test]
fn signing_keeps_the_original_bytes_around_the_signature() {
    let doc = generic_doc();
    let signed = ec_key().sign(&doc, Placement::RootChild);
    let text = String::from_utf8(signed).unwrap();
    let start = text.find("<ds:Signature").unwrap();
    let end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let without = format!("{}{}", &text[..start], &text[end..]);
    assert_eq!(without.as_bytes(), doc.as_slice());
}

#[test]
fn chain_certificates_are_returned_as_others() {
    let key = ec_key();
    let chain = vec![key.cert_der.clone(), rsa_key().cert_der.clone()];
    let signed = sign_enveloped(&generic_doc(), &key.signing_key(), &chain, Placement::RootChild).unwrap();
    let v = verify(&signed).unwrap();
    assert_eq!(v.signer_certificate_der, key.cert_der);
    assert_eq!(v.other_certificates_der, vec![rsa_key().cert_der.clone()]);
}

#[test]
fn self_closing_root_and_existing_ubl_extensions_are_handled() {
    let key = ec_key();
    let signed = key.sign(b"<r a=\"1\"/>", Placement::RootChild);
    assert!(verify(&signed).is_ok());
    let signed = key.sign(b"<r a=\"1\"/>", Placement::UblExtension);
    assert_eq!(verify(&signed).unwrap().placement, Placement::UblExtension);

    let ubl = String::from_utf8(ubl_example()).unwrap().replacen(
        "<cbc:UBLVersionID>",
        "<ext:UBLExtensions xmlns:ext=\"urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2\">\
         <ext:UBLExtension><ext:ExtensionContent><x:Other xmlns:x=\"urn:x\"/></ext:ExtensionContent></ext:UBLExtension>\
         </ext:UBLExtensions><cbc:UBLVersionID>",
        1,
    );
    let signed = key.sign(ubl.as_bytes(), Placement::UblExtension);
    let text = String::from_utf8(signed.clone()).unwrap();
    assert_eq!(text.matches("<ext:UBLExtensions").count(), 1);
    assert_eq!(text.matches("<ext:UBLExtension>").count() + text.matches("<ext:UBLExtension ").count(), 2);
    assert_eq!(verify(&signed).unwrap().placement, Placement::UblExtension);
}

#[test]
fn signing_refuses_bad_inputs() {
    let ec = ec_key();
    let err = SigningKey::from_pkcs8(b"not a key").unwrap_err();
    assert_eq!(err.code(), "BAD_KEY");
    let err = sign_enveloped(
        &generic_doc(),
        &ec.signing_key(),
        &[rsa_key().cert_der.clone()],
        Placement::RootChild,
    )
    .unwrap_err();
    assert_eq!(err.code(), "KEY_CERTIFICATE_MISMATCH");
    let err = sign_enveloped(&generic_doc(), &ec.signing_key(), &[], Placement::RootChild).unwrap_err();
    assert_eq!(err.code(), "CERTIFICATE_MISSING");
    let signed = ec.sign(&generic_doc(), Placement::RootChild);
    let err =
        sign_enveloped(&signed, &ec.signing_key(), std::slice::from_ref(&ec.cert_der), Placement::RootChild)
            .unwrap_err();
    assert_eq!(err.code(), "ALREADY_SIGNED");
    let err =
        sign_enveloped(b"<r>", &ec.signing_key(), std::slice::from_ref(&ec.cert_der), Placement::RootChild)
            .unwrap_err();
    assert_eq!(err.code(), "MALFORMED");
}

#[test]
fn unsigned_document_is_signature_missing() {
    assert_eq!(verify_err(&generic_doc()), "SIGNATURE_MISSING");
}

#[test]
fn error_codes_are_stable() {
    use originlink_xmldsig::Error;
    let all = [
        (Error::DocumentTooLarge(String::new()), "DOCUMENT_TOO_LARGE"),
        (Error::Malformed(String::new()), "MALFORMED"),
        (Error::SignatureMissing, "SIGNATURE_MISSING"),
        (Error::SignatureWrapping(String::new()), "SIGNATURE_WRAPPING"),
        (Error::AlgorithmNotAllowed(String::new()), "ALGORITHM_NOT_ALLOWED"),
        (Error::Tampered, "TAMPERED"),
        (Error::BadSignature, "BAD_SIGNATURE"),
        (Error::CertificateMissing, "CERTIFICATE_MISSING"),
        (Error::BadCertificate(String::new()), "BAD_CERTIFICATE"),
        (Error::BadKey(String::new()), "BAD_KEY"),
        (Error::KeyCertificateMismatch, "KEY_CERTIFICATE_MISMATCH"),
        (Error::AlreadySigned, "ALREADY_SIGNED"),
        (Error::SigningFailed, "SIGNING_FAILED"),
        (Error::NamespaceUriInvalid { uri: String::new(), reason: String::new() }, "NAMESPACE_URI_INVALID"),
    ];
    for (err, code) in all {
        assert_eq!(err.code(), code);
    }
}

/// The benchmark's document is the ~6 KB signed certificate the issue asks to measure.
#[test]
fn bench_document_is_about_six_kb_once_signed() {
    let signed = ec_key().sign(&crate::common::six_kb_certificate(), Placement::UblExtension);
    assert!((5_500..=6_700).contains(&signed.len()), "{} bytes", signed.len());
    assert!(verify(&signed).is_ok());
}
