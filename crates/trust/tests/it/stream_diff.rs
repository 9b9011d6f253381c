//! `Verifier::verify_xml` (streaming fast path, deferring to the DOM when unsure) against
//! `Verifier::verify_xml_reference` (DOM only): identical verdicts, reason codes and details,
//! on sample certificates, fact variants, every single-byte flip and certificate swaps.

use chrono::{DateTime, Utc};
use originlink_model::{Agreement, sample};
use originlink_trust::{SignedHeader, Verdict, Verifier};

use crate::support::*;

fn both(fast: &Verifier, reference: &Verifier, xml: &[u8], now: DateTime<Utc>) -> Option<Verdict> {
    let f = fast.verify_xml(xml, now);
    let r = reference.verify_xml_reference(xml, now);
    assert_eq!(
        f,
        r,
        "fast path and DOM path disagree on {:?}",
        String::from_utf8_lossy(&xml[..xml.len().min(200)])
    );
    // The header the receiving node takes from the same pass: the same verdict, and, when
    // there is one, what reading the whole document gives.
    let (hv, header) = match fast.verify_with_header(xml, now) {
        Ok((v, h)) => (Ok(v), h),
        Err(u) => (Err(u), None),
    };
    assert_eq!(hv, fast.verify(xml, now), "verify_with_header disagrees with verify");
    if let Some(h) = header {
        let (_, c) = originlink_formats::read(xml, &originlink_formats::Limits::default())
            .expect("a certificate with a header reads in full");
        let read = SignedHeader {
            number: c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
            version: c.version,
            exporting_country: c.exporting_country,
            importing_country: c.importing_country,
            exporter: c.exporter.name,
        };
        assert_eq!(h, read);
        HEADERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    f.ok()
}

/// How many headers [`both`] compared (each test checks its own went through).
static HEADERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn code(v: Option<Verdict>) -> &'static str {
    v.map_or("UNREADABLE", |v| v.code())
}

