//! The use cases: everything a person (or a peer) can make the node do, in one place, for
//! every front door. Each use case takes the acting [`User`], its input and the node's
//! [`AppState`] (storage, issuer, exchange, the injected clock) and returns a domain record or
//! a typed [`Error`]. None of them knows HTTP: the JSON API (`crate::http`) is a thin adapter
//! over them, and so is the console.
//!
//! Roles are not checked here: each front door's route table says which roles may call what
//! and enforces it before a use case runs. What a use case does check is the *tenant*: an
//! exporter sees and changes its own company's records only, and another company's records
//! answer [`Error::not_found`], as if they did not exist.
//!
//! - [`applications`]: apply, submit, approve, reject; certificates: revoke, list, statuses;
//!   received certificates.
//! - [`customs`]: declare, decide, re-decide when certificates arrive or verifications are
//!   denied ([`customs::after_arrivals`]), revenue.
//! - [`verifications`]: raise and answer verification requests.
//! - [`users`]: add users (and their companies), names.
//! - [`sessions`]: people signing in to the console: passwords, sessions, invitations.
//! - [`notifications`]: each person's notifications, and where their e-mails go.
//! - [`oversight`]: the audit log and the key folder's expiry dates, for administrators.
//! - [`exchange_admin`]: the exchange as its operator sees it; retrying dead letters.
//! - [`reference`]: `qualify` and the rule lookup.
//! - [`status`]: this node's signed status list, the partners' lists, public verification by
//!   number and check code, and the full check of an uploaded file.

use std::sync::Arc;

use originlink_store::{Ctx, Page, Role, Store, User};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::start::StartError;
use crate::{exchange, issue};

pub mod applications;
pub mod customs;
mod error;
pub mod exchange_admin;
pub mod group_commit;
pub mod notifications;
pub mod oversight;
pub mod reference;
pub mod sessions;
pub mod status;
pub mod users;
pub mod verifications;

pub use error::{Error, Kind, Result};
pub use originlink_service::Clock;

/// What every use case shares: the node's storage, issuer, exchange, customs settings,
/// clock and counters.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The issuing authority: numbering and signing.
    pub issuer: Arc<issue::Issuer>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The exchange with other members (`None` when not configured).
    pub exchange: Option<Arc<exchange::Exchange>>,
    /// Importing customs: agreement policies and risk weights.
    pub customs: Arc<CustomsSetup>,
    /// Wrong console passwords by name (this process).
    pub sign_ins: Arc<crate::throttle::Throttle>,
    /// What the node publishes for anyone, and the public's rate limit.
    pub public: Arc<crate::public::PublicSetup>,
    /// Approvals waiting for their commit (group commit).
    pub approvals: Arc<group_commit::GroupCommit>,
}

/// Importing customs settings: the agreements' policies and the risk weights and thresholds.
#[derive(Debug, Clone, Default)]
pub struct CustomsSetup {
    /// Partial use, validity, verification deadlines … per agreement.
    pub policies: originlink_customs::Policies,
    /// Risk rule weights and thresholds (`[customs.risk]` in the configuration).
    pub risk: originlink_customs::RiskConfig,
}

