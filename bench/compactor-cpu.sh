#!/usr/bin/env bash
# bench/compactor-cpu.sh — CPU time of kvd's compactor thread, and of kvd as
# a whole, over a run of SETs in the dead-bytes steady state: on a 1 GiB file
# with 100,000 keys the dead-bytes trigger (a quarter of the file) is reached
# after about 2M SETs of 100-byte values, and from then on the compactor
# frees as fast as SETs make dead records.
#
#   bench/compactor-cpu.sh KVD [SETS] [PIPELINE]
#
# e.g. bench/compactor-cpu.sh target/release/kvd 2000000 16
# Prints compactor_ms, kvd_ms (utime + stime from /proc, 10 ms ticks) and
# how many compaction runs kvd logged. Alternate two builds a few times:
# one run swings by about 10% on a shared machine.
set -euo pipefail
kvd_bin="$1" sets="${2:-2000000}" pipeline="${3:-16}"
work="$(mktemp -d "${TMPDIR:-/tmp}/blockkv-ccpu.XXXXXX")"
kvd=""
trap '[[ -n "$kvd" ]] && kill -KILL "$kvd" 2>/dev/null; rm -rf "$work"' EXIT

"$kvd_bin" --data "$work/kvd.kvdata" --socket "$work/kvd.sock" --size 1GiB --sync periodic \
    --foreground --log-file "$work/kvd.log" &
kvd=$!
until [[ "$(redis-cli -s "$work/kvd.sock" ping 2>/dev/null)" == PONG ]]; do sleep 0.01; done
# Warm-up to the dead-bytes trigger.
redis-benchmark -s "$work/kvd.sock" -t set -n 2200000 -c 50 -P 16 -d 100 -r 100000 -q >/dev/null 2>&1

ticks() { # [THREAD_NAME]: utime + stime of kvd's threads (all, or those named so)
    local total=0 task
    for task in /proc/"$kvd"/task/*; do
        if [[ -z "${1:-}" || "$(cat "$task/comm")" == "$1" ]]; then
            total=$((total + $(awk '{ print $14 + $15 }' "$task/stat")))
        fi
    done
    echo "$total"
}

compactor_before="$(ticks blockkv-compact)" all_before="$(ticks)"
redis-benchmark -s "$work/kvd.sock" -t set -n "$sets" -c 50 -P "$pipeline" -d 100 -r 100000 -q >/dev/null 2>&1
compactor_after="$(ticks blockkv-compact)" all_after="$(ticks)"
echo "compactor_ms $(((compactor_after - compactor_before) * 10)) kvd_ms $(((all_after - all_before) * 10))" \
    "runs $(grep -c 'compaction' "$work/kvd.log" || true)"
