//! Model paths (`/items/2/fob`) → JSON pointers of the written document.

use super::EXTENSION;

const SC: &str = "/supplyChainConsignment";

pub(super) fn pointer_for(model_path: &str) -> String {
    let segs: Vec<&str> = model_path.strip_prefix('/').unwrap_or(model_path).split('/').collect();
    let x = |rest: &str| format!("/{EXTENSION}{rest}");
    match segs.as_slice() {
        ["agreement"] => "/freeTradeAgreement".to_owned(),
        ["kind"] => x("/proofKind"),
        ["number"] => "/iD".to_owned(),
        ["reference"] => x("/applicationReference"),
        ["version"] => x("/version"),
        ["replaces", rest @ ..] => x(&format!("/replaces{}", join(rest))),
        ["approved_exporter"] => x("/approvedExporter"),
        ["remarks"] => format!("{SC}/information"),
        ["exporting_country"] => format!("{SC}/exportCountry/code"),
        ["importing_country"] => format!("{SC}/importCountry/code"),
        ["exporter", rest @ ..] => format!("{SC}/exporter{}", party(rest)),
        ["consignee", rest @ ..] => format!("{SC}/importer{}", party(rest)),
        ["producer", rest @ ..] => format!("{SC}/includedConsignmentItems/0/manufacturer{}", party(rest)),
        ["transport"] => format!("{SC}/mainCarriageTransportMovement"),
        ["transport", "departure_date"] => {
            format!("{SC}/mainCarriageTransportMovement/departureEvent/departureDateTime")
        }
        ["transport", "mode"] => x("/transportModeCode"),
        ["transport", "vessel"] => format!("{SC}/mainCarriageTransportMovement/usedTransportMeans/name"),
        ["transport", port @ ("port_of_loading" | "port_of_discharge"), rest @ ..] => {
            let loc = if *port == "port_of_loading" {
                "loadingBaseportLocation"
            } else {
                "unloadingBaseportLocation"
            };
            let field = match rest {
                ["code"] => "/iD",
                ["name"] => "/name",
                _ => "",
            };
            format!("{SC}/{loc}{field}")
        }
        ["items"] => format!("{SC}/includedConsignmentItems"),
        ["items", i, rest @ ..] => item(i, rest),
        ["declaration"] => "/firstSignatoryAuthentication".to_owned(),
        ["declaration", "date"] => "/firstSignatoryAuthentication/actualDateTime".to_owned(),
        ["declaration", f @ ("place" | "signatory")] => x(&format!("/declaration/{f}")),
        ["certification"] => "/issuer".to_owned(),
        ["certification", "authority", rest @ ..] => format!("/issuer{}", party(rest)),
        ["certification", "place"] => "/issueLocation/name".to_owned(),
        ["certification", "date"] => "/issueDateTime".to_owned(),
        ["certification", "officer"] => x("/certification/officer"),
        ["official_use"] => x("/officialUse"),
        ["official_use", "preference_given"] => x("/officialUse/preferenceGiven"),
        ["official_use", "reason"] => x("/officialUse/reason"),
        ["flags"] => x("/flags"),
        ["flags", "third_party_invoicing", rest @ ..] => {
            x(&format!("/flags/thirdPartyInvoicing{}", party(rest)))
        }
        ["flags", "exhibition", rest @ ..] => x(&format!("/flags/exhibition{}", join(rest))),
        ["flags", "back_to_back", rest @ ..] => x(&format!("/flags/backToBack{}", join(rest))),
        ["flags", "de_minimis"] => x("/flags/deMinimis"),
        ["flags", "accumulation"] => x("/flags/accumulation"),
        ["flags", "partial_cumulation"] => x("/flags/partialCumulation"),
        ["flags", "issued_retroactively"] => x("/flags/issuedRetroactively"),
        _ => model_path.to_owned(),
    }
}

fn join(rest: &[&str]) -> String {
    rest.iter().map(|s| format!("/{s}")).collect()
}

fn party(rest: &[&str]) -> &'static str {
    match rest {
        [] => "",
        ["name"] => "/name",
        ["id"] => "/iD",
        ["address"] => "/postalAddress",
        ["address", "street"] => "/postalAddress/line1",
        ["address", "city"] => "/postalAddress/cityName",
        ["address", "postcode"] => "/postalAddress/postcode",
        ["address", "country"] => "/postalAddress/countryCode",
        _ => "",
    }
}

fn item(i: &str, rest: &[&str]) -> String {
    let ci = format!("{SC}/includedConsignmentItems/{i}");
    let line = format!("{ci}/tradeLineItems/0");
    let x = format!("/{EXTENSION}/items/{i}");
    match rest {
        [] => ci,
        ["number"] => format!("{line}/sequenceNumber"),
        ["marks"] => format!("{x}/marks"),
        ["packages"] => format!("{x}/packages"),
        ["packages", "count"] => format!("{x}/packages/count"),
        ["packages", "kind"] => format!("{x}/packages/kindCode"),
        ["description"] => format!("{line}/tradeProduct/description"),
        ["hs"] => format!("{line}/tradeProduct/harmonisedTariffCode/classCode"),
        ["criterion"] => format!("{ci}/crossBorderRegulatoryProcedure/originCriteriaText"),
        ["origin_country"] => format!("{line}/tradeProduct/originCountry/code"),
        ["quantity", ..] => format!("{x}/quantity"),
        ["gross_weight", ..] => format!("{x}/grossWeight"),
        ["fob", ..] => format!("{x}/fob"),
        ["invoice"] => format!("{line}/invoiceReference"),
        ["invoice", "number"] => format!("{line}/invoiceReference/iD"),
        ["invoice", "date"] => format!("{line}/invoiceReference/formattedIssueDateTime"),
        _ => ci,
    }
}
