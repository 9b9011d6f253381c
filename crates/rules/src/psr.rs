//! Product-specific rule (PSR) tables: data files in `psr/` (compiled in), keyed by HS ranges,
//! each row with its legal source. The format is described at the top of each file.
//!
//! The loader refuses overlapping ranges at the same level; across levels the most specific
//! range that contains a code wins.

use std::fmt;
use std::sync::LazyLock;

use originlink_model::{Agreement, HsCode};

use crate::error::TableError;
use crate::parse::parse_rule;
use crate::rule::Rule;

const ATIGA: &str = include_str!("../psr/atiga.psr");
const RCEP: &str = include_str!("../psr/rcep.psr");

/// A range of HS codes at one level: 2 (chapter), 4 (heading), 6 (subheading), 8 or 10
/// (national line) digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsRange {
    level: u8,
    from: u64,
    to: u64,
}

impl HsRange {
    /// Parses `0504.00`, `2401-2403`, `50-63`, `2404.19.10`. Both ends have the same level.
    pub fn parse(s: &str) -> Result<HsRange, String> {
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let (level, from) = Self::code(a)?;
        let to = match b {
            Some(b) => {
                let (l2, to) = Self::code(b)?;
                if l2 != level {
                    return Err(format!("`{s}`: both ends of a range must have the same number of digits"));
                }
                if to < from {
                    return Err(format!("`{s}`: a range goes from the lower code to the higher"));
                }
                to
            }
            None => from,
        };
        Ok(HsRange { level, from, to })
    }

    fn code(s: &str) -> Result<(u8, u64), String> {
        let s = s.trim();
        let digits: String = s.chars().filter(|c| *c != '.' && *c != ' ').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) || ![2, 4, 6, 8, 10].contains(&digits.len()) {
            return Err(format!("`{s}` is not a code of 2, 4, 6, 8 or 10 digits"));
        }
        let n = digits.parse::<u64>().map_err(|e| format!("`{s}`: {e}"))?;
        Ok((digits.len() as u8, n))
    }

    /// Number of digits of the level: 2, 4, 6, 8 or 10.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// `chapter`, `heading`, `subheading` or `national line`.
    pub fn level_name(&self) -> &'static str {
        match self.level {
            2 => "chapter",
            4 => "heading",
            6 => "subheading",
            _ => "national line",
        }
    }

    /// Whether a code given as digits (at least as many as the level) falls in the range.
    pub fn contains_digits(&self, digits: &str) -> bool {
        let l = self.level as usize;
        digits.len() >= l && digits[..l].parse::<u64>().is_ok_and(|p| (self.from..=self.to).contains(&p))
    }

    /// Whether the range lies inside the class written by `digits` (a finer range below a
    /// code), e.g. `2404.19.10` is below `2404.19`.
    pub fn is_below(&self, digits: &str) -> bool {
        let l = self.level as usize;
        if l <= digits.len() {
            return false;
        }
        let first = format!("{:0width$}", self.from, width = l);
        first.starts_with(digits)
    }

    fn overlaps(&self, other: &HsRange) -> bool {
        self.level == other.level && self.from <= other.to && other.from <= self.to
    }

    fn write_code(f: &mut fmt::Formatter<'_>, level: u8, n: u64) -> fmt::Result {
        let s = format!("{:0width$}", n, width = level as usize);
        match level {
            2 | 4 => f.write_str(&s),
            _ => {
                write!(f, "{}.{}", &s[..4], &s[4..6])?;
                if s.len() > 6 { write!(f, ".{}", &s[6..]) } else { Ok(()) }
            }
        }
    }
}

impl fmt::Display for HsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Self::write_code(f, self.level, self.from)?;
        if self.to != self.from {
            f.write_str("-")?;
            Self::write_code(f, self.level, self.to)?;
        }
        Ok(())
    }
}

/// One row of a PSR table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsrRow {
    /// The codes it covers.
    pub range: HsRange,
    /// The rule.
    pub rule: Rule,
    /// The legal source.
    pub source: String,
    /// The line of the table file, for error messages.
    pub line: usize,
}

/// A PSR table of one agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsrTable {
    /// The agreement named by the `@agreement` line.
    pub agreement: String,
    /// The nomenclature edition the codes are written in (`@hs` line).
    pub hs_edition: String,
    /// Sorted by level, then by first code.
    rows: Vec<PsrRow>,
}

