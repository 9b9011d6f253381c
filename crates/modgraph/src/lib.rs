//! Which module of a crate imports which: the graph behind the "modules import each other one
//! way only" tests (`tests/it/module_cycles.rs` in originlink-xmldsig and originlink-node).
//!
//! # How the graph is built
//! - Every `.rs` file under `src/` is a module named by its path: `src/lib.rs` is the crate
//!   root, `src/a.rs` and `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b` (`src/main.rs` and
//!   `src/bin/` are not part of the library and are skipped).
//! - The source is read with comments and string, byte-string, raw-string and char literals
//!   blanked ([`blank`]), so only code counts.
//! - Every path in the code is read, `use` groups included (`use crate::{a::X, b}`,
//!   `use super::{y, z::W}` count each member; [`path_leaves`]), and placed in a module:
//!   - `crate::x::y::Z` goes to the longest module path that exists (`x::y` if it is a
//!     module, else `x`). If `x` is no module, it is a name the crate root imports or
//!     re-exports (`pub use a::b::Z;` puts `crate::Z` in `a::b`; a root import of another
//!     crate's item, like `pub use other::Clock;`, is no edge). A name it cannot place panics
//!     with a clear message, so a check built on it cannot go quietly blind.
//!   - `self::…` and `super::…` resolve the same way from the module the code is in
//!     (`super::y` from `a::b` is `a::y` if that module exists, else `a`; `super` from a
//!     top-level module is the crate root, as above).
//!   - A path without an anchor counts when its first name is a child module of the module it
//!     is in (`pub use inbound::Processed;` in `exchange/mod.rs` is an edge `exchange ->
//!     exchange::inbound`), or a name a `use` of this module bound to one of the crate's
//!     modules (`use crate::app::customs as uc;` then `uc::run()` is an edge to
//!     `app::customs`). Other such paths are other crates, `std`, types or locals: no edge.
//!   - `mod x;` declarations are not edges (a parent declaring its child is not an import),
//!     and neither is a visibility restriction `pub(in crate::a)`.
//! - The crate root is not in the graph: its imports and re-exports are the facade.
//!   An inline `mod x { … }` of the root is a module of its own (`x`); one inside another
//!   file belongs to that file (its `super::` is resolved from the inline module, so the
//!   usual `mod tests { use super::*; }` is the file reaching itself, which is dropped).
//! - Self-edges are dropped.
//!
//! [`module_graph`] gives the file-level graph, [`collapse`] a coarser view (depth 1: top-level
//! modules only), [`find_cycle`] a cycle if there is one, and [`Analysis::explain`] the
//! references (file, line, path) behind each step of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → the modules it refers to. Modules are named by their path without `crate::`
/// (`a`, `a::b`); every module is a key, also one that refers to nothing.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// One reference that makes an edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The module the reference is in.
    pub from: String,
    /// The module it refers to.
    pub to: String,
    /// The file it is in.
    pub file: PathBuf,
    /// Its line (1-based).
    pub line: usize,
    /// The path as written (a `use` group member with its prefix), e.g. `super::y::W`.
    pub reference: String,
}

/// A crate's modules and every reference between two of them.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Every module (the graph's nodes), the crate root excluded.
    pub modules: BTreeSet<String>,
    /// Every reference from one module to another, in file order.
    pub edges: Vec<Edge>,
}

impl Analysis {
    /// The file-level graph: module → the modules it refers to.
    pub fn graph(&self) -> Graph {
        let mut graph: Graph = self.modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
        for e in &self.edges {
            graph.entry(e.from.clone()).or_default().insert(e.to.clone());
        }
        graph
    }

    /// For each step `a -> b` of `path` (as [`find_cycle`] returns it), the references that
    /// make it, one per line: `a -> b: file:line  reference`. With `depth`, module names are
    /// read as [`collapse`] makes them.
    pub fn explain(&self, path: &[String], depth: Option<usize>) -> String {
        let name = |m: &str| depth.map_or_else(|| m.to_owned(), |d| truncate(m, d));
        let mut out = String::new();
        for step in path.windows(2) {
            for e in self.edges.iter().filter(|e| name(&e.from) == step[0] && name(&e.to) == step[1]) {
                out.push_str(&format!(
                    "{} -> {}: {}:{}  {}\n",
                    step[0],
                    step[1],
                    e.file.display(),
                    e.line,
                    e.reference
                ));
            }
        }
        out
    }
}

