//! Matching a declaration line to its certificate and deciding the preference, with every
//! reason that applies.
//!
//! [`decide`] is pure: the caller passes the certificate as received ([`CertificateFacts`]:
//! the parsed e-CO, its verification status, when it arrived and its ledger) and the policy
//! table. [`decide_declaration`] decides all lines of a declaration in order, consuming from
//! the ledgers in between, so that two lines of one declaration cannot claim the same units.

use chrono::{DateTime, Days, Months, NaiveDate, Utc};
use originlink_model::{Certificate, CertificateNumber, CountryCode, Item, PartialUse, Quantity};
use serde::{Deserialize, Serialize};

use crate::declaration::{Declaration, EcoRef, Line};
use crate::ledger::{Ledger, LedgerError};
use crate::policy::{CustomsPolicy, Policies};
use crate::reason::{Reason, ReasonCode};

/// What the verification of a received certificate concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum VerificationStatus {
    /// Signed by a trusted authority of the issuing country.
    Valid,
    /// Definitely not acceptable; `reason` is the verifier's code (e.g. `SIGNATURE_INVALID`).
    Invalid {
        /// The verifier's reason code.
        reason: String,
    },
    /// Not decidable with the trust information at hand ("cannot verify right now" is not
    /// "invalid"): the line stays pending.
    CannotVerify {
        /// The verifier's reason code.
        reason: String,
    },
    /// Revoked by the issuing country.
    Revoked,
    /// Replaced by a newer version.
    Superseded,
}

/// A received certificate as the decision sees it.
#[derive(Debug, Clone)]
pub struct CertificateFacts {
    /// The parsed e-CO.
    pub certificate: Certificate,
    /// Its verification status.
    pub status: VerificationStatus,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Its utilization ledger (remaining quantities, declarations that used it).
    pub ledger: Ledger,
    /// Whether a verification request about it ended in denial.
    pub verification_denied: bool,
}

impl CertificateFacts {
    /// A received, valid certificate, not yet used.
    pub fn new(certificate: Certificate, received_at: DateTime<Utc>) -> Self {
        let ledger = Ledger::new(&certificate);
        CertificateFacts {
            certificate,
            status: VerificationStatus::Valid,
            received_at,
            ledger,
            verification_denied: false,
        }
    }

    /// Replaces the verification status.
    pub fn with_status(mut self, status: VerificationStatus) -> Self {
        self.status = status;
        self
    }

    /// Replaces the ledger.
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = ledger;
        self
    }

    /// Whether this is the certificate `(country, number)`.
    pub fn is(&self, country: CountryCode, number: &CertificateNumber) -> bool {
        self.certificate.exporting_country == country && self.certificate.number.as_ref() == Some(number)
    }
}

/// The outcome of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Preference granted; `consume` says what to take from the ledger.
    Granted,
    /// Preference denied; the reasons say why.
    Denied,
    /// Awaiting the certificate (`PENDING`) or its verification (`CO_NOT_VERIFIED`).
    Pending,
    /// No preference claimed (MFN): nothing to decide.
    NotClaimed,
}

/// The decision on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDecision {
    /// The line number.
    pub line_no: u32,
    /// Granted, denied, pending or not claimed.
    pub outcome: Outcome,
    /// Every reason that applies (empty when granted or not claimed).
    pub reasons: Vec<Reason>,
    /// The certificate item the line was matched to (same HS 6 and unit), if any.
    pub matched_item: Option<u32>,
    /// What to take from the matched item's ledger; only when granted.
    pub consume: Option<Quantity>,
}

impl LineDecision {
    /// Whether a reason with this code is present.
    pub fn has(&self, code: ReasonCode) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }

    /// The reason codes, in order.
    pub fn codes(&self) -> Vec<ReasonCode> {
        self.reasons.iter().map(|r| r.code).collect()
    }
}

