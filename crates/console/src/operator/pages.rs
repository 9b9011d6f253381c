//! The operator's pages, one handler each: parse, call one use case of
//! `originlink_gateway::operator` (the one the JSON operator endpoints call), render.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use originlink_gateway::operator::{self, Error, Traffic};
use serde::{Deserialize, Serialize};

use super::{Operator, Shared};
use crate::auth::redirect_with_flash_of;
use crate::forms::{Errors, FormData};

/// The 503 page: the gateway's database did not answer.
pub fn unavailable(s: &Shared, op: &Operator, detail: &str) -> Response {
    tracing::warn!(error = %detail, "an operator page could not be answered");
    let m = s.views.messages();
    let title = m.text("error-title", &[]);
    s.views.message_in(
        StatusCode::SERVICE_UNAVAILABLE,
        op.page(&title, ""),
        &m.text("operator-unavailable", &[]),
    )
}

/// `GET /`: every member with its queue.
pub async fn members(State(s): State<Shared>, op: Operator) -> Response {
    let members = match operator::members(&s.gateway).await {
        Ok(m) => m,
        Err(e) => return unavailable(&s, &op, &e.to_string()),
    };
    let title = s.views.messages().text("operator-members-title", &[]);
    let alerts = operator::alerts(&members, s.gateway.clock.now());
    let ctx = context! { page => op.page(&title, "/"), members => members, alerts => alerts };
    op.shown(s.views.render("operator/members.html", ctx))
}

