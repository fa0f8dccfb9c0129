#!/usr/bin/env bash
# `make bench`: the standard benchmark set (`strom bench suite`) against a local cluster, as
# one table.
#   scripts/bench-cluster.sh [SUITE ARGS...]     e.g. --scale quick, -o json
# With STROM_BROKERS set, it runs against that cluster. Otherwise it builds the release
# binaries, starts `strom dev --brokers 3` on free ports with a temporary data directory,
# runs the suite and stops the cluster (and removes its data) however the suite ends.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target}"
# The same selection as `make release`, so RocksDB is not compiled once more.
cargo build --workspace --all-targets --release --quiet
strom="$target_dir/release/strom"

if [[ -n "${STROM_BROKERS:-}" ]]; then
    exec "$strom" bench suite "$@"
fi

data_dir=$(mktemp -d)
ready_file="$data_dir/ready.json"
dev_pid=""
cleanup() {
    if [[ -n "$dev_pid" ]] && kill -0 "$dev_pid" 2>/dev/null; then
        kill -INT "$dev_pid"
        wait "$dev_pid" || true
    fi
    rm -rf "$data_dir"
}
trap cleanup EXIT

"$strom" dev --brokers 3 --port 0 --data-dir "$data_dir/cluster" --log-level warn -o json \
    >"$ready_file" &
dev_pid=$!
for _ in $(seq 1 300); do
    [[ -s "$ready_file" ]] && break
    kill -0 "$dev_pid" 2>/dev/null || { echo "strom dev exited before it was ready" >&2; exit 1; }
    sleep 0.1
done
[[ -s "$ready_file" ]] || { echo "strom dev was not ready after 30s" >&2; exit 1; }
bootstrap=$(sed -E 's/.*"bootstrap":"([^"]+)".*/\1/' "$ready_file")
echo "dev cluster (3 brokers) ready: $bootstrap" >&2
STROM_BROKERS="$bootstrap" "$strom" bench suite "$@"
