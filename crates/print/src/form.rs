//! The forms: what goes in which box (ATIGA Form D, RCEP), and how the boxes are laid out
//! on the first page, the continuation pages and the overleaf notes page.

use std::collections::VecDeque;

use originlink_model::{Agreement, Certificate, Certification, Item, NaiveDate, Party, TransportMode};

use crate::PrintError;
use crate::PrintOptions;
use crate::draw::{PAGE_H, PAGE_W, Page};
use crate::fonts::Fonts;
use crate::layout::{Block, CAPTION, FormBox, P, PAD, Placed, ROW_PAD, Row, lay};

/// Left margin.
const LEFT: f32 = 28.35;
/// Width inside the margins.
const WIDTH: f32 = PAGE_W - 2.0 * LEFT;
const RIGHT: f32 = LEFT + WIDTH;
/// Top of the form frame, below the ORIGINAL/COPY band.
const FORM_TOP: f32 = 52.0;
/// Bottom of the form frame, above the footer.
const FORM_BOTTOM: f32 = PAGE_H - 28.0;
/// Width of the left column of the top boxes.
const LEFT_COL: f32 = 300.0;
/// Side of the QR code with its quiet zone: 30 mm.
const QR_SIDE: f32 = 30.0 * 72.0 / 25.4;
/// Room kept at the bottom of every goods table for the "continued" line.
const CONTINUED_H: f32 = 12.0;

fn date(d: NaiveDate) -> String {
    d.format("%d %b %Y").to_string()
}

fn party(p: &Party) -> Vec<P> {
    let mut v = vec![P::new(&p.name).bold()];
    if let Some(s) = &p.address.street {
        v.push(P::new(s));
    }
    let city: Vec<&str> =
        [p.address.postcode.as_deref(), p.address.city.as_deref()].into_iter().flatten().collect();
    if !city.is_empty() {
        v.push(P::new(city.join(" ")));
    }
    v.push(P::new(p.address.country.name()));
    v
}

fn packages(i: &Item) -> P {
    P::new(format!("{} {} ({})", i.packages.count, i.packages.kind.as_str(), i.packages.kind.name()))
}

fn quantity(i: &Item) -> Vec<P> {
    let mut v = vec![P::new(format!("{} ({})", i.quantity, i.quantity.unit().name()))];
    if let Some(g) = &i.gross_weight {
        v.push(P::new(format!("G.W. {g}")));
    }
    if let Some(f) = &i.fob {
        v.push(P::new(format!("FOB {f}")));
    }
    v
}

fn invoice(i: &Item) -> Vec<P> {
    vec![P::new(&i.invoice.number), P::new(date(i.invoice.date))]
}

/// A column of the goods table.
struct Column {
    number: &'static str,
    caption: &'static str,
    width: f32,
    cell: fn(&Item) -> Vec<P>,
}

/// A box of check boxes laid out in a grid, with details below.
struct Checks {
    number: &'static str,
    items: Vec<(bool, &'static str)>,
    cols: usize,
    details: Vec<P>,
}

impl Checks {
    const INDENT: f32 = 14.0;

    fn grid(&self, fonts: &Fonts, w: f32) -> (Vec<Block>, f32, f32) {
        let inner = w - 2.0 * PAD - Self::INDENT;
        let cell_w = inner / self.cols as f32;
        let blocks: Vec<Block> = self
            .items
            .iter()
            .map(|(c, t)| lay(fonts, &[P::check(*c, *t).size(8.0)], cell_w - 4.0, 1.0))
            .collect();
        let row_h = blocks.iter().map(|b| b.height).fold(0.0, f32::max) + 2.0;
        (blocks, cell_w, row_h)
    }

    /// Height with the details at `scale`.
    fn height(&self, fonts: &Fonts, w: f32, scale: f32) -> f32 {
        let (blocks, _, row_h) = self.grid(fonts, w);
        let rows = blocks.len().div_ceil(self.cols);
        let details = lay(fonts, &self.details, w - 2.0 * PAD - Self::INDENT, scale).height;
        PAD + rows as f32 * row_h + details + PAD
    }

    /// The largest scale of the details (1 down to 0.45) that fits in `max_h`.
    fn fit(&self, fonts: &Fonts, w: f32, max_h: f32) -> f32 {
        let mut scale: f32 = 1.0;
        while scale > 0.45 && self.height(fonts, w, scale) > max_h {
            scale -= 0.05;
        }
        scale.max(0.45)
    }

