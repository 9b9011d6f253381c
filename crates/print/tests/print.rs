//! The printed certificate read back with real tools: the text with `pdftotext`, the QR code
//! with `pdftoppm` and `zbarimg`.

mod common;

use common::*;
use originlink_model::{
    Address, Agreement, Certificate, CertificateNumber, CertificateRef, Item, OfficialUse, Party,
};
use originlink_print::render;

const KHMER: &str = "ក្រុមហ៊ុន អង្គរ អាហារ";
const KHMER_STREET: &str = "ផ្លូវលេខ ៥៩៨ សង្កាត់ច្រាំងចំរេះ";
const KHMER_GOODS: &str = "អង្ករក្រអូប ផ្ការំដួល";
const THAI: &str = "บริษัท สยาม เฟรช เทรดดิ้ง จำกัด";
const THAI_STREET: &str = "88 ถนนพระรามที่ 4 คลองเตย";
const THAI_GOODS: &str = "ข้าวหอมมะลิไทย";
const VIETNAMESE: &str = "Công ty Cổ phần Hàng Công nghiệp Sài Gòn";
const VIETNAMESE_GOODS: &str = "Cà phê Robusta nhân xanh, chưa rang";

/// A Form D from Cambodia to Thailand whose parties and goods are written in Khmer, Thai and
/// Vietnamese, invoiced by a company in Viet Nam.
fn multilingual() -> Certificate {
    let mut c = issued(Agreement::Atiga, "KH", "TH", 3);
    c.exporter.name = KHMER.to_owned();
    c.exporter.address.street = Some(KHMER_STREET.to_owned());
    c.consignee.name = THAI.to_owned();
    c.consignee.address.street = Some(THAI_STREET.to_owned());
    c.flags.third_party_invoicing = Some(Party {
        name: VIETNAMESE.to_owned(),
        id: None,
        address: Address {
            street: Some("45 Nguyễn Huệ, Quận 1".to_owned()),
            city: Some("Thành phố Hồ Chí Minh".to_owned()),
            postcode: None,
            country: country("VN"),
        },
    });
    c.items[0].description = KHMER_GOODS.to_owned();
    c.items[1].description = THAI_GOODS.to_owned();
    c.items[2].description = VIETNAMESE_GOODS.to_owned();
    c
}

/// The line of `pdftotext -layout` output on which an item's row starts (found by its marks).
fn row_line<'a>(text: &'a str, marks: &str) -> &'a str {
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(marks)).collect();
    assert_eq!(lines.len(), 1, "marks {marks} on one line:\n{text}");
    lines[0]
}

/// What the first line of an item's row must show, column by column.
fn row_start(i: &Item) -> Vec<String> {
    vec![
        i.number.to_string(),
        i.marks.clone(),
        format!("{} {}", i.packages.count, i.packages.kind.as_str()),
        i.criterion.to_string(),
        i.quantity.to_string(),
        i.invoice.number.clone(),
    ]
}

fn item_needles(i: &Item) -> Vec<String> {
    let mut v = vec![
        i.description.clone(),
        format!("HS {}", i.hs),
        i.criterion.to_string(),
        i.quantity.to_string(),
        date(i.invoice.date),
        i.invoice.number.clone(),
    ];
    v.extend(i.gross_weight.map(|g| format!("G.W. {g}")));
    v.extend(i.fob.map(|f| format!("FOB {f}")));
    v
}