/// The file-level module graph of the crate whose sources are in `src` (see the crate docs).
///
/// # Panics
/// If `src/lib.rs` is missing, a file cannot be read, or a `crate::` name cannot be placed.
pub fn module_graph(src: &Path) -> Graph {
    analyse(src).graph()
}

/// The modules of the crate in `src` and the references between them (see the crate docs).
///
/// # Panics
/// If `src/lib.rs` is missing, a file cannot be read, or a `crate::` name cannot be placed.
pub fn analyse(src: &Path) -> Analysis {
    let mut files = Vec::new();
    collect_files(src, src, &mut files);
    let mut seen = BTreeSet::new();
    for f in &files {
        assert!(
            seen.insert(f.module.clone()),
            "module {} is defined twice (a.rs and a/mod.rs?)",
            f.module.join("::")
        );
    }
    assert!(seen.contains(&Vec::new()), "{}: no lib.rs", src.display());

    // Every scope (a file, an inline module) with the module path its `self` means and the
    // graph node its references count for.
    let mut scopes = Vec::new();
    let mut modules: BTreeMap<Vec<String>, String> = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let mut found = Vec::new();
        split_scopes(&file.code, file.module.clone(), &mut found);
        for (path, code) in found {
            let node = if file.module.is_empty() {
                path.first().cloned().unwrap_or_default()
            } else {
                file.module.join("::")
            };
            if !path.is_empty() {
                modules.insert(path.clone(), node.clone());
            }
            scopes.push(Scope { file: index, path, node, code });
        }
    }

    // The crate root's names: what its `use` (and `pub use`) statements bring in.
    let mut root_names: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for scope in scopes.iter().filter(|s| s.path.is_empty()) {
        for leaf in use_leaves(&scope.code) {
            let mut segments = leaf.segments.as_slice();
            while let Some(rest) = segments
                .strip_prefix(&["crate".to_owned()])
                .or_else(|| segments.strip_prefix(&["self".to_owned()]))
            {
                segments = rest;
            }
            let Some(bound) = binding(&leaf) else { continue };
            let target = place(&modules, &[], segments).map(|(_, used)| segments[..used].to_vec());
            root_names.insert(bound, target);
        }
    }

    let resolver = Resolver { modules: &modules, root_names: &root_names };
    let mut analysis = Analysis { modules: modules.values().cloned().collect(), edges: Vec::new() };
    for scope in scopes.iter().filter(|s| !s.node.is_empty()) {
        let file = &files[scope.file];
        let leaves = path_leaves(&scope.code);
        // Names this scope's `use`s bind to one of the crate's modules.
        let mut bindings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for leaf in &leaves {
            if let (Some((Some(module), true)), Some(name)) =
                (resolver.anchored(scope, file, leaf), binding(leaf))
            {
                bindings.insert(name, module);
            }
        }
        for leaf in &leaves {
            let target = match resolver.anchored(scope, file, leaf) {
                Some((module, _)) => module.map(|m| modules[&m].clone()),
                None => resolver.bare(scope, &bindings, leaf),
            };
            if let Some(to) = target.filter(|to| *to != scope.node) {
                analysis.edges.push(Edge {
                    from: scope.node.clone(),
                    to,
                    file: file.path.clone(),
                    line: line_of(&file.code, leaf.offset),
                    reference: leaf.segments.join("::"),
                });
            }
        }
    }
    analysis
}

/// The graph with module names cut to their first `depth` parts (depth 1: `app::customs ->
/// exchange::inbound` becomes `app -> exchange`), self-edges dropped.
///
/// # Panics
/// If `depth` is 0.
pub fn collapse(graph: &Graph, depth: usize) -> Graph {
    assert!(depth > 0, "collapse to depth 0 leaves nothing");
    let mut out = Graph::new();
    for (from, tos) in graph {
        let from = truncate(from, depth);
        let mut targets: BTreeSet<String> = tos.iter().map(|t| truncate(t, depth)).collect();
        targets.remove(&from);
        for t in &targets {
            out.entry(t.clone()).or_default();
        }
        out.entry(from).or_default().extend(targets);
    }
    out
}

/// `name` cut to its first `depth` parts: `truncate("a::b::c", 1)` is `a`.
pub fn truncate(name: &str, depth: usize) -> String {
    name.split("::").take(depth).collect::<Vec<_>>().join("::")
}

