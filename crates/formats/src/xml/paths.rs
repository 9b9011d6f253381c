//! XPaths of the UBL mapping: one place that both the reader (for its problem paths) and
//! [`super::xpath_for`] (for the model's JSON-pointer paths) use.

/// The root element.
pub(crate) const ROOT: &str = "/CertificateOfOrigin";
/// The application (most of the certificate's content).
pub(crate) const APP: &str = "/CertificateOfOrigin/cac:CertificateOfOriginApplication";
/// The shipment: goods items, transport, delivery, handling units.
pub(crate) const SHIP: &str = "/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment";
/// Box 3.
pub(crate) const STAGE: &str =
    "/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment/cac:ShipmentStage";
/// Importing country and exhibition.
pub(crate) const DELIVERY: &str =
    "/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment/cac:Delivery";
/// Box 12.
pub(crate) const ENDORSE: &str = "/CertificateOfOrigin/cac:IssuerEndorsement";
/// Box 1.
pub(crate) const EXPORTER: &str = "/CertificateOfOrigin/cac:ExporterParty";
/// Box 2.
pub(crate) const IMPORTER: &str = "/CertificateOfOrigin/cac:ImporterParty";

/// `cbc:DocumentType` of the supporting document reference to the replaced certificate.
pub(crate) const ROLE_REPLACED: &str = "replaced-certificate";
/// `cbc:DocumentType` of the supporting document reference to a back-to-back original.
pub(crate) const ROLE_BACK_TO_BACK: &str = "back-to-back-original";
/// `schemeID` of the exporter's approved-exporter authorization code.
pub(crate) const SCHEME_APPROVED_EXPORTER: &str = "approved-exporter";

/// Keys of the coded root `cbc:Note`s (`key=value`).
pub(crate) mod key {
    pub(crate) const DECLARATION_PLACE: &str = "declaration-place";
    pub(crate) const DECLARATION_DATE: &str = "declaration-date";
    pub(crate) const CERTIFICATION_PLACE: &str = "certification-place";
    pub(crate) const OFFICIAL_USE: &str = "official-use";
    pub(crate) const OFFICIAL_USE_REASON: &str = "official-use-reason";
    pub(crate) const DE_MINIMIS: &str = "de-minimis";
    pub(crate) const ACCUMULATION: &str = "accumulation";
    pub(crate) const PARTIAL_CUMULATION: &str = "partial-cumulation";
    pub(crate) const ISSUED_RETROACTIVELY: &str = "issued-retroactively";
}

/// The coded note with a key.
pub(crate) fn note(key: &str) -> String {
    format!("{ROOT}/cbc:Note[starts-with(.,'{key}=')]")
}

/// Goods item `i` (0-based) of the model.
pub(crate) fn goods(i: usize) -> String {
    format!("{SHIP}/cac:GoodsItem[{}]", i + 1)
}

/// Handling unit `i` (0-based): packages and marks of item `i`.
pub(crate) fn thu(i: usize) -> String {
    format!("{SHIP}/cac:TransportHandlingUnit[{}]", i + 1)
}

/// The supporting document reference with a role.
pub(crate) fn doc_ref(role: &str) -> String {
    format!("{APP}/cac:SupportingDocumentReference[cbc:DocumentType='{role}']")
}

/// Producer as written on goods item `i`.
pub(crate) fn producer(i: usize) -> String {
    format!("{}/cac:Item/cac:ManufacturerParty", goods(i))
}

/// Third-party invoicing party as written on goods item `i`'s invoice.
pub(crate) fn invoicer(i: usize) -> String {
    format!("{}/cac:AdditionalDocumentReference/cac:IssuerParty", goods(i))
}

/// A field of a party (`rest` as in the model: `name`, `address/city`, …) under `base`.
pub(crate) fn party(base: &str, rest: &[&str]) -> String {
    let tail = match rest {
        [] => "",
        ["name"] => "/cac:PartyName/cbc:Name",
        ["id"] => "/cac:PartyIdentification/cbc:ID",
        ["address"] => "/cac:PostalAddress",
        ["address", "street"] => "/cac:PostalAddress/cbc:StreetName",
        ["address", "city"] => "/cac:PostalAddress/cbc:CityName",
        ["address", "postcode"] => "/cac:PostalAddress/cbc:PostalZone",
        ["address", "country"] => "/cac:PostalAddress/cac:Country/cbc:IdentificationCode",
        _ => "",
    };
    format!("{base}{tail}")
}

