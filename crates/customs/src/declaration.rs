//! Import declarations: the domain types, the JSON reader (every problem with a code and a
//! JSON pointer) and the JSON writer.
//!
//! Wire shape (amounts and quantities are strings, so that they stay exact):
//!
//! ```json
//! { "number": "TH-IMP-2026-000001",
//!   "importer": { "name": "Siam Fresh Trading Public Co., Ltd.", "id": "TH-TIN-07200001" },
//!   "importing_country": "TH", "declaration_date": "2026-03-10",
//!   "lines": [ { "line_no": 1, "hs_code": "1006.30.10", "description": "Jasmine rice",
//!     "quantity": "1000", "unit": "KGM",
//!     "customs_value": { "amount": "980.00", "currency": "USD" },
//!     "origin_country": "KH", "claimed_agreement": "ATIGA",
//!     "eco": { "issuing_country": "KH", "number": "KH-2026-000001" },
//!     "invoice_number": "INV-2026-00100" } ] }
//! ```
//!
//! `claimed_agreement` is `"ATIGA"`, `"RCEP"` or `null` (MFN, no preference claimed); `eco` is
//! an object or the string `"PENDING"`; `importer.id` and `invoice_number` may be `null` or
//! left out. Unknown fields are refused.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use originlink_model::{
    Agreement, CertificateNumber, CountryCode, Currency, HsCode, Money, Problem, Quantity, UnitCode,
    parse_decimal,
};
use serde_json::{Map, Value, json};

/// Largest declaration document accepted, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Most lines one declaration may carry.
pub const MAX_LINES: usize = 999;
/// Longest free text (names, descriptions), in characters.
pub const MAX_TEXT: usize = 512;
/// Longest identifier (declaration number, importer id, invoice number), in characters.
pub const MAX_ID: usize = 35;

/// An import declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The declaration number (1–35 of letters, digits, `-`, `/`, `.`).
    pub number: String,
    /// The importer.
    pub importer: Importer,
    /// The country importing (the node's own).
    pub importing_country: CountryCode,
    /// The date the declaration was filed.
    pub declaration_date: NaiveDate,
    /// The goods lines, 1 to [`MAX_LINES`], numbers unique.
    pub lines: Vec<Line>,
}

/// The importer of record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Importer {
    /// Registered name.
    pub name: String,
    /// Tax or business registration number, if given.
    pub id: Option<String>,
}

/// One goods line of a declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Line number, 1 to 999, unique in the declaration.
    pub line_no: u32,
    /// HS code; national 8–10 digit codes allowed (matching uses the 6-digit subheading).
    pub hs_code: HsCode,
    /// Description of the goods.
    pub description: String,
    /// Quantity and unit.
    pub quantity: Quantity,
    /// Customs value.
    pub customs_value: Money,
    /// Country of origin declared.
    pub origin_country: CountryCode,
    /// The agreement whose preference is claimed; `None` is MFN.
    pub claimed_agreement: Option<Agreement>,
    /// The e-CO the claim rests on.
    pub eco: EcoRef,
    /// The commercial invoice number, if declared.
    pub invoice_number: Option<String>,
}

/// The certificate a line refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EcoRef {
    /// An issued certificate, by issuing country and number.
    Issued {
        /// Issuing country.
        issuing_country: CountryCode,
        /// Certificate number.
        number: CertificateNumber,
    },
    /// Awaited: the declarant enters `PENDING` and the certificate is matched when it arrives.
    Pending,
}