/// Whether `to` can be reached from `from` by following one or more edges.
pub fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = graph.get(from).into_iter().flatten().map(String::as_str).collect();
    while let Some(n) = todo.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n) {
            todo.extend(graph.get(n).into_iter().flatten().map(String::as_str));
        }
    }
    false
}

/// A cycle as `a -> … -> a` (the first module repeated at the end), if the graph has one.
pub fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
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

/// One `.rs` file of the crate.
struct File {
    path: PathBuf,
    module: Vec<String>,
    /// The blanked source.
    code: String,
}

/// A file, or an inline module of one: its code (the file's length, everything outside it
/// blanked), the module path `self` means there, and the graph node it counts for (empty
/// for the crate root).
struct Scope {
    file: usize,
    path: Vec<String>,
    node: String,
    code: String,
}

struct Resolver<'a> {
    modules: &'a BTreeMap<Vec<String>, String>,
    root_names: &'a BTreeMap<String, Option<Vec<String>>>,
}

impl Resolver<'_> {
    /// A path starting with `crate`, `self` or `super`: `None` if it does not; else the
    /// module path it goes to (`None` for another crate's item imported by the root) and
    /// whether the whole path names that module (`use super::y;`, `use crate::a::{self}`).
    fn anchored(&self, scope: &Scope, file: &File, leaf: &PathLeaf) -> Option<(Option<Vec<String>>, bool)> {
        let s = &leaf.segments;
        let (base, rest): (Vec<String>, &[String]) = match s[0].as_str() {
            "crate" => (Vec::new(), &s[1..]),
            "self" | "super" => {
                let mut base = scope.path.clone();
                let mut i = usize::from(s[0] == "self");
                while s.get(i).is_some_and(|x| x == "super") {
                    assert!(
                        base.pop().is_some(),
                        "{}:{}: `{}` goes above the crate root",
                        file.path.display(),
                        line_of(&file.code, leaf.offset),
                        s.join("::")
                    );
                    i += 1;
                }
                (base, &s[i..])
            }
            _ => return None,
        };
        if let Some((_, used)) = place(self.modules, &base, rest) {
            let mut module = base.clone();
            module.extend(rest[..used].iter().cloned());
            let whole = used == rest.len() || (used + 1 == rest.len() && rest[used] == "self");
            return Some((Some(module), whole));
        }
        // Nothing below the crate root: a name the root imports or re-exports.
        let name = rest.first().map_or("", String::as_str);
        if name == "self" || name.is_empty() {
            return Some((None, false));
        }
        match self.root_names.get(name) {
            Some(module) => Some((module.clone(), false)),
            None => panic!(
                "{}:{}: cannot place `{}` in {} (`{name}` is not a module, and the crate root does not import or re-export it)",
                file.path.display(),
                line_of(&file.code, leaf.offset),
                s.join("::"),
                if scope.path.is_empty() { "the crate root".to_owned() } else { scope.path.join("::") },
            ),
        }
    }

    /// A path with no anchor: a child module of the scope, or a name a `use` bound to a module.
    fn bare(
        &self,
        scope: &Scope,
        bindings: &BTreeMap<String, Vec<String>>,
        leaf: &PathLeaf,
    ) -> Option<String> {
        let s = &leaf.segments;
        let mut child = scope.path.clone();
        child.push(s[0].clone());
        let found = if self.modules.contains_key(&child) {
            place(self.modules, &scope.path, s)
        } else {
            place(self.modules, bindings.get(&s[0])?, &s[1..])
        };
        found.map(|(node, _)| node)
    }
}

/// The longest module path of `base + rest` that starts with `base` (itself a module unless
/// empty): its graph node and how many names of `rest` it took.
fn place(
    modules: &BTreeMap<Vec<String>, String>,
    base: &[String],
    rest: &[String],
) -> Option<(String, usize)> {
    let mut best = if base.is_empty() { None } else { Some((modules.get(base)?.clone(), 0)) };
    let mut path = base.to_vec();
    for (k, name) in rest.iter().enumerate() {
        path.push(name.clone());
        match modules.get(&path) {
            Some(node) => best = Some((node.clone(), k + 1)),
            None => break,
        }
    }
    best
}

/// The name a `use` leaf binds: its alias, else its last name (`a::{self}` binds `a`);
/// none for a glob.
fn binding(leaf: &PathLeaf) -> Option<String> {
    if let Some(alias) = &leaf.alias {
        return (alias != "_").then(|| alias.clone());
    }
    let mut names = leaf.segments.iter().rev();
    match names.next()?.as_str() {
        "*" => None,
        "self" => names.next().cloned(),
        last => Some(last.to_owned()),
    }
}

