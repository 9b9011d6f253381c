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
    /// Applications by id, locked for update (where the backend locks) in id order; missing
    /// ones are left out.
    async fn applications_locked(&mut self, ids: &[i64]) -> Result<Vec<Application>>;
    /// Certificates by id, locked for update in id order; missing ones are left out.
    async fn certificates_locked(&mut self, ids: &[i64]) -> Result<Vec<Certificate>>;
    /// The last number handed out in a sequence scope (created at 0); the row stays locked
    /// until the transaction ends.
    async fn sequence_last(&mut self, scope: &str) -> Result<i64>;
    /// Moves a sequence scope's last number.
    async fn set_sequence(&mut self, scope: &str, last: i64) -> Result<()>;
    /// Inserts `issued` certificates, their ids in order; `Err(i)` when row `i`'s (issuer,
    /// number, version) is taken (the transaction must then be rolled back).
    async fn insert_certificates(&mut self, rows: &[NewCertificate<'_>]) -> Result<Result<Vec<i64>, usize>>;
    /// Marks applications approved: (application, certificate, at).
    async fn set_approved_many(&mut self, rows: &[(i64, i64, &str)]) -> Result<()>;
    /// Certificates by id, in any order.
    async fn certificates_by_ids(&mut self, ids: &[i64]) -> Result<Vec<Certificate>>;
    /// Marks a certificate superseded at `at`.
    async fn set_superseded(&mut self, certificate_id: i64, at: &str) -> Result<()>;
    /// Marks a certificate revoked at `at` with a reason.
    async fn set_revoked(&mut self, certificate_id: i64, reason: &str, at: &str) -> Result<()>;
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

/// One approval of a batch, checked and numbered, to be signed.
struct Pending {
    index: usize,
    ctx: Ctx,
    id: i64,
    numbering: Numbering,
    sign: SignFn,
    issue: Issue,
    old: Option<(i64, String, i64)>,
}

/// Each pending approval signed, in order: on up to as many threads as the machine has cores
/// (one approval alone is signed on the calling thread).
fn sign_all(pending: &[Pending]) -> Vec<std::result::Result<Signed, String>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pending.len());
    if threads <= 1 {
        return pending.iter().map(|p| (p.sign)(&p.issue)).collect();
    }
    let mut out: Vec<Option<std::result::Result<Signed, String>>> = Vec::new();
    out.resize_with(pending.len(), || None);
    let chunk = pending.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (ps, slots) in pending.chunks(chunk).zip(out.chunks_mut(chunk)) {
            s.spawn(move || {
                for (p, slot) in ps.iter().zip(slots) {
                    *slot = Some((p.sign)(&p.issue));
                }
            });
        }
    });
    out.into_iter().map(|r| r.unwrap_or_else(|| Err("signing did not run".into()))).collect()
}

/// One approval of a batch, signed and ready to store.
struct Ready {
    index: usize,
    ctx: Ctx,
    application_id: i64,
    company_id: i64,
    issuer: String,
    number: String,
    version: i64,
    supersedes: Option<i64>,
    packed: Vec<u8>,
    sha256: String,
    at: String,
    messages: Vec<OutMessage>,
}

