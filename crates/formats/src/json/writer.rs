//! The edi3 JSON writer: builds an ordered tree, then prints it pretty.

use std::borrow::Cow;

use originlink_model::{Certificate, CertificateRef, Item, Money, NaiveDate, Party, Port, Quantity};

use super::{
    APPLICATION_PREFIX, DOC_PREFIX, EXTENSION, INVOICE_PREFIX, LOCODE_PREFIX, PARTY_PREFIX, pct_encode,
};

/// A JSON value whose objects keep their properties in the order written.
enum J<'a> {
    Obj(Vec<(&'static str, J<'a>)>),
    Arr(Vec<J<'a>>),
    Str(Cow<'a, str>),
    /// Number text, written as is (only integers are written).
    Num(String),
    Bool(bool),
}

fn s(v: &str) -> J<'_> {
    J::Str(Cow::Borrowed(v))
}
fn owned<'a>(v: String) -> J<'a> {
    J::Str(Cow::Owned(v))
}
fn num<'a>(n: u32) -> J<'a> {
    J::Num(n.to_string())
}
fn prefixed<'a>(prefix: &str, raw: &str) -> J<'a> {
    let mut out = String::with_capacity(prefix.len() + raw.len() + 8);
    out.push_str(prefix);
    pct_encode(raw, &mut out);
    J::Str(Cow::Owned(out))
}
/// A date as an RFC 3339 date-time at midnight UTC (edi3 types every date as `date-time`).
fn date_time<'a>(d: NaiveDate) -> J<'a> {
    owned(format!("{}T00:00:00Z", d.format("%Y-%m-%d")))
}
fn country<'a>(c: originlink_model::CountryCode) -> J<'a> {
    J::Obj(vec![("code", owned(c.as_str().to_owned())), ("name", s(c.name()))])
}

pub(super) fn write(c: &Certificate) -> String {
    let settings = c.agreement.settings();
    let mut root: Vec<(&'static str, J)> = Vec::with_capacity(16);

    let mut id = String::with_capacity(48);
    match &c.number {
        Some(n) => {
            id.push_str(DOC_PREFIX);
            id.push_str(c.exporting_country.as_str());
            id.push(':');
            pct_encode(n.as_str(), &mut id);
        }
        None => {
            id.push_str(APPLICATION_PREFIX);
            id.push_str(c.exporting_country.as_str());
            id.push(':');
            pct_encode(&c.reference, &mut id);
        }
    }
    root.push(("iD", owned(id)));
    if let Some(cert) = &c.certification {
        root.push(("issueDateTime", date_time(cert.date)));
    }
    let name = if settings.form.starts_with(c.agreement.code()) {
        settings.form.clone()
    } else {
        format!("{} {}", c.agreement.code(), settings.form)
    };
    root.push(("name", owned(name)));
    root.push(("status", s(if c.certification.is_some() { "issued" } else { "draft" })));
    root.push(("isPreferential", J::Bool(true)));
    root.push(("freeTradeAgreement", s(c.agreement.code())));
    root.push((
        "firstSignatoryAuthentication",
        J::Obj(vec![
            ("actualDateTime", date_time(c.declaration.date)),
            (
                "statement",
                owned(format!(
                    "The undersigned hereby declares that the above details and statement are correct \
                     and that the goods comply with the origin requirements of the {}.",
                    settings.name
                )),
            ),
        ]),
    ));
    if let Some(cert) = &c.certification {
        root.push((
            "secondSignatoryAuthentication",
            J::Obj(vec![
                ("actualDateTime", date_time(cert.date)),
                (
                    "statement",
                    s("It is hereby certified, on the basis of control carried out, that the \
                       declaration by the exporter is correct."),
                ),
            ]),
        ));
        root.push(("issueLocation", J::Obj(vec![("name", s(&cert.place))])));
        root.push(("issuer", party(&cert.authority)));
    }
    root.push(("supplyChainConsignment", consignment(c)));
    root.push((EXTENSION, extension(c)));

    let mut out = String::with_capacity(4096 + c.items.len() * 1500);
    print(&J::Obj(root), 0, &mut out);
    out.push('\n');
    out
}

fn party(p: &Party) -> J<'_> {
    let mut o = Vec::with_capacity(3);
    if let Some(id) = &p.id {
        o.push(("iD", prefixed(PARTY_PREFIX, id)));
    }
    o.push(("name", s(&p.name)));
    let a = &p.address;
    let mut addr = Vec::with_capacity(4);
    if let Some(v) = &a.street {
        addr.push(("line1", s(v)));
    }
    if let Some(v) = &a.city {
        addr.push(("cityName", s(v)));
    }
    if let Some(v) = &a.postcode {
        addr.push(("postcode", s(v)));
    }
    addr.push(("countryCode", owned(a.country.as_str().to_owned())));
    o.push(("postalAddress", J::Obj(addr)));
    J::Obj(o)
}

