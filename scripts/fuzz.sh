#!/usr/bin/env bash
# Runs every fuzz target for a short fixed time (FUZZ_SECONDS, default 20) from its seed
# corpus, with cargo-fuzz on the nightly toolchain. New inputs go to a scratch folder, so the
# committed corpus stays as it is; a crash, a timeout (10 s for one input) or an out-of-memory
# (2 GiB) fails the run and leaves the input in fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh                # every target
#   bash scripts/fuzz.sh xml_bounds     # one
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-20}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz needs the nightly toolchain, which this machine lacks; install it with"
  echo "      rustup toolchain install nightly --profile minimal   and run again"
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# One build for all targets (no sanitizer: the code under test forbids `unsafe`, and the
# sanitizer build would double the time CI spends here).
cargo +nightly fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "== fuzz $t (${secs}s)"
  cargo +nightly fuzz run -s none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: seed corpus|.*(ERROR|Crash|crash|panicked|deadly|timeout|leak).*)' || true
  # grep's status is not the fuzzer's: check the fuzzer's own.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: $t failed (see fuzz/artifacts/$t/)"; exit 1; }
done
echo "fuzz: every target ran ${secs}s without a finding"
