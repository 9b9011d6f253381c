//! The streaming fast path (`verify_enveloped_fast`) against the DOM path
//! (`verify_enveloped_with`, the reference): the same verdicts and codes, the same canonical
//! bytes, on every corpus the other modules use (their `common::verify` goes through
//! [`verify_both`]), every single-byte change of signed documents, certificate swaps,
//! hand-made unusual documents and generated certificates.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use originlink_xmldsig::testing::{dom_canonical, fast_canonical};
use originlink_xmldsig::{
    Error, FastVerify, KeyCache, Limits, Placement, Verified, verify_enveloped, verify_enveloped_fast,
    verify_enveloped_with,
};
use proptest::prelude::*;

use crate::common::{
    TestKey, data_dir, ec_key, ec_key_2, generic_doc, rsa_key, six_kb_certificate, testdata, ubl_example,
};

/// How often the fast path answered on its own (valid, rejected) or deferred, over all tests.
static DECIDED: AtomicUsize = AtomicUsize::new(0);
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// What the fast path said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    Valid,
    Rejected(&'static str),
    Unsure,
}

fn compare(fast: FastVerify, dom: &Result<Verified, Error>, xml: &[u8]) -> Fast {
    let show = || String::from_utf8_lossy(&xml[..xml.len().min(300)]).into_owned();
    match fast {
        FastVerify::Verified(v, _) => {
            DECIDED.fetch_add(1, Ordering::Relaxed);
            assert_eq!(dom.as_ref().ok(), Some(&v), "fast path says valid, DOM says {dom:?}: {}", show());
            Fast::Valid
        }
        FastVerify::Rejected(e) => {
            DECIDED.fetch_add(1, Ordering::Relaxed);
            assert_eq!(dom.as_ref().err(), Some(&e), "fast path says {e:?}, DOM says {dom:?}: {}", show());
            Fast::Rejected(e.code())
        }
        FastVerify::Unsure => {
            DEFERRED.fetch_add(1, Ordering::Relaxed);
            Fast::Unsure
        }
    }
}

/// Runs the fast path, the DOM path and `verify_enveloped` (which combines them), asserts
/// they agree, and returns the verdict.
pub fn verify_both(xml: &[u8], limits: &Limits) -> Result<Verified, Error> {
    verify_both_fast(xml, limits).0
}

/// [`verify_both`], also saying what the fast path did.
pub fn verify_both_fast(xml: &[u8], limits: &Limits) -> (Result<Verified, Error>, Fast) {
    let dom = verify_enveloped_with(xml, limits, None, |_| ()).map(|(v, ())| v);
    let fast = compare(verify_enveloped_fast(xml, limits, None, &[]), &dom, xml);
    assert_eq!(verify_enveloped(xml, limits), dom);
    // Whatever the fast path accepts, its canonical bytes are the DOM's.
    if fast != Fast::Unsure && limits == &Limits::default() {
        assert_canonical_agrees(xml);
    }
    (dom, fast)
}

/// [`verify_both`] with a key cache shared by both paths.
pub fn verify_both_cached(xml: &[u8], limits: &Limits, cache: &KeyCache) -> Result<Verified, Error> {
    let dom = verify_enveloped_with(xml, limits, Some(cache), |_| ()).map(|(v, ())| v);
    compare(verify_enveloped_fast(xml, limits, Some(cache), &[]), &dom, xml);
    dom
}

