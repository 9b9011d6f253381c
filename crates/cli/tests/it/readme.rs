//! README runs as written (issue 14): every ```sh block of README.md, in order, as one bash
//! script in a fresh directory with this build's `originlink` first on `PATH`. A block is
//! skipped only when the line before its fence says `<!-- readme-test: skip: <reason> -->`,
//! and only the commands that cannot run inside a test may say so. The servers the
//! walkthrough starts in the background are stopped at the end, whatever happened: the script
//! runs in its own process group, which is killed.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bin, repo, tempdir};

/// The marker that skips the block whose fence follows it.
const SKIP: &str = "<!-- readme-test: skip:";

/// The only blocks that may be skipped, by their first command: the demo runs until Ctrl-C
/// (what it runs is checked by `readme_run_command_demo_quick` and
/// `readme_replicated_demo_quick` below), the test command runs
/// this very test, and long fuzzing needs the nightly toolchain (the test command fuzzes
/// every target for 20 s).
const MAY_SKIP: [&str; 4] = [
    "bash scripts/run.sh",
    "bash scripts/run.sh --postgres",
    "bash scripts/test.sh",
    "FUZZ_SECONDS=300 bash scripts/fuzz.sh",
];

/// How long the whole walkthrough may take.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The ports the walkthrough's servers listen on (KH node, TH node, gateway).
const PORTS: [u16; 3] = [8443, 8444, 9443];

/// A fenced block of README.md.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    /// Its info string (`sh`, `toml`, … or empty).
    info: String,
    /// Its text, one line each.
    text: String,
    /// The reason given to skip it, if any.
    skip: Option<String>,
}

/// Every fenced block of `md`, with the skip marker on the line before each fence.
fn blocks(md: &str) -> Vec<Block> {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim_start().starts_with(SKIP) {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                next.starts_with("```"),
                "README.md line {}: a skip marker must be on the line just before a fence",
                i + 1
            );
        }
        if let Some(info) = l.strip_prefix("```") {
            let start = i;
            let mut text = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim_end() != "```" {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            assert!(i < lines.len(), "README.md line {}: the block is never closed", start + 1);
            let skip = start.checked_sub(1).map(|p| lines[p].trim()).and_then(|p| {
                let reason = p.strip_prefix(SKIP)?.strip_suffix("-->")?.trim();
                Some(reason.to_owned())
            });
            out.push(Block { line: start + 1, info: info.trim().to_owned(), text, skip });
        }
        i += 1;
    }
    out
}

/// The walkthrough: the `sh` blocks that run, each after a marker naming it.
fn script(blocks: &[Block]) -> String {
    let mut s = String::from("set -euo pipefail\n");
    for (n, b) in blocks.iter().filter(|b| b.info == "sh").enumerate() {
        if b.skip.is_some() {
            continue;
        }
        // On a line of its own even after output without a final newline (curl's JSON).
        s.push_str(&format!("echo; echo \"== README block {} (line {})\"\n", n + 1, b.line));
        s.push_str(&b.text);
    }
    s.push_str("echo; echo \"== README: every block ran\"\n");
    s
}

