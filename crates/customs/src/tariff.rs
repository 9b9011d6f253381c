//! Tariff tables: MFN and preferential rates per importing country, per scheme, per HS 6,
//! read from the CSV format documented in `docs/tariffs.md`. The demo tables in
//! `data/tariffs/` are compiled in ([`Tariff::builtin`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use originlink_model::{Agreement, CountryCode, Currency, Decimal, HsCode, UnitCode, parse_decimal};
use serde::{Deserialize, Serialize};

/// The header every table starts with (after comment lines).
pub const HEADER: &str =
    "country,scheme,hs6,ad_valorem_pct,specific_amount,specific_currency,specific_unit,note";

const BUILTIN: &[(&str, &str)] = &[
    ("data/tariffs/kh.csv", include_str!("../../../data/tariffs/kh.csv")),
    ("data/tariffs/th.csv", include_str!("../../../data/tariffs/th.csv")),
    ("data/tariffs/vn.csv", include_str!("../../../data/tariffs/vn.csv")),
];

/// The rate scheme: the MFN rate or an agreement's preferential rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scheme {
    /// Most-favoured-nation (the general rate).
    #[serde(rename = "MFN")]
    Mfn,
    /// The preferential rate of an agreement.
    #[serde(untagged)]
    Preferential(Agreement),
}

impl Scheme {
    /// `MFN`, `ATIGA` or `RCEP`.
    pub fn code(&self) -> &'static str {
        match self {
            Scheme::Mfn => "MFN",
            Scheme::Preferential(a) => a.code(),
        }
    }
    /// Parses `MFN`, `ATIGA` or `RCEP` (exact case).
    pub fn parse(s: &str) -> Option<Scheme> {
        match s {
            "MFN" => Some(Scheme::Mfn),
            "ATIGA" => Some(Scheme::Preferential(Agreement::Atiga)),
            "RCEP" => Some(Scheme::Preferential(Agreement::Rcep)),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A specific duty: an amount of money per unit of quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specific {
    /// Amount per unit (may carry more decimals than the currency, e.g. 0.125).
    pub amount: Decimal,
    /// Its currency.
    pub currency: Currency,
    /// The unit it is charged per.
    pub unit: UnitCode,
}

/// One rate: ad valorem percent, plus an optional specific duty (the two add up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Percent of the customs value, e.g. `30` or `2.5`.
    pub ad_valorem_pct: Decimal,
    /// Specific duty per unit, if any.
    pub specific: Option<Specific>,
    /// Free-text note from the table (source, remarks).
    pub note: String,
}

/// A refused table line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{source_name}:{line}: {code}: {message}")]
pub struct TariffError {
    /// The table's name (file path), as given.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// Stable code, e.g. `TARIFF_HS_INVALID`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

type Key = (CountryCode, Scheme, String);

/// A set of tariff tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tariff {
    rates: BTreeMap<Key, (Rate, String, usize)>,
}

impl Tariff {
    /// The demo tables of `data/tariffs/` (TH, VN, KH importing), compiled in.
    pub fn builtin() -> &'static Tariff {
        static T: LazyLock<Tariff> = LazyLock::new(|| {
            let mut t = Tariff::default();
            for (name, text) in BUILTIN {
                t.load(name, text).expect("the built-in tariff tables are checked by a unit test");
            }
            t
        });
        &T
    }

    /// The built-in table sources, `(path, text)`.
    pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
        BUILTIN
    }

    /// Parses one table.
    pub fn parse(name: &str, text: &str) -> Result<Tariff, Vec<TariffError>> {
        let mut t = Tariff::default();
        t.load(name, text)?;
        Ok(t)
    }

    /// Adds one table to this set. Every refused line is reported; on error nothing is added.
    pub fn load(&mut self, name: &str, text: &str) -> Result<(), Vec<TariffError>> {
        let mut errors = Vec::new();
        let mut rows: Vec<(Key, Rate, usize)> = Vec::new();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |code: &'static str, message: String| TariffError {
                source_name: name.to_owned(),
                line: line_no,
                code,
                message,
            };
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if !header_seen {
                header_seen = true;
                if line.trim() != HEADER {
                    errors.push(err("TARIFF_HEADER", format!("expected the header {HEADER:?}")));
                    break;
                }
                continue;
            }
            match parse_row(line) {
                Ok((key, rate)) => rows.push((key, rate, line_no)),
                Err((code, message)) => errors.push(err(code, message)),
            }
        }
        if !header_seen {
            errors.push(TariffError {
                source_name: name.to_owned(),
                line: 1,
                code: "TARIFF_HEADER",
                message: format!("expected the header {HEADER:?}"),
            });
        }
        let mut added: BTreeMap<Key, (Rate, String, usize)> = BTreeMap::new();
        for (key, rate, line_no) in rows {
            let earlier = added.get(&key).or_else(|| self.rates.get(&key)).map(|(_, n, l)| (n.clone(), *l));
            if let Some((n, l)) = earlier {
                errors.push(TariffError {
                    source_name: name.to_owned(),
                    line: line_no,
                    code: "TARIFF_DUPLICATE",
                    message: format!("{} {} {} is already at {n}:{l}", key.0, key.1, key.2),
                });
                continue;
            }
            added.insert(key, (rate, name.to_owned(), line_no));
        }
        for ((country, scheme, hs6), (_, _, line_no)) in &added {
            let mfn = (*country, Scheme::Mfn, hs6.clone());
            if *scheme != Scheme::Mfn && !added.contains_key(&mfn) && !self.rates.contains_key(&mfn) {
                errors.push(TariffError {
                    source_name: name.to_owned(),
                    line: *line_no,
                    code: "TARIFF_MFN_MISSING",
                    message: format!("{country} {scheme} {hs6} has no MFN rate to compare with"),
                });
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            return Err(errors);
        }
        self.rates.extend(added);
        Ok(())
    }

    /// The rate of a scheme for an HS code (its 6-digit subheading) in an importing country.
    pub fn rate(&self, country: CountryCode, scheme: Scheme, hs: &HsCode) -> Option<&Rate> {
        self.rates.get(&(country, scheme, hs.subheading().to_owned())).map(|(r, _, _)| r)
    }

    /// Number of rates.
    pub fn len(&self) -> usize {
        self.rates.len()
    }

    /// Whether there are no rates.
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    /// Every `(country, scheme, hs6)` with its rate.
    pub fn iter(&self) -> impl Iterator<Item = (CountryCode, Scheme, &str, &Rate)> {
        self.rates.iter().map(|((c, s, h), (r, _, _))| (*c, *s, h.as_str(), r))
    }
}

