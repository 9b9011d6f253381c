//! The HS 2022 nomenclature and the [`HsCode`] type.
//!
//! The nomenclature is compiled in from `data/hs2022/hs2022.csv` (WCO HS 2022 via UN Comtrade,
//! ODC-PDDL; see that folder's SOURCE.md). A 6-digit code must exist in it; a national
//! 8–10 digit code is accepted when its 6-digit subheading exists.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

const CSV: &str = include_str!("../../../data/hs2022/hs2022.csv");

/// One entry of the nomenclature: a chapter (2 digits), heading (4) or subheading (6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsEntry {
    /// The code as digits, e.g. `"851713"`.
    pub code: &'static str,
    /// HS section as a Roman numeral.
    pub section: &'static str,
    /// English description.
    pub description: &'static str,
}

/// The whole HS 2022 nomenclature, indexed by code.
#[derive(Debug)]
pub struct Nomenclature {
    entries: HashMap<&'static str, HsEntry>,
}

impl Nomenclature {
    /// The compiled-in HS 2022 nomenclature.
    pub fn hs2022() -> &'static Nomenclature {
        static N: LazyLock<Nomenclature> = LazyLock::new(|| Nomenclature::from_csv(CSV));
        &N
    }

    fn from_csv(csv: &'static str) -> Nomenclature {
        let mut entries = HashMap::with_capacity(7000);
        for line in csv.lines().skip(1) {
            let Some(fields) = split_csv_line(line) else { continue };
            let [section, code, description, _parent, _level] = fields;
            entries.insert(code, HsEntry { code, section, description });
        }
        Nomenclature { entries }
    }

    /// Looks up a 2-, 4- or 6-digit code given as digits.
    pub fn get(&self, digits: &str) -> Option<&HsEntry> {
        self.entries.get(digits)
    }

    /// Up to `limit` subheadings (6 digits) whose code starts with the digits of `text`, or
    /// whose description holds every word of it (case ignored), in code order.
    pub fn search(&self, text: &str, limit: usize) -> Vec<&HsEntry> {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let by_code = !digits.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ' ');
        let mut found: Vec<&HsEntry> = self
            .entries
            .values()
            .filter(|e| e.code.len() == 6)
            .filter(|e| {
                if by_code {
                    e.code.starts_with(&digits)
                } else {
                    let d = e.description.to_lowercase();
                    !words.is_empty() && words.iter().all(|w| d.contains(w.as_str()))
                }
            })
            .collect();
        found.sort_by_key(|e| e.code);
        found.truncate(limit);
        found
    }

    /// Number of entries (chapters, headings and subheadings).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the nomenclature is empty (never, for the compiled-in one).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &HsEntry> {
        self.entries.values()
    }
}

/// Splits one RFC 4180 line of the nomenclature file into its five fields. The file has no
/// embedded quotes, so a quoted field is simply the text between two quotes.
fn split_csv_line(line: &'static str) -> Option<[&'static str; 5]> {
    let mut out = [""; 5];
    let mut rest = line;
    for (i, slot) in out.iter_mut().enumerate() {
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"')?;
            *slot = &stripped[..end];
            rest = stripped[end + 1..].strip_prefix(',').unwrap_or("");
        } else if i == 4 {
            *slot = rest;
        } else {
            let end = rest.find(',')?;
            *slot = &rest[..end];
            rest = &rest[end + 1..];
        }
    }
    Some(out)
}

/// A Harmonized System code of 6 to 10 digits whose 6-digit subheading exists in HS 2022.
///
/// Parsing accepts the usual written forms: `851712`, `8517.13`, `8517.13.00`, `8517.13.0010`.
/// The canonical form keeps digits only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HsCode {
    digits: [u8; 10],
    len: u8,
}

