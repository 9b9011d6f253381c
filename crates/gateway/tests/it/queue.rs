//! The queue contract: every test runs on SQLite (a temp file) and PostgreSQL (a fresh
//! database on 127.0.0.1:5432, dropped afterwards).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use originlink_gateway::queue::{
    self, CertificateRef, NewMessage, NewOperatorSession, Outcome, Queue, Settle, State,
};

use crate::support::{TestDb, pg_db, sqlite_db};

struct Q {
    q: Arc<dyn Queue>,
    _db: TestDb,
}

async fn open(db: TestDb) -> Q {
    let q = queue::open(&db.url, 8).await.expect("open");
    q.migrate().await.expect("migrate");
    q.migrate().await.expect("migrate again is a no-op");
    Q { q, _db: db }
}

async fn sqlite() -> Q {
    open(sqlite_db()).await
}

async fn postgres() -> Q {
    open(pg_db().await).await
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::sqlite().await).await }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::postgres().await).await }
            )*
        }
    };
}

contract!(
    batches_dedup_by_id_and_keep_bytes,
    claims_are_exclusive_fifo_and_leased,
    concurrent_claimers_never_share_a_message,
    retries_back_off_then_die_after_max_attempts,
    refused_is_dead_and_operator_retry_revives,
    settle_only_touches_pending_rows_of_the_recipient,
    pull_lease_and_tracking,
    depth_per_recipient,
    search_by_certificate_is_exact_newest_first_and_bounded,
    recipient_stats_count_and_remember,
    traffic_per_minute_with_latency,
    operators_and_their_sessions,
    delivered_bodies_are_purged_after_the_window_and_tracking_stays,
    concurrent_batches_are_all_stored_once,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).single().expect("time")
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

fn msg(id: &str, to: &str) -> NewMessage {
    NewMessage {
        manifest: None,
        id: id.into(),
        sender: "KH".into(),
        recipient: to.into(),
        kind: "status.update".into(),
        envelope: format!("{{\"id\":\"{id}\",\"x\":\"\u{e9}\\u00e9 \"}}").into_bytes(),
        certificate: None,
    }
}

fn about(id: &str, to: &str, country: &str, number: &str) -> NewMessage {
    NewMessage {
        certificate: Some(CertificateRef { country: country.into(), number: number.into() }),
        ..msg(id, to)
    }
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

const LEASE: Duration = Duration::from_secs(30);

async fn batches_dedup_by_id_and_keep_bytes(q: Q) {
    let q = q.q;
    let stored =
        q.enqueue(vec![msg("a", "TH"), msg("b", "TH"), msg("a", "TH")], t0()).await.expect("enqueue");
    assert_eq!(stored, [true, true, false], "a repeated id within a batch is a duplicate");
    let stored = q.enqueue(vec![msg("c", "TH"), msg("b", "TH")], t0()).await.expect("enqueue");
    assert_eq!(stored, [true, false]);
    let mut changed = msg("a", "TH");
    changed.envelope = b"other bytes".to_vec();
    assert_eq!(q.enqueue(vec![changed], t0()).await.expect("enqueue"), [false], "nothing stored again");
    let got = q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    assert_eq!(got.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(got[0].envelope, msg("a", "TH").envelope, "the first bytes, exactly");
    assert_eq!((got[0].sender.as_str(), got[0].kind.as_str(), got[0].attempts), ("KH", "status.update", 0));
}

async fn claims_are_exclusive_fifo_and_leased(q: Q) {
    let q = q.q;
    let all = ids(5, "m");
    q.enqueue(all.iter().map(|i| msg(i, "TH")).collect(), t0()).await.expect("enqueue");
    q.enqueue(vec![msg("late", "TH")], t0() + secs(1)).await.expect("enqueue");
    let first = q.claim("TH", 2, t0() + secs(2), LEASE).await.expect("claim");
    assert_eq!(first.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), all[..2]);
    let second = q.claim("TH", 10, t0() + secs(2), LEASE).await.expect("claim");
    assert_eq!(
        second.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["m-00002", "m-00003", "m-00004", "late"]
    );
    assert!(q.claim("TH", 10, t0() + secs(3), LEASE).await.expect("claim").is_empty(), "all leased");
    assert!(q.claim("KH", 10, t0() + secs(3), LEASE).await.expect("claim").is_empty(), "other recipient");
    // The holder of the first claim crashed: after the lease the messages come back.
    assert!(
        q.claim("TH", 10, t0() + secs(31), LEASE).await.expect("claim").is_empty(),
        "lease still running"
    );
    let again = q.claim("TH", 10, t0() + secs(33), LEASE).await.expect("claim");
    assert_eq!(again.len(), 6);
    assert!(again.iter().all(|c| c.attempts == 0), "an expired lease is not a failed attempt");
}

async fn concurrent_claimers_never_share_a_message(q: Q) {
    let q = q.q;
    let all = ids(400, "c");
    for chunk in all.chunks(100) {
        q.enqueue(chunk.iter().map(|i| msg(i, "TH")).collect(), t0()).await.expect("enqueue");
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = q.claim("TH", 7, t0() + secs(1), LEASE).await.expect("claim");
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.expect("join") {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} claimed twice");
        }
    }
    assert_eq!(total, 400);
    assert_eq!(seen, all.into_iter().collect::<HashSet<_>>());
}

