#!/usr/bin/env bash
# crash-test.sh — kill -9 test of blockkv against real processes.
#
#   recovery-tests/crash-test.sh [--cycles N] [--seed S] [--keep]
#
# Builds kvd, kvctl, kv-fsck and the helpers, then N times:
#   1. starts `kvd --sync always --checkpoint-interval-s 1` on a data file
#      that lives across cycles (so recovery after recovery is tested);
#   2. runs crash-writer: 8 threads, each on its own connection and its own
#      32 keys, puts (8 B to 300 KiB, mostly small) and deletes, each request
#      logged before it is sent and after its answer; and a ninth connection
#      that forces a compaction every COMPACT_EVERY_MS;
#   3. SIGKILLs kvd at the cycle's moment: mid-write (after 50-800 ms of
#      load), during a checkpoint (crash-kill sends a checkpoint request
#      and kills 0-3000 us later: a shell's sleep is too coarse for a
#      checkpoint of 0.3-1.5 ms), during a compaction (crash-kill sends a
#      compaction request and kills 0-6 ms later), or during recovery
#      (killed mid-write, restarted, and killed again 0-4 ms after the
#      restart);
#   4. runs kv-fsck on every crashed image (exit 0 or 1 passes);
#   5. restarts kvd and runs crash-check: every key holds its last
#      acknowledged value or the outcome of the one request in flight, and
#      no deleted key is back;
#   6. stops kvd with SIGTERM (must exit 0).
# One line per cycle, then `N passed, N failed`; exit 1 if any cycle failed.
#
# The seed (printed first; random unless --seed) fixes every cycle's plan
# and every writer's operations: `--seed S` replays the run. Where exactly
# the kill lands in the load still depends on the machine's timing.
# The data file lives across cycles and is small (FILE_SIZE), so it fills
# and the background compactor runs on its own as well as when forced; it
# is replaced by a new one only after a failed cycle. Failed cycles' files
# are kept and named; --keep keeps everything.
set -euo pipefail

usage() {
    sed -n '4p' "${BASH_SOURCE[0]}" | sed 's/^# *//'
}

cycles=30
seed=""
keep=0
while (($# > 0)); do
    case "$1" in
        --cycles) cycles="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
        --seed) seed="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
        --keep) keep=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "crash-test.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if ! [[ "$cycles" =~ ^[0-9]+$ ]] || ((cycles < 1)); then
    echo "crash-test.sh: --cycles wants a positive number, not '$cycles'" >&2
    exit 2
fi
if [[ -n "$seed" && ! "$seed" =~ ^[0-9]+$ ]]; then
    echo "crash-test.sh: --seed wants a number (0 to 2^64-1), not '$seed'" >&2
    exit 2
fi

# The shape of every cycle. crash-writer and crash-check must agree on the
# key space, so both get these.
readonly THREADS=8
readonly KEYS_PER_THREAD=32
# Small enough that the writers fill it every few cycles (they write 2-20
# MiB a cycle; their live data stays under 2 MiB but for the rare 300 KiB
# value), so the compactor's triggers fire as well as the forced runs.
readonly FILE_SIZE=32MiB
# The writers' compacting connection asks for a compaction this often.
readonly COMPACT_EVERY_MS=150
# Crashed images copied for kv-fsck failures, at most (each up to FILE_SIZE).
readonly KEPT_IMAGES_MAX=5
readonly READY_TIMEOUT_S=20
readonly STOP_TIMEOUT_S=30

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
"${CARGO:-cargo}" build --release --quiet \
    -p blockkv-daemon -p blockkv-cli -p blockkv-recovery-tests -p blockkv-tools
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$repo/$target_dir"
bin="$target_dir/release"

if [[ -z "$seed" ]]; then
    seed="$("$bin/crash-plan" --new-seed)"
fi
plans="$("$bin/crash-plan" --seed "$seed" --cycles "$cycles")"
echo "crash-test: seed $seed, $cycles cycles (replay: recovery-tests/crash-test.sh --seed $seed --cycles $cycles)"

work="$(mktemp -d "${TMPDIR:-/tmp}/blockkv-crash.XXXXXX")"
socket="$work/kvd.sock"
kvd_pid=""
writer_pid=""

# On any exit: no process of ours is left running.
finished=0
cleanup() {
    local pid
    if ((finished == 0)); then
        echo "crash-test: stopped early; files in $work" >&2
    fi
    for pid in "$kvd_pid" "$writer_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 437 -> 0.437 (for sleep, and to print milliseconds as seconds).
seconds() {
    printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# 1234 -> 0.001234 (microseconds for sleep).
micro_seconds() {
    printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000))
}

now_ms() {
    local t="${EPOCHREALTIME/./}"
    echo $((t / 1000))
}

