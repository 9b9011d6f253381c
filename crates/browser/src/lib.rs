//! Test support for the web console's browser tests: drives Debian's real Chromium
//! (headless) through chromedriver, speaking W3C WebDriver over plain http on loopback.
//!
//! A test starts a [`Browser`], visits pages, fills forms the way a person would (fields
//! found by their `<label>`, buttons and links by their text), reads what the page shows,
//! moves cookies between servers, takes screenshots and checks every page with axe-core
//! ([`Browser::assert_accessible`]).
//!
//! `scripts/setup.sh` installs what this needs: `/usr/bin/chromium`, `/usr/bin/chromedriver`
//! (override with the `CHROMIUM` and `CHROMEDRIVER` environment variables) and axe-core in
//! `tools/axe/node_modules`. When one is missing, [`Browser::start`] and [`Browser::axe`]
//! fail saying so: the tests fail, they never skip.
//!
//! The WebDriver client is a small one written over hyper (already in the workspace): the
//! few commands used here are plain JSON over HTTP/1.1, which keeps this crate's build
//! cheap.

mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::wire::Wire;

/// The flags Chromium runs with (a fresh `--user-data-dir` is added to them).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// How long chromedriver has to start listening and answer `/status` as ready.
const DRIVER_START: Duration = Duration::from_secs(20);
/// Script and page-load timeouts given to the session (axe on a big page takes a while on
/// a busy two-core machine).
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound of any one WebDriver command, so that a hung browser fails a test instead
/// of hanging it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// Lines of chromedriver's output kept for error messages.
const LOG_LINES: usize = 200;

/// The key under which W3C WebDriver serialises an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where to find the browser and its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The Chromium binary (`CHROMIUM`, default `/usr/bin/chromium`).
    pub chromium: PathBuf,
    /// The chromedriver binary (`CHROMEDRIVER`, default `/usr/bin/chromedriver`).
    pub chromedriver: PathBuf,
}

impl Config {
    /// The paths from the `CHROMIUM` and `CHROMEDRIVER` environment variables, or Debian's
    /// `/usr/bin/chromium` and `/usr/bin/chromedriver`.
    pub fn from_env() -> Self {
        let path = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self {
            chromium: path("CHROMIUM", "/usr/bin/chromium"),
            chromedriver: path("CHROMEDRIVER", "/usr/bin/chromedriver"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::from_env()
    }
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The domain it is sent to.
    pub domain: Option<String>,
    /// The path it is sent under.
    pub path: Option<String>,
    /// Sent over https only.
    pub secure: bool,
    /// Hidden from the page's scripts.
    pub http_only: bool,
    /// `Strict`, `Lax` or `None`, when the browser reports it.
    pub same_site: Option<String>,
    /// When it expires (seconds since the Unix epoch); `None` for a session cookie.
    pub expiry: Option<u64>,
}

/// How bad axe-core judges a violation, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impact {
    /// `minor`.
    Minor,
    /// `moderate`.
    Moderate,
    /// `serious`.
    Serious,
    /// `critical`.
    Critical,
}

impl Impact {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "minor" => Some(Self::Minor),
            "moderate" => Some(Self::Moderate),
            "serious" => Some(Self::Serious),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Minor => "minor",
            Self::Moderate => "moderate",
            Self::Serious => "serious",
            Self::Critical => "critical",
        })
    }
}

/// One rule that axe-core found broken on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's id, e.g. `image-alt`, `label`, `color-contrast`.
    pub id: String,
    /// How bad it is; `None` when axe gave no impact (then [`Browser::assert_accessible`]
    /// counts it as failing, to be safe).
    pub impact: Option<Impact>,
    /// One line saying what the rule wants.
    pub help: String,
    /// axe-core's page about the rule.
    pub help_url: String,
    /// A CSS selector for each offending element (frames and shadow roots joined by ` >> `).
    pub targets: Vec<String>,
}