/// What the search form sends: a message id, or a certificate number and its issuing country.
#[derive(Debug, Default, Deserialize)]
pub struct FindQuery {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// `GET /messages`: find messages by id, or by certificate number and issuing country.
pub async fn find(State(s): State<Shared>, op: Operator, Query(q): Query<FindQuery>) -> Response {
    let m = s.views.messages();
    let typed = FormData(
        [("id", &q.id), ("number", &q.number), ("country", &q.country)]
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
            .collect(),
    );
    let (id, number, country) = (typed.text("id"), typed.text("number"), typed.text("country"));
    let mut errors = Errors::default();
    let mut searched = None;
    let found = if let Some(id) = &id {
        searched = Some(m.text("operator-searched-id", &[("id", id.clone())]));
        operator::track(&s.gateway, id).await.map(|t| t.into_iter().collect::<Vec<_>>())
    } else if number.is_some() || country.is_some() {
        let (n, c) = (number.clone().unwrap_or_default(), country.clone().unwrap_or_default());
        searched = Some(m.text(
            "operator-searched-certificate",
            &[("number", n.clone()), ("country", c.trim().to_ascii_uppercase())],
        ));
        operator::by_certificate(&s.gateway, &c, &n).await
    } else {
        Ok(Vec::new())
    };
    let results = match found {
        Ok(r) => r,
        Err(Error::Invalid { field, code, message }) => {
            errors.add(field, message, code);
            searched = None;
            Vec::new()
        }
        Err(e) => return unavailable(&s, &op, &e.to_string()),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let title = m.text("operator-find-title", &[]);
    let ctx = context! {
        page => op.page(&title, "/messages"),
        v => typed.values(),
        errors => errors.0.clone(),
        fe => errors.by_field(),
        searched => searched,
        results => results,
        limit => operator::SEARCH_LIMIT,
    };
    op.shown(s.views.render_status(status, "operator/messages.html", ctx))
}

/// `GET /messages/{id}`: one message's tracking (never its envelope).
pub async fn message(State(s): State<Shared>, op: Operator, Path(id): Path<String>) -> Response {
    let m = s.views.messages();
    match operator::track(&s.gateway, &id).await {
        Ok(Some(t)) => {
            let title = m.text("operator-message-title", &[("id", t.id.clone())]);
            let ctx = context! { page => op.page(&title, ""), message => t };
            op.shown(s.views.render("operator/message.html", ctx))
        }
        Ok(None) | Err(Error::Invalid { .. }) => {
            let title = m.text("not-found-title", &[]);
            let body = m.text("operator-message-missing", &[]);
            s.views.message_in(StatusCode::NOT_FOUND, op.page(&title, ""), &body)
        }
        Err(e) => unavailable(&s, &op, &e.to_string()),
    }
}

/// `GET /dead`: the oldest dead letters, each with a Retry button.
pub async fn dead(State(s): State<Shared>, op: Operator) -> Response {
    let dead = match operator::dead(&s.gateway, operator::DEAD_LIMIT).await {
        Ok(d) => d,
        Err(e) => return unavailable(&s, &op, &e.to_string()),
    };
    let title = s.views.messages().text("operator-dead-title", &[]);
    let ctx = context! {
        page => op.page(&title, "/dead"),
        more => dead.len() >= operator::DEAD_LIMIT,
        limit => operator::DEAD_LIMIT,
        dead => dead,
    };
    op.shown(s.views.render("operator/dead.html", ctx))
}

/// `POST /dead/{id}/retry`: puts a dead letter back in the queue.
pub async fn retry(
    State(s): State<Shared>,
    op: Operator,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(refused) = op.checked(&s, &form) {
        return refused;
    }
    let m = s.views.messages();
    let flash = match operator::retry(&s.gateway, &id).await {
        Ok(Some(t)) => {
            tracing::info!(operator = %op.name, id = %id, "dead letter retried from the console");
            m.text("operator-retried", &[("id", t.id), ("to", t.to)])
        }
        Ok(None) => m.text("operator-retry-gone", &[("id", id)]),
        Err(e) => return unavailable(&s, &op, &e.to_string()),
    };
    redirect_with_flash_of(super::COOKIE, "/dead", &flash)
}

/// One minute of the chart: the figures (the same as the JSON endpoint's) and where its bars
/// are drawn.
#[derive(Debug, Serialize)]
struct Bar {
    minute: String,
    label: String,
    received: u64,
    delivered: u64,
    mean: Option<u64>,
    max: Option<u64>,
    x: u64,
    received_y: u64,
    received_h: u64,
    delivered_y: u64,
    delivered_h: u64,
    latency_y: u64,
    latency_h: u64,
    tick: bool,
}

/// The charts' geometry: plot height, bar width and left margin, in SVG units.
const PLOT_H: u64 = 160;
const SLOT: u64 = 11;
const LEFT: u64 = 48;

fn bars(t: &Traffic) -> (Vec<Bar>, u64, u64) {
    let top_count = t.minutes.iter().map(|m| m.received.max(m.delivered)).max().unwrap_or(0).max(1);
    let top_ms = t.minutes.iter().filter_map(|m| m.latency_mean_ms).max().unwrap_or(0).max(1);
    let h = |v: u64, top: u64| v.saturating_mul(PLOT_H) / top;
    let bars = t
        .minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (rh, dh, lh) = (
                h(m.received, top_count),
                h(m.delivered, top_count),
                h(m.latency_mean_ms.unwrap_or(0), top_ms),
            );
            Bar {
                minute: m.minute.clone(),
                label: m.minute.get(11..16).unwrap_or(&m.minute).to_owned(),
                received: m.received,
                delivered: m.delivered,
                mean: m.latency_mean_ms,
                max: m.latency_max_ms,
                x: LEFT + i as u64 * SLOT,
                received_y: 10 + PLOT_H - rh,
                received_h: rh,
                delivered_y: 10 + PLOT_H - dh,
                delivered_h: dh,
                latency_y: 10 + PLOT_H - lh,
                latency_h: lh,
                tick: i % 10 == 0,
            }
        })
        .collect();
    (bars, top_count, top_ms)
}

/// `GET /traffic`: messages received and delivered per minute over the last hour and the
/// delivery latency, as two server-drawn charts with a table of the same figures.
pub async fn traffic(State(s): State<Shared>, op: Operator) -> Response {
    let t = match operator::traffic(&s.gateway).await {
        Ok(t) => t,
        Err(e) => return unavailable(&s, &op, &e.to_string()),
    };
    let (bars, top_count, top_ms) = bars(&t);
    let total_received: u64 = t.minutes.iter().map(|m| m.received).sum();
    let total_delivered: u64 = t.minutes.iter().map(|m| m.delivered).sum();
    let title = s.views.messages().text("operator-traffic-title", &[]);
    let ctx = context! {
        page => op.page(&title, "/traffic"),
        bars => bars,
        top_count => top_count,
        top_ms => top_ms,
        total_received => total_received,
        total_delivered => total_delivered,
        width => LEFT + 60 * SLOT + 8,
        plot_h => PLOT_H,
        left => LEFT,
    };
    op.shown(s.views.render("operator/traffic.html", ctx))
}

/// `GET /trust-list`: the list in force.
pub async fn trust_list(State(s): State<Shared>, op: Operator) -> Response {
    let list = operator::trust_list(&s.gateway);
    let title = s.views.messages().text("trust-title", &[]);
    let ctx = context! { page => op.page(&title, "/trust-list"), list => list };
    op.shown(s.views.render("operator/trust_list.html", ctx))
}
