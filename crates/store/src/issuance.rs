//! Applications and the certificates issued from them, written once for both backends (a
//! backend implements [`IssuanceTx`]): creating and moving applications, approving (number
//! allocation, signing, superseding) and revoking.
//!
//! Locking, in this order: the application and certificate rows (`FOR UPDATE` where the
//! backend locks), the number sequence row, then the audit head. A failed signing rolls the
//! whole transaction back, with its number.

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::*;
use crate::outbox::{self, OutboxTx};
use crate::{Result, StoreError, timestamp};

/// A certificate row to insert.
#[derive(Debug)]
pub(crate) struct NewCertificate<'a> {
    pub application_id: i64,
    pub company_id: i64,
    pub issuer: &'a str,
    pub number: &'a str,
    pub version: i64,
    pub supersedes: Option<i64>,
    pub signed: &'a [u8],
    pub issued_at: &'a str,
    pub sha256: &'a str,
}

/// What issuing needs from a backend's open transaction.
pub(crate) trait IssuanceTx: AuditTx + OutboxTx {
    /// One application, locked for update (where the backend locks) when `lock`.
    async fn application(&mut self, id: i64, lock: bool) -> Result<Option<Application>>;
    /// One certificate, locked for update (where the backend locks) when `lock`.
    async fn certificate(&mut self, id: i64, lock: bool) -> Result<Option<Certificate>>;
    /// Whether a received certificate exists.
    async fn received_exists(&mut self, id: i64) -> Result<bool>;
    /// Inserts a `draft` application; its id.
    async fn insert_application(&mut self, a: &NewApplication, at: &str) -> Result<i64>;
    /// Replaces the document (with its format) and/or the self-assessment (with its result)
    /// of an application; `None` keeps the stored one.
    async fn set_content(&mut self, id: i64, e: &EditApplication, at: &str) -> Result<()>;
    /// Sets the status and the reason of an application.
    async fn set_status(&mut self, id: i64, to: (ApplicationStatus, Option<&str>), at: &str) -> Result<()>;
    /// The next number of a sequence scope (created at 1); the row stays locked until the
    /// transaction ends, and a rollback gives the number back.
    async fn next_number(&mut self, scope: &str) -> Result<i64>;
    /// Inserts an `issued` certificate; `None` when its (issuer, number, version) is taken.
    async fn insert_certificate(&mut self, c: &NewCertificate<'_>) -> Result<Option<i64>>;
    /// Marks an application approved with its certificate.
    async fn set_approved(&mut self, id: i64, certificate_id: i64, at: &str) -> Result<()>;
    /// Marks a certificate superseded at `at`.
    async fn set_superseded(&mut self, certificate_id: i64, at: &str) -> Result<()>;
    /// Marks a certificate revoked at `at` with a reason.
    async fn set_revoked(&mut self, certificate_id: i64, reason: &str, at: &str) -> Result<()>;
    /// Starts the savepoint of one approval in a batch.
    async fn savepoint(&mut self) -> Result<()>;
    /// Ends it: `keep` releases it, otherwise everything since it is rolled back.
    async fn end_savepoint(&mut self, keep: bool) -> Result<()>;
}

fn not_issued(id: i64, status: CertificateStatus, what: &str) -> StoreError {
    StoreError::conflict(
        "CERTIFICATE_NOT_ISSUED",
        format!("certificate {id} is {status}, only an issued one can be {what}"),
    )
}

/// Creates an application in `draft`: a replacement must name an issued certificate of the
/// same company, a back-to-back one a stored received certificate.
pub(crate) async fn create_application<T: IssuanceTx>(
    tx: &mut T,
    ctx: &Ctx,
    a: &NewApplication,
) -> Result<Application> {
    if let Some(old) = a.replaces {
        match tx.certificate(old, false).await? {
            Some(c) if c.company_id == a.company_id => {
                if c.status != CertificateStatus::Issued {
                    return Err(not_issued(old, c.status, "replaced"));
                }
            }
            _ => return Err(StoreError::NotFound),
        }
    }
    if let Some(rec) = a.back_to_back_of
        && !tx.received_exists(rec).await?
    {
        return Err(StoreError::NotFound);
    }
    let packed = NewApplication { document: crate::text::pack(&a.document), ..a.clone() };
    let id = tx.insert_application(&packed, &timestamp(&ctx.at)).await?;
    let after = app_state(
        ApplicationStatus::Draft,
        &[
            ("company_id", a.company_id.into()),
            ("replaces", a.replaces.into()),
            ("back_to_back_of", a.back_to_back_of.into()),
            ("copied_from", a.copied_from.into()),
        ],
    );
    let event = PendingEvent::new("application.created", format!("application/{id}"), "null".into(), after);
    audit::append(tx, ctx, &[event]).await?;
    tx.application(id, false).await?.ok_or(StoreError::NotFound)
}

/// Moves an application: submit (a draft, or one returned for correction), return for
/// correction, withdraw, reject. Any other move is a conflict naming the state it needs.
pub(crate) async fn transition<T: IssuanceTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    t: &Transition,
) -> Result<Application> {
    use ApplicationStatus::*;
    let app = tx.application(id, true).await?.ok_or(StoreError::NotFound)?;
    let (from, to, action, reason, code): (&[ApplicationStatus], _, _, _, _) = match t {
        Transition::Submit => {
            (&[Draft, Returned], Submitted, "application.submitted", None, "APPLICATION_NOT_DRAFT")
        }
        Transition::Return { reason } => {
            (&[Submitted], Returned, "application.returned", Some(reason), "APPLICATION_NOT_SUBMITTED")
        }
        Transition::Withdraw => {
            (&[Draft, Submitted, Returned], Withdrawn, "application.withdrawn", None, "APPLICATION_NOT_OPEN")
        }
        Transition::Reject { reason } => {
            (&[Submitted], Rejected, "application.rejected", Some(reason), "APPLICATION_NOT_SUBMITTED")
        }
    };
    if !from.contains(&app.status) {
        let needed = from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ");
        return Err(StoreError::conflict(
            code,
            format!("the application is {}, this needs it {needed}", app.status),
        ));
    }
    tx.set_status(id, (to, reason.map(String::as_str)), &timestamp(&ctx.at)).await?;
    let after = app_state(to, &[("reason", reason.cloned().into())]);
    let event = PendingEvent::new(action, format!("application/{id}"), app_state(app.status, &[]), after);
    audit::append(tx, ctx, &[event]).await?;
    tx.application(id, false).await?.ok_or(StoreError::NotFound)
}

