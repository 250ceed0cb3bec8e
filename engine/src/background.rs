//! The store's two background threads.
//!
//! - Maintenance: the periodic sync that `sync=periodic` promises, and
//!   periodic checkpoints.
//! - Compactor: passes while free space is short or dead bytes are many,
//!   within an I/O budget unless space is about to run out; then a
//!   checkpoint to turn the emptied (pending-free) blocks into free ones.
//!
//! Two threads, so that a long compaction never delays the periodic sync.
//! Writers wake the compactor as soon as free space drops below the
//! trigger (`Control::nudge_compactor`), instead of leaving it to the next
//! tick: a fast writer fills a 64 MiB file in a fraction of a second.

use crate::checkpoint;
use crate::compactor::{self, MOVE_BYTES_PER_SEC, Need, PASS_VICTIMS_MAX, PassOutcome};
use crate::limits::BLOCK_PAYLOAD_BYTES;
use crate::options::SyncPolicy;
use crate::store::Inner;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the background threads look at the store unprompted.
pub const TICK_MS: u64 = 100;

/// Start/stop signals shared by the store and its threads.
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Mutex<ControlState>,
    maintenance_wake: Condvar,
    compactor_wake: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: bool,
    /// A writer saw free space below the trigger since the compactor last
    /// woke; set under the mutex, so a nudge is never lost between the
    /// compactor's check and its wait.
    compaction_wanted: bool,
}

impl Control {
    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.maintenance_wake.notify_all();
        self.compactor_wake.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.state.lock().stop
    }

    /// Wakes the compactor now (at most one notification per wake-up).
    pub fn nudge_compactor(&self) {
        let mut state = self.state.lock();
        if !state.compaction_wanted {
            state.compaction_wanted = true;
            self.compactor_wake.notify_one();
        }
    }

    /// Waits up to `wait` (less when nudged); false once the store stops.
    fn wait(&self, wake: &Condvar, wait: Duration, nudgeable: bool) -> bool {
        let mut state = self.state.lock();
        let nudged = nudgeable && state.compaction_wanted;
        if !state.stop && !nudged {
            wake.wait_for(&mut state, wait);
        }
        if nudgeable {
            state.compaction_wanted = false;
        }
        !state.stop
    }
}

/// Starts the maintenance thread and, with `compaction`, the compactor.
pub(crate) fn spawn(inner: &Arc<Inner>, compaction_thread: bool) -> Vec<JoinHandle<()>> {
    let start = |name: &str, body: fn(&Inner)| {
        let inner = inner.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || body(&inner)).expect("spawn a background thread")
    };
    let mut threads = vec![start("blockkv-maintenance", maintenance)];
    if compaction_thread {
        threads.push(start("blockkv-compactor", compaction));
    }
    threads
}

/// Periodic sync and checkpoints.
fn maintenance(inner: &Inner) {
    let tick = match inner.sync {
        SyncPolicy::Periodic(every) => every.min(Duration::from_millis(TICK_MS)),
        _ => Duration::from_millis(TICK_MS),
    };
    let mut last_sync = Instant::now();
    while inner.control.wait(&inner.control.maintenance_wake, tick, false) {
        if inner.poison.is_set() {
            continue;
        }
        if let SyncPolicy::Periodic(every) = inner.sync {
            let behind = inner.commit.written_lsn.load(Ordering::Acquire) > inner.commit.synced_lsn();
            if behind && last_sync.elapsed() >= every {
                last_sync = Instant::now();
                if let Err(err) = inner.commit.sync_now(&*inner.storage, &inner.poison) {
                    tracing::error!("periodic sync failed: {err}");
                }
            }
        }
        if inner.checkpoint_due()
            && let Err(err) = checkpoint::write_checkpoint(inner)
        {
            tracing::warn!("periodic checkpoint failed: {err}");
        }
    }
}

