//! The utilization ledger arithmetic: what is left of each certificate item, consumption that
//! never goes below zero, and the utilization status reported back to the issuing country.
//!
//! The node keeps the ledger rows in its database and applies [`Ledger::consume`]'s result in
//! the same transaction that locks them; this module only decides and counts.

use std::collections::{BTreeMap, BTreeSet};

use originlink_model::{Certificate, Decimal, PartialUse, Quantity, UnitCode};
use serde::{Deserialize, Serialize};

use crate::reason::ReasonCode;

/// What one certificate item holds and how much of it has been used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemBalance {
    /// The certificate item number (box 5).
    pub item: u32,
    /// The item's unit.
    pub unit: UnitCode,
    /// The quantity on the certificate.
    pub certified: Decimal,
    /// The quantity granted so far.
    pub used: Decimal,
}

impl ItemBalance {
    /// What is left: certified minus used, never below zero.
    pub fn remaining(&self) -> Decimal {
        (self.certified - self.used).max(Decimal::ZERO)
    }
}

/// The ledger of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    items: BTreeMap<u32, ItemBalance>,
    declarations: BTreeSet<String>,
}

/// Why a consumption was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The certificate has no such item.
    #[error("the certificate has no item {0}")]
    ItemUnknown(u32),
    /// The quantity is in another unit than the item.
    #[error("item {item} is in {item_unit}, the claim in {claimed}")]
    UnitMismatch {
        /// The item.
        item: u32,
        /// The item's unit.
        item_unit: UnitCode,
        /// The claim's unit.
        claimed: UnitCode,
    },
    /// Nothing is left of the item, or (partial use `none`) another declaration used the
    /// certificate.
    #[error("{0}")]
    AlreadyUtilized(String),
    /// Less is left than claimed.
    #[error("item {item}: {requested} claimed, {remaining} left")]
    QuantityExceeded {
        /// The item.
        item: u32,
        /// What was claimed.
        requested: Decimal,
        /// What is left.
        remaining: Decimal,
    },
}

impl LedgerError {
    /// The reason code this refusal gives a line.
    pub fn reason(&self) -> ReasonCode {
        match self {
            LedgerError::ItemUnknown(_) => ReasonCode::HsMismatch,
            LedgerError::UnitMismatch { .. } => ReasonCode::UnitMismatch,
            LedgerError::AlreadyUtilized(_) => ReasonCode::AlreadyUtilized,
            LedgerError::QuantityExceeded { .. } => ReasonCode::QuantityExceeded,
        }
    }
}

/// Whether a declaration exhausted the certificate, as UNCL 1373 puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Utilization {
    /// Nothing used yet.
    Unused,
    /// Some quantity is left on at least one item: "not exhausted".
    Partially,
    /// Every item is used up: "exhausted".
    Fully,
}

/// How the certificate reached the customs station, which selects the UNCL 1373 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lodging {
    /// Attached to the declaration (codes 12 and 13).
    Attached,
    /// Lodged before the declaration, as an e-CO received through the exchange is (14, 15).
    PreviouslyLodged,
}

impl Utilization {
    /// The UNCL 1373 document status code: 12 exhausted and attached, 13 not exhausted and
    /// attached, 14 exhausted and previously lodged, 15 not exhausted and previously lodged.
    /// `None` while unused (nothing to report).
    pub fn uncl_1373(&self, lodging: Lodging) -> Option<u8> {
        match (self, lodging) {
            (Utilization::Unused, _) => None,
            (Utilization::Fully, Lodging::Attached) => Some(12),
            (Utilization::Partially, Lodging::Attached) => Some(13),
            (Utilization::Fully, Lodging::PreviouslyLodged) => Some(14),
            (Utilization::Partially, Lodging::PreviouslyLodged) => Some(15),
        }
    }
}

/// A consumption that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumption {
    /// The item.
    pub item: u32,
    /// The quantity taken.
    pub quantity: Decimal,
    /// What is left of the item afterwards.
    pub remaining: Decimal,
    /// The certificate's utilization afterwards.
    pub utilization: Utilization,
}

impl Ledger {
    /// A fresh ledger: every item of the certificate at its full quantity.
    pub fn new(cert: &Certificate) -> Self {
        let items = cert
            .items
            .iter()
            .map(|i| {
                let b = ItemBalance {
                    item: i.number,
                    unit: i.quantity.unit(),
                    certified: i.quantity.value(),
                    used: Decimal::ZERO,
                };
                (i.number, b)
            })
            .collect();
        Ledger { items, declarations: BTreeSet::new() }
    }

