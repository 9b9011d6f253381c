//! The verification policy over signed XML and JSON certificates.

use originlink_trust::trustlist::{self, Revoked};
use originlink_trust::{CannotVerifyReason, InvalidReason, PrivateKey, TrustStore, Verdict, Verifier, keys};

use crate::support::{at, authority, date, json_doc, list, member, sign, verifier, xml_doc};

#[track_caller]
fn assert_invalid(v: Verdict, reason: InvalidReason) {
    match v {
        Verdict::Invalid { reason: r, ref detail } => assert_eq!(r, reason, "{detail}"),
        other => panic!("expected {reason:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_cannot(v: Verdict, reason: CannotVerifyReason) {
    match v {
        Verdict::CannotVerify { reason: r, .. } => assert_eq!(r, reason),
        other => panic!("expected cannot verify {reason:?}, got {other:?}"),
    }
}

#[test]
fn signed_xml_and_json_are_valid() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    for doc in [xml_doc("KH", date(2026, 1, 10)), json_doc("KH", date(2026, 1, 10))] {
        let signed = sign(&doc, &kh.signing);
        match v.verify(&signed, at(2026, 1, 12)).unwrap() {
            Verdict::Valid(s) => {
                assert_eq!(s.country.as_str(), "KH");
                assert!(s.subject.contains("document signing"), "{}", s.subject);
            }
            other => panic!("{other:?}"),
        }
    }
    // One chain validated, then served from the cache for the second document.
    assert_eq!(v.cached_chains(), 1);
}

#[test]
fn flipping_a_byte_of_signed_content_is_invalid() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let xml = sign(&xml_doc("KH", date(2026, 1, 10)), &kh.signing);
    let text = String::from_utf8(xml).unwrap();
    let changed = text.replacen("<cbc:Name>", "<cbc:Name>X", 1);
    assert_invalid(v.verify(changed.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::Tampered);

    let json = sign(&json_doc("KH", date(2026, 1, 10)), &kh.signing);
    let text = String::from_utf8(json).unwrap();
    let changed = text.replacen("KH", "KI", 1);
    assert_ne!(changed, text);
    assert_invalid(v.verify(changed.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::BadSignature);
}

#[test]
fn swapping_the_certificate_is_invalid() {
    let kh = authority("KH");
    let other = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh), member("TH", &authority("TH"))]));
    let b64 = |d: &[u8]| trustlist::encode_cert(d);
    // XML: the certificate in X509Data is replaced.
    let signed = String::from_utf8(sign(&xml_doc("KH", date(2026, 1, 10)), &kh.signing)).unwrap();
    let swapped = signed.replace(&b64(&kh.signing.cert_der), &b64(&other.signing.cert_der));
    assert_ne!(swapped, signed);
    assert_invalid(v.verify(swapped.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::BadSignature);

    // JSON: the certificate in the JWS header's x5c is replaced (the header is re-encoded).
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signed = sign(&json_doc("KH", date(2026, 1, 10)), &kh.signing);
    let mut doc: serde_json::Value = serde_json::from_slice(&signed).unwrap();
    let token = doc["signature"].as_str().unwrap().to_owned();
    let (header, sig) = token.split_once("..").unwrap();
    let header = String::from_utf8(url.decode(header).unwrap()).unwrap();
    let swapped = header.replace(&b64(&kh.signing.cert_der), &b64(&other.signing.cert_der));
    assert_ne!(swapped, header);
    doc["signature"] = format!("{}..{sig}", url.encode(swapped)).into();
    let swapped = serde_json::to_vec(&doc).unwrap();
    assert_invalid(v.verify(&swapped, at(2026, 1, 12)).unwrap(), InvalidReason::BadSignature);
}

#[test]
fn wrong_country_is_country_mismatch() {
    let kh = authority("KH");
    let th = authority("TH");
    let v = verifier(&list(vec![member("KH", &kh), member("TH", &th)]));
    // A Thai authority signs a document claiming to be issued by Cambodia.
    for doc in [xml_doc("KH", date(2026, 1, 10)), json_doc("KH", date(2026, 1, 10))] {
        let signed = sign(&doc, &th.signing);
        assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::CountryMismatch);
    }
}

