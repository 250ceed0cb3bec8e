#!/usr/bin/env bash
# bench/compare.sh — kvd against redis-server, in one run, on Unix sockets.
# `make bench` runs it; docs/BENCHMARKS.md explains the method and the figures.
#
#   bench/compare.sh [--rounds N] [--requests N] [--restart-keys N] [--json PATH]
#
# Builds kvd, kvctl and kv-bench with cargo (into $CARGO_TARGET_DIR when set,
# else target/), prints a table and writes the same figures as JSON to
# --json PATH (default: <target dir>/bench/compare.json), which bench/plot.sh
# turns into docs/plots/*.png.
#
# 1. Throughput: redis-benchmark (50 clients, 100-byte values, 100,000
#    keys) against kvd and redis-server started side by side, SET then GET
#    at pipeline 1 and 16, --rounds rounds (default 5) in the order kvd,
#    redis, redis, kvd … (A B B A), so neither server always runs first; the
#    median of each, and kvd/redis. Twice: kvd --sync periodic vs redis
#    appendfsync everysec, and kvd --sync always vs redis appendfsync always
#    (SET only). kv-bench (native protocol) runs the same shapes against kvd
#    after each round. Each cell also gives both servers' CPU time per
#    request (the scheduler's count in /proc), how many cores
#    redis-benchmark kept busy (at pipeline 1 its one event loop saturates
#    near 1.0 and then sets the pace), and the latency percentiles:
#    redis-benchmark's p50/p99 for both servers, kv-bench's p50/p99/p999.
# 2. Restart: --restart-keys keys (11-byte keys, 100-byte values) loaded
#    into each through `redis-cli --pipe` (the same bytes); memory per key
#    (kvd: RssAnon from /proc; redis: INFO used_memory); then a clean stop
#    and a start, timed until PING answers (kvd from its checkpoint on a
#    1 GiB file, redis from its append-only file). Median of --rounds.
set -euo pipefail
export LC_ALL=C # a decimal point, not a comma, in what `time` and awk print