async fn retries_back_off_then_die_after_max_attempts(q: Q) {
    let q = q.q;
    q.enqueue(vec![msg("r", "TH")], t0()).await.expect("enqueue");
    let mut now = t0();
    for attempt in 1..=3u32 {
        let c = q.claim("TH", 1, now, LEASE).await.expect("claim");
        assert_eq!(c.len(), 1, "attempt {attempt}");
        assert_eq!(c[0].attempts, attempt - 1);
        let at = now + secs(10);
        let retry = Settle {
            id: "r".into(),
            outcome: Outcome::Retry { error: format!("connect: refused #{attempt}"), at },
        };
        assert_eq!(q.settle("TH", vec![retry], 4, now).await.expect("settle"), 1);
        let t = q.track("r").await.expect("track").expect("exists");
        assert_eq!((t.state, t.attempts), (State::Pending, attempt));
        assert_eq!(t.error.as_deref(), Some(format!("connect: refused #{attempt}").as_str()));
        assert!(q.claim("TH", 1, now + secs(9), LEASE).await.expect("claim").is_empty(), "backing off");
        now = at;
    }
    let c = q.claim("TH", 1, now, LEASE).await.expect("claim");
    let retry = Settle {
        id: c[0].id.clone(),
        outcome: Outcome::Retry { error: "HTTP 503".into(), at: now + secs(10) },
    };
    q.settle("TH", vec![retry], 4, now).await.expect("settle");
    let t = q.track("r").await.expect("track").expect("exists");
    assert_eq!(
        (t.state, t.attempts, t.error.as_deref()),
        (State::Failed, 4, Some("HTTP 503")),
        "dead after 4 attempts"
    );
    assert!(
        q.claim("TH", 1, now + secs(3600), LEASE).await.expect("claim").is_empty(),
        "dead is not claimed"
    );
    assert_eq!(q.dead(10).await.expect("dead").iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["r"]);
}

async fn refused_is_dead_and_operator_retry_revives(q: Q) {
    let q = q.q;
    q.enqueue(vec![msg("x", "TH"), msg("y", "TH")], t0()).await.expect("enqueue");
    let c = q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    assert_eq!(c.len(), 2);
    let settle = vec![
        Settle { id: "x".into(), outcome: Outcome::Failed("refused: ENVELOPE_SIGNATURE_INVALID".into()) },
        Settle { id: "y".into(), outcome: Outcome::Delivered },
    ];
    assert_eq!(q.settle("TH", settle, 12, t0() + secs(1)).await.expect("settle"), 2);
    let dead = q.dead(10).await.expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].state, dead[0].attempts), ("x", State::Failed, 1));
    assert!(dead[0].error.as_deref().unwrap_or("").contains("ENVELOPE_SIGNATURE_INVALID"));
    assert!(!q.retry("y", t0()).await.expect("retry"), "a delivered message is not a dead letter");
    assert!(!q.retry("nope", t0()).await.expect("retry"));
    assert!(q.retry("x", t0() + secs(5)).await.expect("retry"));
    assert!(q.dead(10).await.expect("dead").is_empty());
    let t = q.track("x").await.expect("track").expect("exists");
    assert_eq!((t.state, t.attempts), (State::Pending, 0));
    let c = q.claim("TH", 10, t0() + secs(5), LEASE).await.expect("claim");
    assert_eq!(c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["x"]);
}