impl Declaration {
    /// Reads a declaration from JSON. Refuses input over [`MAX_BYTES`] and reports every
    /// problem found, each with a stable code and the JSON pointer of the field.
    pub fn from_json(bytes: &[u8]) -> Result<Declaration, Vec<Problem>> {
        if bytes.len() > MAX_BYTES {
            return Err(vec![Problem::new(
                "TOO_LARGE",
                "",
                format!("{} bytes; at most {MAX_BYTES} are accepted", bytes.len()),
            )]);
        }
        // serde_json bounds nesting at 128 levels, so hostile depth ends as an error.
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| vec![Problem::new("JSON_MALFORMED", "", format!("not well-formed JSON: {e}"))])?;
        let mut r = Reader { problems: Vec::new() };
        let decl = r.declaration(&value);
        match decl {
            Some(d) if r.problems.is_empty() => Ok(d),
            _ => {
                if r.problems.is_empty() {
                    r.problems.push(Problem::new("DECLARATION_INVALID", "", "the declaration is not valid"));
                }
                Err(r.problems)
            }
        }
    }

    /// The declaration as JSON (the shape [`Declaration::from_json`] reads).
    pub fn to_json(&self) -> Value {
        json!({
            "number": self.number,
            "importer": { "name": self.importer.name, "id": self.importer.id },
            "importing_country": self.importing_country.as_str(),
            "declaration_date": self.declaration_date.format("%Y-%m-%d").to_string(),
            "lines": self.lines.iter().map(Line::to_json).collect::<Vec<_>>(),
        })
    }

    /// The declaration as compact JSON bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// The line with this number.
    pub fn line(&self, line_no: u32) -> Option<&Line> {
        self.lines.iter().find(|l| l.line_no == line_no)
    }

    /// The JSON pointer of a line (by its number), e.g. `/lines/2` for the third line.
    pub fn line_pointer(&self, line_no: u32) -> String {
        let i = self.lines.iter().position(|l| l.line_no == line_no).unwrap_or(0);
        format!("/lines/{i}")
    }
}

impl Line {
    /// The line as JSON.
    pub fn to_json(&self) -> Value {
        let eco = match &self.eco {
            EcoRef::Issued { issuing_country, number } => {
                json!({ "issuing_country": issuing_country.as_str(), "number": number.as_str() })
            }
            EcoRef::Pending => json!("PENDING"),
        };
        json!({
            "line_no": self.line_no,
            "hs_code": self.hs_code.dotted(),
            "description": self.description,
            "quantity": self.quantity.value().to_string(),
            "unit": self.quantity.unit().as_str(),
            "customs_value": {
                "amount": self.customs_value.amount_text(),
                "currency": self.customs_value.currency().as_str(),
            },
            "origin_country": self.origin_country.as_str(),
            "claimed_agreement": self.claimed_agreement.map(|a| a.code()),
            "eco": eco,
            "invoice_number": self.invoice_number,
        })
    }
}

struct Reader {
    problems: Vec<Problem>,
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'.'))
}

