//! UBL 2.4 XML: schema validity (xmllint), lossless round trips, the hostile-input corpus
//! (`testdata/bad/*.xml`) and path translation.

use std::path::{Path, PathBuf};
use std::process::Command;

use originlink_formats::json;
use originlink_formats::{Limits, xml};
use originlink_model::{
    Agreement, Certificate, CertificateNumber, CertificateRef, CountryCode, Exhibition, Flags, NaiveDate,
    OfficialUse, Problem, TransportMode, sample, testkit, validate,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const SHIP: &str = "/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn xsd() -> PathBuf {
    repo().join("testdata/ubl-2.4/maindoc/UBL-CertificateOfOrigin-2.4.xsd")
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

fn atiga() -> Certificate {
    sample::sample(Agreement::Atiga, cc("KH"), cc("TH"), day(), 5, 0)
}

fn rcep() -> Certificate {
    sample::sample(Agreement::Rcep, cc("CN"), cc("JP"), day(), 5, 0)
}

/// A fresh directory under the target dir.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xml-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Validates files with one xmllint run; panics with xmllint's report unless all validate.
fn xmllint(files: &[PathBuf]) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(xsd())
        .args(files)
        .output()
        .expect("xmllint is installed (libxml2-utils)");
    let report = String::from_utf8_lossy(&out.stderr);
    let validated = report.lines().filter(|l| l.ends_with(" validates")).count();
    assert!(
        out.status.success() && validated == files.len(),
        "xmllint: {validated}/{} valid\n{report}",
        files.len()
    );
}

fn read_ok(s: &str) -> Certificate {
    match xml::read(s.as_bytes(), &Limits::default()) {
        Ok(c) => c,
        Err(p) => panic!("{p:#?}\n{s}"),
    }
}

fn read_err(bytes: &[u8]) -> Vec<Problem> {
    xml::read(bytes, &Limits::default()).expect_err("refused")
}

fn has(problems: &[Problem], code: &str, path: &str) {
    assert!(
        problems.iter().any(|p| p.code == code && p.path == path),
        "no {code} at {path} in {problems:#?}"
    );
}

#[test]
fn examples_of_both_agreements_are_schema_valid() {
    let dir = out_dir("examples");
    let mut unissued = rcep();
    unissued.number = None;
    unissued.certification = None;
    let mut decl = rcep();
    decl.kind = originlink_model::ProofKind::ApprovedExporterDeclaration;
    decl.approved_exporter = Some("AE-CN-00042".into());
    decl.flags.de_minimis = true;
    decl.remarks = Some("Goods <fragile> & \"dry\"".into());
    let mut everything = atiga();
    everything.version = 2;
    everything.replaces = Some(CertificateRef {
        country: cc("KH"),
        number: CertificateNumber::parse("KH-2025-000009").unwrap(),
    });
    everything.official_use =
        Some(OfficialUse { preference_given: false, reason: Some("Criterion not met\r\nsee letter".into()) });
    everything.flags = Flags {
        third_party_invoicing: Some(rcep().exporter),
        exhibition: Some(Exhibition { name: "Thaifex".into(), place: "Bangkok, IMPACT Hall 5".into() }),
        back_to_back: Some(CertificateRef {
            country: cc("VN"),
            number: CertificateNumber::parse("VN/2026/77").unwrap(),
        }),
        de_minimis: true,
        accumulation: true,
        partial_cumulation: true,
        issued_retroactively: true,
    };
    everything.remarks = Some("  spaces kept  ".into());
    everything.items[0].marks = String::new();
    everything.items[1].gross_weight = None;
    everything.items[1].fob = None;
    let mut files = Vec::new();
    let mut cases = vec![
        ("atiga", atiga()),
        ("rcep", rcep()),
        ("rcep-unissued", unissued),
        ("rcep-decl", decl),
        ("atiga-everything", everything),
    ];
    for mode in [
        TransportMode::Air,
        TransportMode::Road,
        TransportMode::Rail,
        TransportMode::Mail,
        TransportMode::Multimodal,
        TransportMode::InlandWater,
    ] {
        let mut c = atiga();
        c.transport.mode = mode;
        c.transport.vessel = Some(format!("{mode:?} 42"));
        cases.push(("atiga-mode", c));
    }
    for (n, (name, c)) in cases.into_iter().enumerate() {
        let name = format!("{name}-{n}");
        let x = xml::write(&c);
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(!x.contains("UBLExtensions"), "the writer leaves the signature extension to the signer");
        assert_eq!(read_ok(&x), c, "{name}");
        let f = dir.join(format!("{name}.xml"));
        std::fs::write(&f, x).unwrap();
        files.push(f);
        // The indented form for people is the same document: schema-valid, same certificate.
        let pretty = xml::write_pretty(&c);
        assert_eq!(read_ok(&pretty), c, "{name} (pretty)");
        let f = dir.join(format!("{name}-pretty.xml"));
        std::fs::write(&f, pretty).unwrap();
        files.push(f);
    }
    xmllint(&files);
}

