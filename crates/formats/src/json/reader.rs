//! The edi3 JSON reader: bytes → a borrowed JSON tree → `Certificate`, collecting every
//! problem with the JSON pointer where it is.

use std::fmt::Write as _;

use originlink_model::{
    Address, Agreement, Certificate, CertificateNumber, CertificateRef, Certification, CountryCode,
    Declaration, Exhibition, Flags, HsCode, Invoice, Item, Money, NaiveDate, OfficialUse, OriginCriterion,
    PackageKind, Packages, ParseError, Party, Port, Problem, ProofKind, Quantity, Transport, TransportMode,
};

use super::tree::{Obj, V, field};
use super::{APPLICATION_PREFIX, EXTENSION, INVOICE_PREFIX, LOCODE_PREFIX, PARTY_PREFIX, pct_decode};
use crate::Limits;

pub(super) fn read(bytes: &[u8], limits: &Limits) -> Result<Certificate, Vec<Problem>> {
    if bytes.len() > limits.max_bytes {
        return Err(vec![Problem::new(
            "DOCUMENT_TOO_LARGE",
            "/",
            format!("{} bytes; at most {} are accepted", bytes.len(), limits.max_bytes),
        )]);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(vec![Problem::new("ENCODING", "/", "UTF-16 is not accepted; JSON must be UTF-8")]);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![Problem::new(
            "ENCODING",
            "/",
            format!("not UTF-8: invalid byte sequence at byte {}", e.valid_up_to()),
        )]
    })?;
    let value: V = serde_json::from_str(text).map_err(|e| {
        let what = if e.is_eof() { "truncated JSON" } else { "malformed JSON" };
        vec![Problem::new("JSON_MALFORMED", "/", format!("{what}: {e}"))]
    })?;
    Reader { problems: Vec::new() }.certificate(&value)
}

/// A JSON pointer built on the stack; turned into text only when a problem is reported.
#[derive(Clone, Copy)]
struct At<'a> {
    parent: Option<&'a At<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Idx(usize),
}

const ROOT: At<'static> = At { parent: None, seg: Seg::Key("") };

impl<'a> At<'a> {
    fn key(&'a self, k: &'a str) -> At<'a> {
        At { parent: Some(self), seg: Seg::Key(k) }
    }
    fn idx(&'a self, i: usize) -> At<'a> {
        At { parent: Some(self), seg: Seg::Idx(i) }
    }
    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(a) = cur {
            if a.parent.is_some() {
                segs.push(a.seg);
            }
            cur = a.parent;
        }
        if segs.is_empty() {
            return "/".to_owned();
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            out.push('/');
            match seg {
                Seg::Key(k) => {
                    for ch in k.chars() {
                        match ch {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                }
                Seg::Idx(i) => {
                    let _ = write!(out, "{i}");
                }
            }
        }
        out
    }
}

/// Date or RFC 3339 date-time (`2026-03-02`, `2026-03-02T00:00:00Z`); the calendar date is kept.
fn date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        } else {
            None
        }
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    if b.len() == 10 {
        return Some(d);
    }
    // Time: T hh:mm:ss[.frac] (Z | ±hh:mm)
    if !matches!(b.get(10), Some(b'T' | b't')) || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if digits(11..13)? > 23 || digits(14..16)? > 59 || digits(17..19)? > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    match b.get(i..)? {
        [b'Z' | b'z'] => Some(d),
        [b'+' | b'-', ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            (digits(i + 1..i + 3)? <= 23 && digits(i + 4..i + 6)? <= 59).then_some(d)
        }
        _ => None,
    }
}

struct Reader {
    problems: Vec<Problem>,
}

impl Reader {
    fn push(&mut self, code: &str, at: &At, message: impl Into<String>) {
        self.problems.push(Problem::new(code, at.render(), message));
    }

    fn parse_error(&mut self, e: &ParseError, at: &At) {
        self.problems.push(Problem::from_parse(e, at.render()));
    }

