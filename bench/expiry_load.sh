#!/usr/bin/env bash
# bench/expiry_load.sh — a session store's load on kvd: a steady stream of
# SETs over a key space, each with a time to live drawn from MIN-MAX ms,
# sampled while it runs (keys, keys with a TTL, live bytes, RssAnon), then
# the same stream without TTLs for the cost to throughput.
# docs/BENCHMARKS.md, "Active expiry".
#
#   bench/expiry_load.sh [--keys N] [--seconds S] [--ttl-ms MIN-MAX] [--size SIZE]
#
# Builds kvd and kv-bench with cargo (into $CARGO_TARGET_DIR when set, else
# target/). kv-bench: 8 clients, pipeline 16, 100-byte values, PUTs only.
set -euo pipefail
export LC_ALL=C

keys=10000000
seconds=90
ttl_ms=1000-60000
size=6GiB
while (($# > 0)); do
    case "$1" in
        --keys) keys="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --ttl-ms) ttl_ms="$2"; shift 2 ;;
        --size) size="$2"; shift 2 ;;
        *) echo "usage: $0 [--keys N] [--seconds S] [--ttl-ms MIN-MAX] [--size SIZE]" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q --manifest-path "$root/Cargo.toml" -p blockkv-daemon -p blockkv-tools
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

field() { tr -d '\r' | awk -F: -v name="$1" '$1 == name { print $2 }'; }

# One run: kvd on a fresh file, kv-bench for $seconds, a sample every 5 s.
run() {
    local label=$1; shift
    rm -f "$work/data" "$work/sock"
    "$bin/kvd" --data "$work/data" --socket "$work/sock" --size "$size" --foreground 2>"$work/kvd.log" &
    local kvd=$!
    until redis-cli -s "$work/sock" ping >/dev/null 2>&1; do sleep 0.2; done
    "$bin/kv-bench" --socket "$work/sock" --clients 8 --pipeline 16 --keys "$keys" --read-ratio 0 \
        --no-preload --seconds "$seconds" --json "$@" >"$work/bench.json" &
    local bench=$!
    echo "$label: t (s), keys, keys with a TTL, live MiB, dead MiB, RssAnon MiB"
    local t=0
    while kill -0 "$bench" 2>/dev/null; do
        sleep 5
        t=$((t + 5))
        local info
        info=$(redis-cli -s "$work/sock" info everything 2>/dev/null) || break
        local db0 expires live dead rss
        db0=$(echo "$info" | tr -d '\r' | awk -F'[:=,]' '$1 == "db0" { print $3 }')
        expires=$(echo "$info" | tr -d '\r' | awk -F'[:=,]' '$1 == "db0" { print $5 }')
        live=$(echo "$info" | field blockkv_live_bytes)
        dead=$(echo "$info" | field blockkv_dead_bytes)
        rss=$(awk '/^RssAnon:/ { print $2 }' "/proc/$kvd/status")
        printf '  %4d  %9s  %9s  %8.1f  %8.1f  %7.1f\n' "$t" "${db0:-0}" "${expires:-0}" \
            "$(echo "${live:-0} / 1048576" | bc -l)" "$(echo "${dead:-0} / 1048576" | bc -l)" "$(echo "${rss:-0} / 1024" | bc -l)"
    done
    wait "$bench" || true
    echo "  $label: $(grep -o '"ops_per_sec":[0-9.]*' "$work/bench.json" | cut -d: -f2) puts/s"
    kill "$kvd"; wait "$kvd" || true
}

run "with TTL $ttl_ms ms" --ttl-ms "$ttl_ms"
run "without TTL"
