//! The administrator's pages: users (add with a password or an invitation link, disable after
//! a page that says what happens, enable, reset a password), the exchange's queues with dead
//! letters to retry, the trust list in force (members, expiry, reload), the audit log (browse,
//! verify the chain), and when the node's keys expire.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use originlink_node::app::{self, exchange_admin, notifications, oversight, sessions, users};
use originlink_store::{Role, UserChange};
use serde::Deserialize;

use crate::Shared;
use crate::auth::{self, Done, Person, page_ctx, redirect_with_flash, shown};
use crate::forms::{Errors, FormData};

/// Who the administrator's pages are for.
const ADMIN: &[Role] = &[Role::Admin];

fn admin(s: &Shared, person: &Person) -> Result<(), Response> {
    person.require(s, ADMIN)
}

/// The roles a user can have, with their catalogue ids.
const ROLES: &[(&str, &str)] = &[
    ("exporter", "role-exporter"),
    ("issuing-officer", "role-issuing-officer"),
    ("customs-officer", "role-customs-officer"),
    ("admin", "role-admin"),
];

/// `GET /admin/users`: every user, and the form to add one.
pub async fn users(State(s): State<Shared>, person: Person) -> Response {
    users_page(&s, &person, StatusCode::OK, &Errors::default(), &FormData::default(), None).await
}

async fn users_page(
    s: &Shared,
    person: &Person,
    status: StatusCode,
    errors: &Errors,
    form: &FormData,
    invitation: Option<String>,
) -> Response {
    if let Err(r) = admin(s, person) {
        return r;
    }
    let list = match users::list(s.app.store.as_ref()).await {
        Ok(l) => l,
        Err(e) => return s.views.error_page(Some(person), &e),
    };
    let title = s.views.messages().text("users-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/admin/users"),
        rows => list,
        roles => ROLES,
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        v => form.values(),
        invitation => invitation,
        min => sessions::MIN_PASSWORD,
    };
    shown(s, person, s.views.render_status(status, "users.html", ctx))
}

/// The invitation link for `token`, as the person will open it.
fn invitation_link(s: &Shared, headers: &axum::http::HeaderMap, token: &str) -> String {
    s.base.url(headers, &format!("/invitation/{token}"))
}

