//! Reading records out of result rows, written once for both backends: a backend's row type
//! implements [`Row`], and the readers here turn the columns of the shared column lists
//! (`*_COLS`, in the order given) into records.

use crate::audit::AuditEvent;
use crate::model::*;
use crate::{Result, StoreError};

/// A value both backends can read from a column.
pub(crate) trait Col: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>> Col for T {}

/// A result row of either backend.
pub(crate) trait Row {
    /// Column `i` (from 0).
    fn col<T: Col>(&self, i: usize) -> Result<T>;
}

/// Columns of `applications` in the order [`application`] expects.
pub(crate) const APP_COLS: &str = "id, company_id, status, format, document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at, \
     (SELECT k.status FROM certificates k WHERE k.id = certificate_id) AS certificate_status, \
     (SELECT c.name FROM companies c WHERE c.id = company_id) AS company_name";
/// The latest reported status of a certificate row (select from `certificates`, unaliased).
pub(crate) const REMOTE_STATUS: &str = "(SELECT s.status FROM certificate_statuses s \
     WHERE s.number = certificates.number AND s.version = certificates.version ORDER BY s.id DESC LIMIT 1)";
/// Columns of `certificates` in the order [`certificate`] expects (with [`REMOTE_STATUS`]
/// appended by [`cert_cols`]).
pub(crate) const CERT_COLS: &str = "id, application_id, company_id, issuer, number, version, status, \
     supersedes, signed, issued_at, revoked_reason, signed_sha256, status_at";
/// Columns of `received_certificates` in the order [`received`] expects.
pub(crate) const RECEIVED_COLS: &str = "id, issuing_country, number, version, document, received_at, status, verdict, revoked_reason, message_id, exporter";
/// Columns of `outbox` in the order [`outbox`] expects.
pub(crate) const OUTBOX_COLS: &str =
    "seq, id, recipient, kind, cert_key, body, attempts, created_at, next_attempt_at, last_error, dead";
/// Columns of `certificate_statuses` in the order [`status`] expects.
pub(crate) const STATUS_COLS: &str = "number, version, from_country, status, code, detail, message_id, at";
/// Columns of `declarations` in the order [`declaration`] expects.
pub(crate) const DECL_COLS: &str = "id, number, importer, importing_country, declaration_date, document, \
     risk_score, risk, created_by, created_at";
/// The list variant of [`DECL_COLS`]: without the document.
pub(crate) const DECL_LIST_COLS: &str = "id, number, importer, importing_country, declaration_date, \
     '' AS document, risk_score, risk, created_by, created_at";
/// Columns of `declaration_lines` in the order [`line()`] expects.
pub(crate) const LINE_COLS: &str =
    "line_no, eco_country, eco_number, exporter, outcome, reasons, matched_item, consumed, duty, decided_at";
/// Columns of `verification_requests` in the order [`verification`] expects.
pub(crate) const VERIFICATION_COLS: &str = "id, direction, message_id, issuing_country, number, partner, \
     questions, deadline, status, answer, outcome, created_at, answered_at";
/// Columns of `audit_events` in the order [`audit_event`] expects.
pub(crate) const AUDIT_COLS: &str = "seq, at, actor, action, entity, before, after, prev_hash, hash";
/// Columns of `inbox_refused` in the order [`refusal`] expects.
pub(crate) const REFUSAL_COLS: &str = "message_id, from_country, kind, via, code, reason, at";
/// Columns of `inbox` in the order [`inbox_record`] expects.
pub(crate) const INBOX_COLS: &str = "message_id, from_country, kind, state, reason, received_at, updated_at";
/// Columns of `utilizations` joined to `declarations` (as `u` and `d`) in the order
/// [`utilization`] expects.
pub(crate) const UTILIZATION_COLS: &str =
    "u.issuing_country, u.number, u.item, u.quantity, u.remaining_after, d.number";

/// `CERT_COLS` (or a list variant of it) plus the remote status.
pub(crate) fn cert_cols(cols: &str) -> String {
    format!("{cols}, {REMOTE_STATUS} AS remote_status")
}

/// [`LINE_COLS`] qualified with the alias `l`.
pub(crate) fn line_cols_of_l() -> String {
    LINE_COLS.split(", ").map(|col| format!("l.{col}")).collect::<Vec<_>>().join(", ")
}

