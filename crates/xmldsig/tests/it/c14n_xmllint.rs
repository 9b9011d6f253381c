//! Exclusive C14N is byte-identical to `xmllint --exc-c14n` over the corpus in
//! tests/data/c14n plus the DTD-free documents from testdata.

use std::path::PathBuf;

use originlink_xmldsig::{Limits, canonicalize_exclusive, canonicalize_exclusive_with};

use crate::common::{data_dir, run, s, scratch, testdata, write};

/// Every corpus document: our own, the UBL example, and the DTD-free xmldsig vectors.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(data_dir().join("c14n")).unwrap().map(|e| e.unwrap().path()).collect();
    files.push(testdata().join("ubl-2.4/examples/minimal-certificate-of-origin.xml"));
    for dir in ["aleksey-xmldsig-01", "merlin-exc-c14n-one"] {
        for entry in std::fs::read_dir(testdata().join("xmldsig-vectors").join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "xml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn xmllint_exc_c14n(path: &str) -> Vec<u8> {
    let out = run("xmllint", &["--exc-c14n", path]);
    assert!(out.status.success(), "xmllint failed on {path}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn corpus_is_large_enough_and_covers_the_required_features() {
    let files = corpus();
    assert!(files.len() >= 50, "only {} corpus documents", files.len());
    let all: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for needle in ["xmlns:", "xmlns=\"", "<!--", "<![CDATA[", "<?", "xml:lang", "&#"] {
        assert!(all.contains(needle), "corpus lacks {needle}");
    }
}

#[test]
fn with_comments_matches_xmllint_exc_c14n() {
    let mut failures = Vec::new();
    for file in corpus() {
        let xml = std::fs::read(&file).unwrap();
        let ours = canonicalize_exclusive(&xml, true).unwrap();
        let theirs = xmllint_exc_c14n(s(&file));
        if ours != theirs {
            failures.push(format!(
                "{}\n  ours:    {:?}\n  xmllint: {:?}",
                file.display(),
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            ));
        }
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

/// Without comments: compare with xmllint on a copy of the document with its comments cut out
/// (which changes nothing else in the data model).
#[test]
fn without_comments_matches_xmllint_on_a_comment_free_copy() {
    let dir = scratch("c14n-no-comments");
    let mut failures = Vec::new();
    let mut with_comments = 0;
    for file in corpus() {
        let xml = std::fs::read_to_string(&file).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let mut stripped = String::new();
        let mut last = 0;
        for comment in doc.descendants().filter(|n| n.is_comment()) {
            stripped.push_str(&xml[last..comment.range().start]);
            last = comment.range().end;
        }
        stripped.push_str(&xml[last..]);
        with_comments += usize::from(stripped.len() != xml.len());
        let copy = write(&dir, file.file_name().unwrap().to_str().unwrap(), stripped.as_bytes());
        let ours = canonicalize_exclusive(xml.as_bytes(), false).unwrap();
        if ours != xmllint_exc_c14n(s(&copy)) {
            failures.push(file.display().to_string());
        }
    }
    assert!(with_comments >= 5, "only {with_comments} corpus documents have comments");
    assert!(failures.is_empty(), "differences: {failures:?}");
}

#[test]
fn comments_are_dropped_without_comments() {
    let out = canonicalize_exclusive(b"<!--a--><r><!--b-->x</r><!--c-->", false).unwrap();
    assert_eq!(out, b"<r>x</r>");
    let out = canonicalize_exclusive(b"<!--a--><r><!--b-->x</r><!--c-->", true).unwrap();
    assert_eq!(out, b"<!--a-->\n<r><!--b-->x</r>\n<!--c-->");
}

/// merlin-exc-c14n-one: four References over the same `Object`, exclusive C14N with and
/// without comments and with `InclusiveNamespaces PrefixList="bar #default"`; their SHA-1
/// digests were computed by another implementation.
#[test]
fn merlin_exc_c14n_one_digests_match() {
    let path = testdata().join("xmldsig-vectors/merlin-exc-c14n-one/exc-signature.xml");
    let xml = std::fs::read(path).unwrap();
    let text = std::str::from_utf8(&xml).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    let expected: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("DigestValue")).map(|n| n.text().unwrap()).collect();
    assert_eq!(expected.len(), 4);
    let cases: [(bool, &[&str]); 4] =
        [(false, &[]), (false, &["bar", "#default"]), (true, &[]), (true, &["bar", "#default"])];
    for ((with_comments, prefixes), expected) in cases.into_iter().zip(expected) {
        let c14n = canonicalize_exclusive_with(
            &xml,
            with_comments,
            prefixes,
            Some("to-be-signed"),
            &Limits::default(),
        )
        .unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &c14n);
        use base64::Engine as _;
        let got = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(
            got,
            expected,
            "comments={with_comments} prefixes={prefixes:?}: {}",
            String::from_utf8_lossy(&c14n)
        );
    }
}

#[test]
fn prefix_list_renders_unused_namespaces() {
    let xml = br#"<r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><x:c xmlns:x="urn:x" Id="c"/></r>"#;
    let c14n = canonicalize_exclusive_with(xml, false, &["a", "#default"], Some("c"), &Limits::default());
    assert_eq!(
        String::from_utf8(c14n.unwrap()).unwrap(),
        r#"<x:c xmlns="urn:d" xmlns:a="urn:a" xmlns:x="urn:x" Id="c"></x:c>"#
    );
}

#[test]
fn dtd_and_oversize_inputs_are_refused() {
    let dtd = br#"<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>"#;
    assert_eq!(canonicalize_exclusive(dtd, true).unwrap_err().code(), "MALFORMED");
    let empty_dtd = b"<!DOCTYPE r><r/>";
    assert_eq!(canonicalize_exclusive(empty_dtd, true).unwrap_err().code(), "MALFORMED");
    let limits = Limits { max_bytes: 10, ..Limits::default() };
    let err = canonicalize_exclusive_with(b"<r>0123456789</r>", true, &[], None, &limits).unwrap_err();
    assert_eq!(err.code(), "DOCUMENT_TOO_LARGE");
    let limits = Limits { max_nodes: 5, ..Limits::default() };
    let err =
        canonicalize_exclusive_with(b"<r><a/><a/><a/><a/><a/></r>", true, &[], None, &limits).unwrap_err();
    assert_eq!(err.code(), "DOCUMENT_TOO_LARGE");
}
