//! Code-list types: ISO 3166-1 countries, ISO 4217 currencies, UN/ECE Rec 20 units and
//! Rec 21 package kinds. Each value that exists is on its list.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codes_data::{COUNTRIES, CURRENCIES};
use crate::error::ParseError;

macro_rules! code_type {
    ($(#[$m:meta])* $name:ident, $len:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; $len]);

        impl $name {
            /// The code as text.
            pub fn as_str(&self) -> &str {
                // Only ASCII bytes are ever stored.
                std::str::from_utf8(&self.0).unwrap_or("")
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.as_str().to_owned()
            }
        }
        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }
    };
}

fn fixed<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N || !b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return None;
    }
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    Some(out)
}

code_type!(
    /// An ISO 3166-1 alpha-2 country code that is currently assigned, e.g. `KH`.
    CountryCode,
    2
);

impl CountryCode {
    /// Parses an upper-case alpha-2 code and checks it is assigned.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bytes = fixed::<2>(s).ok_or_else(|| ParseError::new("COUNTRY_INVALID", s))?;
        COUNTRIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&bytes[..]))
            .map(|_| CountryCode(bytes))
            .map_err(|_| ParseError::new("COUNTRY_INVALID", s))
    }

    /// The English short name.
    pub fn name(&self) -> &'static str {
        COUNTRIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&self.0[..]))
            .map(|i| COUNTRIES[i].1)
            .unwrap_or("")
    }
}

code_type!(
    /// An ISO 4217 currency code, e.g. `USD`.
    Currency,
    3
);

impl Currency {
    /// Parses an upper-case alpha-3 code and checks it is on the ISO 4217 list.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bytes = fixed::<3>(s).ok_or_else(|| ParseError::new("CURRENCY_INVALID", s))?;
        CURRENCIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&bytes[..]))
            .map(|_| Currency(bytes))
            .map_err(|_| ParseError::new("CURRENCY_INVALID", s))
    }

    /// Digits after the decimal point that amounts in this currency may carry.
    pub fn minor_units(&self) -> u32 {
        CURRENCIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&self.0[..]))
            .map(|i| u32::from(CURRENCIES[i].1))
            .unwrap_or(2)
    }
}

/// UN/ECE Recommendation 20 unit codes accepted on certificates: the units of measure used
/// in trade of goods (a subset of the ~2,000 Rec 20 codes; the rest are for physics and
/// services). Sorted by code.
const UNITS: &[(&str, &str)] = &[
    ("BG", "bag"),
    ("BLL", "barrel (US)"),
    ("BX", "box"),
    ("C62", "one (unit)"),
    ("CMK", "square centimetre"),
    ("CMQ", "cubic centimetre"),
    ("CMT", "centimetre"),
    ("CT", "carton"),
    ("DZN", "dozen"),
    ("E51", "job"),
    ("GLL", "gallon (US)"),
    ("GRM", "gram"),
    ("GRO", "gross"),
    ("H87", "piece"),
    ("HLT", "hectolitre"),
    ("KGM", "kilogram"),
    ("KTM", "kilometre"),
    ("KWH", "kilowatt hour"),
    ("LBR", "pound"),
    ("LTR", "litre"),
    ("MGM", "milligram"),
    ("MLT", "millilitre"),
    ("MTK", "square metre"),
    ("MTQ", "cubic metre"),
    ("MTR", "metre"),
    ("MWH", "megawatt hour"),
    ("NAR", "number of articles"),
    ("NPR", "number of pairs"),
    ("ONZ", "ounce"),
    ("PR", "pair"),
    ("SET", "set"),
    ("STN", "ton (US) or short ton"),
    ("TNE", "tonne (metric ton)"),
    ("U2", "tablet"),
];

/// A UN/ECE Recommendation 20 unit of measure, e.g. `KGM`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnitCode(&'static str);

impl UnitCode {
    /// Parses a Rec 20 code from the accepted list.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        UNITS
            .binary_search_by(|(c, _)| (*c).cmp(s))
            .map(|i| UnitCode(UNITS[i].0))
            .map_err(|_| ParseError::new("UNIT_UNKNOWN", s))
    }
    /// The code as text.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
    /// The unit's name.
    pub fn name(&self) -> &'static str {
        UNITS.binary_search_by(|(c, _)| (*c).cmp(self.0)).map(|i| UNITS[i].1).unwrap_or("")
    }
}

/// UN/ECE Recommendation 21 package type codes (a common subset). Sorted by code.
const PACKAGES: &[(&str, &str)] = &[
    ("AE", "aerosol"),
    ("BA", "barrel"),
    ("BE", "bundle"),
    ("BG", "bag"),
    ("BK", "basket"),
    ("BX", "box"),
    ("CH", "chest"),
    ("CN", "container"),
    ("CR", "crate"),
    ("CS", "case"),
    ("CT", "carton"),
    ("DR", "drum"),
    ("JR", "jar"),
    ("NE", "unpacked"),
    ("PA", "packet"),
    ("PK", "package"),
    ("PL", "pail"),
    ("PX", "pallet"),
    ("RL", "reel"),
    ("RO", "roll"),
    ("SA", "sack"),
    ("TB", "tub"),
    ("TN", "tin"),
    ("VG", "bulk, gas"),
    ("VL", "bulk, liquid"),
    ("VR", "bulk, solid"),
];

/// A UN/ECE Recommendation 21 package kind, e.g. `CT` (carton).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackageKind(&'static str);

impl PackageKind {
    /// Parses a Rec 21 code from the accepted list.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        PACKAGES
            .binary_search_by(|(c, _)| (*c).cmp(s))
            .map(|i| PackageKind(PACKAGES[i].0))
            .map_err(|_| ParseError::new("PACKAGE_KIND_UNKNOWN", s))
    }
    /// The code as text.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
    /// The package kind's name.
    pub fn name(&self) -> &'static str {
        PACKAGES.binary_search_by(|(c, _)| (*c).cmp(self.0)).map(|i| PACKAGES[i].1).unwrap_or("")
    }
}

macro_rules! static_code_impls {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0.to_owned()
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
static_code_impls!(UnitCode);
static_code_impls!(PackageKind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_so_binary_search_works() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(UNITS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(PACKAGES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn countries() {
        assert_eq!(CountryCode::parse("KH").unwrap().name(), "Cambodia");
        for bad in ["kh", "XX", "K", "KHM", "", "ZZ"] {
            assert_eq!(CountryCode::parse(bad).unwrap_err().code, "COUNTRY_INVALID", "{bad}");
        }
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("USD").unwrap().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("XAU").is_err());
    }

    #[test]
    fn units_and_packages() {
        assert_eq!(UnitCode::parse("KGM").unwrap().name(), "kilogram");
        assert_eq!(UnitCode::parse("kg").unwrap_err().code, "UNIT_UNKNOWN");
        assert_eq!(PackageKind::parse("CT").unwrap().name(), "carton");
        assert!(PackageKind::parse("ZZ").is_err());
    }
}
