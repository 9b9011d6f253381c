//! The UBL writer: builds the document directly as a string, either compact (no whitespace
//! between elements: the form that is signed and exchanged, smaller and faster to parse) or
//! pretty-printed with a 2-space indent for people. Element order follows the UBL 2.4 schema
//! sequences.

use std::fmt::Write as _;

use originlink_model::{Certificate, CertificateRef, Item, NaiveDate, Party, ProofKind, TransportMode};

use super::paths::{ROLE_BACK_TO_BACK, ROLE_REPLACED, SCHEME_APPROVED_EXPORTER, key};
use super::{CUSTOMIZATION_ID, NS_CAC, NS_CBC, NS_COO};

/// A tiny XML writer, indenting when `pretty`.
struct W {
    s: String,
    depth: usize,
    pretty: bool,
}

impl W {
    fn indent(&mut self) {
        if self.pretty {
            for _ in 0..self.depth {
                self.s.push_str("  ");
            }
        }
    }
    fn nl(&mut self) {
        if self.pretty {
            self.s.push('\n');
        }
    }
    fn open(&mut self, tag: &str) {
        self.indent();
        self.s.push('<');
        self.s.push_str(tag);
        self.s.push('>');
        self.nl();
        self.depth += 1;
    }
    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.indent();
        self.s.push_str("</");
        self.s.push_str(tag);
        self.s.push('>');
        self.nl();
    }
    fn empty(&mut self, tag: &str) {
        self.indent();
        self.s.push('<');
        self.s.push_str(tag);
        self.s.push_str("/>");
        self.nl();
    }
    fn leaf(&mut self, tag: &str, text: &str) {
        self.leaf_attr(tag, &[], text);
    }
    fn leaf_attr(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) {
        self.indent();
        self.s.push('<');
        self.s.push_str(tag);
        for (k, v) in attrs {
            self.s.push(' ');
            self.s.push_str(k);
            self.s.push_str("=\"");
            escape(&mut self.s, v, true);
            self.s.push('"');
        }
        self.s.push('>');
        escape(&mut self.s, text, false);
        self.s.push_str("</");
        self.s.push_str(tag);
        self.s.push('>');
        self.nl();
    }
    fn leaf_date(&mut self, tag: &str, d: NaiveDate) {
        self.indent();
        let _ = write!(self.s, "<{tag}>{d}</{tag}>");
        self.nl();
    }
    fn leaf_num(&mut self, tag: &str, n: u32) {
        self.indent();
        let _ = write!(self.s, "<{tag}>{n}</{tag}>");
        self.nl();
    }
    /// A coded root note `key=value`.
    fn note(&mut self, key: &str, value: &str) {
        self.indent();
        self.s.push_str("<cbc:Note>");
        self.s.push_str(key);
        self.s.push('=');
        escape(&mut self.s, value, false);
        self.s.push_str("</cbc:Note>");
        self.nl();
    }
}

/// Escapes text (or an attribute value). Characters XML 1.0 cannot carry at all (C0 controls
/// other than tab, newline and carriage return; U+FFFE, U+FFFF) become U+FFFD; validation
/// refuses them anyway. Carriage returns (and, in attributes, tabs and newlines) are written
/// as character references so that they survive end-of-line and attribute normalisation.
fn escape(out: &mut String, s: &str, attr: bool) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: Option<&str> = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' if attr => Some("&quot;"),
            '\r' => Some("&#xD;"),
            '\n' if attr => Some("&#xA;"),
            '\t' if attr => Some("&#x9;"),
            '\t' | '\n' => None,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => Some("\u{FFFD}"),
            _ => None,
        };
        if let Some(r) = rep {
            out.push_str(&s[start..i]);
            out.push_str(r);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..]);
}