async fn settle_only_touches_pending_rows_of_the_recipient(q: Q) {
    let q = q.q;
    q.enqueue(vec![msg("p", "TH"), msg("v", "VN")], t0()).await.expect("enqueue");
    q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    q.claim("VN", 10, t0(), LEASE).await.expect("claim");
    // TH cannot settle VN's message.
    let n = q
        .settle("TH", vec![Settle { id: "v".into(), outcome: Outcome::Delivered }], 12, t0())
        .await
        .expect("settle");
    assert_eq!(n, 0);
    assert_eq!(q.track("v").await.expect("track").expect("exists").state, State::Pending);
    assert_eq!(
        q.settle("TH", vec![Settle { id: "p".into(), outcome: Outcome::Delivered }], 12, t0())
            .await
            .expect("s"),
        1
    );
    // A stale retry for a delivered message changes nothing.
    let stale = Settle { id: "p".into(), outcome: Outcome::Retry { error: "late".into(), at: t0() } };
    assert_eq!(q.settle("TH", vec![stale], 12, t0()).await.expect("settle"), 0);
    let t = q.track("p").await.expect("track").expect("exists");
    assert_eq!((t.state, t.attempts, t.error), (State::Delivered, 0, None));
    assert_eq!(
        q.settle("TH", vec![Settle { id: "unknown".into(), outcome: Outcome::Delivered }], 12, t0())
            .await
            .expect("s"),
        0
    );
}

async fn pull_lease_and_tracking(q: Q) {
    let q = q.q;
    q.enqueue(vec![msg("t", "VN")], t0()).await.expect("enqueue");
    let t = q.track("t").await.expect("track").expect("exists");
    assert_eq!((t.from.as_str(), t.to.as_str(), t.kind.as_str()), ("KH", "VN", "status.update"));
    assert_eq!((t.state, t.attempts, t.received_at, t.delivered_at), (State::Pending, 0, t0(), None));
    let json = serde_json::to_value(&t).expect("json");
    assert_eq!(json["received_at"], "2026-03-01T09:30:00.000000Z");
    assert_eq!(json["type"], "status.update");
    assert!(json.get("delivered_at").is_none() && json.get("error").is_none());
    // A pull leases for 30 s.
    let pulled = q.claim("VN", 100, t0() + secs(1), originlink_gateway::api::PULL_LEASE).await.expect("pull");
    assert_eq!(pulled.len(), 1);
    assert!(
        q.claim("VN", 100, t0() + secs(30), originlink_gateway::api::PULL_LEASE)
            .await
            .expect("pull")
            .is_empty()
    );
    q.settle("VN", vec![Settle { id: "t".into(), outcome: Outcome::Delivered }], 12, t0() + secs(2))
        .await
        .expect("ack");
    let t = q.track("t").await.expect("track").expect("exists");
    assert_eq!((t.state, t.delivered_at), (State::Delivered, Some(t0() + secs(2))));
    assert!(
        q.claim("VN", 100, t0() + secs(60), originlink_gateway::api::PULL_LEASE)
            .await
            .expect("pull")
            .is_empty()
    );
    assert!(q.track("missing").await.expect("track").is_none());
}

async fn depth_per_recipient(q: Q) {
    let q = q.q;
    assert!(q.depth().await.expect("depth").is_empty());
    q.enqueue(vec![msg("1", "TH"), msg("2", "TH"), msg("3", "VN")], t0()).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), [("TH".to_owned(), 2), ("VN".to_owned(), 1)]);
    q.claim("TH", 1, t0(), LEASE).await.expect("claim");
    q.settle("TH", vec![Settle { id: "1".into(), outcome: Outcome::Delivered }], 12, t0())
        .await
        .expect("settle");
    assert_eq!(q.depth().await.expect("depth"), [("TH".to_owned(), 1), ("VN".to_owned(), 1)]);
    q.ping().await.expect("ping");
}

