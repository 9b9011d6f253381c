//! The hardened UBL reader. The size limit is checked before parsing; roxmltree parses with
//! DTDs forbidden (so no entity can be declared, expanded or fetched) and a node limit.
//! Elements are looked up by namespace and local name among direct children only, so
//! anything the mapping does not use (such as `ext:UBLExtensions` holding a signature) is
//! skipped. Every field problem is collected; nothing stops at the first.

use std::borrow::Cow;

use originlink_model::{
    Address, Agreement, Certificate, CertificateNumber, CertificateRef, Certification, CountryCode,
    Declaration, Exhibition, Flags, HsCode, Invoice, Item, Money, NaiveDate, OfficialUse, OriginCriterion,
    PackageKind, Packages, ParseError, Party, Port, Problem, ProofKind, Quantity, Transport, TransportMode,
};
use originlink_xmlbounds::Bounds;
use roxmltree::{Document, Node, ParsingOptions};

use super::paths::{self, APP, ENDORSE, EXPORTER, IMPORTER, ROOT, SHIP, STAGE, key};
use super::{NS_CAC, NS_CBC, NS_COO};
use crate::Limits;

/// Most nodes (elements, text, …) a document may have. A 50-item certificate has about
/// 3,000; a signature adds a few hundred.
const MAX_NODES: u32 = 200_000;

/// Most goods items read. Agreements allow far fewer (validation reports `ITEM_LIMIT` against
/// the agreement's own limit); this bounds the work and the problem list on hostile input.
const MAX_ITEMS: usize = 1_000;

/// Most problems listed; past it, one `TOO_MANY_PROBLEMS` ends the list.
const MAX_PROBLEMS: usize = 1_000;

type N<'a, 'i> = Node<'a, 'i>;

fn problem(code: &str, path: impl Into<String>, message: impl Into<String>) -> Vec<Problem> {
    vec![Problem::new(code, path, message)]
}

