//! The evaluator: a [`Good`] against its rule, under an agreement's [`OriginSettings`], gives an
//! [`Assessment`] that says whether the good originates and explains why, line by line.
//!
//! Arithmetic is exact (`Decimal`); thresholds are compared unrounded and without division
//! (`numerator × 100 ≥ threshold × value`). Rounding happens only for display: percentages
//! are cut (never rounded up), so a failing figure is never shown as passing.

use std::cell::OnceCell;

use originlink_model::{Decimal, HsCode};
use rust_decimal::RoundingStrategy;

use crate::code::certificate_code;
use crate::error::InputError;
use crate::good::{Basis, Costs, Good, RuleOrigin, Status};
use crate::input::{MAX_AMOUNT, MAX_MATERIALS};
use crate::psr::PsrTable;
use crate::rule::{Atom, ClassRef, Ctc, Rule};
use crate::settings::{OriginSettings, Regime, RvcMethod};

/// The answer for one good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The regime the good was assessed under.
    pub regime: Regime,
    /// The product's HS code.
    pub product_hs: HsCode,
    /// The product's description.
    pub product_description: String,
    /// Whether the good originates.
    pub originating: bool,
    /// The rule applied, printed.
    pub rule: String,
    /// Where the rule comes from.
    pub rule_origin: RuleOrigin,
    /// The alternative the good meets (the first one met), printed.
    pub criterion: Option<String>,
    /// For an originating good, the code for the certificate (Form D box 8 or RCEP box).
    pub certificate_code: Option<String>,
    /// Where the certificate code goes.
    pub certificate_box: &'static str,
    /// The regional value content, when it can be computed.
    pub rvc: Option<RvcFigures>,
    /// Why the RVC could not be computed, if it could not.
    pub rvc_problem: Option<String>,
    /// Every alternative of the rule, met or not, with its explanation.
    pub alternatives: Vec<AlternativeResult>,
    /// The de minimis allowance used by the criterion.
    pub de_minimis: DeMinimisUse,
    /// When every operation named is a minimal operation: those operations and the source.
    pub minimal_operations_only: Option<(Vec<String>, &'static str)>,
    /// ATIGA: a good that fails but has an RVC from 20 % to under 40 % may be certified for
    /// partial cumulation, e.g. `PC 30%`.
    pub partial_cumulation: Option<String>,
    /// Things the exporter should look at; they do not change the answer.
    pub warnings: Vec<String>,
    /// Each material: how it counts and how it fares in the tariff-change tests.
    pub materials: Vec<MaterialResult>,
}

/// One alternative of the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlternativeResult {
    /// The alternative, printed.
    pub rule: String,
    /// Whether it is met.
    pub met: bool,
    /// Why, with figures.
    pub detail: String,
}

/// De minimis as used by the criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeMinimisUse {
    /// Whether the criterion needed de minimis.
    pub used: bool,
    /// By value or by weight.
    pub basis: Option<DeMinimisBasis>,
    /// The share of the failing materials, in percent of the valuation (or weight).
    pub percent: Decimal,
}

/// What a de minimis share is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeMinimisBasis {
    /// Share of the valuation (FOB).
    Value,
    /// Share of the good's weight.
    Weight,
}

/// One material in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialResult {
    /// Its name.
    pub name: String,
    /// Its HS code.
    pub hs: HsCode,
    /// Its value, if stated.
    pub value: Option<Decimal>,
    /// How it counts: originating, non-originating, or the partial split.
    pub counts_as: String,
    /// Its result in each tariff-change test of the rule.
    pub ctc: String,
}

/// The regional value content with its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RvcFigures {
    /// Build-down or build-up.
    pub method: RvcMethod,
    /// FOB, EXW, NC or TV.
    pub basis: Basis,
    /// The valuation (denominator).
    pub value: Decimal,
    /// Value of non-originating materials (VNM), partial shares included.
    pub non_originating: Decimal,
    /// Value of originating materials (VOM), partial shares included.
    pub originating: Decimal,
    /// Costs (build-up).
    pub costs: Costs,
    /// The numerator: value − VNM (build-down) or VOM + costs (build-up).
    pub numerator: Decimal,
    /// numerator / value × 100, cut (toward zero) to 4 decimals.
    pub percent: Decimal,
}

