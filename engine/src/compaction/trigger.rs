//! When compaction is wanted (background trigger, writers' urgency) and when
//! pending-free blocks are worth the checkpoint that releases them.

use super::PASS_VICTIMS_MAX;
use crate::format::FIRST_DATA_BLOCK;
use crate::limits::BLOCK_PAYLOAD_BYTES;
use crate::space::{self, BlockTable, FREE_FRACTION_MIN, FREE_FRACTION_TARGET, FREE_FRACTION_URGENT, Space};

/// Compaction also starts when dead bytes exceed this fraction of the
/// file, however much of it is free. Measured against the file, not
/// against the bytes LOG blocks occupy: a file mostly free, of overwritten
/// small values, would otherwise compact without end for no space anyone
/// needs (docs/BENCHMARKS.md).
pub const DEAD_FILE_FRACTION_MAX: f64 = 0.25;
/// I/O budget of background compaction: bytes of records moved per second.
/// Above it the compactor waits, so foreground writes keep the disk; when
/// free blocks run short it runs unthrottled, or writes would stall.
pub const MOVE_BYTES_PER_SEC: u64 = 64 * 1024 * 1024;

/// Whether compaction is wanted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    None,
    /// Within the I/O budget.
    Budgeted,
    /// Free space about to run out: ignore the budget.
    Urgent,
}

/// Pending-free blocks worth a checkpoint to release: a checkpoint writes
/// a whole snapshot, so it should free many times that — at least four
/// snapshots' worth and a sixteenth of the file.
pub(crate) fn release_batch_blocks(table: &BlockTable) -> u64 {
    let data_blocks = u64::from(table.block_count()).saturating_sub(u64::from(FIRST_DATA_BLOCK));
    (4 * table.reserve_blocks()).max(data_blocks / 16).max(PASS_VICTIMS_MAX as u64)
}

/// Whether background compaction should run now; `running` (a run under
/// way) raises the bar from `FREE_FRACTION_MIN` to `FREE_FRACTION_TARGET`.
pub(crate) fn need(space: &Space, running: bool) -> Need {
    let table = space.lock();
    let free = space::free_fraction(&table, true);
    let free_blocks = table.free_count() + table.pending_count();
    if free < FREE_FRACTION_URGENT || free_blocks < 2 * table.reserve_blocks() + PASS_VICTIMS_MAX as u64 {
        return Need::Urgent;
    }
    if free < if running { FREE_FRACTION_TARGET } else { FREE_FRACTION_MIN } {
        return Need::Budgeted;
    }
    // Only LOG blocks hold live bytes (snapshot and free blocks count 0).
    let occupied = table.log_count() * BLOCK_PAYLOAD_BYTES as u64;
    let dead = occupied.saturating_sub(table.live_total());
    let capacity = u64::from(table.block_count()) * BLOCK_PAYLOAD_BYTES as u64;
    if dead as f64 > DEAD_FILE_FRACTION_MAX * capacity as f64 { Need::Budgeted } else { Need::None }
}
