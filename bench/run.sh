#!/usr/bin/env bash
# The certctl benchmark end to end (docs/benchmarks.md). Not part of CI: with
# a million certificates it runs for most of an hour.
#
#   bench/run.sh [COUNT]            default COUNT=1000000
#   bench/run.sh issue              the issuance benchmark (SignCertificate over gRPC)
#
# Environment:
#   BENCH_BACKENDS      "sqlite postgres" (default) or one of them
#   BENCH_RUNS          measured runs per scenario (default 3; the report takes the median)
#   BENCH_DURATION      seconds per run (default 20)
#   BENCH_TIME_LIMIT    seconds before the whole run stops itself (default 10800)
#   BENCH_WORK_DIR      where data, logs and results go (default: a new /tmp/certctl-bench.*)
#   CERTCTL_BENCH_DATABASE_URL  use this PostgreSQL instead of a throwaway cluster on
#                       port 15434 (its `inventory` schema is DROPPED and reseeded; the
#                       issuance benchmark creates and drops databases certctl_issue_*)
#   BENCH_BASELINE_BIN  issue only: another certctl binary (for example the commit before
#                       a change) measured in the same run, as variant `baseline`
set -euo pipefail

# Stop by itself: re-run under timeout, which signals the whole process group.
if [ -z "${BENCH_UNDER_TIMEOUT:-}" ]; then
    BENCH_UNDER_TIMEOUT=1 exec timeout -k 30 "${BENCH_TIME_LIMIT:-10800}" "$0" "$@"
fi

SUITE=inventory
if [ "${1:-}" = issue ]; then
    SUITE=issue
    shift
fi
COUNT=${1:-1000000}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-20}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
PORT=18181
PG_PORT=15434
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORK_DIR:-$(mktemp -d /tmp/certctl-bench.XXXXXX)}
mkdir -p "$WORK"
RESULTS=$WORK/results.jsonl
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
URL=http://127.0.0.1:$PORT
SERVER_PID=
PG_DIR=

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$WORK/run.log" >&2; }

