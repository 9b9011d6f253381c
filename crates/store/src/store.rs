//! The storage interface both backends implement.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::audit::{self, AuditEvent, Broken, Verified};
use crate::checkpoint;
use crate::model::*;
use crate::{Result, StoreError};

/// The storage interface of a node. Both backends pass the same contract test suite
/// (`tests/it/main.rs`).
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Which backend: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Brings the schema up to date. Safe to run again, and concurrently.
    async fn migrate(&self) -> Result<()>;
    /// The schema versions this release knows and the database has not applied, in order
    /// (all of them for a database never migrated); empty when it is up to date.
    async fn pending_migrations(&self) -> Result<Vec<i64>>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Creates a company. Duplicate name: `COMPANY_EXISTS`.
    async fn create_company(&self, ctx: &Ctx, name: &str, country: &str) -> Result<Company>;
    /// Finds a company by name.
    async fn company_by_name(&self, name: &str) -> Result<Option<Company>>;
    /// Creates a user and its token. Duplicate name: `USER_EXISTS`.
    async fn create_user(&self, ctx: &Ctx, user: NewUser) -> Result<User>;
    /// The user holding the token with this SHA-256, if any: not a revoked token, not a
    /// disabled user.
    async fn user_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<User>>;
    /// Every user, by id.
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    /// One user.
    async fn user(&self, id: i64) -> Result<Option<UserRecord>>;
    /// Disables or enables a user, or revokes its tokens; audited (`user.disabled`,
    /// `user.enabled`, `user.tokens_revoked`). Unknown: `NOT_FOUND`; disabling a disabled
    /// user: `USER_ALREADY_DISABLED`; enabling an enabled one: `USER_NOT_DISABLED`.
    async fn change_user(&self, ctx: &Ctx, id: i64, change: UserChange) -> Result<UserRecord>;
    /// Gives a user a new token (its SHA-256), revoking its others, in one transaction;
    /// audited as `user.token_issued`. Unknown: `NOT_FOUND`.
    async fn replace_token(&self, ctx: &Ctx, id: i64, hash: &[u8; 32]) -> Result<UserRecord>;

    /// What signing in as `name` needs; `None` for an unknown name.
    async fn login(&self, name: &str) -> Result<Option<Login>>;
    /// Starts a console session, audited (`user.signed_in`).
    async fn start_session(&self, ctx: &Ctx, session: NewSession) -> Result<()>;
    /// The session whose id hashes to `id_hash`, when in force (not ended, user not disabled).
    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<Session>>;
    /// Marks the session used at `at`.
    async fn touch_session(&self, id_hash: &[u8; 32], at: DateTime<Utc>) -> Result<()>;
    /// Ends the session, audited (`user.signed_out`); nothing when it is not in force.
    async fn end_session(&self, ctx: &Ctx, id_hash: &[u8; 32]) -> Result<()>;
    /// Sets a user's password hash and ends the user's sessions, audited. Unknown: `NOT_FOUND`.
    async fn set_password(&self, ctx: &Ctx, id: i64, hash: &str) -> Result<UserRecord>;
    /// Invites a user to set a password (the token's hash), until `expires_at`, audited.
    async fn invite(&self, ctx: &Ctx, id: i64, hash: &[u8; 32], expires_at: DateTime<Utc>) -> Result<()>;
    /// Sets the password of an invitation's user, once: `INVITATION_INVALID` for an unknown,
    /// used or expired invitation or a disabled user.
    async fn accept_invitation(&self, ctx: &Ctx, hash: &[u8; 32], password_hash: &str) -> Result<UserRecord>;
    /// Sets or clears user `id`'s e-mail address (the caller checks its form), audited as
    /// `user.email_set`. Unknown user: `NOT_FOUND`.
    async fn set_email(&self, ctx: &Ctx, id: i64, email: Option<String>) -> Result<UserRecord>;

    /// The audit sequence number the notifier has read up to (0 at first).
    async fn notifier_cursor(&self) -> Result<i64>;
    /// Stores the notifications not stored yet (by key) with their deliveries, and moves the
    /// notifier's cursor to `cursor` when given, in ONE transaction; returns how many were new.
    async fn add_notifications(&self, cursor: Option<i64>, list: Vec<NewNotification>) -> Result<usize>;
    /// The newest notifications for either audience, with an id below `before`, at most
    /// `limit`, newest first.
    async fn notifications(
        &self,
        audiences: [&str; 2],
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>>;
    /// How many notifications for either audience have an id above `after`, counted up to
    /// `cap` at most (a count shown on every page stays cheap however many there are).
    async fn notifications_after(&self, audiences: [&str; 2], after: i64, cap: i64) -> Result<i64>;
    /// The newest notification id user `user_id` has seen (0: none).
    async fn notifications_seen(&self, user_id: i64) -> Result<i64>;
    /// Records that user `user_id` has seen the notifications up to `upto` (never back).
    async fn see_notifications(&self, user_id: i64, upto: i64) -> Result<()>;
    /// The deliveries due at `now` (not delivered, not given up), oldest first.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>>;
    /// Records how an attempt of delivery `id` ended, at `at`.
    async fn settle_delivery(&self, id: i64, at: DateTime<Utc>, outcome: DeliveryOutcome) -> Result<()>;
    /// The e-mail addresses of the enabled users with `role`, or of `company`'s.
    async fn emails_of(&self, role: Option<Role>, company: Option<i64>) -> Result<Vec<String>>;

    /// Creates an application in `draft`.
    async fn create_application(&self, ctx: &Ctx, app: NewApplication) -> Result<Application>;
    /// One application.
    async fn application(&self, id: i64) -> Result<Option<Application>>;
    /// A page of applications, newest first, without their documents.
    async fn list_applications(&self, page: &Page) -> Result<Vec<Application>> {
        self.find_applications(page, &ApplicationFilter::default()).await
    }
    /// [`Store::list_applications`] narrowed by `filter`.
    async fn find_applications(&self, page: &Page, filter: &ApplicationFilter) -> Result<Vec<Application>>;
    /// Submit, return for correction, withdraw or reject. Invalid transition:
    /// `APPLICATION_NOT_DRAFT` (submit: not draft or returned), `APPLICATION_NOT_SUBMITTED`
    /// (return, reject), `APPLICATION_NOT_OPEN` (withdraw: not draft, submitted or returned).
    async fn transition(&self, ctx: &Ctx, id: i64, t: Transition) -> Result<Application>;
    /// Replaces the document and/or self-assessment of a draft or returned application, audited
    /// as `application.edited`. Other states: `APPLICATION_NOT_EDITABLE`.
    async fn edit_application(&self, ctx: &Ctx, id: i64, edit: EditApplication) -> Result<Application>;
    /// Approves a submitted application: allocates the number (or, for an amendment, keeps
    /// the replaced certificate's number with the next version), runs `sign`, stores the
    /// signed bytes, supersedes the replaced certificate. All in one transaction.
    async fn approve(&self, ctx: &Ctx, id: i64, numbering: &Numbering, sign: SignFn) -> Result<Certificate> {
        let one = Approval { ctx: ctx.clone(), id, numbering: numbering.clone(), sign };
        let mut out = self.approve_batch(vec![one]).await?;
        out.pop().unwrap_or(Err(StoreError::NotFound))
    }
    /// Approves several applications in one transaction (group commit), in the order given:
    /// numbers stay gapless and the audit events chained. Each approval succeeds or fails on
    /// its own (a refused or unsigned one takes no number and changes nothing; its
    /// application stays submitted, though a later approval of the same application in the
    /// same batch is refused as not submitted); the approvals are signed in parallel; the
    /// outer `Err` is a failure of the whole transaction, when nothing was stored.
    async fn approve_batch(&self, batch: Vec<Approval>) -> Result<Vec<Result<Certificate>>>;

    /// One certificate.
    async fn certificate(&self, id: i64) -> Result<Option<Certificate>>;
    /// A page of certificates, newest first, without their signed bytes.
    async fn list_certificates(&self, page: &Page) -> Result<Vec<Certificate>> {
        self.find_certificates(page, &CertificateFilter::default()).await
    }
    /// [`Store::list_certificates`] narrowed by `filter`.
    async fn find_certificates(&self, page: &Page, filter: &CertificateFilter) -> Result<Vec<Certificate>>;
    /// Revokes an issued certificate and enqueues the messages `messages` makes of it, in one
    /// transaction. Not issued: `CERTIFICATE_NOT_ISSUED`; `messages` failing: `SIGNING_FAILED`.
    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str, messages: MessagesFn) -> Result<Certificate>;
    /// The statuses importing countries reported about certificate `number`, all versions,
    /// oldest first.
    async fn certificate_statuses(&self, number: &str) -> Result<Vec<StatusEvent>>;
    /// Every version of certificate `number` this node issued, with its signed bytes, newest
    /// first.
    async fn certificate_versions(&self, number: &str) -> Result<Vec<Certificate>>;
    /// This node's certificate versions that are revoked or superseded: its status list's
    /// entries, by number and version.
    async fn status_entries(&self) -> Result<Vec<StatusEntry>>;
    /// Keeps `list`, this node's own new status list, when its sequence is higher than the
    /// one kept (or none is), audited as `status_list.published`, with `messages` (the list
    /// sent to each member) in the outbox, all in one transaction: whether it was kept (when
    /// not, nothing is written).
    async fn put_status_list(
        &self,
        ctx: &Ctx,
        list: &StoredStatusList,
        messages: Vec<OutMessage>,
    ) -> Result<bool>;
    /// The status list kept for `issuer`.
    async fn status_list(&self, issuer: &str) -> Result<Option<StoredStatusList>>;
    /// Every status list kept, by issuer, without their signed bytes.
    async fn status_lists(&self) -> Result<Vec<StoredStatusList>>;

    /// Records a received certificate. Duplicate (country, number, version): `RECEIVED_EXISTS`.
    async fn insert_received(&self, ctx: &Ctx, rec: NewReceived) -> Result<ReceivedCertificate>;
    /// One received certificate.
    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>>;
    /// All versions of a received certificate, newest first.
    async fn received_by_ref(&self, issuing_country: &str, number: &str) -> Result<Vec<ReceivedCertificate>>;
    /// A page of received certificates, newest first, without their documents
    /// (`page.company_id` does not apply: received certificates belong to no company).
    async fn list_received(&self, page: &Page) -> Result<Vec<ReceivedCertificate>> {
        self.find_received(page, &ReceivedFilter::default()).await
    }
    /// [`Store::list_received`] narrowed by `filter`.
    async fn find_received(&self, page: &Page, filter: &ReceivedFilter) -> Result<Vec<ReceivedCertificate>>;

    /// Enqueues messages in one transaction (not audited: transport). Duplicate id:
    /// `MESSAGE_EXISTS`, and nothing is enqueued.
    async fn enqueue(&self, ctx: &Ctx, messages: Vec<OutMessage>) -> Result<()>;
    /// Claims up to `limit` due messages (not dead, `next_attempt_at <= now`, not leased):
    /// those due longest (by `next_attempt_at`, then `seq`), returned in `seq` order. Each is
    /// leased until `now + lease` (its `next_attempt_at` moves there too), so no other worker
    /// or replica takes it meanwhile; an expired lease makes it due again.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>>;
    /// Removes delivered messages (one transaction). Unknown ids are ignored.
    async fn outbox_delivered(&self, ids: &[String]) -> Result<()>;
    /// Records a failed attempt: `attempts + 1`, the error, the next attempt time, lease
    /// cleared, and `dead` (given up). Unknown id: ignored.
    async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<()>;
    /// Messages still in the outbox, pending and dead, oldest first (`seq`), at most `limit`:
    /// each with its attempts, last error and next attempt.
    async fn outbox_messages(&self, limit: i64) -> Result<Vec<OutboxRow>>;
    /// Dead letters, oldest first.
    async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>>;
    /// An operator retries a dead letter: due at `ctx.at` with no attempts; audited as
    /// `message.retried`. Not a dead letter: `NOT_FOUND`.
    async fn retry_dead(&self, ctx: &Ctx, id: &str) -> Result<OutboxRow>;
    /// (pending, dead) outbox messages.
    async fn outbox_counts(&self) -> Result<(i64, i64)>;

    /// Applies a batch of verified inbound messages in one transaction; one answer per
    /// message, in order. See [`Inbound`] and [`InboundKind`] for what each kind does.
    async fn apply_inbound(&self, ctx: &Ctx, batch: Vec<Inbound>) -> Result<Vec<Applied>>;
    /// Messages in the inbox (applied, held or duplicate-by-content).
    async fn inbox_len(&self) -> Result<i64>;
    /// Messages held until the certificate version they need arrives.
    async fn held_len(&self) -> Result<i64>;
    /// Records inbound messages refused before they reached the inbox (one transaction, not
    /// audited: transport, like [`Store::enqueue`]).
    async fn record_refused(&self, refusals: Vec<Refusal>) -> Result<()>;
    /// Refused inbound messages, newest first.
    async fn refused(&self, limit: i64) -> Result<Vec<Refusal>>;
    /// Inbound messages quarantined (they can never be processed), newest first.
    async fn quarantined(&self, limit: i64) -> Result<Vec<InboxRecord>>;
    /// How many inbound messages are quarantined.
    async fn quarantined_len(&self) -> Result<i64>;

    /// Creates a declaration; all lines start `pending`. Duplicate number:
    /// `DECLARATION_EXISTS`; duplicate line number: `LINE_DUPLICATE`.
    async fn create_declaration(&self, ctx: &Ctx, d: NewDeclaration) -> Result<Declaration>;
    /// One declaration with its lines.
    async fn declaration(&self, id: i64) -> Result<Option<Declaration>>;
    /// One declaration by number.
    async fn declaration_by_number(&self, number: &str) -> Result<Option<Declaration>>;
    /// A page of declarations with their lines, without documents: newest first, or (the
    /// officer's queue, `order_by_risk`) by risk score descending, then id descending. The
    /// cursor `page.before` is the last id of the previous page in either order;
    /// `page.company_id` does not apply.
    async fn list_declarations(&self, page: &Page, order_by_risk: bool) -> Result<Vec<Declaration>> {
        self.find_declarations(page, order_by_risk, &DeclarationFilter::default()).await
    }
    /// [`Store::list_declarations`] narrowed by `filter`.
    async fn find_declarations(
        &self,
        page: &Page,
        order_by_risk: bool,
        filter: &DeclarationFilter,
    ) -> Result<Vec<Declaration>>;
    /// Records the risk score and its reasons (JSON). Unknown declaration: `NOT_FOUND`.
    async fn set_risk(&self, ctx: &Ctx, id: i64, score: i64, risk_json: &str) -> Result<()>;
    /// Links a line declared `PENDING` to the certificate it was matched to when that
    /// arrived, so later events about the certificate (a verification denial) reach it.
    /// Unknown line: `NOT_FOUND`; a line that already names a certificate: `LINE_NOT_PENDING`.
    async fn link_pending_line(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        line_no: i32,
        issuing_country: &str,
        number: &str,
    ) -> Result<()>;
    /// Decides lines of one declaration in ONE transaction, in the order given, with the
    /// ledger: a granted line first gives back what it consumed before; a `Granted` decision
    /// with a claim then consumes from the item's ledger row (created with the item total on
    /// first use), unless less is left than claimed (`QUANTITY_EXCEEDED`) or the claim is
    /// single-declaration and another declaration consumes from any item of the certificate
    /// (`ALREADY_UTILIZED`): then the line is stored `denied` with that reason appended and
    /// nothing is consumed. Returns per line the stored line and the consumption recorded.
    /// Unknown declaration or line: `NOT_FOUND`; a bad claim or reasons that are not a JSON
    /// array: `LINE_DECISION_INVALID`.
    async fn decide_lines(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
        self.decide_lines_with(ctx, declaration_id, decisions, Box::new(|_| Ok(vec![]))).await
    }
    /// [`Store::decide_lines`], with the messages the decisions cause (the statuses back to
    /// the issuing countries) built by `messages` from the stored lines and written to the
    /// outbox in the same transaction. If `messages` fails, nothing is stored
    /// (`SIGNING_FAILED`).
    async fn decide_lines_with(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
        messages: DecisionMessagesFn,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
        self.decide_lines_noted(ctx, declaration_id, Decisions { lines: decisions, messages, note: None })
            .await
    }
    /// [`Store::decide_lines_with`] by a customs officer by hand: each line's audit event
    /// (`declaration.line_redecided` or `declaration.line_overridden`) carries the officer
    /// (`ctx.actor`), the line before and after, and `note.reason`.
    async fn decide_lines_by_officer(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
        messages: DecisionMessagesFn,
        note: OfficerNote,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
        let d = Decisions { lines: decisions, messages, note: Some(note) };
        self.decide_lines_noted(ctx, declaration_id, d).await
    }
    /// What [`Store::decide_lines_with`] and [`Store::decide_lines_by_officer`] run: the
    /// officer's note, when there is one, goes into each line's audit event.
    async fn decide_lines_noted(&self, ctx: &Ctx, declaration_id: i64, d: Decisions) -> Result<Decided>;
    /// The ledger of a certificate, by item.
    async fn ledger(&self, issuing_country: &str, number: &str) -> Result<Vec<LedgerRow>>;
    /// The consumptions in force from a certificate (the rows never given back), oldest first.
    async fn utilizations(&self, issuing_country: &str, number: &str) -> Result<Vec<Utilization>>;
    /// Lines with `outcome` (`pending`, `granted`, `denied`, …) that name certificate
    /// (issuing_country, number), as (declaration id, line), in order.
    async fn lines_with_outcome(
        &self,
        country: &str,
        number: &str,
        outcome: &'static str,
    ) -> Result<LineRefs>;
    /// Which of `certs` (issuing country, number) a declaration line names, whatever its
    /// outcome: the certificates whose arrival may matter to a line already written (one
    /// lookup for a whole batch of arrivals).
    async fn certificates_named(
        &self,
        certs: Vec<(String, String)>,
    ) -> Result<std::collections::HashSet<(String, String)>>;
    /// Lines still pending on certificate (issuing_country, number), as (declaration id,
    /// line), in order: for automatic matching when it arrives.
    async fn pending_lines_for(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>> {
        self.lines_with_outcome(issuing_country, number, "pending").await
    }
    /// Granted lines that claim a certificate, as (declaration id, line): for
    /// `VERIFICATION_DENIED`.
    async fn lines_using(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>> {
        self.lines_with_outcome(issuing_country, number, "granted").await
    }
    /// Denied lines that name a certificate, as (declaration id, line), in order: the caller
    /// re-decides those denied because it had not arrived (`CO_NOT_RECEIVED`) when it does.
    async fn denied_lines_for(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>> {
        self.lines_with_outcome(issuing_country, number, "denied").await
    }
    /// The decided lines with a computed duty of the declarations dated
    /// `from <= declaration_date < to`, summed per month, agreement, partner and currency, in
    /// that order.
    async fn revenue_groups(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<RevenueGroup>>;
    /// The lines of the same declarations that are NOT in [`Store::revenue_groups`]: still
    /// `pending`, or decided without a computable duty; at most `limit`, with their
    /// declaration number, in declaration and line order.
    async fn lines_unsummed(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<(String, DeclarationLine)>>;
    /// Whether a granted line of another declaration than `pair.other_than` names this
    /// exporter → importer pair: the importer compared by its normalized key, or, for
    /// declarations stored without one (before schema version 5), by its name as written.
    async fn pair_seen(&self, pair: Pair<'_>) -> Result<bool>;

    /// Raises an `outgoing` verification request and enqueues its messages, in one
    /// transaction. Duplicate message id: `VERIFICATION_EXISTS`.
    async fn create_verification(
        &self,
        ctx: &Ctx,
        v: NewVerification,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest>;
    /// Answers an `incoming`, open request with `outcome` (`confirmed` or `denied`) and
    /// enqueues the response messages, in one transaction. Not open or not incoming:
    /// `VERIFICATION_NOT_OPEN`; another outcome: `VERIFICATION_OUTCOME_INVALID`.
    async fn answer_verification(
        &self,
        ctx: &Ctx,
        id: i64,
        answer: &str,
        outcome: &str,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest>;
    /// Records the response to one of our `outgoing` requests (by its message id). Unknown:
    /// `NOT_FOUND`; not open: `VERIFICATION_NOT_OPEN`.
    async fn record_verification_answer(
        &self,
        ctx: &Ctx,
        message_id_of_request: &str,
        answer: &str,
        outcome: &str,
    ) -> Result<VerificationRequest>;
    /// One verification request.
    async fn verification(&self, id: i64) -> Result<Option<VerificationRequest>>;
    /// Verification requests, newest first, of one direction or both.
    async fn list_verifications(
        &self,
        direction: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerificationRequest>>;
    /// Open requests (both directions) whose deadline is before `now`, oldest deadline first.
    async fn overdue_verifications(&self, now: DateTime<Utc>) -> Result<Vec<VerificationRequest>>;
    /// How many of our `outgoing` requests about certificates of this country were denied.
    async fn denied_verifications(&self, issuing_country: &str) -> Result<i64>;

    /// Audit events with `after < seq <= up_to`, in seq order, at most `limit` of them.
    async fn audit_events(&self, after: i64, up_to: i64, limit: i64) -> Result<Vec<AuditEvent>>;
    /// The chain head row: (last sequence number, its hash); `None` when the row is missing.
    async fn audit_head_row(&self) -> Result<Option<(i64, String)>>;
    /// The chain head: (last sequence number, its hash).
    async fn audit_head(&self) -> Result<(i64, String)> {
        self.audit_head_row().await?.ok_or_else(|| {
            StoreError::Backend("audit chain: AUDIT_HEAD_MISSING: the audit_head row is missing".into())
        })
    }
    /// How this store keys and anchors its audit chain ([`open_keyed`](crate::open_keyed)).
    fn audit_chain(&self) -> &audit::Chain;
    /// Checks the audit chain in pages; on failure, names the first broken event. The head is
    /// read first, so events appended meanwhile are left for the next check.
    async fn verify_audit(&self) -> Result<Result<u64, Broken>> {
        self.verify_audit_in_pages(1000).await
    }
    /// [`Store::verify_audit`], reading `page` events at a time.
    async fn verify_audit_in_pages(&self, page: i64) -> Result<Result<u64, Broken>> {
        Ok(self.check_audit(page).await?.map(|v| v.events))
    }
    /// [`Store::verify_audit`] with what was found: every event (keyed with this store's audit
    /// key), the head, the rows past the head, and the head against the checkpoint file.
    async fn check_audit(&self, page: i64) -> Result<Result<Verified, Broken>> {
        audit::check(self, page).await
    }
    /// Writes the checkpoint of the current chain head now (a background writer also does, at
    /// most once per [`audit::CHECKPOINT_INTERVAL`] after commits): call it at start, at
    /// shutdown and after a short-lived command's writes. Returns the event anchored; `None`
    /// when the store has no key or checkpoint file, or the checkpoint was kept as evidence of
    /// damage (logged; [`Store::check_audit`] names it).
    async fn checkpoint_audit(&self) -> Result<Option<i64>> {
        checkpoint::write_current(self).await
    }
}
