//! The `qualify` request (JSON, `docs/rules-of-origin.md`) and its conversion into a [`Good`].
//!
//! The request is walked field by field so that every refusal names its field as a path
//! (`materials[2].value`). Amounts are decimal strings, never JSON numbers. Unknown fields are
//! refused: a misspelt field silently ignored would change a legal answer.

use originlink_model::{CountryCode, Currency, Decimal, HsCode, parse_decimal};
use serde_json::{Map, Value};

use crate::error::InputError;
use crate::good::{Basis, Costs, Good, Material, Product, RuleChoice, RuleOrigin, Status, Valuation};
use crate::parse::parse_rule;
use crate::psr::PsrTable;
use crate::settings::{OriginSettings, Regime, RvcMethod};

/// Largest amount or weight accepted (keeps every sum and product exact in 96 bits).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;
/// Most decimal places of an amount or weight.
pub const MAX_SCALE: u32 = 6;
/// Most materials in one bill.
pub const MAX_MATERIALS: usize = 10_000;

/// Parses a JSON `qualify` request into a [`Good`].
pub fn parse_request(json: &[u8]) -> Result<Good, InputError> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| InputError::new("JSON_MALFORMED", "", format!("not a JSON document: {e}")))?;
    good_from_json(&value)
}

/// Converts a parsed JSON request into a [`Good`].
pub fn good_from_json(value: &Value) -> Result<Good, InputError> {
    let top = Obj::new(value, "")?;
    top.only(&[
        "agreement",
        "exporting_country",
        "product",
        "rule",
        "method",
        "valuation",
        "costs",
        "materials",
        "operations",
        "wholly_obtained",
        "de_minimis_percent",
    ])?;

    let agreement_text = top.str("agreement")?;
    let regime = Regime::parse(agreement_text).ok_or_else(|| {
        InputError::new(
            "AGREEMENT_UNKNOWN",
            "agreement",
            format!("`{agreement_text}` is not ATIGA, RCEP or GENERIC"),
        )
    })?;

    let country_text = top.str("exporting_country")?;
    let exporting_country = CountryCode::parse(country_text).map_err(|_| {
        InputError::new(
            "COUNTRY_INVALID",
            "exporting_country",
            format!("`{country_text}` is not an ISO 3166 code"),
        )
    })?;
    let not_member = match regime {
        Regime::Agreement(a) => !a.settings().is_member(exporting_country),
        Regime::Generic => false,
    };
    if not_member {
        return Err(InputError::new(
            "EXPORTER_NOT_MEMBER",
            "exporting_country",
            format!("{exporting_country} is not a party to {regime}"),
        ));
    }

    let p = top.obj("product")?;
    p.only(&["hs", "description", "weight_kg"])?;
    let product = Product {
        hs: hs(&p, "hs")?,
        description: p.opt_str("description")?.unwrap_or_default().to_owned(),
        weight_kg: p.opt_amount("weight_kg")?,
    };
    if product.weight_kg.is_some_and(|w| w.is_zero()) {
        return Err(InputError::new(
            "VALUE_ZERO",
            &p.path("weight_kg"),
            "the weight of the good must be above zero",
        ));
    }

    let rule = rule_choice(&top, regime, &product.hs)?;

    let method = match top.opt_str("method")? {
        None => None,
        Some(m) => Some(RvcMethod::parse(m).ok_or_else(|| {
            InputError::new("METHOD_UNKNOWN", "method", format!("`{m}` is not build-down or build-up"))
        })?),
    };

    let valuation = match top.opt_obj("valuation")? {
        None => None,
        Some(v) => {
            v.only(&["basis", "value", "currency"])?;
            let basis_text = v.str("basis")?;
            let basis = Basis::parse(basis_text).ok_or_else(|| {
                InputError::new(
                    "BASIS_UNKNOWN",
                    &v.path("basis"),
                    format!("`{basis_text}` is not FOB, EXW, NC or TV"),
                )
            })?;
            let value = v.amount("value")?;
            if value.is_zero() {
                return Err(InputError::new(
                    "VALUE_ZERO",
                    &v.path("value"),
                    format!("the {} value must be above zero: it divides the RVC", basis.code()),
                ));
            }
            let cur = v.str("currency")?;
            let currency = Currency::parse(cur).map_err(|_| {
                InputError::new(
                    "CURRENCY_INVALID",
                    &v.path("currency"),
                    format!("`{cur}` is not an ISO 4217 code"),
                )
            })?;
            Some(Valuation { basis, value, currency })
        }
    };

    let costs = match top.opt_obj("costs")? {
        None => Costs::default(),
        Some(c) => {
            c.only(&["direct_labour", "direct_overhead", "profit", "other"])?;
            Costs {
                direct_labour: c.opt_amount("direct_labour")?.unwrap_or_default(),
                direct_overhead: c.opt_amount("direct_overhead")?.unwrap_or_default(),
                profit: c.opt_amount("profit")?.unwrap_or_default(),
                other: c.opt_amount("other")?.unwrap_or_default(),
            }
        }
    };

    let list = top.array("materials")?;
    if list.len() > MAX_MATERIALS {
        return Err(InputError::new(
            "MATERIALS_TOO_MANY",
            "materials",
            format!("at most {MAX_MATERIALS} materials"),
        ));
    }
    let mut materials = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        materials.push(material(m, &format!("materials[{i}]"))?);
    }

    let operations = match top.0.get("operations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ops)) => ops
            .iter()
            .enumerate()
            .map(|(i, o)| match o {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                _ => {
                    Err(InputError::new("FIELD_TYPE", &format!("operations[{i}]"), "an operation is a name"))
                }
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(InputError::new("FIELD_TYPE", "operations", "a list of operation names")),
    };

    let wholly_obtained = match top.0.get("wholly_obtained") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(InputError::new("FIELD_TYPE", "wholly_obtained", "true or false")),
    };

    let de_minimis_percent = top.opt_percent("de_minimis_percent")?;
    if de_minimis_percent.is_some() && regime != Regime::Generic {
        return Err(InputError::new(
            "FIELD_NOT_ALLOWED",
            "de_minimis_percent",
            format!("only for GENERIC; {regime} fixes its own de minimis"),
        ));
    }

    Ok(Good {
        regime,
        exporting_country,
        product,
        rule,
        method,
        valuation,
        costs,
        materials,
        operations,
        wholly_obtained,
        de_minimis_percent,
    })
}

