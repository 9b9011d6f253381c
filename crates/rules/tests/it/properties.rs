//! Properties the engine must keep whatever the bill of materials.

use originlink_model::{Agreement, CountryCode, Currency, Decimal, HsCode};
use originlink_rules::{
    AndWord, Atom, Basis, ClassRef, Costs, Ctc, Good, Material, OrWord, Product, Regime, Rule, RuleChoice,
    RuleOrigin, Rvc, RvcMethod, RvcNotation, Status, Valuation, parse_rule, qualify,
};
use proptest::prelude::*;

/// Codes from a few chapters, so that tariff changes both pass and fail.
const CODES: &[&str] = &[
    "8415.10", "8415.90", "8509.40", "8509.90", "8501.40", "9403.60", "9403.91", "8302.42", "2106.90",
    "1701.99", "6109.10", "6006.22", "6117.90", "2403.11", "2404.19",
];

fn hs(i: usize) -> HsCode {
    HsCode::parse(CODES[i % CODES.len()]).unwrap()
}

fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..10_000_000, 0u32..=3).prop_map(|(n, s)| Decimal::new(n, s))
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Originating),
        Just(Status::NonOriginating),
        Just(Status::Undetermined),
        (0i64..=10_000).prop_map(|r| Status::Partial { rvc: Decimal::new(r, 2) }),
    ]
}

fn material() -> impl Strategy<Value = Material> {
    (any::<usize>(), prop::option::weighted(0.9, amount()), status(), prop::option::of(amount())).prop_map(
        |(i, value, status, weight_kg)| Material {
            name: format!("m{i}"),
            hs: hs(i),
            value,
            origin: None,
            status,
            weight_kg,
        },
    )
}

fn class_ref() -> impl Strategy<Value = ClassRef> {
    prop_oneof![
        (0u8..=96, 0u8..=3).prop_map(|(a, d)| ClassRef::Chapters(a, a + d)),
        (0u16..=9700, 0u16..=20).prop_map(|(a, d)| ClassRef::Headings(a, a + d)),
        (0u32..=970_000, 0u32..=99).prop_map(|(a, d)| ClassRef::Subheadings(a, a + d)),
    ]
}

fn atom() -> impl Strategy<Value = Atom> {
    let method = prop::option::of(prop_oneof![Just(RvcMethod::BuildDown), Just(RvcMethod::BuildUp)]);
    let notation =
        prop_oneof![Just(RvcNotation::Compact), Just(RvcNotation::Spaced), Just(RvcNotation::Percent)];
    prop_oneof![
        Just(Atom::WhollyObtained),
        Just(Atom::ProducedEntirely),
        Just(Atom::ChemicalReaction),
        Just(Atom::SpecificProcess),
        Just(Atom::Ctc(Ctc::Chapter)),
        Just(Atom::Ctc(Ctc::Heading)),
        Just(Atom::Ctc(Ctc::Subheading)),
        (1u8..=100, method, notation).prop_map(|(percent, method, notation)| {
            // `35%` takes no method; the grammar gives methods to `RVC` only.
            let method = if notation == RvcNotation::Percent { None } else { method };
            Atom::Rvc(Rvc { percent, method, notation })
        }),
        (1u8..=100).prop_map(Atom::MaxNom),
        (1u8..=100).prop_map(Atom::PartialCumulation),
    ]
}

/// Any rule the grammar can write: nested alternatives and conjunctions, exclusions on
/// parts that hold a tariff change.
fn rule() -> impl Strategy<Value = Rule> {
    atom().prop_map(Rule::Atom).prop_recursive(4, 32, 4, |inner| {
        let or_word = prop_oneof![Just(OrWord::Or), Just(OrWord::Semicolon)];
        let and_word = prop_oneof![Just(AndWord::Plus), Just(AndWord::And)];
        prop_oneof![
            (prop::collection::vec(inner.clone(), 2..4), or_word).prop_map(|(v, w)| Rule::Any(v, w)),
            (prop::collection::vec(inner.clone(), 2..4), and_word).prop_map(|(v, w)| Rule::All(v, w)),
            (inner, prop::collection::vec(class_ref(), 1..3)).prop_map(|(r, refs)| {
                let r = if r.has_ctc() {
                    r
                } else {
                    Rule::All(vec![r, Rule::Atom(Atom::Ctc(Ctc::Heading))], AndWord::Plus)
                };
                Rule::Except(Box::new(r), refs)
            }),
        ]
    })
}