async fn search_by_certificate_is_exact_newest_first_and_bounded(q: Q) {
    let q = q.q;
    q.enqueue(vec![about("old", "TH", "KH", "KH-2026-000001"), msg("plain", "TH")], t0())
        .await
        .expect("enqueue");
    q.enqueue(
        vec![
            about("new", "KH", "KH", "KH-2026-000001"),
            about("other-country", "TH", "TH", "KH-2026-000001"),
            about("other-number", "TH", "KH", "KH-2026-000002"),
        ],
        t0() + secs(5),
    )
    .await
    .expect("enqueue");
    let found = q.by_certificate("KH", "KH-2026-000001", 10).await.expect("search");
    assert_eq!(found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["new", "old"], "newest first");
    let c = found[0].certificate.as_ref().expect("the certificate is kept");
    assert_eq!((c.country.as_str(), c.number.as_str()), ("KH", "KH-2026-000001"));
    assert_eq!(q.by_certificate("KH", "KH-2026-000001", 1).await.expect("search").len(), 1, "bounded");
    assert!(q.by_certificate("KH", "KH-2026-00000", 10).await.expect("search").is_empty(), "no prefix match");
    assert!(q.by_certificate("VN", "KH-2026-000001", 10).await.expect("search").is_empty());
    let json = serde_json::to_value(q.track("old").await.expect("track").expect("exists")).expect("json");
    assert_eq!(json["certificate"], serde_json::json!({ "country": "KH", "number": "KH-2026-000001" }));
    let plain = serde_json::to_value(q.track("plain").await.expect("track").expect("exists")).expect("json");
    assert!(plain.get("certificate").is_none(), "{plain}");
}

async fn recipient_stats_count_and_remember(q: Q) {
    let q = q.q;
    let none = q.recipient_stats("TH").await.expect("stats");
    assert_eq!((none.pending, none.failed, none.last_delivered_at, none.last_error), (0, 0, None, None));
    assert_eq!(none.retry_error, None);
    q.enqueue(vec![msg("d", "TH"), msg("f1", "TH"), msg("w", "TH"), msg("v", "VN")], t0())
        .await
        .expect("enqueue");
    q.enqueue(vec![msg("f2", "TH")], t0() + secs(1)).await.expect("enqueue");
    q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    let settle = vec![
        Settle { id: "d".into(), outcome: Outcome::Delivered },
        Settle { id: "f1".into(), outcome: Outcome::Failed("refused: OLDER".into()) },
        Settle { id: "f2".into(), outcome: Outcome::Failed("refused: NEWER".into()) },
        Settle { id: "w".into(), outcome: Outcome::Retry { error: "HTTP 503".into(), at: t0() + secs(60) } },
    ];
    q.settle("TH", settle, 12, t0() + secs(7)).await.expect("settle");
    let th = q.recipient_stats("TH").await.expect("stats");
    assert_eq!((th.pending, th.failed), (1, 2));
    assert_eq!(th.last_delivered_at, Some(t0() + secs(7)));
    assert_eq!(th.last_error.as_deref(), Some("refused: NEWER"), "the newest dead letter's");
    assert_eq!(th.retry_error.as_deref(), Some("HTTP 503"), "the waiting message's last attempt");
    let vn = q.recipient_stats("VN").await.expect("stats");
    assert_eq!((vn.pending, vn.failed, vn.last_delivered_at, vn.last_error), (1, 0, None, None));
    assert_eq!(vn.retry_error, None, "waiting, never tried");
}

async fn traffic_per_minute_with_latency(q: Q) {
    let q = q.q;
    let m0 = t0(); // 09:30:00
    q.enqueue(vec![msg("a", "TH"), msg("b", "TH")], m0 + secs(10)).await.expect("enqueue");
    q.enqueue(vec![msg("c", "TH")], m0 + secs(70)).await.expect("enqueue");
    q.enqueue(vec![msg("early", "TH")], m0 - secs(1)).await.expect("enqueue");
    q.claim("TH", 10, m0 + secs(70), LEASE).await.expect("claim");
    let done = |id: &str| Settle { id: id.into(), outcome: Outcome::Delivered };
    q.settle("TH", vec![done("a")], 12, m0 + secs(40)).await.expect("settle"); // 30 s
    q.settle("TH", vec![done("b"), done("c")], 12, m0 + secs(80)).await.expect("settle"); // 70 s, 10 s
    q.settle("TH", vec![done("early")], 12, m0 + secs(200)).await.expect("settle"); // outside
    let t = q.traffic(m0, m0 + secs(120)).await.expect("traffic");
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!((t[0].minute, t[0].received, t[0].delivered), (m0, 2, 1));
    assert_eq!((t[0].latency_sum_us, t[0].latency_max_us), (30_000_000, 30_000_000));
    assert_eq!((t[1].minute, t[1].received, t[1].delivered), (m0 + secs(60), 1, 2));
    assert_eq!((t[1].latency_sum_us, t[1].latency_max_us), (80_000_000, 70_000_000));
    assert!(q.traffic(m0 + secs(3600), m0 + secs(7200)).await.expect("traffic").is_empty());
}

