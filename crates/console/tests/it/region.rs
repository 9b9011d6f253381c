//! A whole region in this process (`originlink_region::setup`: a gateway, a KH and a TH node,
//! each with its console): a KH exporter uploads and submits an application, the KH officer
//! approves it, the certificate travels through the gateway to TH, and the exporter sees TH's
//! report in the certificate's status history; TH customs sees the certificate it received,
//! lodges a declaration on it (after one refused), and the exporter sees what TH used of it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{Datelike as _, Utc};
use originlink_browser::Browser;
use originlink_exchange::server::Shutdown;
use originlink_node::AppState;
use originlink_region::{NodeInfo, Options, Region};
use serde_json::{Value, json};

use crate::support::{Pages, WAIT, click_and_wait, field_value, path, submit_sign_in};

/// How long TH's reports may take to come back to KH (they take well under a second with the
/// short polls and backoffs of [`start`]).
const REPORT_WAIT: Duration = Duration::from_secs(30);

/// The gateway and the nodes with their consoles, served in this process. Dropping it stops
/// them all and removes the region's folder.
struct Running {
    region: Region,
    /// Each node's use cases and state, by country.
    states: BTreeMap<String, AppState>,
    stops: Vec<Shutdown>,
    dir: PathBuf,
    /// The SMTP server every node e-mails through, and the maildir it writes.
    smtp: crate::support::Smtp,
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
    let smtp = crate::support::Smtp::start(&dir.join("maildir")).await?;
    let relay = smtp.addr.clone();
    // From here on, dropping `running` stops what started and removes the folder.
    let mut running = Running { region, states: BTreeMap::new(), stops: Vec::new(), dir, smtp };
    let gcfg = originlink_gateway::config::Config::load(&running.region.gateway_config)?;
    let gateway = originlink_gateway::Gateway::build(&gcfg, Arc::new(originlink_node::SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
    // The gateway's operator console, as `originlink gateway` serves it.
    let operator_console = originlink_console::Console::operator(
        gcfg.console.as_ref().context("the region gives its gateway a console")?,
        gateway.shared(),
        &gcfg.gateway.id,
    )
    .await?;
    assert_eq!(Some(operator_console.url()), running.region.gateway_console_url, "the operator's console");
    running.stops.push(gateway.shutdown_handle());
    tokio::spawn(operator_console.run_until_stopped(gateway.shutdown_handle()));
    tokio::spawn(gateway.run_until_stopped());
    for (code, info) in &running.region.nodes {
        let mut cfg =
            originlink_node::Config::load(&info.config).with_context(|| format!("{code}'s config"))?;
        // People are told by e-mail too, through the test's SMTP server, quickly.
        cfg.notifications = Some(originlink_node::config::NotificationsConfig {
            interval_ms: Some(100),
            smtp: Some(relay.clone()),
            from: Some(format!("originlink@{}.example", code.to_ascii_lowercase())),
            webhooks: vec![],
            unreachable_minutes: None,
        });
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
        running.states.insert(code.clone(), app.state().clone());
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

/// The company of KH exporter `user` in the region.
fn company_of(user: &str) -> anyhow::Result<&'static str> {
    originlink_region::COUNTRIES
        .iter()
        .filter(|c| c.code == "KH")
        .flat_map(|c| c.exporters.iter())
        .find(|(_, u)| *u == user)
        .map(|(company, _)| *company)
        .with_context(|| format!("{user} is no KH exporter of the region"))
}

/// A KH → TH application document (two goods items) naming `user`'s company as exporter, as
/// the exporter would write it.
fn application(user: &str) -> anyhow::Result<Value> {
    let company = company_of(user)?;
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

/// Reloads the page shown now until its status history has, for each of `wanted`, an item
/// with it; fails after [`REPORT_WAIT`] with what the history showed.
async fn wait_for_reports(b: &Browser, wanted: &[&str]) -> anyhow::Result<Vec<String>> {
    let url = b.current_url().await?;
    let deadline = Instant::now() + REPORT_WAIT;
    loop {
        b.wait_for_text("Status history", WAIT).await?;
        let items = history(b).await.unwrap_or_default();
        if wanted.iter().all(|w| items.iter().any(|i| i.contains(w))) {
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

/// The rows of the received certificate's "What is left of each item" table: item number,
/// quantity certified, quantity left, and the tag after it (empty when none).
async fn remaining(b: &Browser) -> anyhow::Result<Vec<[String; 4]>> {
    let v = b
        .execute(
            "return [...document.querySelectorAll('section[aria-labelledby=\"left-title\"] tbody tr')].map(tr => { \
               const c = tr.cells, tag = c[2].querySelector('strong.tag'); \
               return [c[0].textContent.trim(), c[1].textContent.trim(), c[2].firstChild ? c[2].firstChild.textContent.trim() : '', tag ? tag.textContent.trim() : '']; });",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// The cells of each body row of the first table in `main`: their text as written (the tags
/// are upper case on screen), a space where a line breaks; and each row's first link.
async fn table(b: &Browser) -> anyhow::Result<Vec<(Vec<String>, Option<String>)>> {
    let v = b
        .execute(
            "const text = n => [...n.childNodes].map(c => c.nodeName === 'BR' ? ' ' : c.nodeType === 1 ? text(c) : c.textContent).join(''); \
             const t = document.querySelector('main table'); \
             if (!t || !t.tBodies[0]) return []; \
             return [...t.tBodies[0].rows].map(tr => { const a = tr.querySelector('a'); \
               return [[...tr.cells].map(td => text(td).replace(/\\s+/g, ' ').trim()), a ? a.getAttribute('href') : null]; });",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// The text of the error summary shown now, if any.
async fn error_summary(b: &Browser) -> anyhow::Result<Option<String>> {
    let v = b
        .execute(
            "const e = document.querySelector('.error-summary'); return e ? e.textContent.replace(/\\s+/g, ' ').trim() : null;",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_sees_the_status_history_once_th_has_received_the_certificate() {
    let started = Instant::now();
    let r = start().await.expect("the region starts");
    let exporter = r.node("KH").exporters[0].clone();
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    // TH's administrator gives the customs officer an e-mail address for notifications: a
    // wrong one is refused at its field, with what was typed kept.
    sign_in(&b, &r, "TH", "th-admin").await.unwrap();
    b.click_link("th-customs").await.unwrap();
    b.wait_for_text("E-mail notifications", WAIT).await.unwrap();
    b.fill("E-mail address", "customs at th").await.unwrap();
    click_and_wait(&b, "Save the address", "That is not an e-mail address").await.unwrap();
    assert_eq!(field_value(&b, "email").await, "customs at th");
    pages.check(&b, "user-email-refused").await;
    b.fill("E-mail address", "customs@customs.go.th").await.unwrap();
    click_and_wait(&b, "Save the address", "The e-mail address of th-customs is saved.").await.unwrap();

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
    assert!(
        !text.contains("What the officer will be warned about"),
        "the document names the exporter's company: {text}"
    );
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
    let certificate_page = b.current_url().await.unwrap();
    let certificate_id: i64 = path(&b)
        .await
        .strip_prefix("/certificates/")
        .and_then(|i| i.parse().ok())
        .expect("on the certificate's page");
    let items = wait_for_reports(&b, &["reported by TH"]).await.unwrap();
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

    // TH customs is told it arrived: on every page, a count of what is new.
    sign_in(&b, &r, "TH", "th-customs").await.unwrap();
    assert_eq!(path(&b).await, "/certificates", "customs starts at the received certificates");
    let deadline = Instant::now() + REPORT_WAIT;
    while !b.text().await.unwrap().contains("1 new") {
        assert!(Instant::now() < deadline, "no notification of the arrival: {}", b.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.goto(&r.url("TH", "/certificates")).await.unwrap();
    }
    b.click_link("Notifications 1 new").await.unwrap();
    let arrived = format!("Certificate {number} arrived from KH.");
    b.wait_for_text(&arrived, WAIT).await.unwrap();
    pages.check(&b, "notifications").await;
    b.click_link(&arrived).await.unwrap();
    b.wait_for_text(&format!("Received certificate {number}"), WAIT).await.unwrap();
    assert!(!b.text().await.unwrap().contains("1 new"), "seen now");
    // And by e-mail, through the SMTP server.
    let mails = r.smtp.mails(1).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("To: <customs@customs.go.th>"))
        .unwrap_or_else(|| panic!("{mails:#?}"));
    assert!(mail.contains(&arrived), "{mail}");
    assert!(mail.contains("/received/"), "a link to the certificate: {mail}");

    // It is among the certificates received.
    b.click_link("Received certificates").await.unwrap();
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
    // Narrowed by issuing country: Viet Nam issued none of them, Cambodia this one.
    b.fill("Issuing country", "Viet Nam").await.unwrap();
    click_and_wait(&b, "Apply filters", "No received certificate here").await.unwrap();
    b.fill("Issuing country", "Cambodia").await.unwrap();
    click_and_wait(&b, "Apply filters", &number).await.unwrap();
    assert!(path(&b).await.contains("issuer=KH"), "{}", path(&b).await);
    // And by exporter: the certificate's, then another's.
    let exporter_name = company_of(&exporter).unwrap();
    assert_eq!(table(&b).await.unwrap()[0].0[4], exporter_name, "the exporter is listed");
    b.fill("Exporter", &exporter_name[..6]).await.unwrap();
    click_and_wait(&b, "Apply filters", &number).await.unwrap();
    b.fill("Exporter", "No such trader").await.unwrap();
    click_and_wait(&b, "Apply filters", "No received certificate here").await.unwrap();
    b.fill("Exporter", "").await.unwrap();
    click_and_wait(&b, "Apply filters", &number).await.unwrap();

    // Its number opens it as received: genuine, and every item whole.
    let kh_state = &r.states["KH"];
    let signed = kh_state.store.certificate(certificate_id).await.unwrap().expect("KH has it").signed;
    let (_, cert) = originlink_formats::read(&signed, &originlink_formats::Limits::default())
        .unwrap_or_else(|p| panic!("the signed certificate does not read: {p:?}"));
    assert_eq!(cert.items.len(), 2, "the application's two items");
    let whole: Vec<[String; 4]> = cert
        .items
        .iter()
        .map(|i| {
            let unit = i.quantity.unit().as_str();
            [
                i.number.to_string(),
                format!("{} {unit}", i.quantity.value()),
                format!("{} {unit}", i.quantity.value()),
                String::new(),
            ]
        })
        .collect();
    b.click_link(&number).await.unwrap();
    b.wait_for_text(&format!("Received certificate {number}"), WAIT).await.unwrap();
    let received_page = path(&b).await;
    assert!(
        received_page.strip_prefix("/received/").is_some_and(|i| i.parse::<i64>().is_ok()),
        "on {received_page}"
    );
    let text = b.text().await.unwrap();
    assert!(text.contains("Genuine and valid"), "the verdict in words: {text}");
    assert!(text.contains("What is left of each item"), "{text}");
    assert_eq!(remaining(&b).await.unwrap(), whole, "nothing used yet");
    pages.check(&b, "received-certificate").await;

    // A declaration that does not read is refused: the form comes back with the error and what
    // was typed.
    b.click_link("New declaration").await.unwrap();
    b.wait_for_text("Lodge the JSON", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/declarations/new");
    // Uploaded as a file (what is shown again is the file's text).
    let broken = r.dir.join("broken-declaration.json");
    std::fs::write(&broken, "{").unwrap();
    b.upload("Or upload it (JSON file)", &broken).await.unwrap();
    click_and_wait(&b, "Lodge the JSON", "The declaration cannot be read").await.unwrap();
    let summary = error_summary(&b).await.unwrap().expect("an error summary");
    assert!(summary.contains("DECLARATION_INVALID"), "{summary}");
    assert!(!summary.contains("()"), "no empty brackets where a field would be named: {summary}");
    assert_eq!(field_value(&b, "declaration").await, "{", "what was typed is kept");
    pages.check(&b, "declaration-refused").await;

    // TH customs declares the goods from the certificate's page: the form's lines are its
    // items. All of item 1 and half of item 2, by the certificate's consignee, today. A
    // number left out is asked for, at its field, with everything typed kept.
    b.goto(&r.url("TH", &received_page)).await.unwrap();
    b.click_link("Declare these goods").await.unwrap();
    b.wait_for_text("Line 2", WAIT).await.unwrap();
    assert_eq!(field_value(&b, "l0_eco_number").await, number, "the lines name the certificate");
    assert_eq!(field_value(&b, "l1_quantity").await, cert.items[1].quantity.value().to_string());
    let q2 = cert.items[1].quantity.value();
    let half = (q2 / originlink_model::Decimal::from(2)).floor();
    b.fill_name("l1_quantity", &half.to_string()).await.unwrap();
    click_and_wait(&b, "Lodge and decide", "There is a problem").await.unwrap();
    let summary = error_summary(&b).await.unwrap().expect("an error summary");
    assert!(summary.contains("Declaration number: must not be empty"), "the number is asked for: {summary}");
    assert_eq!(field_value(&b, "l1_quantity").await, half.to_string(), "what was typed is kept");
    pages.check(&b, "declaration-form-refused").await;
    let declaration_number = format!("TH-IMP-{}-000001", Utc::now().year());
    let typing = Instant::now();
    b.fill_name("number", &declaration_number).await.unwrap();
    let typed = typing.elapsed();
    click_and_wait(
        &b,
        "Lodge and decide",
        &format!("Declaration {declaration_number} lodged; each line is decided below."),
    )
    .await
    .unwrap();
    let lodged = Instant::now();
    let declaration_page = path(&b).await;
    assert!(
        declaration_page.strip_prefix("/declarations/").is_some_and(|i| i.parse::<i64>().is_ok()),
        "on {declaration_page}"
    );
    let lines = table(&b).await.unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let q1 = cert.items[0].quantity.value();
    for ((cells, link), (n, taken)) in lines.iter().zip([(1, q1), (2, half)]) {
        assert_eq!(cells[0], n.to_string(), "{cells:?}");
        assert_eq!(
            cells[1],
            format!("KH {number} item {n} of the certificate, {taken} taken from it"),
            "{cells:?}"
        );
        assert_eq!(
            link.as_deref(),
            Some(received_page.as_str()),
            "the line links the certificate: {cells:?}"
        );
        assert_eq!(cells[2], "Preference granted", "{cells:?}");
        let duty = &cells[4];
        // "USD 0.00 to pay (MFN USD 1,227.60)": what the importer pays, and the MFN duty.
        assert!(duty.contains(" to pay (MFN "), "the duty and the MFN duty: {cells:?}");
        let (currency, rest) = duty.split_once(' ').unwrap_or_default();
        let amount = rest.split(' ').next().unwrap_or_default();
        assert!(
            currency.len() == 3
                && currency.chars().all(|c| c.is_ascii_uppercase())
                && amount.contains('.')
                && amount.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.'),
            "a duty with its currency: {cells:?}"
        );
    }
    pages.check(&b, "declaration").await;

    // The declarations list has it.
    b.click_link("Declarations").await.unwrap();
    b.wait_for_text("Highest risk first.", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/declarations");
    let rows = table(&b).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (cells, link) = &rows[0];
    assert_eq!(cells[0], declaration_number, "{cells:?}");
    assert_eq!(link.as_deref(), Some(declaration_page.as_str()), "{cells:?}");
    assert_eq!(cells[1], cert.consignee.name, "the importer: {cells:?}");
    assert_eq!(cells[4], "Preference granted Preference granted", "{cells:?}");
    pages.check(&b, "declarations").await;

    // Through the declaration back to the certificate: item 1 is used up, half of item 2 is left.
    b.click_link(&declaration_number).await.unwrap();
    b.wait_for_text(&format!("Declaration {declaration_number}"), WAIT).await.unwrap();
    b.click_link(&format!("KH {number}")).await.unwrap();
    b.wait_for_text(&format!("Received certificate {number}"), WAIT).await.unwrap();
    assert_eq!(path(&b).await, received_page);
    let left = remaining(&b).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    let with_unit = |i: usize, q: String| format!("{q} {}", cert.items[i].quantity.unit().as_str());
    assert_eq!(
        left[0][..3],
        [whole[0][0].clone(), with_unit(0, q1.to_string()), with_unit(0, "0".into())],
        "{left:?}"
    );
    assert_eq!(
        left[1][..3],
        [whole[1][0].clone(), with_unit(1, q2.to_string()), with_unit(1, (q2 - half).to_string())],
        "{left:?}"
    );
    assert_eq!([left[0][3].as_str(), left[1][3].as_str()], ["Used up", "Partly used"], "{left:?}");
    pages.check(&b, "received-certificate-used").await;

    // Revenue: the chart's bars, the table and the CSV give the use case's own figures.
    b.click_link("Revenue").await.unwrap();
    b.wait_for_text("Figures per currency", WAIT).await.unwrap();
    let today = Utc::now().date_naive();
    let first_day = today.with_day(1).expect("the first of the month");
    let th_state = &r.states["TH"];
    let api =
        originlink_node::app::customs::revenue(th_state, first_day, today.succ_opt().expect("tomorrow"))
            .await
            .expect("revenue");
    assert_eq!(api.revenue.per_currency.len(), 1, "{api:?}");
    let (currency, totals) = api.revenue.per_currency.iter().next().expect("one currency");
    let c = currency.to_string();
    let money = |v: &originlink_model::Decimal| originlink_console::documents::money(&v.to_string(), &c);
    let expected = [
        c.clone(),
        totals.lines.to_string(),
        money(&totals.mfn_total),
        money(&totals.duty_collected_total),
        money(&totals.preference_granted_total),
    ];
    let rows = table(&b).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, expected, "the table is the use case's figures");
    assert_eq!(totals.lines, 2, "both lines of the declaration are counted");
    let bars = b
        .execute("return [...document.querySelectorAll('svg rect')].map(r => r.dataset.value);", vec![])
        .await
        .unwrap();
    assert_eq!(bars, serde_json::json!([expected[2], expected[3]]), "the chart's bars: MFN, then collected");
    // The CSV export, as the browser would download it (with TH customs' session).
    let console = r.node("TH").console_url.clone().expect("a console");
    let addr: std::net::SocketAddr = console.trim_start_matches("http://").parse().expect("an address");
    let session = b.cookie("__Host-originlink-TH").await.unwrap().expect("signed in at TH");
    let cookie = format!("{}={}", session.name, session.value);
    let path = format!("/revenue.csv?from={first_day}&to={today}");
    let csv = crate::support::http(addr, "GET", &path, Some(&cookie), None).await.unwrap();
    assert_eq!(csv.status, 200, "{}", csv.body);
    let line = format!(
        "{},ATIGA,KH,{c},{},{},{},{}",
        first_day.format("%Y-%m"),
        totals.lines,
        totals.mfn_total,
        totals.duty_collected_total,
        totals.preference_granted_total
    );
    assert_eq!(csv.body.lines().nth(1), Some(line.as_str()), "{}", csv.body);
    assert_eq!(api.groups.len(), 1, "one month, agreement and partner: {:?}", api.groups);
    // Grouped by agreement, the one row is the agreement's.
    b.goto(&format!("{console}/revenue?from={first_day}&to={today}&by=agreement")).await.unwrap();
    b.wait_for_text("Figures by agreement", WAIT).await.unwrap();
    let tables = b
        .execute("return [...document.querySelectorAll('table')[1].tBodies[0].rows].map(r => r.cells[0].textContent);", vec![])
        .await
        .unwrap();
    assert_eq!(tables, serde_json::json!(["ATIGA"]));
    pages.check(&b, "revenue").await;

    // Back at KH, the exporter reads what TH used of each item in the status history.
    b.goto(&certificate_page).await.unwrap();
    let unit = |i: usize| cert.items[i].quantity.unit().as_str().to_owned();
    let items =
        wait_for_reports(&b, &["Used up reported by TH", "Partly used reported by TH"]).await.unwrap();
    let reported_used = Instant::now();
    assert_eq!(items.len(), 3, "TH's arrival and a report per line: {items:?}");
    let report = |status: &str| items.iter().find(|i| i.starts_with(status)).cloned().unwrap_or_default();
    let (u1, u2) = (unit(0), unit(1));
    let first = report("Used up reported by TH ·");
    assert!(first.contains(&format!("Import declaration {declaration_number}")), "{items:?}");
    assert!(first.ends_with(&format!("item 1: {q1} {u1} used, 0 {u1} left")), "{items:?}");
    let second = report("Partly used reported by TH ·");
    assert!(second.contains(&format!("Import declaration {declaration_number}")), "{items:?}");
    assert!(second.ends_with(&format!("item 2: {half} {u2} used, {} {u2} left", q2 - half)), "{items:?}");
    assert!(items[2].starts_with("Received reported by TH ·"), "the arrival, oldest last: {items:?}");
    pages.check_at(&b, "certificate-utilized", Some("#history-title")).await;
    // The exporter was told each report too.
    b.goto(&r.url("KH", "/notifications")).await.unwrap();
    b.wait_for_text(&format!("TH reported certificate {number}: used up."), WAIT).await.unwrap();
    let told = b.text().await.unwrap();
    for said in [
        format!("TH reported certificate {number}: received."),
        format!("TH reported certificate {number}: partly used."),
        "is approved: certificate".to_owned(),
    ] {
        assert!(told.contains(&said), "{said:?} in {told}");
    }

    // The gateway's operator finds the messages about the certificate by its number.
    let hub = r.region.gateway_console_url.clone().expect("the gateway's console");
    b.goto(&format!("{hub}/sign-in")).await.unwrap();
    submit_sign_in(&b, "operator", &r.region.operators["operator"]).await.unwrap();
    b.wait_for_text("Sign out", WAIT).await.unwrap();
    b.click_link("Find a message").await.unwrap();
    b.wait_for_text("By certificate", WAIT).await.unwrap();
    b.fill("Certificate number", &number).await.unwrap();
    b.fill("Issuing country", "KH").await.unwrap();
    click_and_wait(&b, "Find messages about this certificate", "Messages found").await.unwrap();
    let found = b.text().await.unwrap();
    assert!(found.contains(&format!("{number} (KH)")), "{found}");
    assert!(found.to_lowercase().contains("delivered"), "the certificate reached TH: {found}");
    pages.check(&b, "operator-found-in-region").await;

    b.close().await.unwrap();
    eprintln!(
        "region test: TH's report shown {:.1} s after the approval, its utilization {:.1} s after \
         the declaration was lodged; the declaration typed in {:.1} s; whole test {:.1} s",
        reported.duration_since(approved).as_secs_f64(),
        reported_used.duration_since(lodged).as_secs_f64(),
        typed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(r);
    pages.finish();
}
