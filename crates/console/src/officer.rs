//! The issuing officer's pages: the review queue (oldest first), approving, rejecting or
//! returning an application with a reason, revoking a certificate after a page that says what
//! will happen, and answering verification requests before their deadline.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use originlink_node::app::{self, applications, verifications};
use originlink_store::Role;
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::auth::{self, Done, Person, page_ctx, redirect_with_flash, shown};
use crate::forms::{Errors, FormData};

/// Who the officer's pages are for.
const OFFICER: &[Role] = &[Role::IssuingOfficer];

/// `?q=&from=&to=` of the queue.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// The last id of the previous page.
    #[serde(default)]
    after: Option<i64>,
}

/// Applications the queue shows a page.
pub const QUEUE_SIZE: i64 = 100;

/// `GET /review`: submitted applications, oldest first, with their warnings counted.
pub async fn queue(State(s): State<Shared>, person: Person, Query(q): Query<QueueQuery>) -> Response {
    if let Err(r) = person.require(&s, OFFICER) {
        return r;
    }
    let empty = |v: &Option<String>| v.clone().filter(|t| !t.trim().is_empty());
    let query = applications::ApplicationQuery {
        status: Some("submitted".into()),
        q: empty(&q.q),
        from: empty(&q.from),
        to: empty(&q.to),
        oldest_first: true,
    };
    let listed = match app::page(&person.user, Some(QUEUE_SIZE + 1), q.after) {
        Ok(page) => applications::list(&s.app, &person.user, &page, &query).await,
        Err(e) => Err(e),
    };
    let (rows, error) = match listed {
        Ok(rows) => (rows, None),
        Err(e) if e.kind == app::Kind::Invalid => (vec![], Some(s.views.error_text(&e))),
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let more = rows.len() as i64 > QUEUE_SIZE;
    let rows: Vec<_> = rows.into_iter().take(QUEUE_SIZE as usize).collect();
    let next = if more { rows.last().map(|a| a.id) } else { None };
    let title = s.views.messages().text("review-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/review"),
        rows => rows,
        q => context! { q => q.q, from => q.from, to => q.to },
        error => error,
        next => next,
        first => q.after.is_none(),
    };
    shown(&s, &person, s.views.render("review.html", ctx))
}

/// The queue after a decision on application `id`, with `flash` (its text id).
fn to_queue(s: &Shared, flash: &str, id: i64, number: &str) -> Done {
    let text = s.views.messages().text(flash, &[("id", id.to_string()), ("number", number.to_owned())]);
    Done { to: "/review".into(), flash: text }
}

/// `POST /applications/{id}/approve`: numbers, signs and sends the certificate.
pub async fn approve(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let action = async {
        let c = applications::approve(&s.app, &person.user, id).await?;
        Ok(to_queue(&s, "flash-approved", id, &c.number))
    };
    auth::post_action(&s, &person, OFFICER, &form, &format!("/applications/{id}"), action).await
}

/// `POST /applications/{id}/reject` with a reason.
pub async fn reject(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let reason = form.get("reason").unwrap_or_default();
    let action = async {
        applications::reject(&s.app, &person.user, id, reason).await?;
        Ok(to_queue(&s, "flash-rejected", id, ""))
    };
    auth::post_action(&s, &person, OFFICER, &form, &format!("/applications/{id}"), action).await
}

/// `POST /applications/{id}/return` with a reason: back to the exporter for correction.
pub async fn return_for_correction(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let reason = form.get("reason").unwrap_or_default();
    let action = async {
        applications::return_for_correction(&s.app, &person.user, id, reason).await?;
        Ok(to_queue(&s, "flash-returned", id, ""))
    };
    auth::post_action(&s, &person, OFFICER, &form, &format!("/applications/{id}"), action).await
}

/// `GET /certificates/{id}/revoke`: what revoking does, and the reason to give.
pub async fn revoke_page(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    revoke_form(&s, &person, id, StatusCode::OK, &Errors::default(), "").await
}

async fn revoke_form(
    s: &Shared,
    person: &Person,
    id: i64,
    status: StatusCode,
    errors: &Errors,
    reason: &str,
) -> Response {
    if let Err(r) = person.require(s, OFFICER) {
        return r;
    }
    let c = match applications::certificate(&s.app, &person.user, id).await {
        Ok(c) => c,
        Err(e) => return s.views.error_page(Some(person), &e),
    };
    let title = s.views.messages().text("revoke-title", &[("number", c.number.clone())]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, ""),
        c => &c,
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        reason => reason,
    };
    s.views.render_status(status, "revoke.html", ctx)
}