impl HsCode {
    /// Parses and checks a code against the HS 2022 nomenclature.
    ///
    /// Errors: `HS_MALFORMED` (not 6–10 digits once dots and spaces are removed) or
    /// `HS_UNKNOWN` (the 6-digit subheading is not in HS 2022).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let code = Self::parse_syntax(s)?;
        if Nomenclature::hs2022().get(code.subheading()).is_none() {
            return Err(ParseError::new("HS_UNKNOWN", s)
                .with_detail(format!("subheading {} is not in HS 2022", code.subheading())));
        }
        Ok(code)
    }

    /// Parses the written form without looking the code up. Only for codes from an older HS
    /// edition (rule tables written in HS 2012) that must still be compared by digits.
    pub fn parse_syntax(s: &str) -> Result<Self, ParseError> {
        let mut digits = [0u8; 10];
        let mut len = 0usize;
        for b in s.bytes() {
            match b {
                b'0'..=b'9' => {
                    if len == 10 {
                        return Err(ParseError::new("HS_MALFORMED", s));
                    }
                    digits[len] = b;
                    len += 1;
                }
                b'.' | b' ' if len > 0 => {}
                _ => return Err(ParseError::new("HS_MALFORMED", s)),
            }
        }
        if len < 6 {
            return Err(ParseError::new("HS_MALFORMED", s).with_detail("an HS code has 6 to 10 digits"));
        }
        Ok(HsCode { digits, len: len as u8 })
    }

    /// All digits, e.g. `"85171300"`.
    pub fn digits(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }
    /// Chapter, 2 digits.
    pub fn chapter(&self) -> &str {
        &self.digits()[..2]
    }
    /// Heading, 4 digits.
    pub fn heading(&self) -> &str {
        &self.digits()[..4]
    }
    /// Subheading, 6 digits.
    pub fn subheading(&self) -> &str {
        &self.digits()[..6]
    }
    /// The HS 2022 description of the subheading.
    pub fn description(&self) -> &'static str {
        Nomenclature::hs2022().get(self.subheading()).map(|e| e.description).unwrap_or("")
    }
    /// The dotted form: `8517.13`, `8517.13.00`, `8517.13.0010`.
    pub fn dotted(&self) -> String {
        let d = self.digits();
        let mut s = format!("{}.{}", &d[..4], &d[4..6]);
        if d.len() > 6 {
            s.push('.');
            s.push_str(&d[6..]);
        }
        s
    }
}

impl fmt::Display for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}
impl fmt::Debug for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HsCode({})", self.dotted())
    }
}
impl TryFrom<String> for HsCode {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<HsCode> for String {
    fn from(c: HsCode) -> String {
        c.dotted()
    }
}
impl std::str::FromStr for HsCode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomenclature_has_every_row_and_no_filler() {
        let n = Nomenclature::hs2022();
        assert_eq!(n.len(), 6936);
        assert!(n.get("999999").is_none());
        assert!(n.get("TOTAL").is_none());
        assert_eq!(n.get("851713").unwrap().section, "XVI");
        assert!(n.get("0101").unwrap().description.starts_with("Horses"));
    }

    #[test]
    fn parses_written_forms() {
        for s in ["851713", "8517.13", "8517.13.00", "8517.13.0010", "8517 13"] {
            let c = HsCode::parse(s).unwrap();
            assert_eq!(c.subheading(), "851713", "{s}");
            assert_eq!(c.heading(), "8517");
            assert_eq!(c.chapter(), "85");
        }
        assert_eq!(HsCode::parse("8517.13.0010").unwrap().dotted(), "8517.13.0010");
        assert_eq!(HsCode::parse("8517.13").unwrap().to_string(), "8517.13");
    }

    #[test]
    fn refuses_bad_codes() {
        for (s, code) in [
            ("8517", "HS_MALFORMED"),
            ("85171300001", "HS_MALFORMED"),
            ("8517.1a", "HS_MALFORMED"),
            ("", "HS_MALFORMED"),
            (".851712", "HS_MALFORMED"),
            ("999999", "HS_UNKNOWN"),
            ("0101.99", "HS_UNKNOWN"),
            ("7701.00", "HS_UNKNOWN"),
        ] {
            assert_eq!(HsCode::parse(s).unwrap_err().code, code, "{s}");
        }
    }

    #[test]
    fn national_codes_need_an_existing_subheading() {
        assert!(HsCode::parse("1006.30.9990").is_ok());
        assert_eq!(HsCode::parse("1006.99.0000").unwrap_err().code, "HS_UNKNOWN");
    }
}
