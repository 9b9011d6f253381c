//! Drives the real Chromium against a tiny fixture server: forms, cookies, screenshots,
//! axe-core and several browsers at once.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use originlink_browser::{Browser, Config, Impact};

const WAIT: Duration = Duration::from_secs(10);

/// A page that axe-core should find nothing serious on.
const GOOD: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Good page</title></head>
<body>
<main>
<h1>Declaration</h1>
<form method="post" action="/submit">
  <p><label for="trader">Trader name</label>
     <input id="trader" name="trader" type="text" value="old value"></p>
  <p><label for="country">Country of origin (ISO code)</label>
     <select id="country" name="country">
       <option value="">Choose</option>
       <option value="FR">France</option>
       <option value="DE">Germany</option>
     </select></p>
  <p><label for="note">Note</label>
     <textarea id="note" name="note"></textarea></p>
  <p><input id="agree" name="agree" type="checkbox" value="yes">
     <label for="agree">I confirm the origin</label></p>
  <p><button type="submit">Send declaration</button>
     <input type="submit" name="draft" value="Save draft"></p>
</form>
<form method="post" action="/upload" enctype="multipart/form-data">
  <p><label for="document">Supporting document</label>
     <input id="document" name="document" type="file"></p>
  <p><button type="submit">Upload</button></p>
</form>
<p><a href="/cookies">Show cookies</a></p>
</main>
</body>
</html>
"#;

/// A page with an image without alt text, an input without a label and grey-on-white text.
const BAD: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Bad page</title></head>
<body>
<main>
<h1>Bad page</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=" width="40" height="40">
<form><input type="text" name="nolabel"></form>
<p style="color:#ccc; background:#fff">Hard to read</p>
</main>
</body>
</html>
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1>{body}<p><a href=\"/good\">Back</a></p></main></body></html>"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (form_decode(k) == name).then(|| form_decode(v))
    })
}

/// Answers one request on `stream`.
fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut length = 0;
    let mut cookie_header = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "cookie" => cookie_header = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let mut extra_headers = String::new();
    let (status, html) = match (method, path) {
        ("GET", "/good") => {
            extra_headers.push_str("Set-Cookie: fixture_session=s3cret; Path=/; HttpOnly\r\n");
            ("200 OK", GOOD.to_owned())
        }
        ("GET", "/bad") => ("200 OK", BAD.to_owned()),
        ("GET", "/cookies") => {
            ("200 OK", page("Cookies", &format!("<p>Cookie header: [{}]</p>", escape(&cookie_header))))
        }
        ("GET", "/later") => (
            "200 OK",
            page(
                "Later",
                "<p id=\"slot\"></p><script>setTimeout(() => \
                 document.getElementById('slot').textContent = 'Appeared late', 700)</script>",
            ),
        ),
        ("POST", "/submit") => {
            let field = |name| escape(&form_field(&body, name).unwrap_or_default());
            let clicked = if form_field(&body, "draft").is_some() { "draft" } else { "send" };
            (
                "200 OK",
                page(
                    "Received",
                    &format!(
                        "<p>Trader: [{}]</p><p>Country: [{}]</p><p>Note: [{}]</p>\
                         <p>Agree: [{}]</p><p>Clicked: [{clicked}]</p>",
                        field("trader"),
                        field("country"),
                        field("note"),
                        field("agree"),
                    ),
                ),
            )
        }
        ("POST", "/upload") => {
            // Not a multipart parser: enough to see the file's name and content arrived.
            let name =
                body.split("filename=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
            let has_content = body.contains("upload-content-7f3a");
            (
                "200 OK",
                page(
                    "Uploaded",
                    &format!("<p>File: [{}]</p><p>Content arrived: [{has_content}]</p>", escape(name)),
                ),
            )
        }
        _ => ("404 Not Found", page("Not found", "")),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         {extra_headers}Connection: close\r\n\r\n{html}",
        html.len()
    );
}