fn parse_row(line: &str) -> Result<(Key, Rate), (&'static str, String)> {
    let fields: Vec<&str> = line.splitn(8, ',').map(str::trim).collect();
    if fields.len() != 8 {
        return Err(("TARIFF_COLUMNS", format!("{} columns; 8 expected", fields.len())));
    }
    let [country, scheme, hs6, pct, amount, currency, unit, note] =
        [fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7]];
    let country =
        CountryCode::parse(country).map_err(|e| ("TARIFF_COUNTRY_INVALID", format!("country: {e}")))?;
    let scheme = Scheme::parse(scheme)
        .ok_or_else(|| ("TARIFF_SCHEME_UNKNOWN", format!("scheme {scheme:?}: MFN, ATIGA or RCEP")))?;
    if hs6.len() != 6 || !hs6.bytes().all(|b| b.is_ascii_digit()) {
        return Err(("TARIFF_HS_INVALID", format!("hs6 {hs6:?}: exactly 6 digits")));
    }
    HsCode::parse(hs6).map_err(|e| ("TARIFF_HS_INVALID", format!("hs6: {e}")))?;
    let pct = parse_decimal(pct).map_err(|e| ("TARIFF_RATE_INVALID", format!("ad_valorem_pct: {e}")))?;
    if pct < Decimal::ZERO || pct > Decimal::from(1000) {
        return Err(("TARIFF_RATE_INVALID", format!("ad_valorem_pct {pct}: from 0 to 1000")));
    }
    let specific = match (amount, currency, unit) {
        ("", "", "") => None,
        (a, c, u) if !a.is_empty() && !c.is_empty() && !u.is_empty() => {
            let amount =
                parse_decimal(a).map_err(|e| ("TARIFF_SPECIFIC_INVALID", format!("specific_amount: {e}")))?;
            if amount <= Decimal::ZERO {
                return Err(("TARIFF_SPECIFIC_INVALID", format!("specific_amount {amount}: positive")));
            }
            let currency = Currency::parse(c)
                .map_err(|e| ("TARIFF_SPECIFIC_INVALID", format!("specific_currency: {e}")))?;
            let unit =
                UnitCode::parse(u).map_err(|e| ("TARIFF_SPECIFIC_INVALID", format!("specific_unit: {e}")))?;
            Some(Specific { amount, currency, unit })
        }
        _ => {
            return Err((
                "TARIFF_SPECIFIC_INCOMPLETE",
                "specific_amount, specific_currency and specific_unit go together".to_owned(),
            ));
        }
    };
    Ok(((country, scheme, hs6.to_owned()), Rate { ad_valorem_pct: pct, specific, note: note.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_load() {
        for (name, text) in BUILTIN {
            if let Err(e) = Tariff::parse(name, text) {
                panic!("{name}: {e:?}");
            }
        }
        assert!(Tariff::builtin().len() > 60);
    }
}
