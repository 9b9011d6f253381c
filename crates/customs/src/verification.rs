//! Verification requests to the issuing country: a small state machine
//! (Open → Answered → Confirmed | Denied; Open → Denied only once overdue), the deadline from
//! the agreement (overridable), the overdue view, and applying a denial to the lines that
//! used the certificate. The clock is always a parameter.

use chrono::{DateTime, Duration, Utc};
use originlink_model::{Agreement, CertificateRef, CountryCode};
use serde::{Deserialize, Serialize};

use crate::decide::{LineDecision, Outcome};
use crate::policy::Policies;
use crate::reason::{Reason, ReasonCode};

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum VerificationState {
    /// Raised, waiting for the issuing country.
    Open,
    /// The issuing officer answered.
    Answered {
        /// When.
        at: DateTime<Utc>,
        /// The answer.
        answer: String,
    },
    /// The answer confirms origin: preference stands.
    Confirmed {
        /// When.
        at: DateTime<Utc>,
    },
    /// Origin not established: preference is denied on the lines that used the certificate.
    Denied {
        /// When.
        at: DateTime<Utc>,
        /// Why (for people; the lines get `VERIFICATION_DENIED`).
        reason: String,
    },
}

/// What a list shows for a request at a given instant: the state, with `Overdue` derived for
/// an open request past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    /// Open, deadline not passed.
    Open,
    /// Open and `now > deadline`.
    Overdue,
    /// Answered.
    Answered,
    /// Confirmed.
    Confirmed,
    /// Denied.
    Denied,
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: cannot {action} a request that is {state}")]
pub struct TransitionError {
    /// `VERIFICATION_TRANSITION` or `VERIFICATION_NOT_OVERDUE`.
    pub code: &'static str,
    /// What was attempted.
    pub action: &'static str,
    /// The state it was in.
    pub state: &'static str,
}

/// A verification request about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRequest {
    /// The certificate asked about.
    pub certificate: CertificateRef,
    /// Its agreement (the deadline comes from it).
    pub agreement: Agreement,
    /// The questions.
    pub questions: Vec<String>,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When the answer is due (an answer at exactly this instant is on time).
    pub deadline: DateTime<Utc>,
    /// The state.
    pub state: VerificationState,
}

impl VerificationRequest {
    /// Raises a request at `now`. The deadline is `now` plus `deadline_days` when given, else
    /// the agreement's `verification_deadline_days` in the importing country's policy.
    pub fn raise(
        certificate: CertificateRef,
        agreement: Agreement,
        importing: CountryCode,
        questions: Vec<String>,
        now: DateTime<Utc>,
        policies: &Policies,
        deadline_days: Option<u32>,
    ) -> Self {
        let days =
            deadline_days.unwrap_or_else(|| policies.get(agreement, importing).verification_deadline_days);
        VerificationRequest {
            certificate,
            agreement,
            questions,
            raised_at: now,
            deadline: now + Duration::days(i64::from(days)),
            state: VerificationState::Open,
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            VerificationState::Open => "open",
            VerificationState::Answered { .. } => "answered",
            VerificationState::Confirmed { .. } => "confirmed",
            VerificationState::Denied { .. } => "denied",
        }
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError { code: "VERIFICATION_TRANSITION", action, state: self.state_name() }
    }

    /// The issuing officer answers (late answers are accepted: the deadline only marks the
    /// request overdue). Only from Open.
    pub fn answer(&mut self, answer: impl Into<String>, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.state {
            VerificationState::Open => {
                self.state = VerificationState::Answered { at: now, answer: answer.into() };
                Ok(())
            }
            _ => Err(self.refuse("answer")),
        }
    }

    /// The importing officer confirms origin. Only from Answered.
    pub fn confirm(&mut self, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.state {
            VerificationState::Answered { .. } => {
                self.state = VerificationState::Confirmed { at: now };
                Ok(())
            }
            _ => Err(self.refuse("confirm")),
        }
    }

    /// The importing officer denies. From Answered; from Open only once overdue (no answer
    /// in time is a ground for denial).
    pub fn deny(&mut self, reason: impl Into<String>, now: DateTime<Utc>) -> Result<(), TransitionError> {
        match self.state {
            VerificationState::Answered { .. } => {}
            VerificationState::Open if self.is_overdue(now) => {}
            VerificationState::Open => {
                return Err(TransitionError {
                    code: "VERIFICATION_NOT_OVERDUE",
                    action: "deny",
                    state: "open",
                });
            }
            _ => return Err(self.refuse("deny")),
        }
        self.state = VerificationState::Denied { at: now, reason: reason.into() };
        Ok(())
    }

    /// Open and past the deadline (`now > deadline`).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == VerificationState::Open && now > self.deadline
    }

    /// The view at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> View {
        match self.state {
            VerificationState::Open if self.is_overdue(now) => View::Overdue,
            VerificationState::Open => View::Open,
            VerificationState::Answered { .. } => View::Answered,
            VerificationState::Confirmed { .. } => View::Confirmed,
            VerificationState::Denied { .. } => View::Denied,
        }
    }

    /// Whether the request ended in denial.
    pub fn is_denied(&self) -> bool {
        matches!(self.state, VerificationState::Denied { .. })
    }
}

/// The overdue requests at `now`, earliest deadline first.
pub fn overdue(requests: &[VerificationRequest], now: DateTime<Utc>) -> Vec<&VerificationRequest> {
    let mut v: Vec<_> = requests.iter().filter(|r| r.is_overdue(now)).collect();
    v.sort_by_key(|r| r.deadline);
    v
}

/// A declaration line that used a certificate, with its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateUse {
    /// The declaration number.
    pub declaration: String,
    /// The certificate the line used.
    pub certificate: CertificateRef,
    /// The line's decision.
    pub decision: LineDecision,
}

/// Applies a denied request: every granted line that used its certificate becomes denied
/// with `VERIFICATION_DENIED` (the quantity it took stays taken: the certificate is
/// discredited). Returns how many lines changed; nothing changes unless the request is
/// denied.
pub fn apply_denial(request: &VerificationRequest, uses: &mut [CertificateUse]) -> usize {
    let VerificationState::Denied { reason, .. } = &request.state else { return 0 };
    let mut n = 0;
    for u in uses.iter_mut().filter(|u| u.certificate == request.certificate) {
        if u.decision.outcome == Outcome::Granted {
            u.decision.outcome = Outcome::Denied;
            u.decision.consume = None;
            u.decision.reasons.push(Reason::new(
                ReasonCode::VerificationDenied,
                format!(
                    "verification of {} {} denied: {reason}",
                    request.certificate.country, request.certificate.number
                ),
                None,
            ));
            n += 1;
        }
    }
    n
}