fn port(p: &Port) -> J<'_> {
    let mut o = Vec::with_capacity(2);
    if let Some(code) = &p.code {
        o.push(("iD", prefixed(LOCODE_PREFIX, code)));
    }
    o.push(("name", s(&p.name)));
    J::Obj(o)
}

fn consignment(c: &Certificate) -> J<'_> {
    let t = &c.transport;
    let mut o = Vec::with_capacity(10);
    if let Some(r) = &c.remarks {
        o.push(("information", s(r)));
    }
    o.push(("exportCountry", country(c.exporting_country)));
    o.push(("exporter", party(&c.exporter)));
    o.push(("importCountry", country(c.importing_country)));
    o.push(("importer", party(&c.consignee)));
    let mut cis: Vec<J> = c.items.iter().map(|i| consignment_item(i, c.producer.as_ref())).collect();
    if let (true, Some(p)) = (cis.is_empty(), &c.producer) {
        // No goods line to carry the producer: one consignment item with no trade line items.
        cis.push(J::Obj(vec![("manufacturer", party(p)), ("tradeLineItems", J::Arr(Vec::new()))]));
    }
    o.push(("includedConsignmentItems", J::Arr(cis)));
    o.push(("loadingBaseportLocation", port(&t.port_of_loading)));
    let mut movement = Vec::with_capacity(2);
    movement.push(("departureEvent", J::Obj(vec![("departureDateTime", date_time(t.departure_date))])));
    if let Some(v) = &t.vessel {
        movement.push(("usedTransportMeans", J::Obj(vec![("name", s(v))])));
    }
    o.push(("mainCarriageTransportMovement", J::Obj(movement)));
    o.push(("unloadingBaseportLocation", port(&t.port_of_discharge)));
    J::Obj(o)
}

fn consignment_item<'a>(i: &'a Item, producer: Option<&'a Party>) -> J<'a> {
    let mut o = Vec::with_capacity(3);
    o.push((
        "crossBorderRegulatoryProcedure",
        J::Obj(vec![("originCriteriaText", owned(i.criterion.to_string()))]),
    ));
    if let Some(p) = producer {
        o.push(("manufacturer", party(p)));
    }
    let mut classification = vec![("classCode", owned(i.hs.dotted()))];
    let hs_name = i.hs.description();
    if !hs_name.is_empty() {
        classification.push(("className", s(hs_name)));
    }
    let line = J::Obj(vec![
        ("sequenceNumber", num(i.number)),
        (
            "invoiceReference",
            J::Obj(vec![
                ("iD", prefixed(INVOICE_PREFIX, &i.invoice.number)),
                ("formattedIssueDateTime", date_time(i.invoice.date)),
            ]),
        ),
        (
            "tradeProduct",
            J::Obj(vec![
                ("description", s(&i.description)),
                ("harmonisedTariffCode", J::Obj(classification)),
                ("originCountry", country(i.origin_country)),
            ]),
        ),
    ]);
    o.push(("tradeLineItems", J::Arr(vec![line])));
    J::Obj(o)
}

fn cert_ref(r: &CertificateRef) -> J<'_> {
    J::Obj(vec![("country", owned(r.country.as_str().to_owned())), ("number", s(r.number.as_str()))])
}

fn quantity<'a>(q: &Quantity) -> J<'a> {
    J::Obj(vec![("value", owned(q.value().to_string())), ("unitCode", s(q.unit().as_str()))])
}

