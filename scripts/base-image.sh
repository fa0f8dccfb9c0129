#!/usr/bin/env bash
# Makes the Debian base image the Dockerfiles name, when the engine does not have it yet, from
# Debian's own packages rather than a registry:
#   scripts/base-image.sh [TAG]        default TAG: debian:bookworm-slim
# debootstrap --variant=minbase builds a root file system (about a minute), which is trimmed
# and imported under TAG. Where a registry is reachable, `docker pull TAG` does the same job.
set -euo pipefail
tag="${1:-debian:bookworm-slim}"
suite="bookworm"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends debootstrap
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "building $tag with debootstrap ($suite from $mirror)" >&2
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
echo "imported $tag" >&2
