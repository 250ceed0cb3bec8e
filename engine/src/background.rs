//! The store's background threads.
//!
//! - Maintenance: the periodic sync that `sync=periodic` promises, and
//!   periodic checkpoints.
//! - Compactor: passes while free space is short or dead bytes are many,
//!   within an I/O budget unless space is about to run out; then a
//!   checkpoint to turn the emptied (pending-free) blocks into free ones.
//! - Expiry: a round of active expiry per tick (expiry/), within
//!   `ROUND_MS_MAX` of it.
//!
//! Threads of their own, so that a long compaction never delays the
//! periodic sync, and neither delays expiry.
//! Writers wake the compactor through `Control` (control.rs).

use crate::compaction::{self, MOVE_BYTES_PER_SEC, Need, PASS_VICTIMS_MAX, PassOutcome};
use crate::control::Thread;
use crate::engine::Engine;
use crate::expiry::{ROUND_KEYS_MAX, ROUND_MS_MAX};
use crate::options::SyncPolicy;
use crate::space;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the background threads look at the store unprompted.
pub const TICK_MS: u64 = 100;

/// Starts the maintenance thread and, with `compaction_thread` and
/// `expiry_thread`, the compactor and the expiry thread.
pub(crate) fn spawn(engine: &Arc<Engine>, compaction_thread: bool, expiry_thread: bool) -> Vec<JoinHandle<()>> {
    let start = |name: &str, body: fn(&Engine)| {
        let engine = engine.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || body(&engine)).expect("spawn a background thread")
    };
    let mut threads = vec![start("blockkv-maintenance", maintenance)];
    if compaction_thread {
        threads.push(start("blockkv-compactor", compaction));
    }
    if expiry_thread {
        threads.push(start("blockkv-expiry", expiry));
    }
    threads
}

/// The expiry thread: a round per tick, within its share of the tick (the
/// wait is what is left of the tick, so a round that uses its whole budget
/// takes `ROUND_MS_MAX` of every `TICK_MS`).
fn expiry(engine: &Engine) {
    let tick = Duration::from_millis(TICK_MS);
    let mut wait = tick;
    // One warning per run of failed rounds (a full file fails every tick).
    let mut failing = false;
    while engine.control.wait_for(Thread::Expiry, wait, false) {
        let started = Instant::now();
        wait = tick;
        if engine.writer.poison().is_set() {
            continue;
        }
        match engine.expire_round(ROUND_KEYS_MAX, Some(started + Duration::from_millis(ROUND_MS_MAX))) {
            Ok(round) => {
                failing = false;
                if round.removed > 0 {
                    tracing::debug!(removed = round.removed, more = round.more_due, "expiry round");
                }
            }
            Err(err) if !failing => {
                failing = true;
                tracing::warn!("expiry round failed (keys stay until a round succeeds): {err}");
            }
            Err(_) => {}
        }
        wait = tick.saturating_sub(started.elapsed());
    }
}

/// Periodic sync and checkpoints.
fn maintenance(engine: &Engine) {
    // Read each round: the sync interval may change while the store runs.
    let tick = || match engine.writer.sync_policy() {
        SyncPolicy::Periodic(every) => every.min(Duration::from_millis(TICK_MS)),
        _ => Duration::from_millis(TICK_MS),
    };
    let mut last_sync = Instant::now();
    while engine.control.wait_for(Thread::Maintenance, tick(), false) {
        if engine.writer.poison().is_set() {
            continue;
        }
        if let SyncPolicy::Periodic(every) = engine.writer.sync_policy() {
            let (written, synced) = engine.writer.written_and_synced_lsn();
            if written > synced && last_sync.elapsed() >= every {
                last_sync = Instant::now();
                if let Err(err) = engine.writer.sync_now(&*engine.storage) {
                    tracing::error!("periodic sync failed: {err}");
                }
            }
        }
        if engine.checkpointer.due(&engine.checkpoint_parts())
            && let Err(err) = engine.checkpoint()
        {
            tracing::warn!("periodic checkpoint failed: {err}");
        }
    }
}

/// The compactor thread: a run per tick or nudge.
fn compaction(engine: &Engine) {
    let mut budget = Budget::new();
    let tick = Duration::from_millis(TICK_MS);
    while engine.control.wait_for(Thread::Compactor, tick, true) {
        if !engine.writer.poison().is_set() {
            compaction_run(engine, &mut budget);
        }
    }
}