/// The amount with the currency's minor units (`1234.50`) when that text reads back to the
/// same amount; otherwise the amount as held.
fn money<'a>(m: &Money) -> J<'a> {
    let text = m.amount_text();
    let exact = originlink_model::parse_decimal(&text).is_ok_and(|d| d == m.amount());
    let amount = if exact { text } else { m.amount().to_string() };
    J::Obj(vec![("amount", owned(amount)), ("currencyCode", owned(m.currency().as_str().to_owned()))])
}

fn extension(c: &Certificate) -> J<'_> {
    let mut o = Vec::with_capacity(14);
    o.push(("proofKind", s(c.kind.code())));
    o.push(("applicationReference", s(&c.reference)));
    o.push(("version", num(c.version)));
    if let Some(r) = &c.replaces {
        o.push(("replaces", cert_ref(r)));
    }
    if let Some(a) = &c.approved_exporter {
        o.push(("approvedExporter", s(a)));
    }
    o.push(("transportModeCode", owned(c.transport.mode.code().to_string())));
    o.push((
        "declaration",
        J::Obj(vec![("place", s(&c.declaration.place)), ("signatory", s(&c.declaration.signatory))]),
    ));
    if let Some(cert) = &c.certification {
        o.push(("certification", J::Obj(vec![("officer", s(&cert.officer))])));
    }
    if let Some(u) = &c.official_use {
        let mut ou = vec![("preferenceGiven", J::Bool(u.preference_given))];
        if let Some(r) = &u.reason {
            ou.push(("reason", s(r)));
        }
        o.push(("officialUse", J::Obj(ou)));
    }
    let f = &c.flags;
    let mut flags = Vec::with_capacity(7);
    if let Some(p) = &f.third_party_invoicing {
        flags.push(("thirdPartyInvoicing", party(p)));
    }
    if let Some(e) = &f.exhibition {
        flags.push(("exhibition", J::Obj(vec![("name", s(&e.name)), ("place", s(&e.place))])));
    }
    if let Some(b) = &f.back_to_back {
        flags.push(("backToBack", cert_ref(b)));
    }
    flags.push(("deMinimis", J::Bool(f.de_minimis)));
    flags.push(("accumulation", J::Bool(f.accumulation)));
    flags.push(("partialCumulation", J::Bool(f.partial_cumulation)));
    flags.push(("issuedRetroactively", J::Bool(f.issued_retroactively)));
    o.push(("flags", J::Obj(flags)));
    let items = c
        .items
        .iter()
        .map(|i| {
            let mut it = Vec::with_capacity(5);
            it.push(("marks", s(&i.marks)));
            it.push((
                "packages",
                J::Obj(vec![("count", num(i.packages.count)), ("kindCode", s(i.packages.kind.as_str()))]),
            ));
            it.push(("quantity", quantity(&i.quantity)));
            if let Some(w) = &i.gross_weight {
                it.push(("grossWeight", quantity(w)));
            }
            if let Some(m) = &i.fob {
                it.push(("fob", money(m)));
            }
            J::Obj(it)
        })
        .collect();
    o.push(("items", J::Arr(items)));
    J::Obj(o)
}

fn indent(level: usize, out: &mut String) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn print(v: &J, level: usize, out: &mut String) {
    match v {
        J::Obj(props) if props.is_empty() => out.push_str("{}"),
        J::Obj(props) => {
            out.push_str("{\n");
            for (n, (k, val)) in props.iter().enumerate() {
                indent(level + 1, out);
                string(k, out);
                out.push_str(": ");
                print(val, level + 1, out);
                if n + 1 < props.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(level, out);
            out.push('}');
        }
        J::Arr(vals) if vals.is_empty() => out.push_str("[]"),
        J::Arr(vals) => {
            out.push_str("[\n");
            for (n, val) in vals.iter().enumerate() {
                indent(level + 1, out);
                print(val, level + 1, out);
                if n + 1 < vals.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(level, out);
            out.push(']');
        }
        J::Str(t) => string(t, out),
        J::Num(t) => out.push_str(t),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

/// A JSON string literal: `"` and `\` escaped, control characters as `\n`, `\t` … or `\u00XX`.
fn string(t: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in t.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&t[start..i]);
        if esc.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&t[start..]);
    out.push('"');
}
