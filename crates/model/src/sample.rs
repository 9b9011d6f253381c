//! Realistic sample certificates, for `originlink example`, tests, benchmarks and the demo.
//! Deterministic: the same arguments give the same certificate.

use chrono::{Duration, NaiveDate};

use crate::agreement::Agreement;
use crate::certificate::*;
use crate::codes::{CountryCode, PackageKind};
use crate::criterion::{Ctc, OriginCriterion};
use crate::hs::HsCode;
use crate::money::{Money, Quantity};

struct Place {
    country: &'static str,
    trader: &'static str,
    street: &'static str,
    city: &'static str,
    port: (&'static str, &'static str),
    authority: &'static str,
}

const PLACES: &[Place] = &[
    Place {
        country: "KH",
        trader: "Angkor Agro Exports Co., Ltd.",
        street: "No. 12, Street 598, Sangkat Chrang Chamres",
        city: "Phnom Penh",
        port: ("KHPNH", "Phnom Penh Autonomous Port"),
        authority: "Ministry of Commerce of Cambodia",
    },
    Place {
        country: "TH",
        trader: "Siam Fresh Trading Public Co., Ltd.",
        street: "88 Rama IV Road, Khlong Toei",
        city: "Bangkok",
        port: ("THLCH", "Laem Chabang"),
        authority: "Department of Foreign Trade, Ministry of Commerce",
    },
    Place {
        country: "VN",
        trader: "Saigon Industrial Goods JSC",
        street: "45 Nguyen Hue Boulevard, District 1",
        city: "Ho Chi Minh City",
        port: ("VNSGN", "Ho Chi Minh City (Cat Lai)"),
        authority: "Ministry of Industry and Trade of Viet Nam",
    },
    Place {
        country: "MY",
        trader: "Klang Valley Manufacturing Sdn. Bhd.",
        street: "Lot 7, Jalan Perusahaan 2",
        city: "Shah Alam",
        port: ("MYPKG", "Port Klang"),
        authority: "Ministry of Investment, Trade and Industry",
    },
    Place {
        country: "ID",
        trader: "PT Nusantara Ekspor Mandiri",
        street: "Jl. Jend. Sudirman Kav. 52",
        city: "Jakarta",
        port: ("IDTPP", "Tanjung Priok"),
        authority: "Ministry of Trade of Indonesia",
    },
    Place {
        country: "SG",
        trader: "Lion City Distributors Pte. Ltd.",
        street: "10 Pasir Panjang Road",
        city: "Singapore",
        port: ("SGSIN", "Singapore"),
        authority: "Singapore Customs",
    },
    Place {
        country: "PH",
        trader: "Luzon Export Corporation",
        street: "1200 Roxas Boulevard",
        city: "Manila",
        port: ("PHMNL", "Manila"),
        authority: "Bureau of Customs",
    },
    Place {
        country: "CN",
        trader: "Shenzhen Bright Electronics Co., Ltd.",
        street: "18 Keji Road, Nanshan",
        city: "Shenzhen",
        port: ("CNSZX", "Shenzhen"),
        authority: "General Administration of Customs of China",
    },
    Place {
        country: "JP",
        trader: "Osaka Precision Parts K.K.",
        street: "2-3 Umeda, Kita-ku",
        city: "Osaka",
        port: ("JPOSA", "Osaka"),
        authority: "Japan Chamber of Commerce and Industry",
    },
    Place {
        country: "KR",
        trader: "Busan Marine Products Co., Ltd.",
        street: "77 Jungang-daero, Jung-gu",
        city: "Busan",
        port: ("KRPUS", "Busan"),
        authority: "Korea Customs Service",
    },
    Place {
        country: "AU",
        trader: "Murray Valley Foods Pty Ltd",
        street: "200 Collins Street",
        city: "Melbourne",
        port: ("AUMEL", "Melbourne"),
        authority: "Australian Chamber of Commerce and Industry",
    },
];

fn place(c: CountryCode) -> Place {
    PLACES.iter().find(|p| p.country == c.as_str()).map(|p| Place { ..*p }).unwrap_or(Place {
        country: "",
        trader: "Example Trading Co.",
        street: "1 Harbour Road",
        city: "Capital City",
        port: ("", "Main Port"),
        authority: "Issuing Authority",
    })
}