#[test]
fn form_d_prints_every_box_and_gives_back_khmer_thai_and_vietnamese() {
    let c = multilingual();
    let opts = options(&c, None);
    let pdf = save("form-d", &render(&c, &opts).unwrap());
    let text = pdftotext(&pdf, true, Some((1, 1)));
    let number = c.number.as_ref().unwrap().to_string();
    let cert = c.certification.as_ref().unwrap();
    let t = &c.transport;
    let mut needles = vec![
        // The band and the title block.
        "ORIGINAL".to_owned(),
        format!("No. {number}"),
        "Page 1 of 2".to_owned(),
        "ASEAN TRADE IN GOODS AGREEMENT /".to_owned(),
        "ASEAN INDUSTRIAL COOPERATION SCHEME".to_owned(),
        "CERTIFICATE OF ORIGIN".to_owned(),
        "(Combined Declaration and Certificate)".to_owned(),
        "FORM D".to_owned(),
        "Reference No.".to_owned(),
        "Version 1".to_owned(),
        "Issued in Cambodia".to_owned(),
        // Box 1 and box 2, in their own scripts.
        KHMER.to_owned(),
        KHMER_STREET.to_owned(),
        "Phnom Penh".to_owned(),
        THAI.to_owned(),
        THAI_STREET.to_owned(),
        "Bangkok".to_owned(),
        "Thailand".to_owned(),
        // Box 3.
        format!("Departure date: {}", date(t.departure_date)),
        format!("Vessel's name/Aircraft etc.: {}", t.vessel.as_deref().unwrap()),
        format!("Port of discharge: {}", t.port_of_discharge.name),
        // Box 4, empty on issue.
        "Preferential Treatment Given Under ASEAN Trade in Goods".to_owned(),
        "Preferential Treatment Not Given (Please state reason/s)".to_owned(),
        // Box 11.
        "Declaration by the exporter".to_owned(),
        "Cambodia".to_owned(),
        format!("{}, {}", c.declaration.place, date(c.declaration.date)),
        c.declaration.signatory.clone(),
        // Box 12.
        cert.authority.name.clone(),
        format!("{}, {}", cert.place, date(cert.date)),
        cert.officer.clone(),
        // Box 13: third-country invoicing ticked (an X before it), by the Vietnamese company.
        "X Third Country Invoicing".to_owned(),
        format!("Invoicing company: {VIETNAMESE}, Vietnam"),
        "Back-to-Back CO".to_owned(),
        "Issued Retroactively".to_owned(),
        // Verification.
        format!("Verify at {}", opts.verify_url),
        format!("Check code: {}", opts.check_code),
        format!("Certificate No. {number}, version 1"),
        format!("SHA-256 {}", opts.sha256_hex),
    ];
    for i in &c.items {
        needles.extend(item_needles(i));
        assert_contains_all(&format!("row of item {}", i.number), row_line(&text, &i.marks), &row_start(i));
    }
    assert_contains_all("Form D page 1 (pdftotext -layout)", &text, &needles);
    // The statements of boxes 11 and 12 run over lines that the layout interleaves; read them
    // in reading order.
    assert_contains_all(
        "Form D page 1 (pdftotext)",
        &pdftotext(&pdf, false, Some((1, 1))),
        &[
            "The undersigned hereby declares that the above details and statement are correct; that all the \
             goods were produced in"
                .to_owned(),
            "It is hereby certified, on the basis of control carried out, that the declaration by the exporter \
             is correct."
                .to_owned(),
        ],
    );
    // Unticked boxes have no X.
    assert!(!normalize(&text).contains("X Exhibition"), "{text}");
    // The non-Latin names come back exactly, character for character.
    for name in
        [KHMER, KHMER_STREET, KHMER_GOODS, THAI, THAI_STREET, THAI_GOODS, VIETNAMESE, VIETNAMESE_GOODS]
    {
        assert!(text.contains(name), "{name} not given back exactly:\n{text}");
    }
    // And the fonts are embedded (subset), not left to the reader's machine.
    let fonts = run("pdffonts", "poppler-utils", &[&pdf.display().to_string()]);
    for f in ["NotoSans-Regular", "NotoSans-Bold", "NotoSansKhmer-Regular", "NotoSansThai-Regular"] {
        let line = fonts.lines().find(|l| l.contains(f)).unwrap_or_else(|| panic!("{f} not used:\n{fonts}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cols[cols.len() - 5..cols.len() - 2],
            &["yes", "yes", "yes"],
            "{f} embedded, subset, ToUnicode"
        );
    }
}

/// Renders page 1 at 150 dpi to `<root>.png` and returns what `zbarimg` reads from it.
fn scan_page_1(pdf: &std::path::Path, root: &std::path::Path) -> String {
    let (pdf, root) = (pdf.display().to_string(), root.display().to_string());
    run(
        "pdftoppm",
        "poppler-utils",
        &["-r", "150", "-f", "1", "-l", "1", "-png", "-singlefile", &pdf, &root],
    );
    let scanned = run("zbarimg", "zbar-tools", &["--raw", "-q", &format!("{root}.png")]);
    scanned.trim_end_matches('\n').to_owned()
}

#[test]
fn the_qr_code_scans_back_to_the_verification_url() {
    let c = multilingual();
    let opts = options(&c, None);
    let pdf = save("qr", &render(&c, &opts).unwrap());
    // The picture of the printed certificate, for the README.
    let shots = target_dir().join("console-shots");
    std::fs::create_dir_all(&shots).unwrap();
    assert_eq!(scan_page_1(&pdf, &shots.join("printed-certificate")), opts.verify_url);
}

#[test]
fn a_long_verification_url_still_scans() {
    // A public host name, the longest certificate number and a long query: a denser code in
    // the same 30 mm.
    let mut c = issued(Agreement::Rcep, "CN", "JP", 1);
    c.number = Some(CertificateNumber::parse("CN-2026-ABCDEFGHIJKLMNOPQRSTUVWXYZ1").unwrap());
    let mut opts = options(&c, None);
    opts.verify_url = format!(
        "https://verify.originlink.example.gov.cn:8443/verify?n={}&c=7K3M9-QX2VD&lang=en",
        c.number.as_ref().unwrap()
    );
    assert!(opts.verify_url.len() > 110);
    let pdf = save("qr-long", &render(&c, &opts).unwrap());
    let root =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("qr-long-{}", std::process::id()));
    assert_eq!(scan_page_1(&pdf, &root), opts.verify_url);
}

