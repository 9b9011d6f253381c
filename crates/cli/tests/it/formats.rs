//! `example`, `validate` and `convert` as a user runs them.

use crate::support::run_text;

#[test]
fn example_validates_for_both_agreements_and_formats() {
    for agreement in ["ATIGA", "RCEP"] {
        for format in ["xml", "json"] {
            let (code, doc, err) = run_text(
                &["example", "--agreement", agreement, "--format", format, "--from", "KH", "--to", "TH"],
                b"",
            );
            assert_eq!(code, 0, "{agreement} {format}: {err}");
            let (code, out, err) = run_text(&["validate", "-"], doc.as_bytes());
            assert_eq!((code, out.trim()), (0, "valid"), "{agreement} {format}: {err}");
        }
    }
}

/// Each hostile or broken document in `testdata/bad/`: the exit code and the first problem's
/// code and path prefix, as `originlink validate` prints them.
#[test]
fn validate_reports_bad_input_with_code_path_and_exit_code() {
    let cases: &[(&str, i32, &str, &str)] = &[
        ("truncated.xml", 2, "XML_MALFORMED", "/"),
        ("wrong-namespace.xml", 2, "XML_WRONG_NAMESPACE", "/CertificateOfOrigin"),
        ("xxe.xml", 2, "XML_DTD_FORBIDDEN", "/"),
        ("billion-laughs.xml", 2, "XML_DTD_FORBIDDEN", "/"),
        ("unknown-hs.xml", 1, "HS_UNKNOWN", "/CertificateOfOrigin/cac:CertificateOfOriginApplication/"),
        ("bad-country.xml", 1, "COUNTRY_INVALID", "/CertificateOfOrigin/cac:ImporterParty/"),
        ("negative-amount.xml", 1, "AMOUNT_NEGATIVE", "/CertificateOfOrigin/"),
        ("amount-9-decimals.xml", 1, "AMOUNT_PRECISION", "/CertificateOfOrigin/"),
        (
            "rvc-without-fob.xml",
            1,
            "FOB_REQUIRED_FOR_RVC",
            "/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment/cac:GoodsItem[3]/",
        ),
        ("items-51.xml", 1, "ITEM_LIMIT", "/CertificateOfOrigin/"),
        ("truncated.json", 2, "JSON_MALFORMED", "/"),
        ("malformed.json", 2, "JSON_MALFORMED", "/"),
        ("deep-nesting.json", 2, "JSON_MALFORMED", "/"),
        ("not-utf8.json", 2, "ENCODING", "/"),
        ("unknown-hs.json", 1, "HS_UNKNOWN", "/supplyChainConsignment/"),
        ("bad-country.json", 1, "COUNTRY_INVALID", "/supplyChainConsignment/importCountry"),
        ("negative-amount.json", 1, "AMOUNT_NEGATIVE", "/originlinkExtension/items/"),
        ("amount-9-decimals.json", 1, "AMOUNT_PRECISION", "/originlinkExtension/items/"),
        ("rvc-without-fob.json", 1, "FOB_REQUIRED_FOR_RVC", "/originlinkExtension/items/2/fob"),
        ("items-51.json", 1, "ITEM_LIMIT", "/supplyChainConsignment/"),
        ("wrong-types.json", 1, "TYPE", "/isPreferential"),
        ("bad-date.json", 1, "DATE_INVALID", "/issueDateTime"),
    ];
    for (file, want_exit, want_code, want_path) in cases {
        let path = crate::support::testdata(&format!("bad/{file}"));
        let (code, out, err) = run_text(&["validate", path.to_str().unwrap()], b"");
        assert_eq!(code, *want_exit, "{file}: {out}{err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
        let first = out.lines().next().unwrap_or_default();
        let mut parts = first.splitn(3, ' ');
        assert_eq!(parts.next(), Some(*want_code), "{file}: {first}");
        let at = parts.next().unwrap_or_default();
        assert!(at.starts_with(want_path), "{file}: path {at} should start with {want_path}");
        assert!(parts.next().is_some_and(|m| !m.trim().is_empty()), "{file}: a message follows");
    }
}

#[test]
fn oversized_documents_are_refused_before_reading_them_whole() {
    let doc = format!("<a>{}</a>", "x".repeat(6 * 1024 * 1024));
    let (code, out, err) = run_text(&["validate", "-"], doc.as_bytes());
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("DOCUMENT_TOO_LARGE"), "{err}");
    // The limit is configurable: a 6 KB certificate is refused under a 1,000-byte limit.
    let (_, xml, _) = run_text(&["example", "--agreement", "ATIGA"], b"");
    let (code, _, err) = run_text(&["validate", "--max-bytes", "1000", "-"], xml.as_bytes());
    assert_eq!(code, 2);
    assert!(err.contains("DOCUMENT_TOO_LARGE"), "{err}");
}

