#!/usr/bin/env bash
# Measures start-up time to the first healthy response and idle memory of `agnes serve`
# on a fresh data directory, using the release build. See README.md for what each figure means.
#
# Usage: bench/startup/run.sh [runs]       (default 5 runs)
# Env:   AGNES_BIN   use this binary instead of building target/release/agnes
#        PORT_BASE   first loopback port to use (default 18400)
set -euo pipefail

runs="${1:-5}"
port_base="${PORT_BASE:-18400}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"

if [[ -z "${AGNES_BIN:-}" ]]; then
    (cd "$repo" && cargo build --release -p agnes-cli --quiet)
    target="${CARGO_TARGET_DIR:-$repo/target}"
    AGNES_BIN="$target/release/agnes"
fi
[[ -x "$AGNES_BIN" ]] || { echo "error: $AGNES_BIN is not an executable" >&2; exit 1; }

# Sends GET /api/health over bash's /dev/tcp (no curl needed) and prints the status line.
probe() {
    local port="$1"
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    local answer
    answer="$(cat <&3)"
    exec 3<&-
    [[ "$answer" == *'"status":"healthy"'* ]]
}

printf 'run\tstartup_ms\tidle_rss_mib\tshutdown_ms\n'
for ((run = 1; run <= runs; run++)); do
    data_dir="$(mktemp -d)"
    port=$((port_base + run))

    start_ns=$(date +%s%N)
    RUST_LOG=warn "$AGNES_BIN" serve --data-dir "$data_dir" --listen "127.0.0.1:$port" 2>"$data_dir/server.log" &
    pid=$!
    until probe "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: the server exited; log follows" >&2
            cat "$data_dir/server.log" >&2
            exit 1
        fi
        sleep 0.001
    done
    ready_ns=$(date +%s%N)

    # Idle memory: after one second without requests.
    sleep 1
    rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")

    stop_ns=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" || true
    stopped_ns=$(date +%s%N)

    awk -v r="$run" -v s=$(((ready_ns - start_ns) / 1000)) -v m="$rss_kib" -v d=$(((stopped_ns - stop_ns) / 1000)) \
        'BEGIN { printf "%d\t%.1f\t%.1f\t%.1f\n", r, s / 1000, m / 1024, d / 1000 }'
    rm -rf "$data_dir"
done
