#!/usr/bin/env bash
# The test command: installs what the tests need (idempotently), then runs every test.
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== fmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast
echo "== fuzz: every target for a short fixed time (FUZZ_SECONDS, default 20; docs/security.md)"
bash scripts/fuzz.sh