/// Starts the fixture server on a free loopback port; returns its base URL. It lives as
/// long as the test process.
fn fixture_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    base
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("originlink-browser-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn fills_a_form_and_reads_the_answer() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Good page");
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/good"));
    assert!(browser.page_source().await.unwrap().contains("id=\"trader\""));

    // `fill` clears what was there; the value is escaped on the way back.
    browser.fill("Trader name", "<b>Ada & \"Sons\"</b>").await.unwrap();
    // By the start of a label, and a select by its visible text.
    browser.fill("Country of origin", "Germany").await.unwrap();
    browser.fill_name("note", "line one").await.unwrap();
    browser.check("I confirm the origin").await.unwrap();
    browser.click_button("Send declaration").await.unwrap();
    browser.wait_for_text("Clicked:", WAIT).await.unwrap();

    let text = browser.text().await.unwrap();
    assert!(text.contains("Trader: [<b>Ada & \"Sons\"</b>]"), "page shows: {text}");
    assert!(text.contains("Country: [DE]"), "page shows: {text}");
    assert!(text.contains("Note: [line one]"), "page shows: {text}");
    assert!(text.contains("Agree: [yes]"), "page shows: {text}");
    assert!(text.contains("Clicked: [send]"), "page shows: {text}");
    assert!(!browser.page_source().await.unwrap().contains("<b>Ada"));
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/submit"));

    // A select by its option's value, an input[type=submit] by its value.
    browser.click_link("Back").await.unwrap();
    browser.wait_for_text("Declaration", WAIT).await.unwrap();
    browser.fill("Country of origin", "FR").await.unwrap();
    browser.click_button("Save draft").await.unwrap();
    browser.wait_for_text("Clicked:", WAIT).await.unwrap();
    let text = browser.text().await.unwrap();
    assert!(text.contains("Country: [FR]"), "page shows: {text}");
    assert!(text.contains("Trader: [old value]"), "page shows: {text}");
    assert!(text.contains("Agree: []"), "page shows: {text}");
    assert!(text.contains("Clicked: [draft]"), "page shows: {text}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn says_what_it_could_not_find() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();

    let err = format!("{:#}", browser.click_button("Nope").await.unwrap_err());
    assert!(err.contains("no button \"Nope\""), "{err}");
    assert!(err.contains("\"Send declaration\"") && err.contains("\"Save draft\""), "{err}");
    let err = format!("{:#}", browser.click_link("Nowhere").await.unwrap_err());
    assert!(err.contains("\"Show cookies\""), "{err}");
    let err = format!("{:#}", browser.fill("Surname", "x").await.unwrap_err());
    assert!(err.contains("no label \"Surname\"") && err.contains("\"Trader name\""), "{err}");
    let err = format!("{:#}", browser.fill("Country", "Atlantis").await.unwrap_err());
    assert!(err.contains("no option \"Atlantis\"") && err.contains("\"Germany\""), "{err}");
    let err = format!("{:#}", browser.fill("I confirm the origin", "x").await.unwrap_err());
    assert!(err.contains("use check()"), "{err}");
    let err = format!("{:#}", browser.check("Trader name").await.unwrap_err());
    assert!(err.contains("not a checkbox"), "{err}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn waits_for_text_and_reports_the_page_on_timeout() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/later")).await.unwrap();
    assert!(!browser.text().await.unwrap().contains("Appeared late"));
    browser.wait_for_text("Appeared late", WAIT).await.unwrap();

    let err = browser.wait_for_text("Never shown", Duration::from_millis(300)).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("\"Never shown\" did not appear"), "{err}");
    assert!(err.contains("Appeared late"), "the page text is in: {err}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn uploads_a_file() {
    let base = fixture_server();
    let dir = scratch_dir("upload");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("origin-proof.txt");
    std::fs::write(&file, "upload-content-7f3a\n").unwrap();

    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();
    browser.upload("Supporting document", &file).await.unwrap();
    browser.click_button("Upload").await.unwrap();
    browser.wait_for_text("File:", WAIT).await.unwrap();
    let text = browser.text().await.unwrap();
    assert!(text.contains("File: [origin-proof.txt]"), "page shows: {text}");
    assert!(text.contains("Content arrived: [true]"), "page shows: {text}");
    browser.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn axe_passes_the_good_page_and_names_what_is_wrong_with_the_bad_one() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();

    browser.goto(&format!("{base}/good")).await.unwrap();
    browser.assert_accessible("the good page").await.unwrap();

    browser.goto(&format!("{base}/bad")).await.unwrap();
    let violations = browser.axe().await.unwrap();
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    for id in ["image-alt", "label", "color-contrast"] {
        assert!(ids.contains(&id), "{id} missing from {violations:#?}");
    }
    let image_alt = violations.iter().find(|v| v.id == "image-alt").unwrap();
    assert_eq!(image_alt.impact, Some(Impact::Critical));
    assert_eq!(image_alt.targets, vec!["img".to_owned()]);
    assert!(!image_alt.help.is_empty());

    let err = format!("{:#}", browser.assert_accessible("the bad page").await.unwrap_err());
    assert!(err.contains("the bad page"), "{err}");
    assert!(err.contains("image-alt (critical)"), "{err}");
    assert!(err.contains("label (critical)"), "{err}");
    assert!(err.contains("color-contrast (serious)"), "{err}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn screenshot_writes_a_png() {
    let base = fixture_server();
    let dir = scratch_dir("shot");
    let path = dir.join("nested/folders/good.png");
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();
    browser.screenshot(&path).await.unwrap();
    let png = std::fs::read(&path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 1000, "a {} byte screenshot is too small", png.len());
    browser.close().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn cookies_can_be_read_added_and_deleted() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();
    let session = browser.cookie("fixture_session").await.unwrap().unwrap();
    assert_eq!(session.value, "s3cret");
    assert!(session.http_only);
    assert_eq!(session.path.as_deref(), Some("/"));

    browser.add_cookie("carried", "from-elsewhere").await.unwrap();
    browser.goto(&format!("{base}/cookies")).await.unwrap();
    let text = browser.text().await.unwrap();
    assert!(text.contains("carried=from-elsewhere"), "page shows: {text}");
    assert!(text.contains("fixture_session=s3cret"), "page shows: {text}");

    browser.delete_cookie("carried").await.unwrap();
    browser.goto(&format!("{base}/cookies")).await.unwrap();
    let text = browser.text().await.unwrap();
    assert!(!text.contains("carried"), "page shows: {text}");
    assert!(browser.cookie("carried").await.unwrap().is_none());
    browser.close().await.unwrap();
}

#[tokio::test]
async fn two_browsers_run_at_once_without_sharing_anything() {
    let base = fixture_server();
    let (a, b) = tokio::join!(Browser::start(), Browser::start());
    let (a, b) = (a.unwrap(), b.unwrap());
    let (good, bad) = (format!("{base}/good"), format!("{base}/bad"));
    let (ra, rb) = tokio::join!(a.goto(&good), b.goto(&bad));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.title().await.unwrap(), "Good page");
    assert_eq!(b.title().await.unwrap(), "Bad page");
    // Separate profiles: the cookie /good set in `a` is not in `b`.
    b.goto(&format!("{base}/cookies")).await.unwrap();
    assert!(b.text().await.unwrap().contains("Cookie header: []"));
    a.goto(&format!("{base}/cookies")).await.unwrap();
    assert!(a.text().await.unwrap().contains("fixture_session=s3cret"));
    // Dropping one leaves the other working.
    drop(b);
    a.goto(&format!("{base}/good")).await.unwrap();
    assert_eq!(a.title().await.unwrap(), "Good page");
    a.close().await.unwrap();
}

#[tokio::test]
async fn dropping_a_browser_quits_chromium_and_removes_its_profile() {
    let base = fixture_server();
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/good")).await.unwrap();
    let pid = browser.chromium_pid().expect("chromedriver reports Chromium's pid");
    let profile = browser.profile_dir().to_path_buf();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists() && profile.is_dir());
    // Dropped without close(), as a failing test would.
    drop(browser);
    assert!(!profile.exists(), "{} left behind", profile.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proc.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "Chromium {pid} still runs 10 s after its Browser was dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_missing_chromedriver_says_to_run_setup() {
    let config = Config { chromedriver: PathBuf::from("/nonexistent/chromedriver"), ..Config::from_env() };
    let err = Browser::start_with(&config).await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("run scripts/setup.sh"), "{err}");
    assert!(err.contains("/nonexistent/chromedriver"), "{err}");

    let config = Config { chromium: PathBuf::from("/nonexistent/chromium"), ..Config::from_env() };
    let err = format!("{:#}", Browser::start_with(&config).await.unwrap_err());
    assert!(err.contains("run scripts/setup.sh"), "{err}");
}