impl PsrTable {
    /// Loads a table from its text. Refuses malformed lines, rules that do not parse, and
    /// overlapping ranges at the same level.
    pub fn parse(text: &str) -> Result<PsrTable, TableError> {
        let err = |code, line, message: String| TableError { code, line, message };
        let mut agreement = String::new();
        let mut hs_edition = String::new();
        let mut rows: Vec<PsrRow> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split_once('#').map_or(raw, |(a, _)| a).trim();
            if content.is_empty() {
                continue;
            }
            if let Some(h) = content.strip_prefix('@') {
                let (key, value) = h.split_once(char::is_whitespace).unwrap_or((h, ""));
                match key {
                    "agreement" => agreement = value.trim().to_owned(),
                    "hs" => hs_edition = value.trim().to_owned(),
                    _ => return Err(err("PSR_HEADER", line, format!("unknown header `@{key}`"))),
                }
                continue;
            }
            let cols: Vec<&str> = content.split('|').map(str::trim).collect();
            let [range, rule, source] = cols[..] else {
                return Err(err(
                    "PSR_LINE",
                    line,
                    format!("expected `HS range | rule | source`, found {} columns", cols.len()),
                ));
            };
            let range = HsRange::parse(range).map_err(|m| err("PSR_RANGE", line, m))?;
            let rule = parse_rule(rule).map_err(|e| err("PSR_RULE", line, format!("rule `{rule}`: {e}")))?;
            if source.is_empty() {
                return Err(err("PSR_LINE", line, "every row names its legal source".to_owned()));
            }
            rows.push(PsrRow { range, rule, source: source.to_owned(), line });
        }
        rows.sort_by_key(|r| (r.range.level, r.range.from));
        for w in rows.windows(2) {
            if w[0].range.overlaps(&w[1].range) {
                return Err(err(
                    "PSR_OVERLAP",
                    w[1].line,
                    format!("{} overlaps {} of line {}", w[1].range, w[0].range, w[0].line),
                ));
            }
        }
        Ok(PsrTable { agreement, hs_edition, rows })
    }

    /// The shipped table of an agreement.
    pub fn builtin(agreement: Agreement) -> &'static PsrTable {
        // The shipped files are checked by a unit test, so loading cannot fail at run time.
        static TABLES: LazyLock<[PsrTable; 2]> = LazyLock::new(|| {
            [ATIGA, RCEP].map(|t| PsrTable::parse(t).unwrap_or_else(|e| panic!("shipped PSR table: {e}")))
        });
        match agreement {
            Agreement::Atiga => &TABLES[0],
            Agreement::Rcep => &TABLES[1],
        }
    }

    /// The text of a shipped table, as compiled in.
    pub fn builtin_text(agreement: Agreement) -> &'static str {
        match agreement {
            Agreement::Atiga => ATIGA,
            Agreement::Rcep => RCEP,
        }
    }

    /// Every row, by level then code.
    pub fn rows(&self) -> &[PsrRow] {
        &self.rows
    }

    /// The most specific row whose range contains `code` (compared by digits, whatever the
    /// edition).
    pub fn lookup(&self, code: &HsCode) -> Option<&PsrRow> {
        let digits = code.digits();
        for level in [10u8, 8, 6, 4, 2] {
            if (level as usize) > digits.len() {
                continue;
            }
            let start = self.rows.partition_point(|r| r.range.level < level);
            let end = self.rows.partition_point(|r| r.range.level <= level);
            let at_level = &self.rows[start..end];
            let Ok(prefix) = digits[..level as usize].parse::<u64>() else { continue };
            let i = at_level.partition_point(|r| r.range.from <= prefix);
            if i > 0 && at_level[i - 1].range.to >= prefix {
                return Some(&at_level[i - 1]);
            }
        }
        None
    }

    /// Rows more specific than `code` lying inside it (e.g. national lines below a
    /// subheading): a hint that the code should be given in full.
    pub fn rows_below<'a>(&'a self, code: &'a HsCode) -> impl Iterator<Item = &'a PsrRow> + 'a {
        self.rows.iter().filter(move |r| r.range.is_below(code.digits()))
    }
}
