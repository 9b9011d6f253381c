//! `KeyCache`: the same verdicts with and without it, and a cached key never stands in for
//! another certificate's.

use originlink_xmldsig::{Error, KeyCache, Limits, Placement, Verified, verify_enveloped_with};

use crate::common::{ec_key, ec_key_2, generic_doc, rsa_key, ubl_example, verify};

fn verify_cached(cache: &KeyCache, xml: &[u8]) -> Result<Verified, Error> {
    crate::stream_diff::verify_both_cached(xml, &Limits::default(), cache)
}

fn code(r: Result<Verified, Error>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => e.code(),
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
fn cached_and_uncached_verification_agree() {
    let cache = KeyCache::new();
    assert!(cache.is_empty());
    for (i, key) in [ec_key(), ec_key_2(), rsa_key()].into_iter().enumerate() {
        let signed = key.sign(&ubl_example(), Placement::UblExtension);
        let plain = verify(&signed).unwrap();
        // First call fills the cache, second is served from it.
        assert_eq!(verify_cached(&cache, &signed).unwrap(), plain);
        assert_eq!(cache.len(), i + 1);
        assert_eq!(verify_cached(&cache, &signed).unwrap(), plain);
        assert_eq!(cache.len(), i + 1);
    }
}

#[test]
fn a_cached_key_never_verifies_another_certificate() {
    let cache = KeyCache::new();
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    verify_cached(&cache, &signed).unwrap();
    // Same subject pattern, same issuer format, another key: a separate entry, and the
    // signature made by the first key does not verify with it.
    let swapped = swap_certificate(&signed, &ec_key_2().cert_der);
    assert_eq!(code(verify_cached(&cache, &swapped)), "BAD_SIGNATURE");
    assert_eq!(cache.len(), 2);
    // And the other way round, with both keys cached.
    let signed_2 = ec_key_2().sign(&ubl_example(), Placement::UblExtension);
    assert_eq!(
        code(verify_cached(&cache, &swap_certificate(&signed_2, &ec_key().cert_der))),
        "BAD_SIGNATURE"
    );
    assert_eq!(code(verify_cached(&cache, &swap_certificate(&signed, &rsa_key().cert_der))), "BAD_SIGNATURE");
    // A certificate changed by one byte is other DER: parsed afresh, never a hit.
    let der = &ec_key().cert_der;
    let mut changed = der.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01; // inside the certificate's own signature: still parses
    let before = cache.len();
    assert_eq!(code(verify_cached(&cache, &swap_certificate(&signed, &changed))), "OK");
    assert_eq!(cache.len(), before + 1);
    let mut broken = der.clone();
    broken[1] ^= 0x7f; // the outer length: no longer DER
    assert_eq!(code(verify_cached(&cache, &swap_certificate(&signed, &broken))), "BAD_CERTIFICATE");
    assert_eq!(cache.len(), before + 1);
}

#[test]
fn tampered_documents_fail_after_a_cached_success() {
    let cache = KeyCache::new();
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    for _ in 0..2 {
        verify_cached(&cache, &signed).unwrap();
    }
    let text = std::str::from_utf8(&signed).unwrap();
    for element in ["ds:DigestValue", "ds:SignatureValue"] {
        let start = text.find(&format!("<{element}>")).unwrap() + element.len() + 2;
        let end = text.find(&format!("</{element}>")).unwrap();
        for i in start..end {
            let mut copy = signed.clone();
            copy[i] ^= 0x01;
            let code = code(verify_cached(&cache, &copy));
            assert!(["TAMPERED", "BAD_SIGNATURE", "MALFORMED"].contains(&code), "{element} byte {i}: {code}");
        }
    }
    let changed = text.replacen("<cbc:ID>", "<cbc:ID>X", 1);
    assert_ne!(changed, text);
    assert_eq!(code(verify_cached(&cache, changed.as_bytes())), "TAMPERED");
    // The RootChild placement and another document type go through the same cache.
    let other = ec_key().sign(&generic_doc(), Placement::RootChild);
    verify_cached(&cache, &other).unwrap();
    assert_eq!(cache.len(), 1);
    assert_eq!(code(verify_cached(&cache, &signed)), "OK");
}

#[test]
fn the_reader_sees_the_verified_root_only_after_success() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    let limits = Limits::default();
    let (_, name) =
        verify_enveloped_with(&signed, &limits, None, |root| root.tag_name().name().to_owned()).unwrap();
    assert_eq!(name, "CertificateOfOrigin");
    let text = std::str::from_utf8(&signed).unwrap().replacen("<cbc:ID>", "<cbc:ID>X", 1);
    let mut called = false;
    let r = verify_enveloped_with(text.as_bytes(), &limits, None, |_| called = true);
    assert_eq!(r.map(|_| ()).unwrap_err().code(), "TAMPERED");
    assert!(!called);
}
