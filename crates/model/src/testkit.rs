//! Proptest strategies for other crates' tests (feature `testkit`): [`certificate`] generates
//! valid certificates covering every optional field, both agreements, national HS codes,
//! up to the item limit, and text with XML-special and non-ASCII characters.

use std::sync::LazyLock;

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::Agreement;
use crate::certificate::*;
use crate::codes::{CountryCode, Currency, PackageKind, UnitCode};
use crate::criterion::{Ctc, OriginCriterion};
use crate::hs::{HsCode, Nomenclature};
use crate::money::{Money, Quantity};

/// Free text that round-trips: starts and ends with a visible character, and may hold
/// `&`, `<`, `>`, quotes, accents and CJK characters inside.
pub fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9 &<>'\"éüÅ中文,./()#-]{0,30}[A-Za-z0-9.)])?"
}

/// A valid certificate (validation finds no problem).
pub fn certificate() -> impl Strategy<Value = Certificate> {
    (any::<u64>(), proptest::collection::vec(text(), 16)).prop_map(|(seed, texts)| build(seed, &texts))
}

static SUBHEADINGS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut v: Vec<_> =
        Nomenclature::hs2022().entries().filter(|e| e.code.len() == 6).map(|e| e.code).collect();
    v.sort_unstable();
    v
});

/// SplitMix64: a tiny deterministic generator, so one seed gives one certificate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("listed country")
}