# start_kvd LOG: kvd in the background on the current data file.
start_kvd() {
    "$bin/kvd" --data "$data" --socket "$socket" --size "$FILE_SIZE" --sync always \
        --foreground --checkpoint-interval-s 1 2>"$1" &
    kvd_pid=$!
}

# Until kvd answers a ping; fails if it exits or takes too long.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT_S))
    until "$bin/kvctl" --socket "$socket" ping >/dev/null 2>&1; do
        if ! kill -0 "$kvd_pid" 2>/dev/null || ((SECONDS > deadline)); then
            return 1
        fi
        sleep 0.01
    done
}

kill_kvd() {
    kill -KILL "$kvd_pid" 2>/dev/null || true
    wait "$kvd_pid" 2>/dev/null || true
    kvd_pid=""
}

# SIGTERM, then kvd's exit status (124: still running after STOP_TIMEOUT_S).
stop_kvd() {
    local deadline=$((SECONDS + STOP_TIMEOUT_S)) status=0
    kill -TERM "$kvd_pid" 2>/dev/null || true
    while kill -0 "$kvd_pid" 2>/dev/null && ((SECONDS <= deadline)); do
        sleep 0.01
    done
    if kill -0 "$kvd_pid" 2>/dev/null; then
        kill_kvd
        return 124
    fi
    wait "$kvd_pid" || status=$?
    kvd_pid=""
    return "$status"
}

# How far a kvd killed early got, from its log (which it may not even
# have opened).
startup_stage() {
    if grep -q 'listening' "$1" 2>/dev/null; then
        echo "after startup"
    elif grep -q 'recovery: ' "$1" 2>/dev/null; then
        echo "after recovery"
    elif grep -q 'starting' "$1" 2>/dev/null; then
        echo "in recovery"
    else
        echo "before recovery"
    fi
}

failures=()
fail() {
    failures+=("$1")
}

# run_fsck LABEL: kv-fsck on the crashed image (read-only).
run_fsck() {
    local status=0 report="$cdir/fsck-$1.txt"
    "$bin/kv-fsck" "$data" >"$report" 2>&1 || status=$?
    if ((status > 1)); then
        # The next start of kvd changes the image (it cuts the tail): keep a copy.
        local image="not kept: $KEPT_IMAGES_MAX kept already"
        if ((kept_images < KEPT_IMAGES_MAX)); then
            image="$cdir/image-$1.kvdata"
            cp --sparse=always "$data" "$image"
            kept_images=$((kept_images + 1))
        fi
        fail "kv-fsck exit $status on crashed image $1 (report: $report; image $image)"
    fi
    fsck_codes+="${fsck_codes:+/}$status"
}

new_generation() {
    generation=$((generation + 1))
    gdir="$work/file-$generation"
    mkdir -p "$gdir"
    data="$gdir/data.kvdata"
}

generation=0
new_generation
passed=0
failed=0
kept_images=0
acked_total=0
declare -A moments=() outcomes=() stages=()
reclaimed_total=0
run_started="$(now_ms)"