impl RvcFigures {
    /// Whether the RVC is not less than `threshold` percent, compared exactly.
    pub fn meets(&self, threshold: Decimal) -> bool {
        self.numerator * Decimal::ONE_HUNDRED >= threshold * self.value
    }

    /// The formula in words, e.g. `(FOB - VNM) / FOB x 100`.
    pub fn formula(&self) -> String {
        let b = self.basis.code();
        match self.method {
            RvcMethod::BuildDown => format!("({b} - VNM) / {b} x 100"),
            RvcMethod::BuildUp => format!("(VOM + labour + overhead + profit + other) / {b} x 100"),
        }
    }

    /// The formula with the figures, e.g. `(15.00 - 7.00) / 15.00`.
    pub fn figures(&self) -> String {
        match self.method {
            RvcMethod::BuildDown => {
                format!("({} - {}) / {}", money(self.value), money(self.non_originating), money(self.value))
            }
            RvcMethod::BuildUp => format!(
                "({} + {} + {} + {} + {}) / {}",
                money(self.originating),
                money(self.costs.direct_labour),
                money(self.costs.direct_overhead),
                money(self.costs.profit),
                money(self.costs.other),
                money(self.value)
            ),
        }
    }
}

/// Assesses a good under the built-in settings of its regime (for `GENERIC`, with the
/// request's `de_minimis_percent`).
pub fn qualify(good: &Good) -> Result<Assessment, InputError> {
    let mut settings = OriginSettings::builtin(good.regime);
    if good.regime == Regime::Generic {
        settings.de_minimis_value_percent = good.de_minimis_percent;
    }
    qualify_with(good, &settings)
}

/// Assesses a good under given settings.
///
/// Errors only when the good is out of the bounds a request is held to (amounts and weights
/// up to [`MAX_AMOUNT`], at most [`MAX_MATERIALS`] materials, percentages up to 100), which
/// keep the arithmetic exact; a good from [`crate::parse_request`] always is within them.
pub fn qualify_with(good: &Good, settings: &OriginSettings) -> Result<Assessment, InputError> {
    check_bounds(good)?;
    let ctx = Ctx::new(good, settings);
    let rule = &good.rule.rule;

    let mut alternatives = Vec::new();
    let mut chosen: Option<(usize, Outcome)> = None;
    for (i, alt) in rule.alternatives().iter().enumerate() {
        let out = ctx.eval(alt, &mut Vec::new());
        alternatives.push(AlternativeResult {
            rule: alt.to_string(),
            met: out.met,
            detail: out.detail.clone(),
        });
        if out.met && chosen.is_none() {
            chosen = Some((i, out));
        }
    }

    let minimal_operations_only = (!good.operations.is_empty()
        && good.operations.iter().all(|o| settings.is_minimal(o)))
    .then(|| (good.operations.clone(), settings.source("minimal_operations").unwrap_or("")));

    let originating = chosen.is_some() && minimal_operations_only.is_none();
    let (criterion, certificate_code, de_minimis) = match (&chosen, originating) {
        (Some((i, out)), true) => (
            Some(alternatives[*i].rule.clone()),
            Some(certificate_code(good.regime, &out.witness)),
            match out.de_minimis {
                Some((basis, percent)) => DeMinimisUse { used: true, basis: Some(basis), percent },
                None => DeMinimisUse { used: false, basis: None, percent: Decimal::ZERO },
            },
        ),
        _ => (None, None, DeMinimisUse { used: false, basis: None, percent: Decimal::ZERO }),
    };

    let method = rule.first_rvc().and_then(|r| r.method).unwrap_or(ctx.method);
    let (rvc, rvc_problem) = match ctx.rvc(method) {
        Ok(f) => (Some(f.clone()), None),
        Err(e) => (None, Some(e.clone())),
    };

    let partial_cumulation = match (&rvc, good.regime, originating, &minimal_operations_only) {
        (Some(f), Regime::Agreement(originlink_model::Agreement::Atiga), false, None) => settings
            .partial_cumulation
            .filter(|pc| f.percent >= pc.floor && f.percent < pc.threshold)
            .map(|_| {
                format!("PC {}%", f.percent.round_dp_with_strategy(0, RoundingStrategy::ToZero).normalize())
            }),
        _ => None,
    };

    Ok(Assessment {
        regime: good.regime,
        product_hs: good.product.hs,
        product_description: good.product.description.clone(),
        originating,
        rule: rule.to_string(),
        rule_origin: good.rule.origin.clone(),
        criterion,
        certificate_code,
        certificate_box: settings.certificate_box,
        rvc,
        rvc_problem,
        alternatives,
        de_minimis,
        minimal_operations_only,
        partial_cumulation,
        warnings: ctx.warnings(),
        materials: ctx.material_results(),
    })
}