#[test]
fn revoked_certificate_is_revoked_from_its_date() {
    let kh = authority("KH");
    let serial = originlink_trust::Cert::from_der(&kh.signing.cert_der).unwrap().serial_hex();
    let early = sign(&xml_doc("KH", date(2026, 1, 5)), &kh.signing);
    let late = sign(&xml_doc("KH", date(2026, 1, 20)), &kh.signing);

    let mut m = member("KH", &kh);
    m.revoked.push(Revoked { serial: serial.clone(), revoked_at: Some(at(2026, 1, 15)), reason: None });
    let v = verifier(&list(vec![m]));
    assert!(v.verify(&early, at(2026, 1, 25)).unwrap().is_valid(), "signed before revocation");
    assert_invalid(v.verify(&late, at(2026, 1, 25)).unwrap(), InvalidReason::Revoked);

    let mut m = member("KH", &kh);
    m.revoked.push(Revoked { serial, revoked_at: None, reason: Some("key compromise".into()) });
    let v = verifier(&list(vec![m]));
    assert_invalid(v.verify(&early, at(2026, 1, 25)).unwrap(), InvalidReason::Revoked);
}

#[test]
fn unknown_ca_and_unregistered_signer_are_untrusted() {
    let kh = authority("KH");
    let rogue = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let signed = sign(&xml_doc("KH", date(2026, 1, 10)), &rogue.signing);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::UntrustedIssuer);

    // Same CA, but a signing certificate the member never registered.
    let ca_key = PrivateKey::from_pkcs8_der(kh.ca.key.pkcs8_der()).unwrap();
    let extra = keys::issue_signing_cert(
        &kh.ca.cert_der,
        &ca_key,
        "x",
        date(2026, 1, 1),
        30,
        PrivateKey::generate_p256().unwrap(),
    )
    .unwrap();
    let signed = sign(&xml_doc("KH", date(2026, 1, 10)), &extra);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::UntrustedIssuer);
}

#[test]
fn tls_certificate_cannot_sign_documents() {
    let kh = authority("KH");
    let mut m = member("KH", &kh);
    m.signing_certs.clear(); // even when any certificate of the CA is allowed
    let v = verifier(&list(vec![m]));
    let signed = sign(&xml_doc("KH", date(2026, 1, 10)), &kh.tls);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::WrongKeyUsage);
}

#[test]
fn certificate_not_valid_at_signing_time() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    // Issue date before the signing certificate existed.
    let signed = sign(&xml_doc("KH", date(2025, 12, 20)), &kh.signing);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::CertNotValidAtSigning);
    // Issue date after the verification time.
    let signed = sign(&xml_doc("KH", date(2026, 1, 20)), &kh.signing);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::SigningTimeInFuture);
}

#[test]
fn rotation_with_overlap_keeps_old_documents_valid() {
    let kh = authority("KH");
    // The first signing certificate lives one month; a new one is issued half-way.
    let ca_key = PrivateKey::from_pkcs8_der(kh.ca.key.pkcs8_der()).unwrap();
    let old = keys::issue_signing_cert(
        &kh.ca.cert_der,
        &ca_key,
        "MoC",
        date(2026, 1, 1),
        31,
        PrivateKey::generate_p256().unwrap(),
    )
    .unwrap();
    let new = keys::issue_signing_cert(
        &kh.ca.cert_der,
        &ca_key,
        "MoC",
        date(2026, 1, 15),
        730,
        PrivateKey::generate_p256().unwrap(),
    )
    .unwrap();
    let old_doc = sign(&xml_doc("KH", date(2026, 1, 10)), &old);
    let new_doc = sign(&json_doc("KH", date(2026, 3, 10)), &new);

    // After rotation the list names both certificates (the overlap).
    let mut m = member("KH", &kh);
    m.signing_certs = vec![trustlist::encode_cert(&old.cert_der), trustlist::encode_cert(&new.cert_der)];
    let mut l = list(vec![m]);
    l.sequence = 2;
    l.issued_at = at(2026, 3, 1);
    l.next_update = at(2026, 4, 1);
    let v = verifier(&l);
    // March: the old certificate has expired, but it was valid when the old document was signed.
    assert!(v.verify(&old_doc, at(2026, 3, 15)).unwrap().is_valid());
    assert!(v.verify(&new_doc, at(2026, 3, 15)).unwrap().is_valid());
    // The old key cannot sign anything new.
    let forged = sign(&xml_doc("KH", date(2026, 3, 10)), &old);
    assert_invalid(v.verify(&forged, at(2026, 3, 15)).unwrap(), InvalidReason::CertNotValidAtSigning);
}

