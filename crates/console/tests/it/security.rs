//! What the console promises about security: a post without the session's CSRF token changes
//! nothing; a session of one node means nothing to another; an exporter reaching another
//! company's records gets the page for records that do not exist; repeated wrong passwords
//! make the next try wait; text people typed never becomes markup.

use originlink_browser::Browser;
use originlink_node::app::{applications, users};
use serde_json::json;

use crate::support::{
    ConsoleNode, PASSWORD, Pages, WAIT, click_and_wait, document, field_value, http, path, session_cookie,
    sign_in, submit_sign_in,
};

/// A forged post: where, with which `Cookie` header, which fields.
type Post<'a> = (String, &'a str, Vec<(&'a str, &'a str)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_post_without_the_csrf_token_is_refused() {
    let node = ConsoleNode::start().await;
    let draft = node.apply(&node.alice, document("Angkor Rice", 1), None).await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    // In the browser: the form's token removed, then a wrong one.
    sign_in(&b, &node, "alice", PASSWORD).await.unwrap();
    b.goto(&node.url(&format!("/applications/{draft}"))).await.unwrap();
    b.wait_for_text("Submit for approval", WAIT).await.unwrap();
    let removed = b
        .execute(
            "const i = document.querySelectorAll('form[action$=\"/submit\"] input[name=csrf]'); i.forEach(e => e.remove()); return i.length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(removed, json!(1));
    click_and_wait(&b, "Submit for approval", "This form has expired").await.unwrap();
    assert!(b.text().await.unwrap().contains("Nothing was changed."));
    pages.check(&b, "csrf-refused").await;
    assert_eq!(node.status(draft).await, "draft");
    b.goto(&node.url(&format!("/applications/{draft}"))).await.unwrap();
    b.wait_for_text("Submit for approval", WAIT).await.unwrap();
    b.execute(
        "document.querySelector('form[action$=\"/submit\"] input[name=csrf]').value = 'f'.repeat(64);",
        vec![],
    )
    .await
    .unwrap();
    click_and_wait(&b, "Submit for approval", "This form has expired").await.unwrap();
    assert_eq!(node.status(draft).await, "draft");

    // Raw posts carrying a valid session cookie but no token, or another session's token.
    let alice = node.session("alice").await;
    let other = node.session("alice").await;
    let erin = node.session(&node.erin.name).await;
    let cookie = session_cookie(&node.cookie, &alice.id);
    let admin_cookie = session_cookie(&node.cookie, &erin.id);
    let before = applications::list(
        &node.state,
        &node.alice,
        &originlink_node::app::page(&node.alice, Some(100), None).unwrap(),
        &applications::ApplicationQuery::default(),
    )
    .await
    .unwrap()
    .len();
    let posts: Vec<Post> = vec![
        (format!("/applications/{draft}/submit"), cookie.as_str(), vec![]),
        (format!("/applications/{draft}/submit"), cookie.as_str(), vec![("csrf", "")]),
        (format!("/applications/{draft}/submit"), cookie.as_str(), vec![("csrf", other.csrf.as_str())]),
        (format!("/applications/{draft}/withdraw"), cookie.as_str(), vec![]),
        ("/applications/new".into(), cookie.as_str(), vec![("action", "save"), ("agreement", "ATIGA")]),
        (
            format!("/admin/users/{}/disable", node.alice.id),
            admin_cookie.as_str(),
            vec![("csrf", alice.csrf.as_str())],
        ),
        (
            "/admin/users".into(),
            admin_cookie.as_str(),
            vec![("name", "mallory"), ("role", "admin"), ("password", "0123456789ab")],
        ),
        ("/sign-out".into(), cookie.as_str(), vec![]),
    ];
    for (to, cookie, form) in &posts {
        let r = http(node.addr, "POST", to, Some(cookie), Some(form)).await.unwrap();
        assert_eq!(r.status, 403, "POST {to} {form:?}: {}", r.body);
        assert!(r.body.contains("This form has expired"), "POST {to}: {}", r.body);
    }
    assert_eq!(node.status(draft).await, "draft");
    let after = applications::list(
        &node.state,
        &node.alice,
        &originlink_node::app::page(&node.alice, Some(100), None).unwrap(),
        &applications::ApplicationQuery::default(),
    )
    .await
    .unwrap()
    .len();
    assert_eq!(after, before, "no application was created");
    let listed = users::list(node.state.store.as_ref()).await.unwrap();
    assert!(!listed.iter().any(|u| u.name == "mallory"), "no user was added");
    assert!(listed.iter().any(|u| u.name == "alice" && !u.disabled), "alice is not disabled");
    // The session survived the forged sign-out.
    let r = http(node.addr, "GET", "/applications", Some(&cookie), None).await.unwrap();
    assert_eq!(r.status, 200);
    // A sign-in without the double-submitted token is refused too.
    let r = http(node.addr, "POST", "/sign-in", None, Some(&[("name", "alice"), ("password", PASSWORD)]))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.set_cookies().iter().all(|c| !c.starts_with(&format!("{}=", node.cookie))), "{:?}", r.headers);

    // With the session's own token the same post works (so the refusals above mean something).
    let r = http(
        node.addr,
        "POST",
        &format!("/applications/{draft}/submit"),
        Some(&cookie),
        Some(&[("csrf", &alice.csrf)]),
    )
    .await
    .unwrap();
    assert_eq!((r.status, r.header("location")), (303, Some(format!("/applications/{draft}").as_str())));
    assert_eq!(node.status(draft).await, "submitted");

    b.close().await.unwrap();
    pages.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_from_another_node_does_nothing() {
    let (one, two, th) = tokio::join!(
        ConsoleNode::start(),
        ConsoleNode::start_with("KH", false),
        ConsoleNode::start_with("TH", false)
    );
    let b = Browser::start().await.expect("chromium starts");
    sign_in(&b, &one, "alice", PASSWORD).await.unwrap();
    let session = b.cookie(&one.cookie).await.unwrap().expect("node 1's session cookie").value;
    let csrf = b.execute("return document.querySelector('input[name=csrf]').value;", vec![]).await.unwrap();
    let csrf = csrf.as_str().unwrap().to_owned();

    // Both nodes are KH on 127.0.0.1: the browser sends node 1's cookie to node 2 as it is.
    assert_eq!(one.cookie, two.cookie);
    b.goto(&two.url("/applications")).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/sign-in?next=/applications", "node 2 does not know node 1's session");
    assert!(!b.text().await.unwrap().contains("Sign out"));
    b.goto(&two.url("/")).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/sign-in");
    // Node 1 still knows it.
    b.goto(&one.url("/applications")).await.unwrap();
    b.wait_for_text("alice · exporter", WAIT).await.unwrap();

    // The raw requests: node 1 answers, node 2 and the TH node (under their own cookie names)
    // send to sign in, and a post with node 1's token changes nothing on node 2.
    let draft = two.apply(&two.alice, document("Angkor Rice", 1), None).await;
    let r = http(one.addr, "GET", "/applications", Some(&session_cookie(&one.cookie, &session)), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    for (node, path) in
        [(&two, "/applications"), (&two, "/admin/users"), (&th, "/applications"), (&th, "/review")]
    {
        let r =
            http(node.addr, "GET", path, Some(&session_cookie(&node.cookie, &session)), None).await.unwrap();
        assert_eq!(r.status, 303, "{} {path}: {}", node.country, r.body);
        assert!(r.header("location").is_some_and(|l| l.starts_with("/sign-in")), "{:?}", r.headers);
    }
    assert_eq!(th.cookie, "__Host-originlink-TH");
    let r = http(
        two.addr,
        "POST",
        &format!("/applications/{draft}/submit"),
        Some(&session_cookie(&two.cookie, &session)),
        Some(&[("csrf", &csrf)]),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 303);
    assert!(r.header("location").is_some_and(|l| l.starts_with("/sign-in")), "{:?}", r.headers);
    assert_eq!(two.status(draft).await, "draft");

    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_reaching_another_companys_pages_gets_404() {
    let node = ConsoleNode::start().await;
    let (app, cert, number) = node.issued(&node.alice, "Angkor Rice", 1).await;
    let draft = node.apply(&node.alice, document("Angkor Rice", 2), None).await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    sign_in(&b, &node, "carol", PASSWORD).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("No applications yet") && !text.contains(&format!("Application {app}")), "{text}");
    let alices = [
        format!("/applications/{app}"),
        format!("/applications/{draft}"),
        format!("/applications/{draft}/edit"),
        format!("/applications/{app}/document"),
        format!("/certificates/{cert}"),
        format!("/certificates/{cert}/document"),
    ];
    for (i, to) in alices.iter().enumerate() {
        b.goto(&node.url(to)).await.unwrap();
        b.wait_for_text("Page not found", WAIT).await.unwrap();
        let text = b.text().await.unwrap();
        assert!(text.contains("There is nothing here, or it is not yours to see."), "{to}: {text}");
        assert!(!text.contains("Angkor Rice") && !text.contains(&number), "{to} tells nothing: {text}");
        if i == 0 {
            pages.check(&b, "not-found").await;
        }
    }
    b.click_link("Certificates").await.unwrap();
    b.wait_for_text("No certificates yet", WAIT).await.unwrap();
    assert!(!b.text().await.unwrap().contains(&number));

    // The status codes, and the same page as for records that do not exist.
    let carol = node.session("carol").await;
    let alice = node.session("alice").await;
    let carol_cookie = session_cookie(&node.cookie, &carol.id);
    let alice_cookie = session_cookie(&node.cookie, &alice.id);
    for to in &alices {
        let mine = http(node.addr, "GET", to, Some(&alice_cookie), None).await.unwrap();
        assert_eq!(mine.status, 200, "alice GET {to}");
        let r = http(node.addr, "GET", to, Some(&carol_cookie), None).await.unwrap();
        assert_eq!(r.status, 404, "carol GET {to}: {}", r.body);
        let absent = to
            .replace(&format!("/{app}"), "/999999")
            .replace(&format!("/{draft}"), "/999999")
            .replace(&format!("/{cert}"), "/999999");
        let none = http(node.addr, "GET", &absent, Some(&carol_cookie), None).await.unwrap();
        assert_eq!(
            (none.status, none.body.as_str()),
            (404, r.body.as_str()),
            "{to} and {absent} look the same"
        );
    }
    // Nor can she act on them.
    for to in [
        format!("/applications/{draft}/submit"),
        format!("/applications/{draft}/withdraw"),
        format!("/applications/{app}/copy"),
        format!("/certificates/{cert}/replace"),
    ] {
        let r =
            http(node.addr, "POST", &to, Some(&carol_cookie), Some(&[("csrf", &carol.csrf)])).await.unwrap();
        assert_eq!(r.status, 404, "carol POST {to}: {}", r.body);
        assert!(
            r.body.contains("Page not found") && !r.body.contains("Angkor Rice"),
            "carol POST {to}: {}",
            r.body
        );
    }
    // A complete form posted onto alice's draft's edit address.
    let edit: Vec<(&str, &str)> = vec![
        ("csrf", &carol.csrf),
        ("action", "save"),
        ("agreement", "ATIGA"),
        ("importing_country", "TH"),
        ("exporter_name", "Bayon Foods"),
        ("consignee_name", "Siam Foods"),
        ("departure_date", "2026-03-01"),
        ("loading_port", "Sihanoukville"),
        ("discharge_port", "Laem Chabang"),
        ("declaration_signatory", "Dara"),
        ("item-1-description", "Rice"),
        ("item-1-hs", "1006.30"),
        ("item-1-quantity", "1000"),
        ("item-1-unit", "KGM"),
        ("item-1-fob", "980.00"),
        ("item-1-criterion", "WO"),
        ("item-1-invoice_number", "INV-1"),
        ("item-1-invoice_date", "2026-02-25"),
    ];
    let to = format!("/applications/{draft}/edit");
    let r = http(node.addr, "POST", &to, Some(&carol_cookie), Some(&edit)).await.unwrap();
    assert_eq!(r.status, 404, "carol edits alice's draft: {}", r.body);
    let own = http(node.addr, "POST", "/applications/new", Some(&carol_cookie), Some(&edit)).await.unwrap();
    assert_eq!(
        own.status, 303,
        "the same form makes carol's own draft (so the 404 means something): {}",
        own.body
    );
    let doc = applications::get(&node.state, &node.alice, draft).await.unwrap().document;
    assert!(!String::from_utf8_lossy(&doc).contains("Bayon Foods"), "alice's draft unchanged");
    assert_eq!(node.status(draft).await, "draft");
    let mine = applications::list(
        &node.state,
        &node.carol,
        &originlink_node::app::page(&node.carol, Some(100), None).unwrap(),
        &applications::ApplicationQuery::default(),
    )
    .await
    .unwrap();
    assert_eq!(mine.len(), 1, "carol's one own draft, nothing else: {mine:?}");

    b.close().await.unwrap();
    pages.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_slow_the_next_try() {
    let node = ConsoleNode::start().await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    b.goto(&node.url("/sign-in")).await.unwrap();
    for n in 1..=5 {
        submit_sign_in(&b, "alice", &format!("wrong password {n}")).await.unwrap();
        b.wait_for_text("The user name or the password is not right.", WAIT).await.unwrap();
        assert_eq!(field_value(&b, "name").await, "alice", "the name is kept");
        assert_eq!(field_value(&b, "password").await, "", "the password is not");
        if n == 1 {
            pages.check(&b, "sign-in-failed").await;
        }
        // The next page must be a new one: wait for this one to go.
        b.execute("document.querySelector('.error-summary').remove();", vec![]).await.unwrap();
    }
    submit_sign_in(&b, "alice", PASSWORD).await.unwrap();
    b.wait_for_text("Too many wrong passwords.", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Wait") && text.contains("seconds, then try again."), "{text}");
    assert!(!text.contains("Sign out"), "{text}");
    assert!(path(&b).await.starts_with("/sign-in"));
    assert!(b.cookie(&node.cookie).await.unwrap().is_none(), "no session");
    pages.check(&b, "sign-in-throttled").await;

    // The status, through the form's own token: 429; another person is not held up.
    let page = http(node.addr, "GET", "/sign-in", None, None).await.unwrap();
    let token =
        page.body.split("name=\"login_token\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    let login = format!("{}-login={token}", node.cookie);
    let r = http(
        node.addr,
        "POST",
        "/sign-in",
        Some(&login),
        Some(&[("login_token", token), ("name", "alice"), ("password", PASSWORD), ("next", "/")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Wait"), "{}", r.body);
    let r = http(
        node.addr,
        "POST",
        "/sign-in",
        Some(&login),
        Some(&[("login_token", token), ("name", "carol"), ("password", PASSWORD), ("next", "/")]),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 303, "carol signs in: {}", r.body);
    assert!(r.set_cookies().iter().any(|c| c.starts_with(&format!("{}=", node.cookie))), "{:?}", r.headers);

    b.close().await.unwrap();
    pages.finish();
}

const PAYLOAD: &str = r#"<script>alert(1)</script>"'><img src=x onerror=alert(2)>"#;

/// Fails when the page holds markup made from [`PAYLOAD`]: in its source, or as elements.
async fn assert_inert(b: &Browser, page: &str) {
    let source = b.page_source().await.unwrap();
    assert!(source.contains("&lt;script&gt;alert(1)"), "{page} shows what was typed, escaped:\n{source}");
    for raw in ["<script>alert(1)", "<img src=x", "<img src=\"x\""] {
        assert!(!source.contains(raw), "{page} holds {raw:?} unescaped:\n{source}");
    }
    // No alert is open (WebDriver would refuse the script), and nothing was made of it.
    let made = b
        .execute(
            "return [document.scripts.length, document.images.length, document.querySelectorAll('[onerror]').length];",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{page}: {e:#}"));
    assert_eq!(made, json!([0, 0, 0]), "{page}: scripts, images, onerror attributes");
}

/// Puts `value` in every text field, search field and text area of the page's forms but the
/// sign-out one; answers how many.
async fn fill_every_text_field(b: &Browser, value: &str) -> u64 {
    b.execute(
        "const f = [...document.querySelectorAll('main input[type=text], main input[type=search], main textarea')];
         f.forEach(e => { e.value = arguments[0]; }); return f.length;",
        vec![json!(value)],
    )
    .await
    .unwrap()
    .as_u64()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_reflects_unescaped_input() {
    let node = ConsoleNode::start().await;
    let b = Browser::start().await.expect("chromium starts");

    // The application form, every text field the payload: refused, everything echoed back.
    sign_in(&b, &node, "alice", PASSWORD).await.unwrap();
    b.goto(&node.url("/applications/new")).await.unwrap();
    b.wait_for_text("Agreement and destination", WAIT).await.unwrap();
    let n = fill_every_text_field(&b, PAYLOAD).await;
    assert!(n > 60, "{n} fields");
    click_and_wait(&b, "Save as draft", "There is a problem").await.unwrap();
    assert_inert(&b, "the refused form").await;
    assert_eq!(field_value(&b, "consignee_name").await, PAYLOAD);
    assert_eq!(field_value(&b, "material-6-name").await, PAYLOAD);
    assert!(
        b.text().await.unwrap().contains(&format!("{PAYLOAD} is not an HS 2022 subheading")),
        "the error quotes it"
    );
    click_and_wait(&b, "Check origin", "There is a problem").await.unwrap();
    assert_inert(&b, "the form checked").await;
    click_and_wait(&b, "Look up", "No subheading matches").await.unwrap();
    assert_inert(&b, "the HS look-up").await;
    assert_eq!(field_value(&b, "hs_query").await, PAYLOAD);

    // A valid application whose free text is the payload: saved, shown, submitted.
    b.goto(&node.url("/applications/new")).await.unwrap();
    b.wait_for_text("Agreement and destination", WAIT).await.unwrap();
    for id in [
        "reference",
        "exporter_name",
        "exporter_id",
        "exporter_street",
        "exporter_city",
        "consignee_name",
        "consignee_id",
        "consignee_street",
        "consignee_city",
        "vessel",
        "loading_port",
        "discharge_port",
        "item-1-description",
        "item-1-marks",
        "item-1-invoice_number",
        "material-1-name",
        "declaration_place",
        "declaration_signatory",
        "remarks",
    ] {
        b.fill_name(id, PAYLOAD).await.unwrap();
    }
    b.fill("Importing country", "Thailand").await.unwrap();
    for (id, v) in [
        ("item-1-hs", "9401.61"),
        ("item-1-quantity", "120"),
        ("item-1-fob", "4800.00"),
        ("material-1-hs", "5407.61"),
        ("material-1-value", "600.00"),
    ] {
        b.fill_name(id, v).await.unwrap();
    }
    click_and_wait(&b, "Save as draft", "saved as a draft").await.unwrap();
    assert_inert(&b, "the application").await;
    assert!(b.text().await.unwrap().contains(PAYLOAD), "shown as text");
    click_and_wait(&b, "Submit for approval", "submitted").await.unwrap();
    let id: i64 = path(&b).await.rsplit('/').next().unwrap().parse().unwrap();
    b.goto(&node.url("/applications?q=%3Cscript%3Ealert(1)")).await.unwrap();
    b.wait_for_text("Applications", WAIT).await.unwrap();
    assert_inert(&b, "the applications filtered").await;

    // The officer sees it, with the warning quoting the exporter's name.
    click_and_wait(&b, "Sign out", "User name").await.unwrap();
    sign_in(&b, &node, "bob", PASSWORD).await.unwrap();
    b.goto(&node.url(&format!("/applications/{id}"))).await.unwrap();
    b.wait_for_text("The document's exporter is not the applicant's company", WAIT).await.unwrap();
    assert_inert(&b, "the application, to the officer").await;
    b.goto(&node.url(&format!("/review?q={}", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"))).await.unwrap();
    b.wait_for_text("Review queue", WAIT).await.unwrap();
    assert_inert(&b, "the queue filtered").await;
    click_and_wait(&b, "Sign out", "User name").await.unwrap();

    // The add-user form: name and company.
    sign_in(&b, &node, "erin", PASSWORD).await.unwrap();
    b.fill("User name", PAYLOAD).await.unwrap();
    b.fill("Role", "exporter").await.unwrap();
    b.fill("Company", PAYLOAD).await.unwrap();
    b.fill("Password", "a good long password").await.unwrap();
    click_and_wait(&b, "Add user", "added").await.unwrap();
    assert_inert(&b, "the users, with the flash").await;
    assert!(b.text().await.unwrap().contains(&format!("User {PAYLOAD} added.")));
    b.click_link(PAYLOAD).await.unwrap();
    b.wait_for_text("Disable this user", WAIT).await.unwrap();
    assert_inert(&b, "the user page").await;
    // Refused with the payload as name again (it exists): echoed into the form.
    b.click_link("Back to users").await.unwrap();
    b.wait_for_text("Add a user", WAIT).await.unwrap();
    b.fill("User name", PAYLOAD).await.unwrap();
    b.fill("Role", "exporter").await.unwrap();
    b.fill("Company", PAYLOAD).await.unwrap();
    click_and_wait(&b, "Add user", "There is a problem").await.unwrap();
    assert_inert(&b, "the add-user form refused").await;
    assert_eq!(field_value(&b, "company").await, PAYLOAD);
    click_and_wait(&b, "Sign out", "User name").await.unwrap();

    // The sign-in name: echoed after a wrong password, then shown once signed in.
    submit_sign_in(&b, PAYLOAD, "not the password").await.unwrap();
    b.wait_for_text("The user name or the password is not right.", WAIT).await.unwrap();
    assert_inert(&b, "the sign-in page").await;
    assert_eq!(field_value(&b, "name").await, PAYLOAD);
    submit_sign_in(&b, PAYLOAD, "a good long password").await.unwrap();
    b.wait_for_text("Sign out", WAIT).await.unwrap();
    assert_inert(&b, "the pages of the user so named").await;
    assert!(b.text().await.unwrap().contains(&format!("{PAYLOAD} · exporter")));

    b.close().await.unwrap();
}

/// A page served on another port (another origin): "Another site".
fn another_site() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let body = "<!doctype html><title>Elsewhere</title><p>Another site</p>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
        }
    });
    addr.to_string()
}

/// The sign-in form's token and cookie, from a fresh sign-in page.
async fn login_token(node: &ConsoleNode) -> (String, String) {
    let page = http(node.addr, "GET", "/sign-in", None, None).await.unwrap();
    let token =
        page.body.split("name=\"login_token\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap();
    (token.to_owned(), format!("{}-login={token}", node.cookie))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_leads_only_to_a_page_of_the_console() {
    let node = ConsoleNode::start().await;
    // `next` as a link to the sign-in page may carry it: each must end on the console.
    let mut wrong = Vec::new();
    for next in [
        "https://example.invalid/x",
        "//example.invalid/x",
        "/\\example.invalid/x",
        "/\t/example.invalid/x",
        "/\n/example.invalid/x",
        "/applications\r\nX-Injected: 1",
    ] {
        let (token, login) = login_token(&node).await;
        let form =
            [("login_token", token.as_str()), ("name", "alice"), ("password", PASSWORD), ("next", next)];
        let r = http(node.addr, "POST", "/sign-in", Some(&login), Some(&form)).await.unwrap();
        let location = r.header("location").unwrap_or_default().to_owned();
        let on_console = location.starts_with('/')
            && !location[1..].starts_with(['/', '\\'])
            && !location.chars().any(|c| c.is_control());
        if r.status != 303 || !on_console {
            wrong.push(format!("next={next:?}: {} to {location:?} {:?}", r.status, r.body));
        }
    }

    // The same in Chromium: a crafted sign-in link must not take the person away (to a
    // page served here, so that the browser has somewhere to land).
    let elsewhere = another_site();
    let b = Browser::start().await.expect("chromium starts");
    b.goto(&node.url(&format!("/sign-in?next=/%5C{elsewhere}/phish"))).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    submit_sign_in(&b, "alice", PASSWORD).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = b.text().await.unwrap_or_default();
        if text.contains("Sign out") || text.contains("Another site") || std::time::Instant::now() >= deadline
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = b.current_url().await.unwrap_or_default();
    let text = b.text().await.unwrap_or_default();
    if !url.starts_with(&node.base) || !text.contains("Sign out") {
        let session = b.cookie(&node.cookie).await.ok().flatten().is_some();
        wrong.push(format!(
            "Chromium, signed in from /sign-in?next=/%5C{elsewhere}/phish, is at {url} (session cookie set: \
             {session}; shows another site: {})",
            text.contains("Another site")
        ));
    }
    b.close().await.unwrap();
    assert!(
        wrong.is_empty(),
        "signing in leads away from the console (a browser reads `/\\host` and `/<tab>/host` as `//host`):\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_sent_after_the_session_ended_leads_back_to_a_page() {
    let node = ConsoleNode::start().await;
    let draft = node.apply(&node.alice, document("Angkor Rice", 1), None).await;
    let b = Browser::start().await.expect("chromium starts");
    sign_in(&b, &node, "alice", PASSWORD).await.unwrap();
    b.goto(&node.url(&format!("/applications/{draft}"))).await.unwrap();
    b.wait_for_text("Submit for approval", WAIT).await.unwrap();
    // An administrator resets her password (the same one): her sessions end.
    let ctx = originlink_store::Ctx::new("test", chrono::Utc::now());
    originlink_node::app::sessions::set_password(node.state.store.as_ref(), &ctx, node.alice.id, PASSWORD)
        .await
        .unwrap();
    click_and_wait(&b, "Submit for approval", "User name").await.unwrap();
    assert!(path(&b).await.starts_with("/sign-in?next="), "{}", path(&b).await);
    assert_eq!(node.status(draft).await, "draft", "nothing changed without a session");
    submit_sign_in(&b, "alice", PASSWORD).await.unwrap();
    let shown = b.wait_for_text("Sign out", std::time::Duration::from_secs(5)).await;
    let at = path(&b).await;
    let again = node.session("alice").await;
    let r = http(node.addr, "GET", &at, Some(&session_cookie(&node.cookie, &again.id)), None).await.unwrap();
    assert!(
        shown.is_ok(),
        "signed in again, alice lands on GET {at}: {} {:?}, a page without the console: {}",
        r.status,
        r.body,
        b.text().await.unwrap_or_default()
    );
    assert_eq!(node.status(draft).await, "draft", "signing in does not send the form");
    b.close().await.unwrap();
}