struct Good {
    hs: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: &'static str,
    per_package: u32,
    unit_price_cents: i64,
}

const GOODS: &[Good] = &[
    Good {
        hs: "1006.30",
        description: "Cambodian jasmine rice, wholly milled, 25 kg bags",
        unit: "KGM",
        kind: "BG",
        per_package: 25,
        unit_price_cents: 98,
    },
    Good {
        hs: "6109.10",
        description: "T-shirts of cotton, knitted, men's",
        unit: "H87",
        kind: "CT",
        per_package: 120,
        unit_price_cents: 310,
    },
    Good {
        hs: "8712.00",
        description: "Bicycles, not motorised, 26-inch",
        unit: "H87",
        kind: "CT",
        per_package: 1,
        unit_price_cents: 8500,
    },
    Good {
        hs: "4011.10",
        description: "New pneumatic radial tyres for motor cars",
        unit: "H87",
        kind: "PK",
        per_package: 4,
        unit_price_cents: 4200,
    },
    Good {
        hs: "0901.11",
        description: "Robusta coffee beans, not roasted",
        unit: "KGM",
        kind: "BG",
        per_package: 60,
        unit_price_cents: 240,
    },
    Good {
        hs: "6403.99",
        description: "Footwear with leather uppers, rubber soles",
        unit: "PR",
        kind: "CT",
        per_package: 24,
        unit_price_cents: 1850,
    },
    Good {
        hs: "1701.99",
        description: "Refined cane sugar",
        unit: "KGM",
        kind: "BG",
        per_package: 50,
        unit_price_cents: 55,
    },
    Good {
        hs: "8516.60",
        description: "Electric rice cookers, 1.8 litre",
        unit: "H87",
        kind: "CT",
        per_package: 6,
        unit_price_cents: 2300,
    },
    Good {
        hs: "9403.60",
        description: "Wooden furniture: dining tables, rubberwood",
        unit: "H87",
        kind: "CT",
        per_package: 1,
        unit_price_cents: 14500,
    },
    Good {
        hs: "0306.17",
        description: "Frozen shrimps, peeled, 1 kg blocks",
        unit: "KGM",
        kind: "CT",
        per_package: 10,
        unit_price_cents: 720,
    },
];

fn criterion(agreement: Agreement, i: usize) -> OriginCriterion {
    match (agreement, i % 5) {
        (Agreement::Atiga, 0) => OriginCriterion::WhollyObtained,
        (Agreement::Atiga, 1) => OriginCriterion::Ctc(Ctc::Heading),
        (Agreement::Atiga, 2) => OriginCriterion::Rvc(Some(40)),
        (Agreement::Atiga, 3) => OriginCriterion::CtcPlusRvc(Ctc::Subheading, 35),
        (Agreement::Atiga, _) => OriginCriterion::Ctc(Ctc::Subheading),
        (Agreement::Rcep, 0) => OriginCriterion::WhollyObtained,
        (Agreement::Rcep, 1) => OriginCriterion::CtcUnspecified,
        (Agreement::Rcep, 2) => OriginCriterion::Rvc(None),
        (Agreement::Rcep, 3) => OriginCriterion::ProducedEntirely,
        (Agreement::Rcep, _) => OriginCriterion::CtcUnspecified,
    }
}

fn party(p: &Place, country: CountryCode, id: &str) -> Party {
    Party {
        name: p.trader.to_owned(),
        id: Some(id.to_owned()),
        address: Address {
            street: Some(p.street.to_owned()),
            city: Some(p.city.to_owned()),
            postcode: None,
            country,
        },
    }
}