fn rule_choice(top: &Obj<'_>, regime: Regime, product: &HsCode) -> Result<RuleChoice, InputError> {
    if let Some(text) = top.opt_str("rule")? {
        let rule = parse_rule(text).map_err(|e| InputError::new(e.code, "rule", e.to_string()))?;
        return Ok(RuleChoice { rule, origin: RuleOrigin::Given });
    }
    let Regime::Agreement(agreement) = regime else {
        return Err(InputError::new("RULE_REQUIRED", "rule", "GENERIC needs the rule stated"));
    };
    if let Some(row) = PsrTable::builtin(agreement).lookup(product) {
        let origin = RuleOrigin::Psr { range: row.range.to_string(), source: row.source.clone() };
        return Ok(RuleChoice { rule: row.rule.clone(), origin });
    }
    let settings = OriginSettings::builtin(regime);
    match settings.general_rule {
        Some(text) => {
            let rule = parse_rule(text).map_err(|e| InputError::new("RULE_SYNTAX", "rule", e.to_string()))?;
            let source = settings.source("general_rule").unwrap_or(agreement.code()).to_owned();
            Ok(RuleChoice { rule, origin: RuleOrigin::General { source } })
        }
        None => Err(InputError::new(
            "RULE_NOT_FOUND",
            "rule",
            format!(
                "no {agreement} product-specific rule for {product} in the shipped table and {agreement} has \
                 no general rule: state the rule"
            ),
        )),
    }
}

fn material(v: &Value, path: &str) -> Result<Material, InputError> {
    let m = Obj::new(v, path)?;
    m.only(&["name", "hs", "value", "origin", "status", "rvc", "weight_kg"])?;
    let name = m.str("name")?.to_owned();
    let hs = hs(&m, "hs")?;
    let value = m.opt_amount("value")?;
    let origin = match m.opt_str("origin")? {
        None => None,
        Some(c) => Some(CountryCode::parse(c).map_err(|_| {
            InputError::new("COUNTRY_INVALID", &m.path("origin"), format!("`{c}` is not an ISO 3166 code"))
        })?),
    };
    let rvc = m.opt_percent("rvc")?;
    let status_text = m.str("status")?;
    let status = match status_text {
        "originating" => Status::Originating,
        "non-originating" => Status::NonOriginating,
        "undetermined" => Status::Undetermined,
        "partial" => Status::Partial {
            rvc: rvc.ok_or_else(|| {
                InputError::new(
                    "RVC_REQUIRED",
                    &m.path("rvc"),
                    "a partial material states its own RVC (partial cumulation)",
                )
            })?,
        },
        other => {
            return Err(InputError::new(
                "STATUS_UNKNOWN",
                &m.path("status"),
                format!("`{other}` is not originating, non-originating, undetermined or partial"),
            ));
        }
    };
    if rvc.is_some() && !matches!(status, Status::Partial { .. }) {
        return Err(InputError::new(
            "FIELD_NOT_ALLOWED",
            &m.path("rvc"),
            "only a partial material states an RVC",
        ));
    }
    let weight_kg = m.opt_amount("weight_kg")?;
    Ok(Material { name, hs, value, origin, status, weight_kg })
}