fn parsed<T>(what: &str, v: String, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
    parse(&v).ok_or_else(|| StoreError::Backend(format!("unknown {what} {v:?} in database")))
}

/// An application ([`APP_COLS`]).
pub(crate) fn application<R: Row>(r: &R) -> Result<Application> {
    Ok(Application {
        id: r.col(0)?,
        company_id: r.col(1)?,
        status: parsed("status", r.col(2)?, ApplicationStatus::parse)?,
        format: r.col(3)?,
        document: crate::text::unpack(r.col(4)?)?,
        self_assessment: r.col(5)?,
        assessment: r.col(6)?,
        replaces: r.col(7)?,
        back_to_back_of: r.col(8)?,
        reason: r.col(9)?,
        certificate_id: r.col(10)?,
        created_by: r.col(11)?,
        created_at: r.col(12)?,
        updated_at: r.col(13)?,
        certificate_status: r
            .col::<Option<String>>(14)?
            .map(|s| parsed("certificate_status", s, CertificateStatus::parse))
            .transpose()?,
        company_name: r.col(15)?,
    })
}

/// A certificate ([`cert_cols`]).
pub(crate) fn certificate<R: Row>(r: &R) -> Result<Certificate> {
    Ok(Certificate {
        id: r.col(0)?,
        application_id: r.col(1)?,
        company_id: r.col(2)?,
        issuer: r.col(3)?,
        number: r.col(4)?,
        version: r.col(5)?,
        status: parsed("status", r.col(6)?, CertificateStatus::parse)?,
        supersedes: r.col(7)?,
        signed: crate::text::unpack(r.col(8)?)?,
        issued_at: r.col(9)?,
        revoked_reason: r.col(10)?,
        sha256: r.col(11)?,
        status_at: r.col(12)?,
        remote_status: r.col(13)?,
    })
}

/// Columns of `status_lists` in the order [`status_list`] expects.
pub(crate) const STATUS_LIST_COLS: &str = "issuer, sequence, issued_at, next_update, signed, stored_at";
/// [`STATUS_LIST_COLS`] without the signed bytes (SQL of both backends: an empty text cast).
pub(crate) const STATUS_LIST_META_COLS: &str =
    "issuer, sequence, issued_at, next_update, NULL AS signed, stored_at";
/// This node's certificates that are no longer good, as [`status_entry`] reads them.
pub(crate) const STATUS_ENTRIES: &str = "SELECT c.number, c.version, c.status, \
     COALESCE(c.status_at, c.issued_at), c.revoked_reason, \
     (SELECT MAX(n.version) FROM certificates n WHERE n.supersedes = c.id) \
     FROM certificates c WHERE c.status <> 'issued' ORDER BY c.number, c.version";
/// Keeps a status list when newer than the one kept (parameters as [`STATUS_LIST_COLS`]).
pub(crate) const PUT_STATUS_LIST: &str = "INSERT INTO status_lists (issuer, sequence, issued_at, next_update, signed, stored_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (issuer) DO UPDATE SET sequence = excluded.sequence, \
     issued_at = excluded.issued_at, next_update = excluded.next_update, signed = excluded.signed, \
     stored_at = excluded.stored_at WHERE excluded.sequence > status_lists.sequence";

/// A stored status list ([`STATUS_LIST_COLS`]; `signed` may be NULL: empty).
pub(crate) fn status_list<R: Row>(r: &R) -> Result<StoredStatusList> {
    Ok(StoredStatusList {
        issuer: r.col(0)?,
        sequence: r.col(1)?,
        issued_at: r.col(2)?,
        next_update: r.col(3)?,
        signed: r.col::<Option<Vec<u8>>>(4)?.unwrap_or_default(),
        stored_at: r.col(5)?,
    })
}

/// A status list entry ([`STATUS_ENTRIES`]).
pub(crate) fn status_entry<R: Row>(r: &R) -> Result<StatusEntry> {
    Ok(StatusEntry {
        number: r.col(0)?,
        version: r.col(1)?,
        status: parsed("status", r.col(2)?, CertificateStatus::parse)?,
        since: r.col(3)?,
        reason: r.col(4)?,
        superseded_by: r.col(5)?,
    })
}