#[test]
fn expired_or_missing_trust_list_cannot_verify() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let signed = sign(&xml_doc("KH", date(2026, 1, 10)), &kh.signing);
    assert_cannot(v.verify(&signed, at(2026, 2, 5)).unwrap(), CannotVerifyReason::TrustListExpired);
    assert_cannot(v.verify(&signed, at(2025, 12, 1)).unwrap(), CannotVerifyReason::TrustListNotYetValid);
    let none = Verifier::unavailable(CannotVerifyReason::TrustListMissing, "no list");
    assert_cannot(none.verify(&signed, at(2026, 1, 12)).unwrap(), CannotVerifyReason::TrustListMissing);
    // But a tampered document is invalid whatever the trust list: that is a fact about it.
    let text = String::from_utf8(signed).unwrap().replacen("<cbc:Name>", "<cbc:Name>X", 1);
    assert_invalid(none.verify(text.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::Tampered);
}

#[test]
fn a_ca_alone_is_a_trust_store() {
    let kh = authority("KH");
    let ca = originlink_trust::Cert::from_der(&kh.ca.cert_der).unwrap();
    let v = Verifier::new(TrustStore::from_cas(vec![ca]).unwrap());
    let signed = sign(&json_doc("KH", date(2026, 1, 10)), &kh.signing);
    assert!(v.verify(&signed, at(2030, 1, 1)).unwrap().is_valid());
    let signed = sign(&json_doc("TH", date(2026, 1, 10)), &kh.signing);
    assert_invalid(v.verify(&signed, at(2030, 1, 1)).unwrap(), InvalidReason::CountryMismatch);
}

#[test]
fn unsigned_and_unreadable_documents() {
    let v = verifier(&list(vec![]));
    assert_invalid(
        v.verify(&xml_doc("KH", date(2026, 1, 10)), at(2026, 1, 12)).unwrap(),
        InvalidReason::SignatureMissing,
    );
    assert_invalid(
        v.verify(&json_doc("KH", date(2026, 1, 10)), at(2026, 1, 12)).unwrap(),
        InvalidReason::SignatureMissing,
    );
    assert_eq!(v.verify(b"<a><b></a>", at(2026, 1, 12)).unwrap_err().code, "XML_MALFORMED");
    assert_eq!(v.verify(b"{\"a\":", at(2026, 1, 12)).unwrap_err().code, "JSON_MALFORMED");
    assert_eq!(v.verify(b"hello", at(2026, 1, 12)).unwrap_err().code, "FORMAT_UNKNOWN");
}

#[test]
fn rsa_signed_documents_verify() {
    let key = crate::support::rsa_key(2048);
    let a = keys::init_authority("KH", "MoC", crate::support::day0(), Some(key)).unwrap();
    let v = verifier(&list(vec![member("KH", &a)]));
    for doc in [xml_doc("KH", date(2026, 1, 10)), json_doc("KH", date(2026, 1, 10))] {
        let signed = sign(&doc, &a.signing);
        assert!(v.verify(&signed, at(2026, 1, 12)).unwrap().is_valid());
    }
}