/// Replaces the document and/or self-assessment of a draft or returned application
/// (`APPLICATION_NOT_EDITABLE` otherwise), audited as `application.edited` with the SHA-256
/// of the document before and after.
pub(crate) async fn edit<T: IssuanceTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    e: &EditApplication,
) -> Result<Application> {
    let app = tx.application(id, true).await?.ok_or(StoreError::NotFound)?;
    if !matches!(app.status, ApplicationStatus::Draft | ApplicationStatus::Returned) {
        return Err(StoreError::conflict(
            "APPLICATION_NOT_EDITABLE",
            format!("the application is {}, only a draft or returned one can be edited", app.status),
        ));
    }
    let packed = EditApplication {
        document: e.document.as_ref().map(|(format, d)| (format.clone(), crate::text::pack(d))),
        self_assessment: e.self_assessment.clone(),
    };
    tx.set_content(id, &packed, &timestamp(&ctx.at)).await?;
    let sha = |d: &[u8]| crate::hex(ring::digest::digest(&ring::digest::SHA256, d).as_ref());
    let state = |doc: &[u8], sa: Option<&str>| {
        app_state(
            app.status,
            &[("document_sha256", sha(doc).into()), ("self_assessment", sa.is_some().into())],
        )
    };
    let before = state(&app.document, app.self_assessment.as_deref());
    let doc = e.document.as_ref().map_or(app.document.as_slice(), |(_, d)| d.as_slice());
    let sa = e.self_assessment.as_ref().map(|(i, _)| i.as_str()).or(app.self_assessment.as_deref());
    let event = PendingEvent::new("application.edited", format!("application/{id}"), before, state(doc, sa));
    audit::append(tx, ctx, &[event]).await?;
    tx.application(id, false).await?.ok_or(StoreError::NotFound)
}