fn hs(o: &Obj<'_>, key: &str) -> Result<HsCode, InputError> {
    let text = o.str(key)?;
    HsCode::parse(text).map_err(|e| {
        let message = match e.code {
            "HS_UNKNOWN" => format!("`{text}` is not in the HS 2022 nomenclature"),
            _ => format!("`{text}` is not an HS code of 6 to 10 digits"),
        };
        InputError::new(e.code, &o.path(key), message)
    })
}

/// A JSON object being read, with its path for error messages.
struct Obj<'a>(&'a Map<String, Value>, String);

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &str) -> Result<Self, InputError> {
        match v {
            Value::Object(m) => Ok(Obj(m, path.to_owned())),
            _ => Err(InputError::new("FIELD_TYPE", path, "expected a JSON object")),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.1.is_empty() { key.to_owned() } else { format!("{}.{key}", self.1) }
    }

    fn only(&self, known: &[&str]) -> Result<(), InputError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => {
                Err(InputError::new("FIELD_UNKNOWN", &self.path(k), "not a field of a qualify request"))
            }
            None => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn missing(&self, key: &str) -> InputError {
        InputError::new("FIELD_MISSING", &self.path(key), "required")
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(InputError::new("FIELD_TYPE", &self.path(key), "expected a string")),
        }
    }

    fn str(&self, key: &str) -> Result<&'a str, InputError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, InputError> {
        self.get(key).map(|v| Obj::new(v, &self.path(key))).transpose()
    }

    fn obj(&self, key: &str) -> Result<Obj<'a>, InputError> {
        self.opt_obj(key)?.ok_or_else(|| self.missing(key))
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>, InputError> {
        match self.get(key) {
            None => Err(self.missing(key)),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(InputError::new("FIELD_TYPE", &self.path(key), "expected a list")),
        }
    }

    fn decimal(&self, key: &str) -> Result<Option<Decimal>, InputError> {
        // The field path is built only for an error: this runs for every amount of the bill.
        let err = |code, message: String| InputError::new(code, &self.path(key), message);
        let text = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => {
                return Err(err(
                    "FIELD_TYPE",
                    format!("write amounts as decimal strings (\"{n}\"), never as JSON numbers"),
                ));
            }
            Some(_) => return Err(err("FIELD_TYPE", "expected a decimal string".to_owned())),
        };
        let d = parse_decimal(text)
            .map_err(|_| err("DECIMAL_MALFORMED", format!("`{text}` is not a decimal such as 12.50")))?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(err("VALUE_NEGATIVE", format!("`{text}` is negative")));
        }
        if d.scale() > MAX_SCALE && d.normalize().scale() > MAX_SCALE {
            return Err(err("VALUE_PRECISION", format!("at most {MAX_SCALE} decimal places")));
        }
        Ok(Some(d.abs()))
    }

    fn opt_amount(&self, key: &str) -> Result<Option<Decimal>, InputError> {
        let d = self.decimal(key)?;
        if d.is_some_and(|d| d > Decimal::from(MAX_AMOUNT)) {
            return Err(InputError::new("VALUE_TOO_LARGE", &self.path(key), format!("at most {MAX_AMOUNT}")));
        }
        Ok(d)
    }

    fn amount(&self, key: &str) -> Result<Decimal, InputError> {
        self.opt_amount(key)?.ok_or_else(|| self.missing(key))
    }

    fn opt_percent(&self, key: &str) -> Result<Option<Decimal>, InputError> {
        let d = self.decimal(key)?;
        if d.is_some_and(|d| d > Decimal::ONE_HUNDRED) {
            return Err(InputError::new("PERCENT_RANGE", &self.path(key), "a percentage from 0 to 100"));
        }
        Ok(d)
    }
}