/// When the fast path produces canonical bytes, the DOM produces the same (and accepts the
/// document). Returns whether the fast path answered.
fn assert_canonical_agrees(xml: &[u8]) -> bool {
    let Some(fast) = fast_canonical(xml) else { return false };
    let dom = dom_canonical(xml);
    let Ok(dom) = dom else {
        panic!("fast path canonicalized what the DOM refuses ({dom:?}): {}", String::from_utf8_lossy(xml))
    };
    assert!(fast.0 == dom.0, "document C14N differs:\nfast {}\ndom  {}", lossy(&fast.0), lossy(&dom.0));
    assert!(
        fast.1 == dom.1,
        "SignedInfo C14N differs: {:?} vs {:?}",
        fast.1.as_deref().map(lossy),
        dom.1.as_deref().map(lossy)
    );
    true
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

/// Every XML file of the C14N corpus, the xmlsec vectors and the UBL examples, plus our own
/// signed documents.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut paths = Vec::new();
    files_under(&data_dir().join("c14n"), &mut paths);
    files_under(&testdata().join("xmldsig-vectors"), &mut paths);
    files_under(&testdata().join("ubl-2.4/examples"), &mut paths);
    paths.sort();
    let mut docs: Vec<(String, Vec<u8>)> =
        paths.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect();
    for (name, doc) in [("ubl", ubl_example()), ("six-kb", six_kb_certificate()), ("generic", generic_doc())]
    {
        for (kname, key) in [("ec", ec_key()), ("rsa", rsa_key())] {
            for placement in [Placement::UblExtension, Placement::RootChild] {
                docs.push((format!("{name}-{kname}-{placement:?}"), key.sign(&doc, placement)));
            }
        }
    }
    docs
}

#[test]
fn canonical_bytes_are_identical_to_the_dom_on_the_corpus() {
    let docs = corpus();
    let mut answered = 0;
    for (name, xml) in &docs {
        if assert_canonical_agrees(xml) {
            answered += 1;
        }
        // The same documents without their XML declaration and prolog comments.
        if let Ok(doc) = roxmltree::Document::parse(std::str::from_utf8(xml).unwrap_or("")) {
            let root = doc.root_element().range();
            let body = &xml[root.start..root.end];
            if assert_canonical_agrees(body) {
                answered += 1;
            }
        } else {
            assert!(fast_canonical(xml).is_none(), "{name}");
        }
    }
    eprintln!("canonical bytes compared on {answered} of {} documents (and bodies)", docs.len() * 2);
    // The c14n corpus has 61 documents written to exercise namespaces, attributes, escaping
    // and whitespace; most of them stay within the fast path's subset.
    assert!(answered >= 60, "only {answered} documents were canonicalized by the fast path");
}

#[test]
fn every_corpus_document_gets_the_same_verdict() {
    for (name, xml) in corpus() {
        let (dom, fast) = verify_both_fast(&xml, &Limits::default());
        if name.starts_with("ubl-") || name.starts_with("six-kb-") {
            assert_eq!(fast, Fast::Valid, "{name}: our own signed documents must take the fast path");
            assert!(dom.is_ok());
        }
    }
}