#[test]
fn writer_is_deterministic_compact_or_pretty() {
    let a = xml::write(&atiga());
    assert_eq!(a, xml::write(&atiga()));
    assert_eq!(a.lines().count(), 2, "declaration, then the whole document on one line");
    assert!(a.contains("><cbc:ProfileID>ATIGA</cbc:ProfileID><"));
    assert!(a.ends_with("</CertificateOfOrigin>\n"));
    let p = xml::write_pretty(&atiga());
    assert_eq!(p, xml::write_pretty(&atiga()));
    assert!(p.contains("\n  <cbc:ProfileID>ATIGA</cbc:ProfileID>\n"));
    assert!(p.contains("\n      <cac:GoodsItem>\n        <cbc:ID>1</cbc:ID>\n"));
    assert!(p.ends_with("</CertificateOfOrigin>\n"));
    assert!(a.len() < p.len());
}

/// At least 200 generated certificates: each round-trips, and all validate against the XSD.
#[test]
fn generated_corpus_is_schema_valid_and_round_trips() {
    let dir = out_dir("corpus");
    let mut runner = TestRunner::deterministic();
    let strategy = testkit::certificate();
    let mut files = Vec::new();
    for i in 0..240 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        assert_eq!(validate(&c), vec![], "the generator makes valid certificates");
        let x = xml::write(&c);
        let back = read_ok(&x);
        assert_eq!(back, c, "round trip of certificate {i}");
        assert_eq!(xml::write(&back), x);
        let f = dir.join(format!("c{i:03}.xml"));
        std::fs::write(&f, x).unwrap();
        files.push(f);
    }
    for chunk in files.chunks(120) {
        xmllint(chunk);
    }
}

proptest! {
    #![proptest_config(Config::with_cases(256))]

    #[test]
    fn model_xml_model_is_lossless(c in testkit::certificate()) {
        let x = xml::write(&c);
        let back = xml::read(x.as_bytes(), &Limits::default());
        prop_assert_eq!(back, Ok(c));
    }

    /// XML -> model -> JSON -> model -> XML gives the same document.
    #[test]
    fn xml_json_xml_is_lossless(c in testkit::certificate()) {
        let x = xml::write(&c);
        let from_xml = xml::read(x.as_bytes(), &Limits::default()).unwrap();
        let j = json::write(&from_xml);
        let from_json = json::read(j.as_bytes(), &Limits::default());
        prop_assert_eq!(from_json.as_ref(), Ok(&from_xml));
        prop_assert_eq!(xml::write(&from_json.unwrap()), x);
    }

    /// Cut or corrupted documents never panic and never pass silently as something else.
    #[test]
    fn damaged_documents_do_not_panic(c in testkit::certificate(), cut in any::<prop::sample::Index>(),
                                      flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let x = xml::write(&c).into_bytes();
        let _ = xml::read(&x[..cut.index(x.len())], &Limits::default());
        let mut y = x.clone();
        y[flip.index(x.len())] = byte;
        let _ = xml::read(&y, &Limits::default());
    }

    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = xml::read(&bytes, &Limits::default());
    }
}