fn regime() -> impl Strategy<Value = Regime> {
    prop_oneof![
        Just(Regime::Agreement(Agreement::Atiga)),
        Just(Regime::Agreement(Agreement::Rcep)),
        Just(Regime::Generic),
    ]
}

fn good_with(rule: impl Strategy<Value = Rule>) -> impl Strategy<Value = Good> {
    let ops = prop::collection::vec(
        prop::sample::select(vec!["packaging", "sorting", "assembly", "chemical-reaction"]),
        0..3,
    );
    (
        regime(),
        any::<usize>(),
        rule,
        prop::option::of(prop_oneof![Just(RvcMethod::BuildDown), Just(RvcMethod::BuildUp)]),
        (1i64..100_000_000, 0u32..=2),
        (amount(), amount(), amount(), amount()),
        prop::collection::vec(material(), 0..8),
        ops,
        any::<bool>(),
        prop::option::of(1i64..=2000),
    )
        .prop_map(|(regime, p, rule, method, (v, s), (l, o, pr, ot), materials, ops, wo, weight)| Good {
            regime,
            exporting_country: CountryCode::parse("TH").unwrap(),
            product: Product {
                hs: hs(p),
                description: String::new(),
                weight_kg: weight.map(|w| Decimal::new(w, 2)),
            },
            rule: RuleChoice { rule, origin: RuleOrigin::Given },
            method,
            valuation: Some(Valuation { basis: Basis::Fob, value: Decimal::new(v, s), currency: usd() }),
            costs: Costs { direct_labour: l, direct_overhead: o, profit: pr, other: ot },
            materials,
            operations: ops.into_iter().map(str::to_owned).collect(),
            wholly_obtained: wo,
            de_minimis_percent: if regime == Regime::Generic { Some(Decimal::TEN) } else { None },
        })
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn rvc_rule() -> impl Strategy<Value = Rule> {
    (1u8..=100).prop_map(|percent| {
        Rule::Atom(Atom::Rvc(Rvc { percent, method: None, notation: RvcNotation::Compact }))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printing_then_parsing_gives_the_same_rule(r in rule()) {
        let text = r.to_string();
        prop_assert_eq!(parse_rule(&text), Ok(r), "{}", text);
    }

    #[test]
    fn raising_a_non_originating_value_never_raises_the_rvc(
        mut g in good_with(rvc_rule()),
        pick in any::<usize>(),
        extra in amount(),
        method in prop_oneof![Just(RvcMethod::BuildDown), Just(RvcMethod::BuildUp)],
        undetermined in any::<bool>(),
    ) {
        g.method = Some(method);
        prop_assume!(!g.materials.is_empty());
        let i = pick % g.materials.len();
        g.materials[i].status = if undetermined { Status::Undetermined } else { Status::NonOriginating };
        g.materials[i].value = Some(g.materials[i].value.unwrap_or_default());
        let before = qualify(&g).unwrap();
        let mut raised = g.clone();
        raised.materials[i].value = Some(g.materials[i].value.unwrap_or_default() + extra);
        let after = qualify(&raised).unwrap();
        if let (Some(b), Some(a)) = (&before.rvc, &after.rvc) {
            prop_assert!(a.numerator <= b.numerator, "{} -> {}", b.percent, a.percent);
            prop_assert!(a.percent <= b.percent);
        }
        prop_assert!(!after.originating || before.originating);
    }

    #[test]
    fn an_originating_material_never_spoils_a_qualifying_good(
        g in good_with(rule()),
        pick in any::<usize>(),
    ) {
        prop_assume!(!g.materials.is_empty());
        let i = pick % g.materials.len();
        prop_assume!(!g.materials[i].status.is_originating());
        let before = qualify(&g).unwrap();
        let mut better = g.clone();
        better.materials[i].status = Status::Originating;
        let after = qualify(&better).unwrap();
        prop_assert!(
            !before.originating || after.originating,
            "rule {}: {:?} -> {:?}", before.rule, before.alternatives, after.alternatives
        );
    }

    #[test]
    fn build_down_and_build_up_agree_when_the_costs_make_them_equal(
        mut g in good_with(rvc_rule()),
        costs in (amount(), amount(), amount(), amount()),
    ) {
        for m in &mut g.materials {
            m.value.get_or_insert(Decimal::ONE);
        }
        let (l, o, p, other) = costs;
        g.costs = Costs { direct_labour: l, direct_overhead: o, profit: p, other };
        // Value = VNM + VOM + costs: the two formulas then describe the same good.
        let mut down = g.clone();
        down.method = Some(RvcMethod::BuildDown);
        let materials_total: Decimal = g.materials.iter().filter_map(|m| m.value).sum();
        let total = materials_total + g.costs.total();
        prop_assume!(total > Decimal::ZERO);
        down.valuation = Some(Valuation { basis: Basis::Fob, value: total, currency: usd() });
        let mut up = down.clone();
        up.method = Some(RvcMethod::BuildUp);
        let (d, u) = (qualify(&down).unwrap(), qualify(&up).unwrap());
        let (fd, fu) = (d.rvc.clone().unwrap(), u.rvc.clone().unwrap());
        prop_assert_eq!(fd.numerator, fu.numerator);
        prop_assert_eq!(fd.percent, fu.percent);
        prop_assert_eq!(d.originating, u.originating);
    }
}

/// Words and signs of the rule language, to build near-valid text.
const TOKENS: &[&str] = &[
    "WO",
    "PE",
    "CR",
    "SP",
    "CC",
    "CTH",
    "CTSH",
    "RVC",
    "RVC40",
    "40",
    "35%",
    "%",
    "MaxNOM",
    "PC",
    "or",
    "and",
    "+",
    ";",
    ",",
    "(",
    ")",
    "except",
    "from",
    "Chapter",
    "Chapters",
    "heading",
    "headings",
    "subheading",
    "through",
    "-",
    "01",
    "2403",
    "24.03",
    "1211.20",
    "(build-down)",
    "build-up",
    "RVC 35%",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_parses_or_is_refused_with_a_column(text in "\\PC{0,60}") {
        match parse_rule(&text) {
            Ok(r) => prop_assert_eq!(parse_rule(&r.to_string()), Ok(r)),
            Err(e) => prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e}"),
        }
    }

    #[test]
    fn near_valid_text_parses_or_is_refused_with_a_column(
        words in prop::collection::vec(prop::sample::select(TOKENS), 1..12),
        glue in prop::collection::vec(prop::sample::select(&[" ", "", "  "][..]), 12),
    ) {
        let text: String = words.iter().zip(&glue).map(|(w, g)| format!("{w}{g}")).collect();
        match parse_rule(&text) {
            Ok(r) => prop_assert_eq!(parse_rule(&r.to_string()), Ok(r.clone()), "{} -> {}", text, r),
            Err(e) => prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{text:?}: {e}"),
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        "-?[0-9]{1,30}(\\.[0-9]{0,10})?".prop_map(Value::String),
        prop::sample::select(vec!["8415.90", "TH", "partial", "RVC40 or CTH", "build-up", "EXW", "0"])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Places in a request where a hostile value may land.
const PATHS: &[&[&str]] = &[
    &["agreement"],
    &["exporting_country"],
    &["product"],
    &["product", "hs"],
    &["product", "weight_kg"],
    &["rule"],
    &["method"],
    &["valuation"],
    &["valuation", "value"],
    &["valuation", "basis"],
    &["costs"],
    &["costs", "other"],
    &["materials"],
    &["materials", "0"],
    &["materials", "0", "value"],
    &["materials", "0", "rvc"],
    &["materials", "0", "status"],
    &["operations"],
    &["wholly_obtained"],
    &["de_minimis_percent"],
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn hostile_requests_are_answered_or_refused_never_crashed_on(
        path in prop::sample::select(PATHS),
        value in json_value(),
    ) {
        let mut v = serde_json::json!({
            "agreement": "ATIGA", "exporting_country": "TH", "product": { "hs": "8415.10" },
            "valuation": { "basis": "FOB", "value": "100.00", "currency": "USD" },
            "costs": { "other": "1" },
            "materials": [ { "name": "m", "hs": "8415.90", "value": "60.00", "status": "non-originating" } ]
        });
        let mut slot = &mut v;
        for key in path.iter() {
            slot = match key.parse::<usize>() {
                Ok(i) => &mut slot[i],
                Err(_) => &mut slot[*key],
            };
        }
        *slot = value;
        match originlink_rules::good_from_json(&v) {
            Ok(good) => {
                let a = qualify(&good).unwrap();
                prop_assert!(!a.to_json_string().is_empty());
                prop_assert!(!a.render_text().is_empty());
            }
            Err(e) => prop_assert!(!e.code.is_empty() && !e.message.is_empty()),
        }
    }
}