fn flip_every_byte(signed: &[u8], masks: &[u8]) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..signed.len() {
        for &mask in masks {
            let mut copy = signed.to_vec();
            copy[i] ^= mask;
            let (dom, fast) = verify_both_fast(&copy, &Limits::default());
            let key = format!("{} / {:?}", dom.as_ref().map_or_else(|e| e.code(), |_| "VALID"), fast);
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn every_single_byte_flip_gets_the_same_verdict_ubl_ecdsa() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    let seen = flip_every_byte(&signed, &[0x01, 0x20]);
    eprintln!("{} bytes flipped twice: {seen:?}", signed.len());
    let fast_tampered = seen.get("TAMPERED / Rejected(\"TAMPERED\")").copied().unwrap_or(0);
    assert!(fast_tampered > 1000, "{seen:?}");
}

#[test]
fn every_single_byte_flip_gets_the_same_verdict_generic_rsa_root_child() {
    let doc = lossy(&generic_doc()).replacen("<?process me?>", "", 1);
    let signed = rsa_key().sign(doc.as_bytes(), Placement::RootChild);
    let seen = flip_every_byte(&signed, &[0x01]);
    eprintln!("{} bytes flipped: {seen:?}", signed.len());
    assert!(seen.keys().any(|k| k.ends_with("Rejected(\"BAD_SIGNATURE\")")), "{seen:?}");
}

#[test]
fn byte_substitutions_in_the_signed_certificate_of_origin_get_the_same_verdict() {
    let signed = ec_key().sign(&six_kb_certificate(), Placement::UblExtension);
    let specials = [b'<', b'>', b'&', b'"', b'\'', b'/', b' ', b'\r', b'\t', b':', b'=', b'#', b';', 0xC3];
    for i in (0..signed.len()).step_by(3) {
        let special = specials[i % specials.len()];
        let mut copy = signed.clone();
        copy[i] = special;
        verify_both(&copy, &Limits::default()).ok();
        let mut cut = signed.clone();
        cut.remove(i);
        verify_both(&cut, &Limits::default()).ok();
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
fn certificate_swaps_get_the_same_verdict() {
    let keys: [&TestKey; 3] = [ec_key(), ec_key_2(), rsa_key()];
    for signer in keys {
        let signed = signer.sign(&ubl_example(), Placement::UblExtension);
        for other in keys {
            let swapped = swap_certificate(&signed, &other.cert_der);
            let (r, fast) = verify_both_fast(&swapped, &Limits::default());
            if std::ptr::eq(signer, other) {
                assert!(r.is_ok());
            } else {
                assert_eq!(r.unwrap_err().code(), "BAD_SIGNATURE");
                assert_eq!(fast, Fast::Rejected("BAD_SIGNATURE"));
            }
        }
        // Signer plus another certificate, both orders; a garbage certificate.
        let text = lossy(&signed);
        let cert =
            text.split("<ds:X509Certificate>").nth(1).unwrap().split("</ds:").next().unwrap().to_owned();
        let other = lossy(&swap_certificate(&signed, &ec_key_2().cert_der));
        let other_cert = other.split("<ds:X509Certificate>").nth(1).unwrap().split("</ds:").next().unwrap();
        let two = text.replacen(
            &format!("<ds:X509Certificate>{cert}</ds:X509Certificate>"),
            &format!("<ds:X509Certificate>{other_cert}</ds:X509Certificate><ds:X509Certificate>{cert}</ds:X509Certificate>"),
            1,
        );
        let v = verify_both(two.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(v.other_certificates_der.len(), 1);
        verify_both(text.replacen(&cert, "AAAA", 1).as_bytes(), &Limits::default()).unwrap_err();
        verify_both(text.replacen(&cert, "", 1).as_bytes(), &Limits::default()).unwrap_err();
    }
}

/// Hand-made variations of a signed document: each is either handled by the fast path with
/// the DOM's verdict, or deferred to the DOM.
#[test]
fn unusual_documents_get_the_same_verdict() {
    let ubl = lossy(&ec_key().sign(&ubl_example(), Placement::UblExtension));
    let root_child = lossy(&ec_key().sign(&six_kb_certificate(), Placement::RootChild));
    let sig = |s: &str| {
        let a = s.find("<ds:Signature").unwrap();
        let b = s.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        s[a..b].to_owned()
    };
    let mut variants: Vec<String> = Vec::new();
    for signed in [&ubl, &root_child] {
        let s = signed.as_str();
        let body_start = s.find("<CertificateOfOrigin").unwrap();
        let mut v = |x: String| variants.push(x);
        // Prolog and epilog.
        v(s.replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "", 1));
        v(s.replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1));
        v(s.replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "<?xml version='1.0'?>", 1));
        v(format!("\u{feff}{s}"));
        v(format!("{s}<!-- after -->\n"));
        v(format!("{s}<?pi after?>"));
        v(format!("{s}<again/>"));
        v(format!("{s}text"));
        v(format!("<!-- <!DOCTYPE x> -->{}", &s[body_start..]));
        v(format!("<!DOCTYPE CertificateOfOrigin>{}", &s[body_start..]));
        v(s.replace('\n', "\r\n"));
        // Comments, PIs, CDATA, references in the content.
        v(s.replacen("</cbc:IssueDate>", "<!-- c --></cbc:IssueDate>", 1));
        v(s.replacen("</cbc:IssueDate>", "<?pi x?></cbc:IssueDate>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate><![CDATA[]]>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate><![CDATA[<&>]]>", 1));
        v(s.replacen("<cbc:IssueDate>2", "<cbc:IssueDate>&#50;", 1));
        v(s.replacen("<cbc:IssueDate>2", "<cbc:IssueDate>&#x32;", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>&amp;&lt;&gt;&quot;&apos;&#xD;&#9;", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>&unknown;", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>&#0;", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>]]>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>\u{1}", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>\u{ffff}", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate >", 1));
        v(s.replacen("</cbc:IssueDate>", "</cbc:IssueDate >", 1));
        v(s.replacen("</cbc:IssueDate>", "</cbc:IssueDat>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"1\" b='2'>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"1\"b='2'>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"1\" a='2'>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"x&amp;&#9;&#10;&#13;&lt;'\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"x\ty\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a='\"'>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate a=\"<\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xml:lang=\"en\" xml:id=\"d\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate Id=\"x\"><x Id=\"x\"/>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate cbc:b=\"1\" c:b=\"2\" xmlns:c=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">", 1));
        v(s.replacen(
            "<cbc:IssueDate>",
            "<cbc:IssueDate xmlns:p=\"urn:p\" p:a=\"1\" a=\"2\" xmlns:q=\"urn:a\" q:z=\"3\">",
            1,
        ));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate u:a=\"1\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<u:IssueDate>", 1).replacen(
            "</cbc:IssueDate>",
            "</u:IssueDate>",
            1,
        ));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns=\"\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns:cbc=\"urn:other\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns:cbc=\"\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns:x=\"urn:a&amp;b\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns:x='urn:a\"b' x:a=\"1\">", 1));
        v(s.replacen(
            "<cbc:IssueDate>",
            "<cbc:IssueDate xmlns:xml=\"http://www.w3.org/XML/1998/namespace\">",
            1,
        ));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate xmlns:p=\"urn:p\" xmlns:p=\"urn:p\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate p:xmlns=\"urn:p\">", 1));
        v(s.replacen("<cbc:IssueDate>", "<Other xmlns=\"urn:default\"><Inner/></Other><cbc:IssueDate>", 1));
        v(s.replacen(
            "<cbc:IssueDate>",
            "<Other xmlns=\"urn:default\"><Inner xmlns=\"\"/></Other><cbc:IssueDate>",
            1,
        ));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate><é/>", 1));
        v(s.replacen("<cbc:IssueDate>", "<cbc:IssueDate>é中文", 1));
        v(s.replacen("<CertificateOfOrigin ", "<CertificateOfOrigin Id=\"root\" ", 1).replacen(
            "URI=\"\"",
            "URI=\"#root\"",
            1,
        ));
        v(s.replacen("<CertificateOfOrigin ", "<CertificateOfOrigin Id=\"root\" ", 1).replacen(
            "URI=\"\"",
            "URI=\"#other\"",
            1,
        ));
        v(s.replacen("URI=\"\"", "URI=\"#xpointer(/)\"", 1));
        v(s.replacen("URI=\"\"", "", 1));
        // The Signature itself.
        let g = sig(s);
        v(s.replacen(&g, "", 1));
        v(s.replacen(&g, &format!("{g}{g}"), 1));
        v(s.replacen("<ds:SignedInfo>", "<ds:SignedInfo><!-- c -->", 1));
        v(s.replacen("<ds:SignatureValue>", "<ds:SignatureValue><![CDATA[]]>", 1));
        v(s.replacen("<ds:SignedInfo>", "<ds:SignedInfo>\n  ", 1));
        v(s.replacen("<ds:SignedInfo>", "<ds:SignedInfo>x", 1));
        v(s.replacen("<ds:SignedInfo>", "<ds:SignedInfo Id=\"si\">", 1));
        v(s.replacen("<ds:SignedInfo>", "<ds:SignedInfo xmlns:z=\"urn:z\" z:a=\"1\">", 1));
        v(s.replacen("<ds:Signature ", "<ds:Signature Id=\"sig\" ", 1));
        v(s.replacen("<ds:SignatureValue>", "<ds:SignatureValue>\n", 1));
        v(s.replacen("<ds:DigestValue>", "<ds:DigestValue> ", 1));
        v(s.replacen("<ds:DigestValue>", "<ds:DigestValue>&#65;", 1));
        v(s.replacen("</ds:KeyInfo>", "<ds:KeyName>k</ds:KeyName></ds:KeyInfo>", 1));
        v(s.replacen("</ds:Signature>", "<ds:Object/></ds:Signature>", 1));
        v(s.replacen("<ds:X509Data>", "<ds:X509Data><ds:X509SubjectName>CN=x</ds:X509SubjectName>", 1));
        v(s.replacen("</ds:KeyInfo>", "<ds:X509Data/></ds:KeyInfo>", 1));
        v(s.replacen("<ds:KeyInfo>", "<ds:KeyInfo>\n", 1));
        v(s.replacen("<ds:DigestMethod Algorithm", "<ds:DigestMethod Id=\"dm\" Algorithm", 1));
        v(s.replacen("<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>", "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"\"/></ds:CanonicalizationMethod>", 1));
        v(s.replacen("Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>", "Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"cbc\"/></ds:Transform></ds:Transforms>", 1));
        v(s.replacen(
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
            "",
            1,
        ));
        v(s.replacen(
            "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>",
            "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>",
            1,
        ));
        v(s.replacen("ds:", "dsig:", usize::MAX).replacen("xmlns:ds=", "xmlns:dsig=", 1));
        v(s.replacen(
            "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
            "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">",
            1,
        )
        .replace("ds:", ""));
    }
    // The UBL wrappers.
    variants.push(ubl.replacen("<sac:SignatureInformation>", "<sac:SignatureInformation><x/>", 1));
    variants.push(ubl.replacen("sac:SignatureInformation", "sac:Other", 2));
    variants.push(ubl.replacen("<ext:ExtensionContent>", "<ext:ExtensionContent><!-- c -->", 1));
    let mut valid = 0;
    let mut fast_answers = 0;
    for (i, x) in variants.iter().enumerate() {
        let (r, fast) = verify_both_fast(x.as_bytes(), &Limits::default());
        valid += usize::from(r.is_ok());
        fast_answers += usize::from(fast != Fast::Unsure);
        let _ = i;
    }
    eprintln!("{} variants: {valid} valid, {fast_answers} answered by the fast path", variants.len());
    assert!(fast_answers > 20);
}