fn bad(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("testdata/bad").join(name)).unwrap()
}

/// Reads, and when the document reads, validates: the problems as the CLI sees them, with
/// model paths translated to XPaths.
fn problems_of(bytes: &[u8]) -> Vec<Problem> {
    match xml::read(bytes, &Limits::default()) {
        Ok(c) => validate(&c).into_iter().map(|p| Problem { path: xml::xpath_for(&p.path), ..p }).collect(),
        Err(p) => p,
    }
}

#[test]
fn bad_corpus_gives_stable_codes_and_paths() {
    let goods = |i: usize| format!("{SHIP}/cac:GoodsItem[{i}]");
    let cases: Vec<(&str, &str, String)> = vec![
        ("truncated.xml", "XML_MALFORMED", "/".into()),
        ("wrong-namespace.xml", "XML_WRONG_NAMESPACE", "/CertificateOfOrigin".into()),
        ("xxe.xml", "XML_DTD_FORBIDDEN", "/".into()),
        ("billion-laughs.xml", "XML_DTD_FORBIDDEN", "/".into()),
        (
            "unknown-hs.xml",
            "HS_UNKNOWN",
            format!("{}/cac:Item/cac:CommodityClassification/cbc:ItemClassificationCode", goods(2)),
        ),
        (
            "bad-country.xml",
            "COUNTRY_INVALID",
            "/CertificateOfOrigin/cac:ImporterParty/cac:PostalAddress/cac:Country/cbc:IdentificationCode"
                .into(),
        ),
        ("negative-amount.xml", "AMOUNT_NEGATIVE", format!("{}/cbc:FreeOnBoardValueAmount", goods(1))),
        ("amount-9-decimals.xml", "AMOUNT_PRECISION", format!("{}/cbc:FreeOnBoardValueAmount", goods(1))),
        ("rvc-without-fob.xml", "FOB_REQUIRED_FOR_RVC", format!("{}/cbc:FreeOnBoardValueAmount", goods(3))),
        ("items-51.xml", "ITEM_LIMIT", SHIP.into()),
    ];
    for (file, code, path) in cases {
        let p = problems_of(&bad(file));
        assert!(!p.is_empty(), "{file} passed");
        has(&p, code, &path);
        for q in &p {
            assert!(q.path.starts_with('/') && !q.message.is_empty(), "{file}: {q}");
        }
    }
    // The hostile ones are refused before any content is looked at, with one problem.
    for file in ["xxe.xml", "billion-laughs.xml", "truncated.xml"] {
        assert_eq!(read_err(&bad(file)).len(), 1, "{file}");
    }
}

#[test]
fn six_megabytes_is_too_large_and_the_limit_is_configurable() {
    let mut doc = xml::write(&atiga());
    let filler = format!("<!-- {} -->\n", "x".repeat(1000));
    while doc.len() < 6 * 1024 * 1024 {
        doc.push_str(&filler);
    }
    let p = read_err(doc.as_bytes());
    assert_eq!(p.len(), 1);
    has(&p, "DOCUMENT_TOO_LARGE", "/");

    let small = xml::write(&atiga());
    has(&xml::read(small.as_bytes(), &Limits { max_bytes: 1000 }).unwrap_err(), "DOCUMENT_TOO_LARGE", "/");
    let big = Limits { max_bytes: 7 * 1024 * 1024 };
    assert_eq!(xml::read(doc.as_bytes(), &big).unwrap(), atiga(), "comments are skipped");
}