/// A field of a certificate reference under `base`.
fn cert_ref(base: String, rest: &[&str]) -> String {
    match rest {
        ["number"] => format!("{base}/cbc:ID"),
        ["country"] => format!("{base}/cac:IssuerParty/cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        _ => base,
    }
}

/// A field of item `i` (0-based).
pub(crate) fn item(i: usize, rest: &[&str]) -> String {
    let g = goods(i);
    match rest {
        ["number"] => format!("{g}/cbc:ID"),
        ["marks"] => format!("{}/cbc:ShippingMarks", thu(i)),
        ["packages"] => thu(i),
        ["packages", "count"] => format!("{}/cbc:TotalPackageQuantity", thu(i)),
        ["packages", "kind"] => format!("{}/cac:Package/cbc:PackagingTypeCode", thu(i)),
        ["description"] => format!("{g}/cbc:Description"),
        ["hs"] => format!("{g}/cac:Item/cac:CommodityClassification/cbc:ItemClassificationCode"),
        ["criterion"] => format!("{g}/cbc:PreferenceCriterionCode"),
        ["origin_country"] => format!("{g}/cac:Item/cac:OriginCountry/cbc:IdentificationCode"),
        ["quantity"] => format!("{g}/cbc:Quantity"),
        ["gross_weight"] => format!("{g}/cbc:GrossWeightMeasure"),
        ["fob"] => format!("{g}/cbc:FreeOnBoardValueAmount"),
        ["invoice"] => format!("{g}/cac:AdditionalDocumentReference"),
        ["invoice", "number"] => format!("{g}/cac:AdditionalDocumentReference/cbc:ID"),
        ["invoice", "date"] => format!("{g}/cac:AdditionalDocumentReference/cbc:IssueDate"),
        _ => g,
    }
}

/// Translates a model path (JSON pointer such as `/items/2/fob`) into the XPath of the UBL
/// element that carries the field. Unknown paths give the root.
pub(crate) fn xpath_for(model_path: &str) -> String {
    let segs: Vec<&str> = model_path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [] => ROOT.to_owned(),
        ["agreement"] => format!("{ROOT}/cbc:ProfileID"),
        ["kind"] => format!("{APP}/cbc:CertificateType"),
        ["number"] => format!("{ROOT}/cbc:ID"),
        ["reference"] => format!("{APP}/cbc:ReferenceID"),
        ["version"] => format!("{ROOT}/cbc:VersionID"),
        ["replaces", rest @ ..] => cert_ref(doc_ref(ROLE_REPLACED), rest),
        ["exporting_country"] => format!("{APP}/cac:IssuingCountry/cbc:IdentificationCode"),
        ["importing_country"] => format!("{DELIVERY}/cac:DeliveryAddress/cac:Country/cbc:IdentificationCode"),
        ["exporter", rest @ ..] => party(EXPORTER, rest),
        ["producer", rest @ ..] => party(&producer(0), rest),
        ["consignee", rest @ ..] => party(IMPORTER, rest),
        ["transport", "departure_date"] => format!("{STAGE}/cac:TransitPeriod/cbc:StartDate"),
        ["transport", "mode"] => format!("{STAGE}/cbc:TransportModeCode"),
        ["transport", "vessel"] => format!("{STAGE}/cac:TransportMeans"),
        ["transport", port @ ("port_of_loading" | "port_of_discharge"), rest @ ..] => {
            let loc =
                if *port == "port_of_loading" { "LoadingPortLocation" } else { "UnloadingPortLocation" };
            match rest {
                ["code"] => format!("{STAGE}/cac:{loc}/cbc:ID"),
                ["name"] => format!("{STAGE}/cac:{loc}/cbc:Name"),
                _ => format!("{STAGE}/cac:{loc}"),
            }
        }
        ["transport", ..] => STAGE.to_owned(),
        ["items"] => SHIP.to_owned(),
        ["items", i, rest @ ..] => match i.parse::<usize>() {
            Ok(i) if i < 1_000_000 => item(i, rest),
            _ => SHIP.to_owned(),
        },
        ["declaration", "place"] => note(key::DECLARATION_PLACE),
        ["declaration", "date"] => note(key::DECLARATION_DATE),
        ["declaration", ..] => format!("{APP}/cac:EndorserParty/cac:SignatoryContact/cbc:Name"),
        ["certification", "authority", rest @ ..] => {
            party(&format!("{ENDORSE}/cac:EndorserParty/cac:Party"), rest)
        }
        ["certification", "place"] => note(key::CERTIFICATION_PLACE),
        ["certification", "date"] => format!("{ROOT}/cbc:IssueDate"),
        ["certification", "officer"] => format!("{ENDORSE}/cac:EndorserParty/cac:SignatoryContact/cbc:Name"),
        ["certification", ..] => ENDORSE.to_owned(),
        ["official_use", "reason"] => note(key::OFFICIAL_USE_REASON),
        ["official_use", ..] => note(key::OFFICIAL_USE),
        ["flags", "third_party_invoicing", rest @ ..] => party(&invoicer(0), rest),
        ["flags", "exhibition", "name"] => format!("{DELIVERY}/cac:DeliveryLocation/cbc:Name"),
        ["flags", "exhibition", "place"] => {
            format!("{DELIVERY}/cac:DeliveryLocation/cac:Address/cac:AddressLine/cbc:Line")
        }
        ["flags", "exhibition", ..] => format!("{DELIVERY}/cac:DeliveryLocation"),
        ["flags", "back_to_back", rest @ ..] => cert_ref(doc_ref(ROLE_BACK_TO_BACK), rest),
        ["flags", "de_minimis"] => note(key::DE_MINIMIS),
        ["flags", "accumulation"] => note(key::ACCUMULATION),
        ["flags", "partial_cumulation"] => note(key::PARTIAL_CUMULATION),
        ["flags", "issued_retroactively"] => note(key::ISSUED_RETROACTIVELY),
        ["approved_exporter"] => {
            format!("{EXPORTER}/cac:PartyIdentification/cbc:ID[@schemeID='{SCHEME_APPROVED_EXPORTER}']")
        }
        ["remarks"] => format!("{APP}/cbc:Remarks"),
        _ => ROOT.to_owned(),
    }
}