pub(crate) fn read(bytes: &[u8], limits: &Limits) -> Result<Certificate, Vec<Problem>> {
    if bytes.len() > limits.max_bytes {
        return Err(problem(
            "DOCUMENT_TOO_LARGE",
            "/",
            format!("{} bytes; at most {} are accepted", bytes.len(), limits.max_bytes),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        problem("ENCODING", "/", format!("not UTF-8: invalid byte sequence at byte {}", e.valid_up_to()))
    })?;
    check_declared_encoding(text)?;
    // Depth, attribute counts, node count and name/value lengths are bounded before roxmltree
    // runs: it recurses per nesting level and compares attributes pairwise.
    let bounds = Bounds { max_bytes: limits.max_bytes, max_nodes: MAX_NODES as usize, ..Bounds::DEFAULT };
    originlink_xmlbounds::check(text.as_bytes(), &bounds)
        .map_err(|e| problem(e.code(), "/", e.to_string()))?;
    let opt = ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES };
    let doc = Document::parse_with_options(text, opt).map_err(|e| match e {
        roxmltree::Error::DtdDetected => problem(
            "XML_DTD_FORBIDDEN",
            "/",
            "the document has a DTD (<!DOCTYPE …>); DTDs and entity declarations are refused",
        ),
        roxmltree::Error::NodesLimitReached => {
            problem("DOCUMENT_TOO_LARGE", "/", format!("more than {MAX_NODES} XML nodes"))
        }
        e => problem("XML_MALFORMED", "/", format!("not well-formed XML: {e}")),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "CertificateOfOrigin" {
        return Err(problem(
            "XML_WRONG_ROOT",
            format!("/{}", short(root.tag_name().name())),
            "the root element must be a UBL CertificateOfOrigin",
        ));
    }
    if root.tag_name().namespace() != Some(NS_COO) {
        return Err(problem(
            "XML_WRONG_NAMESPACE",
            ROOT,
            format!(
                "CertificateOfOrigin is in namespace {:?}; expected {NS_COO}",
                root.tag_name().namespace().unwrap_or("")
            ),
        ));
    }
    let mut r = Rd { problems: Vec::new(), dropped: 0 };
    let cert = r.certificate(root);
    if r.dropped > 0 {
        r.problems.push(Problem::new(
            "TOO_MANY_PROBLEMS",
            "/",
            format!("{} more problems not listed", r.dropped),
        ));
    }
    match cert {
        Some(c) if r.problems.is_empty() => Ok(c),
        _ if r.problems.is_empty() => {
            // Every `None` above pushes a problem; this is only a safety net.
            Err(problem("REQUIRED", ROOT, "the certificate is incomplete"))
        }
        _ => Err(r.problems),
    }
}

/// Refuses a declaration naming an encoding other than UTF-8 (the bytes were decoded as UTF-8).
fn check_declared_encoding(text: &str) -> Result<(), Vec<Problem>> {
    let Some(rest) = text.strip_prefix("<?xml").filter(|r| r.starts_with(|c: char| c.is_ascii_whitespace()))
    else {
        return Ok(());
    };
    let decl = &rest[..rest.find("?>").unwrap_or(0)];
    let Some(at) = decl.find("encoding") else { return Ok(()) };
    let value =
        decl[at + "encoding".len()..].trim_start().strip_prefix('=').map(|v| v.trim_start()).and_then(|v| {
            let q = v.chars().next()?;
            let v = &v[q.len_utf8()..];
            v.find(q).map(|end| &v[..end])
        });
    match value {
        Some(v) if v.eq_ignore_ascii_case("UTF-8") || v.eq_ignore_ascii_case("UTF8") => Ok(()),
        Some(v) => Err(problem("ENCODING", "/", format!("declared encoding {v:?}; only UTF-8 is read"))),
        None => Ok(()),
    }
}

fn is(n: &N<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
}

fn kid<'a, 'i>(n: N<'a, 'i>, ns: &str, name: &str) -> Option<N<'a, 'i>> {
    n.children().find(|c| is(c, ns, name))
}

fn kids<'a, 'i: 'a>(n: N<'a, 'i>, ns: &'a str, name: &'a str) -> impl Iterator<Item = N<'a, 'i>> + 'a {
    n.children().filter(move |c| is(c, ns, name))
}

fn cac<'a, 'i>(n: N<'a, 'i>, name: &str) -> Option<N<'a, 'i>> {
    kid(n, NS_CAC, name)
}

fn cbc<'a, 'i>(n: N<'a, 'i>, name: &str) -> Option<N<'a, 'i>> {
    kid(n, NS_CBC, name)
}

/// Descends through `steps` (`cac:` for all but the last, which is `cbc:`).
fn descend<'a, 'i>(n: N<'a, 'i>, steps: &[&str]) -> Option<N<'a, 'i>> {
    let (last, aggregates) = steps.split_last()?;
    cbc(descend_cac(n, aggregates)?, last)
}

/// Descends through `cac:` steps.
fn descend_cac<'a, 'i>(mut n: N<'a, 'i>, steps: &[&str]) -> Option<N<'a, 'i>> {
    for s in steps {
        n = cac(n, s)?;
    }
    Some(n)
}

/// The text content of an element (its text children joined).
fn text<'a>(n: N<'a, '_>) -> Cow<'a, str> {
    let mut texts = n.children().filter(|c| c.is_text());
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(t), None) => Cow::Borrowed(t.text().unwrap_or("")),
        (Some(a), Some(b)) => {
            let mut s = String::from(a.text().unwrap_or(""));
            s.push_str(b.text().unwrap_or(""));
            for t in texts {
                s.push_str(t.text().unwrap_or(""));
            }
            Cow::Owned(s)
        }
    }
}

fn strict_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An `xsd:date` as UBL writes it: `YYYY-MM-DD`, optionally followed by a time zone (`Z` or
/// `±hh:mm`, at most 14:00 either way). The calendar date is kept as written; the zone only
/// says where that day was.
pub(crate) fn xsd_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let date = match b.len() {
        10 => b,
        11 if b[10] == b'Z' => &b[..10],
        16 if valid_zone(&b[10..]) => &b[..10],
        _ => return None,
    };
    let shape_ok =
        date.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| date[r].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
    NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10))
}

