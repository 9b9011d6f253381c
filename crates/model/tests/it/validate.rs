//! Every cross-field validation rule, one case each: start from a valid sample, break one
//! thing, and expect exactly that problem (code and path).

use originlink_model::*;

fn base(agreement: Agreement) -> Certificate {
    let d = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
    sample::sample(agreement, CountryCode::parse("KH").unwrap(), CountryCode::parse("TH").unwrap(), d, 5, 1)
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

/// Applies `mutate` to a valid certificate and checks the problems are exactly `expect`
/// (code, path) pairs.
fn check(agreement: Agreement, mutate: impl FnOnce(&mut Certificate), expect: &[(&str, &str)]) {
    let mut c = base(agreement);
    assert_eq!(validate(&c), vec![], "the base certificate must be valid");
    mutate(&mut c);
    let got: Vec<(String, String)> = validate(&c).into_iter().map(|p| (p.code, p.path)).collect();
    let want: Vec<(String, String)> = expect.iter().map(|(c, p)| (c.to_string(), p.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn fob_required_for_rvc() {
    // Item 3 of the ATIGA sample is claimed under 40%.
    check(Agreement::Atiga, |c| c.items[2].fob = None, &[("FOB_REQUIRED_FOR_RVC", "/items/2/fob")]);
    // Not required for a CTH item.
    check(Agreement::Atiga, |c| c.items[1].fob = None, &[]);
}

#[test]
fn item_limit() {
    let c = base(Agreement::Atiga);
    let item = c.items[0].clone();
    check(
        Agreement::Atiga,
        |c| {
            c.items = (1..=51).map(|n| Item { number: n, ..item.clone() }).collect();
        },
        &[("ITEM_LIMIT", "/items")],
    );
    check(
        Agreement::Atiga,
        |c| {
            c.items = (1..=50).map(|n| Item { number: n, ..item.clone() }).collect();
        },
        &[],
    );
}

#[test]
fn items_empty_and_numbering() {
    check(Agreement::Atiga, |c| c.items.clear(), &[("ITEMS_EMPTY", "/items")]);
    check(Agreement::Atiga, |c| c.items[3].number = 9, &[("ITEM_NUMBERING", "/items/3/number")]);
}

#[test]
fn countries() {
    check(
        Agreement::Atiga,
        |c| {
            c.importing_country = cc("KH");
            c.consignee.address.country = cc("KH");
        },
        &[("SAME_COUNTRY", "/importing_country")],
    );
    check(Agreement::Atiga, |c| c.importing_country = cc("CN"), &[("NOT_A_MEMBER", "/importing_country")]);
    check(Agreement::Rcep, |c| c.importing_country = cc("CN"), &[]);
    check(
        Agreement::Atiga,
        |c| c.items[0].origin_country = cc("FR"),
        &[("NOT_A_MEMBER", "/items/0/origin_country")],
    );
    check(
        Agreement::Atiga,
        |c| c.exporter.address.country = cc("VN"),
        &[("EXPORTER_COUNTRY_MISMATCH", "/exporter/address/country")],
    );
}

#[test]
fn criterion_must_belong_to_the_agreement() {
    check(
        Agreement::Atiga,
        |c| c.items[0].criterion = OriginCriterion::CtcUnspecified,
        &[("CRITERION_NOT_ALLOWED", "/items/0/criterion")],
    );
    check(
        Agreement::Rcep,
        |c| c.items[0].criterion = OriginCriterion::Ctc(Ctc::Heading),
        &[("CRITERION_NOT_ALLOWED", "/items/0/criterion")],
    );
    check(
        Agreement::Atiga,
        |c| c.items[0].criterion = OriginCriterion::PartialCumulation(25),
        &[("PARTIAL_CUMULATION_FLAG_REQUIRED", "/items/0/criterion")],
    );
}

#[test]
fn money() {
    check(
        Agreement::Atiga,
        |c| c.items[1].fob = Some(Money::parse("10.00", "EUR").unwrap()),
        &[("CURRENCY_MIXED", "/items/1/fob")],
    );
    check(
        Agreement::Atiga,
        |c| c.items[1].fob = Some(Money::parse("0", "USD").unwrap()),
        &[("FOB_NOT_POSITIVE", "/items/1/fob")],
    );
    check(
        Agreement::Atiga,
        |c| c.items[1].gross_weight = Some(Quantity::parse("10", "LTR").unwrap()),
        &[("WEIGHT_UNIT", "/items/1/gross_weight")],
    );
}

#[test]
fn dates() {
    check(
        Agreement::Atiga,
        |c| c.declaration.date = c.issue_date().unwrap().succ_opt().unwrap(),
        &[("DATE_ORDER", "/certification/date")],
    );
    check(
        Agreement::Atiga,
        |c| c.items[4].invoice.date = c.issue_date().unwrap().succ_opt().unwrap(),
        &[("DATE_ORDER", "/items/4/invoice/date")],
    );
    // Shipped 10 days before issue: retroactive, so the flag is required; with it, valid.
    check(
        Agreement::Atiga,
        |c| c.transport.departure_date = c.issue_date().unwrap() - chrono::Duration::days(10),
        &[("RETROACTIVE_FLAG_REQUIRED", "/flags/issued_retroactively")],
    );
    check(
        Agreement::Atiga,
        |c| {
            c.transport.departure_date = c.issue_date().unwrap() - chrono::Duration::days(10);
            c.flags.issued_retroactively = true;
        },
        &[],
    );
    check(
        Agreement::Atiga,
        |c| c.flags.issued_retroactively = true,
        &[("RETROACTIVE_FLAG_UNEXPECTED", "/flags/issued_retroactively")],
    );
    check(
        Agreement::Atiga,
        |c| {
            c.transport.departure_date = c.issue_date().unwrap() - chrono::Duration::days(400);
            c.flags.issued_retroactively = true;
        },
        &[("RETROACTIVE_TOO_LATE", "/certification/date")],
    );
}

#[test]
fn proof_kinds() {
    check(
        Agreement::Atiga,
        |c| c.kind = ProofKind::ExporterDeclaration,
        &[("PROOF_KIND_NOT_ALLOWED", "/kind")],
    );
    check(
        Agreement::Rcep,
        |c| c.kind = ProofKind::ApprovedExporterDeclaration,
        &[("APPROVED_EXPORTER_CODE_REQUIRED", "/approved_exporter")],
    );
    check(
        Agreement::Rcep,
        |c| {
            c.kind = ProofKind::ApprovedExporterDeclaration;
            c.approved_exporter = Some("KH-AE-0042".into());
        },
        &[],
    );
}

#[test]
fn versions_and_references() {
    check(Agreement::Atiga, |c| c.version = 2, &[("REPLACES_REQUIRED", "/replaces")]);
    check(Agreement::Atiga, |c| c.version = 0, &[("VERSION_INVALID", "/version")]);
    check(
        Agreement::Atiga,
        |c| {
            c.flags.back_to_back =
                Some(CertificateRef { country: cc("KH"), number: CertificateNumber::parse("KH-1").unwrap() })
        },
        &[("BACK_TO_BACK_SAME_COUNTRY", "/flags/back_to_back/country")],
    );
}

#[test]
fn text_fields() {
    check(Agreement::Atiga, |c| c.exporter.name = "  ".into(), &[("REQUIRED", "/exporter/name")]);
    check(
        Agreement::Atiga,
        |c| c.items[0].description = "x".repeat(513),
        &[("TEXT_TOO_LONG", "/items/0/description")],
    );
    check(Agreement::Atiga, |c| c.remarks = Some("a\u{0}b".into()), &[("TEXT_CONTROL_CHAR", "/remarks")]);
    check(
        Agreement::Atiga,
        |c| c.transport.port_of_loading.code = Some("KH1".into()),
        &[("LOCODE_INVALID", "/transport/port_of_loading/code")],
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let mut c = base(Agreement::Atiga);
    c.items[2].fob = None;
    c.importing_country = cc("CN");
    c.exporter.name.clear();
    let codes: Vec<String> = validate(&c).into_iter().map(|p| p.code).collect();
    assert_eq!(codes, ["NOT_A_MEMBER", "REQUIRED", "FOB_REQUIRED_FOR_RVC"]);
}