impl Violation {
    /// Whether [`Browser::assert_accessible`] fails on it: `serious`, `critical` or unknown.
    pub fn is_blocking(&self) -> bool {
        self.impact.is_none_or(|i| i >= Impact::Serious)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let impact = self.impact.map_or_else(|| "unknown".to_owned(), |i| i.to_string());
        write!(f, "{} ({impact}): {} [{}]", self.id, self.help, self.targets.join(", "))
    }
}

/// Last lines of chromedriver's stdout and stderr, for error messages.
type Log = Arc<Mutex<VecDeque<String>>>;

fn push_log(log: &Log, line: String) {
    let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if log.len() == LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

fn log_text(log: &Log) -> String {
    let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    log.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
}

/// The chromedriver process and the profile directory: killed and removed on drop.
#[derive(Debug)]
struct Driver {
    child: Child,
    profile: PathBuf,
    log: Log,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium may still be writing its last files for a moment after it quit.
        for _ in 0..20 {
            match std::fs::remove_dir_all(&self.profile) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => break,
            }
        }
    }
}

/// A headless Chromium driven through its own chromedriver. Dropping it ends the session,
/// stops chromedriver and removes the temporary profile; [`Browser::close`] does the same
/// and reports whether the session ended cleanly.
#[derive(Debug)]
pub struct Browser {
    wire: Wire,
    session: String,
    chromium_pid: Option<u32>,
    closed: bool,
    // Dropped after `Browser::drop` has ended the session.
    driver: Driver,
}

/// A page element, as WebDriver refers to it.
#[derive(Debug, Clone)]
struct Element(String);

impl Element {
    fn from_value(v: &Value) -> Option<Self> {
        v.get(ELEMENT_KEY)?.as_str().map(|s| Self(s.to_owned()))
    }
}

/// Finds the form field labelled `arguments[0]`: an exact label text first, else one that
/// starts with it; follows the label's `for` (or the control nested in it).
const FIND_FIELD_JS: &str = r#"
const wanted = arguments[0];
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
  && getComputedStyle(el).visibility !== 'hidden';
const labelText = l => {
  const c = l.cloneNode(true);
  c.querySelectorAll('input, select, textarea, button').forEach(e => e.remove());
  return norm(c.textContent);
};
const labels = [...document.querySelectorAll('label')].filter(visible);
let found = labels.filter(l => labelText(l) === wanted);
if (found.length === 0) found = labels.filter(l => labelText(l).startsWith(wanted));
const all = labels.map(l => JSON.stringify(labelText(l))).join(', ') || 'none';
if (found.length === 0) return {error: `no label ${JSON.stringify(wanted)} on the page; its labels: ${all}`};
if (found.length > 1) return {error: `${found.length} labels match ${JSON.stringify(wanted)}: ${found.map(l => JSON.stringify(labelText(l))).join(', ')}`};
const label = found[0];
let field;
if (label.htmlFor) {
  field = document.getElementById(label.htmlFor);
  if (!field) return {error: `label ${JSON.stringify(labelText(label))} is for="${label.htmlFor}" but no element has that id`};
} else {
  field = label.control;
  if (!field) return {error: `label ${JSON.stringify(labelText(label))} has no for attribute and no field inside it`};
}
return {field: field, tag: field.tagName.toLowerCase(), type: (field.type || '').toLowerCase(), label: labelText(label)};
"#;

/// Finds the field whose name attribute is `arguments[0]`.
const FIND_NAMED_JS: &str = r#"
const found = [...document.getElementsByName(arguments[0])]
  .filter(e => ['input', 'select', 'textarea'].includes(e.tagName.toLowerCase()));
if (found.length === 0) {
  const names = [...document.querySelectorAll('input[name], select[name], textarea[name]')].map(e => JSON.stringify(e.name));
  return {error: `no field named ${JSON.stringify(arguments[0])}; named fields: ${names.join(', ') || 'none'}`};
}
const field = found[0];
return {field: field, tag: field.tagName.toLowerCase(), type: (field.type || '').toLowerCase(), label: arguments[0]};
"#;