/// `+hh:mm` or `-hh:mm` with `hh:mm` from `00:00` to `14:00` (XML Schema's time zone range).
fn valid_zone(z: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        z[r].iter().try_fold(0u32, |a, d| d.is_ascii_digit().then(|| a * 10 + u32::from(d - b'0')))
    };
    if z.len() != 6 || !matches!(z[0], b'+' | b'-') || z[3] != b':' {
        return false;
    }
    match (digits(1..3), digits(4..6)) {
        (Some(h), Some(m)) => m <= 59 && (h < 14 || (h == 14 && m == 0)),
        _ => false,
    }
}

/// The coded root notes.
#[derive(Default)]
struct Notes<'a> {
    declaration_place: Option<Cow<'a, str>>,
    declaration_date: Option<Cow<'a, str>>,
    certification_place: Option<Cow<'a, str>>,
    official_use: Option<Cow<'a, str>>,
    official_use_reason: Option<Cow<'a, str>>,
    de_minimis: Option<Cow<'a, str>>,
    accumulation: Option<Cow<'a, str>>,
    partial_cumulation: Option<Cow<'a, str>>,
    issued_retroactively: Option<Cow<'a, str>>,
}

struct Rd {
    problems: Vec<Problem>,
    /// Problems found past `MAX_PROBLEMS`.
    dropped: usize,
}

impl Rd {
    fn push(&mut self, code: &str, path: String, message: impl Into<String>) {
        self.add(Problem::new(code, path, message));
    }

