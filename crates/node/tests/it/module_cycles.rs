//! The node's modules import each other one way only: `http` over `app` over `exchange`, with
//! `issue`, `config`, `audit`, `metrics` and `start` below (the layout in `src/lib.rs`).
//!
//! How it is checked: `originlink_modgraph` (its crate docs say it in full) reads every `.rs`
//! file under `src/`, each a module named by its path (`src/app/mod.rs` is `app`,
//! `src/app/customs.rs` is `app::customs`; `src/lib.rs`, the crate root, is the facade and not
//! in the graph). With comments and literals blanked, every path in the code counts, `use`
//! groups member by member: `crate::x::y::Z` goes to the longest module path that exists
//! (`x::y`, else `x`, else the module the crate root re-exports `Z` from), `super::…` and
//! `self::…` are resolved from the file's own module, and a path starting with a child
//! module's name (`pub use error::…` in `app/mod.rs`) or with a name a `use` bound to a module
//! (`use crate::app::customs as uc;` then `uc::…`) goes there. `mod x;` declarations are not
//! edges; self-edges are dropped. A `crate::` name it cannot place panics, so the check cannot
//! go quietly blind.
//!
//! The test looks at two views: the file-level graph (`app::customs -> exchange`) and the same
//! collapsed to the top-level modules (depth 1: `app -> exchange`). Neither may have a cycle;
//! a failure names the cycle and, for each step, the file, line and path that make it.

use std::path::Path;

use originlink_modgraph::{Analysis, Graph, analyse, collapse, find_cycle, reaches};

fn no_cycle(analysis: &Analysis, graph: &Graph, depth: Option<usize>) {
    if let Some(cycle) = find_cycle(graph) {
        panic!(
            "module import cycle ({}): {}\n{}\n{graph:#?}",
            depth.map_or_else(|| "file level".to_owned(), |d| format!("depth {d}")),
            cycle.join(" -> "),
            analysis.explain(&cycle, depth)
        );
    }
}

#[test]
fn node_modules_have_no_cycles() {
    let analysis = analyse(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let files = analysis.graph();
    let top = collapse(&files, 1);
    no_cycle(&analysis, &files, None);
    no_cycle(&analysis, &top, Some(1));
    // The parse sees what it must: the one-way edges the layout relies on.
    for (from, to) in [("http", "app"), ("app", "exchange"), ("exchange", "metrics"), ("http", "exchange")] {
        assert!(top[from].contains(to), "expected {from} -> {to} in {top:#?}");
    }
    for (from, to) in [("exchange", "app"), ("exchange", "http"), ("app", "http")] {
        assert!(!reaches(&top, from, to), "{from} must not reach {to}: {top:#?}");
    }
}
