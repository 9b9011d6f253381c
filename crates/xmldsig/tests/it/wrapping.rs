//! The signature-wrapping corpus: each known trick is its own test and must be refused.
//! Where it matters, xmlsec1 is shown to accept the same document, so the document is a
//! genuinely valid signature that only our structural policy refuses.

use originlink_xmldsig::{ECDSA_SHA256, Limits, Placement};

use crate::common::{ec_key, generic_doc, ubl_example, verify_err};
use crate::xmlsec_interop::{STANDARD_TRANSFORMS, signature_template, xmlsec_sign, xmlsec_verify};

fn signed_ubl() -> String {
    String::from_utf8(ec_key().sign(&ubl_example(), Placement::UblExtension)).unwrap()
}

fn signature_of(signed: &str) -> &str {
    let start = signed.find("<ds:Signature").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &signed[start..end]
}

/// The original signed content is moved into a `ds:Object` in the signature and a forged
/// root takes its place (the classic wrapping attack).
#[test]
fn signed_content_moved_under_object_is_refused() {
    let signed = String::from_utf8(ec_key().sign(&generic_doc(), Placement::RootChild)).unwrap();
    let sig = signature_of(&signed);
    let root_start = signed.find("<o:Order").unwrap();
    let original_root = signed[root_start..].trim_end().replace(sig, "");
    let forged_sig = sig.replace(
        "</ds:KeyInfo></ds:Signature>",
        &format!("</ds:KeyInfo><ds:Object>{original_root}</ds:Object></ds:Signature>"),
    );
    let forged = format!(
        "<o:Order xmlns:o=\"urn:example:order\" Id=\"order-1\"><o:Line n=\"1\">Rifles</o:Line>{forged_sig}</o:Order>"
    );
    assert_eq!(verify_err(forged.as_bytes()), "SIGNATURE_WRAPPING");
}

/// The whole signed document is wrapped inside a forged root.
#[test]
fn signed_document_wrapped_in_a_forged_root_is_refused() {
    let signed = signed_ubl();
    let root_start = signed.find("<CertificateOfOrigin").unwrap();
    let forged = format!("<Evil><Payload>forged</Payload><Hidden>{}</Hidden></Evil>", &signed[root_start..]);
    assert_eq!(verify_err(forged.as_bytes()), "SIGNATURE_WRAPPING");
}

/// Two elements with the same ID: the reference could resolve to either.
#[test]
fn duplicate_ids_are_refused() {
    let key = ec_key();
    // A valid signature over the root by its ID, then a second element takes the same ID.
    let template = format!(
        "<Doc Id=\"doc\"><Item>good</Item>{}</Doc>",
        signature_template(ECDSA_SHA256, "#doc", STANDARD_TRANSFORMS)
    );
    let signed = String::from_utf8(xmlsec_sign(key, "dup-id", &template, &["--id-attr:Id", "Doc"])).unwrap();
    assert!(crate::stream_diff::verify_both(signed.as_bytes(), &Limits::default()).is_ok());
    // The twin hides inside KeyInfo, outside the digested content: only the ID rule catches it.
    let twin = signed.replacen("<KeyInfo>", "<KeyInfo><Item Id=\"doc\">evil twin</Item>", 1);
    assert_ne!(twin, signed);
    assert_eq!(verify_err(twin.as_bytes()), "SIGNATURE_WRAPPING");
    // And we refuse to sign such a document in the first place.
    let doc = r#"<Doc Id="doc"><Item Id="doc">evil twin</Item></Doc>"#;
    let err = originlink_xmldsig::sign_enveloped(
        doc.as_bytes(),
        &key.signing_key(),
        std::slice::from_ref(&key.cert_der),
        Placement::RootChild,
    )
    .unwrap_err();
    assert_eq!(err.code(), "SIGNATURE_WRAPPING");
}

#[test]
fn a_second_signature_is_refused() {
    let signed = signed_ubl();
    let sig = signature_of(&signed).to_owned();
    let doubled = signed.replacen("</CertificateOfOrigin>", &format!("{sig}</CertificateOfOrigin>"), 1);
    assert_eq!(verify_err(doubled.as_bytes()), "SIGNATURE_WRAPPING");
}

/// A valid xmlsec1 signature whose Reference points at an inner element, not the root.
#[test]
fn a_reference_to_a_non_root_element_is_refused() {
    let key = ec_key();
    let template = format!(
        "<Doc><Item Id=\"item\">signed part</Item><Extra>unsigned part</Extra>{}</Doc>",
        signature_template(
            ECDSA_SHA256,
            "#item",
            r#"<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#
        )
    );
    let signed = xmlsec_sign(key, "non-root-ref", &template, &["--id-attr:Id", "Item"]);
    xmlsec_verify(key, "non-root-ref.xml", &signed, &["--id-attr:Id", "Item"]).unwrap();
    assert_eq!(verify_err(&signed), "SIGNATURE_WRAPPING");
}

