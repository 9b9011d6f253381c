//! Pages as people see them: the templates (compiled into the binary, autoescaped), the
//! message catalogue every text comes from (`messages/en.ftl`, Fluent), the stylesheet, the
//! error pages, and the headers every answer carries.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use minijinja::value::Kwargs;
use minijinja::{Environment, Value};
use originlink_node::AppState;
use originlink_node::app;

/// The stylesheet, served at `/console.css`.
pub const STYLESHEET: &str = include_str!("../static/console.css");

/// The English catalogue.
const MESSAGES_EN: &str = include_str!("../messages/en.ftl");

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    ("invitation.html", include_str!("../templates/invitation.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("verify.html", include_str!("../templates/verify.html")),
    ("applications.html", include_str!("../templates/applications.html")),
    ("application_form.html", include_str!("../templates/application_form.html")),
    ("upload.html", include_str!("../templates/upload.html")),
    ("application.html", include_str!("../templates/application.html")),
    ("assessment.html", include_str!("../templates/assessment.html")),
    ("boxes.html", include_str!("../templates/boxes.html")),
    ("certificates.html", include_str!("../templates/certificates.html")),
    ("certificate.html", include_str!("../templates/certificate.html")),
    ("review.html", include_str!("../templates/review.html")),
    ("revoke.html", include_str!("../templates/revoke.html")),
    ("verifications.html", include_str!("../templates/verifications.html")),
    ("verification.html", include_str!("../templates/verification.html")),
    ("received.html", include_str!("../templates/received.html")),
    ("declarations.html", include_str!("../templates/declarations.html")),
    ("declaration.html", include_str!("../templates/declaration.html")),
    ("declaration_form.html", include_str!("../templates/declaration_form.html")),
    ("revenue.html", include_str!("../templates/revenue.html")),
    ("notifications.html", include_str!("../templates/notifications.html")),
    ("users.html", include_str!("../templates/users.html")),
    ("user.html", include_str!("../templates/user.html")),
    ("exchange.html", include_str!("../templates/exchange.html")),
    ("trust_list.html", include_str!("../templates/trust_list.html")),
    ("audit.html", include_str!("../templates/audit.html")),
    ("keys.html", include_str!("../templates/keys.html")),
    ("operator/members.html", include_str!("../templates/operator/members.html")),
    ("operator/messages.html", include_str!("../templates/operator/messages.html")),
    ("operator/message.html", include_str!("../templates/operator/message.html")),
    ("operator/dead.html", include_str!("../templates/operator/dead.html")),
    ("operator/traffic.html", include_str!("../templates/operator/traffic.html")),
    ("operator/trust_list.html", include_str!("../templates/operator/trust_list.html")),
];

/// The catalogue and the templates.
pub struct Views {
    env: Environment<'static>,
    messages: Arc<Messages>,
    /// The issuing authority's name and country, shown in every title.
    authority: String,
}

impl std::fmt::Debug for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Views").field("authority", &self.authority).finish_non_exhaustive()
    }
}

/// The message catalogue: every text of every page.
pub struct Messages(FluentBundle<FluentResource>);

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Messages")
    }
}

impl Messages {
    /// The English catalogue. A broken catalogue is a bug caught by the tests.
    pub fn english() -> Messages {
        let resource = FluentResource::try_new(MESSAGES_EN.to_owned()).expect("messages/en.ftl parses");
        let lang: unic_langid::LanguageIdentifier = "en".parse().expect("en is a language");
        let mut bundle = FluentBundle::new_concurrent(vec![lang]);
        // Pages are HTML: no Unicode isolation marks around placeables.
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).expect("no duplicate message ids");
        Messages(bundle)
    }

    /// Whether the catalogue has `id`.
    pub fn has(&self, id: &str) -> bool {
        self.0.has_message(id)
    }

    /// The text of `id` with `args`; the id itself (so that a missing text shows) otherwise.
    pub fn text(&self, id: &str, args: &[(&str, String)]) -> String {
        let Some(pattern) = self.0.get_message(id).and_then(|m| m.value()) else { return id.to_owned() };
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            match v.parse::<f64>() {
                Ok(n) if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) => {
                    fa.set(*k, FluentValue::from(n))
                }
                _ => fa.set(*k, FluentValue::from(v.clone())),
            }
        }
        let mut errors = Vec::new();
        self.0.format_pattern(pattern, Some(&fa), &mut errors).into_owned()
    }

    /// Every message id (for the catalogue's completeness test).
    pub fn ids() -> Vec<String> {
        MESSAGES_EN
            .lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim().to_owned()))
            .collect()
    }
}