#[test]
fn facts_come_from_the_signed_ubl_content() {
    use originlink_trust::document::xml_facts;
    let doc = String::from_utf8(xml_doc("KH", date(2026, 1, 10))).unwrap();
    let f = xml_facts(doc.as_bytes()).unwrap();
    assert_eq!((f.issuing_country.as_str(), f.signing_date), ("KH", date(2026, 1, 10)));
    // Comments are not signed content; the text around them is what counts.
    let country = "<cac:IssuingCountry><cbc:IdentificationCode>KH</cbc:IdentificationCode>";
    assert!(doc.contains(country));
    let commented = doc.replace(country, &country.replace(">KH<", ">T<!-- K -->H<"));
    assert_eq!(xml_facts(commented.as_bytes()).unwrap().issuing_country.as_str(), "TH");
    let nested = doc.replace(country, &country.replace(">KH<", "><x>KH</x><"));
    assert!(xml_facts(nested.as_bytes()).is_err());
    // A document that does not say who issued it cannot be judged against a country.
    let stripped = doc.replacen("cac:IssuingCountry>", "cac:IssuingCountryX>", 2);
    assert!(xml_facts(stripped.as_bytes()).unwrap_err().contains("IssuingCountry"));
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let signed = sign(stripped.as_bytes(), &kh.signing);
    assert_invalid(v.verify(&signed, at(2026, 1, 12)).unwrap(), InvalidReason::DocumentIncomplete);
}

/// A root CA (path length as given) and an intermediate CA under it, both `C=KH`.
fn root_and_intermediate(root_path_len: Option<u8>) -> (Vec<u8>, Vec<u8>, PrivateKey) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let params = |cn: &str, bc: BasicConstraints| {
        let mut p = CertificateParams::default();
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 1);
        p.distinguished_name.remove(DnType::CommonName);
        p.distinguished_name.push(DnType::CountryName, "KH");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(bc);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        p
    };
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let root_params = params(
        "Root",
        root_path_len.map(BasicConstraints::Constrained).unwrap_or(BasicConstraints::Unconstrained),
    );
    let root = root_params.self_signed(&root_key).unwrap();
    let inter_pk = PrivateKey::generate_p256().unwrap();
    let inter_key =
        KeyPair::from_pkcs8_der_and_sign_algo(&inter_pk.pkcs8_der().into(), &rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap();
    let inter = params("Intermediate", BasicConstraints::Constrained(0))
        .signed_by(&inter_key, &Issuer::from_params(&root_params, &root_key))
        .unwrap();
    (root.der().to_vec(), inter.der().to_vec(), inter_pk)
}

#[test]
fn intermediates_carried_with_the_signature_are_used_within_path_length() {
    for (root_path_len, valid) in [(None, true), (Some(1), true), (Some(0), false)] {
        let (root, inter, inter_key) = root_and_intermediate(root_path_len);
        let signer = keys::issue_signing_cert(
            &inter,
            &inter_key,
            "MoC",
            date(2026, 1, 1),
            365,
            PrivateKey::generate_p256().unwrap(),
        )
        .unwrap();
        let chain = vec![signer.cert_der.clone(), inter.clone()];
        let v = Verifier::new(
            TrustStore::from_cas(vec![originlink_trust::Cert::from_der(&root).unwrap()]).unwrap(),
        );
        for doc in [xml_doc("KH", date(2026, 1, 10)), json_doc("KH", date(2026, 1, 10))] {
            let signed = originlink_trust::sign(&doc, &signer.key, &chain).unwrap();
            let verdict = v.verify(&signed, at(2026, 1, 12)).unwrap();
            if valid {
                assert!(verdict.is_valid(), "{root_path_len:?}: {verdict:?}");
            } else {
                assert_invalid(verdict, InvalidReason::UntrustedIssuer);
            }
            // Without the intermediate there is no chain (a fresh verifier: a cached chain is a
            // fact about the signer certificate, whichever document brought the intermediate).
            let alone = originlink_trust::sign(&doc, &signer.key, &chain[..1]).unwrap();
            let fresh = Verifier::new(
                TrustStore::from_cas(vec![originlink_trust::Cert::from_der(&root).unwrap()]).unwrap(),
            );
            assert_invalid(fresh.verify(&alone, at(2026, 1, 12)).unwrap(), InvalidReason::UntrustedIssuer);
        }
    }
}