impl AppState {
    /// Loads the signing key, opens (and pings) storage with the audit key, and anchors the
    /// audit chain's head in its checkpoint.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        let signer = issue::TrustSigner::load(&config.authority.keys)?;
        if signer.country() != Some(config.authority.country.as_str()) {
            return Err(StartError::KeysCountry {
                configured: config.authority.country.clone(),
                found: signer.country().unwrap_or("?").to_owned(),
            });
        }
        let store = crate::audit::open_migrated(config).await?;
        store.ping().await?;
        store.checkpoint_audit().await?;
        let pattern = issue::NumberPattern::parse(&config.authority.number_pattern).map_err(|e| {
            StartError::Store(originlink_store::StoreError::Url(format!("number pattern: {e}")))
        })?;
        let issuer = Arc::new(issue::Issuer {
            authority: config.authority.clone(),
            pattern,
            signer: Arc::new(signer),
        });
        let exchange = exchange::Exchange::load(config, clock.now())?.map(Arc::new);
        let customs = Arc::new(CustomsSetup {
            policies: originlink_customs::Policies::builtin(),
            risk: config.customs.risk.clone(),
        });
        let ca = originlink_trust::keystore::AuthorityDir(config.authority.keys.clone()).ca_cert();
        let mut public = crate::public::PublicSetup::new(config.public.clone(), &ca, exchange.is_some());
        if public.base.is_none()
            && let Some(c) = &config.console
        {
            let scheme = if c.tls_cert.is_some() { "https" } else { "http" };
            public.base = c
                .public_url
                .clone()
                .or_else(|| (!c.listen.ends_with(":0")).then(|| format!("{scheme}://{}", c.listen)));
        }
        let public = Arc::new(public);
        Ok(AppState {
            store,
            issuer,
            clock,
            metrics: Arc::new(Metrics::default()),
            exchange,
            customs,
            sign_ins: Default::default(),
            public,
            approvals: Arc::new(group_commit::GroupCommit::new(config.authority.approvals_per_commit)),
        })
    }

    /// Who acts (the audit log's actor) and when, for a use case run by `user`.
    pub fn ctx(&self, user: &User) -> Ctx {
        Ctx::new(format!("user:{} ({})", user.id, user.name), self.clock.now())
    }

    /// What the exchange works with: this node's storage, clock and counters.
    pub fn exchange_env(&self) -> exchange::Env {
        exchange::Env { store: self.store.clone(), clock: self.clock.clone(), metrics: self.metrics.clone() }
    }

    /// Wakes the outbox worker after a use case wrote messages.
    pub(crate) fn wake_exchange(&self) {
        if let Some(x) = &self.exchange {
            x.wake.notify_one();
        }
    }

    /// The exchange, for use cases that cannot work without it.
    pub(crate) fn exchange(&self) -> Result<Arc<exchange::Exchange>> {
        self.exchange.clone().ok_or_else(Error::no_exchange)
    }
}

/// One page of a list: newest first, `before` is the last id of the previous page, `limit`
/// 1 to 1000 (default 100). An exporter's pages hold its company's records only.
pub fn page(user: &User, limit: Option<i64>, before: Option<i64>) -> Result<Page> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("INVALID_QUERY", "limit", "limit is 1 to 1000"));
    }
    let company_id = if user.role == Role::Exporter { user.company_id.or(Some(-1)) } else { None };
    Ok(Page { company_id, before, limit })
}

/// Whether `user` may see a record of `company_id`. Exporters see their own company only;
/// the issuing authority sees everything it issues.
pub(crate) fn visible(user: &User, company_id: i64) -> bool {
    match user.role {
        Role::Exporter => user.company_id == Some(company_id),
        Role::IssuingOfficer => true,
        Role::CustomsOfficer | Role::Admin => false,
    }
}

/// A date query parameter (`YYYY-MM-DD`); 400 `INVALID_QUERY` naming `field` otherwise.
pub fn query_date(raw: Option<&str>, field: &str) -> Result<Option<chrono::NaiveDate>> {
    raw.map(|d| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| Error::invalid("INVALID_QUERY", field, format!("{field}: a date YYYY-MM-DD")))
    })
    .transpose()
}

/// A text query parameter: trimmed, `None` when empty; over 200 characters, or holding a
/// control character, is 400 `INVALID_QUERY`.
pub fn query_text(raw: Option<&str>, field: &str) -> Result<Option<String>> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > 200 => {
            Err(Error::invalid("INVALID_QUERY", field, format!("{field}: at most 200 characters")))
        }
        // No number or name holds a control character, and the databases cannot be asked
        // for one (PostgreSQL refuses a NUL in text; an FTS5 query cannot hold one).
        Some(t) if t.chars().any(char::is_control) => Err(Error::invalid(
            "INVALID_QUERY",
            field,
            format!(
                "{field}: control characters (a NUL, a tab, a line break) cannot be searched for; type the text as it is printed"
            ),
        )),
        t => Ok(t.map(str::to_owned)),
    }
}

/// An enumerated query parameter parsed by `parse`; 400 `INVALID_QUERY` listing `allowed`.
pub fn query_enum<T>(
    raw: Option<&str>,
    field: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Option<T>> {
    raw.map(|v| {
        parse(v).ok_or_else(|| Error::invalid("INVALID_QUERY", field, format!("{field}: one of {allowed}")))
    })
    .transpose()
}

/// A reason as entered (reject, revoke): trimmed, 1 to 1000 characters.
pub fn reason(raw: &str) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > 1000 {
        return Err(Error::invalid(
            "REASON_REQUIRED",
            "reason",
            "a reason of 1 to 1000 characters is required",
        ));
    }
    Ok(t.to_owned())
}