#[test]
fn sample_certificates_get_the_same_verdicts() {
    let kh = authority("KH");
    let th = authority("TH");
    let trust = list(vec![member("KH", &kh), member("TH", &th)]);
    let (fast, reference) = (verifier(&trust), verifier(&trust));
    let mut n = 0;
    for agreement in ["ATIGA", "RCEP"] {
        for from in ["KH", "TH"] {
            for items in [1, 2, 5] {
                for seq in 0..2 {
                    let c = sample::sample(
                        Agreement::parse(agreement).unwrap(),
                        cc(from),
                        cc("VN"),
                        date(2026, 1, 10),
                        items,
                        seq,
                    );
                    for (doc, pretty) in [
                        (originlink_formats::xml::write(&c), false),
                        (originlink_formats::xml::write_pretty(&c), true),
                    ] {
                        let signed = sign(doc.as_bytes(), &kh.signing);
                        let v = both(&fast, &reference, &signed, at(2026, 1, 12));
                        let expected = if from == "KH" { "VALID" } else { "COUNTRY_MISMATCH" };
                        assert_eq!(code(v), expected, "{agreement} {from} {items} {seq} pretty={pretty}");
                        // Too early, and signed by another country's key.
                        both(&fast, &reference, &signed, at(2025, 12, 1));
                        both(&fast, &reference, &sign(doc.as_bytes(), &th.signing), at(2026, 1, 12));
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 48);
    assert!(HEADERS.load(std::sync::atomic::Ordering::Relaxed) >= 24, "the valid ones had their header read");
}

#[test]
fn fact_variants_get_the_same_verdicts() {
    let doc = String::from_utf8(xml_doc("KH", date(2026, 1, 10))).unwrap();
    let kh = authority("KH");
    let trust = list(vec![member("KH", &kh), member("TH", &authority("TH"))]);
    let (fast, reference) = (verifier(&trust), verifier(&trust));
    let country = "<cac:IssuingCountry><cbc:IdentificationCode>KH</cbc:IdentificationCode>";
    let issue = "<cbc:IssueDate>2026-01-10</cbc:IssueDate>";
    assert!(doc.contains(country) && doc.contains(issue));
    let cbc = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
    let variants = [
        doc.clone(),
        doc.replace(country, &country.replace(">KH<", ">T<!-- K -->H<")),
        doc.replace(country, &country.replace(">KH<", "><![CDATA[T]]>&#x48;<")),
        doc.replace(country, &country.replace(">KH<", ">&#75;&#72;<")),
        doc.replace(country, &country.replace(">KH<", "> KH\n<")),
        doc.replace(country, &country.replace(">KH<", ">kh<")),
        doc.replace(country, &country.replace(">KH<", ">XX<")),
        doc.replace(country, &country.replace(">KH<", "><")),
        doc.replace(country, &country.replace(">KH<", "><x>KH</x><")),
        doc.replace(country, &country.replace(">KH<", ">K<x/>H<")),
        doc.replace(country, &country.replace("cbc:IdentificationCode", "cac:IdentificationCode")),
        doc.replace(
            country,
            &country.replace("<cbc:IdentificationCode>", "<cbc:IdentificationCode xmlns:cbc=\"urn:x\">"),
        ),
        doc.replace(
            country,
            &country
                .replace("<cbc:IdentificationCode>", &format!("<IdentificationCode xmlns=\"{cbc}\">"))
                .replace("</cbc:IdentificationCode>", "</IdentificationCode>"),
        ),
        doc.replace(issue, &format!("{issue}{issue}")),
        doc.replace(issue, ""),
        doc.replace(issue, "<!-- <cbc:IssueDate>2026-01-11</cbc:IssueDate> -->"),
        doc.replace(issue, &format!("<cbc:Note a='>' b=\"&lt;\"/>{issue}")),
        doc.replace(issue, "<cbc:IssueDate>2026-01-1&#48;</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-02-30</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10+07:00</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10Z</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate> 2026-01-10-05:00\n</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10+07:0&#48;</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10<!-- z -->+07:00</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10+15:00</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10+0700</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-02-30+07:00</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2027-01-10</cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate>2026-01-10<!-- x --></cbc:IssueDate>"),
        doc.replace(issue, "<cbc:IssueDate><cbc:IssueDate>2026-01-10</cbc:IssueDate></cbc:IssueDate>"),
        doc.replace(
            country,
            &format!("{country}</cac:IssuingCountry><cac:IssuingCountry>{}", &country[21..]),
        ),
        doc.replacen("cac:IssuingCountry>", "cac:IssuingCountryX>", 2),
        doc.replacen("cac:CertificateOfOriginApplication>", "cac:Other>", 2),
    ];
    let mut seen = std::collections::BTreeMap::new();
    for (i, v) in variants.iter().enumerate() {
        // Variants that are no longer well-formed cannot be signed.
        let Ok(signed) =
            originlink_trust::sign(v.as_bytes(), &kh.signing.key, std::slice::from_ref(&kh.signing.cert_der))
        else {
            eprintln!("variant {i} cannot be signed");
            continue;
        };
        *seen.entry(code(both(&fast, &reference, &signed, at(2026, 1, 12)))).or_insert(0) += 1;
    }
    eprintln!("{seen:?}");
    assert!(
        seen.contains_key("VALID")
            && seen.contains_key("DOCUMENT_INCOMPLETE")
            && seen.contains_key("COUNTRY_MISMATCH")
    );
}

#[test]
fn every_single_byte_flip_gets_the_same_verdict() {
    let kh = authority("KH");
    let trust = list(vec![member("KH", &kh)]);
    let (fast, reference) = (verifier(&trust), verifier(&trust));
    let c = sample::sample(Agreement::parse("ATIGA").unwrap(), cc("KH"), cc("TH"), date(2026, 1, 10), 1, 0);
    let signed = sign(originlink_formats::xml::write(&c).as_bytes(), &kh.signing);
    let root = signed.windows(20).position(|w| w == b"<CertificateOfOrigin").unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..signed.len() {
        let mut copy = signed.clone();
        copy[i] ^= 0x01;
        let c = code(both(&fast, &reference, &copy, at(2026, 1, 12)));
        // Only the XML declaration is not signed.
        assert!(c != "VALID" || i < root, "flip at {i} is still valid");
        *seen.entry(c).or_insert(0) += 1;
    }
    eprintln!("{} flips: {seen:?}", signed.len());
    assert!(seen.get("TAMPERED").copied().unwrap_or(0) > 1000, "{seen:?}");
}

#[test]
fn certificate_swaps_and_rsa_get_the_same_verdicts() {
    use base64::Engine as _;
    let kh = authority("KH");
    let kh2 = authority("KH");
    let rsa =
        originlink_trust::keys::init_authority("KH", "Ministry of Commerce KH", day0(), Some(rsa_key(2048)))
            .unwrap();
    let trust = list(vec![member("KH", &kh)]);
    let (fast, reference) = (verifier(&trust), verifier(&trust));
    let doc = xml_doc("KH", date(2026, 1, 10));
    for signer in [&kh, &kh2, &rsa] {
        let signed = String::from_utf8(sign(&doc, &signer.signing)).unwrap();
        both(&fast, &reference, signed.as_bytes(), at(2026, 1, 12));
        for other in [&kh, &kh2, &rsa] {
            let start = signed.find("<ds:X509Certificate>").unwrap() + "<ds:X509Certificate>".len();
            let end = signed.find("</ds:X509Certificate>").unwrap();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&other.signing.cert_der);
            let swapped = format!("{}{}{}", &signed[..start], b64, &signed[end..]);
            let v = both(&fast, &reference, swapped.as_bytes(), at(2026, 1, 12));
            if !std::ptr::eq(signer, other) {
                assert_eq!(code(v), "BAD_SIGNATURE");
            }
        }
    }
}