    fn add(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.dropped += 1;
        }
    }

    fn missing(&mut self, path: String) {
        self.push("REQUIRED", path, "required element is missing");
    }

    /// A required child; `REQUIRED` at `path()` when absent.
    fn need<'a, 'i>(&mut self, n: Option<N<'a, 'i>>, path: impl FnOnce() -> String) -> Option<N<'a, 'i>> {
        if n.is_none() {
            self.missing(path());
        }
        n
    }

    /// The text of a required element.
    fn need_text<'a>(&mut self, n: Option<N<'a, '_>>, path: impl FnOnce() -> String) -> Option<Cow<'a, str>> {
        self.need(n, path).map(text)
    }

    fn parse<T>(&mut self, r: Result<T, ParseError>, path: impl FnOnce() -> String) -> Option<T> {
        r.map_err(|e| self.add(Problem::from_parse(&e, path()))).ok()
    }

    /// Parses a required element's trimmed text.
    fn need_parse<T>(
        &mut self,
        n: Option<N<'_, '_>>,
        path: impl Fn() -> String,
        f: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let t = self.need_text(n, &path)?;
        self.parse(f(t.trim()), path)
    }

    fn number(&mut self, n: Option<N<'_, '_>>, path: impl Fn() -> String) -> Option<u32> {
        let t = self.need_text(n, &path)?;
        let v = strict_u32(t.trim());
        if v.is_none() {
            self.push("NUMBER_INVALID", path(), format!("{:?} is not a whole number", short(&t)));
        }
        v
    }

    fn date_text(&mut self, t: &str, path: impl FnOnce() -> String) -> Option<NaiveDate> {
        let v = xsd_date(t.trim());
        if v.is_none() {
            self.push(
                "DATE_INVALID",
                path(),
                format!("{:?} is not a date (YYYY-MM-DD, optionally with a time zone: Z, +07:00)", short(t)),
            );
        }
        v
    }

    fn date(&mut self, n: Option<N<'_, '_>>, path: impl Fn() -> String) -> Option<NaiveDate> {
        let t = self.need_text(n, &path)?;
        self.date_text(&t, path)
    }

    /// An amount or measure: the trimmed text and a required attribute.
    fn with_attr<T>(
        &mut self,
        n: N<'_, '_>,
        attr: &str,
        path: impl Fn() -> String,
        f: impl FnOnce(&str, &str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let Some(a) = n.attribute(attr) else {
            self.push("REQUIRED", format!("{}/@{attr}", path()), format!("the {attr} attribute is missing"));
            return None;
        };
        let t = text(n);
        self.parse(f(t.trim(), a.trim()), path)
    }

    fn boolean(&mut self, v: Option<&Cow<'_, str>>, key: &str) -> bool {
        match v.map(|v| v.trim()) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                self.push(
                    "BOOLEAN_INVALID",
                    paths::note(key),
                    format!("{:?} is not true or false", short(other)),
                );
                false
            }
        }
    }

    fn party(&mut self, n: N<'_, '_>, base: &str) -> Option<Party> {
        let name = self.need_text(descend(n, &["PartyName", "Name"]), || paths::party(base, &["name"]));
        let id = kids(n, NS_CAC, "PartyIdentification")
            .filter_map(|pi| cbc(pi, "ID"))
            .find(|id| id.attribute("schemeID") != Some(paths::SCHEME_APPROVED_EXPORTER))
            .map(|id| text(id).into_owned());
        let addr = self.need(cac(n, "PostalAddress"), || paths::party(base, &["address"]));
        let address = addr.and_then(|a| {
            let country = self.need_parse(
                descend(a, &["Country", "IdentificationCode"]),
                || paths::party(base, &["address", "country"]),
                CountryCode::parse,
            );
            let opt = |name| cbc(a, name).map(|e| text(e).into_owned());
            Some(Address {
                street: opt("StreetName"),
                city: opt("CityName"),
                postcode: opt("PostalZone"),
                country: country?,
            })
        });
        Some(Party { name: name?.into_owned(), id, address: address? })
    }

    fn cert_ref(&mut self, n: N<'_, '_>, role: &str) -> Option<CertificateRef> {
        let base = paths::doc_ref(role);
        let number = self.need_parse(cbc(n, "ID"), || format!("{base}/cbc:ID"), CertificateNumber::parse);
        let country = self.need_parse(
            descend(n, &["IssuerParty", "PostalAddress", "Country", "IdentificationCode"]),
            || format!("{base}/cac:IssuerParty/cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
            CountryCode::parse,
        );
        Some(CertificateRef { country: country?, number: number? })
    }

    fn notes<'a>(&mut self, root: N<'a, '_>) -> Notes<'a> {
        let mut notes = Notes::default();
        for n in kids(root, NS_CBC, "Note") {
            let t = text(n);
            let Some((k, _)) = t.split_once('=') else { continue };
            let (k_len, k) = (k.len(), k.trim().to_owned());
            let value = match t {
                Cow::Borrowed(s) => Cow::Borrowed(&s[k_len + 1..]),
                Cow::Owned(ref s) => Cow::Owned(s[k_len + 1..].to_owned()),
            };
            let slot = match k.as_str() {
                key::DECLARATION_PLACE => &mut notes.declaration_place,
                key::DECLARATION_DATE => &mut notes.declaration_date,
                key::CERTIFICATION_PLACE => &mut notes.certification_place,
                key::OFFICIAL_USE => &mut notes.official_use,
                key::OFFICIAL_USE_REASON => &mut notes.official_use_reason,
                key::DE_MINIMIS => &mut notes.de_minimis,
                key::ACCUMULATION => &mut notes.accumulation,
                key::PARTIAL_CUMULATION => &mut notes.partial_cumulation,
                key::ISSUED_RETROACTIVELY => &mut notes.issued_retroactively,
                _ => continue, // someone else's note
            };
            if slot.is_some() {
                self.push("XML_DUPLICATE", paths::note(&k), format!("the note {k}= appears more than once"));
            } else {
                *slot = Some(value);
            }
        }
        notes
    }

    fn certificate(&mut self, root: N<'_, '_>) -> Option<Certificate> {
        let agreement =
            self.need_parse(cbc(root, "ProfileID"), || super::xpath_for("/agreement"), Agreement::parse);
        let number = match cbc(root, "ID").map(text) {
            Some(t) if !t.trim().is_empty() => {
                self.parse(CertificateNumber::parse(t.trim()), || super::xpath_for("/number")).map(Some)
            }
            _ => Some(None),
        };
        let issue_date = cbc(root, "IssueDate").map(text);
        let version = self.number(cbc(root, "VersionID"), || super::xpath_for("/version"));
        let notes = self.notes(root);

        let exporter_node = self.need(cac(root, "ExporterParty"), || EXPORTER.to_owned());
        let exporter = exporter_node.and_then(|n| self.party(n, EXPORTER));
        let approved_exporter = exporter_node.and_then(|n| {
            kids(n, NS_CAC, "PartyIdentification")
                .filter_map(|pi| cbc(pi, "ID"))
                .find(|id| id.attribute("schemeID") == Some(paths::SCHEME_APPROVED_EXPORTER))
                .map(|id| text(id).into_owned())
        });
        let consignee = self
            .need(cac(root, "ImporterParty"), || IMPORTER.to_owned())
            .and_then(|n| self.party(n, IMPORTER));

        // Box 11 and 12 notes.
        let declaration_place =
            self.need_note(notes.declaration_place.as_ref(), key::DECLARATION_PLACE).map(|v| v.into_owned());
        let declaration_date = self
            .need_note(notes.declaration_date.as_ref(), key::DECLARATION_DATE)
            .and_then(|v| self.date_text(&v, || paths::note(key::DECLARATION_DATE)));

        let official_use = match notes.official_use.as_deref().map(str::trim) {
            None => Some(None),
            Some(v @ ("preference-given" | "preference-not-given")) => Some(Some(OfficialUse {
                preference_given: v == "preference-given",
                reason: notes.official_use_reason.as_ref().map(|r| r.to_string()),
            })),
            Some(other) => {
                self.push(
                    "OFFICIAL_USE_INVALID",
                    paths::note(key::OFFICIAL_USE),
                    format!("{:?}: expected preference-given or preference-not-given", short(other)),
                );
                None
            }
        };
        let de_minimis = self.boolean(notes.de_minimis.as_ref(), key::DE_MINIMIS);
        let accumulation = self.boolean(notes.accumulation.as_ref(), key::ACCUMULATION);
        let partial_cumulation = self.boolean(notes.partial_cumulation.as_ref(), key::PARTIAL_CUMULATION);
        let issued_retroactively =
            self.boolean(notes.issued_retroactively.as_ref(), key::ISSUED_RETROACTIVELY);

        // The application.
        let app = self.need(cac(root, "CertificateOfOriginApplication"), || APP.to_owned());
        let mut app_fields = None;
        if let Some(app) = app {
            app_fields = self.application(app);
        }

        // Box 12.
        let certification = self
            .need(cac(root, "IssuerEndorsement"), || ENDORSE.to_owned())
            .and_then(|e| self.certification(e, issue_date.as_deref(), notes.certification_place.as_ref()));

        let app = app_fields?;
        Some(Certificate {
            agreement: agreement?,
            kind: app.kind?,
            number: number?,
            reference: app.reference?,
            version: version?,
            replaces: app.replaces?,
            exporting_country: app.exporting_country?,
            importing_country: app.importing_country?,
            exporter: exporter?,
            producer: app.producer?,
            consignee: consignee?,
            transport: app.transport?,
            items: app.items?,
            declaration: Declaration {
                place: declaration_place?,
                date: declaration_date?,
                signatory: app.signatory?,
            },
            certification: certification?,
            official_use: official_use?,
            flags: Flags {
                third_party_invoicing: app.third_party_invoicing?,
                exhibition: app.exhibition?,
                back_to_back: app.back_to_back?,
                de_minimis,
                accumulation,
                partial_cumulation,
                issued_retroactively,
            },
            approved_exporter,
            remarks: app.remarks,
        })
    }

    fn need_note<'a>(&mut self, v: Option<&Cow<'a, str>>, key: &str) -> Option<Cow<'a, str>> {
        if v.is_none() {
            self.push("REQUIRED", paths::note(key), format!("the note {key}=… is missing"));
        }
        v.cloned()
    }

    fn certification(
        &mut self,
        e: N<'_, '_>,
        issue_date: Option<&str>,
        place: Option<&Cow<'_, str>>,
    ) -> Option<Option<Certification>> {
        let status = self.need_text(cbc(e, "ApprovalStatus"), || format!("{ENDORSE}/cbc:ApprovalStatus"))?;
        match status.trim() {
            "Pending" => return Some(None),
            "Approved" => {}
            other => {
                self.push(
                    "APPROVAL_STATUS_UNKNOWN",
                    format!("{ENDORSE}/cbc:ApprovalStatus"),
                    format!("{:?}: expected Approved (certified) or Pending", short(other)),
                );
                return None;
            }
        }
        let base = format!("{ENDORSE}/cac:EndorserParty/cac:Party");
        let authority = self
            .need(descend_cac(e, &["EndorserParty", "Party"]), || base.clone())
            .and_then(|p| self.party(p, &base));
        let officer = self.need_text(descend(e, &["EndorserParty", "SignatoryContact", "Name"]), || {
            super::xpath_for("/certification/officer")
        });
        let date = match issue_date {
            Some(d) => self.date_text(d, || super::xpath_for("/certification/date")),
            None => {
                self.missing(super::xpath_for("/certification/date"));
                None
            }
        };
        let place = self.need_note(place, key::CERTIFICATION_PLACE);
        Some(Some(Certification {
            authority: authority?,
            place: place?.into_owned(),
            date: date?,
            officer: officer?.into_owned(),
        }))
    }

    fn application(&mut self, app: N<'_, '_>) -> Option<AppFields> {
        let mut f = AppFields {
            reference: self
                .need_text(cbc(app, "ReferenceID"), || super::xpath_for("/reference"))
                .map(Cow::into_owned),
            kind: self.need_parse(
                cbc(app, "CertificateType"),
                || super::xpath_for("/kind"),
                ProofKind::parse,
            ),
            remarks: cbc(app, "Remarks").map(|n| text(n).into_owned()),
            signatory: self
                .need_text(descend(app, &["EndorserParty", "SignatoryContact", "Name"]), || {
                    super::xpath_for("/declaration/signatory")
                })
                .map(Cow::into_owned),
            exporting_country: self.need_parse(
                descend(app, &["IssuingCountry", "IdentificationCode"]),
                || super::xpath_for("/exporting_country"),
                CountryCode::parse,
            ),
            replaces: Some(None),
            back_to_back: Some(None),
            ..AppFields::default()
        };
        for d in kids(app, NS_CAC, "SupportingDocumentReference") {
            let role = cbc(d, "DocumentType").map(text);
            match role.as_deref().map(str::trim) {
                Some(paths::ROLE_REPLACED) if f.replaces == Some(None) => {
                    f.replaces = self.cert_ref(d, paths::ROLE_REPLACED).map(Some)
                }
                Some(paths::ROLE_BACK_TO_BACK) if f.back_to_back == Some(None) => {
                    f.back_to_back = self.cert_ref(d, paths::ROLE_BACK_TO_BACK).map(Some)
                }
                _ => {}
            }
        }
        if let Some(ship) = self.need(cac(app, "Shipment"), || SHIP.to_owned()) {
            self.shipment(ship, &mut f);
        }
        Some(f)
    }

    fn shipment(&mut self, ship: N<'_, '_>, f: &mut AppFields) {
        // Box 3.
        if let Some(stage) = self.need(cac(ship, "ShipmentStage"), || STAGE.to_owned()) {
            let mode = self.need_parse(
                cbc(stage, "TransportModeCode"),
                || super::xpath_for("/transport/mode"),
                TransportMode::from_code,
            );
            let departure_date = self.date(descend(stage, &["TransitPeriod", "StartDate"]), || {
                super::xpath_for("/transport/departure_date")
            });
            let vessel = cac(stage, "TransportMeans").and_then(|m| {
                [
                    descend(m, &["MaritimeTransport", "VesselName"]),
                    descend(m, &["AirTransport", "AircraftID"]),
                    descend(m, &["RoadTransport", "LicensePlateID"]),
                    descend(m, &["RailTransport", "TrainID"]),
                    cbc(m, "JourneyID"),
                ]
                .into_iter()
                .flatten()
                .next()
                .map(|n| text(n).into_owned())
            });
            let loading = self.port(stage, "LoadingPortLocation", "port_of_loading");
            let discharge = self.port(stage, "UnloadingPortLocation", "port_of_discharge");
            f.transport = (|| {
                Some(Transport {
                    departure_date: departure_date?,
                    mode: mode?,
                    vessel,
                    port_of_loading: loading?,
                    port_of_discharge: discharge?,
                })
            })();
        }

        // Importing country and exhibition.
        let delivery = cac(ship, "Delivery");
        f.importing_country = self.need_parse(
            delivery.and_then(|d| descend(d, &["DeliveryAddress", "Country", "IdentificationCode"])),
            || super::xpath_for("/importing_country"),
            CountryCode::parse,
        );
        f.exhibition = match delivery.and_then(|d| cac(d, "DeliveryLocation")) {
            None => Some(None),
            Some(loc) => {
                let name = self
                    .need_text(cbc(loc, "Name"), || super::xpath_for("/flags/exhibition/name"))
                    .map(Cow::into_owned);
                let place = self
                    .need_text(descend(loc, &["Address", "AddressLine", "Line"]), || {
                        super::xpath_for("/flags/exhibition/place")
                    })
                    .map(Cow::into_owned);
                (|| Some(Some(Exhibition { name: name?, place: place? })))()
            }
        };

        // Goods.
        let count = kids(ship, NS_CAC, "GoodsItem").count();
        if count > MAX_ITEMS {
            self.push(
                "ITEM_LIMIT",
                SHIP.to_owned(),
                format!("{count} goods items; at most {MAX_ITEMS} are read"),
            );
            return;
        }
        let units: Vec<_> = kids(ship, NS_CAC, "TransportHandlingUnit").collect();
        let mut items = Vec::new();
        let mut ok = true;
        let mut producer = PerCertificate::default();
        let mut invoicer = PerCertificate::default();
        for (i, g) in kids(ship, NS_CAC, "GoodsItem").enumerate() {
            let item = self.item(i, g, units.get(i).copied());
            // Producer and third-party invoicer are per certificate but written on every item.
            let p =
                descend_cac(g, &["Item", "ManufacturerParty"]).map(|p| self.party(p, &paths::producer(i)));
            self.same(&mut producer, p, || paths::producer(i), "producer");
            let inv = descend_cac(g, &["AdditionalDocumentReference", "IssuerParty"])
                .map(|p| self.party(p, &paths::invoicer(i)));
            self.same(&mut invoicer, inv, || paths::invoicer(i), "third-party invoicing party");
            match item {
                Some(it) => items.push(it),
                None => ok = false,
            }
        }
        if ok {
            f.items = Some(items);
        }
        f.producer = producer.result();
        f.third_party_invoicing = invoicer.result();
    }

    /// Records a per-certificate party written on item `i` (`None`: not written; `Some(None)`:
    /// unreadable, already reported) and checks it matches the first item's.
    fn same(
        &mut self,
        st: &mut PerCertificate,
        this: Option<Option<Party>>,
        path: impl FnOnce() -> String,
        what: &str,
    ) {
        let this = match this {
            None => None,
            Some(None) => {
                st.bad = true;
                return;
            }
            Some(Some(p)) => Some(p),
        };
        match &st.first {
            None => st.first = Some(this),
            Some(first) if *first != this => {
                st.bad = true;
                self.push(
                    "XML_INCONSISTENT",
                    path(),
                    format!("every goods item must carry the same {what} (the certificate has one)"),
                );
            }
            Some(_) => {}
        }
    }

    fn port(&mut self, stage: N<'_, '_>, element: &str, field: &str) -> Option<Port> {
        let at = |rest: &str| super::xpath_for(&format!("/transport/{field}/{rest}"));
        let loc = self.need(cac(stage, element), || at(""))?;
        let code = cbc(loc, "ID").map(|n| text(n).trim().to_owned());
        let name = self.need_text(cbc(loc, "Name"), || at("name"))?;
        Some(Port { code, name: name.into_owned() })
    }

    fn item(&mut self, i: usize, g: N<'_, '_>, unit: Option<N<'_, '_>>) -> Option<Item> {
        let at = |f: &str| super::xpath_for(&format!("/items/{i}/{f}"));
        let number = self.number(cbc(g, "ID"), || at("number"));
        let description = self.need_text(cbc(g, "Description"), || at("description")).map(Cow::into_owned);
        let fob = match cbc(g, "FreeOnBoardValueAmount") {
            None => Some(None),
            Some(n) => self.with_attr(n, "currencyID", || at("fob"), Money::parse).map(Some),
        };
        let gross_weight = match cbc(g, "GrossWeightMeasure") {
            None => Some(None),
            Some(n) => self.with_attr(n, "unitCode", || at("gross_weight"), Quantity::parse).map(Some),
        };
        let quantity = self
            .need(cbc(g, "Quantity"), || at("quantity"))
            .and_then(|n| self.with_attr(n, "unitCode", || at("quantity"), Quantity::parse));
        let criterion =
            self.need_parse(cbc(g, "PreferenceCriterionCode"), || at("criterion"), OriginCriterion::parse);
        let origin_country = self.need_parse(
            descend(g, &["Item", "OriginCountry", "IdentificationCode"]),
            || at("origin_country"),
            CountryCode::parse,
        );
        let hs_node = cac(g, "Item").and_then(|it| {
            let codes =
                kids(it, NS_CAC, "CommodityClassification").filter_map(|c| cbc(c, "ItemClassificationCode"));
            let mut first = None;
            for c in codes {
                if c.attribute("listID") == Some("HS") {
                    return Some(c);
                }
                first = first.or(Some(c));
            }
            first
        });
        let hs = self.need_parse(hs_node, || at("hs"), HsCode::parse);
        let invoice = self.need(cac(g, "AdditionalDocumentReference"), || at("invoice")).and_then(|d| {
            let number = self.need_text(cbc(d, "ID"), || at("invoice/number")).map(Cow::into_owned);
            let date = self.date(cbc(d, "IssueDate"), || at("invoice/date"));
            Some(Invoice { number: number?, date: date? })
        });
        let (marks, packages) = match unit {
            None => {
                self.missing(at("packages"));
                (None, None)
            }
            Some(u) => {
                let marks = Some(cbc(u, "ShippingMarks").map(|n| text(n).into_owned()).unwrap_or_default());
                let count = self.number(cbc(u, "TotalPackageQuantity"), || at("packages/count"));
                let kind = self.need_parse(
                    descend(u, &["Package", "PackagingTypeCode"]),
                    || at("packages/kind"),
                    PackageKind::parse,
                );
                (marks, (|| Some(Packages { count: count?, kind: kind? }))())
            }
        };
        Some(Item {
            number: number?,
            marks: marks?,
            packages: packages?,
            description: description?,
            hs: hs?,
            criterion: criterion?,
            origin_country: origin_country?,
            quantity: quantity?,
            gross_weight: gross_weight?,
            fob: fob?,
            invoice: invoice?,
        })
    }
}

/// A party the certificate has once but UBL carries on every goods item.
#[derive(Default)]
struct PerCertificate {
    /// `None` before the first item; then what the first item carried.
    first: Option<Option<Party>>,
    /// Unreadable or inconsistent (a problem was reported).
    bad: bool,
}

impl PerCertificate {
    fn result(self) -> Option<Option<Party>> {
        if self.bad { None } else { Some(self.first.flatten()) }
    }
}

/// What the application element yields; `None` fields have reported a problem.
#[derive(Default)]
struct AppFields {
    reference: Option<String>,
    kind: Option<ProofKind>,
    remarks: Option<String>,
    signatory: Option<String>,
    exporting_country: Option<CountryCode>,
    importing_country: Option<CountryCode>,
    replaces: Option<Option<CertificateRef>>,
    back_to_back: Option<Option<CertificateRef>>,
    transport: Option<Transport>,
    items: Option<Vec<Item>>,
    producer: Option<Option<Party>>,
    third_party_invoicing: Option<Option<Party>>,
    exhibition: Option<Option<Exhibition>>,
}

/// Shortens hostile input for messages.
fn short(s: &str) -> String {
    let mut v: String = s.chars().take(64).collect();
    if v.len() < s.len() {
        v.push('…');
    }
    v
}