impl Views {
    /// Templates and catalogue for the node `app`.
    pub fn new(app: &AppState) -> Views {
        let a = &app.issuer.authority;
        Views::titled(format!("{} {}", a.country, a.name))
    }

    /// Templates and catalogue for a console whose every title ends with `authority` (the
    /// gateway's operator console: the gateway's id).
    pub fn titled(authority: String) -> Views {
        let messages = Arc::new(Messages::english());
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("templates compile");
        }
        let m = messages.clone();
        env.add_function("t", move |id: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let mut args = Vec::new();
            for k in kwargs.args() {
                let v: Value = kwargs.get(k)?;
                args.push((k, v.to_string()));
            }
            Ok(m.text(id, &args))
        });
        env.add_filter("date", |v: Value| -> String { human_date(&v.to_string()) });
        env.add_filter("datetime", |v: Value| -> String { human_datetime(&v.to_string()) });
        env.add_filter("percent", |v: Value| -> String { two_decimals(&v.to_string()) });
        Views { env, messages, authority }
    }

    /// The catalogue.
    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Renders template `name` with `ctx` (plus `authority`); a template error is a bug,
    /// logged and shown as a plain 500 page.
    pub fn render(&self, name: &str, ctx: Value) -> Response {
        self.render_status(StatusCode::OK, name, ctx)
    }

    /// [`Views::render`] with a status.
    pub fn render_status(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        let ctx = minijinja::context! { authority => self.authority.clone(), ..ctx };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "a page could not be rendered");
                (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><title>Error</title><p>Something went wrong on our side. Try again in a minute.</p>".to_owned())).into_response()
            }
        }
    }

    /// A page with one message (not found, forbidden, an error), in the layout.
    pub fn message(
        &self,
        status: StatusCode,
        person: Option<&crate::auth::Person>,
        title: &str,
        body: &str,
    ) -> Response {
        let ctx = minijinja::context! {
            page => crate::auth::page_ctx(person, title, ""),
            heading => title,
            body => body,
        };
        self.render_status(status, "message.html", ctx)
    }

    /// A page with one message, laid out by `page` (whose title is the heading).
    pub fn message_in(&self, status: StatusCode, page: crate::auth::PageCtx, body: &str) -> Response {
        let heading = page.title().to_owned();
        let ctx = minijinja::context! { page => page, heading => heading, body => body };
        self.render_status(status, "message.html", ctx)
    }

    /// A use case's error as a page: its words from the catalogue (`error-CODE`), or the
    /// use case's own message, with the code in small print.
    pub fn error_page(&self, person: Option<&crate::auth::Person>, e: &app::Error) -> Response {
        let status = match e.kind {
            app::Kind::Invalid => StatusCode::BAD_REQUEST,
            app::Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            app::Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            app::Kind::Forbidden => StatusCode::FORBIDDEN,
            app::Kind::NotFound => StatusCode::NOT_FOUND,
            app::Kind::Conflict => StatusCode::CONFLICT,
            app::Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            app::Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            app::Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let title = if e.kind == app::Kind::NotFound {
            self.messages.text("not-found-title", &[])
        } else {
            self.messages.text("error-title", &[])
        };
        let ctx = minijinja::context! {
            page => crate::auth::page_ctx(person, &title, ""),
            heading => title,
            body => self.error_text(e),
            code => e.code,
        };
        self.render_status(status, "message.html", ctx)
    }

    /// A use case's error in words: the catalogue's `error-CODE` when it has one, the use
    /// case's message otherwise.
    pub fn error_text(&self, e: &app::Error) -> String {
        let id = format!("error-{}", e.code);
        if self.messages.has(&id) { self.messages.text(&id, &[]) } else { e.message.clone() }
    }
}