/// Approves a submitted application: allocates the number (or keeps the replaced
/// certificate's, with the next version), signs, stores, supersedes and enqueues.
pub(crate) async fn approve<T: IssuanceTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    numbering: &Numbering,
    sign: SignFn,
) -> Result<Certificate> {
    let app = tx.application(id, true).await?.ok_or(StoreError::NotFound)?;
    if app.status != ApplicationStatus::Submitted {
        return Err(not_in_state(ApplicationStatus::Submitted, app.status));
    }
    let old = match app.replaces {
        Some(old) => {
            let c = tx.certificate(old, true).await?.ok_or(StoreError::NotFound)?;
            if c.status != CertificateStatus::Issued {
                return Err(not_issued(old, c.status, "replaced"));
            }
            Some(c)
        }
        None => None,
    };
    let company_id = app.company_id;
    let issue = match &old {
        Some(c) => {
            Issue { seq: None, number: Some(c.number.clone()), version: c.version + 1, application: app }
        }
        None => {
            let seq = tx.next_number(&numbering.scope).await?;
            Issue { seq: Some(seq), number: None, version: 1, application: app }
        }
    };
    let signed = sign(&issue).map_err(StoreError::Sign)?;
    let sha = crate::hex(ring::digest::digest(&ring::digest::SHA256, &signed.bytes).as_ref());
    let at = timestamp(&ctx.at);
    let supersedes = old.as_ref().map(|c| c.id);
    let packed = crate::text::pack(&signed.bytes);
    let row = NewCertificate {
        application_id: id,
        company_id,
        issuer: &numbering.issuer,
        number: &signed.number,
        version: issue.version,
        supersedes,
        signed: &packed,
        issued_at: &at,
        sha256: &sha,
    };
    let Some(cert_id) = tx.insert_certificate(&row).await? else {
        return Err(StoreError::conflict(
            "CERTIFICATE_NUMBER_TAKEN",
            format!("number {} is taken", signed.number),
        ));
    };
    tx.set_approved(id, cert_id, &at).await?;
    if let Some(old) = supersedes {
        tx.set_superseded(old, &at).await?;
    }
    outbox::enqueue(tx, &signed.messages, &at).await?;
    let events = approval_events(id, cert_id, &signed.number, issue.version, &sha, supersedes);
    audit::append(tx, ctx, &events).await?;
    tx.certificate(cert_id, false).await?.ok_or(StoreError::NotFound)
}

/// Approves a batch in one transaction, each approval in its own savepoint (see
/// [`crate::Store::approve_batch`]).
///
/// Every application is locked first, in id order, then every certificate they replace, in
/// id order: row locks before the sequence row and the audit head, as a single approval takes
/// them, so two batches (two replicas) or a batch and a transition cannot wait on each other
/// in a cycle.
pub(crate) async fn approve_batch<T: IssuanceTx>(
    tx: &mut T,
    batch: Vec<Approval>,
) -> Result<Vec<Result<Certificate>>> {
    let mut ids: Vec<i64> = batch.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut replaced = Vec::new();
    for id in &ids {
        if let Some(old) = tx.application(*id, true).await?.and_then(|a| a.replaces) {
            replaced.push(old);
        }
    }
    replaced.sort_unstable();
    replaced.dedup();
    for old in replaced {
        tx.certificate(old, true).await?;
    }
    let mut out = Vec::with_capacity(batch.len());
    for a in batch {
        tx.savepoint().await?;
        let one = approve(tx, &a.ctx, a.id, &a.numbering, a.sign).await;
        if let Err(StoreError::Backend(e)) = &one {
            // The connection or the database failed, not this approval: the whole batch fails.
            return Err(StoreError::Backend(e.clone()));
        }
        tx.end_savepoint(one.is_ok()).await?;
        out.push(one);
    }
    Ok(out)
}