/// `POST /admin/users`: adds a user with a password, or with an invitation link to show.
pub async fn add_user(
    State(s): State<Shared>,
    person: Person,
    headers: axum::http::HeaderMap,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    let mut errors = Errors::default();
    let role = Role::parse(form.get("role").unwrap_or_default());
    if role.is_none() {
        errors.add("role", s.views.messages().text("need-role", &[]), "ROLE_REQUIRED");
    }
    let password = form.get("password").unwrap_or_default();
    if !password.is_empty()
        && let Err(e) = sessions::check_password(password)
    {
        errors.add("password", s.views.error_text(&e), e.code);
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return users_page(&s, &person, StatusCode::BAD_REQUEST, &errors, &form, None).await;
    };
    let ctx = s.app.ctx(&person.user);
    let country = s.app.issuer.authority.country.clone();
    let company = form.text("company");
    let user = match users::add_user(
        s.app.store.as_ref(),
        &ctx,
        form.get("name").unwrap_or_default(),
        role,
        company.as_deref(),
        &country,
    )
    .await
    {
        Ok((user, _token)) => user,
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict) => {
            let field = match e.field.as_deref() {
                Some("company") => "company",
                _ => "name",
            };
            errors.add(field, s.views.error_text(&e), e.code);
            return users_page(&s, &person, StatusCode::BAD_REQUEST, &errors, &form, None).await;
        }
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    if !password.is_empty() {
        if let Err(e) = sessions::set_password(s.app.store.as_ref(), &ctx, user.id, password).await {
            return s.views.error_page(Some(&person), &e);
        }
        let text = s.views.messages().text("flash-user-added", &[("name", user.name.clone())]);
        return redirect_with_flash(&s, "/admin/users", &text);
    }
    match sessions::invite(&s.app, &person.user, user.id).await {
        Ok(token) => {
            let mut p = person.clone();
            p.flash = Some(s.views.messages().text("flash-user-invited", &[("name", user.name.clone())]));
            users_page(
                &s,
                &p,
                StatusCode::OK,
                &Errors::default(),
                &FormData::default(),
                Some(invitation_link(&s, &headers, &token)),
            )
            .await
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// `GET /admin/users/{id}`: one user, with disable (saying what it does), enable, a new
/// invitation link and a new password.
pub async fn user_page(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    user_form(&s, &person, id, StatusCode::OK, &Errors::default(), None, None).await
}

async fn user_form(
    s: &Shared,
    person: &Person,
    id: i64,
    status: StatusCode,
    errors: &Errors,
    invitation: Option<String>,
    typed_email: Option<&str>,
) -> Response {
    if let Err(r) = admin(s, person) {
        return r;
    }
    let u = match users::get(s.app.store.as_ref(), id).await {
        Ok(u) => u,
        Err(e) => return s.views.error_page(Some(person), &e),
    };
    let title = s.views.messages().text("user-title", &[("name", u.name.clone())]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/admin/users"),
        u => u,
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        invitation => invitation,
        myself => id == person.user.id,
        min => sessions::MIN_PASSWORD,
        email => context! { email => typed_email.map(str::to_owned).or(u.email.clone()) },
    };
    shown(s, person, s.views.render_status(status, "user.html", ctx))
}

async fn change(
    s: Shared,
    person: Person,
    id: i64,
    form: FormData,
    what: UserChange,
    flash: &str,
) -> Response {
    let action = async {
        let ctx = s.app.ctx(&person.user);
        let u = users::change(s.app.store.as_ref(), &ctx, Some(person.user.id), id, what).await?;
        Ok(Done {
            to: format!("/admin/users/{id}"),
            flash: s.views.messages().text(flash, &[("name", u.name)]),
        })
    };
    auth::post_action(&s, &person, ADMIN, &form, &format!("/admin/users/{id}"), action).await
}

/// `POST /admin/users/{id}/disable`: the user's sessions end and tokens stop working.
pub async fn disable(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    change(s, person, id, form, UserChange::Disable, "flash-user-disabled").await
}

/// `POST /admin/users/{id}/enable`
pub async fn enable(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    change(s, person, id, form, UserChange::Enable, "flash-user-enabled").await
}

/// `POST /admin/users/{id}/invite`: a new one-time link to set a password.
pub async fn invite(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    match sessions::invite(&s.app, &person.user, id).await {
        Ok(token) => {
            user_form(
                &s,
                &person,
                id,
                StatusCode::OK,
                &Errors::default(),
                Some(invitation_link(&s, &headers, &token)),
                None,
            )
            .await
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// `POST /admin/users/{id}/password`: sets a new password; the user's sessions end.
pub async fn set_password(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    let password = form.get("password").unwrap_or_default();
    let done = sessions::set_password(s.app.store.as_ref(), &s.app.ctx(&person.user), id, password).await;
    // A password is never shown again, not even after an error.
    after_user_change(&s, &person, id, ("password", None), "flash-password-set", done).await
}

/// `POST /admin/users/{id}/email`: where the user's notifications are e-mailed (empty:
/// nowhere).
pub async fn set_email(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    let typed = form.get("email").unwrap_or_default();
    let done =
        notifications::set_email(s.app.store.as_ref(), &s.app.ctx(&person.user), id, Some(typed)).await;
    after_user_change(&s, &person, id, ("email", Some(typed)), "flash-email-set", done).await
}

/// Back to the user's page with the `flash` text, or the page again with the error on
/// `field` (and what was typed in it, when it may be shown again).
async fn after_user_change(
    s: &Shared,
    person: &Person,
    id: i64,
    (field, typed): (&str, Option<&str>),
    flash: &str,
    done: app::Result<originlink_store::UserRecord>,
) -> Response {
    match done {
        Ok(u) => {
            let text = s.views.messages().text(flash, &[("name", u.name.clone())]);
            redirect_with_flash(s, &format!("/admin/users/{id}"), &text)
        }
        Err(e) if e.kind == app::Kind::Invalid => {
            let mut errors = Errors::default();
            errors.add(field, s.views.error_text(&e), e.code);
            user_form(s, person, id, StatusCode::BAD_REQUEST, &errors, None, typed).await
        }
        Err(e) => s.views.error_page(Some(person), &e),
    }
}

/// `GET /admin/exchange`: the queues, the outbox, dead letters (retry), quarantined and
/// refused messages.
pub async fn exchange(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = admin(&s, &person) {
        return r;
    }
    let got = async {
        Ok::<_, app::Error>((
            exchange_admin::status(&s.app).await?,
            exchange_admin::outbox(&s.app).await?,
            exchange_admin::dead_letters(&s.app).await?,
            exchange_admin::quarantined(&s.app).await?,
            exchange_admin::refused(&s.app).await?,
        ))
    }
    .await;
    let (status, outbox, dead, quarantined, refused) = match got {
        Ok(x) => x,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let title = s.views.messages().text("exchange-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/admin/exchange"),
        status => status,
        outbox => outbox.into_iter().take(100).collect::<Vec<_>>(),
        dead => dead,
        quarantined => quarantined.into_iter().take(100).collect::<Vec<_>>(),
        refused => refused.into_iter().take(100).collect::<Vec<_>>(),
    };
    shown(&s, &person, s.views.render("exchange.html", ctx))
}

/// `POST /admin/exchange/dead/{id}/retry`
pub async fn retry(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    let action = async {
        exchange_admin::retry(&s.app, &person.user, &id).await?;
        Ok(Done {
            to: "/admin/exchange".into(),
            flash: s.views.messages().text("flash-retried", &[("id", id.clone())]),
        })
    };
    auth::post_action(&s, &person, ADMIN, &form, "/admin/exchange", action).await
}

/// `GET /admin/trust-list`: the list in force: sequence, when the next is due, members.
pub async fn trust_list(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = admin(&s, &person) {
        return r;
    }
    let now = s.app.clock.now();
    let list = s.app.exchange.as_ref().map(|x| {
        let t = x.trust();
        context! {
            sequence => t.sequence,
            issued_at => t.issued_at.to_rfc3339(),
            next_update => t.next_update.to_rfc3339(),
            days_left => (t.next_update - now).num_days(),
            overdue => t.next_update < now,
            members => t.members(),
        }
    });
    // The certificate status lists held: this node's own and each partner's, with whether each
    // is still in force (past its next update, certificates of that issuer cannot be verified).
    let status_lists = match app::status::lists(&s.app).await {
        Ok(lists) => lists
            .into_iter()
            .map(|l| {
                let stale = chrono::DateTime::parse_from_rfc3339(&l.next_update).map_or(true, |t| t < now);
                context! { issuer => l.issuer, sequence => l.sequence, issued_at => l.issued_at, next_update => l.next_update, stale => stale }
            })
            .collect::<Vec<_>>(),
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let title = s.views.messages().text("trust-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/admin/trust-list"),
        list => list,
        status_lists => status_lists,
    };
    shown(&s, &person, s.views.render("trust_list.html", ctx))
}

/// `POST /admin/trust-list/reload`: reads the trust list file again.
pub async fn reload_trust_list(State(s): State<Shared>, person: Person, form: FormData) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    let m = s.views.messages();
    let text = match s.app.exchange.as_ref().map(|x| x.reload_trust_list()) {
        None => m.text("error-EXCHANGE_NOT_CONFIGURED", &[]),
        Some(Ok(originlink_node::exchange::Reload::Loaded(seq))) => {
            m.text("flash-trust-loaded", &[("sequence", seq.to_string())])
        }
        Some(Ok(originlink_node::exchange::Reload::Unchanged(seq))) => {
            m.text("flash-trust-unchanged", &[("sequence", seq.to_string())])
        }
        Some(Err(e)) => m.text("flash-trust-refused", &[("reason", e)]),
    };
    tracing::info!(user = person.user.id, "trust list reload asked from the console");
    redirect_with_flash(&s, "/admin/trust-list", &text)
}

/// `?before=` of the audit page.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
}

/// Events the audit page shows at once.
const AUDIT_PAGE: i64 = 50;

/// `GET /admin/audit`: the newest events first, 50 a page.
pub async fn audit(State(s): State<Shared>, person: Person, Query(q): Query<AuditQuery>) -> Response {
    audit_page(&s, &person, q.before, None).await
}

async fn audit_page(
    s: &Shared,
    person: &Person,
    before: Option<i64>,
    verdict: Option<(bool, String)>,
) -> Response {
    if let Err(r) = admin(s, person) {
        return r;
    }
    let page = match oversight::audit_page(&s.app, before, AUDIT_PAGE).await {
        Ok(p) => p,
        Err(e) => return s.views.error_page(Some(person), &e),
    };
    let title = s.views.messages().text("audit-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/admin/audit"),
        events => page.events,
        head => page.head,
        next => page.next,
        verdict => verdict.map(|(ok, text)| context! { ok => ok, text => text }),
    };
    shown(s, person, s.views.render("audit.html", ctx))
}

/// `POST /admin/audit/verify`: checks the whole chain against its key and checkpoint.
pub async fn verify_audit(State(s): State<Shared>, person: Person, form: FormData) -> Response {
    if let Err(r) = auth::may_post(&s, &person, ADMIN, &form) {
        return r;
    }
    let m = s.views.messages();
    let verdict = match oversight::verify_audit(&s.app).await {
        Ok(Ok(v)) => (true, m.text("audit-intact", &[("events", v.events.to_string())])),
        Ok(Err(b)) => {
            (false, m.text("audit-broken", &[("seq", b.seq.to_string()), ("reason", b.reason.to_owned())]))
        }
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    audit_page(&s, &person, None, Some(verdict)).await
}

/// `GET /admin/keys`: the certificates in the authority's key folder and when they expire.
pub async fn keys(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = admin(&s, &person) {
        return r;
    }
    let title = s.views.messages().text("keys-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/admin/keys"),
        rows => oversight::key_certificates(&s.app),
    };
    shown(&s, &person, s.views.render("keys.html", ctx))
}