/// Evaluates a rule (not only its alternatives) against a good: whether it is met. This is
/// the inner loop of [`qualify`], without the report.
pub fn rule_is_met(rule: &Rule, good: &Good, settings: &OriginSettings) -> bool {
    Ctx::new(good, settings).eval(rule, &mut Vec::new()).met
}

fn check_bounds(good: &Good) -> Result<(), InputError> {
    let max = Decimal::from(MAX_AMOUNT);
    let too_big =
        |field: String| Err(InputError::new("VALUE_TOO_LARGE", &field, format!("at most {MAX_AMOUNT}")));
    if good.materials.len() > MAX_MATERIALS {
        return Err(InputError::new("MATERIALS_TOO_MANY", "materials", format!("at most {MAX_MATERIALS}")));
    }
    if good.valuation.is_some_and(|v| v.value.abs() > max || v.value <= Decimal::ZERO) {
        return too_big("valuation.value".to_owned());
    }
    let c = &good.costs;
    for (name, v) in [
        ("direct_labour", c.direct_labour),
        ("direct_overhead", c.direct_overhead),
        ("profit", c.profit),
        ("other", c.other),
    ] {
        if v.abs() > max {
            return too_big(format!("costs.{name}"));
        }
    }
    if good.product.weight_kg.is_some_and(|w| w.abs() > max) {
        return too_big("product.weight_kg".to_owned());
    }
    for (i, m) in good.materials.iter().enumerate() {
        if m.value.is_some_and(|v| v.abs() > max) {
            return too_big(format!("materials[{i}].value"));
        }
        if m.weight_kg.is_some_and(|v| v.abs() > max) {
            return too_big(format!("materials[{i}].weight_kg"));
        }
        if matches!(m.status, Status::Partial { rvc } if rvc.abs() > Decimal::ONE_HUNDRED) {
            return Err(InputError::new("PERCENT_RANGE", &format!("materials[{i}].rvc"), "0 to 100"));
        }
    }
    Ok(())
}

/// A code's chapter, heading and subheading as numbers, for fast comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    chapter: u8,
    heading: u16,
    subheading: u32,
}

impl Class {
    fn of(code: &HsCode) -> Class {
        let d = code.digits().as_bytes();
        let num = |n: usize| d[..n].iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
        // An HsCode has at least 6 ASCII digits, so these fit.
        Class { chapter: num(2) as u8, heading: num(4) as u16, subheading: num(6) }
    }
    fn same(&self, other: &Class, level: Ctc) -> bool {
        match level {
            Ctc::Chapter => self.chapter == other.chapter,
            Ctc::Heading => self.heading == other.heading,
            Ctc::Subheading => self.subheading == other.subheading,
        }
    }
    fn excluded_by<'r>(&self, excl: &'r [ClassRef]) -> Option<&'r ClassRef> {
        excl.iter().find(|r| r.contains(self.chapter, self.heading, self.subheading))
    }
}

fn level_word(level: Ctc) -> &'static str {
    match level {
        Ctc::Chapter => "chapter",
        Ctc::Heading => "heading",
        Ctc::Subheading => "subheading",
    }
}

fn level_code(code: &HsCode, level: Ctc) -> String {
    match level {
        Ctc::Chapter => code.chapter().to_owned(),
        Ctc::Heading => code.heading().to_owned(),
        Ctc::Subheading => {
            let s = code.subheading();
            format!("{}.{}", &s[..4], &s[4..])
        }
    }
}

/// The result of a rule or part of one.
#[derive(Debug, Clone)]
struct Outcome {
    met: bool,
    /// The atoms that made it met (for the certificate code).
    witness: Vec<Atom>,
    /// De minimis used to meet it: basis and share in percent.
    de_minimis: Option<(DeMinimisBasis, Decimal)>,
    detail: String,
}