rounds=5
requests=200000
restart_keys=1000000
json=""
while (($# > 0)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --requests) requests="$2"; shift 2 ;;
        --restart-keys) restart_keys="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        *) echo "usage: bench/compare.sh [--rounds N] [--requests N] [--restart-keys N] [--json PATH]" >&2; exit 2 ;;
    esac
done

readonly CLIENTS=50
readonly VALUE_BYTES=100
readonly KEYS=100000

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build --release --quiet -p blockkv-daemon -p blockkv-cli -p blockkv-tools
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/release"
json="${json:-$target/bench/compare.json}"
mkdir -p "$(dirname "$json")"
work="$(mktemp -d "${TMPDIR:-/tmp}/blockkv-bench.XXXXXX")"
kvd_pid=""
redis_pid=""
cleanup() {
    for pid in "$kvd_pid" "$redis_pid"; do
        [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

now_ms() { local t="${EPOCHREALTIME/./}"; echo $((t / 1000)); }

# Until `redis-cli -s SOCKET ping` says PONG (redis says LOADING first).
wait_pong() {
    local deadline=$((SECONDS + 600))
    until [[ "$(redis-cli -s "$1" ping 2>/dev/null)" == PONG ]]; do
        ((SECONDS < deadline)) || { echo "no PONG from $1" >&2; return 1; }
        sleep 0.001
    done
}

start_kvd() { # SYNC
    "$bin/kvd" --data "$work/kvd.kvdata" --socket "$work/kvd.sock" --size 1GiB --sync "$1" \
        --foreground --log-file "$work/kvd.log" &
    kvd_pid=$!
    wait_pong "$work/kvd.sock"
}

stop_kvd() {
    kill -TERM "$kvd_pid"
    wait "$kvd_pid" || true
    kvd_pid=""
}

start_redis() { # APPENDFSYNC
    mkdir -p "$work/redis"
    redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 --dir "$work/redis" \
        --appendonly yes --appendfsync "$1" --save "" --daemonize no --logfile "$work/redis.log" &
    redis_pid=$!
    wait_pong "$work/redis.sock"
}

stop_redis() {
    redis-cli -s "$work/redis.sock" shutdown nosave >/dev/null 2>&1 || true
    wait "$redis_pid" || true
    redis_pid=""
}

fresh() { # KVD_SYNC REDIS_FSYNC
    [[ -n "$kvd_pid" ]] && stop_kvd
    [[ -n "$redis_pid" ]] && stop_redis
    rm -rf "$work/kvd.kvdata" "$work/redis"
    start_kvd "$1"
    start_redis "$2"
}

# CPU time a process's threads have used so far, in nanoseconds (the
# scheduler's own count, /proc/PID/task/*/schedstat; /proc's utime and
# stime come in 10 ms ticks, 0.05 µs a request over 200,000 requests).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ ns += $1 } END { printf "%.0f\n", ns }'; }

# One redis-benchmark test: SOCKET SERVER_PID TEST PIPELINE. Prints the
# requests/s, the server's CPU per request in microseconds, the cores
# redis-benchmark kept busy (user + system over wall time: its one
# event loop saturates near 1.0, and then it, not the server, sets the pace),
# and redis-benchmark's p50 and p99 latency in milliseconds.
# Fails, saying which, if redis-benchmark or the server does.
rb() {
    local ns0 ns1 clock rps
    ns0="$(cpu_ns "$2")"
    clock="$( { TIMEFORMAT='%R %U %S'; time redis-benchmark -s "$1" -t "$3" -n "$requests" -c "$CLIENTS" -P "$4" \
        -d "$VALUE_BYTES" -r "$KEYS" --csv -q >"$work/rb.csv" 2>/dev/null; } 2>&1)" || true
    ns1="$(cpu_ns "$2")" || { echo "compare.sh: the server on $1 is gone" >&2; return 1; }
    rps="$(awk -F'","' 'NR > 1 && $1 ~ /SET|GET/ { print $2 + 0, $5 + 0, $7 + 0 }' "$work/rb.csv" | tail -n 1)"
    [[ -n "$rps" ]] || { echo "compare.sh: redis-benchmark -t $3 -P $4 on $1 gave no result" >&2; return 1; }
    awk -v rps="$rps" -v ns=$((ns1 - ns0)) -v n="$requests" -v clock="$clock" \
        'BEGIN { split(clock, c, " "); split(rps, r, " ")
                 printf "%s %.2f %.2f %s %s\n", r[1], ns / 1000 / n, (c[2] + c[3]) / (c[1] > 0 ? c[1] : 1), r[2], r[3] }'
}

# kv-bench against kvd: READ_RATIO PIPELINE. Prints requests/s and the
# p50, p99 and p999 latency in microseconds.
kb() {
    "$bin/kv-bench" --socket "$work/kvd.sock" --clients "$CLIENTS" --ops "$requests" --keys "$KEYS" \
        --value-bytes "$VALUE_BYTES" --read-ratio "$1" --pipeline "$2" --no-preload --json |
        sed -n 's/.*"p50":\([0-9.]*\).*"p99":\([0-9.]*\).*"p999":\([0-9.]*\).*"ops_per_sec":\([0-9.]*\).*/\4 \1 \2 \3/p'
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# A JSON array of numbers from a space-separated list.
json_list() { local IFS=,; echo "[$*]"; }

cells="$work/cells.json"
: >"$cells"

throughput() { # LABEL KVD_SYNC REDIS_FSYNC TESTS
    local label="$1" tests="$4" test pipeline round
    fresh "$2" "$3"
    echo
    echo "## $label ($rounds rounds, $requests requests each, kvd / redis in A B B A order)"
    echo "(kvd CPU, redis CPU: each server's CPU time per request, µs; cli/kvd, cli/red: the cores redis-benchmark kept busy)"
    printf '%-6s %-8s %12s %12s %7s %12s %9s %9s %7s %7s\n' test pipeline "kvd (RESP)" redis ratio "kvd native" \
        "kvd CPU" "redis CPU" "cli/kvd" "cli/red"
    for test in $tests; do
        for pipeline in 1 16; do
            local k=() r=() kc=() rc=() kl=() rl=() k50=() k99=() r50=() r99=() n=() n50=() n99=() n999=() one line
            for ((round = 1; round <= rounds; round++)); do
                # Odd rounds run kvd first, even rounds redis first (A B B A …),
                # so neither server always follows kv-bench or the other.
                local order=(kvd redis) server
                ((round % 2 == 0)) && order=(redis kvd)
                for server in "${order[@]}"; do
                    if [[ $server == kvd ]]; then
                        line="$(rb "$work/kvd.sock" "$kvd_pid" "$test" "$pipeline")" || exit 1
                        read -r -a one <<<"$line"
                        k+=("${one[0]}"); kc+=("${one[1]}"); kl+=("${one[2]}"); k50+=("${one[3]}"); k99+=("${one[4]}")
                    else
                        line="$(rb "$work/redis.sock" "$redis_pid" "$test" "$pipeline")" || exit 1
                        read -r -a one <<<"$line"
                        r+=("${one[0]}"); rc+=("${one[1]}"); rl+=("${one[2]}"); r50+=("${one[3]}"); r99+=("${one[4]}")
                    fi
                done
                line="$(kb "$([[ $test == get ]] && echo 1 || echo 0)" "$pipeline")"
                read -r -a one <<<"$line"
                [[ ${#one[@]} == 4 ]] || { echo "compare.sh: kv-bench gave no result" >&2; exit 1; }
                n+=("${one[0]}"); n50+=("${one[1]}"); n99+=("${one[2]}"); n999+=("${one[3]}")
            done
            local km rm ratio
            km="$(echo "${k[*]}" | median)"; rm="$(echo "${r[*]}" | median)"
            ratio="$(awk -v a="$km" -v b="$rm" 'BEGIN { printf "%.3f", a / b }')"
            printf '%-6s %-8s %12.0f %12.0f %6.2fx %12.0f %9.2f %9.2f %7.2f %7.2f   (kvd: %s; redis: %s)\n' \
                "$test" "$pipeline" "$km" "$rm" "$ratio" \
                "$(echo "${n[*]}" | median)" "$(echo "${kc[*]}" | median)" "$(echo "${rc[*]}" | median)" \
                "$(echo "${kl[*]}" | median)" "$(echo "${rl[*]}" | median)" "${k[*]}" "${r[*]}"
            [[ -s "$cells" ]] && echo "," >>"$cells"
            cat >>"$cells" <<JSON
    {"kvd_sync": "$2", "redis_appendfsync": "$3", "test": "$test", "pipeline": $pipeline,
     "kvd_rps": $km, "redis_rps": $rm, "ratio": $ratio,
     "kvd_cpu_us_per_request": $(echo "${kc[*]}" | median), "redis_cpu_us_per_request": $(echo "${rc[*]}" | median),
     "client_cores_kvd": $(echo "${kl[*]}" | median), "client_cores_redis": $(echo "${rl[*]}" | median),
     "kvd_p50_ms": $(echo "${k50[*]}" | median), "kvd_p99_ms": $(echo "${k99[*]}" | median),
     "redis_p50_ms": $(echo "${r50[*]}" | median), "redis_p99_ms": $(echo "${r99[*]}" | median),
     "native_rps": $(echo "${n[*]}" | median), "native_p50_us": $(echo "${n50[*]}" | median),
     "native_p99_us": $(echo "${n99[*]}" | median), "native_p999_us": $(echo "${n999[*]}" | median),
     "kvd_rps_rounds": $(json_list "${k[@]}"), "redis_rps_rounds": $(json_list "${r[@]}"),
     "native_rps_rounds": $(json_list "${n[@]}")}
JSON
        done
    done
}

restart() {
    echo
    echo "## restart and memory: $restart_keys keys (11-byte keys, 100-byte values), $rounds rounds"
    fresh periodic everysec
    local load="$work/load.resp"
    awk -v n="$restart_keys" 'BEGIN {
        v = sprintf("%0100d", 0)
        for (i = 0; i < n; i++) { k = sprintf("key:%07d", i); printf "*3\r\n$3\r\nSET\r\n$11\r\n%s\r\n$100\r\n%s\r\n", k, v }
    }' >"$load"
    redis-cli -s "$work/kvd.sock" --pipe <"$load" >"$work/pipe-kvd.txt"
    redis-cli -s "$work/redis.sock" --pipe <"$load" >"$work/pipe-redis.txt"
    local kvd_keys redis_keys kvd_anon redis_used
    kvd_keys="$(redis-cli -s "$work/kvd.sock" dbsize)"
    redis_keys="$(redis-cli -s "$work/redis.sock" dbsize)"
    kvd_anon="$(awk '/^RssAnon:/ { print $2 * 1024 }' "/proc/$kvd_pid/status")"
    redis_used="$(redis-cli -s "$work/redis.sock" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')"
    local kvd_per_key redis_per_key memory_ratio
    kvd_per_key="$(awk -v a="$kvd_anon" -v n="$kvd_keys" 'BEGIN { printf "%.1f", a / n }')"
    redis_per_key="$(awk -v a="$redis_used" -v n="$redis_keys" 'BEGIN { printf "%.1f", a / n }')"
    memory_ratio="$(awk -v a="$kvd_per_key" -v b="$redis_per_key" 'BEGIN { printf "%.3f", a / b }')"
    printf 'keys: kvd %s, redis %s\n' "$kvd_keys" "$redis_keys"
    printf 'memory per key: kvd RssAnon %s B, redis used_memory %s B: ratio %.2fx\n' \
        "$kvd_per_key" "$redis_per_key" "$memory_ratio"
    local k=() r=() round t
    for ((round = 1; round <= rounds; round++)); do
        stop_kvd
        t="$(now_ms)"; start_kvd periodic; k+=($(($(now_ms) - t)))
        redis-cli -s "$work/redis.sock" shutdown >/dev/null 2>&1 || true
        wait "$redis_pid" || true
        t="$(now_ms)"; start_redis everysec; r+=($(($(now_ms) - t)))
    done
    local km rm speedup
    km="$(echo "${k[*]}" | median)"; rm="$(echo "${r[*]}" | median)"
    speedup="$(awk -v a="$rm" -v b="$km" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }')"
    printf 'restart until PING: kvd %s ms, redis %s ms (medians of %s / %s): redis/kvd %.1fx\n' "$km" "$rm" "${k[*]}" "${r[*]}" \
        "$speedup"
    cat >"$work/restart.json" <<JSON
    "keys": $restart_keys, "kvd_keys": $kvd_keys, "redis_keys": $redis_keys,
    "kvd_bytes_per_key": $kvd_per_key, "redis_bytes_per_key": $redis_per_key, "memory_ratio": $memory_ratio,
    "kvd_restart_ms": $km, "redis_restart_ms": $rm, "restart_speedup": $speedup,
    "kvd_restart_ms_rounds": $(json_list "${k[@]}"), "redis_restart_ms_rounds": $(json_list "${r[@]}")
JSON
}

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
redis_version="$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
load_before="$(load_avg)"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# blockkv vs redis-server $redis_version, $started, $(nproc) cores ($cpu_model), kernel $(uname -r), load $load_before"
throughput "kvd --sync periodic vs redis appendfsync everysec" periodic everysec "set get"
throughput "kvd --sync always vs redis appendfsync always" always always "set"
restart
stop_kvd
stop_redis
load_after="$(load_avg)"
echo "load average after: $load_after"

cat >"$json" <<JSON
{
  "bench": "compare",
  "started": "$started",
  "commit": "${BENCH_COMMIT:-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}",
  "machine": {"nproc": $(nproc), "cpu_model": "$cpu_model", "kernel": "$(uname -r)",
              "load_before": "$load_before", "load_after": "$load_after"},
  "redis_version": "$redis_version",
  "params": {"rounds": $rounds, "requests": $requests, "restart_keys": $restart_keys,
             "clients": $CLIENTS, "value_bytes": $VALUE_BYTES, "keys": $KEYS},
  "cells": [
$(cat "$cells")
  ],
  "restart": {
$(cat "$work/restart.json")
  }
}
JSON
echo "JSON: $json"