/// Builds one valid certificate from a seed and a pool of texts.
pub fn build(seed: u64, texts: &[String]) -> Certificate {
    let mut r = Rng(seed);
    let mut t = texts.iter().cycle();
    let mut txt = move || t.next().cloned().unwrap_or_else(|| "Text".to_owned());
    let agreement = if r.chance(50) { Agreement::Atiga } else { Agreement::Rcep };
    let s = agreement.settings();
    let from = *r.pick(&s.members);
    let to = loop {
        let c = *r.pick(&s.members);
        if c != from {
            break c;
        }
    };
    let base = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let issue = base + Duration::days(r.below(2500) as i64);
    let retro = r.chance(15);
    let departure = if retro {
        issue - Duration::days(4 + r.below(300) as i64)
    } else {
        issue - Duration::days(r.below(4) as i64)
    };
    let kind = match (agreement, r.below(10)) {
        (Agreement::Rcep, 0) => ProofKind::ApprovedExporterDeclaration,
        (Agreement::Rcep, 1) => ProofKind::ExporterDeclaration,
        _ => ProofKind::Certificate,
    };
    let currency = *r.pick(&["USD", "EUR", "JPY", "THB", "SGD", "KWD"]);
    let currency = Currency::parse(currency).expect("listed currency");
    let partial_cumulation = agreement == Agreement::Atiga && r.chance(20);
    let n_items = if r.chance(10) { 1 + r.below(s.max_items as u64) } else { 1 + r.below(8) } as usize;
    let party = |r: &mut Rng, country: CountryCode, txt: &mut dyn FnMut() -> String| Party {
        name: txt(),
        id: r.chance(60).then(&mut *txt),
        address: Address {
            street: r.chance(70).then(&mut *txt),
            city: r.chance(80).then(&mut *txt),
            postcode: r.chance(40).then(|| format!("{:05}", r.below(99_999))),
            country,
        },
    };
    let exporter = party(&mut r, from, &mut txt);
    let consignee = party(&mut r, to, &mut txt);
    let producer = (agreement == Agreement::Rcep && r.chance(60)).then(|| party(&mut r, from, &mut txt));
    let units = ["KGM", "TNE", "H87", "C62", "LTR", "MTR", "PR", "SET", "DZN", "MTK"];
    let packages = ["CT", "BX", "BG", "PX", "DR", "CS", "PK", "NE", "VR"];
    let mut items = Vec::with_capacity(n_items);
    for i in 0..n_items {
        let sub = *r.pick(&SUBHEADINGS);
        let hs = match (agreement, r.below(4)) {
            (Agreement::Atiga, 0) => format!("{sub}00"),
            (Agreement::Atiga, 1) => format!("{sub}{:04}", r.below(10_000)),
            _ => sub.to_owned(),
        };
        let criterion = if partial_cumulation && r.chance(50) {
            OriginCriterion::PartialCumulation(20 + r.below(20) as u8)
        } else {
            let ctc = *r.pick(&[Ctc::Chapter, Ctc::Heading, Ctc::Subheading]);
            let rvc = 40 + r.below(21) as u8;
            let rvc_ctc = 35 + r.below(10) as u8;
            match agreement {
                Agreement::Atiga => *r.pick(&[
                    OriginCriterion::WhollyObtained,
                    OriginCriterion::ProducedEntirely,
                    OriginCriterion::Rvc(Some(rvc)),
                    OriginCriterion::Ctc(ctc),
                    OriginCriterion::CtcPlusRvc(ctc, rvc_ctc),
                    OriginCriterion::SpecificProcess,
                ]),
                Agreement::Rcep => *r.pick(&[
                    OriginCriterion::WhollyObtained,
                    OriginCriterion::ProducedEntirely,
                    OriginCriterion::CtcUnspecified,
                    OriginCriterion::Rvc(None),
                    OriginCriterion::ChemicalReaction,
                    OriginCriterion::Accumulation,
                    OriginCriterion::DeMinimis,
                ]),
            }
        };
        let minor = currency.minor_units();
        let fob = (criterion.uses_rvc() || r.chance(50)).then(|| {
            let amount = Decimal::new(1 + r.below(10_000_000_000) as i64, minor);
            Money::new(amount, currency).expect("positive amount in minor units")
        });
        let qty = Decimal::new(1 + r.below(100_000_000) as i64, r.below(4) as u32);
        items.push(Item {
            number: i as u32 + 1,
            marks: if r.chance(20) { String::new() } else { txt() },
            packages: Packages {
                count: 1 + r.below(9999) as u32,
                kind: PackageKind::parse(r.pick::<&str>(&packages)).expect("listed"),
            },
            description: txt(),
            hs: HsCode::parse(&hs).expect("subheading from the nomenclature"),
            criterion,
            origin_country: *r.pick(&s.members),
            quantity: Quantity::new(qty, UnitCode::parse(r.pick::<&str>(&units)).expect("listed"))
                .expect("positive"),
            gross_weight: r.chance(70).then(|| {
                Quantity::new(
                    Decimal::new(1 + r.below(10_000_000) as i64, 1),
                    UnitCode::parse("KGM").expect("KGM"),
                )
                .expect("positive")
            }),
            fob,
            invoice: Invoice { number: txt(), date: departure - Duration::days(r.below(30) as i64) },
        });
    }
    let year = issue.format("%Y");
    let certified = kind == ProofKind::Certificate || r.chance(30);
    let issued = certified && r.chance(85);
    let version = if r.chance(15) { 2 + r.below(3) as u32 } else { 1 };
    let other_member = |r: &mut Rng| loop {
        let c = *r.pick(&s.members);
        if c != from {
            break c;
        }
    };
    let back_to_back = r.chance(15).then(|| CertificateRef {
        country: other_member(&mut r),
        number: CertificateNumber::parse(&format!("B2B-{year}-{:06}", r.below(999_999))).expect("number"),
    });
    Certificate {
        agreement,
        kind,
        number: issued.then(|| {
            CertificateNumber::parse(&format!("{from}-{year}-{:06}", r.below(999_999))).expect("number")
        }),
        reference: format!("APP-{}", r.below(1_000_000_000)),
        version,
        replaces: (version > 1).then(|| CertificateRef {
            country: from,
            number: CertificateNumber::parse(&format!("{from}/{year}/{:06}", r.below(999_999)))
                .expect("number"),
        }),
        exporting_country: from,
        importing_country: to,
        exporter,
        producer,
        consignee,
        transport: Transport {
            departure_date: departure,
            mode: *r.pick(&[
                TransportMode::Sea,
                TransportMode::Air,
                TransportMode::Road,
                TransportMode::Rail,
            ]),
            vessel: r.chance(70).then(&mut txt),
            port_of_loading: Port { code: r.chance(50).then(|| format!("{from}ABC")), name: txt() },
            port_of_discharge: Port { code: r.chance(50).then(|| format!("{to}XY2")), name: txt() },
        },
        items,
        declaration: Declaration {
            place: txt(),
            date: issue - Duration::days(r.below(2) as i64),
            signatory: txt(),
        },
        certification: certified.then(|| Certification {
            authority: Party {
                name: txt(),
                id: None,
                address: Address {
                    street: None,
                    city: r.chance(50).then(&mut txt),
                    postcode: None,
                    country: from,
                },
            },
            place: txt(),
            date: issue,
            officer: txt(),
        }),
        official_use: r.chance(10).then(|| {
            let given = r.chance(50);
            OfficialUse { preference_given: given, reason: (!given).then(&mut txt) }
        }),
        flags: Flags {
            third_party_invoicing: r.chance(15).then(|| {
                let c = *r.pick(&["HK", "SG", "CH", "US"]);
                party(&mut r, cc(c), &mut txt)
            }),
            exhibition: r.chance(10).then(|| Exhibition { name: txt(), place: txt() }),
            back_to_back,
            de_minimis: r.chance(20),
            accumulation: r.chance(20),
            partial_cumulation,
            issued_retroactively: retro && certified,
        },
        approved_exporter: (kind == ProofKind::ApprovedExporterDeclaration)
            .then(|| format!("AE-{from}-{:05}", r.below(99_999))),
        remarks: r.chance(30).then(&mut txt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        #[test]
        fn generated_certificates_are_valid(c in certificate()) {
            prop_assert_eq!(crate::validate(&c), vec![]);
        }
    }
}