/// A received certificate ([`RECEIVED_COLS`]).
pub(crate) fn received<R: Row>(r: &R) -> Result<ReceivedCertificate> {
    Ok(ReceivedCertificate {
        id: r.col(0)?,
        issuing_country: r.col(1)?,
        number: r.col(2)?,
        version: r.col(3)?,
        document: crate::text::unpack(r.col(4)?)?,
        received_at: r.col(5)?,
        status: parsed("status", r.col(6)?, ReceivedStatus::parse)?,
        verdict: r.col(7)?,
        revoked_reason: r.col(8)?,
        message_id: r.col(9)?,
        exporter: r.col(10)?,
    })
}

/// `(id, status)` of a received certificate.
pub(crate) fn received_status<R: Row>(r: &R) -> Result<(i64, ReceivedStatus)> {
    Ok((r.col(0)?, parsed("status", r.col(1)?, ReceivedStatus::parse)?))
}

/// An outbox row ([`OUTBOX_COLS`]).
pub(crate) fn outbox<R: Row>(r: &R) -> Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.col(0)?,
        id: r.col(1)?,
        recipient: r.col(2)?,
        kind: r.col(3)?,
        cert_key: r.col(4)?,
        body: r.col(5)?,
        attempts: r.col(6)?,
        created_at: r.col(7)?,
        next_attempt_at: r.col(8)?,
        last_error: r.col(9)?,
        dead: r.col(10)?,
    })
}

/// A reported status ([`STATUS_COLS`]).
pub(crate) fn status<R: Row>(r: &R) -> Result<StatusEvent> {
    Ok(StatusEvent {
        number: r.col(0)?,
        version: r.col(1)?,
        from_country: r.col(2)?,
        status: r.col(3)?,
        code: r.col(4)?,
        detail: r.col(5)?,
        message_id: r.col(6)?,
        at: r.col(7)?,
    })
}

/// A declaration without its lines ([`DECL_COLS`]).
pub(crate) fn declaration<R: Row>(r: &R) -> Result<Declaration> {
    Ok(Declaration {
        id: r.col(0)?,
        number: r.col(1)?,
        importer: r.col(2)?,
        importing_country: r.col(3)?,
        declaration_date: r.col(4)?,
        document: r.col(5)?,
        risk_score: r.col(6)?,
        risk: r.col(7)?,
        created_by: r.col(8)?,
        created_at: r.col(9)?,
        lines: vec![],
    })
}

/// A declaration line ([`LINE_COLS`]).
pub(crate) fn line<R: Row>(r: &R) -> Result<DeclarationLine> {
    Ok(DeclarationLine {
        line_no: r.col(0)?,
        eco_country: r.col(1)?,
        eco_number: r.col(2)?,
        exporter: r.col(3)?,
        outcome: r.col(4)?,
        reasons: r.col(5)?,
        matched_item: r.col(6)?,
        consumed: r.col(7)?,
        duty: r.col(8)?,
        decided_at: r.col(9)?,
    })
}

/// A verification request ([`VERIFICATION_COLS`]).
pub(crate) fn verification<R: Row>(r: &R) -> Result<VerificationRequest> {
    Ok(VerificationRequest {
        id: r.col(0)?,
        direction: r.col(1)?,
        message_id: r.col(2)?,
        issuing_country: r.col(3)?,
        number: r.col(4)?,
        partner: r.col(5)?,
        questions: r.col(6)?,
        deadline: r.col(7)?,
        status: r.col(8)?,
        answer: r.col(9)?,
        outcome: r.col(10)?,
        created_at: r.col(11)?,
        answered_at: r.col(12)?,
    })
}

/// A consumption ([`UTILIZATION_COLS`]).
pub(crate) fn utilization<R: Row>(r: &R) -> Result<Utilization> {
    Ok(Utilization {
        issuing_country: r.col(0)?,
        number: r.col(1)?,
        item: r.col(2)?,
        quantity: r.col(3)?,
        remaining_after: r.col(4)?,
        declaration: r.col(5)?,
    })
}

/// A company: `id, name, country`.
pub(crate) fn company<R: Row>(r: &R) -> Result<Company> {
    Ok(Company { id: r.col(0)?, name: r.col(1)?, country: r.col(2)? })
}

