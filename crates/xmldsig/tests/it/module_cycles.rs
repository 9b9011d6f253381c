//! The crate's modules import each other one way only: no module reaches itself again through
//! `crate::` paths (issue 12 broke the `sign` / `stream` / `verify` loop; this keeps it broken).
//!
//! The graph comes from `originlink_modgraph` (its crate docs say how): it reads `src/`, drops
//! comments and literals, and places every `crate::X` (including `use crate::{X, Y::…}`
//! groups) in a module: `X` is a module (a file in `src/`, or an inline `mod` of `lib.rs`,
//! which counts as a module of its own) or an item the crate root re-exports with
//! `pub use module::…`, which counts as that module. The crate root's own re-exports are the
//! facade, not an edge. A name it cannot place fails the test, so the check cannot go quietly
//! blind.

use std::path::Path;

use originlink_modgraph::{analyse, find_cycle};

#[test]
fn module_imports_have_no_cycles() {
    let analysis = analyse(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let graph = analysis.graph();
    // The parse sees what it must: the one-way edges the layout relies on.
    for (from, to) in
        [("verify", "stream"), ("verify", "signature"), ("stream", "signature"), ("sign", "xml")]
    {
        assert!(graph[from].contains(to), "expected {from} -> {to} in {graph:#?}");
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module import cycle: {}\n{}\n{graph:#?}", cycle.join(" -> "), analysis.explain(&cycle, None));
    }
}