    /// A property; `null` counts as absent.
    fn get<'v>(&mut self, m: &'v Obj<'v>, key: &'static str, at: &At, required: bool) -> Option<&'v V<'v>> {
        match field(m, key) {
            None | Some(V::Null) => {
                if required {
                    self.push("REQUIRED", &at.key(key), "must be present");
                }
                None
            }
            Some(v) => Some(v),
        }
    }

    fn obj<'v>(&mut self, m: &'v Obj<'v>, key: &'static str, at: &At, required: bool) -> Option<&'v Obj<'v>> {
        match self.get(m, key, at, required)? {
            V::Obj(o) => Some(o),
            v => {
                self.push("TYPE", &at.key(key), format!("expected an object, found {}", v.kind()));
                None
            }
        }
    }

    fn arr<'v>(&mut self, m: &'v Obj<'v>, key: &'static str, at: &At, required: bool) -> Option<&'v [V<'v>]> {
        match self.get(m, key, at, required)? {
            V::Arr(a) => Some(a),
            v => {
                self.push("TYPE", &at.key(key), format!("expected an array, found {}", v.kind()));
                None
            }
        }
    }

    fn string<'v>(&mut self, m: &'v Obj<'v>, key: &'static str, at: &At, required: bool) -> Option<&'v str> {
        match self.get(m, key, at, required)? {
            V::Str(s) => Some(s),
            v => {
                self.push("TYPE", &at.key(key), format!("expected a string, found {}", v.kind()));
                None
            }
        }
    }

    fn text(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<String> {
        self.string(m, key, at, required).map(str::to_owned)
    }

    fn boolean(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<bool> {
        match self.get(m, key, at, required)? {
            V::Bool(b) => Some(*b),
            v => {
                self.push("TYPE", &at.key(key), format!("expected true or false, found {}", v.kind()));
                None
            }
        }
    }

    /// A whole number from 0 to `u32::MAX`. A number with a zero fraction or an exponent
    /// (`1.0`, `1e0`) is the same JSON number as `1` (RFC 8785 writes both as `1`, so they sign
    /// the same) and is accepted; a number with a fraction is `NOT_AN_INTEGER`.
    fn uint(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<u32> {
        let v = self.get(m, key, at, required)?;
        let n = match v {
            V::U(n) => u32::try_from(*n).ok(),
            V::F(f) if f.fract() != 0.0 || !f.is_finite() => {
                self.push(
                    "NOT_AN_INTEGER",
                    &at.key(key),
                    format!("expected an integer (a whole number from 0 to {}), found {v}", u32::MAX),
                );
                return None;
            }
            // Whole and exactly representable up to 2^53, so the range check is exact.
            V::F(f) if (0.0..=f64::from(u32::MAX)).contains(f) => Some(*f as u32),
            _ => None,
        };
        match n {
            Some(n) => Some(n),
            None => {
                self.push(
                    "TYPE",
                    &at.key(key),
                    format!("expected a whole number from 0 to {}, found {v}", u32::MAX),
                );
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        m: &Obj,
        key: &'static str,
        at: &At,
        required: bool,
        f: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let s = self.string(m, key, at, required)?;
        f(s).map_err(|e| self.parse_error(&e, &at.key(key))).ok()
    }

    fn date(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<NaiveDate> {
        let s = self.string(m, key, at, required)?;
        let d = date(s);
        if d.is_none() {
            let shown: String = s.chars().take(40).collect();
            self.push(
                "DATE_INVALID",
                &at.key(key),
                format!("{shown:?} is not an RFC 3339 date-time such as 2026-03-02T00:00:00Z"),
            );
        }
        d
    }

    /// An `iD` written as `prefix` + percent-encoded text; any other `iD` is taken as it is.
    fn id(&mut self, m: &Obj, key: &'static str, at: &At, required: bool, prefix: &str) -> Option<String> {
        let s = self.string(m, key, at, required)?;
        match s.strip_prefix(prefix) {
            None => Some(s.to_owned()),
            Some(rest) => {
                let d = pct_decode(rest);
                if d.is_none() {
                    self.push("ID_INVALID", &at.key(key), "bad percent-encoding");
                }
                d
            }
        }
    }

    /// Refuses properties of an extension object that are not in `known`.
    fn known(&mut self, m: &Obj, at: &At, known: &[&str]) {
        for (k, _) in m {
            if !known.contains(&k.as_ref()) {
                self.push(
                    "UNKNOWN_PROPERTY",
                    &at.key(k),
                    format!("{k:?} is not a property of this {EXTENSION} object"),
                );
            }
        }
    }

    fn country(&mut self, m: &Obj, key: &'static str, at: &At) -> Option<CountryCode> {
        let o = self.obj(m, key, at, true)?;
        self.parsed(o, "code", &at.key(key), true, CountryCode::parse)
    }

    fn party(&mut self, p: &Obj, at: &At) -> Option<Party> {
        let id = self.id(p, "iD", at, false, PARTY_PREFIX);
        let name = self.text(p, "name", at, true);
        let a_at = at.key("postalAddress");
        let address = self.obj(p, "postalAddress", at, true).and_then(|a| {
            let line1 = self.text(a, "line1", &a_at, false);
            let line2 = self.text(a, "line2", &a_at, false);
            let street = match (line1, line2) {
                (Some(l1), Some(l2)) => Some(format!("{l1}\n{l2}")),
                (l1, l2) => l1.or(l2),
            };
            let city = self.text(a, "cityName", &a_at, false);
            let postcode = self.text(a, "postcode", &a_at, false);
            let country = self.parsed(a, "countryCode", &a_at, true, CountryCode::parse)?;
            Some(Address { street, city, postcode, country })
        });
        Some(Party { name: name?, id, address: address? })
    }

    fn party_at(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<Party> {
        let o = self.obj(m, key, at, required)?;
        self.party(o, &at.key(key))
    }

    fn port(&mut self, m: &Obj, key: &'static str, at: &At) -> Option<Port> {
        let o = self.obj(m, key, at, true)?;
        let at = at.key(key);
        let code = self.id(o, "iD", &at, false, LOCODE_PREFIX);
        let name = self.text(o, "name", &at, true)?;
        Some(Port { code, name })
    }

    fn cert_ref(&mut self, m: &Obj, key: &'static str, at: &At) -> Option<CertificateRef> {
        let o = self.obj(m, key, at, false)?;
        let at = at.key(key);
        self.known(o, &at, &["country", "number"]);
        let country = self.parsed(o, "country", &at, true, CountryCode::parse);
        let number = self.parsed(o, "number", &at, true, CertificateNumber::parse);
        Some(CertificateRef { country: country?, number: number? })
    }

    fn quantity(&mut self, m: &Obj, key: &'static str, at: &At, required: bool) -> Option<Quantity> {
        let o = self.obj(m, key, at, required)?;
        let at = at.key(key);
        self.known(o, &at, &["value", "unitCode"]);
        let value = self.decimal_text(o, "value", &at)?;
        let unit = self.string(o, "unitCode", &at, true)?;
        Quantity::parse(value, unit)
            .map_err(|e| {
                let field = if e.code == "UNIT_UNKNOWN" { "unitCode" } else { "value" };
                self.parse_error(&e, &at.key(field));
            })
            .ok()
    }

    fn money(&mut self, m: &Obj, key: &'static str, at: &At) -> Option<Money> {
        let o = self.obj(m, key, at, false)?;
        let at = at.key(key);
        self.known(o, &at, &["amount", "currencyCode"]);
        let amount = self.decimal_text(o, "amount", &at)?;
        let currency = self.string(o, "currencyCode", &at, true)?;
        Money::parse(amount, currency)
            .map_err(|e| {
                let field = if e.code == "CURRENCY_INVALID" { "currencyCode" } else { "amount" };
                self.parse_error(&e, &at.key(field));
            })
            .ok()
    }

    /// A decimal written as a JSON string. A JSON number is refused: it would pass through
    /// binary floating point.
    fn decimal_text<'v>(&mut self, m: &'v Obj<'v>, key: &'static str, at: &At) -> Option<&'v str> {
        match self.get(m, key, at, true)? {
            V::Str(s) => Some(s),
            v => {
                self.push(
                    "TYPE",
                    &at.key(key),
                    format!("expected a decimal written as a string (e.g. \"1234.50\"), found {}", v.kind()),
                );
                None
            }
        }
    }

    fn fail(mut self) -> Vec<Problem> {
        if self.problems.is_empty() {
            self.problems.push(Problem::new("JSON_INTERNAL", "/", "incomplete certificate"));
        }
        self.problems
    }

    fn certificate(mut self, root: &V) -> Result<Certificate, Vec<Problem>> {
        let V::Obj(r) = root else {
            self.push(
                "TYPE",
                &ROOT,
                format!("expected an edi3 CertificateOfOrigin object, found {}", root.kind()),
            );
            return Err(self.problems);
        };
        let at = ROOT;

        // Document.
        let number = self.string(r, "iD", &at, true).and_then(|id| {
            if id.starts_with(APPLICATION_PREFIX) {
                return Some(None);
            }
            let last = id.rsplit(':').next().unwrap_or(id);
            let Some(text) = pct_decode(last) else {
                self.push("ID_INVALID", &at.key("iD"), "bad percent-encoding");
                return None;
            };
            CertificateNumber::parse(&text).map(Some).map_err(|e| self.parse_error(&e, &at.key("iD"))).ok()
        });
        if self.boolean(r, "isPreferential", &at, true) == Some(false) {
            self.push(
                "NOT_PREFERENTIAL",
                &at.key("isPreferential"),
                "OriginLink handles preferential certificates only",
            );
        }
        let agreement = self.parsed(r, "freeTradeAgreement", &at, true, Agreement::parse);

        // Extension.
        let ext = self.obj(r, EXTENSION, &at, true);
        let x_at = at.key(EXTENSION);
        if let Some(x) = ext {
            self.known(
                x,
                &x_at,
                &[
                    "proofKind",
                    "applicationReference",
                    "version",
                    "replaces",
                    "approvedExporter",
                    "transportModeCode",
                    "declaration",
                    "certification",
                    "officialUse",
                    "flags",
                    "items",
                ],
            );
        }
        let kind = ext.and_then(|x| self.parsed(x, "proofKind", &x_at, true, ProofKind::parse));
        let reference = ext.and_then(|x| self.text(x, "applicationReference", &x_at, true));
        let version = ext.and_then(|x| self.uint(x, "version", &x_at, true));
        let replaces = ext.and_then(|x| self.cert_ref(x, "replaces", &x_at));
        let approved_exporter = ext.and_then(|x| self.text(x, "approvedExporter", &x_at, false));
        let mode =
            ext.and_then(|x| self.parsed(x, "transportModeCode", &x_at, true, TransportMode::from_code));
        let official_use = ext.and_then(|x| {
            let o = self.obj(x, "officialUse", &x_at, false)?;
            let at = x_at.key("officialUse");
            self.known(o, &at, &["preferenceGiven", "reason"]);
            let given = self.boolean(o, "preferenceGiven", &at, true);
            let reason = self.text(o, "reason", &at, false);
            Some(OfficialUse { preference_given: given?, reason })
        });
        let flags = match ext.map(|x| self.obj(x, "flags", &x_at, false)) {
            Some(Some(f)) => self.flags(f, &x_at.key("flags")),
            _ => Some(Flags::default()),
        };

        // Declaration (box 11).
        let decl_date = self
            .obj(r, "firstSignatoryAuthentication", &at, true)
            .and_then(|a| self.date(a, "actualDateTime", &at.key("firstSignatoryAuthentication"), true));
        let declaration = ext.and_then(|x| {
            let o = self.obj(x, "declaration", &x_at, true)?;
            let at = x_at.key("declaration");
            self.known(o, &at, &["place", "signatory"]);
            let place = self.text(o, "place", &at, true);
            let signatory = self.text(o, "signatory", &at, true);
            Some(Declaration { place: place?, date: decl_date?, signatory: signatory? })
        });

        // Certification (box 12): present when the document has an issuer.
        let issuer = self.obj(r, "issuer", &at, false);
        let x_cert = ext.and_then(|x| self.obj(x, "certification", &x_at, false));
        if let Some(o) = x_cert {
            self.known(o, &x_at.key("certification"), &["officer"]);
        }
        let certification = match issuer {
            None => {
                if x_cert.is_some() {
                    self.push("REQUIRED", &at.key("issuer"), "a certification needs the issuing authority");
                }
                Some(None)
            }
            Some(i) => {
                let authority = self.party(i, &at.key("issuer"));
                let date = self.date(r, "issueDateTime", &at, true);
                let place = self
                    .obj(r, "issueLocation", &at, true)
                    .and_then(|l| self.text(l, "name", &at.key("issueLocation"), true));
                let officer = match (ext, x_cert) {
                    (Some(_), None) => {
                        self.push(
                            "REQUIRED",
                            &x_at.key("certification"),
                            "an issued certificate names its officer",
                        );
                        None
                    }
                    (_, Some(o)) => self.text(o, "officer", &x_at.key("certification"), true),
                    (None, None) => None,
                };
                (|| {
                    Some(Some(Certification {
                        authority: authority?,
                        place: place?,
                        date: date?,
                        officer: officer?,
                    }))
                })()
            }
        };

        // Consignment.
        let sc = self.obj(r, "supplyChainConsignment", &at, true);
        let sc_at = at.key("supplyChainConsignment");
        let mut exporting_country = None;
        let mut importing_country = None;
        let mut exporter = None;
        let mut consignee = None;
        let mut remarks = None;
        let mut transport = None;
        let mut items = None;
        let mut producer = None;
        if let Some(sc) = sc {
            remarks = self.text(sc, "information", &sc_at, false);
            exporting_country = self.country(sc, "exportCountry", &sc_at);
            exporter = self.party_at(sc, "exporter", &sc_at, true);
            importing_country = self.country(sc, "importCountry", &sc_at);
            consignee = self.party_at(sc, "importer", &sc_at, true);
            let loading = self.port(sc, "loadingBaseportLocation", &sc_at);
            let discharge = self.port(sc, "unloadingBaseportLocation", &sc_at);
            let m_at = sc_at.key("mainCarriageTransportMovement");
            let movement = self.obj(sc, "mainCarriageTransportMovement", &sc_at, true);
            let departure = movement.and_then(|m| {
                let ev = self.obj(m, "departureEvent", &m_at, true)?;
                self.date(ev, "departureDateTime", &m_at.key("departureEvent"), true)
            });
            let vessel = movement.and_then(|m| {
                let means = self.obj(m, "usedTransportMeans", &m_at, false)?;
                self.text(means, "name", &m_at.key("usedTransportMeans"), false)
            });
            transport = (|| {
                Some(Transport {
                    departure_date: departure?,
                    mode: mode?,
                    vessel,
                    port_of_loading: loading?,
                    port_of_discharge: discharge?,
                })
            })();
            let x_items = ext.and_then(|x| self.arr(x, "items", &x_at, true));
            (items, producer) = self.items(sc, &sc_at, x_items, &x_at.key("items"));
        }

        let (
            Some(agreement),
            Some(kind),
            Some(number),
            Some(reference),
            Some(version),
            Some(exporting_country),
            Some(importing_country),
            Some(exporter),
            Some(producer),
            Some(consignee),
            Some(transport),
            Some(items),
            Some(declaration),
            Some(certification),
            Some(flags),
        ) = (
            agreement,
            kind,
            number,
            reference,
            version,
            exporting_country,
            importing_country,
            exporter,
            producer,
            consignee,
            transport,
            items,
            declaration,
            certification,
            flags,
        )
        else {
            return Err(self.fail());
        };
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Certificate {
            agreement,
            kind,
            number,
            reference,
            version,
            replaces,
            exporting_country,
            importing_country,
            exporter,
            producer,
            consignee,
            transport,
            items,
            declaration,
            certification,
            official_use,
            flags,
            approved_exporter,
            remarks,
        })
    }

    fn flags(&mut self, f: &Obj, at: &At) -> Option<Flags> {
        self.known(
            f,
            at,
            &[
                "thirdPartyInvoicing",
                "exhibition",
                "backToBack",
                "deMinimis",
                "accumulation",
                "partialCumulation",
                "issuedRetroactively",
            ],
        );
        let third_party_invoicing = self.party_at(f, "thirdPartyInvoicing", at, false);
        let exhibition = match self.obj(f, "exhibition", at, false) {
            None => None,
            Some(e) => {
                let e_at = at.key("exhibition");
                self.known(e, &e_at, &["name", "place"]);
                let name = self.text(e, "name", &e_at, true);
                let place = self.text(e, "place", &e_at, true);
                Some(Exhibition { name: name?, place: place? })
            }
        };
        let back_to_back = self.cert_ref(f, "backToBack", at);
        let mut flag = |k| self.boolean(f, k, at, false).unwrap_or(false);
        Some(Flags {
            third_party_invoicing,
            exhibition,
            back_to_back,
            de_minimis: flag("deMinimis"),
            accumulation: flag("accumulation"),
            partial_cumulation: flag("partialCumulation"),
            issued_retroactively: flag("issuedRetroactively"),
        })
    }

    /// Goods lines: every trade line item of every consignment item, with the extension's
    /// `items` entry at the same position. Also the producer (every consignment item's
    /// manufacturer, which must be the same).
    #[allow(clippy::type_complexity)]
    fn items(
        &mut self,
        sc: &Obj,
        sc_at: &At,
        x_items: Option<&[V]>,
        xi_at: &At,
    ) -> (Option<Vec<Item>>, Option<Option<Party>>) {
        let Some(cis) = self.arr(sc, "includedConsignmentItems", sc_at, true) else {
            return (None, None);
        };
        let cis_at = sc_at.key("includedConsignmentItems");
        let mut items = Vec::with_capacity(cis.len());
        let mut complete = true;
        let mut producer: Option<Option<Party>> = None;
        let mut producer_ok = true;
        let mut line_no = 0usize;
        for (ci_n, ci) in cis.iter().enumerate() {
            let ci_at = cis_at.idx(ci_n);
            let V::Obj(ci) = ci else {
                self.push("TYPE", &ci_at, format!("expected an object, found {}", ci.kind()));
                complete = false;
                continue;
            };
            // A consignment item without trade line items (only written to carry the producer
            // of a certificate with no goods lines) needs no criterion.
            let lines = self.arr(ci, "tradeLineItems", &ci_at, true);
            let need_criterion = lines.is_none_or(|l| !l.is_empty());
            let criterion =
                self.obj(ci, "crossBorderRegulatoryProcedure", &ci_at, need_criterion).and_then(|p| {
                    self.parsed(
                        p,
                        "originCriteriaText",
                        &ci_at.key("crossBorderRegulatoryProcedure"),
                        true,
                        OriginCriterion::parse,
                    )
                });
            let manufacturer = match self.obj(ci, "manufacturer", &ci_at, false) {
                None => Some(None),
                Some(m) => self.party(m, &ci_at.key("manufacturer")).map(Some),
            };
            match (manufacturer, &producer) {
                (None, _) => producer_ok = false,
                (Some(m), None) => producer = Some(m),
                (Some(m), Some(p)) => {
                    if &m != p {
                        self.push(
                            "PRODUCER_MIXED",
                            &ci_at.key("manufacturer"),
                            "every consignment item must name the same manufacturer (the certificate's producer)",
                        );
                        producer_ok = false;
                    }
                }
            }
            let Some(lines) = lines else {
                complete = false;
                continue;
            };
            let lines_at = ci_at.key("tradeLineItems");
            for (li_n, li) in lines.iter().enumerate() {
                let li_at = lines_at.idx(li_n);
                let x = match x_items {
                    None => None,
                    Some(xs) => match xs.get(line_no) {
                        Some(V::Obj(o)) => Some(o.as_slice()),
                        Some(v) => {
                            self.push(
                                "TYPE",
                                &xi_at.idx(line_no),
                                format!("expected an object, found {}", v.kind()),
                            );
                            None
                        }
                        None => None,
                    },
                };
                let item = self.item(li, &li_at, criterion, x, &xi_at.idx(line_no));
                line_no += 1;
                match item {
                    Some(i) => items.push(i),
                    None => complete = false,
                }
            }
        }
        if let Some(xs) = x_items {
            if xs.len() != line_no {
                self.push(
                    "ITEM_COUNT_MISMATCH",
                    xi_at,
                    format!(
                        "{} entries for {line_no} trade line items; there must be one for each",
                        xs.len()
                    ),
                );
                complete = false;
            }
        } else {
            complete = false;
        }
        let producer = if producer_ok { Some(producer.unwrap_or(None)) } else { None };
        (complete.then_some(items), producer)
    }

    fn item(
        &mut self,
        li: &V,
        at: &At,
        criterion: Option<OriginCriterion>,
        x: Option<&Obj>,
        x_at: &At,
    ) -> Option<Item> {
        let V::Obj(li) = li else {
            self.push("TYPE", at, format!("expected an object, found {}", li.kind()));
            return None;
        };
        let number = self.uint(li, "sequenceNumber", at, true);
        let inv_at = at.key("invoiceReference");
        let invoice = self.obj(li, "invoiceReference", at, true).and_then(|o| {
            let number = self.id(o, "iD", &inv_at, true, INVOICE_PREFIX);
            let date = self.date(o, "formattedIssueDateTime", &inv_at, true);
            Some(Invoice { number: number?, date: date? })
        });
        let p_at = at.key("tradeProduct");
        let (description, hs, origin_country) = match self.obj(li, "tradeProduct", at, true) {
            None => (None, None, None),
            Some(p) => {
                let description = self.text(p, "description", &p_at, true);
                let hs = self.obj(p, "harmonisedTariffCode", &p_at, true).and_then(|h| {
                    self.parsed(h, "classCode", &p_at.key("harmonisedTariffCode"), true, HsCode::parse)
                });
                let origin = self.country(p, "originCountry", &p_at);
                (description, hs, origin)
            }
        };
        let (marks, packages, quantity, gross_weight, fob) = match x {
            None => (None, None, None, None, None),
            Some(x) => {
                self.known(x, x_at, &["marks", "packages", "quantity", "grossWeight", "fob"]);
                let marks = self.text(x, "marks", x_at, true);
                let pk_at = x_at.key("packages");
                let packages = self.obj(x, "packages", x_at, true).and_then(|p| {
                    self.known(p, &pk_at, &["count", "kindCode"]);
                    let count = self.uint(p, "count", &pk_at, true);
                    let kind = self.parsed(p, "kindCode", &pk_at, true, PackageKind::parse);
                    Some(Packages { count: count?, kind: kind? })
                });
                let quantity = self.quantity(x, "quantity", x_at, true);
                // Outer `None`: present but wrong (reported); `Some(None)`: absent.
                let gross = match field(x, "grossWeight") {
                    None | Some(V::Null) => Some(None),
                    Some(_) => self.quantity(x, "grossWeight", x_at, false).map(Some),
                };
                let fob = match field(x, "fob") {
                    None | Some(V::Null) => Some(None),
                    Some(_) => self.money(x, "fob", x_at).map(Some),
                };
                (marks, packages, quantity, gross, fob)
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