#[test]
fn every_field_problem_is_collected() {
    let x = String::from_utf8(bad("unknown-hs.xml")).unwrap();
    let x = x.replacen("currencyID=\"USD\">245.00<", "currencyID=\"USD\">-1<", 1);
    let x = x.replacen("<cbc:PreferenceCriterionCode>WO<", "<cbc:PreferenceCriterionCode>XYZ<", 1);
    let x = x.replacen("<cbc:VersionID>1</cbc:VersionID>", "", 1);
    let x = x.replacen("<cbc:StartDate>2026-", "<cbc:StartDate>26-", 1);
    let p = read_err(x.as_bytes());
    let goods1 = format!("{SHIP}/cac:GoodsItem[1]");
    has(&p, "AMOUNT_NEGATIVE", &format!("{goods1}/cbc:FreeOnBoardValueAmount"));
    has(&p, "CRITERION_INVALID", &format!("{goods1}/cbc:PreferenceCriterionCode"));
    has(
        &p,
        "HS_UNKNOWN",
        &format!("{SHIP}/cac:GoodsItem[2]/cac:Item/cac:CommodityClassification/cbc:ItemClassificationCode"),
    );
    has(&p, "REQUIRED", "/CertificateOfOrigin/cbc:VersionID");
    has(&p, "DATE_INVALID", &format!("{SHIP}/cac:ShipmentStage/cac:TransitPeriod/cbc:StartDate"));
    assert_eq!(p.len(), 5, "{p:#?}");
}

#[test]
fn missing_parts_are_required_with_their_path() {
    let x = xml::write(&atiga());
    let cut = |from: &str, to: &str| {
        let a = x.find(from).unwrap();
        let b = x[a..].find(to).unwrap() + a + to.len();
        format!("{}{}", &x[..a], &x[b..])
    };
    let p = read_err(cut("<cac:IssuerEndorsement>", "</cac:IssuerEndorsement>").as_bytes());
    has(&p, "REQUIRED", "/CertificateOfOrigin/cac:IssuerEndorsement");
    let p = read_err(cut("<cbc:Quantity ", "</cbc:Quantity>").as_bytes());
    has(&p, "REQUIRED", &format!("{SHIP}/cac:GoodsItem[1]/cbc:Quantity"));
    let p = read_err(x.replacen(" currencyID=\"USD\"", "", 1).as_bytes());
    has(&p, "REQUIRED", &format!("{SHIP}/cac:GoodsItem[1]/cbc:FreeOnBoardValueAmount/@currencyID"));
    let p = read_err(cut("<cbc:Note>declaration-date=", "</cbc:Note>").as_bytes());
    has(&p, "REQUIRED", "/CertificateOfOrigin/cbc:Note[starts-with(.,'declaration-date=')]");
    let last = x.rfind("<cac:TransportHandlingUnit>").unwrap();
    let end = x[last..].find("</cac:TransportHandlingUnit>").unwrap() + last + 28;
    let p = read_err(format!("{}{}", &x[..last], &x[end..]).as_bytes());
    has(&p, "REQUIRED", &format!("{SHIP}/cac:TransportHandlingUnit[5]"));
}

