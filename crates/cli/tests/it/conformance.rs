//! The conformance client of issue 13: `tests/conformance/client.py`, a peer written in Python
//! from `docs/protocol.md` alone (jwcrypto for the JWS, the standard library for pinned mutual
//! TLS and its own HTTPS endpoint), plays KH's node against a real gateway and TH node. It
//! exchanges every message type both ways and checks every documented refusal; when the spec
//! and the implementation disagree, one of its checks fails and names the spec section.

use std::process::Command;

use crate::exchange::{gateway, node, rt, two};
use crate::support::{repo, tempdir};

#[test]
fn a_peer_written_from_the_spec_exchanges_every_message_type() {
    let dir = tempdir("conformance");
    let rt = rt();
    let mut opts = two(false);
    opts.countries = vec!["KH".into(), "TH".into(), "VN".into()];
    let region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");
    // KH's node is the client under test: only the gateway and TH run.
    let _g = gateway(&region);
    let _th = node(&region, "TH");
    let out = Command::new("python3")
        .arg(repo().join("tests/conformance/client.py"))
        .arg(&region.dir)
        .arg(env!("CARGO_BIN_EXE_originlink"))
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the conformance client failed:\n{text}");
    assert!(text.lines().last().is_some_and(|l| l.ends_with(" 0 failed")), "{text}");
}