/// What the fast-scan agreement test held of the DOM reader when the scanner (since removed)
/// was sure: these variants read as canonical XML sees them.
#[test]
fn dom_facts_read_text_as_canonical_xml_sees_it() {
    use originlink_trust::document::xml_facts;
    let doc = String::from_utf8(xml_doc("KH", date(2026, 1, 10))).unwrap();
    let kh = authority("KH");
    let signed = String::from_utf8(sign(doc.as_bytes(), &kh.signing)).unwrap();
    let country = "<cac:IssuingCountry><cbc:IdentificationCode>KH</cbc:IdentificationCode>";
    let issue = "<cbc:IssueDate>2026-01-10</cbc:IssueDate>";
    assert!(doc.contains(country) && doc.contains(issue));
    let variants: Vec<(String, &str)> = vec![
        (doc.clone(), "KH"),
        (signed.clone(), "KH"),
        (doc.replace(country, &country.replace(">KH<", ">T<!-- K -->H<")), "TH"),
        (doc.replace(country, &country.replace(">KH<", "><![CDATA[T]]>&#x48;<")), "TH"),
        (doc.replace(country, &country.replace(">KH<", ">&#75;&#72;<?pi x?><")), "KH"),
        // The default namespace bound to CBC: a prefix-less element is the one we want.
        (
            doc.replace(
                country,
                &country
                    .replace("<cbc:IdentificationCode>", "<IdentificationCode xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">")
                    .replace("</cbc:IdentificationCode>", "</IdentificationCode>"),
            ),
            "KH",
        ),
        (doc.replace(issue, &format!("<cbc:Note a='>' b=\"&lt;\"/>{issue}")), "KH"),
        (doc.replace(issue, "<cbc:IssueDate>2026-01-1&#48;</cbc:IssueDate>"), "KH"),
        (doc.replace(issue, "<cbc:IssueDate>2026-01-10+07:00</cbc:IssueDate>"), "KH"),
        (doc.replace(issue, "<cbc:IssueDate>2026-01-10Z</cbc:IssueDate>"), "KH"),
    ];
    for (i, (v, want)) in variants.iter().enumerate() {
        let f = xml_facts(v.as_bytes()).unwrap_or_else(|e| panic!("variant {i}: {e}"));
        assert_eq!((f.issuing_country.as_str(), f.signing_date), (*want, date(2026, 1, 10)), "variant {i}");
    }
}

#[test]
fn signer_key_cache_is_keyed_by_certificate_bytes() {
    let kh = authority("KH");
    // Same country and authority name: a certificate with the same subject, another key.
    let twin = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let doc = xml_doc("KH", date(2026, 1, 10));
    let signed = sign(&doc, &kh.signing);
    for _ in 0..2 {
        assert!(v.verify(&signed, at(2026, 1, 12)).unwrap().is_valid());
    }
    assert_eq!(v.cached_keys(), 1);
    // The twin's certificate is other DER: not a cache hit, and not trusted.
    let by_twin = sign(&doc, &twin.signing);
    assert_invalid(v.verify(&by_twin, at(2026, 1, 12)).unwrap(), InvalidReason::UntrustedIssuer);
    assert_eq!(v.cached_keys(), 2);
    // The trusted certificate carried with the twin's signature: its cached key does not verify it.
    let b64 = |d: &[u8]| trustlist::encode_cert(d);
    let text = String::from_utf8(by_twin).unwrap();
    let swapped = text.replace(&b64(&twin.signing.cert_der), &b64(&kh.signing.cert_der));
    assert_ne!(swapped, text);
    assert_invalid(v.verify(swapped.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::BadSignature);
}

#[test]
fn tampered_xml_fails_after_a_cached_success() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let signed = sign(&xml_doc("KH", date(2026, 1, 10)), &kh.signing);
    assert!(v.verify(&signed, at(2026, 1, 12)).unwrap().is_valid());
    assert_eq!((v.cached_keys(), v.cached_chains()), (1, 1));
    let text = String::from_utf8(signed.clone()).unwrap();
    let changed = text.replacen("<cbc:Name>", "<cbc:Name>X", 1);
    assert_invalid(v.verify(changed.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::Tampered);
    // The facts are read from the signed DOM: a changed issue date is tampering too.
    let changed = text.replacen("<cbc:IssueDate>2026-01-10<", "<cbc:IssueDate>2026-01-11<", 1);
    assert_ne!(changed, text);
    assert_invalid(v.verify(changed.as_bytes(), at(2026, 1, 12)).unwrap(), InvalidReason::Tampered);
    let start = text.find("SignatureValue>").unwrap() + "SignatureValue>".len();
    let mut bad_sig = signed.clone();
    bad_sig[start + 4] = if bad_sig[start + 4] == b'A' { b'B' } else { b'A' };
    assert_invalid(v.verify(&bad_sig, at(2026, 1, 12)).unwrap(), InvalidReason::BadSignature);
    assert!(v.verify(&signed, at(2026, 1, 12)).unwrap().is_valid());
}

/// Issue 13: `cbc:IssueDate` with a time zone (`2026-01-10+07:00`, valid `xsd:date`) was
/// refused as `DOCUMENT_INCOMPLETE` although xmlsec1 verified the signature. The signing day is
/// the calendar date written, on the streaming path and the DOM path alike; a malformed zone is
/// still `DOCUMENT_INCOMPLETE`, naming the date.
#[test]
fn issue_dates_with_a_time_zone_are_valid_on_both_paths() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let doc = String::from_utf8(xml_doc("KH", date(2026, 1, 10))).unwrap();
    let issue = "<cbc:IssueDate>2026-01-10</cbc:IssueDate>";
    assert!(doc.contains(issue));
    for zone in ["+07:00", "Z", "-10:00", "+14:00"] {
        let d = doc.replace(issue, &format!("<cbc:IssueDate>2026-01-10{zone}</cbc:IssueDate>"));
        let signed = sign(d.as_bytes(), &kh.signing);
        let fast = v.verify_xml(&signed, at(2026, 1, 12)).unwrap();
        let dom = v.verify_xml_reference(&signed, at(2026, 1, 12)).unwrap();
        assert_eq!(fast, dom, "{zone}");
        assert!(matches!(fast, Verdict::Valid(_)), "{zone}: {fast:?}");
        let facts = originlink_trust::document::xml_facts(d.as_bytes()).unwrap();
        assert_eq!(facts.signing_date, date(2026, 1, 10), "{zone}");
        // The signing day is the date written, whatever the zone: two days before it, it is
        // in the future.
        assert_invalid(v.verify(&signed, at(2026, 1, 8)).unwrap(), InvalidReason::SigningTimeInFuture);
    }
    let d = doc.replace(issue, "<cbc:IssueDate>2026-01-10+07:60</cbc:IssueDate>");
    let signed = sign(d.as_bytes(), &kh.signing);
    match v.verify(&signed, at(2026, 1, 12)).unwrap() {
        Verdict::Invalid { reason: InvalidReason::DocumentIncomplete, detail } => {
            assert!(detail.contains("2026-01-10+07:60"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 13: `"version": 1.0` is the same JSON number as `1` (and the same signed content:
/// RFC 8785 writes both as `1`), so a signed edi3 certificate carrying it is valid.
#[test]
fn json_integers_with_a_zero_fraction_are_valid() {
    let kh = authority("KH");
    let v = verifier(&list(vec![member("KH", &kh)]));
    let doc = String::from_utf8(json_doc("KH", date(2026, 1, 10))).unwrap();
    assert!(doc.contains("\"version\": 1,"), "{doc}");
    let d =
        doc.replacen("\"version\": 1,", "\"version\": 1.0,", 1).replace("\"count\": 10,", "\"count\": 10.0,");
    let signed = sign(d.as_bytes(), &kh.signing);
    assert!(matches!(v.verify(&signed, at(2026, 1, 12)).unwrap(), Verdict::Valid(_)));
    // A real fraction is a definite finding about the document, naming the integer.
    let d = doc.replacen("\"version\": 1,", "\"version\": 1.5,", 1);
    let signed = sign(d.as_bytes(), &kh.signing);
    match v.verify(&signed, at(2026, 1, 12)).unwrap() {
        Verdict::Invalid { reason: InvalidReason::DocumentIncomplete, detail } => {
            assert!(detail.contains("NOT_AN_INTEGER"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}