#[test]
fn wrong_root_encoding_and_dtd_are_refused() {
    has(&read_err(b"<Invoice xmlns=\"urn:x\"/>"), "XML_WRONG_ROOT", "/Invoice");
    has(&read_err(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"), "ENCODING", "/");
    has(&read_err(b"<a>\xff\xfe</a>"), "ENCODING", "/");
    has(&read_err(b"<!DOCTYPE a><a/>"), "XML_DTD_FORBIDDEN", "/");
    has(&read_err(b"<a>&undefined;</a>"), "XML_MALFORMED", "/");
    has(&read_err(b""), "XML_MALFORMED", "/");
    // With a BOM, and with a declaration in lower case, a certificate still reads.
    let x = xml::write(&atiga()).replacen("UTF-8", "utf-8", 1);
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(x.as_bytes());
    assert_eq!(xml::read(&bom, &Limits::default()).unwrap(), atiga());
}

#[test]
fn inconsistent_per_item_parties_are_refused() {
    let x = xml::write(&rcep());
    let second = x.match_indices("<cac:ManufacturerParty>").nth(1).unwrap().0;
    let (head, tail) = x.split_at(second);
    let tail = tail.replacen("(factory)", "(other factory)", 1);
    let p = read_err(format!("{head}{tail}").as_bytes());
    has(&p, "XML_INCONSISTENT", &format!("{SHIP}/cac:GoodsItem[2]/cac:Item/cac:ManufacturerParty"));
}

#[test]
fn signature_extension_and_foreign_elements_are_skipped() {
    let c = rcep();
    let x = xml::write_pretty(&c);
    let ext = concat!(
        "\n  <ext:UBLExtensions xmlns:ext=\"urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2\">",
        "<ext:UBLExtension><ext:ExtensionContent>",
        "<sig:UBLDocumentSignatures xmlns:sig=\"urn:oasis:names:specification:ubl:schema:xsd:CommonSignatureComponents-2\">",
        "<cbc:ID xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">NOT-THE-NUMBER</cbc:ID>",
        "<cbc:Note xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">de-minimis=maybe</cbc:Note>",
        "</sig:UBLDocumentSignatures></ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>"
    );
    let at = x.find("\n  <cbc:UBLVersionID>").unwrap();
    let signed = format!("{}{ext}{}", &x[..at], &x[at..]);
    assert_eq!(read_ok(&signed), c);
    // Other systems' notes and comments do not disturb the reader either.
    let noted = x.replacen(
        "<cbc:VersionID>",
        "<cbc:Note>Handle with care</cbc:Note>\n  <!-- c --><cbc:VersionID>",
        1,
    );
    assert_eq!(read_ok(&noted), c);
}

#[test]
fn xpath_for_translates_model_paths() {
    let cases = [
        ("/items/2/fob", format!("{SHIP}/cac:GoodsItem[3]/cbc:FreeOnBoardValueAmount")),
        ("/items/0/marks", format!("{SHIP}/cac:TransportHandlingUnit[1]/cbc:ShippingMarks")),
        (
            "/items/0/invoice/date",
            format!("{SHIP}/cac:GoodsItem[1]/cac:AdditionalDocumentReference/cbc:IssueDate"),
        ),
        ("/items", SHIP.to_owned()),
        (
            "/importing_country",
            format!("{SHIP}/cac:Delivery/cac:DeliveryAddress/cac:Country/cbc:IdentificationCode"),
        ),
        (
            "/exporter/address/country",
            "/CertificateOfOrigin/cac:ExporterParty/cac:PostalAddress/cac:Country/cbc:IdentificationCode"
                .to_owned(),
        ),
        ("/certification/date", "/CertificateOfOrigin/cbc:IssueDate".to_owned()),
        (
            "/flags/issued_retroactively",
            "/CertificateOfOrigin/cbc:Note[starts-with(.,'issued-retroactively=')]".to_owned(),
        ),
        (
            "/transport/port_of_loading/code",
            format!("{SHIP}/cac:ShipmentStage/cac:LoadingPortLocation/cbc:ID"),
        ),
        ("/no/such/field", "/CertificateOfOrigin".to_owned()),
    ];
    for (model, xpath) in cases {
        assert_eq!(xml::xpath_for(model), xpath, "{model}");
    }
}

/// Every model path validation can report maps to an element the writer actually writes.
#[test]
fn xpaths_point_at_written_elements() {
    let mut c = rcep();
    c.flags.de_minimis = true;
    c.flags.exhibition = Some(Exhibition { name: "Fair".into(), place: "Expo Hall".into() });
    c.flags.third_party_invoicing = Some(c.consignee.clone());
    let doc_text = xml::write(&c);
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    for model in [
        "/agreement",
        "/kind",
        "/number",
        "/reference",
        "/version",
        "/exporting_country",
        "/importing_country",
        "/exporter/name",
        "/exporter/id",
        "/exporter/address/street",
        "/exporter/address/city",
        "/exporter/address/country",
        "/producer/name",
        "/consignee/name",
        "/transport/departure_date",
        "/transport/mode",
        "/transport/port_of_loading/code",
        "/transport/port_of_loading/name",
        "/transport/port_of_discharge/name",
        "/items/0/number",
        "/items/4/marks",
        "/items/4/packages/count",
        "/items/4/packages/kind",
        "/items/1/description",
        "/items/1/hs",
        "/items/1/criterion",
        "/items/1/origin_country",
        "/items/1/quantity",
        "/items/1/gross_weight",
        "/items/1/fob",
        "/items/1/invoice/number",
        "/items/1/invoice/date",
        "/declaration/signatory",
        "/certification/authority/name",
        "/certification/officer",
        "/certification/date",
        "/flags/third_party_invoicing/name",
        "/flags/exhibition/name",
        "/flags/exhibition/place",
    ] {
        let xp = xml::xpath_for(model);
        assert!(resolve(&doc, &xp), "{model} -> {xp} is not in the document");
    }
}

/// Follows a simple `/a/b[n]/c` XPath (prefixes `cac`, `cbc`, positions only).
fn resolve(doc: &roxmltree::Document<'_>, xp: &str) -> bool {
    let mut node = doc.root();
    for step in xp.split('/').filter(|s| !s.is_empty()) {
        let (name, pos) = match step.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().unwrap_or(1)),
            None => (step, 1),
        };
        let local = name.rsplit(':').next().unwrap();
        match node.children().filter(|c| c.is_element() && c.tag_name().name() == local).nth(pos - 1) {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

/// Hostile input within the size limit cannot make the reader list an unbounded number of
/// problems or read an unbounded number of items.
#[test]
fn problem_lists_and_items_are_bounded() {
    let x = xml::write(&atiga());
    let at = x.find("<cac:ShipmentStage>").unwrap();
    let many = format!("{}{}{}", &x[..at], "<cac:GoodsItem/>\n".repeat(20_000), &x[at..]);
    let p = read_err(many.as_bytes());
    has(&p, "ITEM_LIMIT", SHIP);
    assert_eq!(p.len(), 1, "items past the cap are not read: {p:#?}");

    let notes = x.replacen(
        "<cbc:VersionID>",
        &format!("{}<cbc:VersionID>", "<cbc:Note>de-minimis=true</cbc:Note>\n".repeat(3000)),
        1,
    );
    let p = read_err(notes.as_bytes());
    has(&p, "XML_DUPLICATE", "/CertificateOfOrigin/cbc:Note[starts-with(.,'de-minimis=')]");
    assert_eq!(p.len(), 1001);
    assert_eq!(p.last().unwrap().code, "TOO_MANY_PROBLEMS");
}

/// Issue 13: `xsd:date` allows a time zone (`2026-12-02+07:00`, `Z`); UBL documents from other
/// systems carry one. Every UBL date reads as the calendar date written; malformed zones are
/// `DATE_INVALID`.
#[test]
fn dates_with_a_time_zone_read_as_the_date_written() {
    let plain = xml::write(&atiga());
    let c = atiga();
    let issue = c.certification.as_ref().unwrap().date.to_string();
    let depart = c.transport.departure_date.to_string();
    let invoice = c.items[0].invoice.date.to_string();
    for zone in ["+07:00", "Z", "-05:00", "+14:00", "-14:00", "+00:00"] {
        let x = plain
            .replace(&format!(">{issue}</cbc:IssueDate>"), &format!(">{issue}{zone}</cbc:IssueDate>"))
            .replace(&format!(">{depart}</cbc:StartDate>"), &format!(">{depart}{zone}</cbc:StartDate>"))
            .replace(&format!(">{invoice}</cbc:IssueDate>"), &format!(">{invoice}{zone}</cbc:IssueDate>"));
        assert!(x.matches(zone).count() >= 3, "{zone}: every date rewritten");
        assert_eq!(read_ok(&x), atiga(), "{zone}");
        assert_eq!(xml::parse_date(&format!("2026-12-02{zone}")), NaiveDate::from_ymd_opt(2026, 12, 2));
    }
    for bad in ["+15:00", "+14:30", "+07:60", "+0700", "+7:00", "z", " +07:00", "T00:00:00Z", "+07"] {
        let x =
            plain.replace(&format!(">{issue}</cbc:IssueDate>"), &format!(">{issue}{bad}</cbc:IssueDate>"));
        has(&read_err(x.as_bytes()), "DATE_INVALID", "/CertificateOfOrigin/cbc:IssueDate");
        assert_eq!(xml::parse_date(&format!("2026-12-02{bad}")), None, "{bad:?}");
    }
}
