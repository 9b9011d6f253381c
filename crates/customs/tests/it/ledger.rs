//! The ledger: partial use across declarations, policy `none`, refusals that change
//! nothing, utilization codes, and a property: consumption never exceeds the certificate.

use originlink_customs::{Ledger, LedgerError, Lodging, ReasonCode, Utilization};
use originlink_model::{Decimal, PartialUse, Quantity};
use proptest::prelude::*;

use crate::common::cert;

fn kg(s: &str) -> Quantity {
    Quantity::parse(s, "KGM").unwrap()
}
fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn partial_use_across_declarations() {
    // Item 1: 250 KGM.
    let mut l = Ledger::new(&cert());
    assert_eq!(l.utilization(), Utilization::Unused);
    assert_eq!(l.utilization().uncl_1373(Lodging::PreviouslyLodged), None);
    let c = l.consume("D1", 1, kg("100"), PartialUse::Allowed).unwrap();
    assert_eq!((c.remaining, c.utilization), (dec("150"), Utilization::Partially));
    assert_eq!(c.utilization.uncl_1373(Lodging::PreviouslyLodged), Some(15));
    assert_eq!(c.utilization.uncl_1373(Lodging::Attached), Some(13));
    l.consume("D2", 1, kg("149.5"), PartialUse::Allowed).unwrap();
    let e = l.consume("D3", 1, kg("0.6"), PartialUse::Allowed).unwrap_err();
    assert_eq!(e, LedgerError::QuantityExceeded { item: 1, requested: dec("0.6"), remaining: dec("0.5") });
    assert_eq!(e.reason(), ReasonCode::QuantityExceeded);
    assert_eq!(l.remaining(1), Some(dec("0.5")), "a refusal changes nothing");
    l.consume("D3", 1, kg("0.5"), PartialUse::Allowed).unwrap();
    let e = l.consume("D4", 1, kg("0.000001"), PartialUse::Allowed).unwrap_err();
    assert_eq!(e.reason(), ReasonCode::AlreadyUtilized);
    // Items 2 and 3 are untouched: still partially utilized.
    assert_eq!(l.utilization(), Utilization::Partially);
    let h87 = |s: &str| Quantity::parse(s, "H87").unwrap();
    l.consume("D4", 2, h87("2040"), PartialUse::Allowed).unwrap();
    let c = l.consume("D4", 3, h87("24"), PartialUse::Allowed).unwrap();
    assert_eq!(c.utilization, Utilization::Fully);
    assert_eq!(c.utilization.uncl_1373(Lodging::PreviouslyLodged), Some(14));
    assert_eq!(c.utilization.uncl_1373(Lodging::Attached), Some(12));
    assert_eq!(l.declarations().len(), 4);
}

#[test]
fn policy_none_lets_one_declaration_use_the_certificate() {
    let mut l = Ledger::new(&cert());
    l.consume("D1", 1, kg("10"), PartialUse::None).unwrap();
    // The same declaration may take more (another line of it).
    l.consume("D1", 1, kg("10"), PartialUse::None).unwrap();
    let e = l.consume("D2", 1, kg("10"), PartialUse::None).unwrap_err();
    assert!(matches!(e, LedgerError::AlreadyUtilized(ref m) if m.contains("D1")), "{e}");
    assert_eq!(l.remaining(1), Some(dec("230")));
    // Under `none` one use already exhausts the certificate for the status message.
    assert_eq!(l.utilization(), Utilization::Partially);
    assert_eq!(l.utilization_for(PartialUse::None), Utilization::Fully);
    assert_eq!(l.utilization_for(PartialUse::Allowed), Utilization::Partially);
    assert_eq!(Ledger::new(&cert()).utilization_for(PartialUse::None), Utilization::Unused);
    // Under `allowed` the same ledger accepts D2.
    l.consume("D2", 1, kg("10"), PartialUse::Allowed).unwrap();
}

#[test]
fn unit_and_item_are_checked() {
    let mut l = Ledger::new(&cert());
    let e = l.consume("D1", 1, Quantity::parse("1", "TNE").unwrap(), PartialUse::Allowed).unwrap_err();
    assert_eq!(e.reason(), ReasonCode::UnitMismatch);
    let e = l.consume("D1", 9, kg("1"), PartialUse::Allowed).unwrap_err();
    assert_eq!(e, LedgerError::ItemUnknown(9));
    assert_eq!(l.utilization(), Utilization::Unused);
}

#[test]
fn rebuilt_from_stored_uses() {
    let c = cert();
    let l = Ledger::from_uses(&c, [("D1", 1, dec("100")), ("D2", 1, dec("50")), ("D2", 7, dec("1"))]);
    assert_eq!(l.remaining(1), Some(dec("100")));
    assert_eq!(l.declarations().iter().map(String::as_str).collect::<Vec<_>>(), ["D1", "D2"]);
    // Over-used rows (should never be stored) read as nothing left, never negative.
    let l = Ledger::from_uses(&c, [("D1", 1, dec("300"))]);
    assert_eq!(l.remaining(1), Some(Decimal::ZERO));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random consumptions (declaration, item 1 or 2, quantity in thousandths) under either
    /// policy: the total taken never exceeds the certificate, a refusal changes nothing, and
    /// the ledger agrees with the sum of what was accepted.
    #[test]
    fn consumption_never_exceeds_the_certificate(
        none in any::<bool>(),
        ops in prop::collection::vec((0u8..4, 1u32..=2, 1i64..=120_000), 1..60),
    ) {
        let c = cert();
        let policy = if none { PartialUse::None } else { PartialUse::Allowed };
        let mut l = Ledger::new(&c);
        let mut taken = [Decimal::ZERO; 3];
        for (d, item, milli) in ops {
            let unit = c.items[item as usize - 1].quantity.unit();
            let q = Quantity::new(Decimal::new(milli, 3), unit).unwrap();
            let before = l.clone();
            let left = before.remaining(item).unwrap();
            let name = format!("D{d}");
            match l.consume(&name, item, q, policy) {
                Ok(_) => {
                    prop_assert!(q.value() <= left);
                    taken[item as usize] += q.value();
                }
                Err(_) => {
                    prop_assert_eq!(&l, &before);
                    // Refused only for a reason: too much, or another declaration under `none`.
                    prop_assert!(q.value() > left || (none && before.used_by_other(&name)));
                }
            }
            for i in 1..=2u32 {
                let certified = c.items[i as usize - 1].quantity.value();
                prop_assert!(taken[i as usize] <= certified);
                prop_assert_eq!(l.remaining(i).unwrap(), certified - taken[i as usize]);
            }
            if none {
                prop_assert!(l.declarations().len() <= 1);
            }
        }
    }
}