fn party(w: &mut W, tag: &str, p: &Party, approved_exporter: Option<&str>) {
    w.open(tag);
    if let Some(id) = &p.id {
        w.open("cac:PartyIdentification");
        w.leaf("cbc:ID", id);
        w.close("cac:PartyIdentification");
    }
    if let Some(code) = approved_exporter {
        w.open("cac:PartyIdentification");
        w.leaf_attr("cbc:ID", &[("schemeID", SCHEME_APPROVED_EXPORTER)], code);
        w.close("cac:PartyIdentification");
    }
    w.open("cac:PartyName");
    w.leaf("cbc:Name", &p.name);
    w.close("cac:PartyName");
    w.open("cac:PostalAddress");
    if let Some(v) = &p.address.street {
        w.leaf("cbc:StreetName", v);
    }
    if let Some(v) = &p.address.city {
        w.leaf("cbc:CityName", v);
    }
    if let Some(v) = &p.address.postcode {
        w.leaf("cbc:PostalZone", v);
    }
    country(w, "cac:Country", p.address.country.as_str());
    w.close("cac:PostalAddress");
    w.close(tag);
}

/// A party that is only named (where UBL requires a party the model already has elsewhere).
fn named_party(w: &mut W, tag: &str, name: &str) {
    w.open(tag);
    w.open("cac:PartyName");
    w.leaf("cbc:Name", name);
    w.close("cac:PartyName");
    w.close(tag);
}

fn country(w: &mut W, tag: &str, code: &str) {
    w.open(tag);
    w.leaf("cbc:IdentificationCode", code);
    w.close(tag);
}

fn cert_ref(w: &mut W, role: &str, r: &CertificateRef) {
    w.open("cac:SupportingDocumentReference");
    w.leaf("cbc:ID", r.number.as_str());
    w.leaf_attr("cbc:DocumentTypeCode", &[("listID", "UNCL1001")], "861");
    w.leaf("cbc:DocumentType", role);
    w.open("cac:IssuerParty");
    w.open("cac:PostalAddress");
    country(w, "cac:Country", r.country.as_str());
    w.close("cac:PostalAddress");
    w.close("cac:IssuerParty");
    w.close("cac:SupportingDocumentReference");
}

fn goods_item(w: &mut W, c: &Certificate, it: &Item) {
    w.open("cac:GoodsItem");
    w.leaf_num("cbc:ID", it.number);
    w.leaf("cbc:Description", &it.description);
    if let Some(fob) = &it.fob {
        w.leaf_attr(
            "cbc:FreeOnBoardValueAmount",
            &[("currencyID", fob.currency().as_str())],
            &fob.amount_text(),
        );
    }
    if let Some(q) = &it.gross_weight {
        w.leaf_attr("cbc:GrossWeightMeasure", &[("unitCode", q.unit().as_str())], &q.value().to_string());
    }
    w.leaf_attr(
        "cbc:Quantity",
        &[("unitCode", it.quantity.unit().as_str())],
        &it.quantity.value().to_string(),
    );
    w.leaf("cbc:PreferenceCriterionCode", &it.criterion.to_string());
    w.open("cac:Item");
    country(w, "cac:OriginCountry", it.origin_country.as_str());
    w.open("cac:CommodityClassification");
    w.leaf_attr("cbc:ItemClassificationCode", &[("listID", "HS")], it.hs.digits());
    w.close("cac:CommodityClassification");
    if let Some(p) = &c.producer {
        party(w, "cac:ManufacturerParty", p, None);
    }
    w.close("cac:Item");
    w.open("cac:AdditionalDocumentReference");
    w.leaf("cbc:ID", &it.invoice.number);
    w.leaf_date("cbc:IssueDate", it.invoice.date);
    w.leaf_attr("cbc:DocumentTypeCode", &[("listID", "UNCL1001")], "380");
    if let Some(p) = &c.flags.third_party_invoicing {
        party(w, "cac:IssuerParty", p, None);
    }
    w.close("cac:AdditionalDocumentReference");
    w.close("cac:GoodsItem");
}

fn handling_unit(w: &mut W, it: &Item) {
    w.open("cac:TransportHandlingUnit");
    w.leaf_num("cbc:ID", it.number);
    w.leaf_num("cbc:TotalPackageQuantity", it.packages.count);
    w.leaf("cbc:ShippingMarks", &it.marks);
    w.open("cac:Package");
    w.leaf("cbc:PackagingTypeCode", it.packages.kind.as_str());
    w.close("cac:Package");
    w.close("cac:TransportHandlingUnit");
}