/// Approves a batch in one transaction (see [`crate::Store::approve_batch`]), in a number of
/// statements that does not grow with the batch where the backend can pipeline them:
///
/// 1. every application is locked and read at once, in id order, then every certificate they
///    replace (row locks before the sequence row and the audit head, as every writer takes
///    them, so two batches or a batch and a transition cannot wait on each other in a cycle);
/// 2. each approval is checked in order against what the batch has done so far (an
///    application approved earlier in the batch is no longer submitted, a certificate
///    replaced earlier is no longer issued) and takes the next number of its scope (the
///    sequence row read once per scope); then all are signed in parallel; a refused approval
///    takes no number, and one that fails to sign gives its number back (the later ones of
///    its scope are signed again one lower), so numbers stay gapless without a savepoint each;
/// 3. the certificates, the applications' new state, the superseded certificates, the
///    messages and the audit events (one head read, one move) are written, and each scope's
///    sequence is moved once.
///
/// A number found taken fails the whole batch (`CERTIFICATE_NUMBER_TAKEN`: the sequence and
/// the certificates disagree, which only a hand-edited database does).
pub(crate) async fn approve_batch<T: IssuanceTx>(
    tx: &mut T,
    batch: Vec<Approval>,
) -> Result<Vec<Result<Certificate>>> {
    use std::collections::HashMap;
    let mut ids: Vec<i64> = batch.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut apps: HashMap<i64, Application> =
        tx.applications_locked(&ids).await?.into_iter().map(|a| (a.id, a)).collect();
    let mut old_ids: Vec<i64> = apps.values().filter_map(|a| a.replaces).collect();
    old_ids.sort_unstable();
    old_ids.dedup();
    let mut olds: HashMap<i64, Certificate> =
        tx.certificates_locked(&old_ids).await?.into_iter().map(|c| (c.id, c)).collect();
    // Scope: (last number before the batch, last number taken so far).
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    let mut out: Vec<Result<Certificate>> = Vec::with_capacity(batch.len());
    // 2a. Checked in order, each taking the next number of its scope as if it will be signed.
    let mut pending: Vec<Pending> = Vec::new();
    for (index, Approval { ctx, id, numbering, sign }) in batch.into_iter().enumerate() {
        let checked = (|| {
            let app = apps.get(&id).ok_or(StoreError::NotFound)?;
            if app.status != ApplicationStatus::Submitted {
                return Err(not_in_state(ApplicationStatus::Submitted, app.status));
            }
            let old = match app.replaces {
                Some(old) => {
                    let c = olds.get(&old).ok_or(StoreError::NotFound)?;
                    if c.status != CertificateStatus::Issued {
                        return Err(not_issued(old, c.status, "replaced"));
                    }
                    Some(c)
                }
                None => None,
            };
            Ok((app.clone(), old.map(|c| (c.id, c.number.clone(), c.version))))
        })();
        // Its place, filled with the stored certificate once the batch is written.
        out.push(Err(StoreError::NotFound));
        let (app, old) = match checked {
            Ok(v) => v,
            Err(e) => {
                out[index] = Err(e);
                continue;
            }
        };
        let issue = match &old {
            Some((_, number, version)) => {
                Issue { seq: None, number: Some(number.clone()), version: version + 1, application: app }
            }
            None => {
                let next = match last.get(&numbering.scope) {
                    Some((_, l)) => l + 1,
                    None => tx.sequence_last(&numbering.scope).await? + 1,
                };
                let first = last.get(&numbering.scope).map_or(next - 1, |(f, _)| *f);
                last.insert(numbering.scope.clone(), (first, next));
                Issue { seq: Some(next), number: None, version: 1, application: app }
            }
        };
        if let Some(a) = apps.get_mut(&id) {
            a.status = ApplicationStatus::Approved;
        }
        if let Some(c) = old.as_ref().and_then(|(old, _, _)| olds.get_mut(old)) {
            c.status = CertificateStatus::Superseded;
        }
        pending.push(Pending { index, ctx, id, numbering, sign, issue, old });
    }
    // 2b. Signed in parallel (signing is most of an approval's work).
    let signed = sign_all(&pending);
    // 2c. In order: an approval that failed to sign gives its number back, so the later ones
    // of its scope move down one and are signed again with their true number.
    let mut given_back: HashMap<String, i64> = HashMap::new();
    let mut ready: Vec<Ready> = Vec::new();
    for (p, first_try) in pending.into_iter().zip(signed) {
        let back = given_back.get(&p.numbering.scope).copied().unwrap_or(0);
        let (issue, result) = match p.issue.seq {
            Some(seq) if back > 0 => {
                let issue = Issue { seq: Some(seq - back), ..p.issue };
                let again = (p.sign)(&issue);
                (issue, again)
            }
            _ => (p.issue, first_try),
        };
        let signed = match result {
            Ok(s) => s,
            Err(e) => {
                if issue.seq.is_some() {
                    *given_back.entry(p.numbering.scope.clone()).or_default() += 1;
                }
                out[p.index] = Err(StoreError::Sign(e));
                continue;
            }
        };
        ready.push(Ready {
            index: p.index,
            application_id: p.id,
            company_id: issue.application.company_id,
            issuer: p.numbering.issuer,
            number: signed.number,
            version: issue.version,
            supersedes: p.old.map(|(old, _, _)| old),
            sha256: crate::hex(ring::digest::digest(&ring::digest::SHA256, &signed.bytes).as_ref()),
            packed: crate::text::pack(&signed.bytes),
            at: timestamp(&p.ctx.at),
            ctx: p.ctx,
            messages: signed.messages,
        });
    }
    for (scope, back) in &given_back {
        if let Some((_, l)) = last.get_mut(scope) {
            *l -= back;
        }
    }
    if ready.is_empty() {
        return Ok(out);
    }
    let scopes: Vec<(&str, i64)> = last
        .iter()
        .filter(|(_, (first, l))| l != first)
        .map(|(scope, (_, l))| (scope.as_str(), *l))
        .collect();
    for (r, cert) in ready.iter().zip(write_ready(tx, &ready, &scopes).await?) {
        out[r.index] = Ok(cert);
    }
    Ok(out)
}

