#!/usr/bin/env bash
# The agent hub's load benchmark (docs/benchmarks.md, "Agents"): `certctl-bench
# agents` simulates N enrolled agents, each with its own identity and its own
# mTLS stream, against a `certctl server` it starts, kills and restarts itself.
#
#   bench/agents.sh [N] [RUNS]        default N=10000, RUNS=3
#
# Environment:
#   BENCH_WORK_DIR       data dir, agents' enrolments, server log and results
#                        (default /tmp/certctl-agents-N; reuse it to skip enrolment)
#   BENCH_AGENTS_ARGS    more flags for `certctl-bench agents` (see --help)
#   CERTCTL_MASTER_KEY   the server's master key; default: one made once and kept
#                        in the work dir, since the data dir needs the same key
#
# Release builds first: cargo build --release -p certctl -p certctl-bench
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
N=${1:-10000}
RUNS=${2:-3}
WORK=${BENCH_WORK_DIR:-/tmp/certctl-agents-$N}
mkdir -p "$WORK"

for bin in certctl certctl-bench; do
    [ -x "$BIN/$bin" ] || { echo "$BIN/$bin is missing: cargo build --release -p certctl -p certctl-bench" >&2; exit 1; }
done

# One descriptor per agent connection on each side (this process and the
# server, which inherits the limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files: $(ulimit -n)" >&2

if [ -z "${CERTCTL_MASTER_KEY:-}" ]; then
    [ -s "$WORK/master.key" ] || (umask 077 && "$BIN/certctl" admin new-master-key >"$WORK/master.key")
    CERTCTL_MASTER_KEY=$(tr -d '\n' <"$WORK/master.key")
    export CERTCTL_MASTER_KEY
fi

{
    echo "# $(date -u +%FT%TZ) N=$N runs=$RUNS $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$WORK/results.jsonl"
# shellcheck disable=SC2086
"$BIN/certctl-bench" agents --agents "$N" --runs "$RUNS" \
    --data-dir "$WORK/data" --state-dir "$WORK/agents" --server-log "$WORK/server.log" \
    --json ${BENCH_AGENTS_ARGS:-} | tee -a "$WORK/results.jsonl"