impl Outcome {
    fn atom(met: bool, atom: Atom, detail: String) -> Outcome {
        Outcome { met, witness: if met { vec![atom] } else { Vec::new() }, de_minimis: None, detail }
    }
}

struct Ctx<'a> {
    good: &'a Good,
    settings: &'a OriginSettings,
    product: Class,
    classes: Vec<Class>,
    /// De minimis by weight applies to this product.
    weight_de_minimis: Option<Decimal>,
    /// The method when the rule names none.
    method: RvcMethod,
    rvc_cache: [OnceCell<Result<RvcFigures, String>>; 2],
}

impl<'a> Ctx<'a> {
    fn new(good: &'a Good, settings: &'a OriginSettings) -> Ctx<'a> {
        let product = Class::of(&good.product.hs);
        let weight_de_minimis = settings
            .de_minimis_weight
            .filter(|w| (w.chapters.0..=w.chapters.1).contains(&product.chapter))
            .map(|w| w.percent);
        Ctx {
            good,
            settings,
            product,
            classes: good.materials.iter().map(|m| Class::of(&m.hs)).collect(),
            weight_de_minimis,
            method: good.method.unwrap_or_else(|| settings.method_for(good.exporting_country)),
            rvc_cache: [OnceCell::new(), OnceCell::new()],
        }
    }

    fn eval(&self, rule: &Rule, excl: &mut Vec<ClassRef>) -> Outcome {
        match rule {
            Rule::Any(alts, _) => {
                let outs: Vec<Outcome> = alts.iter().map(|r| self.eval(r, excl)).collect();
                let detail = join_details(alts, &outs);
                match outs.into_iter().find(|o| o.met) {
                    Some(o) => Outcome { detail, ..o },
                    None => Outcome { met: false, witness: Vec::new(), de_minimis: None, detail },
                }
            }
            Rule::All(parts, _) => {
                let outs: Vec<Outcome> = parts.iter().map(|r| self.eval(r, excl)).collect();
                let detail = join_details(parts, &outs);
                let met = outs.iter().all(|o| o.met);
                let mut witness = Vec::new();
                let mut de_minimis: Option<(DeMinimisBasis, Decimal)> = None;
                if met {
                    for o in outs {
                        witness.extend(o.witness);
                        // Several tests may lean on de minimis; report the largest share.
                        de_minimis = match (de_minimis, o.de_minimis) {
                            (Some(a), Some(b)) if b.1 > a.1 => Some(b),
                            (None, b) => b,
                            (a, _) => a,
                        };
                    }
                }
                Outcome { met, witness, de_minimis, detail }
            }
            Rule::Except(inner, refs) => {
                let n = excl.len();
                excl.extend_from_slice(refs);
                let out = self.eval(inner, excl);
                excl.truncate(n);
                out
            }
            Rule::Atom(a) => self.eval_atom(*a, excl),
        }
    }

    fn eval_atom(&self, atom: Atom, excl: &[ClassRef]) -> Outcome {
        let g = self.good;
        match atom {
            Atom::WhollyObtained => {
                if g.wholly_obtained {
                    Outcome::atom(
                        true,
                        atom,
                        format!("stated wholly obtained or produced in {}", g.exporting_country),
                    )
                } else {
                    let n = g.materials.iter().filter(|m| !m.status.is_originating()).count();
                    let mut d = "not stated wholly obtained (\"wholly_obtained\": true)".to_owned();
                    if n > 0 {
                        d.push_str(&format!("; {n} non-originating material(s) used"));
                    }
                    Outcome::atom(false, atom, d)
                }
            }
            Atom::ProducedEntirely => {
                let non: Vec<&str> = g
                    .materials
                    .iter()
                    .filter(|m| !m.status.is_originating())
                    .map(|m| m.name.as_str())
                    .collect();
                if !non.is_empty() {
                    Outcome::atom(
                        false,
                        atom,
                        format!("not produced entirely from originating materials: {}", non.join(", ")),
                    )
                } else if g.materials.is_empty() && !g.wholly_obtained {
                    Outcome::atom(false, atom, "no materials are listed".to_owned())
                } else {
                    Outcome::atom(true, atom, "every material is originating".to_owned())
                }
            }
            Atom::ChemicalReaction => self.declared(atom, "chemical-reaction"),
            Atom::SpecificProcess => self.declared(atom, "specific-process"),
            Atom::Ctc(level) => self.eval_ctc(atom, level, excl),
            Atom::Rvc(r) => {
                let method = r.method.unwrap_or(self.method);
                self.eval_threshold(atom, method, Decimal::from(r.percent), &format!("{}%", r.percent))
            }
            Atom::PartialCumulation(p) => self.eval_threshold(
                atom,
                self.method,
                Decimal::from(p),
                &format!("{p}% (partial cumulation)"),
            ),
            Atom::MaxNom(p) => self.eval_maxnom(atom, p),
        }
    }

    fn declared(&self, atom: Atom, operation: &str) -> Outcome {
        if self.good.operations.iter().any(|o| o == operation) {
            Outcome::atom(true, atom, format!("operation `{operation}` declared"))
        } else {
            Outcome::atom(false, atom, format!("no `{operation}` among the operations"))
        }
    }

    fn eval_threshold(&self, atom: Atom, method: RvcMethod, threshold: Decimal, shown: &str) -> Outcome {
        match self.rvc(method) {
            Err(e) => Outcome::atom(false, atom, format!("RVC cannot be computed: {e}")),
            Ok(f) => {
                let met = f.meets(threshold);
                let cmp = if met { ">=" } else { "<" };
                Outcome::atom(met, atom, format!("RVC {} = {}% {cmp} {shown}", f.figures(), pct2(f.percent)))
            }
        }
    }

    fn eval_maxnom(&self, atom: Atom, max: u8) -> Outcome {
        match self.good.valuation {
            Some(v) if v.basis == Basis::Exw => {}
            Some(v) => {
                return Outcome::atom(
                    false,
                    atom,
                    format!(
                        "MaxNOM is stated against the ex-works price (EXW); the valuation is {}",
                        v.basis.code()
                    ),
                );
            }
            None => {
                return Outcome::atom(false, atom, "MaxNOM needs the ex-works price (valuation)".to_owned());
            }
        }
        match self.rvc(RvcMethod::BuildDown) {
            Err(e) => Outcome::atom(false, atom, format!("MaxNOM cannot be computed: {e}")),
            Ok(f) => {
                let met = f.non_originating * Decimal::ONE_HUNDRED <= Decimal::from(max) * f.value;
                let share = cut(f.non_originating, f.value, 4);
                let cmp = if met { "<=" } else { ">" };
                Outcome::atom(
                    met,
                    atom,
                    format!(
                        "non-originating {} / EXW {} = {}% {cmp} {max}%",
                        money(f.non_originating),
                        money(f.value),
                        pct2(share)
                    ),
                )
            }
        }
    }

    fn eval_ctc(&self, atom: Atom, level: Ctc, excl: &[ClassRef]) -> Outcome {
        let g = self.good;
        let mut failing: Vec<(usize, Option<&ClassRef>)> = Vec::new();
        let mut non_originating = 0usize;
        for (i, m) in g.materials.iter().enumerate() {
            if m.status.is_originating() {
                continue;
            }
            non_originating += 1;
            let c = &self.classes[i];
            if let Some(r) = c.excluded_by(excl) {
                failing.push((i, Some(r)));
            } else if c.same(&self.product, level) {
                failing.push((i, None));
            }
        }
        let word = level_word(level);
        if failing.is_empty() {
            let mut d = if non_originating == 0 {
                "no non-originating materials".to_owned()
            } else {
                format!("every non-originating material changes {word}")
            };
            if !excl.is_empty() && non_originating > 0 {
                d.push_str(&format!(" and none is from {}", list(excl)));
            }
            return Outcome::atom(true, atom, d);
        }
        let product_code = level_code(&g.product.hs, level);
        let mut reasons: Vec<String> = failing
            .iter()
            .map(|&(i, why)| {
                let m = &g.materials[i];
                match why {
                    Some(r) => format!(
                        "{} {} is non-originating and from {r}, which the rule excludes",
                        m.name, m.hs
                    ),
                    None => format!("{} {} is in the product's {word} {product_code}", m.name, m.hs),
                }
            })
            .collect();
        match self.de_minimis(&failing) {
            Ok((basis, share, note)) => {
                reasons.push(note);
                Outcome {
                    met: true,
                    witness: vec![atom],
                    de_minimis: Some((basis, share)),
                    detail: reasons.join("; "),
                }
            }
            Err(note) => {
                reasons.push(note);
                Outcome::atom(false, atom, reasons.join("; "))
            }
        }
    }

    /// Whether the materials failing a tariff change are within de minimis: by value, else by
    /// weight where the agreement allows it. Returns the basis, share and an explanation.
    fn de_minimis(
        &self,
        failing: &[(usize, Option<&ClassRef>)],
    ) -> Result<(DeMinimisBasis, Decimal, String), String> {
        let g = self.good;
        let mut notes = Vec::new();
        match (self.settings.de_minimis_value_percent, g.valuation) {
            (None, _) => notes.push(format!("no de minimis under {}", g.regime)),
            (Some(_), None) => notes.push("de minimis by value needs the valuation".to_owned()),
            (Some(max), Some(v)) => {
                let missing: Vec<&str> = failing
                    .iter()
                    .filter(|(i, _)| g.materials[*i].value.is_none())
                    .map(|(i, _)| g.materials[*i].name.as_str())
                    .collect();
                if missing.is_empty() {
                    let sum: Decimal = failing.iter().filter_map(|(i, _)| g.materials[*i].value).sum();
                    let share = cut(sum, v.value, 4);
                    let b = v.basis.code();
                    if sum * Decimal::ONE_HUNDRED <= max * v.value {
                        return Ok((
                            DeMinimisBasis::Value,
                            share,
                            format!(
                                "met by de minimis: {} is {}% of {b} <= {}%",
                                money(sum),
                                pct2(share),
                                max.normalize()
                            ),
                        ));
                    }
                    notes.push(format!(
                        "de minimis: {} is {}% of {b} > {}%",
                        money(sum),
                        pct2(share),
                        max.normalize()
                    ));
                } else {
                    notes.push(format!(
                        "de minimis by value unavailable: value of {} not given",
                        missing.join(", ")
                    ));
                }
            }
        }
        if let Some(max) = self.weight_de_minimis {
            match g.product.weight_kg {
                None => notes.push("de minimis by weight needs the weight of the good".to_owned()),
                Some(total) => {
                    let missing: Vec<&str> = failing
                        .iter()
                        .filter(|(i, _)| g.materials[*i].weight_kg.is_none())
                        .map(|(i, _)| g.materials[*i].name.as_str())
                        .collect();
                    if missing.is_empty() {
                        let sum: Decimal =
                            failing.iter().filter_map(|(i, _)| g.materials[*i].weight_kg).sum();
                        let share = cut(sum, total, 4);
                        if sum * Decimal::ONE_HUNDRED <= max * total {
                            return Ok((
                                DeMinimisBasis::Weight,
                                share,
                                format!(
                                    "met by de minimis by weight: {} kg is {}% of {} kg <= {}%",
                                    sum,
                                    pct2(share),
                                    total,
                                    max.normalize()
                                ),
                            ));
                        }
                        notes.push(format!(
                            "de minimis by weight: {} kg is {}% of {} kg > {}%",
                            sum,
                            pct2(share),
                            total,
                            max.normalize()
                        ));
                    } else {
                        notes.push(format!(
                            "de minimis by weight unavailable: weight of {} not given",
                            missing.join(", ")
                        ));
                    }
                }
            }
        }
        Err(notes.join("; "))
    }

    /// The RVC by a method, computed once.
    fn rvc(&self, method: RvcMethod) -> &Result<RvcFigures, String> {
        let slot = match method {
            RvcMethod::BuildDown => &self.rvc_cache[0],
            RvcMethod::BuildUp => &self.rvc_cache[1],
        };
        slot.get_or_init(|| self.compute_rvc(method))
    }

    fn compute_rvc(&self, method: RvcMethod) -> Result<RvcFigures, String> {
        let g = self.good;
        let v = g.valuation.ok_or("no valuation given")?;
        let mut non_originating = Decimal::ZERO;
        let mut originating = Decimal::ZERO;
        let mut missing = Vec::new();
        // Every value is needed, whatever the method: an unknown value cannot be placed on
        // either side of the formula without assuming something.
        for m in &g.materials {
            match m.value {
                Some(value) => {
                    let orig = self.originating_share(&m.status).map_or(Decimal::ZERO, |s| value * s);
                    originating += orig;
                    non_originating += value - orig;
                }
                None => missing.push(m.name.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(format!("value of {} not given", missing.join(", ")));
        }
        let numerator = match method {
            RvcMethod::BuildDown => v.value - non_originating,
            RvcMethod::BuildUp => originating + g.costs.total(),
        };
        Ok(RvcFigures {
            method,
            basis: v.basis,
            value: v.value,
            non_originating,
            originating,
            costs: g.costs,
            numerator,
            percent: cut(numerator, v.value, 4),
        })
    }

    /// The originating share of a material's value: 1, 0, or its RVC under partial
    /// cumulation; `None` for none at all.
    fn originating_share(&self, status: &Status) -> Option<Decimal> {
        match status {
            Status::Originating => Some(Decimal::ONE),
            Status::NonOriginating | Status::Undetermined => None,
            Status::Partial { rvc } => match self.settings.partial_cumulation {
                Some(pc) if *rvc >= pc.floor && *rvc < pc.threshold => Some(*rvc / Decimal::ONE_HUNDRED),
                _ => None,
            },
        }
    }

    fn material_results(&self) -> Vec<MaterialResult> {
        let tests = self.good.rule.rule.ctc_tests();
        self.good
            .materials
            .iter()
            .zip(&self.classes)
            .map(|(m, class)| {
                let counts_as = self.counts_as(m.value, &m.status);
                let ctc = if tests.is_empty() {
                    "no test in the rule".to_owned()
                } else if m.status.is_originating() {
                    "not tested (originating)".to_owned()
                } else {
                    let mut parts: Vec<String> = Vec::new();
                    for (level, excl) in &tests {
                        let p = match class.excluded_by(excl) {
                            Some(r) => format!("fails {} (excluded: {r})", level.code()),
                            None if class.same(&self.product, *level) => format!("fails {}", level.code()),
                            None => format!("meets {}", level.code()),
                        };
                        if !parts.contains(&p) {
                            parts.push(p);
                        }
                    }
                    parts.join(", ")
                };
                MaterialResult { name: m.name.clone(), hs: m.hs, value: m.value, counts_as, ctc }
            })
            .collect()
    }

    fn counts_as(&self, value: Option<Decimal>, status: &Status) -> String {
        match status {
            Status::Originating => "originating".to_owned(),
            Status::NonOriginating => "non-originating".to_owned(),
            Status::Undetermined => "undetermined: counted as non-originating".to_owned(),
            Status::Partial { rvc } => {
                let rvc_shown = rvc.normalize();
                let Some(pc) = self.settings.partial_cumulation else {
                    return format!(
                        "partial: no partial cumulation under {}, counted as non-originating",
                        self.good.regime
                    );
                };
                if *rvc < pc.floor {
                    return format!(
                        "partial: RVC {rvc_shown}% is below {}%, counted as non-originating",
                        pc.floor.normalize()
                    );
                }
                if *rvc >= pc.threshold {
                    return format!(
                        "partial: RVC {rvc_shown}% is not below {}%, counted as non-originating",
                        pc.threshold.normalize()
                    );
                }
                match value {
                    Some(v) => {
                        let orig = v * *rvc / Decimal::ONE_HUNDRED;
                        format!("partial: {} originating, {} non-originating", money(orig), money(v - orig))
                    }
                    None => format!("partial (RVC {rvc_shown}%): value not given"),
                }
            }
        }
    }

    fn warnings(&self) -> Vec<String> {
        let g = self.good;
        let mut w = Vec::new();
        if let Some(v) = g.valuation {
            let total: Decimal = g.materials.iter().filter_map(|m| m.value).sum();
            if total > v.value {
                w.push(format!(
                    "the materials total {} is more than the {} value {}: check the bill",
                    money(total),
                    v.basis.code(),
                    money(v.value)
                ));
            }
            let uses_value =
                g.rule.rule.any_atom(&|a| matches!(a, Atom::Rvc(_) | Atom::PartialCumulation(_)));
            if uses_value && matches!(g.regime, Regime::Agreement(_)) && v.basis != Basis::Fob {
                w.push(format!(
                    "{} computes the RVC on FOB; the valuation given is {}",
                    g.regime,
                    v.basis.code()
                ));
            }
        }
        if let Some(chosen) = g.method {
            let mut imposed = Vec::new();
            collect_methods(&g.rule.rule, &mut imposed);
            if imposed.iter().any(|m| *m != chosen) {
                w.push(format!(
                    "the rule imposes its own RVC method; the requested {chosen} is not used for it"
                ));
            }
        }
        if let Regime::Agreement(a) = g.regime {
            let settings = a.settings();
            for m in &g.materials {
                let outsider = m.origin.filter(|c| !settings.is_member(*c));
                if let (Status::Originating | Status::Partial { .. }, Some(c)) = (m.status, outsider) {
                    w.push(format!(
                        "{}: marked as originating content but comes from {c}, which is not a party to {a}; \
                         accumulation covers materials originating in a party only",
                        m.name
                    ));
                }
            }
        }
        for m in &g.materials {
            if let Status::Partial { rvc } = m.status {
                match self.settings.partial_cumulation {
                    None => w.push(format!(
                        "{}: partial cumulation is an ATIGA rule; under {} it counts as non-originating",
                        m.name, g.regime
                    )),
                    Some(pc) if rvc >= pc.threshold => w.push(format!(
                        "{}: an RVC of {}% is originating in its own right; state it as originating with its \
                         certificate",
                        m.name,
                        rvc.normalize()
                    )),
                    Some(_) => {}
                }
            }
        }
        if let Regime::Agreement(a) = g.regime {
            let table = PsrTable::builtin(a);
            match (&g.rule.origin, table.lookup(&g.product.hs)) {
                (RuleOrigin::Given, Some(row)) if row.rule.to_string() != g.rule.rule.to_string() => {
                    w.push(format!(
                        "the {a} table gives `{}` for {} ({}); the rule stated was used",
                        row.rule, row.range, row.source
                    ))
                }
                (RuleOrigin::Psr { .. }, Some(_)) if !table.hs_edition.contains("2022") => w.push(format!(
                    "the {a} table is written in {}: check that {} has the same scope there",
                    table.hs_edition, g.product.hs
                )),
                _ => {}
            }
            if !matches!(g.rule.origin, RuleOrigin::Given) {
                let below: Vec<String> =
                    table.rows_below(&g.product.hs).map(|r| r.range.to_string()).collect();
                if !below.is_empty() {
                    w.push(format!(
                        "the {a} table has lines below {} ({}): state the full national code",
                        g.product.hs,
                        below.join(", ")
                    ));
                }
            }
        }
        w
    }
}

fn collect_methods(rule: &Rule, out: &mut Vec<RvcMethod>) {
    match rule {
        Rule::Any(v, _) | Rule::All(v, _) => v.iter().for_each(|r| collect_methods(r, out)),
        Rule::Except(r, _) => collect_methods(r, out),
        Rule::Atom(Atom::Rvc(r)) => out.extend(r.method),
        Rule::Atom(_) => {}
    }
}

fn join_details(rules: &[Rule], outs: &[Outcome]) -> String {
    rules.iter().zip(outs).map(|(r, o)| format!("{r}: {}", o.detail)).collect::<Vec<_>>().join("; ")
}

fn list(refs: &[ClassRef]) -> String {
    refs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `num / den × 100` cut toward zero to `dp` decimals, exactly: the quotient is corrected by
/// multiplication, so rounding inside the division cannot push it across a boundary.
pub(crate) fn cut(num: Decimal, den: Decimal, dp: u32) -> Decimal {
    if den.is_zero() {
        return Decimal::ZERO;
    }
    let negative = num.is_sign_negative() != den.is_sign_negative() && !num.is_zero();
    let a = num.abs() * Decimal::ONE_HUNDRED;
    let b = den.abs();
    let step = Decimal::new(1, dp);
    let mut q = (a / b).round_dp_with_strategy(dp, RoundingStrategy::ToZero);
    // At most one step off either way.
    if q.checked_mul(b).is_some_and(|p| p > a) {
        q -= step;
    } else if (q + step).checked_mul(b).is_some_and(|p| p <= a) {
        q += step;
    }
    q.rescale(dp);
    if negative { -q } else { q }
}

/// A percentage for display, cut to 2 decimals: `53.33`.
pub(crate) fn pct2(p: Decimal) -> String {
    let mut q = p.round_dp_with_strategy(2, RoundingStrategy::ToZero);
    q.rescale(2);
    q.to_string()
}

/// An amount for display: exact, with at least 2 decimals (`7.00`, `1.125`).
pub(crate) fn money(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}