/// `2 December 2026` from an RFC 3339 instant or a `YYYY-MM-DD` date; the input otherwise.
pub fn human_date(s: &str) -> String {
    let date = chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.date_naive())
        .or_else(|_| chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d"));
    match date {
        Ok(d) => d.format("%-d %B %Y").to_string(),
        Err(_) => s.to_owned(),
    }
}

/// A decimal with at most two decimals, cut (not rounded up): `87.5000` → `87.50`.
pub fn two_decimals(s: &str) -> String {
    match s.split_once('.') {
        Some((int, frac)) => format!("{int}.{:0<2}", frac.get(..2).unwrap_or(frac)),
        None => s.to_owned(),
    }
}

/// `2 December 2026, 14:05 UTC` from an RFC 3339 instant; [`human_date`] otherwise.
pub fn human_datetime(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(d) => d.with_timezone(&chrono::Utc).format("%-d %B %Y, %H:%M UTC").to_string(),
        Err(_) => human_date(s),
    }
}

/// `GET /console.css`: the one stylesheet, cached for a day.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        STYLESHEET,
    )
        .into_response()
}

/// Any other path: the not-found page.
pub async fn not_found(
    axum::extract::State(s): axum::extract::State<crate::Shared>,
    person: Option<crate::auth::Person>,
) -> Response {
    let title = s.views.messages().text("not-found-title", &[]);
    let body = s.views.messages().text("not-found-body", &[]);
    s.views.message(StatusCode::NOT_FOUND, person.as_ref(), &title, &body)
}

