#!/usr/bin/env bash
# bench/ab-cpu.sh — two kvd binaries compared by kvd's own CPU time per
# request (`perf stat -e task-clock` on kvd over a fixed redis-benchmark
# run), alternating A B A B. Less noisy on a shared machine than
# requests/s, which also depends on the client's share of the 2 cores.
#
#   bench/ab-cpu.sh KVD_A KVD_B [ROUNDS] [REQUESTS] [TEST]
#   PIPELINE=1 bench/ab-cpu.sh …   (the measured run's pipeline depth; default 16)
#
# e.g. build the old commit into another target dir, then
#   bench/ab-cpu.sh /tmp/old/release/kvd target/release/kvd 5 1000000 set
# Each round: a fresh 1 GiB store, 300,000 SETs to warm it (100,000 keys,
# 100-byte values, 50 clients, pipeline 16), then REQUESTS of TEST measured
# at PIPELINE.
set -euo pipefail
a_bin="$1" b_bin="$2" rounds="${3:-5}" requests="${4:-1000000}" test="${5:-set}"
pipeline="${PIPELINE:-16}"
work="$(mktemp -d "${TMPDIR:-/tmp}/blockkv-ab.XXXXXX")"
trap 'rm -rf "$work"' EXIT

ns_per_request() { # KVD
    rm -f "$work/kvd.kvdata" "$work/kvd.sock"
    "$1" --data "$work/kvd.kvdata" --socket "$work/kvd.sock" --size 1GiB --sync periodic \
        --foreground --log-file "$work/kvd.log" &
    local kvd=$!
    until redis-cli -s "$work/kvd.sock" ping >/dev/null 2>&1; do sleep 0.05; done
    redis-benchmark -s "$work/kvd.sock" -t set -n 300000 -r 100000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
    perf stat -e task-clock -x, -o "$work/stat" -p "$kvd" &
    local stat=$!
    sleep 0.2
    redis-benchmark -s "$work/kvd.sock" -t "$test" -n "$requests" -r 100000 -d 100 -c 50 -P "$pipeline" -q >/dev/null 2>&1
    kill -INT "$stat"
    wait "$stat" || true
    kill -TERM "$kvd"
    wait "$kvd" || true
    awk -F, -v n="$requests" '/task-clock/ { printf "%.0f\n", $1 * 1e6 / n }' "$work/stat"
}

median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

a=() b=()
for ((round = 1; round <= rounds; round++)); do
    a+=("$(ns_per_request "$a_bin")")
    b+=("$(ns_per_request "$b_bin")")
done
echo "$test P$pipeline, kvd CPU ns per request: A median $(echo "${a[*]}" | median) (${a[*]}), B median $(echo "${b[*]}" | median) (${b[*]})"
