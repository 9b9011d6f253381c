//! The web console in Debian's real Chromium, against an in-process KH node on SQLite: an
//! exporter's application by form with a bill of materials, an officer's review, an
//! administrator's users and invitations, and the security promises (CSRF, cookies per node,
//! tenants, the pause after wrong passwords, escaping, where signing in leads). Every main
//! page is checked with axe-core and photographed into `target/console-shots/`
//! (`CONSOLE_AXE_ALL=1` also prints minor and moderate violations on stderr).
//!
//! One node per test, browsers reused within a test, and set-up that is not under test done
//! through the node's use cases. One test ([`region`]) runs a whole KH–TH region in process
//! instead, so that a certificate really travels and its status comes back.

mod admin;
mod exporter;
mod officer;
mod operator;
mod public;
mod region;
mod security;
mod support;
