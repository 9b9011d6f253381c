#!/usr/bin/env bash
# README's run command: a sample ATIGA Form D from Cambodia to Thailand, written as UBL 2.4
# XML and read back by the validator.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --locked
bin=target/release/originlink
"$bin" example --agreement ATIGA --format xml --from KH --to TH | tee /dev/stderr | "$bin" validate -