/// A user: `id, name, role, company_id`.
pub(crate) fn user<R: Row>(r: &R) -> Result<User> {
    Ok(User {
        id: r.col(0)?,
        name: r.col(1)?,
        role: parsed("role", r.col(2)?, Role::parse)?,
        company_id: r.col(3)?,
    })
}

/// The columns of a [`Login`] (users `u`).
pub(crate) const LOGIN_COLS: &str = "u.id, u.name, u.role, u.company_id, u.password_hash, u.disabled_at";

/// A user who may sign in ([`LOGIN_COLS`]).
pub(crate) fn login<R: Row>(r: &R) -> Result<Login> {
    let disabled_at: Option<String> = r.col(5)?;
    Ok(Login { user: user(r)?, password_hash: r.col(4)?, disabled: disabled_at.is_some() })
}

/// The columns of a [`Session`] (users `u`, sessions `s`).
pub(crate) const SESSION_COLS: &str =
    "u.id, u.name, u.role, u.company_id, s.csrf, s.created_at, s.last_seen_at";

/// The query of a session in force (not ended, its user not disabled) by its id's hash, the
/// backend's first placeholder `p1`.
pub(crate) fn session_by_id(p1: &str) -> String {
    format!(
        "SELECT {SESSION_COLS} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id_hash = {p1} AND s.ended_at IS NULL AND u.disabled_at IS NULL"
    )
}

/// A session in force ([`SESSION_COLS`]).
pub(crate) fn session<R: Row>(r: &R) -> Result<Session> {
    Ok(Session { user: user(r)?, csrf: r.col(4)?, created_at: r.col(5)?, last_seen_at: r.col(6)? })
}

/// The columns of a [`UserRecord`] (users `u`, left-joined companies `c`).
pub(crate) const USER_RECORD_COLS: &str = "u.id, u.name, u.role, c.name, u.disabled_at, u.created_at, \
     (SELECT count(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL), \
     (u.password_hash IS NOT NULL), u.email";

/// A user as an administrator sees it ([`USER_RECORD_COLS`]).
pub(crate) fn user_record<R: Row>(r: &R) -> Result<UserRecord> {
    let disabled_at: Option<String> = r.col(4)?;
    Ok(UserRecord {
        id: r.col(0)?,
        name: r.col(1)?,
        role: parsed("role", r.col(2)?, Role::parse)?,
        company: r.col(3)?,
        disabled: disabled_at.is_some(),
        disabled_at,
        created_at: r.col(5)?,
        active_tokens: r.col(6)?,
        password_set: r.col(7)?,
        email: r.col(8)?,
    })
}

/// A refused message ([`REFUSAL_COLS`]).
pub(crate) fn refusal<R: Row>(r: &R) -> Result<Refusal> {
    Ok(Refusal {
        message_id: r.col(0)?,
        from_country: r.col(1)?,
        kind: r.col(2)?,
        via: r.col(3)?,
        code: r.col(4)?,
        reason: r.col(5)?,
        at: r.col(6)?,
    })
}

/// An inbox row ([`INBOX_COLS`]).
pub(crate) fn inbox_record<R: Row>(r: &R) -> Result<InboxRecord> {
    Ok(InboxRecord {
        message_id: r.col(0)?,
        from_country: r.col(1)?,
        kind: r.col(2)?,
        state: r.col(3)?,
        reason: r.col(4)?,
        received_at: r.col(5)?,
        updated_at: r.col(6)?,
    })
}

/// An audit event ([`AUDIT_COLS`]).
pub(crate) fn audit_event<R: Row>(r: &R) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: r.col(0)?,
        at: r.col(1)?,
        actor: r.col(2)?,
        action: r.col(3)?,
        entity: r.col(4)?,
        before: r.col(5)?,
        after: r.col(6)?,
        prev_hash: r.col(7)?,
        hash: r.col(8)?,
    })
}

/// The first column.
pub(crate) fn first<R: Row, T: Col>(r: &R) -> Result<T> {
    r.col(0)
}

/// The first two columns.
pub(crate) fn pair<R: Row, A: Col, B: Col>(r: &R) -> Result<(A, B)> {
    Ok((r.col(0)?, r.col(1)?))
}