/// Normalizes a company name for comparison: lower case, punctuation as spaces, whitespace
/// collapsed, and common legal-form words dropped from the end (`Co., Ltd.`, `Public`,
/// `Pte.`, `Sdn. Bhd.`, `JSC`, `K.K.` …) and from the start (`PT`, `CV`, `The`).
pub fn normalize_name(name: &str) -> String {
    const SUFFIXES: &[&str] = &[
        "co",
        "company",
        "ltd",
        "limited",
        "pcl",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "plc",
        "public",
        "pte",
        "pty",
        "sdn",
        "bhd",
        "berhad",
        "jsc",
        "llc",
        "lp",
        "gmbh",
        "ag",
        "sa",
        "kk",
        "k",
        "tbk",
        "and",
    ];
    const PREFIXES: &[&str] = &["pt", "cv", "the"];
    let lowered: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect();
    let tokens: Vec<&str> = lowered.split_whitespace().collect();
    let mut start = 0;
    let mut end = tokens.len();
    while end > start && SUFFIXES.contains(&tokens[end - 1]) {
        end -= 1;
    }
    while start < end && PREFIXES.contains(&tokens[start]) {
        start += 1;
    }
    if start == end {
        // A name made only of legal-form words: compare it whole.
        return tokens.join(" ");
    }
    tokens[start..end].join(" ")
}