    fn draw(&self, page: &mut Page, fonts: &Fonts, y: f32, h: f32, scale: f32) {
        page.frame(LEFT, y, WIDTH, h, 0.8);
        if !self.number.is_empty() {
            page.text(LEFT + PAD, y + PAD + CAPTION, CAPTION, true, format!("{}.", self.number));
        }
        let (blocks, cell_w, row_h) = self.grid(fonts, WIDTH);
        let x0 = LEFT + PAD + Self::INDENT;
        for (i, b) in blocks.iter().enumerate() {
            let (r, c) = (i / self.cols, i % self.cols);
            // Check boxes are drawn left of their label: the label starts after the box.
            b.draw(page, x0 + c as f32 * cell_w, y + PAD + r as f32 * row_h + 1.0);
        }
        let rows = blocks.len().div_ceil(self.cols);
        lay(fonts, &self.details, WIDTH - 2.0 * PAD - Self::INDENT, scale).draw(
            page,
            x0,
            y + PAD + rows as f32 * row_h,
        );
    }
}

/// A section of the lower part of the first page.
enum Lower {
    Pair(FormBox, FormBox),
    Full(FormBox),
    Checks(Checks),
}

/// Everything that differs between the forms.
struct Spec {
    /// "ASEAN Trade in Goods Agreement — Form D", for the band on every page.
    short_name: String,
    /// Boxes stacked on the left of the top part, with their minimum heights.
    left: Vec<(FormBox, f32)>,
    /// The title block, right of all left boxes but the last.
    header: Vec<P>,
    /// The box right of the last left box.
    side: FormBox,
    columns: Vec<Column>,
    /// Boxes of the goods table, for continuation pages ("boxes 5 to 10").
    table_boxes: &'static str,
    lower: Vec<Lower>,
    notes: Vec<P>,
}

fn official_use(cert: &Certificate, given_label: &'static str, not_given_label: &'static str) -> Vec<P> {
    let ou = cert.official_use.as_ref();
    let mut v = vec![
        P::check(ou.is_some_and(|o| o.preference_given), given_label),
        P::check(ou.is_some_and(|o| !o.preference_given), not_given_label).gap(3.0),
    ];
    if let Some(reason) = ou.and_then(|o| o.reason.as_deref()) {
        v.push(P::new(reason).size(8.0).gap(2.0));
    }
    v
}

fn transport(cert: &Certificate, vessel_label: &str) -> Vec<P> {
    let t = &cert.transport;
    let port = |p: &originlink_model::Port| match &p.code {
        Some(c) => format!("{} ({c})", p.name),
        None => p.name.clone(),
    };
    let mode = match t.mode {
        TransportMode::Sea => "sea",
        TransportMode::Rail => "rail",
        TransportMode::Road => "road",
        TransportMode::Air => "air",
        TransportMode::Mail => "mail",
        TransportMode::Multimodal => "multimodal",
        TransportMode::InlandWater => "inland waterway",
    };
    let mut v = vec![P::new(format!("Departure date: {}", date(t.departure_date)))];
    v.push(P::new(format!("{vessel_label}: {}", t.vessel.as_deref().unwrap_or("—"))));
    v.push(P::new(format!("Mode of transport: {mode}")));
    v.push(P::new(format!("Port of loading: {}", port(&t.port_of_loading))));
    v.push(P::new(format!("Port of discharge: {}", port(&t.port_of_discharge))));
    v
}

/// The countries the goods originate in, by name.
fn origin_countries(cert: &Certificate) -> String {
    let mut names: Vec<&str> = Vec::new();
    for i in &cert.items {
        let n = i.origin_country.name();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        names.push(cert.exporting_country.name());
    }
    names.join(", ")
}

fn header(cert: &Certificate, number: &str, number_label: &str, title: &[P]) -> Vec<P> {
    let mut v = vec![
        P::new(number_label).small(),
        P::new(number).bold().size(11.5),
        P::new(format!("Version {}", cert.version)).size(7.5),
    ];
    if let Some(r) = &cert.replaces {
        v.push(P::new(format!("Replaces certificate {} issued in {}", r.number, r.country.name())).size(7.5));
    }
    v.extend(title.iter().cloned());
    v.push(P::new(format!("Issued in {}", cert.exporting_country.name())).bold().size(9.5).center().gap(6.0));
    v.push(P::new("(Country)").small().center());
    v.push(P::new("See Overleaf Notes").small().right().gap(3.0));
    v
}

fn certification_box(
    c: &Certification,
    number: &'static str,
    caption: &'static str,
    statement: &'static str,
    sign: &'static str,
) -> FormBox {
    FormBox::new(
        number,
        caption,
        vec![
            P::new(statement).size(7.5),
            P::new(&c.authority.name).bold().center().gap(8.0),
            P::new(format!("{}, {}", c.place, date(c.date))).center().gap(2.0),
            P::new(&c.officer).center(),
            P::new("Issued and signed electronically").small().center().gap(1.0),
        ],
    )
    .signed(sign)
}

/// ATIGA Form D, boxes 1 to 13 (used for any agreement but RCEP).
fn form_d(cert: &Certificate, number: &str, cert_by: &Certification) -> Spec {
    let f = &cert.flags;
    let title = [
        P::new("ASEAN TRADE IN GOODS AGREEMENT /").bold().size(9.0).center().gap(8.0),
        P::new("ASEAN INDUSTRIAL COOPERATION SCHEME").bold().size(9.0).center(),
        P::new("CERTIFICATE OF ORIGIN").bold().size(11.0).center().gap(5.0),
        P::new("(Combined Declaration and Certificate)").size(7.5).center(),
        P::new("FORM D").bold().size(14.0).center().gap(4.0),
    ];
    let mut details = Vec::new();
    if let Some(p) = &f.third_party_invoicing {
        details
            .push(P::new(format!("Invoicing company: {}, {}", p.name, p.address.country.name())).size(8.0));
    }
    if let Some(e) = &f.exhibition {
        details.push(P::new(format!("Exhibition: {}, {}", e.name, e.place)).size(8.0));
    }
    if let Some(b) = &f.back_to_back {
        details.push(
            P::new(format!("Original certificate: {} issued in {}", b.number, b.country.name())).size(8.0),
        );
    }
    if let Some(a) = &cert.approved_exporter {
        details.push(P::new(format!("Approved exporter: {a}")).size(8.0));
    }
    if let Some(r) = &cert.remarks {
        details.push(P::new(format!("Remarks: {r}")).size(8.0));
    }
    if let Some(first) = details.first_mut() {
        first.gap = 1.0;
    }
    let d = &cert.declaration;
    Spec {
        short_name: "ASEAN Trade in Goods Agreement — Form D".to_owned(),
        left: vec![
            (
                FormBox::new(
                    "1",
                    "Goods consigned from (Exporter's business name, address, country)",
                    party(&cert.exporter),
                ),
                68.0,
            ),
            (FormBox::new("2", "Goods consigned to (Consignee's name, address, country)", party(&cert.consignee)), 68.0),
            (
                FormBox::new(
                    "3",
                    "Means of transport and route (as far as known)",
                    transport(cert, "Vessel's name/Aircraft etc."),
                ),
                70.0,
            ),
        ],
        header: header(cert, number, "Reference No.", &title),
        side: FormBox::new(
            "4",
            "For Official Use",
            official_use(
                cert,
                "Preferential Treatment Given Under ASEAN Trade in Goods Agreement",
                "Preferential Treatment Not Given (Please state reason/s)",
            ),
        )
        .signed("Signature of Authorised Signatory of the Importing Country"),
        columns: vec![
            Column { number: "5", caption: "Item number", width: 34.0, cell: |i| vec![P::new(i.number.to_string())] },
            Column {
                number: "6",
                caption: "Marks and numbers on packages",
                width: 70.0,
                cell: |i| vec![P::new(&i.marks)],
            },
            Column {
                number: "7",
                caption: "Number and type of packages, description of goods (including quantity where appropriate \
                          and HS number of the importing country)",
                width: 180.0,
                cell: |i| {
                    vec![packages(i), P::new(&i.description).gap(1.0), P::new(format!("HS {}", i.hs)).gap(1.0)]
                },
            },
            Column {
                number: "8",
                caption: "Origin criterion (see Overleaf Notes)",
                width: 58.0,
                cell: |i| vec![P::new(i.criterion.to_string())],
            },
            Column {
                number: "9",
                caption: "Gross weight or other quantity and value (FOB) only when RVC criterion is used",
                width: 96.0,
                cell: quantity,
            },
            Column {
                number: "10",
                caption: "Number and date of invoices",
                width: WIDTH - 34.0 - 70.0 - 180.0 - 58.0 - 96.0,
                cell: invoice,
            },
        ],
        table_boxes: "boxes 5 to 10",
        lower: vec![
            Lower::Pair(
                FormBox::new(
                    "11",
                    "Declaration by the exporter",
                    vec![
                        P::new(
                            "The undersigned hereby declares that the above details and statement are correct; \
                             that all the goods were produced in",
                        )
                        .size(7.5),
                        P::new(origin_countries(cert)).bold().center().gap(3.0),
                        P::new("(Country)").small().center(),
                        P::new(
                            "and that they comply with the origin requirements specified for these goods in the \
                             ASEAN Trade in Goods Agreement for the goods exported to",
                        )
                        .size(7.5)
                        .gap(2.0),
                        P::new(cert.importing_country.name()).bold().center().gap(3.0),
                        P::new("(Importing Country)").small().center(),
                        P::new(format!("{}, {}", d.place, date(d.date))).center().gap(6.0),
                        P::new(&d.signatory).center(),
                    ],
                )
                .signed("Place and date, signature of authorised signatory"),
                certification_box(
                    cert_by,
                    "12",
                    "Certification",
                    "It is hereby certified, on the basis of control carried out, that the declaration by the \
                     exporter is correct.",
                    "Place and date, signature and stamp of certifying authority",
                ),
            ),
            Lower::Checks(Checks {
                number: "13",
                items: vec![
                    (f.third_party_invoicing.is_some(), "Third Country Invoicing"),
                    (f.exhibition.is_some(), "Exhibition"),
                    (f.back_to_back.is_some(), "Back-to-Back CO"),
                    (f.de_minimis, "De Minimis"),
                    (f.accumulation, "Accumulation"),
                    (f.partial_cumulation, "Partial Cumulation"),
                    (f.issued_retroactively, "Issued Retroactively"),
                ],
                cols: 4,
                details,
            }),
        ],
        notes: crate::notes::form_d(),
    }
}

/// The RCEP certificate of origin. Boxes are numbered as on the form the Parties use (box 2
/// the importer or consignee, box 3 the producer), which lists them in another order than
/// the minimum information requirements of Annex 3B.
fn rcep(cert: &Certificate, number: &str, cert_by: &Certification) -> Spec {
    let f = &cert.flags;
    let title = [
        P::new("Form RCEP").bold().size(10.0).right().gap(4.0),
        P::new("REGIONAL COMPREHENSIVE ECONOMIC").bold().size(9.5).center().gap(6.0),
        P::new("PARTNERSHIP AGREEMENT").bold().size(9.5).center(),
        P::new("CERTIFICATE OF ORIGIN").bold().size(12.0).center().gap(6.0),
    ];
    let mut remarks = Vec::new();
    if let Some(p) = &f.third_party_invoicing {
        remarks.push(P::new(format!("Third-party invoicing by {}, {}", p.name, p.address.country.name())));
    }
    if let Some(b) = &f.back_to_back {
        remarks.push(P::new(format!(
            "Original certificate of origin: {} issued in {}",
            b.number,
            b.country.name()
        )));
    }
    if let Some(e) = &f.exhibition {
        remarks.push(P::new(format!("Exhibition: {}, {}", e.name, e.place)));
    }
    let applied: Vec<&str> = [(f.de_minimis, "de minimis"), (f.accumulation, "accumulation")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    if !applied.is_empty() {
        remarks.push(P::new(format!("Applied: {}", applied.join(", "))));
    }
    if let Some(a) = &cert.approved_exporter {
        remarks.push(P::new(format!("Approved exporter: {a}")));
    }
    if let Some(r) = &cert.remarks {
        remarks.push(P::new(r));
    }
    let producer = match &cert.producer {
        Some(p) => party(p),
        None => vec![P::new("—")],
    };
    let d = &cert.declaration;
    Spec {
        short_name: "Regional Comprehensive Economic Partnership — Form RCEP".to_owned(),
        left: vec![
            (
                FormBox::new("1", "Goods consigned from (Exporter's name, address and country)", party(&cert.exporter)),
                62.0,
            ),
            (
                FormBox::new(
                    "2",
                    "Goods consigned to (Importer's or Consignee's name, address and country)",
                    party(&cert.consignee),
                ),
                62.0,
            ),
            (FormBox::new("3", "Producer's name, address and country (if known)", producer), 44.0),
            (
                FormBox::new(
                    "4",
                    "Means of transport and route (if known)",
                    transport(cert, "Vessel's name/Aircraft flight number, etc."),
                ),
                70.0,
            ),
        ],
        header: header(cert, number, "Certificate No.", &title),
        side: FormBox::new(
            "5",
            "For Official Use",
            official_use(
                cert,
                "Preferential Tariff Treatment Given",
                "Preferential Tariff Treatment Not Given (Please state reason/s)",
            ),
        )
        .signed("Signature of Authorised Signatory of the Customs Authority of the Importing Country"),
        columns: vec![
            Column { number: "6", caption: "Item number", width: 33.0, cell: |i| vec![P::new(i.number.to_string())] },
            Column {
                number: "7",
                caption: "Marks and numbers on packages",
                width: 62.0,
                cell: |i| vec![P::new(&i.marks)],
            },
            Column {
                number: "8",
                caption: "Number and kind of packages; and description of goods",
                width: 128.0,
                cell: |i| vec![packages(i), P::new(&i.description).gap(1.0)],
            },
            Column {
                number: "9",
                caption: "HS Code of the goods (6 digit-level)",
                width: 46.0,
                cell: |i| {
                    let d = i.hs.subheading();
                    vec![P::new(format!("{}.{}", &d[..4], &d[4..]))]
                },
            },
            Column {
                number: "10",
                caption: "Origin Conferring Criterion",
                width: 48.0,
                cell: |i| vec![P::new(i.criterion.to_string())],
            },
            Column {
                number: "11",
                caption: "RCEP Country of Origin",
                width: 52.0,
                cell: |i| vec![P::new(i.origin_country.name())],
            },
            Column {
                number: "12",
                caption: "Quantity (Gross weight or other measurement), and value (FOB) where RVC is applied",
                width: 86.0,
                cell: quantity,
            },
            Column {
                number: "13",
                caption: "Invoice number(s) and date of invoice(s)",
                width: WIDTH - 33.0 - 62.0 - 128.0 - 46.0 - 48.0 - 52.0 - 86.0,
                cell: invoice,
            },
        ],
        table_boxes: "boxes 6 to 13",
        lower: vec![
            Lower::Checks(Checks {
                number: "",
                items: vec![
                    (f.back_to_back.is_some(), "Back-to-back Certificate of Origin"),
                    (f.third_party_invoicing.is_some(), "Third-party invoicing"),
                    (f.issued_retroactively, "Issued retroactively"),
                ],
                cols: 3,
                details: Vec::new(),
            }),
            Lower::Full(FormBox::new("14", "Remarks", remarks)),
            Lower::Pair(
                FormBox::new(
                    "15",
                    "Declaration by the exporter or producer",
                    vec![
                        P::new(
                            "The undersigned hereby declares that the above details and statements are correct and \
                             that the goods covered in this Certificate comply with the requirements specified for \
                             these goods in the Regional Comprehensive Economic Partnership Agreement. These goods \
                             are exported to:",
                        )
                        .size(7.5),
                        P::new(cert.importing_country.name()).bold().center().gap(3.0),
                        P::new("(Importing Country)").small().center(),
                        P::new(format!("{}, {}", d.place, date(d.date))).center().gap(6.0),
                        P::new(&d.signatory).center(),
                        P::new(&cert.exporter.name).center(),
                    ],
                )
                .signed("Place and date, name, signature and company of authorised signatory"),
                certification_box(
                    cert_by,
                    "16",
                    "Certification",
                    "On the basis of control carried out, it is hereby certified that the information herein is \
                     correct and that the goods described comply with the origin requirements specified in the \
                     Regional Comprehensive Economic Partnership Agreement.",
                    "Place and date, signature and seal or stamp of Issuing Body",
                ),
            ),
        ],
        notes: crate::notes::rcep(),
    }
}

/// The band at the top of every page: ORIGINAL or COPY n, the number, page i of n.
fn band(page: &mut Page, fonts: &Fonts, label: &str, number: &str, short_name: &str, i: usize, n: usize) {
    // ORIGINAL or COPY n, large, in a frame; shrunk if it would take more than a third.
    let size = (16.0 * (WIDTH / 3.0) / fonts.width(label, 16.0, true)).min(16.0);
    let label_w = fonts.width(label, size, true) + 18.0;
    page.frame(LEFT, 16.0, label_w, 27.0, 1.6);
    page.text(LEFT + 9.0, 16.0 + 13.5 + size * 0.35, size, true, label);
    // The number and the page on the right, shrunk if the number is long.
    let no = format!("No. {number}");
    let no_size = (8.5 * (WIDTH / 3.0) / fonts.width(&no, 8.5, true)).min(8.5);
    let page_of = format!("Page {i} of {n}");
    let right_w = fonts.width(&no, no_size, true).max(fonts.width(&page_of, 8.0, false));
    page.text(RIGHT - fonts.width(&no, no_size, true), 25.0, no_size, true, no);
    page.text(RIGHT - fonts.width(&page_of, 8.0, false), 37.0, 8.0, false, page_of);
    // The form's name centred in the room between them.
    let room = WIDTH - label_w - right_w - 24.0;
    let name_size = (8.0 * room / fonts.width(short_name, 8.0, false)).min(8.0);
    let name_w = fonts.width(short_name, name_size, false);
    page.text(LEFT + label_w + 12.0 + (room - name_w) / 2.0, 33.0, name_size, false, short_name);
}

fn footer(page: &mut Page) {
    page.text(
        LEFT,
        PAGE_H - 15.0,
        6.0,
        false,
        "Printed from an electronic certificate of origin. The signed electronic certificate prevails; \
         verify it with the QR code or the check code.",
    );
}

/// The verification strip: QR code, URL, check code, number, SHA-256.
fn verification(
    page: &mut Page,
    fonts: &Fonts,
    cert: &Certificate,
    number: &str,
    opts: &PrintOptions,
    y: f32,
) -> Result<(), PrintError> {
    let h = verification_height();
    page.frame(LEFT, y, WIDTH, h, 0.8);
    page.ops.push(crate::qr::op(&opts.verify_url, LEFT + 4.0, y + 4.0, QR_SIDE)?);
    let x = LEFT + 4.0 + QR_SIDE + 8.0;
    let w = RIGHT - PAD - x;
    let mut paras = vec![
        P::new("Verification of this certificate").bold().size(9.0),
        P::new(format!("Verify at {}", opts.verify_url)).size(8.0).gap(1.0),
        P::new(format!("Check code: {}", opts.check_code)).bold().size(11.0).gap(3.0),
    ];
    let mut facts = format!("Certificate No. {number}, version {}", cert.version);
    if let Some(d) = cert.issue_date() {
        facts.push_str(&format!(", issued {}", date(d)));
    }
    if let Some(d) = cert.valid_until() {
        facts.push_str(&format!(", valid until {}", date(d)));
    }
    paras.push(P::new(facts).size(8.0).gap(1.0));
    paras.push(P::new(format!("SHA-256 {}", opts.sha256_hex)).size(6.5).gap(3.0));
    paras.push(
        P::new("Digest of the signed electronic document; the verification page shows the same value.")
            .size(6.0),
    );
    // Shrunk in the unlikely case that a long URL or check code would not fit beside the code.
    let mut scale = 1.0;
    let mut block = lay(fonts, &paras, w, scale);
    while block.height > h - 10.0 && scale > 0.4 {
        scale -= 0.05;
        block = lay(fonts, &paras, w, scale);
    }
    block.draw(page, x, y + 6.0);
    Ok(())
}

fn verification_height() -> f32 {
    QR_SIDE + 8.0
}

/// The goods table's column headers.
fn table_header(fonts: &Fonts, cols: &[Column]) -> (Vec<Block>, f32) {
    let blocks: Vec<Block> = cols
        .iter()
        .map(|c| {
            lay(
                fonts,
                &[P::new(format!("{}.", c.number)).small().bold(), P::new(c.caption).small()],
                c.width - 2.0 * PAD,
                1.0,
            )
        })
        .collect();
    let h = blocks.iter().map(|b| b.height).fold(0.0, f32::max) + 2.0 * PAD;
    (blocks, h)
}

fn item_row(fonts: &Fonts, cols: &[Column], item: &Item) -> Row {
    Row { cells: cols.iter().map(|c| lay(fonts, &(c.cell)(item), c.width - 2.0 * PAD, 1.0)).collect() }
}

/// Written under the last item, in the description column, so that nothing can be added.
const END_OF_GOODS: &str = "*** End of the goods list ***";

/// Draws the goods table at `y`: header, rows, column lines, and under the rows either the
/// "continued" line (`continued` is `Some`) or the end of the goods list.
#[allow(clippy::too_many_arguments)]
fn draw_table(
    page: &mut Page,
    cols: &[Column],
    header: &(Vec<Block>, f32),
    rows: &[Row],
    y: f32,
    body_h: f32,
    continued: Option<String>,
    fonts: &Fonts,
) {
    let (blocks, head_h) = header;
    let total = head_h + body_h;
    page.fill(LEFT, y, WIDTH, *head_h, 238);
    page.frame(LEFT, y, WIDTH, total, 0.8);
    page.hline(LEFT, RIGHT, y + head_h, 0.8);
    let mut x = LEFT;
    for (i, (c, b)) in cols.iter().zip(blocks).enumerate() {
        if i > 0 {
            page.vline(x, y, y + total, 0.6);
        }
        b.draw(page, x + PAD, y + PAD);
        x += c.width;
    }
    let mut ry = y + head_h;
    for (n, row) in rows.iter().enumerate() {
        let mut x = LEFT;
        for (c, cell) in cols.iter().zip(&row.cells) {
            cell.draw(page, x + PAD, ry + ROW_PAD);
            x += c.width;
        }
        ry += row.height();
        if n + 1 < rows.len() || continued.is_some() {
            page.light_hline(LEFT, RIGHT, ry);
        }
    }
    let size = 7.0;
    match continued {
        Some(text) => {
            let tw = fonts.width(&text, size, false);
            page.text(RIGHT - PAD - tw, y + total - 4.0, size, false, text);
        }
        None => {
            // The third column holds the description of the goods in both forms.
            let x: f32 = LEFT + cols.iter().take(2).map(|c| c.width).sum::<f32>();
            page.text(x + PAD, ry + 9.0, size, false, END_OF_GOODS);
        }
    }
}

/// Heights and text scales of the boxes of the first page.
struct Measured {
    /// Height and scale of each left box of the top part.
    left: Vec<(f32, f32)>,
    side_scale: f32,
    /// Height and scales of each lower section.
    lower_h: Vec<(f32, f32, f32)>,
    top_h: f32,
    /// The lower sections and the verification strip.
    lower_total: f32,
    checks_scale: f32,
}

/// Measures the boxes of the first page, `k` (at most 1) scaling the height each box may
/// take before its text is shrunk.
fn measure(fonts: &Fonts, spec: &Spec, header: &Block, k: f32) -> Measured {
    let right_w = WIDTH - LEFT_COL;
    let mut left: Vec<(f32, f32)> = spec
        .left
        .iter()
        .map(|(b, min)| {
            let scale = b.fit(fonts, LEFT_COL, 110.0 * k);
            (b.height(fonts, LEFT_COL, scale).max(*min), scale)
        })
        .collect();
    let last = left.len() - 1;
    let above: f32 = left[..last].iter().map(|l| l.0).sum();
    if header.height + 2.0 * PAD + 4.0 > above {
        left[0].0 += header.height + 2.0 * PAD + 4.0 - above;
    }
    let side_scale = spec.side.fit(fonts, right_w, 110.0 * k);
    left[last].0 = left[last].0.max(spec.side.height(fonts, right_w, side_scale));
    let top_h: f32 = left.iter().map(|l| l.0).sum();

    let mut lower_h = Vec::new();
    let mut checks_scale = 1.0;
    for s in &spec.lower {
        lower_h.push(match s {
            Lower::Pair(a, b) => {
                // Split where the top part is, so that the form's middle line runs through.
                let (wa, wb) = (LEFT_COL, WIDTH - LEFT_COL);
                let (sa, sb) = (a.fit(fonts, wa, 150.0 * k), b.fit(fonts, wb, 150.0 * k));
                (a.height(fonts, wa, sa).max(b.height(fonts, wb, sb)).max(100.0 * k.min(1.0)), sa, sb)
            }
            Lower::Full(b) => {
                let s = b.fit(fonts, WIDTH, 60.0 * k);
                (b.height(fonts, WIDTH, s).max(30.0), s, s)
            }
            Lower::Checks(c) => {
                checks_scale = c.fit(fonts, WIDTH, 70.0 * k);
                (c.height(fonts, WIDTH, checks_scale), 1.0, 1.0)
            }
        });
    }
    let lower_total = lower_h.iter().map(|l| l.0).sum::<f32>() + verification_height();
    Measured { left, side_scale, lower_h, top_h, lower_total, checks_scale }
}

/// Lays out every page of the certificate.
pub(crate) fn pages(fonts: &Fonts, cert: &Certificate, opts: &PrintOptions) -> Result<Vec<Page>, PrintError> {
    let number = cert.number.as_ref().ok_or(PrintError::NotIssued("certificate number"))?.as_str().to_owned();
    let cert_by = cert.certification.as_ref().ok_or(PrintError::NotIssued("certification"))?;
    let spec = match cert.agreement {
        Agreement::Rcep => rcep(cert, &number, cert_by),
        _ => form_d(cert, &number, cert_by),
    };
    let label = match opts.copy {
        None => "ORIGINAL".to_owned(),
        Some(n) => format!("COPY {n}"),
    };

    // The top and the lower part of the first page, each box as tall as its content; text
    // that would make a box taller than its share is shrunk, and the shares get smaller until
    // at least some of the goods table fits between the two parts.
    let right_w = WIDTH - LEFT_COL;
    let header = lay(fonts, &spec.header, right_w - 2.0 * PAD - 4.0, 1.0);
    let table_head = table_header(fonts, &spec.columns);
    let mut k: f32 = 1.0;
    let m = loop {
        let m = measure(fonts, &spec, &header, k);
        let body = FORM_BOTTOM - m.lower_total - FORM_TOP - m.top_h - table_head.1;
        if body >= 60.0 || k <= 0.4 {
            break m;
        }
        k -= 0.1;
    };
    let Measured { left, side_scale, lower_h, top_h, lower_total, checks_scale } = m;
    let last = left.len() - 1;
    let table_top = FORM_TOP + top_h;
    let first_body = (FORM_BOTTOM - lower_total - table_top - table_head.1).max(0.0);
    let cont_head = lay(
        fonts,
        &[
            P::new(format!("Continuation sheet: {} (goods)", spec.table_boxes)).bold(),
            P::new(format!(
                "Certificate No. {number}, issued in {} on {}. Check code: {}",
                cert.exporting_country.name(),
                date(cert_by.date),
                opts.check_code
            ))
            .size(7.5)
            .gap(1.0),
        ],
        WIDTH - 2.0 * PAD - 4.0,
        1.0,
    );
    let cont_head_h = cont_head.height + 2.0 * PAD + 2.0;
    let cont_table_top = FORM_TOP + cont_head_h;
    let cont_body = FORM_BOTTOM - cont_table_top - table_head.1;

    // Goods rows onto pages. A row that does not fit goes to the next page whole, unless it
    // would be the first on its page or is taller than a whole continuation page: then it is
    // split between lines.
    let mut parts: Vec<Vec<Row>> = vec![Vec::new()];
    let mut queue: VecDeque<Row> = cert.items.iter().map(|i| item_row(fonts, &spec.columns, i)).collect();
    let mut cap = first_body - CONTINUED_H;
    let mut used = 0.0;
    while let Some(row) = queue.pop_front() {
        let h = row.height();
        if used + h <= cap {
            used += h;
            if let Some(p) = parts.last_mut() {
                p.push(row);
            }
            continue;
        }
        let empty = parts.last().is_some_and(|p| p.is_empty());
        if empty || h > cont_body - CONTINUED_H {
            match row.split(cap - used) {
                Some((a, b)) => {
                    if let Some(p) = parts.last_mut() {
                        p.push(a);
                    }
                    queue.push_front(b);
                }
                None if empty && cap >= cont_body - CONTINUED_H => {
                    // Not even one line fits an empty page: print it anyway.
                    if let Some(p) = parts.last_mut() {
                        p.push(row);
                    }
                }
                None => queue.push_front(row),
            }
        } else {
            queue.push_front(row);
        }
        parts.push(Vec::new());
        cap = cont_body - CONTINUED_H;
        used = 0.0;
    }
    if parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    let n = parts.len() + 1;

    let mut pages = Vec::with_capacity(n);
    for (i, rows) in parts.iter().enumerate() {
        let mut page = Page::default();
        band(&mut page, fonts, &label, &number, &spec.short_name, i + 1, n);
        let continued = (i + 2 < n).then(|| format!("Continued on page {} of {n}", i + 2));
        if i == 0 {
            // Top part.
            let mut y = FORM_TOP;
            for ((b, _), (h, scale)) in spec.left.iter().zip(&left) {
                b.draw(&mut page, fonts, [LEFT, y, LEFT_COL, *h], *scale);
                y += h;
            }
            let above: f32 = left[..last].iter().map(|l| l.0).sum();
            page.frame(LEFT + LEFT_COL, FORM_TOP, right_w, above, 0.8);
            header.draw(&mut page, LEFT + LEFT_COL + PAD + 2.0, FORM_TOP + PAD + 2.0);
            let side_at = [LEFT + LEFT_COL, FORM_TOP + above, right_w, left[last].0];
            spec.side.draw(&mut page, fonts, side_at, side_scale);
            draw_table(&mut page, &spec.columns, &table_head, rows, table_top, first_body, continued, fonts);
            // Lower part.
            let mut y = table_top + table_head.1 + first_body;
            for (s, (h, sa, sb)) in spec.lower.iter().zip(&lower_h) {
                match s {
                    Lower::Pair(a, b) => {
                        a.draw(&mut page, fonts, [LEFT, y, LEFT_COL, *h], *sa);
                        b.draw(&mut page, fonts, [LEFT + LEFT_COL, y, WIDTH - LEFT_COL, *h], *sb);
                    }
                    Lower::Full(b) => b.draw(&mut page, fonts, [LEFT, y, WIDTH, *h], *sa),
                    Lower::Checks(c) => c.draw(&mut page, fonts, y, *h, checks_scale),
                }
                y += h;
            }
            verification(&mut page, fonts, cert, &number, opts, y)?;
        } else {
            page.frame(LEFT, FORM_TOP, WIDTH, cont_head_h, 0.8);
            cont_head.draw(&mut page, LEFT + PAD + 2.0, FORM_TOP + PAD + 1.0);
            draw_table(
                &mut page,
                &spec.columns,
                &table_head,
                rows,
                cont_table_top,
                cont_body,
                continued,
                fonts,
            );
        }
        footer(&mut page);
        pages.push(page);
    }

    // The overleaf notes, in two columns, shrunk until they fit.
    let mut page = Page::default();
    band(&mut page, fonts, &label, &number, &spec.short_name, n, n);
    let title = "OVERLEAF NOTES";
    let tw = fonts.width(title, 12.0, true);
    page.text(LEFT + (WIDTH - tw) / 2.0, FORM_TOP + 14.0, 12.0, true, title);
    let col_gap = 16.0;
    let col_w = (WIDTH - col_gap) / 2.0;
    let top = FORM_TOP + 26.0;
    let avail = FORM_BOTTOM - top;
    let mut scale = 1.0;
    loop {
        let block = lay(fonts, &spec.notes, col_w, scale);
        let (first, second) = split_columns(&block, avail);
        if (first.height <= avail && second.height <= avail) || scale <= 0.6 {
            first.draw(&mut page, LEFT, top);
            second.draw(&mut page, LEFT + col_w + col_gap, top);
            break;
        }
        scale -= 0.05;
    }
    footer(&mut page);
    pages.push(page);
    Ok(pages)
}

/// Splits a block of lines into two columns of at most `h` each, before a heading, as evenly
/// as it can; the second column may be taller than `h` when the text does not fit.
fn split_columns(block: &Block, h: f32) -> (Block, Block) {
    let total = block.height;
    let candidates = block.lines.iter().enumerate().filter(|(_, l)| l.start && l.bold).map(|(i, _)| i);
    let split = candidates
        .filter(|&i| block.lines[i].dy <= h)
        .min_by(|&a, &b| {
            let worst = |i: usize| {
                let dy = block.lines[i].dy;
                dy.max(total - dy)
            };
            worst(a).total_cmp(&worst(b))
        })
        .unwrap_or(block.lines.len());
    let (a, b) = block.lines.split_at(split);
    let shift = b.first().map_or(0.0, |l| l.dy);
    let second: Vec<Placed> = b.iter().map(|l| Placed { dy: l.dy - shift, ..l.clone() }).collect();
    let height = |ls: &[Placed]| ls.iter().map(|l| l.dy + l.h).fold(0.0, f32::max);
    (Block { height: height(a), lines: a.to_vec() }, Block { height: height(&second), lines: second })
}

#[cfg(test)]
mod tests {
    use originlink_model::{Agreement, CertificateNumber, CountryCode, NaiveDate, sample::sample};

    use super::*;
    use crate::draw::Op;

    fn opts() -> PrintOptions {
        PrintOptions {
            verify_url: "http://127.0.0.1:8443/verify?n=KH-2026-000002&c=7K3M9-QX2VD".to_owned(),
            check_code: "7K3M9-QX2VD".to_owned(),
            sha256_hex: "ab".repeat(32),
            copy: None,
        }
    }

    fn cert(agreement: Agreement, items: usize) -> Certificate {
        let c = |s| CountryCode::parse(s).unwrap();
        sample(agreement, c("KH"), c("TH"), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), items, 1)
    }

    /// Every drawing stays on the page, inside the margins, and text does not run past the
    /// right margin or into the footer.
    fn assert_on_page(fonts: &Fonts, pages: &[Page]) {
        for (n, page) in pages.iter().enumerate() {
            for op in &page.ops {
                let (x0, y0, x1, y1) = match op {
                    Op::Text { x, y, size, bold, text } => {
                        (*x, y - size, x + fonts.width(text, *size, *bold), *y)
                    }
                    Op::Frame { x, y, w, h, .. } | Op::Fill { x, y, w, h, .. } => (*x, *y, x + w, y + h),
                    Op::Line { x1, y1, x2, y2, .. } => (x1.min(*x2), y1.min(*y2), x1.max(*x2), y1.max(*y2)),
                    Op::Modules { x, y, .. } => (*x, *y, x + QR_SIDE, y + QR_SIDE),
                };
                assert!(
                    x0 >= LEFT - 0.5 && x1 <= RIGHT + 0.5 && y0 >= 10.0 && y1 <= PAGE_H - 10.0,
                    "page {}: {op:?} is off the page ({x0}, {y0}, {x1}, {y1})",
                    n + 1
                );
                if !matches!(op, Op::Text { text, .. } if text.starts_with("Printed from")) {
                    assert!(y1 <= FORM_BOTTOM + 0.5, "page {}: {op:?} runs into the footer", n + 1);
                }
            }
        }
    }

    #[test]
    fn both_forms_stay_inside_the_page() {
        let fonts = Fonts::load().unwrap();
        for agreement in Agreement::ALL {
            for items in [1, 3, 12, 50] {
                let pages = pages(&fonts, &cert(agreement, items), &opts()).unwrap();
                assert_on_page(&fonts, &pages);
                // Every item number appears once as the first cell of its row.
                let texts: Vec<&str> = pages.iter().flat_map(|p| p.texts()).collect();
                for n in 1..=items {
                    assert!(texts.contains(&n.to_string().as_str()), "{agreement} item {n}");
                }
            }
        }
    }

    #[test]
    fn the_longest_allowed_texts_shrink_or_wrap_but_stay_on_the_page() {
        let fonts = Fonts::load().unwrap();
        let long = |s: &str| s.repeat(512 / s.len() + 1).chars().take(512).collect::<String>();
        for agreement in Agreement::ALL {
            let mut c = cert(agreement, 3);
            for p in [&mut c.exporter, &mut c.consignee] {
                p.name = long("Long Trading Name ");
                p.address.street = Some(long("ក្រុមហ៊ុន អង្គរ អាហារ "));
                p.address.city = Some(long("Cityname "));
            }
            if let Some(p) = c.producer.as_mut() {
                p.name = long("บริษัท สยาม เฟรช เทรดดิ้ง จำกัด ");
            }
            c.transport.vessel = Some(long("MV-Very-Long-Vessel-Name-Without-Spaces"));
            c.items[0].description = long("Công ty Cổ phần Hàng Công nghiệp Sài Gòn ");
            c.items[1].marks = long("MARK/");
            c.declaration.signatory = long("Signatory ");
            c.remarks = Some(long("Remark "));
            c.number = Some(CertificateNumber::parse("KH-2026-ABCDEFGHIJKLMNOPQRSTUVWXYZ1").unwrap());
            let mut opts = opts();
            opts.copy = Some(u32::MAX);
            opts.check_code = long("CHECK-");
            let pages = pages(&fonts, &c, &opts).unwrap();
            assert_on_page(&fonts, &pages);
        }
    }

    #[test]
    fn an_application_is_not_printed() {
        let fonts = Fonts::load().unwrap();
        let mut c = cert(Agreement::Atiga, 1);
        c.certification = None;
        assert_eq!(pages(&fonts, &c, &opts()).unwrap_err().code(), "PRINT_NOT_ISSUED");
        c.number = None;
        assert_eq!(crate::render(&c, &opts()).unwrap_err().code(), "PRINT_NOT_ISSUED");
    }

    #[test]
    fn the_same_certificate_prints_the_same_bytes() {
        let c = cert(Agreement::Rcep, 4);
        let a = crate::render(&c, &opts()).unwrap();
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, crate::render(&c, &opts()).unwrap());
    }

    #[test]
    fn flags_tick_their_boxes() {
        let fonts = Fonts::load().unwrap();
        let mut c = cert(Agreement::Atiga, 1);
        c.flags.de_minimis = true;
        c.flags.issued_retroactively = true;
        let pages = pages(&fonts, &c, &opts()).unwrap();
        let texts = pages[0].texts();
        // The tick is a bold X drawn just before the ticked labels, and only there.
        let ticked: Vec<&str> = texts.windows(2).filter(|w| w[0] == "X").map(|w| w[1]).collect();
        assert_eq!(ticked, vec!["De Minimis", "Issued Retroactively"]);
    }
}