/// `condition` when a filter is asked, else `none` (which holds when its parameter is null):
/// a plain condition lets the planner walk an index from a page bound, or read a search index,
/// where the `(? IS NULL OR …)` form makes it read every row (seconds at a million).
pub(crate) fn plain(asked: bool, condition: &str, none: &str) -> String {
    if asked { condition } else { none }.to_owned()
}

/// The page bound and order of an application list, `(condition, order)`: newest first below
/// the bound, or oldest first (a queue) above it. `bound` is the bound's placeholder, `none`
/// the condition when there is no bound. Written as plain conditions, so that the planner
/// walks the primary key from the bound.
pub(crate) fn application_page(
    has_bound: bool,
    oldest_first: bool,
    bound: &str,
    none: &str,
) -> (String, &'static str) {
    let order = if oldest_first { "ASC" } else { "DESC" };
    let condition = match (has_bound, oldest_first) {
        (false, _) => none.to_owned(),
        (true, false) => format!("a.id < {bound}"),
        (true, true) => format!("a.id > {bound}"),
    };
    (condition, order)
}

/// A declaration number searched among the numbers (`like`: the backend's pattern test of
/// `x.number`), not row by row in risk order; `none` when no number is asked.
pub(crate) fn declaration_number(asked: bool, like: &str, none: &str) -> String {
    if asked {
        format!("d.id IN (SELECT x.id FROM declarations x WHERE x.number {like})")
    } else {
        none.to_owned()
    }
}

/// The keyset condition after the previous page's last declaration (bound as the first
/// parameter, `first` being that backend's `?1` / `$1`) and the order of the declarations'
/// list: highest risk first (ties newest first), or newest first. One rule for both backends.
pub(crate) fn declaration_page(by_risk: bool, first: &str) -> (String, &'static str) {
    if by_risk {
        (
            format!("(risk_score, id) < (SELECT risk_score, id FROM declarations WHERE id = {first})"),
            "risk_score DESC, id DESC",
        )
    } else {
        (format!("id < {first}"), "id DESC")
    }
}

/// The revenue sums of the days `p1 <= day < p2` (the backend's first two parameters), from
/// the running daily totals, grouped by month, agreement, partner and currency. `sum` wraps a
/// sum for the backend (PostgreSQL's `SUM(bigint)` is `numeric`).
pub(crate) fn revenue_groups_sql(p1: &str, p2: &str, sum: fn(&str) -> String) -> String {
    format!(
        "SELECT substr(day, 1, 7), NULLIF(agreement, ''), NULLIF(partner, ''), currency, {}, {}, {} \
         FROM revenue_days WHERE day >= {p1} AND day < {p2} GROUP BY 1, 2, 3, 4 HAVING {} <> 0 \
         ORDER BY 1, COALESCE(NULLIF(agreement, ''), ''), COALESCE(NULLIF(partner, ''), ''), 4",
        sum("lines"),
        sum("mfn_minor"),
        sum("due_minor"),
        sum("lines"),
    )
}

/// Adds a line (the parameters `p1`, `p2`: declaration id and line number) to the daily
/// revenue totals `p3` times, when it is decided and its duty computed.
pub(crate) fn count_revenue_sql(p1: &str, p2: &str, p3: &str) -> String {
    format!(
        "INSERT INTO revenue_days (day, agreement, partner, currency, lines, mfn_minor, due_minor) \
         SELECT declared_on, COALESCE(agreement, ''), COALESCE(eco_country, ''), currency, {p3}, {p3} * mfn_minor, \
                {p3} * (CASE WHEN outcome = 'granted' THEN due_granted_minor ELSE due_denied_minor END) \
         FROM declaration_lines WHERE declaration_id = {p1} AND line_no = {p2} AND outcome <> 'pending' \
           AND currency IS NOT NULL AND declared_on IS NOT NULL \
         ON CONFLICT (day, agreement, partner, currency) DO UPDATE SET lines = revenue_days.lines + excluded.lines, \
           mfn_minor = revenue_days.mfn_minor + excluded.mfn_minor, due_minor = revenue_days.due_minor + excluded.due_minor"
    )
}