/// Writes the signed approvals of a batch: the certificates, the applications' new state, the
/// sequences moved (`scopes`: scope, last number), the certificates superseded, the messages
/// and the audit events. The stored certificates, in the order of `ready`.
async fn write_ready<T: IssuanceTx>(
    tx: &mut T,
    ready: &[Ready],
    scopes: &[(&str, i64)],
) -> Result<Vec<Certificate>> {
    let rows: Vec<NewCertificate<'_>> = ready
        .iter()
        .map(|r| NewCertificate {
            application_id: r.application_id,
            company_id: r.company_id,
            issuer: &r.issuer,
            number: &r.number,
            version: r.version,
            supersedes: r.supersedes,
            signed: &r.packed,
            issued_at: &r.at,
            sha256: &r.sha256,
        })
        .collect();
    let cert_ids = match tx.insert_certificates(&rows).await? {
        Ok(ids) => ids,
        Err(i) => {
            return Err(StoreError::conflict(
                "CERTIFICATE_NUMBER_TAKEN",
                format!("number {} is taken", ready[i].number),
            ));
        }
    };
    let approved: Vec<(i64, i64, &str)> =
        ready.iter().zip(&cert_ids).map(|(r, c)| (r.application_id, *c, r.at.as_str())).collect();
    tx.set_approved_many(&approved).await?;
    for (scope, l) in scopes {
        tx.set_sequence(scope, *l).await?;
    }
    let mut events = Vec::new();
    for (r, cert_id) in ready.iter().zip(&cert_ids) {
        if let Some(old) = r.supersedes {
            tx.set_superseded(old, &r.at).await?;
        }
        outbox::enqueue(tx, &r.messages, &r.at).await?;
        let made = approval_events(r.application_id, *cert_id, &r.number, r.version, &r.sha256, r.supersedes);
        events.extend(made.into_iter().map(|e| (&r.ctx, e)));
    }
    let each: Vec<(&Ctx, &PendingEvent)> = events.iter().map(|(c, e)| (*c, e)).collect();
    audit::append_each(tx, &each).await?;
    let mut certs: std::collections::HashMap<i64, Certificate> =
        tx.certificates_by_ids(&cert_ids).await?.into_iter().map(|c| (c.id, c)).collect();
    cert_ids.iter().map(|id| certs.remove(id).ok_or(StoreError::NotFound)).collect()
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
