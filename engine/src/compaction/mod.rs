//! The compactor: moves live records out of mostly-dead LOG blocks and
//! frees those blocks through the pending-free list.
//!
//! A pass, in order (each step says why it is safe in docs/RECOVERY.md,
//! "Compaction"):
//! 1. When the ranked queue cannot fill a pass (about once per 16
//!    passes), rank the blocks without holding a lock for long
//!    (`rank_victims`); then,
//!    under the log lock, pick victims by LFS cost-benefit,
//!    `(1 - u) * age / (1 + u)`, u = live bytes / payload bytes, age = how
//!    many generations ago the block was opened, plus the oldest blocks in
//!    use (`OLDEST_VICTIMS_PER_PASS`, so the log's tail keeps moving and
//!    tombstones can go). The
//!    active block is never a victim, so every victim is sealed: its bytes
//!    do not change until it is freed.
//! 2. Read each victim in generation order (no lock: it is sealed). A put
//!    no index entry points at is dead for good (in a running store,
//!    entries only ever point at new records at the head), so those are
//!    told before the log lock; every other record is decided under it —
//!    every write
//!    publishes to the index under it, so what the index says cannot
//!    change between the decision and the copy. A live put is read before
//!    the lock (its bytes cannot change) and checked again under it (a
//!    write may have replaced it meanwhile). The lock is released
//!    after each record, so a foreground write waits for one copy at most:
//!    - a put the index names: move it (append a copy with a new LSN, then
//!      point the index at the copy) — or, if it has expired, treat it as a
//!      delete (below);
//!    - a put the index does not name: dead, dropped (told before the
//!      log lock, as said above);
//!    - a tombstone whose key the index holds: superseded, dropped;
//!    - a tombstone whose key is absent: kept (re-appended) unless every
//!      LOG block older than the victim is a victim of this pass too — then
//!      no older version of the key survives anywhere a recovery looks.
//!
//!    A record that starts in an older block and continues into a victim
//!    is found by walking back through its fragments (`move_continued`).
//! 3. Move the emptied victims to the pending-free list; they become
//!    allocatable once the next checkpoint is durable.
//!
//! Files: `trigger` (when compaction is wanted, when pending blocks are
//! worth a checkpoint), `victims` (ranking and the victim queue), `pass`
//! (one pass), `moves` (emptying one victim), `reclaim` (passes and
//! checkpoints until a write has room). The compactor's locks (pass, skip
//! set, victim queue) sit in the engine's lock order (engine.rs).

mod moves;
mod pass;
mod reclaim;
#[cfg(test)]
mod tests;
mod trigger;
mod victims;

pub use crate::space::{FREE_FRACTION_MIN, FREE_FRACTION_TARGET, FREE_FRACTION_URGENT};
pub use trigger::{DEAD_FILE_FRACTION_MAX, MOVE_BYTES_PER_SEC};
pub(crate) use trigger::{Need, release_batch_blocks};
pub use victims::{RANK_CHUNK_BLOCKS, VICTIM_QUEUE_BLOCKS};

use crate::checkpoint::{self, Checkpointer};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::limits::BLOCK_PAYLOAD_BYTES;
use crate::space::Space;
use crate::storage::Storage;
use crate::ttl::TtlTable;
use crate::writer::{self, Writer};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most victims in one pass: bounds how long one pass holds the log lock.
pub const PASS_VICTIMS_MAX: usize = 16;
/// The oldest blocks in use that join every pass (the rest are chosen by
/// cost-benefit): the log's tail must move for tombstones to go.
pub const OLDEST_VICTIMS_PER_PASS: usize = 4;
/// Blocks fuller than this are never victims: moving them frees too little.
pub const VICTIM_UTILIZATION_MAX: f64 = 0.95;

/// The compactor's counters (shown in STATS).
#[derive(Debug, Default)]
pub struct CompactionCounters {
    pub passes: AtomicU64,
    pub blocks_reclaimed: AtomicU64,
    pub records_moved: AtomicU64,
    pub bytes_moved: AtomicU64,
    pub tombstones_dropped: AtomicU64,
    pub tombstones_kept: AtomicU64,
    pub expired_dropped: AtomicU64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    pub victims: u64,
    pub blocks_reclaimed: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
}

impl PassOutcome {
    /// Whether the pass emptied more blocks than its copies filled: when
    /// not, the log is as compact as this policy makes it.
    pub(crate) fn gains(&self) -> bool {
        self.blocks_reclaimed > self.bytes_moved.div_ceil(BLOCK_PAYLOAD_BYTES as u64)
    }
}

/// The compactor's own state: one pass at a time, its counters, the blocks
/// it found damaged, and the victims ranked by the last full scoring.
#[derive(Debug, Default)]
pub(crate) struct Compactor {
    /// Held for a whole compaction pass: one compactor at a time.
    pass: Mutex<()>,
    counters: CompactionCounters,
    /// Blocks the compactor found damaged and leaves alone.
    skip: Mutex<HashSet<u32>>,
    /// Victims ranked by the last full scoring, best last (victims.rs).
    victims: Mutex<Vec<(u32, u64)>>,
}

impl Compactor {
    pub fn counters(&self) -> &CompactionCounters {
        &self.counters
    }
}

/// The compactor and the subsystems its passes use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub compactor: &'a Compactor,
    pub storage: &'a dyn Storage,
    pub clock: &'a dyn Clock,
    pub space: &'a Space,
    pub index: &'a Index,
    pub ttl: &'a TtlTable,
    pub writer: &'a Writer,
    pub checkpointer: &'a Checkpointer,
    pub read_only: bool,
}

impl<'a> Parts<'a> {
    /// What the compactor's appends update.
    fn append(&self) -> writer::Parts<'a> {
        writer::Parts { storage: self.storage, space: self.space, index: self.index, ttl: self.ttl }
    }

    /// What a checkpoint the compactor asks for uses.
    fn checkpoint(&self) -> checkpoint::Parts<'a> {
        checkpoint::Parts {
            storage: self.storage,
            clock: self.clock,
            space: self.space,
            index: self.index,
            ttl: self.ttl,
            writer: self.writer,
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.writer.poison().check()
    }

    /// One compaction pass (pass.rs).
    pub fn pass(&self, max_victims: usize, generation_below: u64) -> Result<PassOutcome> {
        pass::compact_pass(self, max_victims, generation_below)
    }

    /// Passes and checkpoints until `blocks_wanted` blocks are free
    /// (reclaim.rs).
    pub fn reclaim(&self, blocks_wanted: u64) -> Result<PassOutcome> {
        reclaim::reclaim(self, blocks_wanted)
    }

    /// Whether background compaction should run now (trigger.rs).
    pub fn need(&self, running: bool) -> Need {
        trigger::need(self.space, running)
    }

    /// Writes a checkpoint (to release pending-free blocks).
    pub fn checkpoint_now(&self) -> Result<checkpoint::CheckpointInfo> {
        self.checkpointer.write(&self.checkpoint())
    }
}

/// Adds a pass's numbers to the counters.
fn count_pass(counters: &CompactionCounters, outcome: &PassOutcome) {
    counters.passes.fetch_add(1, Ordering::Relaxed);
    counters.blocks_reclaimed.fetch_add(outcome.blocks_reclaimed, Ordering::Relaxed);
    counters.records_moved.fetch_add(outcome.records_moved, Ordering::Relaxed);
    counters.bytes_moved.fetch_add(outcome.bytes_moved, Ordering::Relaxed);
}
