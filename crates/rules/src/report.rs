//! How an [`Assessment`] is shown: the `qualify` JSON output (`docs/rules-of-origin.md`) and
//! a plain-text explanation an exporter can read.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::eval::{Assessment, DeMinimisBasis, money, pct2};
use crate::good::RuleOrigin;

impl Assessment {
    /// `rvc_percent` as output: the exact RVC cut to 4 decimals, e.g. `53.3333`.
    pub fn rvc_percent(&self) -> Option<String> {
        self.rvc.as_ref().map(|f| f.percent.to_string())
    }

    /// Where the rule comes from, in words.
    pub fn rule_source(&self) -> String {
        match &self.rule_origin {
            RuleOrigin::Given => "stated in the request".to_owned(),
            RuleOrigin::Psr { range, source } => format!("{source} (row {range})"),
            RuleOrigin::General { source } => format!("general rule: {source}"),
        }
    }

    /// The `qualify --json` output as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.output()).unwrap_or(Value::Null)
    }

    /// The `qualify --json` output as pretty-printed text (fields in a fixed order).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(&self.output()).unwrap_or_default()
    }

    fn output(&self) -> Output<'_> {
        Output {
            originating: self.originating,
            agreement: self.regime.code(),
            product: ProductOut { hs: self.product_hs.dotted(), description: &self.product_description },
            rule: &self.rule,
            rule_source: self.rule_source(),
            criterion: self.criterion.as_deref(),
            certificate_code: self.certificate_code.as_deref(),
            rvc_percent: self.rvc_percent(),
            rvc: self.rvc.as_ref().map(|f| RvcOut {
                method: f.method.code(),
                basis: f.basis.code(),
                value: money(f.value),
                non_originating: money(f.non_originating),
                originating: money(f.originating),
                formula: f.formula(),
                figures: format!("{} x 100 = {}%", f.figures(), f.percent),
            }),
            rvc_problem: self.rvc_problem.as_deref(),
            alternatives: self
                .alternatives
                .iter()
                .map(|a| AlternativeOut { rule: &a.rule, met: a.met, detail: &a.detail })
                .collect(),
            de_minimis: DeMinimisOut {
                used: self.de_minimis.used,
                percent: self.de_minimis.percent.normalize().to_string(),
                basis: self.de_minimis.basis.map(|b| match b {
                    DeMinimisBasis::Value => "value",
                    DeMinimisBasis::Weight => "weight",
                }),
            },
            minimal_operations_only: self.minimal_operations_only.is_some(),
            partial_cumulation: self.partial_cumulation.as_deref(),
            warnings: &self.warnings,
            materials: self
                .materials
                .iter()
                .map(|m| MaterialOut {
                    name: &m.name,
                    hs: m.hs.dotted(),
                    value: m.value.map(money),
                    counts_as: &m.counts_as,
                    ctc: &m.ctc,
                })
                .collect(),
        }
    }

    /// The plain explanation printed by `originlink qualify`.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let product = if self.product_description.is_empty() {
            self.product_hs.dotted()
        } else {
            format!("{} (HS {})", self.product_description, self.product_hs)
        };
        let _ = writeln!(s, "{product} under {}", self.regime);
        let _ = writeln!(s, "Rule: {}  [{}]", self.rule, self.rule_source());
        let _ = writeln!(s);
        match (&self.criterion, &self.certificate_code) {
            (Some(c), Some(code)) if self.originating => {
                let _ = writeln!(
                    s,
                    "ORIGINATING: meets {c}. Certificate code ({}): {code}",
                    self.certificate_box
                );
            }
            _ => {
                let _ = writeln!(s, "NOT ORIGINATING");
            }
        }
        if let Some((ops, source)) = &self.minimal_operations_only {
            let _ = writeln!(
                s,
                "Only minimal operations were carried out ({}): they never confer origin ({source}).",
                ops.join(", ")
            );
        }
        if let Some(pc) = &self.partial_cumulation {
            let _ = writeln!(
                s,
                "The good may still be certified for partial cumulation (Form D marked \"Partial Cumulation\", {pc})."
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{}:",
            if self.alternatives.len() > 1 { "Alternatives (the exporter may use any one)" } else { "Test" }
        );
        for a in &self.alternatives {
            let _ = writeln!(s, "  [{}] {}: {}", if a.met { "met" } else { "not met" }, a.rule, a.detail);
        }
        let _ = writeln!(s);
        match (&self.rvc, &self.rvc_problem) {
            (Some(f), _) => {
                let _ = writeln!(s, "Regional value content ({}, on {}):", f.method.code(), f.basis.code());
                let _ = writeln!(s, "  {}", f.formula());
                let _ = writeln!(s, "  = {} x 100 = {}%", f.figures(), f.percent);
                let _ = writeln!(
                    s,
                    "  non-originating materials (VNM) {}, originating materials (VOM) {}",
                    money(f.non_originating),
                    money(f.originating)
                );
            }
            (None, Some(p)) => {
                let _ = writeln!(s, "Regional value content: not computed ({p})");
            }
            (None, None) => {}
        }
        let d = &self.de_minimis;
        if d.used {
            let basis = match d.basis {
                Some(DeMinimisBasis::Weight) => "of the weight of the good",
                _ => "of the valuation",
            };
            let _ = writeln!(s, "De minimis: used, {}% {basis}", pct2(d.percent));
        } else {
            let _ = writeln!(s, "De minimis: not used");
        }
        if !self.materials.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Materials:");
            for m in &self.materials {
                let value = m.value.map(money).unwrap_or_else(|| "-".to_owned());
                let _ = writeln!(
                    s,
                    "  {} ({}, {value}): {}; tariff change: {}",
                    m.name, m.hs, m.counts_as, m.ctc
                );
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Warnings:");
            for w in &self.warnings {
                let _ = writeln!(s, "  - {w}");
            }
        }
        s
    }
}

/// The wire shape of the `qualify` answer (`docs/rules-of-origin.md`), in output order.
#[derive(Serialize)]
struct Output<'a> {
    originating: bool,
    agreement: &'a str,
    product: ProductOut<'a>,
    rule: &'a str,
    rule_source: String,
    criterion: Option<&'a str>,
    certificate_code: Option<&'a str>,
    rvc_percent: Option<String>,
    rvc: Option<RvcOut>,
    rvc_problem: Option<&'a str>,
    alternatives: Vec<AlternativeOut<'a>>,
    de_minimis: DeMinimisOut,
    minimal_operations_only: bool,
    partial_cumulation: Option<&'a str>,
    warnings: &'a [String],
    materials: Vec<MaterialOut<'a>>,
}

#[derive(Serialize)]
struct ProductOut<'a> {
    hs: String,
    description: &'a str,
}

#[derive(Serialize)]
struct RvcOut {
    method: &'static str,
    basis: &'static str,
    value: String,
    non_originating: String,
    originating: String,
    formula: String,
    figures: String,
}

#[derive(Serialize)]
struct AlternativeOut<'a> {
    rule: &'a str,
    met: bool,
    detail: &'a str,
}

#[derive(Serialize)]
struct DeMinimisOut {
    used: bool,
    percent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<&'static str>,
}

#[derive(Serialize)]
struct MaterialOut<'a> {
    name: &'a str,
    hs: String,
    value: Option<String>,
    counts_as: &'a str,
    ctc: &'a str,
}
