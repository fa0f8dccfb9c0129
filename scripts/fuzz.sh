#!/usr/bin/env bash
# Builds or runs the cargo-fuzz targets under fuzz/.
#   scripts/fuzz.sh build          build every target
#   scripts/fuzz.sh run [TARGET]   run each target (or one) for FUZZ_SECONDS seconds (default 60)
# libFuzzer needs unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them for this build only. Build output goes to FUZZ_TARGET_DIR, away from the main build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-build}"
only="${2:-}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/strom/fuzz-target}"
seconds="${FUZZ_SECONDS:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    CARGO_TARGET_DIR="$HOME/.cache/strom/tools-target" cargo install --locked cargo-fuzz
fi

targets=$(cd fuzz && cargo fuzz list)
[[ -n "$only" ]] && targets="$only"
case "$mode" in
    build)
        for target in $targets; do
            cargo fuzz build "$target"
        done
        ;;
    run)
        for target in $targets; do
            echo "fuzzing $target for ${seconds}s"
            cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
        done
        ;;
    *)
        echo "usage: $0 build|run [TARGET]" >&2
        exit 2
        ;;
esac