async fn operators_and_their_sessions(q: Q) {
    let q = q.q;
    assert!(q.operator_password("ops").await.expect("password").is_none());
    assert!(q.set_operator("ops", "$argon2id$first", t0()).await.expect("add"), "added");
    assert_eq!(q.operator_password("ops").await.expect("password").as_deref(), Some("$argon2id$first"));
    let session = |h, csrf| NewOperatorSession { id_hash: h, operator: "ops", csrf };
    q.start_operator_session(session("h1", "csrf1"), t0()).await.expect("start");
    let s = q.operator_session("h1").await.expect("session").expect("in force");
    assert_eq!(
        (s.operator.as_str(), s.csrf.as_str(), s.created_at, s.last_seen_at),
        ("ops", "csrf1", t0(), t0())
    );
    q.touch_operator_session("h1", t0() + secs(90)).await.expect("touch");
    assert_eq!(q.operator_session("h1").await.expect("s").expect("s").last_seen_at, t0() + secs(90));
    assert!(q.operator_session("h2").await.expect("session").is_none());
    // A new password ends the operator's sessions.
    assert!(!q.set_operator("ops", "$argon2id$second", t0() + secs(100)).await.expect("set"), "not added");
    assert_eq!(q.operator_password("ops").await.expect("password").as_deref(), Some("$argon2id$second"));
    assert!(q.operator_session("h1").await.expect("session").is_none(), "ended by the new password");
    q.start_operator_session(session("h3", "csrf3"), t0()).await.expect("start");
    q.end_operator_session("h3").await.expect("end");
    assert!(q.operator_session("h3").await.expect("session").is_none(), "signed out");
    q.end_operator_session("h3").await.expect("ending twice is nothing");
}

/// 20,000 messages in batches of 250 through enqueue, claim and settle on SQLite: every one
/// comes out once. The rate is printed for information; the figures that count are
/// `originlink bench exchange`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_throughput_in_batches() {
    let held = sqlite().await;
    let q = &held.q;
    let n = 20_000;
    let all = ids(n, "tp");
    let start = std::time::Instant::now();
    for chunk in all.chunks(250) {
        let stored = q.enqueue(chunk.iter().map(|i| msg(i, "TH")).collect(), t0()).await.expect("enqueue");
        assert!(stored.iter().all(|s| *s));
    }
    let enqueued = start.elapsed();
    let mut done = 0;
    loop {
        let c = q.claim("TH", 250, t0(), LEASE).await.expect("claim");
        if c.is_empty() {
            break;
        }
        done += c.len();
        let s = c.into_iter().map(|c| Settle { id: c.id, outcome: Outcome::Delivered }).collect();
        q.settle("TH", s, 12, t0()).await.expect("settle");
    }
    let total = start.elapsed();
    assert_eq!(done, n);
    let rate = n as f64 / total.as_secs_f64();
    eprintln!(
        "sqlite queue: {n} messages enqueued in {:.0} ms, enqueued+claimed+delivered at {rate:.0} messages/s",
        enqueued.as_secs_f64() * 1000.0
    );
}