/// Revokes an issued certificate and enqueues the messages `messages` makes of it.
pub(crate) async fn revoke<T: IssuanceTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    reason: &str,
    messages: MessagesFn,
) -> Result<Certificate> {
    let c = tx.certificate(id, true).await?.ok_or(StoreError::NotFound)?;
    if c.status != CertificateStatus::Issued {
        return Err(not_issued(id, c.status, "revoked"));
    }
    let at = timestamp(&ctx.at);
    tx.set_revoked(id, reason, &at).await?;
    let revoked = tx.certificate(id, false).await?.ok_or(StoreError::NotFound)?;
    let out = messages(&revoked).map_err(StoreError::Sign)?;
    outbox::enqueue(tx, &out, &at).await?;
    audit::append(tx, ctx, &[revocation_event(id, reason)]).await?;
    Ok(revoked)
}

/// The audit "before"/"after" state of an application.
fn app_state(status: ApplicationStatus, extra: &[(&str, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), status.as_str().into());
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

/// The audit "before"/"after" state of a certificate.
fn cert_state(status: CertificateStatus, extra: &[(&str, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), status.as_str().into());
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

/// The audit events of an approval, the same on every backend: the application approved,
/// the certificate issued and, for a replacement, the old certificate superseded.
fn approval_events(
    application_id: i64,
    certificate_id: i64,
    number: &str,
    version: i64,
    sha256: &str,
    superseded: Option<i64>,
) -> Vec<PendingEvent> {
    let mut events = vec![
        PendingEvent::new(
            "application.approved",
            format!("application/{application_id}"),
            app_state(ApplicationStatus::Submitted, &[]),
            app_state(ApplicationStatus::Approved, &[("certificate_id", certificate_id.into())]),
        ),
        PendingEvent::new(
            "certificate.issued",
            format!("certificate/{certificate_id}"),
            "null".into(),
            cert_state(
                CertificateStatus::Issued,
                &[("number", number.into()), ("version", version.into()), ("sha256", sha256.into())],
            ),
        ),
    ];
    if let Some(old) = superseded {
        events.push(PendingEvent::new(
            "certificate.superseded",
            format!("certificate/{old}"),
            cert_state(CertificateStatus::Issued, &[]),
            cert_state(CertificateStatus::Superseded, &[("superseded_by", certificate_id.into())]),
        ));
    }
    events
}

/// The audit event of a revocation by this node.
fn revocation_event(certificate_id: i64, reason: &str) -> PendingEvent {
    PendingEvent::new(
        "certificate.revoked",
        format!("certificate/{certificate_id}"),
        cert_state(CertificateStatus::Issued, &[]),
        cert_state(CertificateStatus::Revoked, &[("reason", reason.into())]),
    )
}

/// The conflict for an application that is not in the state a transition needs.
fn not_in_state(expected: ApplicationStatus, actual: ApplicationStatus) -> StoreError {
    let code = match expected {
        ApplicationStatus::Draft => "APPLICATION_NOT_DRAFT",
        ApplicationStatus::Submitted => "APPLICATION_NOT_SUBMITTED",
        ApplicationStatus::Approved => "APPLICATION_NOT_APPROVED",
        ApplicationStatus::Rejected => "APPLICATION_NOT_REJECTED",
        ApplicationStatus::Returned => "APPLICATION_NOT_RETURNED",
        ApplicationStatus::Withdrawn => "APPLICATION_NOT_WITHDRAWN",
    };
    StoreError::conflict(code, format!("the application is {actual}, this needs it {expected}"))
}
