//! The overleaf notes printed on the last page: a short summary, in our own words, of the
//! notes on the back of the official forms.

use originlink_model::Agreement;

use crate::layout::P;

const SIZE: f32 = 8.4;

fn heading(text: &str) -> P {
    P::new(text).bold().size(SIZE).gap(5.0)
}

fn para(text: impl Into<String>) -> P {
    P::new(text).size(SIZE).gap(1.5)
}

fn item(text: impl Into<String>) -> P {
    P::bullet(text).size(SIZE).gap(0.5)
}

fn members(agreement: Agreement) -> String {
    let mut names: Vec<&str> = agreement.settings().members.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    names.join(", ")
}

const PRINTOUT: &str = "This paper was printed from a certificate issued electronically. The QR code \
    and the check code lead to the issuing authority's verification page, which shows the \
    certificate as it was signed; the SHA-256 printed beside the code is the digest of the \
    signed electronic document. Where this paper and the electronic certificate differ, the \
    electronic certificate prevails.";

/// The overleaf notes of ATIGA Form D.
pub(crate) fn form_d() -> Vec<P> {
    vec![
        heading("1. Member States"),
        para(format!(
            "Member States which accept this form for preferential treatment under the ASEAN Trade in \
             Goods Agreement (ATIGA): {}.",
            members(Agreement::Atiga)
        )),
        heading("2. Conditions"),
        para("Goods sent to one of these Member States are admitted to preferential treatment when they:"),
        item("fall within a description of products eligible for concessions in the importing Member State;"),
        item(
            "are consigned directly from the exporting to the importing Member State (transit through \
             other countries is allowed under the ATIGA rules on direct consignment); and",
        ),
        item("meet the origin criteria of note 3."),
        heading("3. Origin criteria"),
        para("To be eligible, the goods must be either:"),
        item("wholly obtained or produced in the exporting Member State (ATIGA Article 27);"),
        item(
            "goods with a regional value content of at least 40 % of the FOB value, or that underwent a \
             change in tariff classification at the four-digit level (ATIGA Article 28); or",
        ),
        item("goods that satisfy the product-specific rule set for them in Annex 3 of ATIGA."),
        heading("4. Box 8: how to state the origin criterion"),
        para("For each item the exporter writes the criterion on which the goods qualify:"),
        item("wholly obtained or produced in the exporting Member State: WO"),
        item("regional value content: the percentage, e.g. 40%"),
        item("change in tariff classification: CC (chapter), CTH (heading) or CTSH (subheading)"),
        item("a tariff change together with a value content, e.g. CTSH + 35%"),
        item("specific process: SP"),
        item(
            "partial cumulation: PC x%, where x is the regional value content when it is below 40 % \
             (at least 20 %), e.g. PC 25%",
        ),
        heading("5. Each article must qualify"),
        para("Each item of a consignment must meet the origin criteria on its own."),
        heading("6. Box 7: description of goods"),
        para(
            "The description must be detailed enough for the customs officer examining the goods to \
             identify them, with the name of the manufacturer and any trade mark where known. The HS code \
             is that of the importing Member State.",
        ),
        heading("7. Box 9: quantity and FOB value"),
        para(
            "Gross weight or other quantity of each item. The FOB value is stated only when the regional \
             value content (RVC) criterion is used.",
        ),
        heading("8. Box 11: declaration by the exporter"),
        para(
            "\"Country\" is the Member State where the goods were produced; \"Importing Country\" is the \
             Member State of destination. The exporter or its authorised signatory signs.",
        ),
        heading("9. Box 13"),
        item("Third Country Invoicing: the invoice is issued by a company in a third country."),
        item("Exhibition: the goods are sent to an exhibition in another Member State and sold there."),
        item(
            "Back-to-Back CO: issued by an intermediate Member State on the basis of the original \
             certificate.",
        ),
        item("De Minimis, Accumulation, Partial Cumulation: the rule was applied to qualify the goods."),
        item(
            "Issued Retroactively: not issued at the time of exportation or within three days of the \
             shipment date.",
        ),
        heading("10. Box 4: for official use"),
        para(
            "The customs authority of the importing Member State ticks whether preferential treatment was \
             given, states the reasons where it was not, and signs.",
        ),
        heading("11. This printout"),
        para(PRINTOUT),
    ]
}

/// The overleaf notes of the RCEP certificate of origin.
pub(crate) fn rcep() -> Vec<P> {
    vec![
        heading("1. Parties"),
        para(format!(
            "Parties to the Regional Comprehensive Economic Partnership (RCEP) Agreement that accept this \
             certificate: {}.",
            members(Agreement::Rcep)
        )),
        heading("2. General"),
        para(
            "The certificate is completed in English. Each good must qualify as originating on its own. \
             The certificate is valid for one year from the date of issue.",
        ),
        heading("3. Boxes 1 to 3: the parties"),
        para(
            "Box 1: the exporter's name, address and country. Box 2: the importer's or consignee's name, \
             address and country. Box 3: the producer's name, address and country if known; several \
             producers may be listed, and \"Available to the competent authority upon request\" may be \
             written instead.",
        ),
        heading("4. Box 4: means of transport and route"),
        para("If known: departure date, vessel's name or flight number, and port of discharge."),
        heading("5. Box 5: for official use"),
        para(
            "For the customs authority of the importing Party: whether preferential tariff treatment was \
             given, with the reasons where it was not.",
        ),
        heading("6. Boxes 6 to 9: the goods"),
        para(
            "Item number; marks and numbers on packages; number and kind of packages and a description of \
             each good detailed enough to identify it; its HS code at the six-digit level.",
        ),
        heading("7. Box 10: origin conferring criterion"),
        para("For each good, the criterion on which it qualifies:"),
        item("WO: wholly obtained or produced in a Party"),
        item("PE: produced in a Party exclusively from originating materials"),
        item("CTC: change in tariff classification"),
        item("RVC: regional value content"),
        item("CR: chemical reaction, where the product-specific rule provides for it"),
        para("And, where the good relied on them:").gap(2.0),
        item("ACU: accumulation"),
        item("DMI: de minimis"),
        heading("8. Box 11: RCEP country of origin"),
        para(
            "The Party of origin of the good as determined under the Agreement's provisions on tariff \
             differentials.",
        ),
        heading("9. Box 12: quantity and FOB value"),
        para(
            "Gross weight or other measure of each good. The FOB value is stated only where the regional \
             value content criterion (RVC) is applied.",
        ),
        heading("10. Box 13: invoices"),
        para(
            "Number and date of the invoices. Where the invoice is issued by a company in a non-Party or \
             another Party (third-party invoicing), the box \"Third-party invoicing\" is ticked and the \
             invoicing company's name and country are given in box 14.",
        ),
        heading("11. Boxes 14 to 16"),
        para(
            "Box 14: remarks, such as the original certificate of a back-to-back certificate. Box 15: the \
             exporter or producer declares that the goods meet the RCEP requirements. Box 16: the issuing \
             body certifies the certificate.",
        ),
        heading("12. Check boxes"),
        item(
            "Back-to-back Certificate of Origin: issued by an intermediate Party on the basis of the original proof of origin.",
        ),
        item("Third-party invoicing: see note 10."),
        item("Issued retroactively: issued after the shipment, in exceptional cases."),
        heading("13. This printout"),
        para(PRINTOUT),
    ]
}
