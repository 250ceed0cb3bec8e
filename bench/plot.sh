#!/usr/bin/env bash
# bench/plot.sh — docs/plots/*.png from the benchmarks' JSON output (gnuplot;
# python3's standard json module turns the JSON into gnuplot's columns).
#
#   bench/plot.sh [--run] [--compare PATH] [--compaction PATH] [--out DIR]
#
# --run          first run the benchmarks (about 20 minutes on 2 cores):
#                  bench/compare.sh --json TARGET/bench/compare.json   (make bench)
#                  compaction_bench 0.5 --rate 10000 --rounds 15 --json TARGET/bench/compaction.json
#                  engine_bench (make bench-engine), its table kept as TARGET/bench/engine.md
#                where TARGET is $CARGO_TARGET_DIR, else target/. BENCH_ARGS
#                is passed on to compare.sh, COMPACTION_ARGS replaces the
#                compaction bench's arguments before --json.
# --compare, --compaction   the JSON to plot (default: TARGET/bench/*.json, else
#                the copies kept in --out).
# --out DIR      where the PNGs and a copy of each JSON go (default docs/plots).
#
# Also writes figures.md there: every figure as markdown tables, and keeps the
# engine bench's table as engine.md.
# Plots: throughput.png (requests/s per cell, kvd against redis-server),
# cpu.png (each server's CPU time per request), latency.png (p50/p99 per
# cell from redis-benchmark, p50/p99/p999 from kv-bench), compaction.png (put
# p99 per interval, with and without compaction).
set -euo pipefail
export LC_ALL=C

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
out="$repo/docs/plots"
compare="" compaction="" run=0
while (($# > 0)); do
    case "$1" in
        --run) run=1; shift ;;
        --compare) compare="$2"; shift 2 ;;
        --compaction) compaction="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: bench/plot.sh [--run] [--compare PATH] [--compaction PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