fn line_of(code: &str, offset: usize) -> usize {
    code[..offset].matches('\n').count() + 1
}

fn collect_files(src: &Path, dir: &Path, out: &mut Vec<File>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(src).unwrap();
        if path.is_dir() {
            if rel != Path::new("bin") {
                collect_files(src, &path, out);
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || rel == Path::new("main.rs") {
            continue;
        }
        let mut module: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        module.pop();
        if !(stem == "mod" || module.is_empty() && stem == "lib") {
            module.push(stem);
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push(File { code: blank(&text), path, module });
    }
}

/// `code` (blanked) split into its own scope (inline modules blanked out) and, recursively,
/// one per inline `mod name { … }`, each as long as `code` with what is outside it blanked.
fn split_scopes(code: &str, path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let mut own = code.as_bytes().to_vec();
    let mut inner = Vec::new();
    let mut from = 0;
    while let Some(m) = find_inline_mod(code, from) {
        let close = matching_brace(code, m.open);
        mask(&mut own, m.start, close + 1);
        inner.push((m.name, m.open, close));
        from = close + 1;
    }
    out.push((path.clone(), String::from_utf8(own).unwrap()));
    for (name, open, close) in inner {
        let mut body = code.as_bytes().to_vec();
        mask(&mut body, 0, open + 1);
        mask(&mut body, close, code.len());
        let mut p = path.clone();
        p.push(name);
        split_scopes(&String::from_utf8(body).unwrap(), p, out);
    }
}

/// Replaces `from..to` with spaces, line breaks kept.
fn mask(code: &mut [u8], from: usize, to: usize) {
    for c in &mut code[from..to] {
        if *c != b'\n' {
            *c = b' ';
        }
    }
}

struct InlineMod {
    /// Where `mod` starts.
    start: usize,
    /// Where its `{` is.
    open: usize,
    name: String,
}

/// The next `mod name {` (with any visibility) in blanked code, from `from` on.
fn find_inline_mod(code: &str, mut from: usize) -> Option<InlineMod> {
    let b = code.as_bytes();
    while let Some(i) = code[from..].find("mod") {
        let start = from + i;
        from = start + 3;
        let word =
            (start == 0 || !is_ident(b[start - 1])) && b.get(start + 3).is_some_and(u8::is_ascii_whitespace);
        if !word {
            continue;
        }
        let name_start = skip_ws(b, start + 3);
        let name_end = ident_end(b, name_start);
        let open = skip_ws(b, name_end);
        if name_end > name_start && b.get(open) == Some(&b'{') {
            return Some(InlineMod { start, open, name: code[name_start..name_end].to_owned() });
        }
    }
    None
}

/// Where the brace opened at `open` closes.
fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate().skip(open) {
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
    panic!("unbalanced braces after byte {open}");
}

/// One complete path in code: a `use` group member comes with its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathLeaf {
    /// The names, first to last: `crate::{a::X, b}` gives `[crate, a, X]` and `[crate, b]`;
    /// a glob ends in `*`, `a::{self}` in `self`.
    pub segments: Vec<String>,
    /// `as alias`, if it has one.
    pub alias: Option<String>,
    /// The byte offset where the whole path starts in the code.
    pub offset: usize,
}

/// Every path of two or more names (`a::b`, `crate::{a::X, b}`, `super::*`) in blanked code
/// (see [`blank`]), each `use` group member as a path of its own. A path restricting a
/// visibility, `pub(in crate::a)`, is not one.
pub fn path_leaves(code: &str) -> Vec<PathLeaf> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !(is_ident_start(b[i]) && (i == 0 || !is_ident(b[i - 1]))) {
            i += 1;
            continue;
        }
        let end = ident_end(b, i);
        let next = skip_ws(b, end);
        if !b[next..].starts_with(b"::") || after_path_separator(b, i) {
            i = end;
            continue;
        }
        let mut found = Vec::new();
        let after = parse_tree(code, i, &mut Vec::new(), &mut found);
        if !in_visibility(b, i) {
            out.extend(found.into_iter().map(|(segments, alias)| PathLeaf { segments, alias, offset: i }));
        }
        i = after.max(end);
    }
    out
}

