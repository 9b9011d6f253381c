//! A whole region in this process (`originlink_region::setup`: a gateway, a KH and a TH node,
//! each with its console): a KH exporter uploads and submits an application, the KH officer
//! approves it, the certificate travels through the gateway to TH, and the exporter sees TH's
//! report in the certificate's status history; TH customs sees the certificate it received.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{Datelike as _, Utc};
use originlink_browser::Browser;
use originlink_exchange::server::Shutdown;
use originlink_region::{NodeInfo, Options, Region};
use serde_json::{Value, json};

use crate::support::{Pages, WAIT, click_and_wait, path, submit_sign_in};

/// How long TH's report may take to come back to KH (it takes well under a second with the
/// short polls and backoffs of [`start`]).
const REPORT_WAIT: Duration = Duration::from_secs(30);

/// The gateway and the nodes with their consoles, served in this process. Dropping it stops
/// them all and removes the region's folder.
struct Running {
    region: Region,
    stops: Vec<Shutdown>,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        for s in &self.stops {
            s.trigger();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Running {
    fn node(&self, country: &str) -> &NodeInfo {
        &self.region.nodes[country]
    }

    /// `path` on `country`'s console.
    fn url(&self, country: &str, path: &str) -> String {
        let base = self.node(country).console_url.as_deref().expect("the region configures a console");
        format!("{base}{path}")
    }

    /// The demo password of `user` at `country`'s node.
    fn password(&self, country: &str, user: &str) -> &str {
        &self.node(country).passwords[user]
    }
}

/// Writes a KH–TH region with quick polls and retries under a temporary folder, then starts
/// its gateway, and each node and its console, as `originlink demo` does.
async fn start() -> anyhow::Result<Running> {
    let dir = std::env::temp_dir().join(format!(
        "originlink-console-region-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let options = Options {
        countries: vec!["KH".into(), "TH".into()],
        backoff_base_ms: Some(50),
        backoff_max_ms: Some(500),
        poll_ms: Some(50),
        ..Default::default()
    };
    let region = originlink_region::setup(&dir, &options).await.context("region set-up")?;
    // From here on, dropping `running` stops what started and removes the folder.
    let mut running = Running { region, stops: Vec::new(), dir };
    let gcfg = originlink_gateway::config::Config::load(&running.region.gateway_config)?;
    let gateway = originlink_gateway::Gateway::build(&gcfg, Arc::new(originlink_node::SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
    running.stops.push(gateway.shutdown_handle());
    tokio::spawn(gateway.run_until_stopped());
    for (code, info) in &running.region.nodes {
        let cfg = originlink_node::Config::load(&info.config).with_context(|| format!("{code}'s config"))?;
        let app = originlink_node::Application::build(&cfg, Arc::new(originlink_node::SystemClock))
            .await
            .map_err(|e| anyhow::anyhow!("node {code}: {e}"))?;
        let console = originlink_console::Console::build(
            cfg.console.as_ref().context("the region configures a console")?,
            app.state().clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("console {code}: {e}"))?;
        assert_eq!(Some(console.url()), info.console_url, "{code}'s console where the region says");
        running.stops.push(app.handle());
        tokio::spawn(console.run_until_stopped(app.handle()));
        tokio::spawn(app.run_until_stopped());
    }
    Ok(running)
}

/// Signs `user` in on `country`'s console and waits for the first page of their role.
async fn sign_in(b: &Browser, r: &Running, country: &str, user: &str) -> anyhow::Result<()> {
    b.goto(&r.url(country, "/sign-in")).await?;
    submit_sign_in(b, user, r.password(country, user)).await?;
    b.wait_for_text("Sign out", WAIT).await.with_context(|| format!("{user} signs in at {country}"))
}

/// A KH → TH application document (two goods items) naming `user`'s company as exporter, as
/// the exporter would write it.
fn application(user: &str) -> anyhow::Result<Value> {
    let company = originlink_region::COUNTRIES
        .iter()
        .filter(|c| c.code == "KH")
        .flat_map(|c| c.exporters.iter())
        .find(|(_, u)| *u == user)
        .map(|(company, _)| *company)
        .with_context(|| format!("{user} is no KH exporter of the region"))?;
    let doc = originlink_region::application_document("KH", "TH", 1, 2, Utc::now())?;
    let (_, mut cert) =
        originlink_formats::read(doc.to_string().as_bytes(), &originlink_formats::Limits::default())
            .map_err(|p| anyhow::anyhow!("the region's document does not read: {p:?}"))?;
    cert.exporter.name = company.to_owned();
    Ok(serde_json::from_str(&originlink_formats::json::write(&cert))?)
}

/// The texts of the certificate page's status history items, in page order (as written, not
/// as styled: the tags are upper case on screen).
async fn history(b: &Browser) -> anyhow::Result<Vec<String>> {
    let v = b
        .execute(
            "return [...document.querySelectorAll('ol.timeline > li')].map(li => li.textContent.replace(/\\s+/g, ' ').trim());",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Reloads the page shown now until its status history has an item with `wanted`; fails after
/// [`REPORT_WAIT`] with what the history showed.
async fn wait_for_report(b: &Browser, wanted: &str) -> anyhow::Result<Vec<String>> {
    let url = b.current_url().await?;
    let deadline = Instant::now() + REPORT_WAIT;
    loop {
        b.wait_for_text("Status history", WAIT).await?;
        let items = history(b).await.unwrap_or_default();
        if items.iter().any(|i| i.contains(wanted)) {
            return Ok(items);
        }
        if Instant::now() >= deadline {
            let text = b.text().await.unwrap_or_default();
            bail!(
                "{wanted:?} was not in the status history within {REPORT_WAIT:?} on {url}; the page shows:\n{text}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        b.goto(&url).await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_sees_the_status_history_once_th_has_received_the_certificate() {
    let started = Instant::now();
    let r = start().await.expect("the region starts");
    let exporter = r.node("KH").exporters[0].clone();
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    // The exporter uploads the document and submits it.
    sign_in(&b, &r, "KH", &exporter).await.unwrap();
    b.goto(&r.url("KH", "/applications/upload")).await.unwrap();
    b.wait_for_text("Upload a document", WAIT).await.unwrap();
    let file = r.dir.join("application.json");
    std::fs::write(&file, application(&exporter).unwrap().to_string()).unwrap();
    b.upload("UBL 2.4 XML or edi3 JSON file", &file).await.unwrap();
    click_and_wait(&b, "Upload and check", "saved as a draft").await.unwrap();
    let at = path(&b).await;
    let id: i64 =
        at.strip_prefix("/applications/").and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("on {at}"));
    let text = b.text().await.unwrap();
    assert!(!text.contains("Check before approving"), "the document names the exporter's company: {text}");
    click_and_wait(&b, "Submit for approval", &format!("Application {id} submitted.")).await.unwrap();
    click_and_wait(&b, "Sign out", "User name").await.unwrap();

    // The officer approves it from the review queue: issued and sent to TH.
    sign_in(&b, &r, "KH", "kh-officer").await.unwrap();
    assert_eq!(path(&b).await, "/review");
    b.click_link(&format!("Application {id}")).await.unwrap();
    b.wait_for_text("Your decision", WAIT).await.unwrap();
    let number = format!("KH-{}-000001", Utc::now().year());
    click_and_wait(
        &b,
        "Approve and issue",
        &format!("Certificate {number} issued and sent to the importing country."),
    )
    .await
    .unwrap();
    let approved = Instant::now();
    click_and_wait(&b, "Sign out", "User name").await.unwrap();

    // The exporter finds the certificate; TH's report comes back into its status history.
    sign_in(&b, &r, "KH", &exporter).await.unwrap();
    b.click_link("Certificates").await.unwrap();
    b.wait_for_text(&number, WAIT).await.unwrap();
    b.click_link(&number).await.unwrap();
    b.wait_for_text("Status history", WAIT).await.unwrap();
    let items = wait_for_report(&b, "reported by TH").await.unwrap();
    let reported = Instant::now();
    assert_eq!(items.len(), 1, "one report, TH's arrival: {items:?}");
    assert!(items[0].starts_with("Received reported by TH ·"), "{items:?}");
    let tags = b
        .execute(
            "return [...document.querySelectorAll('ol.timeline > li > strong.tag')].map(s => s.className);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(tags, json!(["tag tag-received"]), "the status as a tag");
    let text = b.text().await.unwrap();
    assert!(!text.contains("No report from the importing country yet."), "{text}");
    assert!(text.contains("Download the signed certificate"), "{text}");
    pages.check_at(&b, "certificate-history", Some("#history-title")).await;

    // TH customs has it among the certificates received.
    sign_in(&b, &r, "TH", "th-customs").await.unwrap();
    assert_eq!(path(&b).await, "/certificates", "customs starts at the received certificates");
    b.wait_for_text(&number, WAIT).await.unwrap();
    let row = b
        .execute(
            "return [...document.querySelectorAll('main tbody tr')].map(tr => [...tr.cells].map(td => td.textContent.trim()));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(row[0][0], json!(number), "{row}");
    assert_eq!(row[0][1], json!("1"), "the first version: {row}");
    assert_eq!(row[0][2], json!("Valid"), "verified at TH: {row}");
    assert_eq!(row[0][3], json!("KH"), "issued by KH: {row}");
    pages.check(&b, "certificates-received").await;

    b.close().await.unwrap();
    eprintln!(
        "region test: TH's report shown {:.1} s after the approval, whole test {:.1} s",
        reported.duration_since(approved).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(r);
    pages.finish();
}