    /// A ledger rebuilt from stored rows: the certificate and what each declaration used
    /// (`(declaration number, item, quantity)`). Rows for unknown items are ignored.
    pub fn from_uses<'a>(
        cert: &Certificate,
        uses: impl IntoIterator<Item = (&'a str, u32, Decimal)>,
    ) -> Self {
        let mut l = Ledger::new(cert);
        for (decl, item, q) in uses {
            if let Some(b) = l.items.get_mut(&item) {
                // Saturates: an absurd stored total reads as "nothing left", never a panic.
                b.used = b.used.checked_add(q).unwrap_or(Decimal::MAX);
                l.declarations.insert(decl.to_owned());
            }
        }
        l
    }

    /// The balance of one item.
    pub fn item(&self, item: u32) -> Option<&ItemBalance> {
        self.items.get(&item)
    }

    /// Every item's balance, by item number.
    pub fn items(&self) -> impl Iterator<Item = &ItemBalance> {
        self.items.values()
    }

    /// What is left of an item.
    pub fn remaining(&self, item: u32) -> Option<Decimal> {
        self.items.get(&item).map(ItemBalance::remaining)
    }

    /// The declarations that used the certificate.
    pub fn declarations(&self) -> &BTreeSet<String> {
        &self.declarations
    }

    /// Whether a declaration other than `declaration` used the certificate.
    pub fn used_by_other(&self, declaration: &str) -> bool {
        self.declarations.iter().any(|d| d != declaration)
    }

    /// Checks a consumption without applying it. The order of checks fixes which error a
    /// claim gets: unknown item, unit, partial-use policy, nothing left, not enough left.
    pub fn check(
        &self,
        declaration: &str,
        item: u32,
        quantity: Quantity,
        policy: PartialUse,
    ) -> Result<(), LedgerError> {
        let b = self.items.get(&item).ok_or(LedgerError::ItemUnknown(item))?;
        if b.unit != quantity.unit() {
            return Err(LedgerError::UnitMismatch { item, item_unit: b.unit, claimed: quantity.unit() });
        }
        if policy == PartialUse::None && self.used_by_other(declaration) {
            let others: Vec<&str> =
                self.declarations.iter().filter(|d| *d != declaration).map(String::as_str).collect();
            return Err(LedgerError::AlreadyUtilized(format!(
                "partial use is not allowed and declaration {} used the certificate",
                others.join(", ")
            )));
        }
        let remaining = b.remaining();
        if remaining.is_zero() {
            return Err(LedgerError::AlreadyUtilized(format!(
                "item {item}: all {} {} already used",
                b.certified.normalize(),
                b.unit
            )));
        }
        if quantity.value() > remaining {
            return Err(LedgerError::QuantityExceeded {
                item,
                requested: quantity.value(),
                remaining: remaining.normalize(),
            });
        }
        Ok(())
    }

    /// Takes `quantity` of `item` for `declaration`, or refuses and changes nothing.
    pub fn consume(
        &mut self,
        declaration: &str,
        item: u32,
        quantity: Quantity,
        policy: PartialUse,
    ) -> Result<Consumption, LedgerError> {
        self.check(declaration, item, quantity, policy)?;
        let b = self.items.get_mut(&item).ok_or(LedgerError::ItemUnknown(item))?;
        b.used += quantity.value();
        let remaining = b.remaining().normalize();
        self.declarations.insert(declaration.to_owned());
        Ok(Consumption { item, quantity: quantity.value(), remaining, utilization: self.utilization() })
    }

    /// The utilization to report under a partial-use policy: under `none`, a certificate one
    /// declaration used cannot serve another, so it reports as fully utilized.
    pub fn utilization_for(&self, policy: PartialUse) -> Utilization {
        match self.utilization() {
            Utilization::Partially if policy == PartialUse::None => Utilization::Fully,
            u => u,
        }
    }

    /// Unused, partially or fully utilized, by the quantities alone.
    pub fn utilization(&self) -> Utilization {
        if self.items.values().all(|b| b.used.is_zero()) {
            Utilization::Unused
        } else if self.items.values().all(|b| b.remaining().is_zero()) {
            Utilization::Fully
        } else {
            Utilization::Partially
        }
    }
}
