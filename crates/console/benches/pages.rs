//! Server time per console page with many records, and what each page weighs.
//!
//! `cargo bench -p originlink-console --bench pages` seeds a KH node on SQLite with
//! `ORIGINLINK_BENCH_RECORDS` approved certificates (default 100,000; one exporter company
//! holds them all, so its lists are as long as they get) plus 200 submitted applications,
//! then asks each main page `ORIGINLINK_BENCH_REQUESTS` times (default 200) through the
//! console's router in process (server time: routing, session lookup, use case, storage,
//! template) and prints p50, p95 and the page's bytes, and the stylesheet's. Seeding stores the
//! document unsigned (the signing step is a stand-in): the pages read the stored bytes only.
//! Customs pages are asked over `ORIGINLINK_BENCH_DECLARATIONS` declarations (default: as many
//! as certificates), one line each, stored with a risk score as the decision leaves them.
//! `ORIGINLINK_BENCH_KEEP=1` keeps the node's folder (its database) for a look at the plans.
//!
//! Then the gateway operator's console: a region's gateway (KH, TH and VN, all pulling) with
//! `ORIGINLINK_BENCH_MESSAGES` messages in its SQLite queue (default 100,000, received over
//! the last hour, each naming a certificate; half delivered, 1% dead, the rest waiting), each of its pages asked
//! the same number of times through its router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use originlink_node::app::sessions;
use originlink_node::{AppState, Config, SystemClock};
use originlink_store::{Ctx, LineOutcome, NewApplication, Numbering, Role, Signed, Transition};
use tower::ServiceExt;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn new_application(state: &AppState, ctx: &Ctx, who: &originlink_store::User, i: u32) -> i64 {
    let kh = originlink_model::CountryCode::parse("KH").expect("KH");
    let th = originlink_model::CountryCode::parse("TH").expect("TH");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    let mut cert = originlink_model::sample::sample(originlink_model::Agreement::Atiga, kh, th, date, 2, i);
    cert.number = None;
    cert.certification = None;
    let app = NewApplication {
        company_id: who.company_id.expect("company"),
        created_by: who.id,
        format: "json".into(),
        document: originlink_formats::json::write(&cert).into_bytes(),
        self_assessment: None,
        assessment: None,
        replaces: None,
        back_to_back_of: None,
        copied_from: None,
    };
    let a = state.store.create_application(ctx, app).await.expect("application");
    state.store.transition(ctx, a.id, Transition::Submit).await.expect("submit");
    a.id
}

async fn cookie_of(state: &AppState, name: &str, user_id: i64, cookie: &str) -> String {
    let ctx = Ctx::new("bench", chrono::Utc::now());
    sessions::set_password(state.store.as_ref(), &ctx, user_id, "bench password 123")
        .await
        .expect("password");
    let started = sessions::sign_in(state, name, "bench password 123").await.expect("sign in");
    format!("{cookie}={}", started.id)
}

async fn time_page(router: &axum::Router, cookie: &str, path: &str, n: usize) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let req = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).expect("request");
        let t = Instant::now();
        let res = router.clone().oneshot(req).await.expect("answer");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("body");
        times.push(t.elapsed());
        bytes = body.len();
    }
    times.sort();
    (times[n / 2], times[(n * 95 / 100).min(n - 1)], bytes)
}

