#!/usr/bin/env bash
# `make images`: builds the strom and etcd images for docker-compose.yml.
#   strom:local       deploy/docker/Dockerfile: the binaries of every role and the CLI, release
#                     builds by default (STROM_IMAGE_PROFILE=debug reuses the test build)
#   strom/etcd:local  deploy/docker/etcd/Dockerfile: etcd from Debian's etcd-server
# Makes the debian:bookworm-slim base first when the engine lacks it (scripts/base-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    echo "no Docker engine answers: start one, or skip the images" >&2
    exit 1
fi
scripts/base-image.sh debian:bookworm-slim

target_dir="${CARGO_TARGET_DIR:-target}"
profile="${STROM_IMAGE_PROFILE:-release}"
# The same selections as `make release` and `make build`, so RocksDB is not compiled once more.
case "$profile" in
    release) cargo build --workspace --all-targets --release --quiet ;;
    debug) cargo build --workspace --all-targets --quiet ;;
    *) echo "STROM_IMAGE_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/dist"
for binary in strom-broker strom-controller strom-coordinator strom; do
    cp "$target_dir/$profile/$binary" "$context/dist/"
done
strip --strip-debug "$context"/dist/* 2>/dev/null || true
cp deploy/docker/Dockerfile "$context/Dockerfile"
docker build --quiet --tag strom:local "$context" >/dev/null
docker build --quiet --tag strom/etcd:local deploy/docker/etcd >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^(strom|strom/etcd|debian):' >&2