fn shipment(w: &mut W, c: &Certificate) {
    w.open("cac:Shipment");
    for it in &c.items {
        goods_item(w, c, it);
    }
    let t = &c.transport;
    w.open("cac:ShipmentStage");
    w.leaf_num("cbc:TransportModeCode", u32::from(t.mode.code()));
    w.open("cac:TransitPeriod");
    w.leaf_date("cbc:StartDate", t.departure_date);
    w.close("cac:TransitPeriod");
    if let Some(v) = &t.vessel {
        w.open("cac:TransportMeans");
        let (outer, inner) = vessel_element(t.mode);
        match outer {
            Some(outer) => {
                w.open(outer);
                w.leaf(inner, v);
                w.close(outer);
            }
            None => w.leaf(inner, v),
        }
        w.close("cac:TransportMeans");
    }
    for (tag, port) in
        [("cac:LoadingPortLocation", &t.port_of_loading), ("cac:UnloadingPortLocation", &t.port_of_discharge)]
    {
        w.open(tag);
        if let Some(code) = &port.code {
            w.leaf_attr("cbc:ID", &[("schemeID", "UN/LOCODE")], code);
        }
        w.leaf("cbc:Name", &port.name);
        w.close(tag);
    }
    w.close("cac:ShipmentStage");
    w.open("cac:Delivery");
    w.open("cac:DeliveryAddress");
    country(w, "cac:Country", c.importing_country.as_str());
    w.close("cac:DeliveryAddress");
    if let Some(ex) = &c.flags.exhibition {
        w.open("cac:DeliveryLocation");
        w.leaf("cbc:Name", &ex.name);
        w.open("cac:Address");
        w.open("cac:AddressLine");
        w.leaf("cbc:Line", &ex.place);
        w.close("cac:AddressLine");
        w.close("cac:Address");
        w.close("cac:DeliveryLocation");
    }
    w.close("cac:Delivery");
    for it in &c.items {
        handling_unit(w, it);
    }
    w.close("cac:Shipment");
}

/// Where the vessel / flight / vehicle text goes for a mode: (wrapper in `cac:TransportMeans`,
/// element).
pub(crate) fn vessel_element(mode: TransportMode) -> (Option<&'static str>, &'static str) {
    match mode {
        TransportMode::Sea | TransportMode::InlandWater => (Some("cac:MaritimeTransport"), "cbc:VesselName"),
        TransportMode::Air => (Some("cac:AirTransport"), "cbc:AircraftID"),
        TransportMode::Road => (Some("cac:RoadTransport"), "cbc:LicensePlateID"),
        TransportMode::Rail => (Some("cac:RailTransport"), "cbc:TrainID"),
        TransportMode::Mail | TransportMode::Multimodal => (None, "cbc:JourneyID"),
    }
}

