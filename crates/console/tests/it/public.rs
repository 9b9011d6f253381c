//! Anyone can check a certificate: by number and check code (the answer and its facts, the
//! same answer for a wrong number and a wrong code, a limit per client), a signed file in
//! full, and the status list and its signature; the verification page in Chromium, a file
//! upload included, axe-core clean.

use originlink_browser::Browser;
use originlink_node::app::{applications, status};
use originlink_trust::statuslist::{self, StatusList};
use serde_json::Value;

use crate::support::{ConsoleNode, Pages, WAIT, document, http};

/// The check code of issued certificate `id` (from its signed bytes).
async fn code_of(node: &ConsoleNode, id: i64) -> (String, Vec<u8>) {
    let c = node.state.store.certificate(id).await.expect("read").expect("certificate");
    (statuslist::check_code(&c.signed), c.signed)
}

async fn json(node: &ConsoleNode, path: &str) -> (u16, Value) {
    let r = http(node.addr, "GET", path, None, None).await.expect("request");
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

/// Replaces certificate `id` (its exporter `user` asks, bob approves): the new certificate.
async fn replace(node: &ConsoleNode, user: &originlink_store::User, id: i64, seq: u32) -> i64 {
    let input = applications::Apply {
        document: applications::Document::Json(document("Angkor Rice", seq)),
        self_assessment: None,
        replaces: Some(id),
        back_to_back_of: None,
    };
    let app = applications::apply(&node.state, user, input).await.expect("apply");
    applications::submit(&node.state, user, app.id).await.expect("submit");
    applications::approve(&node.state, &node.bob, app.id).await.expect("approve").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_and_check_code_tell_valid_revoked_or_superseded_and_guesses_learn_nothing() {
    let node = ConsoleNode::start_with("KH", false).await;
    status::publish(&node.state).await.expect("the list a node publishes at start");
    let (_, kept, kept_no) = node.issued(&node.alice, "Angkor Rice", 1).await;
    let (_, gone, gone_no) = node.issued(&node.alice, "Angkor Rice", 2).await;
    let (_, old, old_no) = node.issued(&node.alice, "Angkor Rice", 3).await;
    let (kept_code, _) = code_of(&node, kept).await;
    let (gone_code, _) = code_of(&node, gone).await;
    let (old_code, _) = code_of(&node, old).await;

    let (s, v) = json(&node, &format!("/public/v1/verify?number={kept_no}&code={kept_code}")).await;
    assert_eq!(
        (s, &v["found"], &v["certificate"]["status"]),
        (200, &Value::Bool(true), &"valid".into()),
        "{v}"
    );
    let c = &v["certificate"];
    assert_eq!(
        (c["issuer"].as_str(), c["importing_country"].as_str(), c["version"].as_i64()),
        (Some("KH"), Some("TH"), Some(1))
    );
    assert!(c["issue_date"].is_string() && c["authority"] == "Ministry of Commerce", "{c}");
    assert!(c.get("details").is_none(), "the minimal facts only: {c}");
    // The code as people type it: lower case, no dash.
    let typed = kept_code.replace('-', "").to_ascii_lowercase();
    let (_, v) = json(&node, &format!("/public/v1/verify?n={kept_no}&c={typed}")).await;
    assert_eq!(v["certificate"]["number"], kept_no.as_str(), "{v}");

    applications::revoke(&node.state, &node.bob, gone, "issued on a wrong invoice").await.expect("revoke");
    let new = replace(&node, &node.alice, old, 4).await;
    let (new_code, _) = code_of(&node, new).await;
    let (_, v) = json(&node, &format!("/public/v1/verify?number={gone_no}&code={gone_code}")).await;
    assert_eq!(v["certificate"]["status"], "revoked", "{v}");
    assert_eq!(v["certificate"]["on"], chrono::Utc::now().date_naive().to_string(), "{v}");
    let (_, v) = json(&node, &format!("/public/v1/verify?number={old_no}&code={old_code}")).await;
    assert_eq!(
        (&v["certificate"]["status"], &v["certificate"]["by_version"]),
        (&"superseded".into(), &2.into()),
        "{v}"
    );
    let (_, v) = json(&node, &format!("/public/v1/verify?number={old_no}&code={new_code}")).await;
    assert_eq!(
        (&v["certificate"]["status"], &v["certificate"]["version"]),
        (&"valid".into(), &2.into()),
        "{v}"
    );

    // The page says the same in words.
    let page = http(node.addr, "GET", &format!("/verify?n={gone_no}&c={gone_code}"), None, None)
        .await
        .expect("page");
    assert!(page.body.contains("Revoked on ") && page.body.contains("verdict-revoked"), "{}", page.body);

    // The signed list names both, and verifies with KH's CA alone.
    let r = http(node.addr, "GET", "/public/v1/status-lists/KH", None, None).await.expect("list");
    assert_eq!(r.status, 200);
    let ca = originlink_trust::keystore::load_certs(&node.dir().join("keys/ca.crt")).expect("CA");
    let verifier =
        originlink_trust::Verifier::new(originlink_trust::TrustStore::from_cas(ca).expect("store"));
    let list =
        StatusList::verified(r.body.as_bytes(), &verifier, chrono::Utc::now()).expect("KH's signed list");
    let listed: Vec<(String, u32, String)> =
        list.entries.iter().map(|e| (e.number.clone(), e.version, format!("{:?}", e.status))).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed.contains(&(gone_no.clone(), 1, "Revoked".into()))
            && listed.contains(&(old_no.clone(), 1, "Superseded".into())),
        "{listed:?}"
    );
    let (_, idx) = json(&node, "/public/v1/status-lists").await;
    assert_eq!(idx["lists"][0]["issuer"], "KH", "{idx}");
    assert!(idx["lists"][0]["sequence"].as_i64() >= Some(3), "one list at start, one per change: {idx}");
    // Without an exchange there is no trust list to publish.
    assert_eq!(json(&node, "/public/v1/trust-list").await.0, 404);
    // The admin sees the lists held, and whether each is in force.
    let erin = node.session("erin").await;
    let cookie = crate::support::session_cookie(&node.cookie, &erin.id);
    let page = http(node.addr, "GET", "/admin/trust-list", Some(&cookie), None).await.expect("page");
    assert!(
        page.body.contains("Certificate status lists") && page.body.contains("Cambodia (KH)"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(">Stale<"), "KH's own list is in force: {}", page.body);

    // 1,000 guesses: the right number with wrong codes, wrong numbers with the right code,
    // made-up pairs. Each gets the answer a wrong pair gets, or is throttled; none finds.
    let mut answered = Vec::new();
    let mut throttled = 0;
    for i in 0..1000u32 {
        let code = format!("{:05}-{:05}", i % 99_991, (i * 7919) % 99_991).replace(['I', 'L', 'O', 'U'], "0");
        let path = match i % 3 {
            0 => format!("/public/v1/verify?number={kept_no}&code={code}"),
            1 => format!("/public/v1/verify?number=KH-2026-{:06}&code={kept_code}", 900_000 + i),
            _ => format!("/public/v1/verify?number=X{i}&code=abc"),
        };
        let r = http(node.addr, "GET", &path, None, None).await.expect("guess");
        match r.status {
            200 => answered.push(r.body),
            429 => {
                throttled += 1;
                assert!(r.body.contains("TOO_MANY_REQUESTS"), "{}", r.body);
            }
            s => panic!("guess {i}: {s} {}", r.body),
        }
    }
    assert!(
        answered.iter().all(|b| b == r#"{"found":false}"#),
        "every answered guess learns the same nothing"
    );
    // 30 a minute per client: a minute boundary crossed during the run lets 30 more through.
    assert!(answered.len() <= 60 && throttled >= 940, "{} answered, {throttled} throttled", answered.len());
    // Throttled, even the right pair waits: being limited says nothing about the pair.
    let (s, _) = json(&node, &format!("/public/v1/verify?number={kept_no}&code={kept_code}")).await;
    assert_eq!(s, 429);
    let page = http(node.addr, "GET", &format!("/verify?n={kept_no}&c={kept_code}"), None, None)
        .await
        .expect("page");
    assert_eq!(page.status, 429);
    assert!(
        page.body.contains("Cannot be verified right now")
            && page.body.contains("does not mean the certificate is invalid"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_page_checks_a_number_and_an_uploaded_file_in_chromium() {
    let node = ConsoleNode::start().await;
    status::publish(&node.state).await.expect("the list a node publishes at start");
    let (_, id, number) = node.issued(&node.alice, "Angkor Rice", 7).await;
    let (code, signed) = code_of(&node, id).await;
    let b = Browser::start().await.expect("chromium");
    let mut pages = Pages::new();

    b.goto(&node.url("/verify")).await.unwrap();
    b.wait_for_text("Check a certificate of origin", WAIT).await.unwrap();
    pages.check(&b, "verify").await;
    b.fill("Certificate number", &number).await.unwrap();
    b.fill("Check code", &code).await.unwrap();
    b.click_button("Check").await.unwrap();
    b.wait_for_text("This certificate was issued by the authority below", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Valid") && text.contains(&number) && text.contains("Thailand"), "{text}");
    pages.check(&b, "verify-valid").await;

    // A wrong code: the same answer as a number never issued, nothing typed lost.
    b.goto(&node.url(&format!("/verify?n={number}&c=00000-00000"))).await.unwrap();
    b.wait_for_text("No certificate matches this number and check code", WAIT).await.unwrap();
    assert_eq!(crate::support::field_value(&b, "n").await, number);
    pages.check(&b, "verify-not-found").await;

    // The signed file: every check passes.
    let file = std::env::temp_dir().join(format!("originlink-verify-{}.json", std::process::id()));
    std::fs::write(&file, &signed).unwrap();
    b.goto(&node.url("/verify")).await.unwrap();
    b.upload("Signed certificate (UBL XML or edi3 JSON)", &file).await.unwrap();
    b.click_button("Check the file").await.unwrap();
    b.wait_for_text("The checks", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    for step in [
        "Signature: Passed",
        "Issuer trusted: Passed",
        "Signing key valid at signing: Passed",
        "Status current: Passed",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }
    assert!(text.contains(&code), "the file's check code is shown: {text}");
    pages.check(&b, "verify-file-valid").await;

    // Revoked: the same file is not valid any more, and says why.
    applications::revoke(&node.state, &node.bob, id, "issued on a wrong invoice").await.expect("revoke");
    b.goto(&node.url("/verify")).await.unwrap();
    b.upload("Signed certificate (UBL XML or edi3 JSON)", &file).await.unwrap();
    b.click_button("Check the file").await.unwrap();
    b.wait_for_text("Not valid", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(
        text.contains("REVOKED")
            && text.contains("Status current: Failed")
            && text.contains("issued on a wrong invoice"),
        "{text}"
    );
    pages.check(&b, "verify-file-revoked").await;

    // A changed file: the signature fails first, and the later checks are not made.
    let changed = String::from_utf8(signed.clone()).unwrap().replacen("Angkor Rice", "Angkor Ricf", 1);
    std::fs::write(&file, changed).unwrap();
    b.goto(&node.url("/verify")).await.unwrap();
    b.upload("Signed certificate (UBL XML or edi3 JSON)", &file).await.unwrap();
    b.click_button("Check the file").await.unwrap();
    b.wait_for_text("Not valid", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Signature: Failed") && text.contains("Status current: Not checked"), "{text}");

    // Not a certificate at all: said in words at the field.
    std::fs::write(&file, b"hello").unwrap();
    b.goto(&node.url("/verify")).await.unwrap();
    b.upload("Signed certificate (UBL XML or edi3 JSON)", &file).await.unwrap();
    b.click_button("Check the file").await.unwrap();
    b.wait_for_text("is not a signed certificate of origin this page can read", WAIT).await.unwrap();
    pages.check(&b, "verify-file-unreadable").await;
    let _ = std::fs::remove_file(&file);

    // A post without the page's token changes nothing and is refused.
    let r = http(node.addr, "POST", "/verify/file", None, Some(&[("document", "x")])).await.expect("post");
    assert!(r.status >= 400 && !r.body.contains("The checks"), "{} {}", r.status, r.body);
    b.close().await.unwrap();
    pages.finish();
}

/// Runs `cmd` with `args`, its standard output.
fn tool(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} runs (scripts/setup.sh installs it): {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The URL the QR code on page 1 of `pdf` carries: rendered by pdftoppm, read by zbarimg.
fn qr_url(pdf: &[u8], name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("originlink-print-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.pdf");
    std::fs::write(&file, pdf).unwrap();
    let stem = dir.join("page");
    tool(
        "pdftoppm",
        &[
            "-r",
            "150",
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            "-singlefile",
            file.to_str().unwrap(),
            stem.to_str().unwrap(),
        ],
    );
    let url = tool("zbarimg", &["--raw", "-q", dir.join("page.png").to_str().unwrap()]).trim().to_owned();
    let text = tool("pdftotext", &["-layout", file.to_str().unwrap(), "-"]);
    assert!(text.contains("ORIGINAL") || text.contains("COPY"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
    url
}

/// The answer line of the verification page the URL leads to.
async fn verdict_at(node: &ConsoleNode, url: &str) -> String {
    let path = url.strip_prefix(&node.base).unwrap_or_else(|| panic!("{url} is on {}", node.base));
    let r = http(node.addr, "GET", path, None, None).await.expect("page");
    assert_eq!(r.status, 200, "{}", r.body);
    let line = r.body.split(r#"<p class="verdict-line">"#).nth(1).and_then(|s| s.split("</p>").next());
    line.unwrap_or_else(|| panic!("no verdict in {}", r.body)).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_certificates_qr_code_leads_to_valid_then_revoked_or_superseded() {
    let node = ConsoleNode::start_with("KH", false).await;
    let (_, a, a_no) = node.issued(&node.alice, "Angkor Rice", 11).await;
    let (_, b, _) = node.issued(&node.alice, "Angkor Rice", 12).await;
    let started = node.session("alice").await;
    let cookie = crate::support::session_cookie(&node.cookie, &started.id);
    let pdf = |id: i64, copy: &'static str| {
        let cookie = cookie.clone();
        let addr = node.addr;
        async move {
            let r = http(addr, "GET", &format!("/certificates/{id}/pdf{copy}"), Some(&cookie), None)
                .await
                .expect("pdf");
            assert_eq!((r.status, r.header("content-type")), (200, Some("application/pdf")), "{}", r.body);
            r.raw
        }
    };
    let a_pdf = pdf(a, "").await;
    let b_pdf = pdf(b, "?copy=2").await;
    let (a_code, _) = code_of(&node, a).await;
    let url = qr_url(&a_pdf, "a");
    assert_eq!(url, format!("{}/verify?n={a_no}&c={a_code}", node.base));
    assert_eq!(verdict_at(&node, &url).await, "Valid");
    let b_url = qr_url(&b_pdf, "b");
    assert_eq!(verdict_at(&node, &b_url).await, "Valid");

    applications::revoke(&node.state, &node.bob, a, "issued on a wrong invoice").await.expect("revoke");
    let today = chrono::Utc::now().date_naive().format("%-d %B %Y").to_string();
    assert_eq!(verdict_at(&node, &url).await, format!("Revoked on {today}"));
    replace(&node, &node.alice, b, 13).await;
    assert_eq!(verdict_at(&node, &b_url).await, format!("Superseded by version 2 on {today}"));

    // Another company's certificate does not print; a bad copy number is explained.
    let carol = node.session("carol").await;
    let carol_cookie = crate::support::session_cookie(&node.cookie, &carol.id);
    let r = http(node.addr, "GET", &format!("/certificates/{a}/pdf"), Some(&carol_cookie), None)
        .await
        .expect("pdf");
    assert_eq!(r.status, 404);
    let r = http(node.addr, "GET", &format!("/certificates/{a}/pdf?copy=0"), Some(&cookie), None)
        .await
        .expect("pdf");
    assert_eq!(r.status, 400, "{}", r.body);
}