/// Normalizes an identifier (registration or invoice number): upper case, only letters and
/// digits.
pub fn normalize_id(id: &str) -> String {
    id.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

/// The last valid day of a certificate under a policy (inclusive), if it was issued.
pub fn valid_until(cert: &Certificate, policy: &CustomsPolicy) -> Option<NaiveDate> {
    cert.issue_date()?.checked_add_months(Months::new(policy.validity_months))?.pred_opt()
}

/// The last day the certificate may arrive for a line, under a policy.
pub fn proof_deadline(line: &Line, decl: &Declaration, policy: &CustomsPolicy) -> Option<NaiveDate> {
    let days = match line.eco {
        EcoRef::Pending => policy.pending_days,
        EcoRef::Issued { .. } => policy.late_proof_days,
    };
    decl.declaration_date.checked_add_days(Days::new(u64::from(days)))
}

/// Decides one line. `facts` is the received certificate the line refers to (for a `PENDING`
/// line: the certificate it was matched to, once one arrived), or `None`.
pub fn decide(
    line: &Line,
    decl: &Declaration,
    facts: Option<&CertificateFacts>,
    policies: &Policies,
) -> LineDecision {
    let base = decl.line_pointer(line.line_no);
    let field = |f: &str| Some(format!("{base}/{f}"));
    let mut d = LineDecision {
        line_no: line.line_no,
        outcome: Outcome::Denied,
        reasons: Vec::new(),
        matched_item: None,
        consume: None,
    };
    let push = |d: &mut LineDecision, code, detail: String, f: Option<String>| {
        d.reasons.push(Reason::new(code, detail, f));
    };

    let Some(claimed) = line.claimed_agreement else {
        d.outcome = Outcome::NotClaimed;
        return d;
    };

    let facts = match (&line.eco, facts) {
        (EcoRef::Pending, None) => {
            push(&mut d, ReasonCode::Pending, "the certificate is awaited".into(), field("eco"));
            d.outcome = Outcome::Pending;
            return d;
        }
        (EcoRef::Issued { issuing_country, number }, None) => {
            push(
                &mut d,
                ReasonCode::CoNotReceived,
                format!("certificate {issuing_country} {number} has not been received"),
                field("eco"),
            );
            return d;
        }
        (EcoRef::Issued { issuing_country, number }, Some(f)) if !f.is(*issuing_country, number) => {
            push(
                &mut d,
                ReasonCode::CoNotReceived,
                format!(
                    "certificate {issuing_country} {number} has not been received (the one given is {} {})",
                    f.certificate.exporting_country,
                    f.certificate.number.as_ref().map(CertificateNumber::as_str).unwrap_or("without number")
                ),
                field("eco"),
            );
            return d;
        }
        (_, Some(f)) => f,
    };
    let cert = &facts.certificate;
    let policy = policies.get(cert.agreement, decl.importing_country);

    // The document itself.
    match &facts.status {
        VerificationStatus::Valid => {}
        VerificationStatus::Invalid { reason } => {
            push(&mut d, ReasonCode::CoInvalid, reason.clone(), field("eco"));
        }
        VerificationStatus::CannotVerify { reason } => {
            push(&mut d, ReasonCode::CoNotVerified, reason.clone(), field("eco"));
        }
        VerificationStatus::Revoked => {
            push(&mut d, ReasonCode::CoRevoked, "revoked by the issuing country".into(), field("eco"));
        }
        VerificationStatus::Superseded => {
            push(&mut d, ReasonCode::CoSuperseded, "replaced by a newer version".into(), field("eco"));
        }
    }
    if facts.verification_denied {
        push(
            &mut d,
            ReasonCode::VerificationDenied,
            "a verification of this certificate ended in denial".into(),
            field("eco"),
        );
    }
    match valid_until(cert, &policy) {
        None => push(
            &mut d,
            ReasonCode::CoInvalid,
            "NOT_CERTIFIED: the certificate has no issue date".into(),
            field("eco"),
        ),
        Some(until) if decl.declaration_date > until => push(
            &mut d,
            ReasonCode::CoExpired,
            format!(
                "valid until {until} ({} months from issue); declared {}",
                policy.validity_months, decl.declaration_date
            ),
            Some("/declaration_date".into()),
        ),
        Some(_) => {}
    }
    if let Some(deadline) = proof_deadline(line, decl, &policy) {
        let received = facts.received_at.date_naive();
        if received > deadline {
            push(
                &mut d,
                ReasonCode::LateProof,
                format!("received {received} (UTC); the certificate had to arrive by {deadline}"),
                field("eco"),
            );
        }
    }

    // Parties and agreement.
    if cert.importing_country != decl.importing_country {
        push(
            &mut d,
            ReasonCode::WrongImportingCountry,
            format!("certificate for {}, declaration in {}", cert.importing_country, decl.importing_country),
            Some("/importing_country".into()),
        );
    }
    if !same_importer(decl, cert) {
        push(
            &mut d,
            ReasonCode::ImporterMismatch,
            format!("consignee {:?}, importer {:?}", cert.consignee.name, decl.importer.name),
            Some("/importer".into()),
        );
    }
    if cert.agreement != claimed {
        push(
            &mut d,
            ReasonCode::AgreementMismatch,
            format!("certificate under {}, {} claimed", cert.agreement, claimed),
            field("claimed_agreement"),
        );
    }

    // The goods.
    let matched = match_item(line, decl, facts, policy.partial_use);
    match &matched {
        Match::NoSubheading => push(
            &mut d,
            ReasonCode::HsMismatch,
            format!("no item has subheading {}", line.hs_code.subheading()),
            field("hs_code"),
        ),
        Match::NoUnit(units) => push(
            &mut d,
            ReasonCode::UnitMismatch,
            format!(
                "items with subheading {} are in {units}, the line in {}",
                line.hs_code.subheading(),
                line.quantity.unit()
            ),
            field("unit"),
        ),
        Match::Item(item, Err(e)) => {
            d.matched_item = Some(item.number);
            push(&mut d, e.reason(), e.to_string(), field("quantity"));
        }
        Match::Item(item, Ok(())) => d.matched_item = Some(item.number),
    }
    if let Some(inv) = &line.invoice_number {
        let want = normalize_id(inv);
        let ok = match &matched {
            Match::Item(item, _) => normalize_id(&item.invoice.number) == want,
            _ => cert.items.iter().any(|i| normalize_id(&i.invoice.number) == want),
        };
        if !ok {
            let on_cert = match &matched {
                Match::Item(item, _) => item.invoice.number.clone(),
                _ => {
                    let mut v: Vec<&str> = cert.items.iter().map(|i| i.invoice.number.as_str()).collect();
                    v.dedup();
                    v.join(", ")
                }
            };
            push(
                &mut d,
                ReasonCode::InvoiceMismatch,
                format!("certificate {on_cert:?}, line {inv:?}"),
                field("invoice_number"),
            );
        }
    }

    d.outcome = if d.reasons.is_empty() {
        d.consume = Some(line.quantity);
        Outcome::Granted
    } else if d.reasons.iter().all(|r| r.code.is_pending()) {
        Outcome::Pending
    } else {
        Outcome::Denied
    };
    d
}

fn same_importer(decl: &Declaration, cert: &Certificate) -> bool {
    match (&decl.importer.id, &cert.consignee.id) {
        (Some(a), Some(b)) => normalize_id(a) == normalize_id(b),
        _ => normalize_name(&decl.importer.name) == normalize_name(&cert.consignee.name),
    }
}

enum Match<'c> {
    NoSubheading,
    NoUnit(String),
    Item(&'c Item, Result<(), LedgerError>),
}

/// Picks the item: same HS 6 and unit; of several, the first (by item number) with enough
/// left; if none has enough, the one with most left (its error explains why).
fn match_item<'c>(
    line: &Line,
    decl: &Declaration,
    facts: &'c CertificateFacts,
    policy: PartialUse,
) -> Match<'c> {
    let cert = &facts.certificate;
    let same_hs: Vec<&Item> =
        cert.items.iter().filter(|i| i.hs.subheading() == line.hs_code.subheading()).collect();
    if same_hs.is_empty() {
        return Match::NoSubheading;
    }
    let same_unit: Vec<&Item> =
        same_hs.iter().copied().filter(|i| i.quantity.unit() == line.quantity.unit()).collect();
    if same_unit.is_empty() {
        let mut units: Vec<&str> = same_hs.iter().map(|i| i.quantity.unit().as_str()).collect();
        units.sort_unstable();
        units.dedup();
        return Match::NoUnit(units.join(", "));
    }
    let mut best: Option<(&Item, Result<(), LedgerError>)> = None;
    for item in &same_unit {
        let r = facts.ledger.check(&decl.number, item.number, line.quantity, policy);
        if r.is_ok() {
            return Match::Item(item, r);
        }
        let left = facts.ledger.remaining(item.number).unwrap_or_default();
        let better = match &best {
            None => true,
            Some((b, _)) => left > facts.ledger.remaining(b.number).unwrap_or_default(),
        };
        if better {
            best = Some((item, r));
        }
    }
    match best {
        Some((item, r)) => Match::Item(item, r),
        None => Match::NoSubheading,
    }
}