/// The I/O budget: a token bucket of bytes the compactor may move,
/// refilled at `MOVE_BYTES_PER_SEC` and holding at most one tick's worth.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Self {
        Budget { tokens: 0.0, at: Instant::now() }
    }

    fn refill(&mut self) -> f64 {
        let rate = MOVE_BYTES_PER_SEC as f64;
        let now = Instant::now();
        self.tokens = (self.tokens + rate * (now - self.at).as_secs_f64()).min(rate * TICK_MS as f64 / 1000.0);
        self.at = now;
        self.tokens
    }
}

/// Passes while compaction is needed: within the budget (waiting for it to
/// refill) unless urgent, until a pass gains nothing. Pending-free blocks
/// are released by a checkpoint when free space runs short during the run,
/// and at its end.
fn compaction_run(engine: &Engine, budget: &mut Budget) {
    let parts = engine.compaction_parts();
    let started = Instant::now();
    let mut total = PassOutcome::default();
    let mut running = false;
    let mut gained = true;
    loop {
        let need = parts.need(running);
        if need == Need::None || engine.control.stopping() {
            break;
        }
        if need == Need::Budgeted && budget.refill() < 0.0 {
            let deficit = -budget.tokens / MOVE_BYTES_PER_SEC as f64;
            if !engine.control.wait_for(Thread::Compactor, Duration::from_secs_f64(deficit), false) {
                break;
            }
            continue;
        }
        running = true;
        match parts.pass(PASS_VICTIMS_MAX, u64::MAX) {
            Ok(pass) => {
                budget.tokens -= pass.bytes_moved as f64;
                total.victims += pass.victims;
                total.blocks_reclaimed += pass.blocks_reclaimed;
                total.bytes_moved += pass.bytes_moved;
                gained = pass.gains();
                if !gained {
                    break;
                }
            }
            Err(err) => {
                tracing::warn!("compaction pass failed: {err}");
                gained = false;
                break;
            }
        }
        release_pending(&parts, false);
    }
    if total.blocks_reclaimed > 0 {
        tracing::info!(
            reclaimed = total.blocks_reclaimed,
            moved = total.bytes_moved,
            ms = started.elapsed().as_millis() as u64,
            "compaction"
        );
    }
    if running {
        release_pending(&parts, true);
    }
    if !gained {
        // Nothing worth moving now: wait a tick for overwrites and deletes
        // to make dead space, ignoring nudges (they would only repeat the
        // same fruitless pass).
        engine.control.wait_for(Thread::Compactor, Duration::from_millis(TICK_MS), false);
    }
}

/// Writer-assisted compaction: while free space (pending-free included) is
/// below `FREE_FRACTION_URGENT`, each user write first runs one pass
/// itself, or waits for the compactor thread's pass in progress. Writers
/// that outrun the compactor are slowed to its pace here, a pass at a time,
/// instead of running the file dry and stalling on a full reclaim.
#[inline]
pub(crate) fn assist_compaction(engine: &Engine) {
    if !engine.space.is_short() {
        return;
    }
    engine.control.nudge_compactor();
    // No checkpoint here: its three syncs would land inside a user's put
    // (docs/BENCHMARKS.md). The compactor thread releases the emptied
    // blocks (`release_pending`), and a write that finds no room at all
    // reclaims them itself.
    if let Err(err) = engine.compaction_parts().pass(PASS_VICTIMS_MAX, u64::MAX) {
        // The write itself will find out (and reclaim, or report NoSpace).
        tracing::debug!("assisting compaction failed: {err}");
    }
}

/// Checkpoints to make pending-free blocks allocatable. A checkpoint costs
/// a snapshot's worth of writes, so it releases a batch
/// (`release_batch_blocks`) — mid-run once free space is short, at the end
/// of a run whenever one gathered — and anything at all when free space is
/// below the trigger at the end of a run, or nearly gone.
fn release_pending(parts: &compaction::Parts<'_>, end_of_run: bool) {
    let release = {
        let table = parts.space.lock();
        let pending = table.pending_count();
        let batch = pending >= compaction::release_batch_blocks(&table);
        let free = space::free_fraction(&table, false);
        let critical = table.free_count() < 2 * table.reserve_blocks() + PASS_VICTIMS_MAX as u64;
        pending > 0
            && (critical
                || batch && free < space::FREE_FRACTION_URGENT
                || end_of_run && (batch || free < space::FREE_FRACTION_MIN))
    };
    if release && let Err(err) = parts.checkpoint_now() {
        tracing::warn!("checkpoint to release compacted blocks failed: {err}");
    }
}
