//! PSR tables: the shipped files, lookup by the most specific range, and the loader's refusals.

use originlink_model::{Agreement, HsCode};
use originlink_rules::{PsrTable, TableError};

fn code(s: &str) -> HsCode {
    HsCode::parse_syntax(s).unwrap()
}

fn table(rows: &str) -> Result<PsrTable, TableError> {
    PsrTable::parse(&format!("@agreement TEST\n@hs HS 2022\n{rows}"))
}

#[test]
fn shipped_tables_load_and_carry_their_sources() {
    let rcep = PsrTable::builtin(Agreement::Rcep);
    assert_eq!(rcep.agreement, "RCEP");
    assert_eq!(rcep.hs_edition, "HS 2012");
    for (hs, rule) in [
        ("8517.12", "CTSH or RVC40"),
        ("0504.00", "CC except from Chapter 01"),
        ("1302.19", "CC except from subheading 1211.20"),
        ("2710.12", "CTH or RVC40"),
        ("8518.90", "CTH or RVC40"),
    ] {
        let row = rcep.lookup(&code(hs)).unwrap_or_else(|| panic!("RCEP {hs}"));
        assert_eq!(row.rule.to_string(), rule, "{hs}");
        assert!(row.source.contains("Annex 3A"), "{hs}: {}", row.source);
    }
    // 8517.12 is HS 2012 only; HS 2022 splits it into 8517.13 and 8517.14.
    assert!(HsCode::parse("8517.12").is_err());
    assert!(rcep.lookup(&code("8517.13")).is_none());

    let atiga = PsrTable::builtin(Agreement::Atiga);
    let row = atiga.lookup(&code("2404.19.10")).unwrap();
    assert_eq!(row.rule.to_string(), "RVC40 or CTH except from heading 2403");
    assert_eq!(row.range.to_string(), "2404.19.10");
    assert!(atiga.lookup(&code("2404.19")).is_none());
    assert_eq!(atiga.rows_below(&code("2404.19")).count(), 1);
    assert!(atiga.lookup(&code("1905.31")).is_none());
}

#[test]
fn the_most_specific_range_wins() {
    let t = table("01 | CC | chapter row\n0101-0103 | CTH | heading row\n0102.21 | WO | subheading row\n")
        .unwrap();
    assert_eq!(t.lookup(&code("0102.21")).unwrap().source, "subheading row");
    assert_eq!(t.lookup(&code("0102.29")).unwrap().source, "heading row");
    assert_eq!(t.lookup(&code("0101.21")).unwrap().source, "heading row");
    assert_eq!(t.lookup(&code("0105.11")).unwrap().source, "chapter row");
    assert!(t.lookup(&code("0201.10")).is_none());
    assert_eq!(t.rows().len(), 3);
}

#[test]
fn overlapping_ranges_at_one_level_are_refused() {
    let e = table("01-05 | CC | a\n03 | CTH | b\n").unwrap_err();
    assert_eq!((e.code, e.line), ("PSR_OVERLAP", 4), "{e}");
    let e = table("0101-0110 | CC | a\n0110-0120 | CTH | b\n").unwrap_err();
    assert_eq!(e.code, "PSR_OVERLAP", "{e}");
    let e = table("8517.12 | CTSH | a\n85.17.12 | CTH | b\n").unwrap_err();
    assert_eq!(e.code, "PSR_OVERLAP", "{e}");
    // Adjacent ranges and nested levels are fine.
    assert!(table("0101-0105 | CC | a\n0106-0110 | CTH | b\n01 | WO | c\n").is_ok());
}

#[test]
fn malformed_rows_are_refused_with_their_line() {
    for (rows, code, line) in [
        ("0101 | CC\n", "PSR_LINE", 3),
        ("0101 | CC | \n", "PSR_LINE", 3),
        ("# comment\n0101 | CC or | src\n", "PSR_RULE", 4),
        ("010 | CC | src\n", "PSR_RANGE", 3),
        ("0101-01 | CC | src\n", "PSR_RANGE", 3),
        ("0105-0101 | CC | src\n", "PSR_RANGE", 3),
        ("@edition 2012\n", "PSR_HEADER", 3),
    ] {
        let e = table(rows).unwrap_err();
        assert_eq!((e.code, e.line), (code, line), "{rows:?}: {e}");
    }
    let e = table("0101 | CC or | src\n").unwrap_err();
    assert!(e.message.contains("column 6"), "{e}");
}