/// The compactor thread: a run per tick or nudge.
fn compaction(inner: &Inner) {
    let mut budget = Budget::new();
    let tick = Duration::from_millis(TICK_MS);
    while inner.control.wait(&inner.control.compactor_wake, tick, true) {
        if !inner.poison.is_set() {
            compaction_run(inner, &mut budget);
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
fn compaction_run(inner: &Inner, budget: &mut Budget) {
    let started = Instant::now();
    let mut total = PassOutcome::default();
    let mut running = false;
    let mut gained = true;
    loop {
        let need = compactor::need(inner, running);
        if need == Need::None || inner.control.stopping() {
            break;
        }
        if need == Need::Budgeted && budget.refill() < 0.0 {
            let deficit = -budget.tokens / MOVE_BYTES_PER_SEC as f64;
            if !inner.control.wait(&inner.control.compactor_wake, Duration::from_secs_f64(deficit), false) {
                break;
            }
            continue;
        }
        running = true;
        match compactor::compact_pass(inner, PASS_VICTIMS_MAX, u64::MAX) {
            Ok(pass) => {
                budget.tokens -= pass.bytes_moved as f64;
                total.victims += pass.victims;
                total.blocks_reclaimed += pass.blocks_reclaimed;
                total.bytes_moved += pass.bytes_moved;
                gained = gains(&pass);
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
        release_pending(inner, false);
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
        release_pending(inner, true);
    }
    if !gained {
        // Nothing worth moving now: wait a tick for overwrites and deletes
        // to make dead space, ignoring nudges (they would only repeat the
        // same fruitless pass).
        inner.control.wait(&inner.control.compactor_wake, Duration::from_millis(TICK_MS), false);
    }
}

/// Writer-assisted compaction: while free space (pending-free included) is
/// below `FREE_FRACTION_URGENT`, each user write first runs one pass
/// itself, or waits for the compactor thread's pass in progress. Writers
/// that outrun the compactor are slowed to its pace here, a pass at a time,
/// instead of running the file dry and stalling on a full reclaim.
pub(crate) fn assist_compaction(inner: &Inner) {
    if !inner.space_short.load(Ordering::Relaxed) {
        return;
    }
    inner.control.nudge_compactor();
    // No checkpoint here: its three syncs inside a user's put were a third
    // of the puts slower than 100 µs at 10,000 puts/s. The compactor thread
    // releases the emptied blocks (`release_pending`), and a write that
    // finds no room at all reclaims them itself.
    if let Err(err) = compactor::compact_pass(inner, PASS_VICTIMS_MAX, u64::MAX) {
        // The write itself will find out (and reclaim, or report NoSpace).
        tracing::debug!("assisting compaction failed: {err}");
    }
}

/// Whether a pass emptied more blocks than its copies filled: when not, the
/// log is as compact as this policy makes it.
pub(crate) fn gains(pass: &PassOutcome) -> bool {
    pass.blocks_reclaimed > pass.bytes_moved.div_ceil(BLOCK_PAYLOAD_BYTES as u64)
}

/// Checkpoints to make pending-free blocks allocatable. A checkpoint costs
/// a snapshot's worth of writes, so it releases a batch
/// (`release_batch_blocks`) — mid-run once free space is short, at the end
/// of a run whenever one gathered — and anything at all when free space is
/// below the trigger at the end of a run, or nearly gone.
fn release_pending(inner: &Inner, end_of_run: bool) {
    let release = {
        let table = inner.table.lock();
        let pending = table.pending_count();
        let batch = pending >= compactor::release_batch_blocks(&table);
        let free = compactor::free_fraction(&table, false);
        let critical = table.free_count() < 2 * table.reserve_blocks() + PASS_VICTIMS_MAX as u64;
        pending > 0
            && (critical
                || batch && free < compactor::FREE_FRACTION_URGENT
                || end_of_run && (batch || free < compactor::FREE_FRACTION_MIN))
    };
    if release && let Err(err) = checkpoint::write_checkpoint(inner) {
        tracing::warn!("checkpoint to release compacted blocks failed: {err}");
    }
}
