#!/usr/bin/env bash
# Waits until every service of docker-compose.yml reports healthy (at most COMPOSE_WAIT
# seconds, default 120), printing the ones still starting; exits 1 on timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
compose="${COMPOSE:-docker-compose}"
limit="${COMPOSE_WAIT:-120}"
deadline=$((SECONDS + limit))
services=$($compose config --services)
while true; do
    waiting=()
    for service in $services; do
        id=$($compose ps -q "$service")
        status=$([[ -n "$id" ]] && docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" || echo missing)
        [[ "$status" == "healthy" ]] || waiting+=("$service=$status")
    done
    if ((${#waiting[@]} == 0)); then
        echo "all services healthy" >&2
        exit 0
    fi
    if ((SECONDS >= deadline)); then
        echo "not healthy after ${limit}s: ${waiting[*]}" >&2
        exit 1
    fi
    sleep 2
done