command -v gnuplot >/dev/null || { echo "plot.sh: needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
mkdir -p "$out" "$target/bench"

if ((run)); then
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
    "$repo/bench/compare.sh" ${BENCH_ARGS:-} --json "$target/bench/compare.json"
    # shellcheck disable=SC2086
    (cd "$repo" && cargo run --release --quiet -p blockkv-engine --example compaction_bench -- \
        ${COMPACTION_ARGS:-0.5 --rate 10000 --rounds 15} --json "$target/bench/compaction.json")
    (cd "$repo" && cargo bench --quiet -p blockkv-engine --bench engine_bench) | tee "$target/bench/engine.txt"
    { echo "<!-- make bench-engine, $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg) after -->"
      grep -E '^(#|\|)' "$target/bench/engine.txt"; } >"$target/bench/engine.md"
fi

pick() { # EXPLICIT NAME: the JSON to read
    if [[ -n "$1" ]]; then echo "$1"
    elif [[ -f "$target/bench/$2" ]]; then echo "$target/bench/$2"
    else echo "$out/$2"; fi
}
compare="$(pick "$compare" compare.json)"
compaction="$(pick "$compaction" compaction.json)"
engine="$(pick "" engine.md)"
[[ -f "$engine" && ! "$engine" -ef "$out/engine.md" ]] && cp "$engine" "$out/engine.md"
data="$(mktemp -d "${TMPDIR:-/tmp}/blockkv-plot.XXXXXX")"
trap 'rm -rf "$data"' EXIT

# JSON -> whitespace-separated columns, one file per plot.
python3 - "$compare" "$compaction" "$data" "$out" <<'PY'
import json, os, sys
compare_path, compaction_path, data = sys.argv[1:4]

def label(cell):
    sync = "always" if cell["kvd_sync"] == "always" else "periodic"
    return f'{cell["test"].upper()}-P{cell["pipeline"]}-{sync}'

if os.path.exists(compare_path):
    compare = json.load(open(compare_path))
    with open(f"{data}/cells.dat", "w") as f:
        f.write("# label kvd_rps redis_rps ratio kvd_cpu redis_cpu kvd_p50_ms kvd_p99_ms redis_p50_ms redis_p99_ms native_p50_ms native_p99_ms native_p999_ms native_rps\n")
        for c in compare["cells"]:
            f.write(" ".join(str(v) for v in [
                label(c), c["kvd_rps"], c["redis_rps"], c["ratio"],
                c["kvd_cpu_us_per_request"], c["redis_cpu_us_per_request"],
                c["kvd_p50_ms"], c["kvd_p99_ms"], c["redis_p50_ms"], c["redis_p99_ms"],
                c["native_p50_us"] / 1000, c["native_p99_us"] / 1000, c["native_p999_us"] / 1000,
                c["native_rps"]]) + "\n")
    m, p = compare["machine"], compare["params"]
    with open(f"{data}/compare.title", "w") as f:
        f.write(f'{compare["started"][:10]}, {m["nproc"]} cores {m["cpu_model"]}, '
                f'redis-server {compare["redis_version"]}; {p["rounds"]} rounds x {p["requests"]} requests, '
                f'{p["clients"]} clients, {p["value_bytes"]} B values; load {m["load_before"].split()[0]} -> {m["load_after"].split()[0]}')

if os.path.exists(compaction_path):
    run = json.load(open(compaction_path))
    step = run["params"]["interval_ms"] / 1000
    series = run["median_interval_p99_us"]
    with open(f"{data}/compaction.dat", "w") as f:
        f.write("# seconds baseline_p99_us compacting_p99_us\n")
        for i, (b, c) in enumerate(zip(series["baseline"], series["compacting"])):
            f.write(f"{(i + 0.5) * step:.2f} {b} {c}\n")
    s, p = run["summary"], run["params"]
    rate = f'{p["rate_per_s"]:.0f} puts/s' if p["rate_per_s"] else "unpaced"
    with open(f"{data}/compaction.title", "w") as f:
        f.write(f'{p["live_fraction"] * 100:.0f}% live, {p["value_bytes"]} B values, {rate}, median of {p["rounds"]} rounds per '
                f'{p["interval_ms"]} ms interval; p99 {s["baseline_p99_us"]:.0f} -> {s["compacting_p99_us"]:.0f} us '
                f'({s["p99_ratio"]:.2f}x), write amplification {s["write_amplification"]:.2f}, NoSpace {s["no_space"]}')

# Every figure as markdown tables, for docs/BENCHMARKS.md and the README.
out_dir = sys.argv[4]
lines = []
def fmt(v, digits=0):
    return f"{v:,.{digits}f}"
if os.path.exists(compare_path):
    m, p = compare["machine"], compare["params"]
    lines += [f'`make bench` (bench/compare.sh), {compare["started"]}: '
              f'{m["nproc"]} cores ({m["cpu_model"]}), kernel {m["kernel"]}, redis-server {compare["redis_version"]}; '
              f'{p["rounds"]} rounds of {fmt(p["requests"])} requests per cell, {p["clients"]} clients, '
              f'{p["value_bytes"]}-byte values, {fmt(p["keys"])} keys; load average {m["load_before"]} before, {m["load_after"]} after.', '',
              '| kvd --sync / redis appendfsync | test | pipeline | kvd req/s | redis req/s | kvd ÷ redis | kvd CPU µs/req | redis CPU µs/req | client cores (kvd / redis run) | kvd p50 / p99 ms | redis p50 / p99 ms | kv-bench req/s | kv-bench p50 / p99 / p999 ms |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for c in compare["cells"]:
        lines.append(f'| {c["kvd_sync"]} / {c["redis_appendfsync"]} | {c["test"].upper()} | {c["pipeline"]} | {fmt(c["kvd_rps"])} | {fmt(c["redis_rps"])} | '
                     f'**{c["ratio"]:.2f}×** | {c["kvd_cpu_us_per_request"]:.2f} | {c["redis_cpu_us_per_request"]:.2f} | '
                     f'{c["client_cores_kvd"]:.2f} / {c["client_cores_redis"]:.2f} | {c["kvd_p50_ms"]:.3f} / {c["kvd_p99_ms"]:.3f} | '
                     f'{c["redis_p50_ms"]:.3f} / {c["redis_p99_ms"]:.3f} | {fmt(c["native_rps"])} | '
                     f'{c["native_p50_us"] / 1000:.2f} / {c["native_p99_us"] / 1000:.2f} / {c["native_p999_us"] / 1000:.2f} |')
    r = compare["restart"]
    lines += ['', f'| {fmt(r["keys"])} keys (11-byte keys, 100-byte values) | kvd | redis-server | ratio |', '|---|---|---|---|',
              f'| memory per key (kvd RssAnon, redis used_memory) | {r["kvd_bytes_per_key"]:.1f} B | {r["redis_bytes_per_key"]:.1f} B | {r["memory_ratio"]:.2f}× |',
              f'| clean restart until PING answers, median of {p["rounds"]} | {fmt(r["kvd_restart_ms"])} ms | {fmt(r["redis_restart_ms"])} ms | {r["restart_speedup"]:.1f}× faster |', '']
if os.path.exists(compaction_path):
    s, p = run["summary"], run["params"]
    rate = f'{p["rate_per_s"]:,.0f} puts/s' if p["rate_per_s"] else "unpaced"
    def med(key, side):
        return sorted(r[side][key] for r in run["rounds"])[len(run["rounds"]) // 2]
    was = sorted(r["write_amplification"] for r in run["rounds"])
    first = run["rounds"][0]["baseline"]
    offered = f'{(first["puts"] + first["no_space"]) / p["rate_per_s"]:.1f} s' if p["rate_per_s"] else "unpaced"
    lines += [f'compaction_bench {p["live_fraction"]} --rate {p["rate_per_s"] or "(unpaced)"} --rounds {p["rounds"]}: a 64 MiB file {p["live_fraction"] * 100:.0f}% live '
              f'with {p["value_bytes"]}-byte values, then overwrites of 10× the file at {rate}; baseline: the same puts into a 1 GiB file with the compactor off.', '',
              '| | baseline | compacting | ratio |', '|---|---|---|---|',
              f'| put p99, median of {p["rounds"]} rounds | {s["baseline_p99_us"]:.0f} µs | {s["compacting_p99_us"]:.0f} µs | **{s["p99_ratio"]:.2f}×** |',
              f'| put p50 / p999, medians of the rounds | {med("p50_us", "baseline"):.0f} / {med("p999_us", "baseline"):.0f} µs | {med("p50_us", "compacting"):.0f} / {med("p999_us", "compacting"):.0f} µs | |',
              f'| time for the overwrites, median (offered: {offered}) | {med("elapsed_s", "baseline"):.1f} s | {med("elapsed_s", "compacting"):.1f} s | |',
              f'| NoSpace errors | {s["no_space_baseline"]} | {s["no_space"]} | |',
              f'| write amplification (log + checkpoint bytes / user bytes), median | | {s["write_amplification"]:.2f} (rounds {was[0]:.2f}–{was[-1]:.2f}) | |',
              f'| per-round p99 ratio | | | {min(r["compacting"]["p99_us"] / r["baseline"]["p99_us"] for r in run["rounds"]):.2f}–{max(r["compacting"]["p99_us"] / r["baseline"]["p99_us"] for r in run["rounds"]):.2f}× |', '']
with open(f"{out_dir}/figures.md", "w") as f:
    f.write("<!-- generated by bench/plot.sh from compare.json and compaction.json -->\n" + "\n".join(lines) + "\n")
PY

common='set terminal pngcairo size 1000,560 font "sans,10"; set grid ytics; set key top left; set style fill solid 0.85 border -1'

if [[ -f "$data/cells.dat" ]]; then
    [[ "$compare" -ef "$out/compare.json" ]] || cp "$compare" "$out/compare.json"
    title="$(cat "$data/compare.title")"
    gnuplot <<GP
$common
set output "$out/throughput.png"
set title "kvd and redis-server over a Unix socket, redis-benchmark (higher is better)\n{/*0.8 $title}"
set ylabel "requests/s"
set style data histograms; set style histogram clustered gap 1
set xtics noenhanced; set format y "%.1s%c"; set yrange [0:*]
plot "$data/cells.dat" using 2:xtic(1) title "kvd (RESP)", '' using 3 title "redis-server", '' using 14 title "kvd, kv-bench (native)"
GP
    gnuplot <<GP
$common
set output "$out/cpu.png"
set title "Server CPU time per request (lower is better)\n{/*0.8 $title}"
set ylabel "CPU microseconds per request"
set style data histograms; set style histogram clustered gap 1
set xtics noenhanced; set yrange [0:*]
plot "$data/cells.dat" using 5:xtic(1) title "kvd", '' using 6 title "redis-server"
GP
    gnuplot <<GP
$common
set output "$out/latency.png"
set title "Request latency per cell (lower is better; log scale)\n{/*0.8 $title}"
set ylabel "milliseconds"; set logscale y
set style data histograms; set style histogram clustered gap 1
set xtics noenhanced; set key below maxrows 2 width 2
plot "$data/cells.dat" using 7:xtic(1) title "kvd p50 (redis-benchmark)", '' using 8 title "kvd p99", \
     '' using 9 title "redis p50 (redis-benchmark)", '' using 10 title "redis p99", \
     '' using 11 title "kvd native p50 (kv-bench)", '' using 12 title "kvd native p99", '' using 13 title "kvd native p999"
GP
fi

if [[ -f "$data/compaction.dat" ]]; then
    [[ "$compaction" -ef "$out/compaction.json" ]] || cp "$compaction" "$out/compaction.json"
    title="$(cat "$data/compaction.title")"
    gnuplot <<GP
$common
set output "$out/compaction.png"
set title "Engine put p99 over time, with and without background compaction\n{/*0.8 $title}"
set xlabel "seconds into the overwrites"; set ylabel "put p99 per interval, microseconds"
set yrange [0:*]; set key top right
plot "$data/compaction.dat" using 1:2 with linespoints title "baseline (1 GiB file, compactor off)", \
     '' using 1:3 with linespoints title "compacting (64 MiB file)"
GP
fi
ls -1 "$out"/*.png
