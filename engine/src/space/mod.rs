//! Space: the block table and the rules over it — the reserve kept for the
//! next checkpoint, how short of free blocks the file is, and the NoSpace
//! error a write gets when it finds no room.
//!
//! - `table`: which blocks are in use, what each holds, its live bytes.
//! - `pending`: the pending-free rule (invariant 5, docs/DESIGN.md).
//!
//! The table is behind one lock (lock order: engine.rs); `Space::lock`
//! hands it out, and the rules here take the locked table as a parameter.

mod pending;
mod table;

pub use table::{BlockTable, BlockUse, Purpose};

use crate::error::Error;
use crate::format::snapshot::snapshot_blocks;
use crate::format::{BLOCK_BYTES, FIRST_DATA_BLOCK};
use crate::limits::RESERVE_BLOCKS_MIN;
use crate::sleep_lock::SleepLock;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicBool, Ordering};

/// Background trigger: compaction starts when free (and pending-free)
/// blocks fall below this fraction of the data blocks...
pub const FREE_FRACTION_MIN: f64 = 0.20;
/// ...and, once started, goes on until they reach this one (the gap makes
/// each run, and the checkpoint that ends it, worth its cost).
pub const FREE_FRACTION_TARGET: f64 = 0.25;
/// Below this the compactor ignores its I/O budget and releases pending
/// blocks mid-run, and user writes assist it: writes are about to stall.
pub const FREE_FRACTION_URGENT: f64 = 0.10;

/// The block table and the space rules.
#[derive(Debug)]
pub(crate) struct Space {
    table: SleepLock<BlockTable>,
    /// Free space (pending-free included) below `FREE_FRACTION_URGENT` at
    /// the last write: user writes then assist the compactor. Read by every
    /// put without a lock.
    short: AtomicBool,
    block_count: u32,
}

impl Space {
    pub fn new(table: BlockTable) -> Self {
        Space { block_count: table.block_count(), table: SleepLock::new(table), short: AtomicBool::new(false) }
    }

    /// The block table, locked.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, BlockTable> {
        self.table.lock()
    }

    pub fn block_count(&self) -> u32 {
        self.block_count
    }

    pub fn capacity_bytes(&self) -> u64 {
        u64::from(self.block_count) * BLOCK_BYTES as u64
    }

    /// Keeps room for a snapshot of `entries` keys (sized for every block
    /// in use) plus the margin that deletes may use.
    #[inline]
    pub fn reserve_for(&self, table: &mut BlockTable, entries: u64) {
        let blocks = u64::from(self.block_count);
        table.set_reserve_blocks(snapshot_blocks(blocks, blocks, entries), RESERVE_BLOCKS_MIN);
    }

    /// After a write: the reserve for the next checkpoint's snapshot, sized
    /// for the `index_len` keys there are and one more, and the `short` flag.
    #[inline]
    pub fn update_reserve(&self, table: &mut BlockTable, index_len: u64) {
        self.reserve_for(table, index_len + 1);
        let short = free_fraction(table, true) < FREE_FRACTION_URGENT;
        self.short.store(short, Ordering::Relaxed);
    }

    /// Whether the last write left free space below `FREE_FRACTION_URGENT`.
    #[inline]
    pub fn is_short(&self) -> bool {
        self.short.load(Ordering::Relaxed)
    }

    /// The error of a write that wanted `blocks_wanted` blocks and found no room.
    pub fn no_space(&self, table: &BlockTable, blocks_wanted: u64) -> Error {
        Error::NoSpace {
            needed_blocks: blocks_wanted,
            free_blocks: table.free_count(),
            reserved_blocks: table.reserve_blocks(),
            live_bytes: table.live_total(),
            capacity_bytes: self.capacity_bytes(),
        }
    }

    /// Calls `visit` with every LOG block in use, its generation and live
    /// bytes, `chunk_blocks` blocks per hold of the table lock (see
    /// `table::for_each_log_block`).
    pub fn for_each_log_block(&self, chunk_blocks: u32, visit: impl FnMut(u32, u64, u32)) {
        table::for_each_log_block(&self.table, chunk_blocks, visit);
    }
}

/// Free blocks as a fraction of the data blocks; with `with_pending`, the
/// pending-free ones count too (they are free after the next checkpoint).
pub(crate) fn free_fraction(table: &BlockTable, with_pending: bool) -> f64 {
    let data_blocks = u64::from(table.block_count()).saturating_sub(u64::from(FIRST_DATA_BLOCK)).max(1);
    let pending = if with_pending { table.pending_count() } else { 0 };
    (table.free_count() + pending) as f64 / data_blocks as f64
}

/// Whether free space is below the write trigger (writers nudge the
/// compactor then).
pub(crate) fn wanted_by_writers(table: &BlockTable) -> bool {
    free_fraction(table, true) < FREE_FRACTION_MIN
}