impl Reader {
    fn problem(&mut self, code: &str, path: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(code, path, message));
    }

    /// The object at `path`, after refusing unknown keys.
    fn object<'v>(&mut self, v: &'v Value, path: &str, keys: &[&str]) -> Option<&'v Map<String, Value>> {
        let Some(o) = v.as_object() else {
            self.problem("TYPE_MISMATCH", path, "expected an object");
            return None;
        };
        for k in o.keys() {
            if !keys.contains(&k.as_str()) {
                let shown: String = k.chars().take(64).collect();
                self.problem(
                    "FIELD_UNKNOWN",
                    &format!("{path}/{}", escape(k)),
                    format!("unknown field {shown:?}"),
                );
            }
        }
        Some(o)
    }

    /// A required field (missing or `null` is `FIELD_REQUIRED`).
    fn required<'v>(&mut self, o: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v Value> {
        match o.get(key) {
            None | Some(Value::Null) => {
                self.problem("FIELD_REQUIRED", &format!("{path}/{key}"), format!("{key} is required"));
                None
            }
            Some(v) => Some(v),
        }
    }

    fn string<'v>(&mut self, v: &'v Value, path: &str, max: usize) -> Option<&'v str> {
        let Some(s) = v.as_str() else {
            self.problem("TYPE_MISMATCH", path, "expected a string");
            return None;
        };
        let n = s.chars().count();
        if n > max {
            self.problem("TEXT_TOO_LONG", path, format!("{n} characters; at most {max}"));
            return None;
        }
        if s.trim().is_empty() {
            self.problem("TEXT_EMPTY", path, "must not be empty");
            return None;
        }
        if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            self.problem("TEXT_CONTROL_CHARACTER", path, "control characters are not accepted");
            return None;
        }
        Some(s)
    }

    fn text(&mut self, o: &Map<String, Value>, key: &str, path: &str, max: usize) -> Option<String> {
        let p = format!("{path}/{key}");
        let v = self.required(o, key, path)?;
        self.string(v, &p, max).map(str::to_owned)
    }

    fn optional_text(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
        max: usize,
    ) -> Option<Option<String>> {
        match o.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(v) => self.string(v, &format!("{path}/{key}"), max).map(|s| Some(s.to_owned())),
        }
    }

    fn identifier(&mut self, o: &Map<String, Value>, key: &str, path: &str, code: &str) -> Option<String> {
        let s = self.text(o, key, path, MAX_ID)?;
        if !is_identifier(&s) {
            self.problem(code, &format!("{path}/{key}"), "1 to 35 letters, digits, '-', '/' or '.'");
            return None;
        }
        Some(s)
    }

    fn parsed<T>(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, originlink_model::ParseError>,
    ) -> Option<T> {
        let p = format!("{path}/{key}");
        let v = self.required(o, key, path)?;
        let s = self.string(v, &p, 64)?;
        match parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems.push(Problem::from_parse(&e, p));
                None
            }
        }
    }

    fn date(&mut self, o: &Map<String, Value>, key: &str, path: &str) -> Option<NaiveDate> {
        let p = format!("{path}/{key}");
        let v = self.required(o, key, path)?;
        let s = self.string(v, &p, 10)?;
        let ok = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if ok => Some(d),
            _ => {
                self.problem("DATE_INVALID", &p, format!("{s:?} is not a date YYYY-MM-DD"));
                None
            }
        }
    }

    fn declaration(&mut self, v: &Value) -> Option<Declaration> {
        let o =
            self.object(v, "", &["number", "importer", "importing_country", "declaration_date", "lines"])?;
        let number = self.identifier(o, "number", "", "DECLARATION_NUMBER_INVALID");
        let importer = self.required(o, "importer", "").and_then(|v| self.importer(v));
        let importing_country = self.parsed(o, "importing_country", "", CountryCode::parse);
        let declaration_date = self.date(o, "declaration_date", "");
        let lines = self.required(o, "lines", "").and_then(|v| self.lines(v));
        Some(Declaration {
            number: number?,
            importer: importer?,
            importing_country: importing_country?,
            declaration_date: declaration_date?,
            lines: lines?,
        })
    }

    fn importer(&mut self, v: &Value) -> Option<Importer> {
        let o = self.object(v, "/importer", &["name", "id"])?;
        let name = self.text(o, "name", "/importer", MAX_TEXT);
        let id = self.optional_text(o, "id", "/importer", MAX_ID);
        Some(Importer { name: name?, id: id? })
    }

    fn lines(&mut self, v: &Value) -> Option<Vec<Line>> {
        let Some(a) = v.as_array() else {
            self.problem("TYPE_MISMATCH", "/lines", "expected an array");
            return None;
        };
        if a.is_empty() {
            self.problem("LINES_EMPTY", "/lines", "a declaration has at least one line");
            return None;
        }
        if a.len() > MAX_LINES {
            self.problem("TOO_MANY_LINES", "/lines", format!("{} lines; at most {MAX_LINES}", a.len()));
            return None;
        }
        let mut out = Vec::with_capacity(a.len());
        let mut seen = BTreeSet::new();
        for (i, v) in a.iter().enumerate() {
            let path = format!("/lines/{i}");
            if let Some(line) = self.line(v, &path) {
                if !seen.insert(line.line_no) {
                    self.problem(
                        "LINE_NO_DUPLICATE",
                        &format!("{path}/line_no"),
                        format!("line {} again", line.line_no),
                    );
                }
                out.push(line);
            }
        }
        (out.len() == a.len()).then_some(out)
    }

    fn line(&mut self, v: &Value, path: &str) -> Option<Line> {
        let o = self.object(
            v,
            path,
            &[
                "line_no",
                "hs_code",
                "description",
                "quantity",
                "unit",
                "customs_value",
                "origin_country",
                "claimed_agreement",
                "eco",
                "invoice_number",
            ],
        )?;
        let line_no = self.required(o, "line_no", path).and_then(|v| match v.as_u64() {
            Some(n @ 1..=999) => Some(n as u32),
            _ => {
                self.problem("LINE_NO_INVALID", &format!("{path}/line_no"), "an integer from 1 to 999");
                None
            }
        });
        let hs_code = self.parsed(o, "hs_code", path, HsCode::parse);
        let description = self.text(o, "description", path, MAX_TEXT);
        let unit = self.parsed(o, "unit", path, UnitCode::parse);
        let value = self.parsed(o, "quantity", path, parse_decimal);
        let quantity = match (value, unit) {
            (Some(v), Some(u)) => match Quantity::new(v, u) {
                Ok(q) => Some(q),
                Err(e) => {
                    self.problems.push(Problem::from_parse(&e, format!("{path}/quantity")));
                    None
                }
            },
            _ => None,
        };
        let customs_value = self.required(o, "customs_value", path).and_then(|v| self.money(v, path));
        let origin_country = self.parsed(o, "origin_country", path, CountryCode::parse);
        let claimed_agreement = match o.get("claimed_agreement") {
            None | Some(Value::Null) => Some(None),
            Some(_) => self.parsed(o, "claimed_agreement", path, Agreement::parse).map(Some),
        };
        let eco = self.required(o, "eco", path).and_then(|v| self.eco(v, &format!("{path}/eco")));
        let invoice_number = self.optional_text(o, "invoice_number", path, MAX_ID);
        Some(Line {
            line_no: line_no?,
            hs_code: hs_code?,
            description: description?,
            quantity: quantity?,
            customs_value: customs_value?,
            origin_country: origin_country?,
            claimed_agreement: claimed_agreement?,
            eco: eco?,
            invoice_number: invoice_number?,
        })
    }

    fn money(&mut self, v: &Value, line: &str) -> Option<Money> {
        let path = format!("{line}/customs_value");
        let o = self.object(v, &path, &["amount", "currency"])?;
        let currency = self.parsed(o, "currency", &path, Currency::parse);
        let amount = self.parsed(o, "amount", &path, parse_decimal);
        match Money::new(amount?, currency?) {
            Ok(m) => Some(m),
            Err(e) => {
                self.problems.push(Problem::from_parse(&e, format!("{path}/amount")));
                None
            }
        }
    }

    fn eco(&mut self, v: &Value, path: &str) -> Option<EcoRef> {
        if let Some(s) = v.as_str() {
            if s == "PENDING" {
                return Some(EcoRef::Pending);
            }
            self.problem("ECO_INVALID", path, "an object {issuing_country, number} or \"PENDING\"");
            return None;
        }
        let o = self.object(v, path, &["issuing_country", "number"])?;
        let issuing_country = self.parsed(o, "issuing_country", path, CountryCode::parse);
        let number = self.parsed(o, "number", path, CertificateNumber::parse);
        Some(EcoRef::Issued { issuing_country: issuing_country?, number: number? })
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(k: &str) -> String {
    let k: String = k.chars().take(64).collect();
    k.replace('~', "~0").replace('/', "~1")
}
