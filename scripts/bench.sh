#!/usr/bin/env bash
# Runs one benchmark target of the workspace.
#   scripts/bench.sh NAME [PROFILE] [-- ARGS...]   PROFILE: release (default) or dev
# Every target of the workspace is built first, with the same selection `make test` and
# `make lint` use: building a single bench target resolves dependency features differently,
# and that alone compiles RocksDB once more. The bench executable then runs directly, with
# the service binaries it starts next to it in target/PROFILE.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/bench.sh NAME [PROFILE] [-- ARGS...]}"
shift
profile="release"
if [[ $# -gt 0 && "$1" != "--" ]]; then
    profile="$1"
    shift
fi
[[ "${1:-}" == "--" ]] && shift

executable=$(cargo build --workspace --all-targets --profile "$profile" \
        --message-format=json-render-diagnostics |
    grep '"reason":"compiler-artifact"' |
    grep '"kind":\["bench"\]' |
    grep "\"name\":\"$name\"" |
    sed -E 's/.*"executable":"([^"]+)".*/\1/' || true)
if [[ -z "$executable" ]]; then
    echo "no bench target named $name" >&2
    exit 2
fi
exec "$executable" --bench "$@"
