//! Approvals per second: applications approved through the API (number allocated, UBL
//! written, XML-DSig signed with the authority key, stored exactly as signed, audit events
//! chained), on SQLite and on PostgreSQL.
//!
//! `cargo bench -p originlink-node --bench approvals` (`ORIGINLINK_BENCH_N`, default 2000;
//! `ORIGINLINK_BENCH_CONCURRENCY`, default 8; PostgreSQL at `ORIGINLINK_TEST_PG`, default
//! `postgres://postgres@127.0.0.1:5432`, in scratch databases dropped afterwards;
//! `ORIGINLINK_BENCH_BACKENDS`, default `sqlite,postgres`; `ORIGINLINK_BENCH_PER_COMMIT`, default
//! `1,128`).
//!
//! Each backend runs twice in the same process: with group commit off
//! (`approvals_per_commit = 1`, one commit per approval, as before it existed) and on (the
//! default, 128).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use originlink_node::{AppState, Config, SystemClock};
use originlink_store::{Ctx, NewApplication, Role, Transition};
use tower::ServiceExt;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn bench(
    backend: &str,
    url: &str,
    dir: &std::path::Path,
    n: usize,
    concurrency: usize,
    per_commit: usize,
) -> f64 {
    let toml = format!(
        "[database]\nurl = \"{url}\"\n[authority]\nid = \"KH-MOC\"\nname = \"Ministry of Commerce\"\ncountry = \"KH\"\nkeys = \"keys\"\napprovals_per_commit = {per_commit}\n[audit]\ncheckpoint = \"{backend}-{per_commit}.checkpoint\"\n"
    );
    let config = Config::parse(&toml, dir, Vec::new()).expect("config");
    let store = originlink_store::open(config.database.url.expose()).await.expect("store");
    store.migrate().await.expect("migrate");
    let state = AppState::build(&config, Arc::new(SystemClock)).await.expect("state");
    let ctx = Ctx::new("bench", chrono::Utc::now());
    let (exporter, _) =
        originlink_node::add_user(state.store.as_ref(), &ctx, "exp", Role::Exporter, Some("Bench Co"), "KH")
            .await
            .expect("exporter");
    let (_, officer) =
        originlink_node::add_user(state.store.as_ref(), &ctx, "off", Role::IssuingOfficer, None, "KH")
            .await
            .expect("officer");
    let kh = originlink_model::CountryCode::parse("KH").expect("KH");
    let th = originlink_model::CountryCode::parse("TH").expect("TH");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let mut cert =
            originlink_model::sample::sample(originlink_model::Agreement::Atiga, kh, th, date, 3, i as u32);
        cert.number = None;
        cert.certification = None;
        let app = state
            .store
            .create_application(
                &ctx,
                NewApplication {
                    company_id: exporter.company_id.expect("company"),
                    created_by: exporter.id,
                    format: "json".into(),
                    document: originlink_formats::json::write(&cert).into_bytes(),
                    self_assessment: None,
                    assessment: None,
                    replaces: None,
                    back_to_back_of: None,
                    copied_from: None,
                },
            )
            .await
            .expect("application");
        state.store.transition(&ctx, app.id, Transition::Submit).await.expect("submit");
        ids.push(app.id);
    }
    let router = originlink_node::http::router(state.clone(), 1 << 20);
    let queue = Arc::new(std::sync::Mutex::new(ids));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (router, queue, officer) = (router.clone(), queue.clone(), officer.clone());
            tokio::spawn(async move {
                loop {
                    let Some(id) = queue.lock().expect("queue").pop() else { break };
                    let req = Request::post(format!("/api/v1/applications/{id}/approve"))
                        .header("authorization", format!("Bearer {officer}"))
                        .body(Body::empty())
                        .expect("request");
                    let res = router.clone().oneshot(req).await.expect("answer");
                    assert_eq!(res.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let secs = start.elapsed().as_secs_f64();
    // Each backend's chain has its own checkpoint: one file anchoring both would name another
    // chain's head (AUDIT_CHECKPOINT_MISMATCH) once the second backend runs.
    let audit = state.store.verify_audit().await.expect("audit");
    assert!(audit.is_ok(), "{audit:?}");
    let rate = n as f64 / secs;
    println!(
        "node approvals backend={backend} n={n} concurrency={concurrency} approvals_per_commit={per_commit} seconds={secs:.2} approvals_per_s={rate:.0}"
    );
    rate
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: run once either way.
    let n = env_usize("ORIGINLINK_BENCH_N", 2000);
    let concurrency = env_usize("ORIGINLINK_BENCH_CONCURRENCY", 8);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("originlink-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let keys = originlink_trust::keys::init_authority(
            "KH",
            "Ministry of Commerce",
            chrono::Utc::now().date_naive(),
            None,
        )
        .expect("keys");
        originlink_trust::keystore::AuthorityDir(dir.join("keys")).write(&keys).expect("write keys");
        let backends =
            std::env::var("ORIGINLINK_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
        let per_commit_list: Vec<usize> = std::env::var("ORIGINLINK_BENCH_PER_COMMIT")
            .unwrap_or_else(|_| format!("1,{}", originlink_node::app::group_commit::MAX_BATCH))
            .split(',')
            .map(|v| v.parse().expect("ORIGINLINK_BENCH_PER_COMMIT: numbers"))
            .collect();
        for &per_commit in per_commit_list.iter().filter(|_| backends.contains("sqlite")) {
            bench("sqlite", &format!("sqlite:bench-{per_commit}.db"), &dir, n, concurrency, per_commit).await;
        }
        if !backends.contains("postgres") {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        let base = std::env::var("ORIGINLINK_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let admin = originlink_store::postgres::PgStore::connect(&format!("{base}/postgres"), 1)
            .await
            .expect("PostgreSQL reachable (scripts/setup.sh)");
        for &per_commit in &per_commit_list {
            let name = format!("originlink_bench_{}_{per_commit}", std::process::id());
            admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
            bench("postgres", &format!("{base}/{name}"), &dir, n, concurrency, per_commit).await;
            admin.execute_raw(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop database");
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