/// A row of [`revenue_groups_sql`].
pub(crate) fn revenue_group<R: Row>(r: &R) -> Result<RevenueGroup> {
    Ok(RevenueGroup {
        month: r.col(0)?,
        agreement: r.col(1)?,
        partner: r.col(2)?,
        currency: r.col(3)?,
        lines: r.col(4)?,
        mfn_minor: r.col(5)?,
        due_minor: r.col(6)?,
    })
}

/// The lines of the same period left out of [`revenue_groups_sql`] (pending, or without a
/// computed duty), with their declaration number (column 10), at most the third parameter.
pub(crate) fn lines_unsummed_sql(p1: &str, p2: &str, p3: &str) -> String {
    format!(
        "SELECT {}, d.number FROM declaration_lines l JOIN declarations d ON d.id = l.declaration_id \
         WHERE l.declared_on >= {p1} AND l.declared_on < {p2} AND (l.outcome = 'pending' OR l.currency IS NULL) \
         ORDER BY l.declaration_id, l.line_no LIMIT {p3}",
        line_cols_of_l()
    )
}

/// The columns of a [`Notification`].
pub(crate) const NOTIFICATION_COLS: &str = "n.id, n.audience, n.kind, n.link, n.args, n.at";

/// A notification ([`NOTIFICATION_COLS`] from column `at`).
pub(crate) fn notification<R: Row>(r: &R, at: usize) -> Result<Notification> {
    Ok(Notification {
        id: r.col(at)?,
        audience: r.col(at + 1)?,
        kind: r.col(at + 2)?,
        link: r.col(at + 3)?,
        args: r.col(at + 4)?,
        at: r.col(at + 5)?,
    })
}

/// A delivery due: `d.id, d.channel, d.target, d.attempts`, then [`NOTIFICATION_COLS`].
pub(crate) fn delivery<R: Row>(r: &R) -> Result<Delivery> {
    Ok(Delivery {
        id: r.col(0)?,
        channel: r.col(1)?,
        target: r.col(2)?,
        attempts: r.col(3)?,
        notification: notification(r, 4)?,
    })
}

/// The deliveries due at the first parameter, oldest first, at most the second.
pub(crate) fn due_deliveries_sql(p1: &str, p2: &str) -> String {
    format!(
        "SELECT d.id, d.channel, d.target, d.attempts, {NOTIFICATION_COLS} FROM notification_deliveries d \
         JOIN notifications n ON n.id = d.notification_id \
         WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_at <= {p1} ORDER BY d.next_at, d.id LIMIT {p2}"
    )
}

/// How many notifications for two audiences are newer than the third parameter, counted up to
/// the fourth: a bounded walk of `notifications_audience`.
pub(crate) fn notifications_after_sql(a: &str, b: &str, after: &str, cap: &str) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE audience IN ({a}, {b}) AND id > {after} LIMIT {cap}) x"
    )
}

/// Below this many lines with an outcome, the declarations with one are found from those
/// lines (`declaration_lines_outcome`); at or above it, the declarations are walked in their
/// order until a page is found, which a common outcome fills at once.
pub(crate) const RARE_OUTCOME: i64 = 5000;

/// Whether fewer than [`RARE_OUTCOME`] lines have the outcome bound as `p` (a bounded count).
pub(crate) fn rare_outcome_sql(p: &str) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM declaration_lines WHERE outcome = {p} LIMIT {RARE_OUTCOME}) x"
    )
}

/// The condition on `d` for the outcome bound as `p`: none asked, a rare one (found from its
/// lines) or a common one (checked declaration by declaration).
pub(crate) fn declaration_outcome(asked: bool, rare: bool, p: &str, none: &str) -> String {
    match (asked, rare) {
        (false, _) => none.to_owned(),
        (true, true) => {
            format!("d.id IN (SELECT l.declaration_id FROM declaration_lines l WHERE l.outcome = {p})")
        }
        (true, false) => {
            format!(
                "EXISTS (SELECT 1 FROM declaration_lines l WHERE l.declaration_id = d.id AND l.outcome = {p})"
            )
        }
    }
}

/// The received-at bounds of a [`ReceivedFilter`] as stored text: from the first instant of
/// `from`, before the first instant of the day after `to`.
pub(crate) fn received_days(f: &ReceivedFilter) -> (Option<String>, Option<String>) {
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    (f.from.map(day), f.to.and_then(|d| d.succ_opt()).map(day))
}
