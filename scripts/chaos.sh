#!/usr/bin/env bash
# Runs the chaos scenarios (crates/integration-tests/tests/chaos) CHAOS_PASSES times in a row
# (default 5) and summarises them: violations per scenario and the median unavailability
# windows. Each pass writes every scenario's history and report under CHAOS_OUT/pass-N.
#   scripts/chaos.sh                 every scenario
#   scripts/chaos.sh kill_the_leader only the scenarios whose name contains this
# Needs etcd (Debian etcd-server); every scenario starts and stops its own processes.
set -euo pipefail
cd "$(dirname "$0")/.."
passes="${CHAOS_PASSES:-5}"
filter="${1:-}"
target_dir="${CARGO_TARGET_DIR:-target}"
out="${CHAOS_OUT:-$target_dir/chaos/$(date -u +%Y%m%dT%H%M%SZ)}"
# One pass of every scenario takes about ten minutes; a hung pass is stopped.
pass_limit="${CHAOS_PASS_LIMIT:-30m}"

cargo build --workspace --all-targets
mkdir -p "$out"
for pass in $(seq 1 "$passes"); do
    echo "chaos pass $pass of $passes -> $out/pass-$pass"
    set +e
    STROM_CHAOS_OUT="$out/pass-$pass" STROM_REQUIRE_ETCD=1 \
        timeout --signal=INT --kill-after=30s "$pass_limit" \
        cargo test --workspace -- --include-ignored --test-threads=1 --nocapture \
        "scenario::$filter" 2>&1 | tee "$out/pass-$pass.log" | grep -E '^(test |  |[a-z_]+: attempted)'
    status="${PIPESTATUS[0]}"
    set -e
    if [[ "$status" != 0 ]]; then
        echo "chaos pass $pass failed (exit $status); see $out/pass-$pass.log" >&2
        python3 scripts/chaos-summary.py "$out" || true
        exit 1
    fi
done
python3 scripts/chaos-summary.py "$out"