/// Builds a valid, issued sample certificate with `items` goods lines (at least one),
/// issued on `issue_date` by `from` for goods going to `to`. `seq` varies numbers and goods.
pub fn sample(
    agreement: Agreement,
    from: CountryCode,
    to: CountryCode,
    issue_date: NaiveDate,
    items: usize,
    seq: u32,
) -> Certificate {
    let src = place(from);
    let dst = place(to);
    let year = issue_date.format("%Y");
    let departure = issue_date - Duration::days(1);
    let invoice_date = issue_date - Duration::days(6);
    let invoice = format!("INV-{year}-{:05}", 100 + seq);
    let usd = crate::Currency::parse("USD").expect("USD is ISO 4217");
    let items = (0..items.max(1))
        .map(|i| {
            let g = &GOODS[(i + seq as usize) % GOODS.len()];
            let packages = 10 + ((i as u32 * 7 + seq) % 90);
            let qty = i64::from(packages * g.per_package);
            let fob_cents = qty * g.unit_price_cents;
            Item {
                number: i as u32 + 1,
                marks: format!("{}/{}/{:03}", from, to, i + 1),
                packages: Packages {
                    count: packages,
                    kind: PackageKind::parse(g.kind).expect("listed kind"),
                },
                description: g.description.to_owned(),
                hs: HsCode::parse(g.hs).expect("sample HS codes exist in HS 2022"),
                criterion: criterion(agreement, i),
                origin_country: from,
                quantity: Quantity::new(qty.into(), crate::UnitCode::parse(g.unit).expect("listed unit"))
                    .expect("positive"),
                gross_weight: Some(
                    Quantity::new(
                        rust_decimal::Decimal::new(qty * 105 / 10 + 25, 1),
                        crate::UnitCode::parse("KGM").expect("listed unit"),
                    )
                    .expect("positive"),
                ),
                fob: Some(Money::new(rust_decimal::Decimal::new(fob_cents, 2), usd).expect("valid amount")),
                invoice: Invoice { number: invoice.clone(), date: invoice_date },
            }
        })
        .collect();
    let authority = Party {
        name: src.authority.to_owned(),
        id: None,
        address: Address { street: None, city: Some(src.city.to_owned()), postcode: None, country: from },
    };
    let port = |p: &Place, c: CountryCode| Port {
        code: (!p.port.0.is_empty() && p.country == c.as_str()).then(|| p.port.0.to_owned()),
        name: p.port.1.to_owned(),
    };
    Certificate {
        agreement,
        kind: ProofKind::Certificate,
        number: Some(
            CertificateNumber::parse(&format!("{from}-{year}-{:06}", 1 + seq)).expect("well-formed number"),
        ),
        reference: format!("APP-{from}-{year}-{:06}", 1 + seq),
        version: 1,
        replaces: None,
        exporting_country: from,
        importing_country: to,
        exporter: party(&src, from, &format!("{from}-VAT-{:08}", 4_100_000 + seq)),
        producer: (agreement == Agreement::Rcep).then(|| Party {
            name: format!("{} (factory)", src.trader),
            id: None,
            address: Address { street: None, city: Some(src.city.to_owned()), postcode: None, country: from },
        }),
        consignee: party(&dst, to, &format!("{to}-TIN-{:08}", 7_200_000 + seq)),
        transport: Transport {
            departure_date: departure,
            mode: TransportMode::Sea,
            vessel: Some(format!("MV Mekong Star V.{}", 200 + seq % 100)),
            port_of_loading: port(&src, from),
            port_of_discharge: port(&dst, to),
        },
        items,
        declaration: Declaration {
            place: src.city.to_owned(),
            date: issue_date - Duration::days(1),
            signatory: "Sokha Chan, Export Manager".to_owned(),
        },
        certification: Some(Certification {
            authority,
            place: src.city.to_owned(),
            date: issue_date,
            officer: "Dara Kim, Certifying Officer".to_owned(),
        }),
        official_use: None,
        flags: Flags::default(),
        approved_exporter: None,
        remarks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_for_every_pair() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        for a in Agreement::ALL {
            for (f, t) in [("KH", "TH"), ("TH", "VN"), ("VN", "KH"), ("MY", "SG")] {
                let c = sample(a, CountryCode::parse(f).unwrap(), CountryCode::parse(t).unwrap(), d, 7, 3);
                assert_eq!(crate::validate(&c), vec![], "{a} {f}->{t}");
            }
        }
        let c = sample(
            Agreement::Rcep,
            CountryCode::parse("CN").unwrap(),
            CountryCode::parse("JP").unwrap(),
            d,
            5,
            0,
        );
        assert_eq!(crate::validate(&c), vec![]);
    }
}