fn main() {
    let records = env_usize("ORIGINLINK_BENCH_RECORDS", 100_000);
    let declarations = env_usize("ORIGINLINK_BENCH_DECLARATIONS", records);
    let requests = env_usize("ORIGINLINK_BENCH_REQUESTS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("originlink_console_bench_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let now = chrono::Utc::now();
        let keys = originlink_trust::keys::init_authority("KH", "Ministry of Commerce", now.date_naive(), None)
            .expect("keys");
        originlink_trust::keystore::AuthorityDir(dir.join("keys")).write(&keys).expect("write keys");
        let toml = "[database]\nurl = \"sqlite:node.db\"\n[authority]\nid = \"KH-MOC\"\nname = \"Ministry of Commerce\"\ncountry = \"KH\"\nkeys = \"keys\"\n";
        let config = Config::parse(toml, &dir, Vec::new()).expect("config");
        let store = originlink_store::open(config.database.url.expose()).await.expect("store");
        store.migrate().await.expect("migrate");
        let state = AppState::build(&config, Arc::new(SystemClock)).await.expect("state");
        let ctx = Ctx::new("bench", now);
        let add = |name: &'static str, role, company| {
            let state = state.clone();
            let ctx = ctx.clone();
            async move {
                originlink_node::add_user(state.store.as_ref(), &ctx, name, role, company, "KH").await.expect("user").0
            }
        };
        let exporter = add("exporter", Role::Exporter, Some("Bench Exports Co")).await;
        let officer = add("officer", Role::IssuingOfficer, None).await;
        let admin = add("admin", Role::Admin, None).await;

        let seeding = Instant::now();
        let numbering = Numbering { issuer: "KH-MOC".into(), scope: "KH-MOC/2026".into() };
        let mut last_cert = 0;
        let mut last_app = 0;
        for i in 0..records {
            let id = new_application(&state, &ctx, &exporter, i as u32).await;
            let sign: originlink_store::SignFn = Box::new(|issue| {
                let number = format!("KH-2026-{:06}", issue.seq.unwrap_or(0));
                Ok(Signed { number, bytes: issue.application.document.clone(), messages: vec![] })
            });
            let c = state.store.approve(&ctx, id, &numbering, sign).await.expect("approve");
            (last_cert, last_app) = (c.id, id);
            if (i + 1) % 20_000 == 0 {
                eprintln!("seeded {} certificates in {:.0?}", i + 1, seeding.elapsed());
            }
        }
        for i in 0..200 {
            new_application(&state, &ctx, &exporter, (records + i) as u32).await;
        }
        eprintln!("seeded {records} certificates and 200 submitted applications in {:.0?}", seeding.elapsed());

        // Importing customs: as many declarations (one line each, waiting for its certificate),
        // with risk scores spread from 0 to 99, dated this month.
        let customs = add("customs", Role::CustomsOfficer, None).await;
        let seeding = Instant::now();
        let today = now.date_naive();
        let mut last_declaration = 0;
        for i in 0..declarations {
            let d = originlink_store::NewDeclaration {
                number: format!("KH-IMP-{i:08}"),
                importer: format!("Importer {}", i % 500),
                importer_key: Some(format!("importer-{}", i % 500)),
                importing_country: "KH".into(),
                declaration_date: today,
                document: "{}".into(),
                lines: vec![originlink_store::NewLine {
                    line_no: 1,
                    eco_country: Some("TH".into()),
                    eco_number: Some(format!("TH-2026-{i:06}")),
                    exporter: Some(format!("exporter-{}", i % 300)),
                    agreement: Some(if i % 3 == 0 { "RCEP" } else { "ATIGA" }.into()),
                }],
                created_by: customs.id,
            };
            let d = state.store.create_declaration(&ctx, d).await.expect("declaration");
            // Decided as customs decides, with the duty if granted and if denied, so revenue
            // sums 100,000 real lines.
            let money = |a: &str| serde_json::json!({"amount": a, "currency": "USD"});
            let duty = |due: &str| {
                serde_json::json!({"mfn": money("150.00"), "preferential": money(due), "due": money(due),
                    "preference_granted": money("0.00")})
            };
            let decision = originlink_store::LineDecision {
                line_no: 1,
                outcome: if i % 4 == 0 { LineOutcome::Denied } else { LineOutcome::Granted },
                reasons: "[]".into(),
                matched_item: None,
                duty: serde_json::json!({"if_granted": duty("25.00"), "if_denied": duty("150.00")}).to_string(),
                claim: None,
            };
            state.store.decide_lines(&ctx, d.id, vec![decision]).await.expect("decided");
            let score = (i * 37 % 100) as i64;
            let risk = format!(r#"{{"score":{score},"reasons":[{{"code":"FIRST_TIME_PAIR","weight":{score},"detail":"bench"}}]}}"#);
            state.store.set_risk(&ctx, d.id, score, &risk).await.expect("risk");
            last_declaration = d.id;
        }
        eprintln!("seeded {declarations} declarations in {:.0?}", seeding.elapsed());
        // What people are told of all that: the notifier reads the whole audit log once.
        let telling = Instant::now();
        let notifier = originlink_node::notify::Notifier::new(state.clone(), &Default::default(), None)
            .expect("notifier");
        let (told, _) = notifier.step().await.expect("notifications");
        eprintln!("made {told} notifications from the audit log in {:.0?}", telling.elapsed());

        let shared = originlink_console::Shared::new(state.clone());
        let cookie = shared.cookie.to_string();
        let router = originlink_console::router(shared);
        let exp = cookie_of(&state, "exporter", exporter.id, &cookie).await;
        let off = cookie_of(&state, "officer", officer.id, &cookie).await;
        let adm = cookie_of(&state, "admin", admin.id, &cookie).await;
        let cus = cookie_of(&state, "customs", customs.id, &cookie).await;
        let pages: Vec<(&str, &str, String)> = vec![
            ("exporter: applications, first page", &exp, "/applications".into()),
            ("exporter: applications, a page deep in the list", &exp, format!("/applications?before={}", last_app / 2)),
            ("exporter: applications, status filter", &exp, "/applications?status=approved".into()),
            ("exporter: applications, search by number", &exp, "/applications?q=KH-2026-000123".into()),
            ("exporter: certificates", &exp, "/certificates".into()),
            ("exporter: certificate and its history", &exp, format!("/certificates/{last_cert}")),
            ("exporter: application", &exp, format!("/applications/{last_app}")),
            ("exporter: new application form", &exp, "/applications/new".into()),
            ("officer: review queue", &off, "/review".into()),
            ("officer: issued certificates", &off, "/certificates".into()),
            ("officer: application with assessment", &off, format!("/applications/{last_app}")),
            ("admin: users", &adm, "/admin/users".into()),
            ("admin: audit log", &adm, "/admin/audit".into()),
            ("customs: declarations, highest risk first", &cus, "/declarations".into()),
            ("customs: declarations, by outcome", &cus, "/declarations?outcome=pending".into()),
            ("customs: declarations, by number", &cus, "/declarations?number=KH-IMP-00012345".into()),
            ("customs: a declaration", &cus, format!("/declarations/{last_declaration}")),
            ("customs: received certificates", &cus, "/certificates".into()),
            ("customs: revenue this month", &cus, "/revenue".into()),
            ("customs: revenue by agreement", &cus, "/revenue?by=agreement".into()),
            ("customs: revenue by partner", &cus, "/revenue?by=partner".into()),
            ("customs: new declaration form", &cus, "/declarations/new".into()),
            ("exporter: notifications", &exp, "/notifications".into()),
            ("officer: notifications", &off, "/notifications".into()),
        ];
        println!(
            "console pages, {records} certificates, {declarations} declarations, {requests} requests each (server time, in process)"
        );
        println!("{:<52} {:>9} {:>9} {:>9}", "page", "p50 ms", "p95 ms", "bytes");
        for (name, who, path) in &pages {
            let (p50, p95, bytes) = time_page(&router, who, path, requests).await;
            println!(
                "{name:<52} {:>9.2} {:>9.2} {:>9}",
                p50.as_secs_f64() * 1e3,
                p95.as_secs_f64() * 1e3,
                bytes
            );
        }
        println!("stylesheet (/console.css, cached a day): {} bytes", originlink_console::views::STYLESHEET.len());
        operator_pages(&dir, env_usize("ORIGINLINK_BENCH_MESSAGES", 100_000), requests).await;
        if std::env::var_os("ORIGINLINK_BENCH_KEEP").is_some() {
            eprintln!("kept {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

/// The operator's pages over a gateway queue of `messages` rows.
async fn operator_pages(dir: &std::path::Path, messages: usize, requests: usize) {
    use originlink_console::operator;
    use originlink_gateway::queue::{CertificateRef, NewMessage, Outcome, Settle};

    let options = originlink_region::Options {
        countries: vec!["KH".into(), "TH".into(), "VN".into()],
        ..Default::default()
    };
    let region = originlink_region::setup(&dir.join("region"), &options).await.expect("region");
    let env = [("ORIGINLINK__GATEWAY__PULL_ONLY".to_owned(), r#"["KH", "TH", "VN"]"#.to_owned())];
    let config = originlink_gateway::Config::load_with_env(&region.gateway_config, env).expect("config");
    let gateway = originlink_gateway::Gateway::build(&config, Arc::new(SystemClock)).await.expect("gateway");
    let queue = gateway.queue();
    let seeding = Instant::now();
    let now = chrono::Utc::now();
    let countries = ["KH", "TH", "VN"];
    let (batch, mut sample_id) = (500, String::new());
    for start in (0..messages).step_by(batch) {
        // Spread over the last hour, oldest first.
        let at =
            now - chrono::Duration::milliseconds((3_600_000 * (messages - start) / messages.max(1)) as i64);
        let rows: Vec<NewMessage> = (start..(start + batch).min(messages))
            .map(|i| {
                let (from, to) = (countries[i % 3], countries[(i + 1) % 3]);
                NewMessage {
                    manifest: None,
                    id: format!("01900000-0000-7000-8000-{i:012}"),
                    sender: from.into(),
                    recipient: to.into(),
                    kind: "status.update".into(),
                    envelope: vec![b'x'; 1024],
                    certificate: Some(CertificateRef {
                        country: to.into(),
                        number: format!("{to}-2026-{i:06}"),
                    }),
                }
            })
            .collect();
        sample_id = rows[rows.len() / 2].id.clone();
        queue.enqueue(rows, at).await.expect("enqueue");
        // Half delivered 300 ms later, one in a hundred dead, the rest waiting for a retry.
        let later = at + chrono::Duration::milliseconds(300);
        for to in countries {
            let claimed = queue.claim(to, batch, at, Duration::from_secs(30)).await.expect("claim");
            let outcomes = claimed
                .iter()
                .enumerate()
                .map(|(n, c)| Settle {
                    id: c.id.clone(),
                    outcome: match n % 100 {
                        1 => Outcome::Failed("refused: BENCH".into()),
                        n if n % 2 == 0 => Outcome::Delivered,
                        _ => Outcome::Retry { error: "HTTP 503".into(), at: now + chrono::Duration::days(1) },
                    },
                })
                .collect();
            queue.settle(to, outcomes, 12, later).await.expect("settle");
        }
    }
    eprintln!("seeded {messages} gateway messages in {:.0?}", seeding.elapsed());
    operator::sessions::set_password(queue.as_ref(), "bench", "bench password 123", now)
        .await
        .expect("operator");
    let throttle = sessions::Throttle::default();
    let started = operator::sessions::sign_in(queue.as_ref(), &throttle, "bench", "bench password 123", now)
        .await
        .expect("sign in");
    let cookie = format!("{}={}", operator::COOKIE, started.id);
    let router = operator::router(operator::Shared::new(gateway.shared(), &config.gateway.id));
    let middle = messages / 2;
    let number = format!("{}-2026-{middle:06}", countries[(middle + 1) % 3]);
    let country = countries[(middle + 1) % 3];
    let pages: Vec<(&str, String)> = vec![
        ("operator: members and their queues", "/".into()),
        (
            "operator: find by certificate number and country",
            format!("/messages?number={number}&country={country}"),
        ),
        ("operator: find by message id", format!("/messages?id={sample_id}")),
        ("operator: a message", format!("/messages/{sample_id}")),
        ("operator: dead letters (oldest 100)", "/dead".into()),
        ("operator: traffic over the last hour", "/traffic".into()),
        ("operator: trust list", "/trust-list".into()),
    ];
    println!("operator's console, {messages} messages in the gateway's queue, {requests} requests each");
    println!("{:<52} {:>9} {:>9} {:>9}", "page", "p50 ms", "p95 ms", "bytes");
    for (name, path) in &pages {
        let (p50, p95, bytes) = time_page(&router, &cookie, path, requests).await;
        println!("{name:<52} {:>9.2} {:>9.2} {:>9}", p50.as_secs_f64() * 1e3, p95.as_secs_f64() * 1e3, bytes);
    }
    gateway.shutdown_handle().trigger();
}
