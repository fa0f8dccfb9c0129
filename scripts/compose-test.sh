#!/usr/bin/env bash
# `make compose-test`: the docker-compose cluster end to end. Builds the images, brings the
# cluster up, creates an RF 3 topic (min.insync.replicas 2), produces 100,000 unique values
# with acks=all, `docker kill`s the container of partition 0's leader halfway through while the
# producer keeps going, then reads the topic back and checks that every acknowledged value is
# there exactly once. The cluster is removed however the test ends.
# Without a Docker engine it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "compose-test skipped: no Docker engine answers on this machine" >&2
    exit 0
fi
compose="${COMPOSE:-docker-compose}"
records="${COMPOSE_TEST_RECORDS:-100000}"
half=$((records / 2))
target_dir="${CARGO_TARGET_DIR:-target}"
strom="$target_dir/${STROM_IMAGE_PROFILE:-release}/strom"
work=$(mktemp -d)
cleanup() {
    local rc=$?
    if ((rc != 0)); then
        echo "compose-test failed; last logs:" >&2
        $compose logs --tail=30 >&2 || true
    fi
    $compose down --volumes --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

scripts/images.sh
$compose down --volumes --remove-orphans >/dev/null 2>&1 || true
$compose up -d --no-build
scripts/compose-wait.sh

export STROM_BROKERS=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
"$strom" cluster describe
"$strom" topic create compose-test --partitions 3 --replication-factor 3 \
    --topic-config min.insync.replicas=2

leader=$("$strom" topic describe compose-test -o json | tr -d ' \n' |
    sed -E 's/.*"partition":0,"leader":([0-9]+).*/\1/')
[[ "$leader" =~ ^[0-9]+$ ]] || { echo "cannot find partition 0's leader" >&2; exit 1; }
echo "partition 0 is led by broker $leader; it is killed after $half records" >&2

# The producer reads the values from a pipe; the kill happens while it is connected, between
# the two halves, and it must carry on through the leader change.
{
    seq 1 "$half" | sed 's/^/v-/'
    sleep 2
    docker kill "$($compose ps -q "broker-$leader")" >/dev/null
    echo "killed broker-$leader" >&2
    sleep 1
    seq $((half + 1)) "$records" | sed 's/^/v-/'
} | "$strom" produce compose-test --acks all -o json --timeout 60s >"$work/produced.json"
acked=$(tr -d ' \n' <"$work/produced.json" | sed -E 's/.*"records":([0-9]+).*/\1/')
echo "acknowledged: $acked of $records" >&2
[[ "$acked" == "$records" ]] || { echo "not every record was acknowledged" >&2; exit 1; }

"$strom" consume compose-test --from beginning --num "$records" --idle 15s >"$work/consumed.txt"
seq 1 "$records" | sed 's/^/v-/' | sort >"$work/expected.txt"
sort "$work/consumed.txt" >"$work/consumed.sorted"
duplicates=$(uniq -d "$work/consumed.sorted" | wc -l)
missing=$(comm -23 "$work/expected.txt" "$work/consumed.sorted" | wc -l)
unexpected=$(comm -13 "$work/expected.txt" "$work/consumed.sorted" | wc -l)
echo "consumed $(wc -l <"$work/consumed.txt"): missing $missing, duplicated $duplicates, unexpected $unexpected" >&2
((missing == 0 && duplicates == 0 && unexpected == 0)) || exit 1
"$strom" topic describe compose-test

# Prometheus metrics from inside the cluster: the surviving brokers took the records in, and
# the controllers see every partition under-replicated while the killed broker is down.
prefix="${STROM_SUBNET_PREFIX:-172.28.28}"
metric_sum() { # metric_sum SERIES HOST...
    local series=$1
    shift
    python3 - "$series" "$@" <<'PY'
import sys, urllib.request
series, hosts, total = sys.argv[1], sys.argv[2:], 0.0
for host in hosts:
    text = urllib.request.urlopen(f"http://{host}/metrics", timeout=5).read().decode()
    total += sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series + " "))
print(int(total))
PY
}
survivors=()
for id in 1 2 3; do
    [[ "$id" == "$leader" ]] || survivors+=("$prefix.2$id:9102")
done
bytes_in=$(metric_sum 'strom_broker_bytes_in_total{topic="compose-test"}' "${survivors[@]}")
under=$(metric_sum strom_controller_under_replicated_partitions "$prefix.11:9103" "$prefix.12:9103")
echo "metrics: bytes in on the surviving brokers $bytes_in, under-replicated partitions $under" >&2
((bytes_in > 0 && under == 3)) || { echo "metrics do not show the produce and the lost broker" >&2; exit 1; }
echo "compose-test passed" >&2
