//! The rule language: the real rule strings of the agreements, the printer, and errors that
//! give the column.

use originlink_rules::{AndWord, Atom, ClassRef, Ctc, OrWord, Rule, Rvc, RvcMethod, RvcNotation, parse_rule};

fn check(text: &str, printed: &str) {
    let rule = parse_rule(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(rule.to_string(), printed, "{text:?}");
    assert_eq!(parse_rule(printed).as_ref(), Ok(&rule), "{printed:?} reads back");
}

fn check_err(text: &str, code: &str, column: usize) {
    match parse_rule(text) {
        Ok(r) => panic!("{text:?} parsed as {r}"),
        Err(e) => assert_eq!((e.code, e.column), (code, column), "{text:?}: {e}"),
    }
}

#[test]
fn real_rule_strings_parse_and_print_back_unchanged() {
    for text in [
        "WO",
        "CC",
        "CC except from Chapter 01",
        "CC except from subheading 1211.20",
        "CTH or RVC40",
        "CTSH or RVC40",
        "RVC40 or CTH",
        "RVC40 or CTH except from heading 2403",
        "CTSH + 35%",
        "PC 25%",
        "RVC 35% + CTSH",
        "(CTH or RVC40) and WO",
        "RVC60(build-down)",
        "MaxNOM 50%",
        "CC; RVC40",
        "CR or RVC40",
        "CTH except from Chapters 50 through 63",
    ] {
        check(text, text);
    }
}

#[test]
fn other_spellings_read_to_the_canonical_form() {
    check("cth or rvc40", "CTH or RVC40");
    check("RVC40(BUILD-UP)", "RVC40(build-up)");
    check("CTH except from heading 24.03", "CTH except from heading 2403");
    check("CTH except from headings 24.01-24.03", "CTH except from headings 2401 through 2403");
    check("CC except from Chapters 01-05", "CC except from Chapters 01 through 05");
    check("MaxNOM50", "MaxNOM 50%");
    check("RVC 40", "RVC 40%");
    check("  CTSH   +35% ", "CTSH + 35%");
    check(
        "CTH except from heading 2401, 2402 and heading 2403 or RVC40",
        "CTH except from heading 2401, heading 2402, heading 2403 or RVC40",
    );
    check(
        "CTH except from subheading 1211.20 or subheading 1211.90",
        "CTH except from subheading 1211.20, subheading 1211.90",
    );
}

#[test]
fn except_binds_to_the_nearest_tariff_change() {
    let r = parse_rule("RVC40 or CTH except from heading 2403").unwrap();
    let rvc40 = Rule::Atom(Atom::Rvc(Rvc { percent: 40, method: None, notation: RvcNotation::Compact }));
    let cth = Rule::Atom(Atom::Ctc(Ctc::Heading));
    let excl = Rule::Except(Box::new(cth), vec![ClassRef::Headings(2403, 2403)]);
    assert_eq!(r, Rule::Any(vec![rvc40, excl], OrWord::Or));

    let r = parse_rule("CTSH + 35%").unwrap();
    let pct = Rule::Atom(Atom::Rvc(Rvc { percent: 35, method: None, notation: RvcNotation::Percent }));
    assert_eq!(r, Rule::All(vec![Rule::Atom(Atom::Ctc(Ctc::Subheading)), pct], AndWord::Plus));

    let r = parse_rule("RVC45(build-down)").unwrap();
    assert!(matches!(r, Rule::Atom(Atom::Rvc(Rvc { percent: 45, method: Some(RvcMethod::BuildDown), .. }))));
    // `and` binds tighter than `or`.
    let r = parse_rule("WO or CTH and RVC40").unwrap();
    assert!(matches!(&r, Rule::Any(v, _) if matches!(v[1], Rule::All(..))), "{r:?}");
}

#[test]
fn errors_give_the_column() {
    check_err("CTH or", "RULE_SYNTAX", 7);
    check_err("RVC40 or CTX", "RULE_SYNTAX", 10);
    check_err("CTH except heading 2403", "RULE_SYNTAX", 12);
    check_err("RVC40 except from heading 2403", "RULE_EXCEPT_WITHOUT_CTC", 7);
    check_err("CC except from Chapter 1", "RULE_SYNTAX", 24);
    check_err("CC except from heading 240", "RULE_SYNTAX", 24);
    check_err("RVC140", "RULE_NUMBER", 4);
    check_err("RVC0", "RULE_NUMBER", 4);
    check_err("(CTH or RVC40", "RULE_SYNTAX", 14);
    check_err("CTH & RVC40", "RULE_SYNTAX", 5);
    check_err("CTH RVC40", "RULE_SYNTAX", 5);
    check_err("40", "RULE_SYNTAX", 3);
    check_err("RVC40(build-sideways)", "RULE_SYNTAX", 7);
    check_err("CTH except from headings 2403 through 2401", "RULE_SYNTAX", 39);
    check_err("", "RULE_EMPTY", 1);
    check_err("   ", "RULE_EMPTY", 1);
    check_err("CTH or é", "RULE_SYNTAX", 8);
}

#[test]
fn hostile_rules_are_refused_not_crashed_on() {
    let deep = format!("{}CTH{}", "(".repeat(100), ")".repeat(100));
    check_err(&deep, "RULE_TOO_DEEP", 33);
    let long = vec!["CTH"; 1000].join(" or ");
    assert_eq!(parse_rule(&long).unwrap_err().code, "RULE_TOO_LONG");
    let wide = vec!["CTH"; 250].join(" or ");
    assert_eq!(parse_rule(&wide).unwrap().alternatives().len(), 250);
}