# The plans come in on fd 3, so no child that reads stdin can eat them.
while read -r -u 3 cycle cycle_seed moment load_ms delay_us; do
    started="$(now_ms)"
    cdir="$gdir/cycle-$cycle"
    mkdir -p "$cdir"
    failures=()
    fsck_codes=""
    what=""
    check_failed=0

    start_kvd "$cdir/kvd-1.log"
    if ! wait_ready; then
        fail "kvd did not start (log: $cdir/kvd-1.log)"
    fi
    "$bin/crash-writer" --socket "$socket" --log-dir "$cdir/logs" --cycle "$cycle" --seed "$cycle_seed" \
        --threads "$THREADS" --keys-per-thread "$KEYS_PER_THREAD" --compact-every-ms "$COMPACT_EVERY_MS" \
        >"$cdir/writer.out" 2>"$cdir/writer.err" &
    writer_pid=$!
    sleep "$(seconds "$load_ms")"
    case "$moment" in
        mid-write)
            kill_kvd
            what="mid-write after $load_ms ms"
            ;;
        checkpoint | compaction)
            request=checkpoint
            if [[ "$moment" == compaction ]]; then request=compact; fi
            outcome="$("$bin/crash-kill" --socket "$socket" --pid "$kvd_pid" --request "$request" \
                --after-us "$delay_us" 2>"$cdir/crash-kill.err")" ||
                fail "crash-kill: $(head -c 300 "$cdir/crash-kill.err")"
            outcome="${outcome:-failed}"
            kill_kvd
            outcomes[$moment $outcome]=$((${outcomes[$moment $outcome]:-0} + 1))
            what="$moment after $load_ms ms, killed at +$delay_us us ($outcome)"
            ;;
        recovery)
            kill_kvd
            ;;
    esac
    status=0
    wait "$writer_pid" || status=$?
    writer_pid=""
    if ((status != 0)); then
        fail "crash-writer exit $status: $(head -c 500 "$cdir/writer.err")"
    fi
    run_fsck 1
    if [[ "$moment" == recovery ]]; then
        start_kvd "$cdir/kvd-2.log"
        if ((delay_us > 0)); then sleep "$(micro_seconds "$delay_us")"; fi
        kill_kvd
        stage="$(startup_stage "$cdir/kvd-2.log")"
        stages[$stage]=$((${stages[$stage]:-0} + 1))
        what="recovery: killed after $load_ms ms, restart killed at +$delay_us us ($stage)"
        run_fsck 2
    fi
    moments[$moment]=$((${moments[$moment]:-0} + 1))

    start_kvd "$cdir/kvd-3.log"
    if ! wait_ready; then
        fail "kvd did not restart (log: $cdir/kvd-3.log)"
    else
        status=0
        "$bin/crash-check" --socket "$socket" --log-dir "$cdir/logs" --state-in "$gdir/state" \
            --state-out "$gdir/state" --threads "$THREADS" --keys-per-thread "$KEYS_PER_THREAD" \
            >"$cdir/check.out" 2>"$cdir/check.err" || status=$?
        case "$status" in
            0) ;;
            1)
                fail "crash-check: $(grep -c '^VIOLATION' "$cdir/check.out") violations (in $cdir/check.out)"
                check_failed=1
                ;;
            *) fail "crash-check exit $status: $(head -c 500 "$cdir/check.err")" ;;
        esac
    fi
    if [[ -n "$kvd_pid" ]]; then
        status=0
        stop_kvd || status=$?
        if ((status != 0)); then
            fail "kvd exit $status after SIGTERM (log: $cdir/kvd-3.log)"
        fi
    fi

    writer_summary="$(head -n 1 "$cdir/writer.out" 2>/dev/null || true)"
    acked="$(sed -n 's/^acked=\([0-9]*\).*/\1/p' <<<"$writer_summary")"
    in_flight="$(sed -n 's/.* in_flight=\([0-9]*\).*/\1/p' <<<"$writer_summary")"
    compactions="$(sed -n 's/.* compactions=\([0-9]*\).*/\1/p' <<<"$writer_summary")"
    # Blocks the killed kvd's compactions (forced and background) reclaimed, from its log.
    reclaimed="$({ grep -o 'reclaimed=[0-9]*' "$cdir/kvd-1.log" 2>/dev/null || true; } | awk -F= '{n += $2} END {print n + 0}')"
    used="$(sed -n 's/^summary .*space_used_percent=\([0-9]*\).*/\1/p' "$cdir/check.out" 2>/dev/null || true)"
    acked_total=$((acked_total + ${acked:-0}))
    reclaimed_total=$((reclaimed_total + ${reclaimed:-0}))
    elapsed="$(seconds $(($(now_ms) - started)))"
    line="cycle $cycle/$cycles seed $cycle_seed $what: acked ${acked:-?}, in flight ${in_flight:-?},"
    line+=" compactions ${compactions:-?} (reclaimed ${reclaimed:-?} blocks), used ${used:-?}%, fsck $fsck_codes"
    if ((${#failures[@]} == 0)); then
        passed=$((passed + 1))
        echo "$line: pass (${elapsed} s)"
        if ((keep == 0)); then rm -rf "$cdir"; fi
    else
        failed=$((failed + 1))
        echo "$line: FAIL (${elapsed} s)"
        for reason in "${failures[@]}"; do
            echo "    $reason"
        done
        grep -m 20 '^VIOLATION' "$cdir/check.out" 2>/dev/null | sed 's/^/    /' || true
        if ((check_failed == 1 || keep == 1)); then
            echo "    files kept in $cdir (data file as recovered: $data)"
        else
            echo "    files kept in $cdir"
            rm -f "$data"
        fi
        new_generation
    fi
done 3<<<"$plans"

echo "kills: mid-write ${moments[mid-write]:-0}," \
    "checkpoint ${moments[checkpoint]:-0} (cut ${outcomes[checkpoint cut]:-0}, done ${outcomes[checkpoint done]:-0})," \
    "compaction ${moments[compaction]:-0} (cut ${outcomes[compaction cut]:-0}, done ${outcomes[compaction done]:-0})," \
    "recovery ${moments[recovery]:-0} (restart killed before recovery ${stages[before recovery]:-0}," \
    "in recovery ${stages[in recovery]:-0}, after recovery ${stages[after recovery]:-0}," \
    "after startup ${stages[after startup]:-0}); $acked_total acknowledged writes;" \
    "$reclaimed_total blocks reclaimed by compaction;" \
    "$(seconds $(($(now_ms) - run_started))) s"
if ((keep == 0)); then
    # The current file holds no failed cycle (a failure starts a new file).
    rm -rf "$gdir"
fi
if ((failed == 0 && keep == 0)); then
    rm -rf "$work"
else
    echo "files in $work"
fi
finished=1
echo "$passed passed, $failed failed"
((failed == 0))