/// Writes the certificate. See `docs/formats.md` for the mapping.
pub(crate) fn write(c: &Certificate, pretty: bool) -> String {
    let mut w = W { s: String::with_capacity(4096 + 1536 * c.items.len()), depth: 0, pretty };
    w.s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let sep = if pretty { "\n    " } else { " " };
    let _ = write!(
        w.s,
        "<CertificateOfOrigin xmlns=\"{NS_COO}\"{sep}xmlns:cac=\"{NS_CAC}\"{sep}xmlns:cbc=\"{NS_CBC}\">"
    );
    w.nl();
    w.depth = 1;
    w.leaf("cbc:UBLVersionID", "2.4");
    w.leaf("cbc:CustomizationID", CUSTOMIZATION_ID);
    w.leaf("cbc:ProfileID", c.agreement.code());
    w.leaf("cbc:ID", c.number.as_ref().map(|n| n.as_str()).unwrap_or(""));
    if let Some(cert) = &c.certification {
        w.leaf_date("cbc:IssueDate", cert.date);
    }
    w.note(key::DECLARATION_PLACE, &c.declaration.place);
    w.note(key::DECLARATION_DATE, &c.declaration.date.to_string());
    if let Some(cert) = &c.certification {
        w.note(key::CERTIFICATION_PLACE, &cert.place);
    }
    if let Some(o) = &c.official_use {
        w.note(
            key::OFFICIAL_USE,
            if o.preference_given { "preference-given" } else { "preference-not-given" },
        );
        if let Some(r) = &o.reason {
            w.note(key::OFFICIAL_USE_REASON, r);
        }
    }
    for (set, k) in [
        (c.flags.de_minimis, key::DE_MINIMIS),
        (c.flags.accumulation, key::ACCUMULATION),
        (c.flags.partial_cumulation, key::PARTIAL_CUMULATION),
        (c.flags.issued_retroactively, key::ISSUED_RETROACTIVELY),
    ] {
        if set {
            w.note(k, "true");
        }
    }
    w.leaf_num("cbc:VersionID", c.version);
    party(&mut w, "cac:ExporterParty", &c.exporter, c.approved_exporter.as_deref());
    party(&mut w, "cac:ImporterParty", &c.consignee, None);

    w.open("cac:CertificateOfOriginApplication");
    w.leaf("cbc:ReferenceID", &c.reference);
    w.leaf("cbc:CertificateType", c.kind.code());
    w.leaf("cbc:OriginalJobID", &c.reference);
    if let Some(r) = &c.remarks {
        w.leaf("cbc:Remarks", r);
    }
    shipment(&mut w, c);
    w.open("cac:EndorserParty");
    w.leaf("cbc:RoleCode", if c.kind == ProofKind::Certificate { "exporter" } else { "declarant" });
    w.leaf("cbc:SequenceNumeric", "1");
    named_party(&mut w, "cac:Party", &c.exporter.name);
    w.open("cac:SignatoryContact");
    w.leaf("cbc:Name", &c.declaration.signatory);
    w.close("cac:SignatoryContact");
    w.close("cac:EndorserParty");
    named_party(&mut w, "cac:PreparationParty", &c.exporter.name);
    match &c.certification {
        Some(cert) => named_party(&mut w, "cac:IssuerParty", &cert.authority.name),
        None => w.empty("cac:IssuerParty"),
    }
    country(&mut w, "cac:IssuingCountry", c.exporting_country.as_str());
    if let Some(r) = &c.replaces {
        cert_ref(&mut w, ROLE_REPLACED, r);
    }
    if let Some(r) = &c.flags.back_to_back {
        cert_ref(&mut w, ROLE_BACK_TO_BACK, r);
    }
    w.close("cac:CertificateOfOriginApplication");

    w.open("cac:IssuerEndorsement");
    let doc_id = c.number.as_ref().map(|n| n.as_str()).unwrap_or(&c.reference);
    w.leaf("cbc:DocumentID", doc_id);
    match &c.certification {
        Some(cert) => {
            w.leaf("cbc:ApprovalStatus", "Approved");
            w.open("cac:EndorserParty");
            w.leaf("cbc:RoleCode", "issuer");
            w.leaf("cbc:SequenceNumeric", "1");
            party(&mut w, "cac:Party", &cert.authority, None);
            w.open("cac:SignatoryContact");
            w.leaf("cbc:Name", &cert.officer);
            w.close("cac:SignatoryContact");
            w.close("cac:EndorserParty");
        }
        None => {
            w.leaf("cbc:ApprovalStatus", "Pending");
            w.open("cac:EndorserParty");
            w.leaf("cbc:RoleCode", "issuer");
            w.leaf("cbc:SequenceNumeric", "1");
            w.empty("cac:Party");
            w.empty("cac:SignatoryContact");
            w.close("cac:EndorserParty");
        }
    }
    w.close("cac:IssuerEndorsement");
    w.depth = 0;
    w.s.push_str("</CertificateOfOrigin>\n");
    w.s
}