/// The paths of every `use` statement in blanked code.
fn use_leaves(code: &str) -> Vec<PathLeaf> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("use") {
        let start = from + i;
        from = start + 3;
        if (start == 0 || !is_ident(b[start - 1])) && b.get(start + 3).is_some_and(u8::is_ascii_whitespace) {
            let mut found = Vec::new();
            let at = skip_ws(b, start + 3);
            from = parse_tree(code, at, &mut Vec::new(), &mut found).max(from);
            out.extend(found.into_iter().map(|(segments, alias)| PathLeaf { segments, alias, offset: at }));
        }
    }
    out
}

type Leaves = Vec<(Vec<String>, Option<String>)>;

/// Reads the path (tree) at `i` with the names in `prefix` before it; returns where it ends.
fn parse_tree(code: &str, i: usize, prefix: &mut Vec<String>, out: &mut Leaves) -> usize {
    let b = code.as_bytes();
    let i = skip_ws(b, i);
    match b.get(i) {
        Some(b'{') => {
            let mut i = i + 1;
            loop {
                i = skip_ws(b, i);
                match b.get(i) {
                    None => return i,
                    Some(b'}') => return i + 1,
                    Some(b',') => i += 1,
                    Some(_) => {
                        i = parse_tree(code, i, prefix, out).max(i + 1);
                        while i < b.len() && b[i] != b',' && b[i] != b'}' {
                            i += 1;
                        }
                    }
                }
            }
        }
        Some(b'*') => {
            let mut leaf = prefix.clone();
            leaf.push("*".to_owned());
            out.push((leaf, None));
            i + 1
        }
        Some(&c) if is_ident_start(c) => {
            let end = ident_end(b, i);
            prefix.push(code[i..end].to_owned());
            let next = skip_ws(b, end);
            let done = if b[next..].starts_with(b"::") {
                let after = skip_ws(b, next + 2);
                if b.get(after).is_some_and(|&c| c == b'{' || c == b'*' || is_ident_start(c)) {
                    parse_tree(code, after, prefix, out)
                } else {
                    // `Vec::<u8>::new` and the like: the path so far.
                    out.push((prefix.clone(), None));
                    after
                }
            } else {
                let mut alias = None;
                let mut done = end;
                if b[next..].starts_with(b"as") && b.get(next + 2).is_some_and(u8::is_ascii_whitespace) {
                    let a = skip_ws(b, next + 2);
                    let a_end = ident_end(b, a);
                    if a_end > a {
                        alias = Some(code[a..a_end].to_owned());
                        done = a_end;
                    }
                }
                out.push((prefix.clone(), alias));
                done
            };
            prefix.pop();
            done
        }
        _ => i,
    }
}

/// Whether the name at `i` follows a `::` (the middle of a path, read with its start).
fn after_path_separator(b: &[u8], i: usize) -> bool {
    let before = b[..i].trim_ascii_end();
    before.ends_with(b"::")
}

/// Whether the path at `i` follows `(in`, as in `pub(in crate::a)`.
fn in_visibility(b: &[u8], i: usize) -> bool {
    let before = b[..i].trim_ascii_end();
    before.strip_suffix(b"in").is_some_and(|rest| rest.trim_ascii_end().ends_with(b"("))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_ident(c)) {
        i += 1;
    }
    i
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The first name after each `crate::` in the code (not in comments or literals); for a group
/// `crate::{a::X, b}`, the first name of each member.
pub fn crate_refs(source: &str) -> Vec<String> {
    path_leaves(&blank(source))
        .into_iter()
        .filter(|leaf| leaf.segments.len() > 1 && leaf.segments[0] == "crate")
        .map(|mut leaf| leaf.segments.swap_remove(1))
        .collect()
}

