//! Running the real tools on printed certificates: `pdftotext`, `pdfinfo`, `pdftoppm`
//! (poppler-utils) and `zbarimg` (zbar-tools). A missing tool fails the test with the
//! package to install; nothing is skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use originlink_model::{Agreement, Certificate, CountryCode, NaiveDate, sample::sample};
use originlink_print::PrintOptions;

pub fn country(c: &str) -> CountryCode {
    CountryCode::parse(c).unwrap()
}

pub fn issued(agreement: Agreement, from: &str, to: &str, items: usize) -> Certificate {
    sample(agreement, country(from), country(to), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), items, 1)
}

pub fn options(cert: &Certificate, copy: Option<u32>) -> PrintOptions {
    let number = cert.number.as_ref().unwrap();
    PrintOptions {
        verify_url: format!("http://127.0.0.1:8443/verify?n={number}&c=7K3M9-QX2VD"),
        check_code: "7K3M9-QX2VD".to_owned(),
        sha256_hex: "3f0c9a6d2b7e41c8a5f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8".to_owned(),
        copy,
    }
}

/// Writes the PDF to a file of its own under the test target's temporary directory.
pub fn save(name: &str, pdf: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("originlink-print");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.pdf", std::process::id()));
    std::fs::write(&path, pdf).unwrap();
    path
}

/// Runs a tool and returns its standard output; fails the test when the tool is missing or
/// fails.
pub fn run(tool: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}); install it with `apt-get install -y {package}` (scripts/setup.sh does)")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the tool prints UTF-8")
}

/// `pdftotext -layout` (or, with `layout` false, in reading order) of pages `first..=last`
/// (all when `None`).
pub fn pdftotext(pdf: &Path, layout: bool, pages: Option<(usize, usize)>) -> String {
    let mut args: Vec<String> = vec!["-enc".into(), "UTF-8".into()];
    if layout {
        args.push("-layout".into());
    }
    if let Some((f, l)) = pages {
        args.extend(["-f".into(), f.to_string(), "-l".into(), l.to_string()]);
    }
    args.push(pdf.display().to_string());
    args.push("-".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("pdftotext", "poppler-utils", &args)
}

/// Number of pages, from `pdfinfo`.
pub fn page_count(pdf: &Path) -> usize {
    let info = run("pdfinfo", "poppler-utils", &[&pdf.display().to_string()]);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo gave no page count:\n{info}"))
}

/// Collapses every run of whitespace into one space.
pub fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that every needle, whitespace normalised, is in the text, whitespace normalised;
/// lists all that are missing.
pub fn assert_contains_all(what: &str, text: &str, needles: &[String]) {
    let hay = normalize(text);
    let missing: Vec<&String> = needles.iter().filter(|n| !hay.contains(&normalize(n))).collect();
    assert!(missing.is_empty(), "{what}: missing {missing:?}\n--- text ---\n{text}");
}

/// The workspace's target directory: `CARGO_TARGET_DIR` when set, else `<workspace>/target`.
/// A relative `CARGO_TARGET_DIR` is taken from the workspace root, as cargo does when run there.
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace.join(d),
        None => workspace.join("target"),
    }
}

/// The date as the certificate prints it.
pub fn date(d: NaiveDate) -> String {
    d.format("%d %b %Y").to_string()
}