/// Sends `signal` to every process of the group `pgid`; whether any was there.
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops every process the script left behind: SIGTERM (the servers stop gracefully), then
/// SIGKILL for any still there after a few seconds.
fn stop_group(pgid: u32) {
    if !signal_group(pgid, "-TERM") {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !signal_group(pgid, "-0") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(pgid, "-KILL");
}

/// The last block the script announced, from its output.
fn last_block(output: &str) -> String {
    output
        .rfind("== README block ")
        .and_then(|i| output[i + "== README ".len()..].lines().next())
        .map(str::to_owned)
        .unwrap_or_else(|| "before the first block".into())
}

/// The logs the walkthrough's servers wrote, for a failure message.
fn server_logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut logs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for p in logs {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        out.push_str(&format!("\n--- {} (last lines)\n", p.display()));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn readme_blocks_run_in_order() {
    let md = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let all = blocks(&md);
    for b in &all {
        assert!(
            !matches!(b.info.as_str(), "bash" | "shell" | "console" | "zsh" | "shell-session"),
            "README.md line {}: tag command blocks `sh` so that this test runs them (found `{}`)",
            b.line,
            b.info
        );
        if let Some(reason) = &b.skip {
            assert_eq!(b.info, "sh", "README.md line {}: only sh blocks can be skipped", b.line);
            assert!(!reason.is_empty(), "README.md line {}: a skipped block needs its reason", b.line);
            let first = b.text.lines().next().unwrap_or_default();
            assert!(
                MAY_SKIP.iter().any(|c| first.starts_with(c)),
                "README.md line {}: only {MAY_SKIP:?} may be skipped, not `{first}`",
                b.line
            );
        }
    }
    let skipped = all.iter().filter(|b| b.skip.is_some()).count();
    assert!(skipped <= MAY_SKIP.len(), "{skipped} blocks skipped");
    let runs = all.iter().filter(|b| b.info == "sh" && b.skip.is_none()).count();
    assert!(runs >= 10, "only {runs} sh blocks to run: is README's walkthrough still there?");

    for port in PORTS {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is taken: README's walkthrough listens on {PORTS:?}; stop what holds it"
        );
    }
    let dir = tempdir("readme");
    std::fs::write(dir.join("readme.sh"), script(&all)).expect("write the script");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_originlink"));
    let path = format!(
        "{}:{}",
        exe.parent().expect("binary directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log_path = dir.join("readme.out");
    let log = std::fs::File::create(&log_path).expect("output file");
    let mut cmd = Command::new("bash");
    cmd.arg("readme.sh")
        .current_dir(&dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("output file"))
        .stderr(log)
        .process_group(0);
    for (k, _) in std::env::vars() {
        if k.starts_with("ORIGINLINK__") {
            cmd.env_remove(k);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("bash starts");
    let pgid = child.id();
    let status = loop {
        match child.try_wait().expect("waiting for bash") {
            Some(s) => break Some(s),
            None if started.elapsed() > TIMEOUT => break None,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stop_group(pgid);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => {
            assert!(output.contains("== README: every block ran"), "{output}");
            // What README's comments promise, as the commands printed it.
            for expected in [
                "INVALID REVOKED KH-",
                "was revoked on",
                "CANNOT_VERIFY STATUS_UNKNOWN KH's status list",
                "Check code: ",
                r#""status":"revoked""#,
                r#"["INVALID","REVOKED",["pass","pass","pass","fail"]]"#,
            ] {
                assert!(output.contains(expected), "README's output lacks {expected:?}:\n{output}");
            }
            eprintln!("README: {runs} blocks ran in {:.1} s", started.elapsed().as_secs_f64());
            let _ = std::fs::remove_dir_all(&dir);
        }
        Some(s) => panic!(
            "README {} failed ({s}); the script and its files are in {}\n--- output\n{output}{}",
            last_block(&output),
            dir.display(),
            server_logs(&dir)
        ),
        None => panic!(
            "README {} did not finish within {TIMEOUT:?}; the script and its files are in {}\n--- output\n{output}{}",
            last_block(&output),
            dir.display(),
            server_logs(&dir)
        ),
    }
}

/// What README's run command runs, `originlink demo`, reaches every expected state
/// (`scripts/run.sh --quick` builds the release binary and runs exactly this).
#[test]
fn readme_run_command_demo_quick() {
    let dir = tempdir("readme-demo");
    demo_quick(&dir, &[]);
    demo_revoked_certificate_verifies_with_its_status(&dir.join("demo-data"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `originlink demo --quick ARGS` into `dir/demo-data`, which must reach every expected state.
fn demo_quick(dir: &Path, args: &[&str]) {
    let out = bin()
        .args(["demo", "--quick"])
        .args(args)
        .arg("--dir")
        .arg(dir.join("demo-data"))
        .stdin(Stdio::null())
        .output()
        .expect("originlink demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("every expected state reached"),
        "originlink demo --quick {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// README's replicated demo: the same scenario on PostgreSQL with two replicas of each node
/// and of the gateway, every replica listed in the trust list.
#[test]
fn readme_replicated_demo_quick() {
    let dir = tempdir("readme-demo-replicas");
    demo_quick(
        &dir,
        &["--history", "0", "--replicas", "2", "--postgres", "postgres://postgres@127.0.0.1:5432"],
    );
    let region = originlink_region::Region::load(&dir.join("demo-data")).expect("region.json");
    assert_eq!(region.gateway_replicas.len(), 1);
    assert!(region.nodes.values().all(|n| n.replicas.len() == 1 && n.database.starts_with("postgres")));
    let list = std::fs::read_to_string(dir.join("demo-data").join("trust-list.json")).expect("trust list");
    let list: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(list["gateways"].as_array().map(Vec::len), Some(2), "both gateway replicas listed");
    for m in list["members"].as_array().expect("members") {
        assert_eq!(m["nodes"].as_array().map(Vec::len), Some(2), "both replicas of {} listed", m["country"]);
    }
    // Without PostgreSQL, replicas are refused with the reason.
    let out = bin()
        .args(["demo", "--quick", "--replicas", "2", "--dir"])
        .arg(dir.join("x"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --postgres"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `originlink verify` on the demo's revoked certificate (written by the demo under `check/`
/// with the issuer's signed status list): INVALID `REVOKED` with the list, CANNOT_VERIFY
/// `STATUS_UNKNOWN` once the list is stale or missing, and without any status source a VALID
/// that says the status was not checked.
fn demo_revoked_certificate_verifies_with_its_status(region: &Path) {
    let check = region.join("check");
    let files: Vec<_> =
        std::fs::read_dir(&check).expect("the demo wrote check/").map(|f| f.expect("entry").path()).collect();
    let list =
        files.iter().find(|p| p.to_string_lossy().ends_with("-status-list.json")).expect("a status list");
    let doc = files.iter().find(|p| *p != list).expect("the revoked certificate");
    let trust = |extra: &[&str]| {
        let mut args = vec![
            "verify".to_owned(),
            doc.display().to_string(),
            "--trust-list".into(),
            region.join("trust-list.json").display().to_string(),
            "--operator".into(),
            region.join("operator/operator.crt").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::run_text(&args, b"")
    };
    let list_arg = list.display().to_string();
    let (code, out, err) = trust(&["--status-list", &list_arg]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("INVALID REVOKED ") && out.contains("was revoked on"), "{out}");
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let (code, out, err) = trust(&["--status-list", &list_arg, "--at", &later]);
    assert_eq!((code, out.starts_with("CANNOT_VERIFY STATUS_UNKNOWN ")), (3, true), "{out}{err}");
    let missing = region.join("check/none.json").display().to_string();
    let (code, out, err) = trust(&["--status-list", &missing]);
    assert_eq!((code, out.starts_with("CANNOT_VERIFY STATUS_UNKNOWN ")), (3, true), "{out}{err}");
    let (code, out, err) = trust(&[]);
    assert_eq!(
        (code, out.starts_with("VALID ") && out.contains("status not checked")),
        (0, true),
        "{out}{err}"
    );
}

#[test]
fn readme_blocks_are_found_with_their_skip_markers() {
    let md = "text\n<!-- readme-test: skip: slow -->\n```sh\nbash scripts/run.sh\n```\n\n```toml\na = 1\n```\n```sh\necho hi\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 3);
    assert_eq!((b[0].line, b[0].skip.as_deref()), (3, Some("slow")));
    assert_eq!((b[1].info.as_str(), b[1].skip.as_deref()), ("toml", None));
    let s = script(&b);
    assert!(!s.contains("scripts/run.sh") && !s.contains("a = 1"), "{s}");
    assert!(s.contains("echo; echo \"== README block 2 (line 10)\"\necho hi\n"), "{s}");
    assert_eq!(
        last_block("x\n== README block 1 (line 3)\n{}== README block 2 (line 10)\nerr\n"),
        "block 2 (line 10)"
    );
}