/// Issue 11, defects 1 and 3: `validate` aborted on 20,000 nested elements (stack overflow)
/// and ran for over a minute on 300,000 attributes. Both are refused with the bound's code.
#[test]
fn hostile_xml_is_refused_with_the_bound_it_breaks() {
    let deep = format!("{}{}", "<a>".repeat(20_000), "</a>".repeat(20_000));
    let wide = format!("<a {}/>", (0..300_000).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" "));
    let names = format!("<a xmlns:p='u'>{}</a>", "<p:b xmlns:q='v'/>".repeat(1000));
    for (doc, code) in
        [(deep, "XML_TOO_DEEP"), (wide, "XML_TOO_MANY_ATTRIBUTES"), (names, "XML_TOO_MANY_NAMESPACES")]
    {
        let (exit, out, err) = run_text(&["validate", "-"], doc.as_bytes());
        assert_eq!(exit, 2, "{out}{err}");
        assert!(out.contains(code), "{out}{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run_text(&["validate"], b"").0, 2);
    assert_eq!(run_text(&["example", "--agreement", "NAFTA"], b"").0, 2);
    assert_eq!(run_text(&["example", "--agreement", "ATIGA", "--from", "XX"], b"").0, 2);
    assert_eq!(run_text(&["convert", "-", "--to", "pdf"], b"").0, 2);
    assert_eq!(run_text(&["validate", "/nonexistent/file.xml"], b"").0, 2);
    assert_eq!(run_text(&["validate", "-"], b"hello").0, 2);
}

#[test]
fn example_refuses_a_pair_the_agreement_does_not_cover() {
    // China is not an ATIGA member: the command says so instead of printing an invalid document.
    let (code, out, err) = run_text(&["example", "--agreement", "ATIGA", "--from", "KH", "--to", "CN"], b"");
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("NOT_A_MEMBER"), "{err}");
}

#[test]
fn convert_round_trips_between_xml_and_json() {
    let (_, xml, _) =
        run_text(&["example", "--agreement", "RCEP", "--format", "xml", "--from", "TH", "--to", "VN"], b"");
    let (code, json, err) = run_text(&["convert", "-", "--to", "json"], xml.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(json.trim_start().starts_with('{'));
    let (code, xml2, err) = run_text(&["convert", "-", "--to", "xml"], json.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(xml, xml2, "XML -> JSON -> XML is lossless");
    // convert refuses a broken document with the reader's problems and exit 1.
    let broken = xml.replace(
        "<cbc:ItemClassificationCode listID=\"HS\">",
        "<cbc:ItemClassificationCode listID=\"HS\">99",
    );
    let (code, _, err) = run_text(&["convert", "-", "--to", "json"], broken.as_bytes());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HS_"), "{err}");
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // Like `originlink example … | head -c 100`: the reader goes away after a few bytes.
    let mut child = crate::support::bin()
        .args(["example", "--agreement", "ATIGA", "--format", "json", "--items", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}