/// A valid xmlsec1 signature that uses an XPath transform to choose what is signed.
#[test]
fn an_xpath_transform_is_refused() {
    let key = ec_key();
    let transforms = r#"<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><XPath xmlns:ds="http://www.w3.org/2000/09/xmldsig#">not(ancestor-or-self::Extra)</XPath></Transform><Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;
    let template = format!(
        "<Doc><Item>signed part</Item><Extra>unsigned part</Extra>{}</Doc>",
        signature_template(ECDSA_SHA256, "", transforms)
    );
    let signed = xmlsec_sign(key, "xpath", &template, &[]);
    xmlsec_verify(key, "xpath.xml", &signed, &[]).unwrap();
    assert_eq!(verify_err(&signed), "ALGORITHM_NOT_ALLOWED");
}

/// A comment splitting the digest value (some verifiers read only the first text node).
#[test]
fn comments_inside_the_digest_value_are_refused() {
    let signed = signed_ubl();
    let start = signed.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let with_comment = format!("{}<!-- x -->{}", &signed[..start + 10], &signed[start + 10..]);
    assert_eq!(verify_err(with_comment.as_bytes()), "MALFORMED");
}

#[test]
fn a_second_reference_is_refused() {
    let signed = signed_ubl();
    let start = signed.find("<ds:Reference").unwrap();
    let end = signed.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
    let reference = &signed[start..end];
    let doubled = format!("{}{}{}", &signed[..end], reference, &signed[end..]);
    assert_eq!(verify_err(doubled.as_bytes()), "SIGNATURE_WRAPPING");
}

#[test]
fn a_reference_with_an_xpointer_uri_is_refused() {
    let signed = signed_ubl().replacen("URI=\"\"", "URI=\"#xpointer(/)\"", 1);
    assert_eq!(verify_err(signed.as_bytes()), "SIGNATURE_WRAPPING");
}

#[test]
fn a_signature_outside_the_allowed_places_is_refused() {
    let signed = String::from_utf8(ec_key().sign(&generic_doc(), Placement::RootChild)).unwrap();
    let sig = signature_of(&signed).to_owned();
    let moved = signed.replacen(&sig, "", 1).replacen("</o:Line>", &format!("{sig}</o:Line>"), 1);
    assert_eq!(verify_err(moved.as_bytes()), "SIGNATURE_WRAPPING");
}

#[test]
fn an_enveloping_signature_is_refused() {
    let signed = signed_ubl();
    let sig = signature_of(&signed);
    assert_eq!(verify_err(sig.as_bytes()), "SIGNATURE_WRAPPING");
}

/// A signature over the root by its ID is accepted; the same ID elsewhere too is not.
#[test]
fn a_reference_to_the_root_id_is_accepted_and_a_moved_id_is_refused() {
    let key = ec_key();
    let template = format!(
        "<Doc Id=\"doc\"><Item>x</Item>{}</Doc>",
        signature_template(ECDSA_SHA256, "#doc", STANDARD_TRANSFORMS)
    );
    let signed = xmlsec_sign(key, "root-id", &template, &["--id-attr:Id", "Doc"]);
    assert!(crate::stream_diff::verify_both(&signed, &Limits::default()).is_ok());
    let moved = String::from_utf8(signed).unwrap().replacen("<Doc Id=\"doc\">", "<Doc Id=\"other\">", 1);
    assert_eq!(verify_err(moved.as_bytes()), "SIGNATURE_WRAPPING");
}

#[test]
fn weak_or_unexpected_algorithms_are_refused() {
    let signed = signed_ubl();
    let cases = [
        (
            "http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod",
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/><ds:SignatureMethod",
        ),
        (ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"),
        (ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
        ("http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2000/09/xmldsig#sha1"),
        ("http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/2000/09/xmldsig#base64"),
    ];
    for (from, to) in cases {
        let changed = signed.replacen(from, to, 1);
        assert_ne!(changed, signed);
        assert_eq!(verify_err(changed.as_bytes()), "ALGORITHM_NOT_ALLOWED", "{to}");
    }
}

#[test]
fn dtds_and_entities_are_refused() {
    let signed = signed_ubl();
    let body = signed.trim_start_matches(|c| c != '\n');
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE CertificateOfOrigin [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{body}"
    );
    assert_eq!(verify_err(xxe.as_bytes()), "MALFORMED");
    let laughs = "<!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><r>&b;</r>";
    assert_eq!(verify_err(laughs.as_bytes()), "MALFORMED");
}

#[test]
fn oversized_documents_are_refused() {
    let signed = signed_ubl();
    let limits = Limits { max_bytes: signed.len() - 1, ..Limits::default() };
    assert_eq!(
        crate::stream_diff::verify_both(signed.as_bytes(), &limits).unwrap_err().code(),
        "DOCUMENT_TOO_LARGE"
    );
    assert!(
        crate::stream_diff::verify_both(signed.as_bytes(), &Limits { max_bytes: signed.len(), ..limits })
            .is_ok()
    );
}