/// The source with comments, string, byte-string, raw-string and char literals replaced by
/// spaces (line breaks kept, so lines and byte offsets stay), so only code is searched.
pub fn blank(source: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake crate: `src/` files written to a temporary directory, removed on drop.
    struct FakeCrate(PathBuf);

    impl FakeCrate {
        fn new(name: &str, files: &[(&str, &str)]) -> FakeCrate {
            let dir = std::env::temp_dir().join(format!("originlink-modgraph-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for (path, text) in files {
                let path = dir.join("src").join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            FakeCrate(dir)
        }

        fn src(&self) -> PathBuf {
            self.0.join("src")
        }
    }

    impl Drop for FakeCrate {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).to_owned()).or_default().insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    }

    #[test]
    fn the_cycle_finder_finds_cycles() {
        let cycle = find_cycle(&graph(&[
            ("sign", "verify"),
            ("verify", "stream"),
            ("stream", "sign"),
            ("x", "sign"),
        ]));
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

    #[test]
    fn paths_are_read_whole_with_their_groups() {
        let leaves = path_leaves(&blank(
            "use axum::{extract::State, Router};\nuse super::{y, z::{W, V as U}, self};\n\
             pub(in crate::a) fn f() { Vec::<u8>::new(); super::super::q::r(); }",
        ));
        let paths: Vec<String> = leaves.iter().map(|l| l.segments.join("::")).collect();
        assert_eq!(
            paths,
            [
                "axum::extract::State",
                "axum::Router",
                "super::y",
                "super::z::W",
                "super::z::V",
                "super::self",
                "Vec",
                "super::super::q::r"
            ]
        );
        assert_eq!(leaves[4].alias.as_deref(), Some("U"));
    }

    #[test]
    fn nested_modules_resolve_super_self_and_children() {
        let krate = FakeCrate::new(
            "nested",
            &[
                (
                    "lib.rs",
                    "pub mod a;\npub mod b;\nmod m;\nuse std::sync::Arc;\npub use a::inner::Thing;\n\
                     pub mod inline { pub use crate::b::B; }\n",
                ),
                // A parent declaring its children is no edge; re-exporting from one is.
                ("a/mod.rs", "pub mod inner;\nmod y;\npub use y::Why;\npub struct A;\n"),
                // `super::z::W`: no module `a::z`, so an item of `a`.
                (
                    "a/inner.rs",
                    "use super::A;\nuse super::{y, z::W};\npub struct Thing;\nfn f() { y::g() }\n",
                ),
                (
                    "a/y.rs",
                    "use crate::b::{self, B};\npub struct Why;\nfn f() { b::g(); }\n\
                     #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::A;\n}\n",
                ),
                ("b.rs", "pub struct B;\npub fn g() { crate::Thing::new(); }\n"),
                // A name bound by `use … as`, the root's import of another crate, a visibility.
                (
                    "m.rs",
                    "use crate::a::inner as deep;\nuse super::Arc;\nfn f() { deep::x(); }\n\
                     pub(in crate::a) fn z() {}\n",
                ),
            ],
        );
        let analysis = analyse(&krate.src());
        let g = analysis.graph();
        let expected = graph(&[
            ("a", "a::y"),
            ("a::inner", "a"),
            ("a::inner", "a::y"),
            ("a::y", "b"),
            ("a::y", "a"),
            ("b", "a::inner"),
            ("m", "a::inner"),
            ("inline", "b"),
        ]);
        assert_eq!(g, expected, "{g:#?}");
        // The `tests` module's `super::*` is `a::y` itself, `super::super::A` is `a`.
        let tests_edge = analysis.edges.iter().find(|e| e.from == "a::y" && e.to == "a").unwrap();
        assert_eq!((tests_edge.line, tests_edge.reference.as_str()), (7, "super::super::A"));

        let cycle = find_cycle(&g).unwrap();
        assert_eq!(cycle, ["a", "a::y", "a"]);
        assert!(analysis.explain(&cycle, None).contains("a::y -> a: "));

        let top = collapse(&g, 1);
        assert_eq!(top, graph(&[("a", "b"), ("b", "a"), ("m", "a"), ("inline", "b")]));
        let cycle = find_cycle(&top).unwrap();
        assert_eq!(cycle, ["a", "b", "a"]);
        let why = analysis.explain(&cycle, Some(1));
        assert!(why.contains("a -> b: ") && why.contains("crate::b::self"), "{why}");
        assert!(why.contains("b -> a: ") && why.contains("b.rs:2  crate::Thing::new"), "{why}");
        assert!(reaches(&top, "m", "b") && !reaches(&top, "inline", "m"));
    }

    #[test]
    #[should_panic(expected = "cannot place `crate::nothing::X`")]
    fn a_name_it_cannot_place_fails() {
        let krate =
            FakeCrate::new("unplaced", &[("lib.rs", "pub mod a;\n"), ("a.rs", "use crate::nothing::X;\n")]);
        module_graph(&krate.src());
    }

    #[test]
    #[should_panic(expected = "cannot place `super::Missing`")]
    fn super_from_a_top_level_module_is_the_crate_root() {
        let krate =
            FakeCrate::new("root-super", &[("lib.rs", "pub mod a;\n"), ("a.rs", "use super::Missing;\n")]);
        module_graph(&krate.src());
    }
}