/// Headers on every answer: no framing, no sniffing, nothing loaded from elsewhere, no
/// referrer, pages not cached (they show a person's records).
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal ids in `text` that follow `open` (not preceded by a name's character) up to
    /// the closing quote.
    fn ids_after<'a>(text: &'a str, open: &str) -> Vec<&'a str> {
        let name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
        text.match_indices(open)
            .filter(|(i, _)| {
                open.starts_with("messages") || !text[..*i].chars().next_back().is_some_and(name_char)
            })
            .filter_map(|(i, _)| {
                let rest = &text[i + open.len()..];
                let end = rest.find('"')?;
                let id = &rest[..end];
                (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .then_some(id)
            })
            .collect()
    }

    /// Every text id a template or a handler asks for is in the English catalogue, and every
    /// template compiles: a missing text would show its id to people.
    #[test]
    fn every_text_id_is_in_the_catalogue() {
        let m = Messages::english();
        let sources = [
            include_str!("admin.rs"),
            include_str!("auth.rs"),
            include_str!("customs.rs"),
            include_str!("documents.rs"),
            include_str!("exporter.rs"),
            include_str!("notifications.rs"),
            include_str!("officer.rs"),
            include_str!("views.rs"),
            include_str!("operator/mod.rs"),
            include_str!("operator/sessions.rs"),
            include_str!("operator/pages.rs"),
        ];
        let (mut missing, mut checked) = (Vec::new(), 0);
        for (name, source) in TEMPLATES {
            let mut env = Environment::new();
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e}"));
            for id in ids_after(source, "t(\"") {
                checked += 1;
                if !m.has(id) && !id.ends_with('-') {
                    missing.push(format!("{name}: {id}"));
                }
            }
        }
        for source in sources {
            for open in ["messages().text(\"", "msgs.text(\"", "m.text(\""] {
                for id in ids_after(source, open) {
                    checked += 1;
                    if !m.has(id) && !id.ends_with('-') {
                        missing.push(format!("source: {id}"));
                    }
                }
            }
        }
        // Ids built from a code: every status, role, country and warning the pages can show.
        for prefix_ids in [
            [
                "status-draft",
                "status-submitted",
                "status-returned",
                "status-approved",
                "status-rejected",
                "status-withdrawn",
            ]
            .as_slice(),
            &["status-issued", "status-superseded", "status-revoked", "status-valid", "status-invalid"],
            // What importing countries report (`originlink_exchange::BusinessStatus`).
            &[
                "status-received",
                "status-accepted",
                "status-accepted-with-warnings",
                "status-rejected",
                "status-utilized-partially",
                "status-utilized-fully",
                "status-revoked",
                "status-replaced",
            ],
            &["role-exporter", "role-issuing-officer", "role-customs-officer", "role-admin", "role-operator"],
            &["mode-push", "mode-pull", "status-pending", "status-delivered", "status-failed"],
            &["outcome-granted", "outcome-denied", "outcome-pending", "outcome-not-claimed"],
            &[
                "risk-RETROACTIVE_ISSUANCE",
                "risk-BACK_TO_BACK",
                "risk-THIRD_PARTY_INVOICING",
                "risk-ISSUER_DENIED",
                "risk-EXPORTER_DENIED",
                "risk-VALUE_GAP",
                "risk-NEAR_EXHAUSTION",
                "risk-LATE_ISSUANCE",
                "risk-FIRST_TIME_PAIR",
            ],
            &[
                "reason-CO_NOT_RECEIVED",
                "reason-CO_INVALID",
                "reason-CO_NOT_VERIFIED",
                "reason-CO_REVOKED",
                "reason-CO_SUPERSEDED",
                "reason-CO_EXPIRED",
                "reason-WRONG_IMPORTING_COUNTRY",
                "reason-IMPORTER_MISMATCH",
                "reason-HS_MISMATCH",
                "reason-UNIT_MISMATCH",
                "reason-QUANTITY_EXCEEDED",
                "reason-ALREADY_UTILIZED",
                "reason-INVOICE_MISMATCH",
                "reason-AGREEMENT_MISMATCH",
                "reason-LATE_PROOF",
                "reason-VERIFICATION_DENIED",
                "reason-PENDING",
                "reason-OFFICER_DECISION",
            ],
            &[
                "warning-EXPORTER_NOT_APPLICANT",
                "warning-ASSESSMENT_NOT_ORIGINATING",
                "warning-ASSESSMENT_OTHER_PRODUCT",
                "warning-ASSESSMENT_OTHER_AGREEMENT",
            ],
            &[
                "revenue-by-month",
                "revenue-by-agreement",
                "revenue-by-partner",
                "revenue-chart-month",
                "revenue-chart-agreement",
                "revenue-chart-partner",
                "revenue-table-month",
                "revenue-table-agreement",
                "revenue-table-partner",
                "revenue-no-month",
                "revenue-no-agreement",
                "revenue-no-partner",
            ],
        ] {
            for id in prefix_ids {
                if !m.has(id) {
                    missing.push(format!("code: {id}"));
                }
            }
        }
        for c in crate::exporter::PARTNERS {
            if !m.has(&format!("country-{c}")) {
                missing.push(format!("country-{c}"));
            }
        }
        assert!(missing.is_empty(), "texts missing from messages/en.ftl: {missing:#?}");
        assert!(checked > 150, "the ids were found ({checked})");
        assert!(Messages::ids().len() > 200, "the catalogue reads");
    }

    #[test]
    fn only_a_path_of_the_console_is_a_place_to_go_after_signing_in() {
        use crate::auth::safe_next;
        for ok in ["/", "/applications/7", "/applications?status=draft&q=x"] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.example/x",
            "/\\evil.example/x",
            "/\t/evil.example",
            "https://evil.example",
            "/a\nb",
            "x",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn dates_and_money_read_as_people_write_them() {
        assert_eq!(human_date("2026-12-02"), "2 December 2026");
        assert_eq!(human_date("2026-12-02T14:05:00+00:00"), "2 December 2026");
        assert_eq!(human_datetime("2026-12-02T14:05:09Z"), "2 December 2026, 14:05 UTC");
        assert_eq!(two_decimals("87.5000"), "87.50");
        assert_eq!(two_decimals("53.3333"), "53.33");
        assert_eq!(two_decimals("40"), "40");
        assert_eq!(crate::documents::money("1680", "USD"), "USD 1,680.00");
        assert_eq!(crate::documents::money("1234567.5", "THB"), "THB 1,234,567.50");
        assert_eq!(crate::documents::money("-12.05", "USD"), "USD -12.05");
    }
}
