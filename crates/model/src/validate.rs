//! Validation: every problem of a certificate, each with a stable code, a location and a
//! message. Field-level problems are caught when a reader builds the strong types; this module
//! checks what only the whole certificate can tell (cross-field rules and agreement settings).
//!
//! Locations are JSON pointers into the model (`/items/3/fob`). Format readers translate them
//! into paths of their own format.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::agreement::AgreementSettings;
use crate::certificate::{Certificate, Party, ProofKind};
use crate::codes::CountryCode;
use crate::error::ParseError;

/// The longest free text a field may hold.
pub const MAX_TEXT: usize = 512;

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable code, e.g. `FOB_REQUIRED_FOR_RVC`.
    pub code: String,
    /// Where: a JSON pointer or XPath-like path.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl Problem {
    /// A problem at a path.
    pub fn new(code: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { code: code.into(), path: path.into(), message: message.into() }
    }

    /// A problem from a type's parse error.
    pub fn from_parse(e: &ParseError, path: impl Into<String>) -> Self {
        let message = match &e.detail {
            Some(d) => format!("{:?} is not accepted: {d}", e.value),
            None => format!("{:?} is not accepted", e.value),
        };
        Problem { code: e.code.to_owned(), path: path.into(), message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.path, self.message)
    }
}

/// Checks a certificate against its agreement's built-in settings.
pub fn validate(cert: &Certificate) -> Vec<Problem> {
    validate_with(cert, cert.agreement.settings())
}