#[test]
fn rcep_prints_boxes_1_to_16_with_producer_and_each_items_country_of_origin() {
    let mut c = issued(Agreement::Rcep, "CN", "JP", 3);
    // Goods of different RCEP countries of origin, and a refusal in box 5.
    c.items[1].origin_country = country("JP");
    c.items[2].origin_country = country("AU");
    c.remarks = Some("Shipped in two 40-foot containers".to_owned());
    c.flags.back_to_back = Some(CertificateRef {
        country: country("TH"),
        number: CertificateNumber::parse("TH-2026-000777").unwrap(),
    });
    c.official_use =
        Some(OfficialUse { preference_given: false, reason: Some("Origin criterion not met".to_owned()) });
    let opts = options(&c, None);
    let pdf = save("rcep", &render(&c, &opts).unwrap());
    let text = pdftotext(&pdf, true, Some((1, 1)));
    let number = c.number.as_ref().unwrap().to_string();
    let producer = c.producer.as_ref().unwrap();
    let cert = c.certification.as_ref().unwrap();
    let t = &c.transport;
    let mut needles = vec![
        "ORIGINAL".to_owned(),
        "Certificate No.".to_owned(),
        number.clone(),
        "Form RCEP".to_owned(),
        "REGIONAL COMPREHENSIVE ECONOMIC".to_owned(),
        "PARTNERSHIP AGREEMENT".to_owned(),
        "CERTIFICATE OF ORIGIN".to_owned(),
        "Issued in China".to_owned(),
        // 1, 2, 3: exporter, consignee, producer.
        "1. Goods consigned from (Exporter's name, address and country)".to_owned(),
        c.exporter.name.clone(),
        c.exporter.address.street.clone().unwrap(),
        "2. Goods consigned to (Importer's or Consignee's name, address and country)".to_owned(),
        c.consignee.name.clone(),
        c.consignee.address.street.clone().unwrap(),
        "3. Producer's name, address and country (if known)".to_owned(),
        producer.name.clone(),
        // 4: transport.
        format!("Departure date: {}", date(t.departure_date)),
        format!("Vessel's name/Aircraft flight number, etc.: {}", t.vessel.as_deref().unwrap()),
        format!("Port of discharge: {}", t.port_of_discharge.name),
        // 5: official use, not given, with the reason.
        "X Preferential Tariff Treatment Not Given (Please state reason/s)".to_owned(),
        "Origin criterion not met".to_owned(),
        // 6 to 13: the table's captions.
        "HS Code of".to_owned(),
        "RCEP Country".to_owned(),
        "Origin".to_owned(),
        "Conferring".to_owned(),
        // 14: remarks, with the original certificate of the back-to-back certificate.
        "14. Remarks".to_owned(),
        "Shipped in two 40-foot containers".to_owned(),
        "Original certificate of origin: TH-2026-000777 issued in Thailand".to_owned(),
        "X Back-to-back Certificate of Origin".to_owned(),
        "Third-party invoicing".to_owned(),
        "Issued retroactively".to_owned(),
        // 15, 16.
        "15. Declaration by the exporter or producer".to_owned(),
        "Japan".to_owned(),
        format!("{}, {}", c.declaration.place, date(c.declaration.date)),
        c.declaration.signatory.clone(),
        "16. Certification".to_owned(),
        cert.authority.name.clone(),
        cert.officer.clone(),
        format!("Check code: {}", opts.check_code),
        format!("SHA-256 {}", opts.sha256_hex),
    ];
    for i in &c.items {
        let mut start = row_start(i);
        // Box 9: the six-digit HS code; box 11: the item's own RCEP country of origin.
        let six = i.hs.subheading();
        start.push(format!("{}.{}", &six[..4], &six[4..]));
        start.push(i.origin_country.name().to_owned());
        assert_contains_all(&format!("row of item {}", i.number), row_line(&text, &i.marks), &start);
        let mut rest = item_needles(i);
        // Box 8 is narrow: descriptions wrap, and are read back in reading order below.
        rest.retain(|n| !n.starts_with("HS ") && *n != i.description);
        needles.extend(rest);
    }
    assert_contains_all("RCEP page 1 (pdftotext -layout)", &text, &needles);
    let descriptions: Vec<String> = c.items.iter().map(|i| i.description.clone()).collect();
    assert_contains_all("RCEP page 1 (pdftotext)", &pdftotext(&pdf, false, Some((1, 1))), &descriptions);
    for (i, name) in c.items.iter().zip(["China", "Japan", "Australia"]) {
        assert!(row_line(&text, &i.marks).contains(name), "item {} of {name}", i.number);
    }
}

