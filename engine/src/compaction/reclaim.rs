//! Reclaiming room for a write (or for `Store::compact`): passes, and the
//! checkpoints that turn emptied blocks into free ones.

use super::{PASS_VICTIMS_MAX, Parts, PassOutcome, release_batch_blocks};
use crate::error::{Error, Result};

/// Runs compaction passes until `blocks_wanted` blocks (beyond the
/// reserve) are free, or will be once a batch worth a checkpoint is
/// pending (`release_batch_blocks`), or passes stop gaining; then
/// checkpoints if the free blocks alone are not enough. When a pass finds
/// no room for its copies while emptied blocks wait, the checkpoint comes
/// first and the passes go on with the room it released.
/// `blocks_wanted = u64::MAX`: compact all that gains.
pub(super) fn reclaim(parts: &Parts<'_>, blocks_wanted: u64) -> Result<PassOutcome> {
    let mut total = PassOutcome::default();
    // Only blocks written before this run are victims. The run's own
    // copies are packed as densely as the log packs anything (blocks keep
    // some slack: `SPLIT_ROOM_MIN_BYTES`): moved again, they would gain
    // nothing, and would be moved once their sources were gone.
    let generation_below = parts.writer.lock().replay_gen();
    // Every round either gains a block or releases pending ones, and
    // ends when it can do neither; the bound is a second guard.
    for _ in 0..parts.space.block_count() {
        // Out of room: no victim's copies fit, or the copies ran out.
        let (gained, out_of_room) = match parts.pass(PASS_VICTIMS_MAX, generation_below) {
            Ok(pass) => {
                total.victims += pass.victims;
                total.blocks_reclaimed += pass.blocks_reclaimed;
                total.records_moved += pass.records_moved;
                total.bytes_moved += pass.bytes_moved;
                (pass.gains(), pass.victims == 0)
            }
            Err(Error::NoSpace { .. }) => (false, true),
            Err(err) => return Err(err),
        };
        let (enough, pending) = {
            let table = parts.space.lock();
            let wanted = blocks_wanted.saturating_add(table.reserve_blocks());
            let pending = table.pending_count();
            let batch = pending >= release_batch_blocks(&table);
            (table.free_count() >= wanted || table.free_count() + pending >= wanted && batch, pending)
        };
        let room_to_release = out_of_room && pending > 0;
        if enough || !gained && !room_to_release {
            break;
        }
        if out_of_room {
            parts.checkpoint_now()?;
        }
    }
    let needed = {
        let table = parts.space.lock();
        table.pending_count() > 0 && table.free_count() < blocks_wanted.saturating_add(table.reserve_blocks())
    };
    if needed {
        parts.checkpoint_now()?;
    }
    Ok(total)
}