/// Finds the option of select `arguments[0]` whose text or value is `arguments[1]`.
const FIND_OPTION_JS: &str = r#"
const [select, wanted] = arguments;
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
const options = [...select.options];
const option = options.find(o => norm(o.text) === wanted) || options.find(o => o.value === wanted);
if (!option) return {error: `no option ${JSON.stringify(wanted)}; options: ${options.map(o => JSON.stringify(norm(o.text))).join(', ') || 'none'}`};
return {option: option};
"#;

/// Sets the value of an input that cannot be typed into portably (date, colour, range…)
/// and fires the events typing would.
const SET_VALUE_JS: &str = r#"
const [field, value] = arguments;
field.focus();
field.value = value;
field.dispatchEvent(new Event('input', {bubbles: true}));
field.dispatchEvent(new Event('change', {bubbles: true}));
return field.value;
"#;

/// Finds the visible clickable element of kind `arguments[0]` ('button' or 'link') whose
/// text, value or aria-label is `arguments[1]`.
const FIND_CLICKABLE_JS: &str = r#"
const [kind, wanted] = arguments;
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
  && getComputedStyle(el).visibility !== 'hidden';
const selector = kind === 'button'
  ? 'button, input[type=submit], input[type=button]'
  : 'a[href]';
const nameOf = el => el.tagName.toLowerCase() === 'input' ? norm(el.value) : norm(el.innerText || el.textContent);
const all = [...document.querySelectorAll(selector)];
const matches = all.filter(el => nameOf(el) === wanted || norm(el.getAttribute('aria-label')) === wanted);
const shown = matches.filter(visible);
if (shown.length > 0) return {element: shown[0]};
const names = all.filter(visible).map(el => JSON.stringify(nameOf(el) || norm(el.getAttribute('aria-label'))));
const hidden = matches.length > 0 ? ` (${matches.length} hidden ones match)` : '';
return {error: `no ${kind} ${JSON.stringify(wanted)} on the page${hidden}; its ${kind}s: ${names.join(', ') || 'none'}`};
"#;

/// Runs axe-core and hands back the violations, or the error it threw.
const AXE_RUN_JS: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  r => done({violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map(n => n.target.map(t => Array.isArray(t) ? t.join(' >> ') : String(t)).join(' >> ')),
  }))}),
  e => done({error: String((e && e.stack) || e)}));
"#;

fn unique_profile_dir() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("originlink-chromium-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not create a fresh Chromium profile directory")
}