#[test]
fn a_copy_with_many_goods_continues_on_further_pages_and_loses_no_item() {
    let mut c = issued(Agreement::Atiga, "KH", "TH", 40);
    for i in &mut c.items {
        i.description = format!("{} (lot {:02})", i.description, i.number);
    }
    let pdf = save("copy-40", &render(&c, &options(&c, Some(2))).unwrap());
    let pages = page_count(&pdf);
    assert!(pages > 2, "40 goods lines need continuation pages, got {pages} pages");
    for p in 1..=pages {
        let text = pdftotext(&pdf, true, Some((p, p)));
        assert_contains_all(
            &format!("page {p}"),
            &text,
            &["COPY 2".to_owned(), format!("Page {p} of {pages}")],
        );
        assert!(!text.contains("ORIGINAL"), "a copy says COPY, not ORIGINAL (page {p})");
        if (2..pages).contains(&p) {
            // Continuation pages repeat the number and the goods table's captions.
            assert_contains_all(
                &format!("continuation page {p}"),
                &text,
                &[
                    "Continuation sheet: boxes 5 to 10 (goods)".to_owned(),
                    format!(
                        "Certificate No. {}, issued in Cambodia on 02 Mar 2026",
                        c.number.as_ref().unwrap()
                    ),
                    "Marks and numbers".to_owned(),
                ],
            );
        }
    }
    // The list of goods is closed after the last item, on the last page of goods only.
    assert!(pdftotext(&pdf, true, Some((pages - 1, pages - 1))).contains("*** End of the goods list ***"));
    assert!(!pdftotext(&pdf, true, Some((1, pages - 2))).contains("End of the goods list"));
    // Every item, in order, once: its row in the layout text, its (wrapped) description in
    // reading order.
    let layout = pdftotext(&pdf, true, None);
    let reading = normalize(&pdftotext(&pdf, false, None));
    let mut at = 0;
    for i in &c.items {
        assert_contains_all(&format!("row of item {}", i.number), row_line(&layout, &i.marks), &row_start(i));
        let found = reading[at..].find(&normalize(&i.description));
        let Some(pos) = found else {
            panic!("item {} description {:?} missing or out of order", i.number, i.description)
        };
        at += pos;
    }
}

#[test]
fn the_last_page_has_the_overleaf_notes() {
    for (agreement, from, to, phrases) in [
        (
            Agreement::Atiga,
            "KH",
            "TH",
            &[
                "OVERLEAF NOTES",
                "Box 8: how to state the origin criterion",
                "Each item of a consignment must meet the origin criteria on its own.",
            ][..],
        ),
        (
            Agreement::Rcep,
            "CN",
            "JP",
            &[
                "OVERLEAF NOTES",
                "Box 10: origin conferring criterion",
                "PE: produced in a Party exclusively from originating materials",
            ][..],
        ),
    ] {
        let c = issued(agreement, from, to, 2);
        let pdf = save(&format!("notes-{agreement}"), &render(&c, &options(&c, None)).unwrap());
        let n = page_count(&pdf);
        let last = pdftotext(&pdf, true, Some((n, n)));
        let phrases: Vec<String> = phrases.iter().map(|s| s.to_string()).collect();
        assert_contains_all(&format!("{agreement} page {n} of {n}"), &last, &phrases);
        // Not on the first page: the notes are a page of their own.
        assert!(!pdftotext(&pdf, true, Some((1, 1))).contains("OVERLEAF NOTES"));
    }
}
