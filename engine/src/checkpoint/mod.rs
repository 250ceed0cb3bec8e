//! The checkpointer: the durable checkpoint as the running store knows it,
//! when the next one is due, and writing it.
//!
//! Ordering of a checkpoint (invariant 4, docs/DESIGN.md):
//! 1. Under the log lock, capture covered_lsn, replay_gen and replay_offset
//!    (where replay starts: covered records are never parsed again), the
//!    block table and the index: nothing is half-appended, so they agree.
//! 2. Write the snapshot chain into free blocks (`chain`: which ones).
//! 3. fdatasync: covers the chain and every record with lsn <= covered_lsn.
//! 4. Write the slot header (both copies) into the slot that is *not* current.
//! 5. fdatasync: now, and only now, the checkpoint is current; blocks that
//!    were pending free before the capture, and the previous snapshot chain,
//!    become allocatable.
//!
//! `write`: the steps (and `write_cleared`, the same with the index emptied
//! in the capture: `Store::clear`'s commit point); `chain`: allocating the
//! snapshot chain.

mod chain;
mod write;

use crate::clock::Clock;
use crate::format::snapshot::INDEX_ENTRY_BYTES;
use crate::index::Index;
use crate::options::Options;
use crate::space::Space;
use crate::storage::Storage;
use crate::ttl::TtlTable;
use crate::writer::{self, Writer};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a checkpoint did, for logs and stats.
#[derive(Debug, Clone)]
pub struct CheckpointInfo {
    pub id: u64,
    pub covered_lsn: u64,
    pub entries: u64,
    pub snapshot_blocks: u64,
    /// Tombstones written to the log for blocks the snapshot took (see
    /// `chain::allocate_chain`): newer than `covered_lsn`, so replayed after it.
    pub tombstones_carried: u64,
    pub elapsed: Duration,
}

/// The current (durable) checkpoint as recovery found it.
#[derive(Debug)]
pub(crate) struct Current {
    /// Its id; the next one is `id + 1`.
    pub id: u64,
    /// Slot (0 = A, 1 = B) holding it; the next goes to the other.
    pub slot: usize,
    /// Its snapshot blocks, freed when a newer one is durable.
    pub chain: Vec<u32>,
}

/// The subsystems a checkpoint reads and writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub storage: &'a dyn Storage,
    pub clock: &'a dyn Clock,
    pub space: &'a Space,
    pub index: &'a Index,
    pub ttl: &'a TtlTable,
    pub writer: &'a Writer,
}

impl<'a> Parts<'a> {
    /// What the checkpoint's own appends (carried tombstones) update.
    fn append(&self) -> writer::Parts<'a> {
        writer::Parts { storage: self.storage, space: self.space, index: self.index, ttl: self.ttl }
    }
}

/// The durable checkpoint, as the running store knows it.
#[derive(Debug)]
struct CheckpointState {
    current: Current,
    /// Log bytes written when the current checkpoint was captured.
    log_bytes_at: u64,
    at: Instant,
}

/// The checkpointer: its state (one checkpoint at a time: the state's lock
/// is held throughout one), its trigger, its counters.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    state: Mutex<CheckpointState>,
    read_only: bool,
    /// Due after this many ms with anything written since the last one
    /// (0: never by time); `set_interval` changes it while the store runs.
    interval_ms: AtomicU64,
    /// Due after this many log bytes (or a snapshot's worth, if larger).
    log_bytes: u64,
    /// Checkpoints written.
    written: AtomicU64,
    /// Bytes checkpoints wrote (snapshot blocks and slot headers).
    bytes_written: AtomicU64,
}

impl Checkpointer {
    pub fn new(current: Current, opts: &Options) -> Self {
        Checkpointer {
            state: Mutex::new(CheckpointState { current, log_bytes_at: 0, at: Instant::now() }),
            read_only: opts.read_only,
            interval_ms: AtomicU64::new(opts.checkpoint_interval.map_or(0, |every| every.as_millis().max(1) as u64)),
            log_bytes: opts.checkpoint_log_bytes,
            written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }
    }

    /// How long after the last checkpoint, with writes since, the next is due.
    pub fn interval(&self) -> Option<Duration> {
        let ms = self.interval_ms.load(Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    pub fn set_interval(&self, every: Option<Duration>) {
        self.interval_ms.store(every.map_or(0, |every| every.as_millis().max(1) as u64), Ordering::Relaxed);
    }

    /// How long ago the current checkpoint was written (or the store opened).
    pub fn age(&self) -> Duration {
        self.state.lock().at.elapsed()
    }

    /// The current checkpoint's id.
    pub fn id(&self) -> u64 {
        self.state.lock().current.id
    }

    /// Checkpoints written since open.
    pub fn count(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes checkpoints wrote since open.
    pub fn bytes(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Whether the log grew enough, or enough time passed with writes, for
    /// the next checkpoint.
    pub fn due(&self, parts: &Parts<'_>) -> bool {
        let written = parts.writer.lock().bytes_written;
        let (at_bytes, at_time) = {
            let state = self.state.lock();
            (state.log_bytes_at, state.at)
        };
        let since = written.saturating_sub(at_bytes);
        let snapshot_bytes = parts.index.len() * INDEX_ENTRY_BYTES as u64;
        since >= self.log_bytes.max(snapshot_bytes)
            || (since > 0 && self.interval().is_some_and(|every| at_time.elapsed() >= every))
    }
}
