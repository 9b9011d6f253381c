//! Any single-byte change to the signed content, or a swapped certificate, gives invalid.

use originlink_xmldsig::Placement;

use crate::common::{TestKey, ec_key, ec_key_2, generic_doc, rsa_key, ubl_example, verify_err};

/// Flips one bit in every byte of the signed content in turn; each variant must fail
/// verification. The signed content is the root element minus the `Signature` element:
/// with `URI=""` comments and the XML declaration are not signed (XML-DSig §4.4.3.3), so
/// the prolog is left out — the signed document from [`generic_doc`] still has a comment
/// inside the root, whose bytes are flipped like any other (they break the XML or not).
fn every_byte_flip_is_rejected(key: &TestKey, doc: &[u8], placement: Placement) {
    let signed = key.sign(doc, placement);
    let text = std::str::from_utf8(&signed).unwrap();
    let sig_start = text.find("<ds:Signature").unwrap();
    let sig_end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let parsed = roxmltree::Document::parse(text).unwrap();
    let root = parsed.root_element().range();
    let comments: Vec<_> = parsed.descendants().filter(|n| n.is_comment()).map(|n| n.range()).collect();
    let mut codes = std::collections::BTreeMap::new();
    let signed_bytes = root.filter(|i| *i < sig_start || *i >= sig_end);
    // Inside a comment only the delimiters are signed structure; the text is not signed.
    let signed_bytes = signed_bytes.filter(|i| !comments.iter().any(|c| *i >= c.start + 4 && *i < c.end - 3));
    for i in signed_bytes {
        let mut copy = signed.clone();
        copy[i] ^= 0x01;
        let code = match crate::common::verify(&copy) {
            Ok(_) => panic!(
                "flip at {i} accepted: {:?}",
                String::from_utf8_lossy(&copy[i.saturating_sub(20)..i + 5])
            ),
            Err(e) => e.code(),
        };
        *codes.entry(code).or_insert(0) += 1;
    }
    // Most flips keep the XML well-formed and are caught by the digest.
    assert!(codes.get("TAMPERED").copied().unwrap_or(0) > 100, "{codes:?}");
}

#[test]
fn flipping_any_byte_of_a_signed_ubl_document_is_rejected_ecdsa() {
    every_byte_flip_is_rejected(ec_key(), &ubl_example(), Placement::UblExtension);
}

#[test]
fn flipping_any_byte_of_a_signed_generic_document_is_rejected_rsa() {
    // Without its unused namespace declaration, which exclusive C14N does not sign (below).
    let doc = String::from_utf8(generic_doc()).unwrap().replacen(" xmlns:unused=\"urn:unused\"", "", 1);
    every_byte_flip_is_rejected(rsa_key(), doc.as_bytes(), Placement::RootChild);
}

/// Exclusive C14N signs the namespace declarations that are used, not those merely present.
#[test]
fn unused_namespace_declarations_are_not_signed_content() {
    let signed = String::from_utf8(ec_key().sign(&generic_doc(), Placement::RootChild)).unwrap();
    let changed = signed.replacen("xmlns:unused=\"urn:unused\"", "xmlns:unused=\"urn:other\"", 1);
    assert_ne!(changed, signed);
    assert!(crate::common::verify(changed.as_bytes()).is_ok());
}

#[test]
fn flipping_bytes_of_the_signature_values_is_rejected() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    let text = std::str::from_utf8(&signed).unwrap();
    for element in ["ds:DigestValue", "ds:SignatureValue"] {
        let start = text.find(&format!("<{element}>")).unwrap() + element.len() + 2;
        let end = text.find(&format!("</{element}>")).unwrap();
        for i in start..end {
            let mut copy = signed.clone();
            copy[i] ^= 0x01;
            let code = verify_err(&copy);
            assert!(["TAMPERED", "BAD_SIGNATURE", "MALFORMED"].contains(&code), "{element} byte {i}: {code}");
        }
    }
}

fn swap_certificate(signed: &[u8], new_cert_der: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::str::from_utf8(signed).unwrap();
    let start = text.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
    let end = text.find("</ds:X509Certificate>").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(new_cert_der);
    format!("{}{}{}", &text[..start], b64, &text[end..]).into_bytes()
}

#[test]
fn swapping_the_certificate_for_another_ec_key_is_rejected() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    assert_eq!(verify_err(&swap_certificate(&signed, &ec_key_2().cert_der)), "BAD_SIGNATURE");
}

#[test]
fn swapping_the_certificate_for_an_rsa_key_is_rejected() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    assert_eq!(verify_err(&swap_certificate(&signed, &rsa_key().cert_der)), "BAD_SIGNATURE");
    let signed = rsa_key().sign(&ubl_example(), Placement::UblExtension);
    assert_eq!(verify_err(&swap_certificate(&signed, &ec_key().cert_der)), "BAD_SIGNATURE");
}

#[test]
fn garbage_certificate_is_rejected() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    assert_eq!(verify_err(&swap_certificate(&signed, b"not a certificate")), "BAD_CERTIFICATE");
}

#[test]
fn removing_the_certificate_is_rejected() {
    let signed = String::from_utf8(ec_key().sign(&ubl_example(), Placement::UblExtension)).unwrap();
    let start = signed.find("<ds:KeyInfo>").unwrap();
    let end = signed.find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let stripped = format!("{}{}", &signed[..start], &signed[end..]);
    assert_eq!(verify_err(stripped.as_bytes()), "CERTIFICATE_MISSING");
}

/// The other side of the coin, stated so it cannot change unnoticed: comment text is not
/// signed content under `URI=""` (what the issuer means must never live in a comment).
#[test]
fn comment_text_is_not_signed_content() {
    let signed = String::from_utf8(ec_key().sign(&generic_doc(), Placement::RootChild)).unwrap();
    let changed = signed.replacen("a comment inside", "a comment INSIDE", 1);
    assert_ne!(changed, signed);
    assert!(crate::common::verify(changed.as_bytes()).is_ok());
}