cleanup() {
    stop_server
    if [ -n "$PG_DIR" ]; then
        runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

start_server() { # backend-args...
    if curl -s -o /dev/null "$URL/readyz"; then
        log "something already listens on port $PORT; stop it first"
        exit 1
    fi
    "${SERVER_BIN:-$BIN/certctl}" server --listen "127.0.0.1:$PORT" --web-dir /nonexistent "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 120); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; then
            return
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { log "the server exited; see $WORK/server.log"; exit 1; }
        sleep 0.5
    done
    log "the server did not become ready within 60 s"
    exit 1
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

load() { # label rate duration path [extra args]
    local label=$1 rate=$2 duration=$3 path=$4
    shift 4
    "$BIN/certctl-bench" load --url "$URL" --path "$path" --rate "$rate" --duration "$duration" \
        --connections 64 --timeout 10 --pid "$SERVER_PID" --json --label "$label" "$@" \
        2> >(tee -a "$WORK/run.log" >&2) | tee -a "$RESULTS"
}

rss() { # label
    "$BIN/certctl-bench" rss --pid "$SERVER_PID" | jq -c --arg l "$1" '. + {label: $l}' | tee -a "$RESULTS"
}

# The scenarios: name, offered rate, path.
SCENARIOS=()
set_scenarios() {
    local soon
    soon=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
    SCENARIOS=(
        "list 1000 /api/v1/certificates?pageSize=50"
        "owner 1000 /api/v1/certificates?pageSize=50&owner=owners/o17"
        "expiring 1000 /api/v1/certificates?pageSize=50&expireBefore=$soon"
        "search 20 /api/v1/certificates?pageSize=50&search=svc-12345"
        "search-1rps 1 /api/v1/certificates?pageSize=50&search=svc-12345"
        "summarize 1 /api/v1/certificates:summarize"
    )
}

# On a shared machine: wait (up to 2 minutes) until others leave at least
# 3/4 of the CPU idle over 3 s, so runs do not start in the middle of a build.
wait_quiet() {
    local busy0 total0 busy1 total1
    for _ in $(seq 1 40); do
        read -r busy0 total0 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
        sleep 3
        read -r busy1 total1 < <(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
        if [ $((4 * (busy1 - busy0))) -lt $((total1 - total0)) ]; then
            return
        fi
    done
    log "the machine stayed busy; measuring anyway (see others_cpu_pct)"
}

# Warm-up, then RUNS measured runs of every scenario, then the server's RSS.
measure() { # backend phase
    local backend=$1 phase=$2 name rate path run
    set_scenarios
    rss "$backend/$phase/rss-idle"
    for scenario in "${SCENARIOS[@]}"; do
        read -r name rate path <<<"$scenario"
        log "$backend/$phase: warm-up $name"
        load "$backend/$phase/$name/warmup" "$rate" 5 "$path" --show-body >/dev/null
    done
    for run in $(seq 1 "$RUNS"); do
        for scenario in "${SCENARIOS[@]}"; do
            read -r name rate path <<<"$scenario"
            wait_quiet
            log "$backend/$phase: $name run $run"
            load "$backend/$phase/$name/run$run" "$rate" "$DURATION" "$path" >/dev/null
        done
    done
    rss "$backend/$phase/rss" >/dev/null
}

postgres_url() {
    if [ -n "${CERTCTL_BENCH_DATABASE_URL:-}" ]; then
        echo "$CERTCTL_BENCH_DATABASE_URL"
        return
    fi
    if [ -z "$PG_DIR" ]; then
        PG_DIR=$(mktemp -d /tmp/certctl-bench-pg.XXXXXX)
        chown postgres:postgres "$PG_DIR"
        runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$PG_DIR/data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log"
        runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
            -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
        psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE certctl_bench' >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$PG_PORT/certctl_bench"
}

issue() { # label [certctl-bench issue args]
    local label=$1
    shift
    "$BIN/certctl-bench" issue --url "$URL" --duration "$DURATION" --pid "$SERVER_PID" --json --label "$label" "$@" \
        2> >(tee -a "$WORK/run.log" >&2) | tee -a "$RESULTS"
}

# SignCertificate over gRPC through the gateway, per backend and server binary,
# each on a fresh database: closed-loop maximum with the P-256 Local CA, open
# loop at 2000/s (the latency goal), closed-loop maximum with an RSA-2048 CA.
issue_suite() {
    local variants=("new:$BIN/certctl") entry variant run admin db_args
    [ -z "${BENCH_BASELINE_BIN:-}" ] || variants+=("baseline:$BENCH_BASELINE_BIN")
    CERTCTL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
    export CERTCTL_MASTER_KEY
    for backend in $BACKENDS; do
        for entry in "${variants[@]}"; do
            variant=${entry%%:*}
            SERVER_BIN=${entry#*:}
            case $backend in
                sqlite)
                    rm -rf "$WORK/issue-sqlite"
                    db_args=(--data-dir "$WORK/issue-sqlite")
                    ;;
                postgres)
                    admin=$(postgres_url)
                    psql "$admin" -qc "DROP DATABASE IF EXISTS certctl_issue_$variant" -c "CREATE DATABASE certctl_issue_$variant" >/dev/null
                    db_args=(--database-url "${admin%/*}/certctl_issue_$variant")
                    ;;
                *) log "unknown backend $backend"; exit 1 ;;
            esac
            start_server --roles all "${db_args[@]}"
            log "$backend/$variant: warm-up (and the RSA-2048 issuer)"
            DURATION=5 issue "$backend/$variant/warmup" >/dev/null
            DURATION=5 issue "$backend/$variant/warmup-rsa" --issuer issuers/bench-rsa --create-issuer-key rsa-2048 >/dev/null
            for run in $(seq 1 "$RUNS"); do
                wait_quiet
                log "$backend/$variant: run $run"
                issue "$backend/$variant/max-p256/run$run" >/dev/null
                issue "$backend/$variant/rate2000-p256/run$run" --rate 2000 >/dev/null
                issue "$backend/$variant/max-rsa2048/run$run" --issuer issuers/bench-rsa >/dev/null
            done
            stop_server
            [ "$backend" != postgres ] || psql "$admin" -qc "DROP DATABASE certctl_issue_$variant WITH (FORCE)" >/dev/null
        done
    done
    jq -rs '
      def median: sort | .[length / 2 | floor];
      map(select(.label | test("/run[0-9]+$")) | . + {key: (.label | sub("/run[0-9]+$"; ""))})
      | group_by(.key)[]
      | "\(.[0].key)\toffered \(.[0].offered_rate // "max")\tachieved \(map(.achieved_rate) | median)/s\tp50 \(map(.p50_ms) | median) ms\tp90 \(map(.p90_ms) | median) ms\tp99 \(map(.p99_ms) | median) ms\tmax \(map(.max_ms) | max) ms\terrors \(map(.errors) | add)\tserver cpu \(map(.server_cpu_us_per_request) | median) us/req\tbench cpu \(map(.bench_cpu_pct) | median)%\tothers cpu \(map(.others_cpu_pct) | median)%"
    ' "$RESULTS" | tee "$WORK/summary.tsv"
    log "results in $RESULTS, summary in $WORK/summary.tsv"
}

log "work dir $WORK; $COUNT certificates; backends: $BACKENDS; $RUNS runs of ${DURATION}s"
log "code: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- . ':!bench' ':!docs' || echo ' (with uncommitted changes)')"
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
(cd "$ROOT" && cargo build --release -p certctl -p certctl-bench)

if [ "$SUITE" = issue ]; then
    issue_suite
    exit 0
fi

for backend in $BACKENDS; do
    case $backend in
        sqlite) db_args=(--data-dir "$WORK/sqlite") ;;
        postgres) db_args=(--database-url "$(postgres_url)") ;;
        *) log "unknown backend $backend"; exit 1 ;;
    esac
    # Start from nothing: no inventory, and no audit trail from an earlier run.
    [ "$backend" != sqlite ] || rm -rf "$WORK/sqlite"
    timeout 600 "$BIN/certctl-bench" seed --count 0 --reset "${db_args[@]}"
    start_server "${db_args[@]}"
    measure "$backend" empty
    stop_server
    log "$backend: seeding $COUNT certificates"
    start=$(date +%s)
    timeout 7200 "$BIN/certctl-bench" seed --count "$COUNT" --reset "${db_args[@]}" 2>&1 | tee -a "$WORK/run.log"
    log "$backend: seeded in $(($(date +%s) - start)) s"
    start_server "${db_args[@]}"
    measure "$backend" seeded
    stop_server
done

# Medians over runs, one line per backend, phase and scenario.
jq -rs '
  def median: sort | .[length / 2 | floor];
  map(select(.label | test("/run[0-9]+$")) | . + {key: (.label | sub("/run[0-9]+$"; ""))})
  | group_by(.key)[]
  | "\(.[0].key)\toffered \(.[0].offered_rate)/s\tachieved \(map(.achieved_rate) | median)/s\tp50 \(map(.p50_ms) | median) ms\tp90 \(map(.p90_ms) | median) ms\tp99 \(map(.p99_ms) | median) ms\tmax \(map(.max_ms) | max) ms\terrors \(map(.errors) | add)\tserver cpu \(map(.server_cpu_ms_per_request) | median) ms/req\tothers cpu \(map(.others_cpu_pct) | median)%"
' "$RESULTS" | tee "$WORK/summary.tsv"
jq -r 'select(.label | test("/rss")) | "\(.label)\t\(.rss_kib) KiB (anon \(.rss_anon_kib), file \(.rss_file_kib), peak \(.rss_peak_kib))"' "$RESULTS" | tee -a "$WORK/summary.tsv"
log "results in $RESULTS, summary in $WORK/summary.tsv"
