#!/usr/bin/env bash
# Measures the buffered sequential write bandwidth of the disk under a directory with fio, in the
# same shape as the storage append benchmark (16 KiB writes, 256 MiB files, no fsync), so the two
# figures can be compared. Usage: scripts/disk-baseline.sh [DIR]   (default: a temp dir in /var/tmp)
set -euo pipefail
command -v fio >/dev/null || { echo "fio is not installed (apt-get install fio)" >&2; exit 1; }
dir="${1:-}"
cleanup=""
if [[ -z "$dir" ]]; then
    dir=$(mktemp -d /var/tmp/strom-fio.XXXXXX)
    cleanup="$dir"
fi
trap '[[ -n "$cleanup" ]] && rm -rf "$cleanup"' EXIT
for run in 1 2 3 4 5; do
    fio --name=seqwrite --directory="$dir" --rw=write --bs=16k --size=256m --ioengine=psync \
        --direct=0 --end_fsync=0 --create_on_open=1 --unlink=1 --output-format=json \
        | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["jobs"][0]["write"]["bw_bytes"])'
done | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "fio buffered sequential write, 16 KiB blocks: median %.0f MB/s over %d runs\n", m/1e6, NR}'
