//! Exact decimal amounts: [`Money`] (with an ISO 4217 currency) and [`Quantity`] (with a
//! UN/ECE Rec 20 unit). Binary floating point never appears here.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::codes::{Currency, UnitCode};
use crate::error::ParseError;

/// The most decimals a quantity may carry.
pub const QUANTITY_MAX_DECIMALS: u32 = 6;

/// Parses a plain decimal: an optional `-`, digits, and an optional `.` with digits. No
/// exponent, no `+`, no spaces, at most 28 significant digits. Error code `DECIMAL_MALFORMED`.
pub fn parse_decimal(s: &str) -> Result<Decimal, ParseError> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int) || frac.is_some_and(|f| !digits_ok(f)) || body.len() > 40 {
        return Err(ParseError::new("DECIMAL_MALFORMED", s));
    }
    Decimal::from_str_exact(s).map_err(|e| ParseError::new("DECIMAL_MALFORMED", s).with_detail(e.to_string()))
}

/// Decimal places once trailing zeros are dropped (`15.000` has 0).
pub fn significant_scale(d: Decimal) -> u32 {
    d.normalize().scale()
}

/// A non-negative amount of money in a currency, with no more decimals than the currency's
/// minor unit (trailing zeros aside).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Builds an amount. Errors: `AMOUNT_NEGATIVE`, `AMOUNT_PRECISION`.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, ParseError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(ParseError::new("AMOUNT_NEGATIVE", &amount.to_string()));
        }
        if significant_scale(amount) > currency.minor_units() {
            return Err(ParseError::new("AMOUNT_PRECISION", &amount.to_string())
                .with_detail(format!("{currency} allows {} decimal places", currency.minor_units())));
        }
        Ok(Money { amount: amount.abs(), currency })
    }

    /// Parses `"1234.50"` with a currency code.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, ParseError> {
        let currency = Currency::parse(currency)?;
        Money::new(parse_decimal(amount)?, currency)
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }
    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The amount written with exactly the currency's minor units, e.g. `1234.50`.
    pub fn amount_text(&self) -> String {
        let mut a = self.amount;
        a.rescale(self.currency.minor_units());
        a.to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency)
    }
}
impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

/// A positive quantity in a UN/ECE Rec 20 unit, with at most
/// [`QUANTITY_MAX_DECIMALS`] decimals.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quantity {
    value: Decimal,
    unit: UnitCode,
}

impl Quantity {
    /// Builds a quantity. Errors: `QUANTITY_NOT_POSITIVE`, `QUANTITY_PRECISION`.
    pub fn new(value: Decimal, unit: UnitCode) -> Result<Self, ParseError> {
        if value <= Decimal::ZERO {
            return Err(ParseError::new("QUANTITY_NOT_POSITIVE", &value.to_string()));
        }
        if significant_scale(value) > QUANTITY_MAX_DECIMALS {
            return Err(ParseError::new("QUANTITY_PRECISION", &value.to_string())
                .with_detail(format!("at most {QUANTITY_MAX_DECIMALS} decimal places")));
        }
        Ok(Quantity { value: value.normalize(), unit })
    }

    /// Parses `"1200.5"` with a unit code.
    pub fn parse(value: &str, unit: &str) -> Result<Self, ParseError> {
        let unit = UnitCode::parse(unit)?;
        Quantity::new(parse_decimal(value)?, unit)
    }

    /// The number.
    pub fn value(&self) -> Decimal {
        self.value
    }
    /// The unit.
    pub fn unit(&self) -> UnitCode {
        self.unit
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.value, self.unit)
    }
}
impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_decimal("12.50").unwrap().to_string(), "12.50");
        assert_eq!(parse_decimal("-3").unwrap().to_string(), "-3");
        for bad in ["", ".5", "5.", "1e3", "+1", " 1", "1,5", "NaN", "0x10", "--1", "1.2.3"] {
            assert_eq!(parse_decimal(bad).unwrap_err().code, "DECIMAL_MALFORMED", "{bad:?}");
        }
        assert!(parse_decimal(&"9".repeat(60)).is_err());
    }

    #[test]
    fn money_rules() {
        assert_eq!(Money::parse("15.000", "USD").unwrap().amount_text(), "15.00");
        assert_eq!(Money::parse("-1.00", "USD").unwrap_err().code, "AMOUNT_NEGATIVE");
        assert_eq!(Money::parse("1.123456789", "USD").unwrap_err().code, "AMOUNT_PRECISION");
        assert_eq!(Money::parse("1.5", "JPY").unwrap_err().code, "AMOUNT_PRECISION");
        assert_eq!(Money::parse("1.125", "KWD").unwrap().amount_text(), "1.125");
        assert_eq!(Money::parse("1", "ABC").unwrap_err().code, "CURRENCY_INVALID");
    }

    #[test]
    fn quantity_rules() {
        assert_eq!(Quantity::parse("10.500", "KGM").unwrap().to_string(), "10.5 KGM");
        assert_eq!(Quantity::parse("0", "KGM").unwrap_err().code, "QUANTITY_NOT_POSITIVE");
        assert_eq!(Quantity::parse("1.0000001", "KGM").unwrap_err().code, "QUANTITY_PRECISION");
        assert_eq!(Quantity::parse("1", "KG").unwrap_err().code, "UNIT_UNKNOWN");
    }
}