/// Decides every line of a declaration. `certificates` holds the received certificates the
/// lines may refer to; a granted line's quantity is consumed from its certificate's ledger
/// before the next line is decided. `PENDING` lines are decided without a certificate (use
/// [`is_candidate`] to match one when it arrives).
pub fn decide_declaration(
    decl: &Declaration,
    certificates: &mut [CertificateFacts],
    policies: &Policies,
) -> Vec<LineDecision> {
    decl.lines
        .iter()
        .map(|line| {
            let idx = match &line.eco {
                EcoRef::Issued { issuing_country, number } => {
                    certificates.iter().position(|f| f.is(*issuing_country, number))
                }
                EcoRef::Pending => None,
            };
            let facts = idx.map(|i| &certificates[i]);
            let d = decide(line, decl, facts, policies);
            if let (Some(i), Some(item), Some(q)) = (idx, d.matched_item, d.consume) {
                let f = &mut certificates[i];
                let policy = policies.get(f.certificate.agreement, decl.importing_country).partial_use;
                // Checked by `decide` against this very ledger; a refusal here cannot happen.
                let _ = f.ledger.consume(&decl.number, item, q, policy);
            }
            d
        })
        .collect()
}

/// Whether a received certificate can serve a `PENDING` line: addressed to the declaration's
/// country and importer, under the claimed agreement, not revoked, superseded or invalid, with
/// an item of the line's HS 6 and unit (and invoice, when the line gives one) that has enough
/// left. The node runs this for each pending line when a certificate arrives, then [`decide`]s
/// the line with it.
pub fn is_candidate(line: &Line, decl: &Declaration, facts: &CertificateFacts, policies: &Policies) -> bool {
    if line.eco != EcoRef::Pending {
        return false;
    }
    let cert = &facts.certificate;
    let policy = policies.get(cert.agreement, decl.importing_country);
    matches!(facts.status, VerificationStatus::Valid | VerificationStatus::CannotVerify { .. })
        && line.claimed_agreement == Some(cert.agreement)
        && cert.importing_country == decl.importing_country
        && same_importer(decl, cert)
        && match match_item(line, decl, facts, policy.partial_use) {
            Match::Item(item, Ok(())) => line
                .invoice_number
                .as_ref()
                .is_none_or(|inv| normalize_id(inv) == normalize_id(&item.invoice.number)),
            _ => false,
        }
}
