#!/usr/bin/env bash
# README's run command: `originlink demo`, a whole region on this machine. It writes keys, a
# signed trust list and SQLite databases under ./demo-data/, starts a gateway and three country
# nodes (KH, TH, VN) as HTTPS services with mutual TLS on loopback, issues and exchanges
# certificates across the pairs (one replaced, one revoked), prints a walk-through with tokens
# and curl commands, and runs until Ctrl-C. Extra arguments go to `originlink demo`
# (e.g. `--quick` to check the scenario and exit).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --locked
exec target/release/originlink demo "$@"