/// The stored body's length of message `id`, read from the database itself.
async fn body_len(q: &Q, id: &str) -> i64 {
    let url = &q._db.url;
    if let Some(path) = url.strip_prefix("sqlite:") {
        let c = rusqlite::Connection::open(path).expect("open");
        return c
            .query_row(
                "SELECT length(envelope) + COALESCE(body_len, 0) FROM gateway_queue WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .expect("row");
    }
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    let task = tokio::spawn(conn);
    let n: i32 = client
        .query_one("SELECT octet_length(envelope) FROM gateway_queue WHERE id = $1", &[&id])
        .await
        .expect("row")
        .get(0);
    drop(client);
    let _ = task.await;
    i64::from(n)
}

/// Retention: a delivered message's body goes once the window has passed; its tracking row,
/// its id (a resent copy is still a duplicate), and every pending or dead message's body stay.
async fn delivered_bodies_are_purged_after_the_window_and_tracking_stays(q: Q) {
    q.q.enqueue(vec![msg("d1", "TH"), msg("d2", "TH"), msg("p", "TH"), msg("x", "TH")], t0())
        .await
        .expect("enqueue");
    let claimed = q.q.claim("TH", 4, t0(), LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    let settle = |id: &str, outcome| Settle { id: id.into(), outcome };
    q.q.settle("TH", vec![settle("d1", Outcome::Delivered)], 12, t0() + secs(10)).await.expect("ack");
    q.q.settle("TH", vec![settle("d2", Outcome::Delivered)], 12, t0() + secs(20)).await.expect("ack");
    q.q.settle("TH", vec![settle("x", Outcome::Failed("refused".into()))], 12, t0() + secs(20))
        .await
        .expect("dead");
    let full = |id: &str| msg(id, "TH").envelope.len() as i64;
    assert_eq!(body_len(&q, "d1").await, full("d1"));
    // Within the window nothing goes; past it the oldest first, in batches.
    assert_eq!(q.q.purge_delivered(t0() + secs(5), 1000, t0() + secs(30)).await.expect("purge"), 0);
    assert_eq!(q.q.purge_delivered(t0() + secs(30), 1, t0() + secs(40)).await.expect("purge"), 1);
    assert_eq!(
        (body_len(&q, "d1").await, body_len(&q, "d2").await),
        (0, full("d2")),
        "d1 was delivered first"
    );
    assert_eq!(q.q.purge_delivered(t0() + secs(30), 1000, t0() + secs(41)).await.expect("purge"), 1);
    assert_eq!(q.q.purge_delivered(t0() + secs(30), 1000, t0() + secs(42)).await.expect("purge"), 0, "once");
    assert_eq!(
        (body_len(&q, "p").await, body_len(&q, "x").await),
        (full("p"), full("x")),
        "pending and dead keep theirs"
    );
    let t = q.q.track("d1").await.expect("track").expect("tracking stays");
    assert_eq!(
        (t.state, t.delivered_at, t.purged_at),
        (State::Delivered, Some(t0() + secs(10)), Some(t0() + secs(40)))
    );
    let json = serde_json::to_value(&t).expect("json");
    assert_eq!(json["purged_at"], "2026-03-01T09:30:40.000000Z");
    assert!(q.q.track("p").await.expect("track").expect("pending").purged_at.is_none());
    assert_eq!(
        q.q.enqueue(vec![msg("d1", "TH")], t0() + secs(50)).await.expect("enqueue"),
        [false],
        "still a duplicate"
    );
    // The dead letter can still be retried, with its body.
    assert!(q.q.retry("x", t0() + secs(60)).await.expect("retry"));
    let again = q.q.claim("TH", 10, t0() + secs(61), LEASE).await.expect("claim");
    assert!(again.iter().any(|c| c.id == "x" && c.envelope == msg("x", "TH").envelope), "{again:?}");
}

/// Batches arriving together (committed as a group on SQLite) are each answered for their own
/// messages; a message in two of them is stored once, and every body comes back intact.
async fn concurrent_batches_are_all_stored_once(q: Q) {
    let mut tasks = Vec::new();
    for b in 0..8 {
        let q = q.q.clone();
        tasks.push(tokio::spawn(async move {
            let mut batch: Vec<NewMessage> = ids(50, &format!("g{b}")).iter().map(|i| msg(i, "TH")).collect();
            batch.push(msg("shared", "TH"));
            q.enqueue(batch, t0()).await.expect("enqueue")
        }));
    }
    let mut shared = 0;
    for t in tasks {
        let stored = t.await.expect("task");
        assert_eq!(stored.len(), 51);
        assert!(stored[..50].iter().all(|s| *s), "each batch's own messages are new");
        shared += usize::from(stored[50]);
    }
    assert_eq!(shared, 1, "the message in every batch is stored by exactly one");
    // SQLite keeps the bodies in segment files (and says how big); PostgreSQL in its rows.
    match q.q.segment_bytes().await.expect("segment bytes") {
        Some(b) => assert!(q.q.backend() == "sqlite" && b > 8 * 50 * 40, "{b} bytes"),
        None => assert_eq!(q.q.backend(), "postgres"),
    }
    let mut got = Vec::new();
    loop {
        let c = q.q.claim("TH", 100, t0(), LEASE).await.expect("claim");
        if c.is_empty() {
            break;
        }
        got.extend(c);
    }
    assert_eq!(got.len(), 8 * 50 + 1);
    for c in &got {
        assert_eq!(c.envelope, msg(&c.id, "TH").envelope, "{}", c.id);
    }
}

/// The SQLite queue keeps envelope bodies in segment files beside the database, not in its
/// rows; a body that cannot be read back becomes a dead letter with the reason (the others
/// are still sent); a segment goes once retention has purged every body in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bodies_live_in_segments_checked_and_retired() {
    let db = sqlite_db();
    let path = std::path::PathBuf::from(db.url.strip_prefix("sqlite:").expect("sqlite url"));
    let segdir = queue::sqlite::segments_dir(&path);
    let Q { q, _db: keep } = open(db).await;
    q.enqueue(vec![msg("a", "TH"), msg("b", "TH"), msg("c", "TH")], t0()).await.expect("enqueue");
    let c = rusqlite::Connection::open(&path).expect("open");
    c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let in_rows: i64 =
        c.query_row("SELECT SUM(length(envelope)) FROM gateway_queue", [], |r| r.get(0)).expect("sum");
    assert_eq!(in_rows, 0, "bodies are not in the rows");
    let segs: Vec<_> = std::fs::read_dir(&segdir).expect("segments").collect();
    assert_eq!(segs.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let seg = segs[0].as_ref().expect("entry").path();
        assert_eq!(std::fs::metadata(&seg).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&segdir).expect("meta").permissions().mode() & 0o777, 0o700);
    }
    // Damage b's body on disk.
    let seg = segs[0].as_ref().expect("entry").path();
    let (off, len): (i64, i64) = c
        .query_row("SELECT body_offset, body_len FROM gateway_queue WHERE id = 'b'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("b");
    let mut bytes = std::fs::read(&seg).expect("read");
    let last = usize::try_from(off + 12 + len - 1).expect("index");
    bytes[last] ^= 0x20;
    std::fs::write(&seg, bytes).expect("write");
    let claimed = q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    let ids: Vec<_> = claimed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"], "the damaged body is not sent");
    assert_eq!(claimed[0].envelope, msg("a", "TH").envelope);
    let b = q.track("b").await.expect("track").expect("b");
    assert_eq!(b.state, State::Failed);
    let why = b.error.as_deref().unwrap_or("");
    assert!(why.contains("cannot be read back") && why.contains("checksum"), "{why}");
    assert!(why.contains("ask the sending node to send the message again"), "what to do: {why}");
    // Deliver a and c; a reopened queue writes a new segment, and the old one goes once
    // nothing names it: b (a dead letter) still does, until it is delivered and purged too.
    let done = |id: &str| Settle { id: id.into(), outcome: Outcome::Delivered };
    q.settle("TH", vec![done("a"), done("c")], 12, t0()).await.expect("settle");
    drop(q);
    let q = queue::open(&format!("sqlite:{}", path.display()), 1).await.expect("reopen");
    q.migrate().await.expect("migrate");
    q.enqueue(vec![msg("d", "TH")], t0()).await.expect("enqueue");
    assert_eq!(std::fs::read_dir(&segdir).expect("segments").count(), 2);
    assert_eq!(q.purge_delivered(t0() + secs(1), 100, t0() + secs(2)).await.expect("purge"), 2);
    assert_eq!(std::fs::read_dir(&segdir).expect("segments").count(), 2, "b still names the first");
    c.execute("UPDATE gateway_queue SET state = 'delivered', delivered_at = 0 WHERE id = 'b'", [])
        .expect("b");
    assert_eq!(q.purge_delivered(t0() + secs(1), 100, t0() + secs(3)).await.expect("purge"), 1);
    assert_eq!(std::fs::read_dir(&segdir).expect("segments").count(), 1, "only the segment being written");
    let d = q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    assert_eq!((d.len(), d[0].envelope.clone()), (1, msg("d", "TH").envelope));
    // A message stored before segments (its body in its row) is still sent as it was.
    c.execute(
        "INSERT INTO gateway_queue (id, sender, recipient, kind, envelope, next_attempt_at, received_at) \
         VALUES ('old', 'KH', 'TH', 'status.update', X'7b7d', 0, 0)",
        [],
    )
    .expect("an old row");
    let old = q.claim("TH", 10, t0(), LEASE).await.expect("claim");
    assert_eq!((old.len(), old[0].id.as_str(), old[0].envelope.as_slice()), (1, "old", b"{}".as_slice()));
    drop(keep);
}
