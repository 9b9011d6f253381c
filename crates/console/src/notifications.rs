//! What each person is told: `GET /notifications`, newest first, the new ones marked (and
//! seen once shown). The layout shows how many are new on every page.

use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use originlink_node::app::notifications;
use serde::Deserialize;

use crate::Shared;
use crate::auth::{Person, page_ctx, shown};

/// `?before=`: the next page.
#[derive(Debug, Default, Deserialize)]
pub struct Before {
    #[serde(default)]
    before: Option<i64>,
}

/// How many a page shows.
const PAGE: i64 = 30;

/// `GET /notifications`.
pub async fn list(State(s): State<Shared>, mut person: Person, Query(q): Query<Before>) -> Response {
    let feed = match notifications::feed(&s.app, &person.user, q.before, PAGE).await {
        Ok(f) => f,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    // Shown now: the count in the layout is what is left unseen, none.
    person.unseen = 0;
    let title = s.views.messages().text("notifications-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/notifications"),
        items => feed.items,
        new => feed.unseen,
        next => feed.next,
    };
    shown(&s, &person, s.views.render("notifications.html", ctx))
}