/// Checks a certificate against given agreement settings. Returns every problem found; an
/// empty list means valid.
pub fn validate_with(cert: &Certificate, s: &AgreementSettings) -> Vec<Problem> {
    let mut p = Vec::new();
    let agreement = cert.agreement.code();

    // Parties and countries.
    if cert.exporting_country == cert.importing_country {
        p.push(Problem::new(
            "SAME_COUNTRY",
            "/importing_country",
            "the importing country must differ from the exporting country",
        ));
    }
    member(&mut p, s, agreement, cert.exporting_country, "/exporting_country");
    member(&mut p, s, agreement, cert.importing_country, "/importing_country");
    party(&mut p, &cert.exporter, "/exporter");
    party(&mut p, &cert.consignee, "/consignee");
    if cert.exporter.address.country != cert.exporting_country {
        p.push(Problem::new(
            "EXPORTER_COUNTRY_MISMATCH",
            "/exporter/address/country",
            format!(
                "the exporter's address is in {}, but the certificate is issued in {}",
                cert.exporter.address.country, cert.exporting_country
            ),
        ));
    }
    if let Some(pr) = &cert.producer {
        party(&mut p, pr, "/producer");
    }
    text(&mut p, &cert.reference, "/reference", true);
    if let Some(r) = &cert.remarks {
        text(&mut p, r, "/remarks", false);
    }
    if cert.version == 0 {
        p.push(Problem::new("VERSION_INVALID", "/version", "versions start at 1"));
    }
    if cert.version > 1 && cert.replaces.is_none() {
        p.push(Problem::new(
            "REPLACES_REQUIRED",
            "/replaces",
            "a version after the first must reference the certificate it replaces",
        ));
    }

    // Kind of proof.
    match cert.kind {
        ProofKind::Certificate => {}
        ProofKind::ApprovedExporterDeclaration | ProofKind::ExporterDeclaration
            if cert.agreement != crate::Agreement::Rcep =>
        {
            p.push(Problem::new(
                "PROOF_KIND_NOT_ALLOWED",
                "/kind",
                format!("{agreement} knows only certificates issued by an authority"),
            ));
        }
        ProofKind::ApprovedExporterDeclaration => {
            if cert.approved_exporter.as_deref().is_none_or(|c| c.trim().is_empty()) {
                p.push(Problem::new(
                    "APPROVED_EXPORTER_CODE_REQUIRED",
                    "/approved_exporter",
                    "a declaration by an approved exporter must carry its authorization code",
                ));
            }
        }
        ProofKind::ExporterDeclaration => {}
    }
    if let Some(code) = &cert.approved_exporter {
        text(&mut p, code, "/approved_exporter", true);
    }

    // Transport.
    text(&mut p, &cert.transport.port_of_discharge.name, "/transport/port_of_discharge/name", true);
    text(&mut p, &cert.transport.port_of_loading.name, "/transport/port_of_loading/name", true);
    for (port, path) in [
        (&cert.transport.port_of_loading, "/transport/port_of_loading/code"),
        (&cert.transport.port_of_discharge, "/transport/port_of_discharge/code"),
    ] {
        if let Some(c) = &port.code {
            let ok = c.len() == 5
                && CountryCode::parse(&c[..2]).is_ok()
                && c[2..].bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'9').contains(&b));
            if !ok {
                p.push(Problem::new("LOCODE_INVALID", path, format!("{c:?} is not a UN/LOCODE")));
            }
        }
    }

    // Items.
    if cert.items.is_empty() {
        p.push(Problem::new("ITEMS_EMPTY", "/items", "a certificate lists at least one item"));
    }
    if cert.items.len() > s.max_items {
        p.push(Problem::new(
            "ITEM_LIMIT",
            "/items",
            format!("{} items; {agreement} allows at most {}", cert.items.len(), s.max_items),
        ));
    }
    let currency = cert.items.iter().find_map(|i| i.fob.map(|f| f.currency()));
    for (i, item) in cert.items.iter().enumerate() {
        let at = |f: &str| format!("/items/{i}/{f}");
        if item.number as usize != i + 1 {
            p.push(Problem::new(
                "ITEM_NUMBERING",
                at("number"),
                format!("item {} is numbered {}", i + 1, item.number),
            ));
        }
        text(&mut p, &item.description, &at("description"), true);
        text(&mut p, &item.marks, &at("marks"), false);
        text(&mut p, &item.invoice.number, &at("invoice/number"), true);
        if item.packages.count == 0 {
            p.push(Problem::new("PACKAGES_ZERO", at("packages/count"), "at least one package"));
        }
        if !s.allows_criterion(item.criterion.kind()) {
            p.push(Problem::new(
                "CRITERION_NOT_ALLOWED",
                at("criterion"),
                format!(
                    "{} is not an origin criterion of {agreement} (allowed: {})",
                    item.criterion,
                    s.criteria.join(", ")
                ),
            ));
        }
        if s.fob_required_for_rvc && item.criterion.uses_rvc() && item.fob.is_none() {
            p.push(Problem::new(
                "FOB_REQUIRED_FOR_RVC",
                at("fob"),
                format!(
                    "criterion {} uses a regional value content, so the FOB value must be stated",
                    item.criterion
                ),
            ));
        }
        if let Some(fob) = item.fob {
            if fob.amount() <= Decimal::ZERO {
                p.push(Problem::new("FOB_NOT_POSITIVE", at("fob"), "the FOB value must be above zero"));
            }
            if Some(fob.currency()) != currency {
                p.push(Problem::new(
                    "CURRENCY_MIXED",
                    at("fob"),
                    format!(
                        "FOB in {}, but earlier items are in {}",
                        fob.currency(),
                        currency.map(|c| c.to_string()).unwrap_or_default()
                    ),
                ));
            }
        }
        if matches!(item.criterion, crate::OriginCriterion::PartialCumulation(_))
            && !cert.flags.partial_cumulation
        {
            p.push(Problem::new(
                "PARTIAL_CUMULATION_FLAG_REQUIRED",
                at("criterion"),
                "an item under partial cumulation needs the Partial Cumulation box ticked",
            ));
        }
        if let Some(w) = item.gross_weight
            && !matches!(w.unit().as_str(), "KGM" | "TNE" | "GRM" | "MGM" | "LBR" | "ONZ" | "STN")
        {
            p.push(Problem::new(
                "WEIGHT_UNIT",
                at("gross_weight"),
                format!("{} is not a unit of mass", w.unit()),
            ));
        }
        member(&mut p, s, agreement, item.origin_country, &at("origin_country"));
    }

    // Box 13.
    if let Some(inv) = &cert.flags.third_party_invoicing {
        party(&mut p, inv, "/flags/third_party_invoicing");
    }
    if let Some(ex) = &cert.flags.exhibition {
        text(&mut p, &ex.name, "/flags/exhibition/name", true);
        text(&mut p, &ex.place, "/flags/exhibition/place", true);
    }
    if let Some(b2b) = &cert.flags.back_to_back {
        if b2b.country == cert.exporting_country {
            p.push(Problem::new(
                "BACK_TO_BACK_SAME_COUNTRY",
                "/flags/back_to_back/country",
                "a back-to-back certificate is made from one issued in another member",
            ));
        }
        member(&mut p, s, agreement, b2b.country, "/flags/back_to_back/country");
    }

    // Dates.
    text(&mut p, &cert.declaration.place, "/declaration/place", true);
    text(&mut p, &cert.declaration.signatory, "/declaration/signatory", true);
    if let Some(c) = &cert.certification {
        party(&mut p, &c.authority, "/certification/authority");
        text(&mut p, &c.place, "/certification/place", true);
        text(&mut p, &c.officer, "/certification/officer", true);
        if c.authority.address.country != cert.exporting_country {
            p.push(Problem::new(
                "ISSUER_COUNTRY_MISMATCH",
                "/certification/authority/address/country",
                "the issuing authority must be in the exporting country",
            ));
        }
        if c.date < cert.declaration.date {
            p.push(Problem::new(
                "DATE_ORDER",
                "/certification/date",
                format!("issued on {} before the exporter declared on {}", c.date, cert.declaration.date),
            ));
        }
        for (i, item) in cert.items.iter().enumerate() {
            if item.invoice.date > c.date {
                p.push(Problem::new(
                    "DATE_ORDER",
                    format!("/items/{i}/invoice/date"),
                    format!("invoice dated {} after the issue date {}", item.invoice.date, c.date),
                ));
            }
        }
        let late = (c.date - cert.transport.departure_date).num_days();
        let retro = late > i64::from(s.retroactive_after_days);
        if late > i64::from(s.retroactive_max_days) {
            p.push(Problem::new(
                "RETROACTIVE_TOO_LATE",
                "/certification/date",
                format!("issued {late} days after shipment; at most {} are allowed", s.retroactive_max_days),
            ));
        } else if retro && !cert.flags.issued_retroactively {
            p.push(Problem::new(
                "RETROACTIVE_FLAG_REQUIRED",
                "/flags/issued_retroactively",
                format!("issued {late} days after shipment, so it must be marked Issued Retroactively"),
            ));
        } else if !retro && cert.flags.issued_retroactively {
            p.push(Problem::new(
                "RETROACTIVE_FLAG_UNEXPECTED",
                "/flags/issued_retroactively",
                format!("issued {late} days after shipment, which is not retroactive"),
            ));
        }
    }
    p
}

fn member(p: &mut Vec<Problem>, s: &AgreementSettings, agreement: &str, c: CountryCode, path: &str) {
    if !s.is_member(c) {
        p.push(Problem::new(
            "NOT_A_MEMBER",
            path,
            format!("{c} ({}) is not a party to {agreement}", c.name()),
        ));
    }
}

fn party(p: &mut Vec<Problem>, party: &Party, path: &str) {
    text(p, &party.name, &format!("{path}/name"), true);
    for (v, f) in [
        (&party.id, "id"),
        (&party.address.street, "address/street"),
        (&party.address.city, "address/city"),
        (&party.address.postcode, "address/postcode"),
    ] {
        if let Some(v) = v {
            text(p, v, &format!("{path}/{f}"), false);
        }
    }
}

fn text(p: &mut Vec<Problem>, v: &str, path: &str, required: bool) {
    if required && v.trim().is_empty() {
        p.push(Problem::new("REQUIRED", path, "must not be empty"));
    }
    if v.chars().count() > MAX_TEXT {
        p.push(Problem::new("TEXT_TOO_LONG", path, format!("longer than {MAX_TEXT} characters")));
    }
    if v.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
        p.push(Problem::new("TEXT_CONTROL_CHAR", path, "contains a control character"));
    }
}