/// The port from chromedriver's "ChromeDriver was started successfully on port N." line.
fn started_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// The workspace root: the nearest folder holding a `Cargo.lock`, looking up from
/// `CARGO_MANIFEST_DIR` (the crate whose tests run), the current directory, then this
/// crate's own folder.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for start in starts.into_iter().flatten() {
        if let Some(root) = start.ancestors().find(|d| d.join("Cargo.lock").is_file()) {
            return Ok(root.to_path_buf());
        }
    }
    bail!("no Cargo.lock above CARGO_MANIFEST_DIR or the current directory")
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with the paths of
    /// [`Config::from_env`].
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&Config::from_env()).await
    }

    /// Starts chromedriver on a free loopback port (it picks one itself: `--port=0`) and a
    /// headless Chromium session with a fresh profile directory.
    pub async fn start_with(config: &Config) -> anyhow::Result<Self> {
        for (what, path) in [("chromium", &config.chromium), ("chromedriver", &config.chromedriver)] {
            if !path.is_file() {
                bail!(
                    "{what} not found at {}: run scripts/setup.sh (or point {} at it)",
                    path.display(),
                    what.to_uppercase()
                );
            }
        }
        let profile = unique_profile_dir()?;
        let log: Log = Arc::default();
        let mut child = match Command::new(&config.chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e).with_context(|| {
                    format!("starting {}: run scripts/setup.sh", config.chromedriver.display())
                });
            }
        };
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        if let Some(stdout) = child.stdout.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut port_tx = Some(port_tx);
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = started_port(&line)
                        && let Some(tx) = port_tx.take()
                    {
                        let _ = tx.send(port);
                    }
                    push_log(&log, line);
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    push_log(&log, line);
                }
            });
        }
        let mut driver = Driver { child, profile, log };
        let deadline = Instant::now() + DRIVER_START;
        let port = match tokio::time::timeout(DRIVER_START, port_rx).await {
            Ok(Ok(port)) => port,
            Ok(Err(_)) => {
                // stdout closed: chromedriver exited. Give stderr's reader a moment.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let status = driver.child.try_wait().ok().flatten();
                bail!(
                    "chromedriver exited before listening ({status:?}); its output:\n{}",
                    log_text(&driver.log)
                );
            }
            Err(_) => bail!(
                "chromedriver did not start listening within {DRIVER_START:?}; its output:\n{}",
                log_text(&driver.log)
            ),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Each poll is short, so that the whole wait stays within DRIVER_START.
        let status = Wire::new(addr, Duration::from_secs(2));
        let wire = Wire::new(addr, COMMAND_TIMEOUT);
        loop {
            match status.call("GET", "/status", None).await {
                Ok(v) if v["ready"] == json!(true) => break,
                result => {
                    if Instant::now() >= deadline {
                        bail!(
                            "chromedriver on port {port} not ready within {DRIVER_START:?} \
                             (last answer: {result:?}); its output:\n{}",
                            log_text(&driver.log)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        let ms = u64::try_from(PAGE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {"script": ms, "pageLoad": ms, "implicit": 0},
                    "goog:chromeOptions": {
                        "binary": config.chromium.to_string_lossy(),
                        "args": args,
                    },
                }
            }
        });
        let created = wire.call("POST", "/session", Some(&capabilities)).await.map_err(|e| {
            anyhow!(
                "starting Chromium ({}) through chromedriver: {e:#}; chromedriver's output:\n{}",
                config.chromium.display(),
                log_text(&driver.log)
            )
        })?;
        let session = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("new session answer without a sessionId: {created}"))?
            .to_owned();
        let chromium_pid =
            created["capabilities"]["goog:processID"].as_u64().and_then(|p| u32::try_from(p).ok());
        Ok(Self { wire, session, chromium_pid, closed: false, driver })
    }

    /// Sends one command of this session (`path` is relative to `/session/{id}`).
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        self.wire.call(method, &path, body.as_ref()).await
    }

    /// The last lines chromedriver printed (useful when a test fails oddly).
    pub fn driver_log(&self) -> String {
        log_text(&self.driver.log)
    }

    /// The process id of Chromium's browser process, as chromedriver reports it.
    pub fn chromium_pid(&self) -> Option<u32> {
        self.chromium_pid
    }

    /// This browser's own temporary profile (`--user-data-dir`), removed on drop.
    pub fn profile_dir(&self) -> &Path {
        &self.driver.profile
    }

    /// Loads `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("loading {url}"))?;
        Ok(())
    }

    /// The address of the page shown now.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        string(self.cmd("GET", "/url", None).await?)
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> anyhow::Result<String> {
        string(self.cmd("GET", "/title", None).await?)
    }

    /// The page's markup as the browser holds it now (after scripts ran).
    pub async fn page_source(&self) -> anyhow::Result<String> {
        string(self.cmd("GET", "/source", None).await?)
    }

    /// The text the page's body shows (its `innerText`: hidden elements left out).
    pub async fn text(&self) -> anyhow::Result<String> {
        string(self.execute("return document.body ? document.body.innerText : '';", vec![]).await?)
    }

    /// Runs `script` as the body of a function in the page, with `args` as `arguments`,
    /// and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.cmd("POST", "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Runs a helper script that answers `{error: "..."}` or an object with what it found.
    async fn find(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        let found = self.execute(script, args).await?;
        if let Some(error) = found.get("error").and_then(Value::as_str) {
            let url = self.current_url().await.unwrap_or_default();
            bail!("{error} (page {url})");
        }
        Ok(found)
    }

    fn element(found: &Value, key: &str) -> anyhow::Result<Element> {
        Element::from_value(&found[key])
            .ok_or_else(|| anyhow!("the page script returned no element: {found}"))
    }

    async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.cmd("POST", &format!("/element/{}/click", element.0), Some(json!({}))).await?;
        Ok(())
    }

    async fn type_into(&self, element: &Element, value: &str) -> anyhow::Result<()> {
        self.cmd("POST", &format!("/element/{}/clear", element.0), Some(json!({}))).await?;
        if !value.is_empty() {
            self.cmd("POST", &format!("/element/{}/value", element.0), Some(json!({ "text": value })))
                .await?;
        }
        Ok(())
    }

    /// Puts `value` into a field found by [`FIND_FIELD_JS`] or [`FIND_NAMED_JS`].
    async fn set_field(&self, found: &Value, value: &str) -> anyhow::Result<()> {
        let field = Self::element(found, "field")?;
        let label = found["label"].as_str().unwrap_or_default();
        let tag = found["tag"].as_str().unwrap_or_default();
        let kind = found["type"].as_str().unwrap_or_default();
        match (tag, kind) {
            ("select", _) => {
                let option = self
                    .find(FIND_OPTION_JS, vec![json!({ ELEMENT_KEY: field.0 }), json!(value)])
                    .await
                    .with_context(|| format!("choosing in {label:?}"))?;
                self.click(&Self::element(&option, "option")?).await
            }
            ("input", "checkbox" | "radio") => {
                bail!("{label:?} is a {kind}: use check(), not fill()")
            }
            ("input", "file") => bail!("{label:?} is a file input: use upload(), not fill()"),
            ("input", "submit" | "button" | "reset" | "image" | "hidden") => {
                bail!("{label:?} is an input of type {kind}, which cannot be filled in")
            }
            ("input", "date" | "datetime-local" | "month" | "week" | "time" | "color" | "range") => {
                // Typing into these depends on the locale: set the value as a picker would.
                let set =
                    self.execute(SET_VALUE_JS, vec![json!({ ELEMENT_KEY: field.0 }), json!(value)]).await?;
                if set != json!(value) {
                    bail!("{label:?} ({kind}) does not take {value:?} (it holds {set})");
                }
                Ok(())
            }
            ("input" | "textarea", _) => self.type_into(&field, value).await,
            _ => bail!("{label:?} labels a <{tag}>, not a form field"),
        }
    }

    /// Fills the field whose `<label>` text is `label` (or starts with it): clears it and
    /// types `value`; in a `<select>`, chooses the option whose visible text (or value) is
    /// `value`. The label is followed through its `for` attribute (or to the field nested
    /// in it).
    pub async fn fill(&self, label: &str, value: &str) -> anyhow::Result<()> {
        let label = normalise(label);
        let found = self.find(FIND_FIELD_JS, vec![json!(label)]).await?;
        self.set_field(&found, value).await.with_context(|| format!("filling {label:?}"))
    }

    /// Fills the field whose `name` attribute is `name`, as [`Browser::fill`] does.
    pub async fn fill_name(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let found = self.find(FIND_NAMED_JS, vec![json!(name)]).await?;
        self.set_field(&found, value).await.with_context(|| format!("filling the field named {name:?}"))
    }

    /// Ticks the checkbox, or picks the radio button, labelled `label` (left as it is when
    /// already checked).
    pub async fn check(&self, label: &str) -> anyhow::Result<()> {
        let label = normalise(label);
        let found = self.find(FIND_FIELD_JS, vec![json!(label)]).await?;
        let kind = found["type"].as_str().unwrap_or_default();
        if !matches!(kind, "checkbox" | "radio") {
            bail!("{label:?} labels a {kind} field, not a checkbox or radio button");
        }
        let field = Self::element(&found, "field")?;
        let checked = "return arguments[0].checked;";
        let reference = json!({ ELEMENT_KEY: field.0 });
        if self.execute(checked, vec![reference.clone()]).await? != json!(true) {
            self.click(&field).await.with_context(|| format!("checking {label:?}"))?;
        }
        if self.execute(checked, vec![reference]).await? != json!(true) {
            bail!("{label:?} is still not checked after clicking it");
        }
        Ok(())
    }

    /// Chooses `path` in the file input labelled `label`.
    pub async fn upload(&self, label: &str, path: &Path) -> anyhow::Result<()> {
        let label = normalise(label);
        let path = path.canonicalize().with_context(|| format!("uploading {}", path.display()))?;
        let found = self.find(FIND_FIELD_JS, vec![json!(label)]).await?;
        if found["type"] != json!("file") {
            bail!("{label:?} labels a {} field, not a file input", found["type"]);
        }
        let field = Self::element(&found, "field")?;
        self.cmd(
            "POST",
            &format!("/element/{}/value", field.0),
            Some(json!({ "text": path.to_string_lossy() })),
        )
        .await
        .with_context(|| format!("uploading {} with {label:?}", path.display()))?;
        Ok(())
    }

    /// Clicks the first visible `<button>`, `input[type=submit]` or `input[type=button]`
    /// whose text, value or `aria-label` is `text`. The error lists the page's buttons.
    pub async fn click_button(&self, text: &str) -> anyhow::Result<()> {
        let text = normalise(text);
        let found = self.find(FIND_CLICKABLE_JS, vec![json!("button"), json!(text)]).await?;
        self.click(&Self::element(&found, "element")?)
            .await
            .with_context(|| format!("clicking the button {text:?}"))
    }

    /// Clicks the first visible link (`a[href]`) whose text or `aria-label` is `text`. The
    /// error lists the page's links.
    pub async fn click_link(&self, text: &str) -> anyhow::Result<()> {
        let text = normalise(text);
        let found = self.find(FIND_CLICKABLE_JS, vec![json!("link"), json!(text)]).await?;
        self.click(&Self::element(&found, "element")?)
            .await
            .with_context(|| format!("clicking the link {text:?}"))
    }

    /// Waits until the body's text contains `text`, checking every 100 ms; fails after
    /// `timeout` with the text the page showed.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            // A page being replaced can fail a read: try again until the deadline.
            let shown = self.text().await;
            if let Ok(shown) = &shown
                && shown.contains(text)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let url = self.current_url().await.unwrap_or_default();
                let shown = shown.unwrap_or_else(|e| format!("(unreadable: {e:#})"));
                bail!("{text:?} did not appear within {timeout:?} on {url}; the page shows:\n{shown}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The cookies the browser would send to the page shown now.
    pub async fn cookies(&self) -> anyhow::Result<Vec<Cookie>> {
        let all = self.cmd("GET", "/cookie", None).await?;
        let all = all.as_array().ok_or_else(|| anyhow!("cookies are not a list: {all}"))?;
        Ok(all
            .iter()
            .map(|c| Cookie {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                value: c["value"].as_str().unwrap_or_default().to_owned(),
                domain: c["domain"].as_str().map(str::to_owned),
                path: c["path"].as_str().map(str::to_owned),
                secure: c["secure"] == json!(true),
                http_only: c["httpOnly"] == json!(true),
                same_site: c["sameSite"].as_str().map(str::to_owned),
                expiry: c["expiry"].as_u64(),
            })
            .collect())
    }

    /// The cookie called `name` that the page shown now would get, if any.
    pub async fn cookie(&self, name: &str) -> anyhow::Result<Option<Cookie>> {
        Ok(self.cookies().await?.into_iter().find(|c| c.name == name))
    }

    /// Sets a cookie for the site of the page shown now (path `/`), as if that site had
    /// set it: a page of the site must be loaded first.
    pub async fn add_cookie(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.cmd("POST", "/cookie", Some(json!({ "cookie": { "name": name, "value": value, "path": "/" } })))
            .await
            .with_context(|| format!("adding the cookie {name:?}"))?;
        Ok(())
    }

    /// Removes the cookie called `name` for the site of the page shown now.
    pub async fn delete_cookie(&self, name: &str) -> anyhow::Result<()> {
        self.cmd("DELETE", &format!("/cookie/{}", wire::escape_path(name)), None)
            .await
            .with_context(|| format!("deleting the cookie {name:?}"))?;
        Ok(())
    }

    /// Writes a PNG of the viewport to `path`, creating its parent folders.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = string(self.cmd("GET", "/screenshot", None).await?)?;
        let png = base64::engine::general_purpose::STANDARD.decode(png).context("decoding the screenshot")?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Runs axe-core (from `tools/axe/node_modules/axe-core/axe.min.js`) on the page shown
    /// now and returns the rules it breaks.
    pub async fn axe(&self) -> anyhow::Result<Vec<Violation>> {
        let loaded = self.execute("return typeof window.axe === 'object';", vec![]).await?;
        if loaded != json!(true) {
            let path = workspace_root()?.join("tools/axe/node_modules/axe-core/axe.min.js");
            let source = std::fs::read_to_string(&path).with_context(|| {
                format!("reading axe-core at {}: run scripts/setup.sh (npm ci in tools/axe)", path.display())
            })?;
            self.execute(&source, vec![]).await.context("loading axe-core into the page")?;
        }
        let result = self
            .cmd("POST", "/execute/async", Some(json!({ "script": AXE_RUN_JS, "args": [] })))
            .await
            .context("running axe-core")?;
        if let Some(error) = result.get("error") {
            bail!("axe-core failed: {error}");
        }
        let list = result["violations"]
            .as_array()
            .ok_or_else(|| anyhow!("axe-core returned no violations list: {result}"))?;
        Ok(list
            .iter()
            .map(|v| Violation {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                impact: v["impact"].as_str().and_then(Impact::parse),
                help: v["help"].as_str().unwrap_or_default().to_owned(),
                help_url: v["helpUrl"].as_str().unwrap_or_default().to_owned(),
                targets: v["targets"]
                    .as_array()
                    .map(|t| t.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Runs axe-core and fails, listing them, when the page breaks any rule of impact
    /// `serious` or `critical`. `page` names the page in the message.
    pub async fn assert_accessible(&self, page: &str) -> anyhow::Result<()> {
        let blocking: Vec<Violation> = self
            .axe()
            .await
            .with_context(|| format!("checking the accessibility of {page}"))?
            .into_iter()
            .filter(Violation::is_blocking)
            .collect();
        if blocking.is_empty() {
            return Ok(());
        }
        let url = self.current_url().await.unwrap_or_default();
        let list: Vec<String> = blocking.iter().map(|v| format!("- {v}")).collect();
        bail!(
            "{page} ({url}) breaks {} serious or critical accessibility rule(s):\n{}",
            blocking.len(),
            list.join("\n")
        )
    }

    /// Ends the session (Chromium quits), stops chromedriver and removes the profile.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let path = format!("/session/{}", self.session);
        let ended = self.wire.call("DELETE", &path, None).await;
        // When ending it failed, dropping tries again and kills Chromium by its pid.
        self.closed = ended.is_ok();
        ended.context("ending the WebDriver session")?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Chromium outlives a killed chromedriver: end the session first, so that
        // chromedriver quits it, and kill it by its pid when that fails.
        if wire::delete_blocking(self.wire.addr(), &self.session).is_err()
            && let Some(pid) = self.chromium_pid
        {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn string(v: Value) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(anyhow!("expected a string from WebDriver, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_chromedriver_announces() {
        assert_eq!(started_port("ChromeDriver was started successfully on port 36873."), Some(36873));
        assert_eq!(started_port("Only local connections are allowed."), None);
    }

    #[test]
    fn serious_critical_and_unknown_impacts_block() {
        let v = |impact| Violation {
            id: "x".into(),
            impact,
            help: String::new(),
            help_url: String::new(),
            targets: vec![],
        };
        assert!(!v(Some(Impact::Minor)).is_blocking());
        assert!(!v(Some(Impact::Moderate)).is_blocking());
        assert!(v(Some(Impact::Serious)).is_blocking());
        assert!(v(Some(Impact::Critical)).is_blocking());
        assert!(v(None).is_blocking());
    }

    #[test]
    fn finds_the_workspace_root() {
        let root = workspace_root().unwrap();
        assert!(root.join("Cargo.lock").is_file());
        assert!(root.join("crates/browser/Cargo.toml").is_file());
    }
}
