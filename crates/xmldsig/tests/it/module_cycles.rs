//! The crate's modules import each other one way only: no module reaches itself again through
//! `crate::` paths (issue 12 broke the `sign` / `stream` / `verify` loop; this keeps it broken).
//!
//! The check reads `src/*.rs`, drops comments and literals, and collects every `crate::X`
//! (including `use crate::{X, Y::…}` groups) per module. `X` is a module (a file in `src/`, or
//! an inline `mod` of `lib.rs`, which counts as a module of its own) or an item the crate root
//! re-exports with `pub use module::…`, which counts as that module. The crate root's own
//! re-exports are the facade, not an edge. A name it cannot place fails the test, so the check
//! cannot go quietly blind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn module_imports_have_no_cycles() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The parse sees what it must: the one-way edges the layout relies on.
    for (from, to) in
        [("verify", "stream"), ("verify", "signature"), ("stream", "signature"), ("sign", "xml")]
    {
        assert!(graph[from].contains(to), "expected {from} -> {to} in {graph:#?}");
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module import cycle: {}\n{graph:#?}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).to_owned()).or_default().insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    let cycle =
        find_cycle(&graph(&[("sign", "verify"), ("verify", "stream"), ("stream", "sign"), ("x", "sign")]));
    assert_eq!(cycle.map(|c| c.len()), Some(4), "three modules and back to the first");
    assert_eq!(find_cycle(&graph(&[("a", "a")])).map(|c| c.len()), Some(2));
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("a", "c"), ("b", "c"), ("c", "d")])), None);
    // The source reader: comments and literals do not count, groups do.
    let refs = crate_refs(
        "// crate::a\n/* crate::b */ let s = \"crate::c\"; let c = '\"'; use crate::{d::X, e};\n\
         fn f<'a>(x: &'a str) { crate::g::h(r#\"crate::i\"#) }",
    );
    assert_eq!(refs, ["d", "e", "g"]);
}

/// Module → the modules it refers to through `crate::`.
fn module_graph(src: &Path) -> Graph {
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let lib = blank(&modules.remove("lib").expect("src/lib.rs"));
    // Inline modules of the crate root: `mod name { … }`.
    let mut root_items = String::new();
    let mut rest = lib.as_str();
    while let Some(at) = find_inline_mod(rest) {
        let (before, after) = rest.split_at(at.start);
        root_items.push_str(before);
        let body_end = matching_brace(after, at.open - at.start);
        modules.insert(at.name.clone(), after[..=body_end].to_owned());
        rest = &after[body_end + 1..];
    }
    root_items.push_str(rest);
    let reexports = root_reexports(&root_items);
    let mut graph = Graph::new();
    for (name, text) in &modules {
        let edges = graph.entry(name.clone()).or_default();
        for r in crate_refs(text) {
            let target = if modules.contains_key(&r) {
                r
            } else if let Some(m) = reexports.get(&r) {
                m.clone()
            } else {
                panic!("{name}: cannot place crate::{r} (not a module, not re-exported by lib.rs)");
            };
            if &target != name {
                edges.insert(target);
            }
        }
    }
    graph
}

struct InlineMod {
    start: usize,
    open: usize,
    name: String,
}

/// The next `mod name {` (with any visibility) in blanked source.
fn find_inline_mod(text: &str) -> Option<InlineMod> {
    let mut from = 0;
    while let Some(i) = text[from..].find("mod ") {
        let start = from + i;
        let word_start = start == 0 || !is_ident(text.as_bytes()[start - 1]);
        let after = &text[start + 4..];
        let name: String = after.trim_start().chars().take_while(|c| is_ident(*c as u8)).collect();
        let tail = after.trim_start()[name.len()..].trim_start();
        if word_start && !name.is_empty() && tail.starts_with('{') {
            let open = text.len() - tail.len();
            let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
            return Some(InlineMod { start: line_start, open, name });
        }
        from = start + 4;
    }
    None
}

fn matching_brace(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in text.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in lib.rs");
}

/// `pub use module::{a, b};` / `pub use module::a;` in the crate root: item → module.
fn root_reexports(root: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in root.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else { continue };
        let path = path.trim().trim_start_matches("crate::");
        let Some((module, items)) = path.split_once("::") else { continue };
        for item in items.trim_matches(|c: char| c == '{' || c == '}' || c.is_whitespace()).split(',') {
            let item = item.trim();
            let item = item.rsplit_once(" as ").map_or(item, |(_, alias)| alias).trim();
            if !item.is_empty() {
                out.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    out
}

/// The first name after each `crate::` in the code (not in comments or literals); for a group
/// `crate::{a::X, b}`, the first name of each member.
fn crate_refs(source: &str) -> Vec<String> {
    let code = blank(source);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before_ok = i == 0 || !is_ident(rest.as_bytes()[i - 1]) && rest.as_bytes()[i - 1] != b':';
        rest = &rest[i + "crate::".len()..];
        if !before_ok {
            continue;
        }
        let path = rest.trim_start();
        if let Some(group) = path.strip_prefix('{') {
            let body = &group[..matching_brace(path, 0) - 1];
            let mut depth = 0;
            let mut member_start = true;
            for (j, c) in body.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => member_start = true,
                    c if member_start && is_ident(c as u8) => {
                        out.push(body[j..].chars().take_while(|c| is_ident(*c as u8)).collect());
                        member_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = path.chars().take_while(|c| is_ident(*c as u8)).collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The source with comments, string, byte-string, raw-string and char literals replaced by
/// spaces (line breaks kept), so only code is searched.
fn blank(source: &str) -> String {
    let b = source.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let skip_to = |out: &mut Vec<u8>, from: usize, to: usize| {
        out.extend(b[from..to].iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
        to
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n);
            i = skip_to(&mut out, i, end);
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, i);
            while j < b.len() {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = skip_to(&mut out, i, j);
        } else if let Some(hashes) = raw_string_start(b, i) {
            // r"…", r#"…"#, br"…": ends at a quote followed by as many hashes.
            let open = i + b[i..].iter().position(|&c| c == b'"').unwrap() + 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let end =
                (open..b.len()).find(|&j| b[j..].starts_with(&close)).map_or(b.len(), |j| j + close.len());
            i = skip_to(&mut out, i, end);
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = skip_to(&mut out, i, (j + 1).min(b.len()));
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '"'), else a lifetime or label.
            let end = if b.get(i + 1) == Some(&b'\\') {
                (i + 2..b.len()).find(|&j| b[j] == b'\'').map(|j| j + 1)
            } else {
                let len = source[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
            };
            match end {
                Some(end) => i = skip_to(&mut out, i, end),
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// At `i`, `r"`, `r#…#"`, `br"` or `br#…#"` not inside an identifier: the number of hashes.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident(b[i - 1]) {
        return None;
    }
    let j = if b[i..].starts_with(b"br") {
        i + 2
    } else if b[i] == b'r' {
        i + 1
    } else {
        return None;
    };
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

/// A cycle as `a -> … -> a`, if the graph has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        n: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[from..].to_vec();
                cycle.push(n.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n.to_owned(), Mark::Open);
        path.push(n.to_owned());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(n.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph.keys().find_map(|n| visit(n, graph, &mut marks, &mut Vec::new()))
}