/// `POST /certificates/{id}/revoke` with a reason: revoked, and the importing country told.
pub async fn revoke(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, OFFICER, &form) {
        return r;
    }
    let reason = form.get("reason").unwrap_or_default();
    match applications::revoke(&s.app, &person.user, id, reason).await {
        Ok(c) => {
            let text = s.views.messages().text("flash-revoked", &[("number", c.number.clone())]);
            redirect_with_flash(&s, &format!("/certificates/{id}"), &text)
        }
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict) => {
            let mut errors = Errors::default();
            errors.add("reason", s.views.error_text(&e), e.code);
            revoke_form(&s, &person, id, StatusCode::BAD_REQUEST, &errors, reason).await
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// A verification request as the list shows it.
#[derive(Debug, Serialize)]
struct Request {
    #[serde(flatten)]
    v: originlink_store::VerificationRequest,
    overdue: bool,
    questions_list: Vec<String>,
}

fn shown_request(v: originlink_store::VerificationRequest, now: chrono::DateTime<chrono::Utc>) -> Request {
    let overdue = verifications::is_overdue(&v, now);
    let questions_list =
        serde_json::from_str::<Vec<String>>(&v.questions).unwrap_or_else(|_| vec![v.questions.clone()]);
    Request { v, overdue, questions_list }
}

/// `GET /verifications`: requests other members asked about our certificates, open first,
/// with their deadlines.
pub async fn verifications(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = person.require(&s, &[Role::IssuingOfficer, Role::CustomsOfficer]) {
        return r;
    }
    // The issuing officer answers what others ask; importing customs follows what it asked.
    let outgoing = person.user.role == Role::CustomsOfficer;
    let direction = if outgoing { "outgoing" } else { "incoming" };
    let list = match verifications::list(&s.app, Some(direction), false).await {
        Ok(l) => l,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let now = s.app.clock.now();
    let mut rows: Vec<Request> = list.into_iter().map(|v| shown_request(v, now)).collect();
    rows.sort_by(|a, b| (a.v.status != "open", &a.v.deadline).cmp(&(b.v.status != "open", &b.v.deadline)));
    let title = s.views.messages().text("verifications-title", &[]);
    let ctx = context! { page => page_ctx(Some(&person), &title, "/verifications"), rows => rows, outgoing => outgoing };
    shown(&s, &person, s.views.render("verifications.html", ctx))
}

/// `GET /verifications/{id}`: the request and the form to answer it.
pub async fn verification_page(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    verification_form(&s, &person, id, StatusCode::OK, &Errors::default(), &FormData::default()).await
}

async fn verification_form(
    s: &Shared,
    person: &Person,
    id: i64,
    status: StatusCode,
    errors: &Errors,
    form: &FormData,
) -> Response {
    if let Err(r) = person.require(s, OFFICER) {
        return r;
    }
    let v = match verifications::incoming(&s.app, id).await {
        Ok(v) => v,
        Err(e) => return s.views.error_page(Some(person), &e),
    };
    let title = s.views.messages().text("verification-title", &[("number", v.number.clone())]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/verifications"),
        r => shown_request(v, s.app.clock.now()),
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        v => form.values(),
    };
    s.views.render_status(status, "verification.html", ctx)
}

/// `POST /verifications/{id}`: the answer, confirmed or denied, sent to the asking member.
pub async fn answer(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, OFFICER, &form) {
        return r;
    }
    let outcome = form.get("outcome").unwrap_or_default();
    match verifications::answer(&s.app, &person.user, id, form.get("answer").unwrap_or_default(), outcome)
        .await
    {
        Ok(v) => {
            let text = s.views.messages().text("flash-answered", &[("number", v.number.clone())]);
            redirect_with_flash(&s, "/verifications", &text)
        }
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict) => {
            let mut errors = Errors::default();
            errors.add(e.field.clone().unwrap_or_else(|| "answer".into()), s.views.error_text(&e), e.code);
            verification_form(&s, &person, id, StatusCode::BAD_REQUEST, &errors, &form).await
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}