#[test]
fn limits_are_left_to_the_dom_path_near_them() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    for limits in [
        Limits { max_bytes: signed.len() - 1, ..Limits::default() },
        Limits { max_bytes: signed.len(), ..Limits::default() },
        Limits { max_depth: 4, ..Limits::default() },
        Limits { max_depth: 7, ..Limits::default() },
        Limits { max_depth: 8, ..Limits::default() },
        Limits { max_depth: 16, ..Limits::default() },
        Limits { max_nodes: 50, ..Limits::default() },
        Limits { max_nodes: 200, ..Limits::default() },
    ] {
        verify_both(&signed, &limits).ok();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Generated certificates (every optional field, XML-special and non-ASCII text), compact
    /// and indented, both placements and algorithms, then one byte changed anywhere.
    #[test]
    fn generated_certificates_get_the_same_verdict(
        cert in originlink_model::testkit::certificate(),
        pretty in any::<bool>(),
        rsa in any::<bool>(),
        root_child in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let xml = if pretty {
            originlink_formats::xml::write_pretty(&cert)
        } else {
            originlink_formats::xml::write(&cert)
        };
        let key = if rsa { rsa_key() } else { ec_key() };
        let placement = if root_child { Placement::RootChild } else { Placement::UblExtension };
        let signed = key.sign(xml.as_bytes(), placement);
        let (r, fast) = verify_both_fast(&signed, &Limits::default());
        prop_assert!(r.is_ok());
        prop_assert_eq!(fast, Fast::Valid);
        let mut changed = signed.clone();
        let i = at.index(changed.len());
        changed[i] = byte;
        verify_both(&changed, &Limits::default()).ok();
    }
}
