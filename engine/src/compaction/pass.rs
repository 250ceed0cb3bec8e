//! One compaction pass: pick victims, empty them in generation order, move
//! the emptied ones to the pending-free list.

use super::moves::empty_block;
use super::victims::{pick_victims, rerank};
use super::{Parts, PassOutcome, count_pass};
use crate::error::{Error, Result};
use crate::space::BlockUse;
use std::collections::HashSet;

/// A victim after the pass tried to empty it.
struct Processed {
    block: u32,
    /// Emptied without error.
    ok: bool,
    /// Dropped a record that only the older victims' going makes safe to drop.
    dropped: bool,
}

/// One compaction pass over up to `max_victims` blocks, each of a
/// generation below `generation_below` (`u64::MAX`: any) or with no live
/// put left.
pub(crate) fn compact_pass(parts: &Parts<'_>, max_victims: usize, generation_below: u64) -> Result<PassOutcome> {
    let _only_one = parts.compactor.pass.lock();
    parts.writable()?;
    let mut outcome = PassOutcome::default();
    let victims = choose(parts, max_victims, generation_below);
    if victims.is_empty() {
        return Ok(outcome);
    }
    outcome.victims = victims.len() as u64;
    let (processed, stop) = empty_all(parts, &victims, &mut outcome);
    // Durability: no sync here. The copies need not be on disk yet: their
    // sources stay intact and findable until the checkpoint that frees
    // them, which syncs first — pending blocks are never written to, and
    // they hold the full-scan floor down (`oldest_generation`). A crash
    // before then recovers the sources (and any copies that made it: same
    // value, newer LSN).
    free_emptied(parts, processed, &mut outcome);
    count_pass(&parts.compactor.counters, &outcome);
    match stop {
        Some(err) if outcome.blocks_reclaimed == 0 => Err(err),
        _ => Ok(outcome),
    }
}

/// The pass's victims, in generation order.
fn choose(parts: &Parts<'_>, max_victims: usize, generation_below: u64) -> Vec<(u32, u64)> {
    // Ranked again as soon as the queue cannot fill a pass, not only once
    // it is empty: a pass of the oldest blocks and a few left over gains
    // nothing, and the compactor would sleep a tick while writers run the
    // file short. Ranked before the log lock is taken: ranking walks every
    // block.
    if parts.compactor.victims.lock().len() < max_victims {
        rerank(parts, generation_below);
    }
    let mut victims = pick_victims(parts, &parts.writer.lock(), max_victims, generation_below);
    if victims.is_empty() && generation_below != u64::MAX {
        // The queue may have held only blocks above the bound (ranked by
        // an unbounded run): rank once more within it.
        rerank(parts, generation_below);
        victims = pick_victims(parts, &parts.writer.lock(), max_victims, generation_below);
    }
    victims
}

/// Empties each victim in turn; returns what became of each and the error
/// that stopped the pass (or that a later victim may not share), if any.
fn empty_all(parts: &Parts<'_>, victims: &[(u32, u64)], outcome: &mut PassOutcome) -> (Vec<Processed>, Option<Error>) {
    let victim_set: HashSet<u32> = victims.iter().map(|&(block, _)| block).collect();
    // Tombstones in a victim may go only if every older LOG block in use is
    // also a victim (and is emptied: see `free_emptied`). Blocks opened
    // from here on are newer, and only this pass frees LOG blocks, so this
    // bound can only become more cautious while the pass runs.
    let oldest_other = {
        let table = parts.space.lock();
        table.log_blocks_by_age().find(|(block, _, _)| !victim_set.contains(block)).map(|(_, generation, _)| generation)
    };
    let mut processed = Vec::with_capacity(victims.len());
    let mut stop = None;
    let mut all_emptied = true;
    for &(block, generation) in victims {
        let may_drop = all_emptied && oldest_other.is_none_or(|oldest| generation < oldest);
        match empty_block(parts, block, may_drop, outcome) {
            Ok(dropped) => processed.push(Processed { block, ok: true, dropped }),
            Err(err @ Error::Corrupt { .. }) => {
                // Damage stays where it is (kv-fsck reports it); the block
                // is skipped from now on, and later victims keep tombstones.
                tracing::warn!("compaction skips block {block}: {err}");
                parts.compactor.skip.lock().insert(block);
                processed.push(Processed { block, ok: false, dropped: false });
                all_emptied = false;
            }
            Err(err @ Error::NoSpace { .. }) => {
                // A record too large for the room left: this victim stays
                // (what was copied is just an older version now); smaller
                // records of later victims may still fit.
                processed.push(Processed { block, ok: false, dropped: false });
                all_emptied = false;
                stop.get_or_insert(err);
            }
            Err(err) => {
                stop = Some(err);
                break;
            }
        }
    }
    (processed, stop)
}

/// Moves the emptied victims to the pending-free list, in generation order.
fn free_emptied(parts: &Parts<'_>, processed: Vec<Processed>, outcome: &mut PassOutcome) {
    let mut table = parts.space.lock();
    // A victim that dropped tombstones did so because every older victim
    // was going too: free it only if they all were.
    let mut older_all_freed = true;
    for Processed { block, ok, dropped } in processed {
        let empty =
            ok && table.live_table()[block as usize] == 0 && matches!(table.use_of(block), BlockUse::Log { .. });
        if empty && (older_all_freed || !dropped) {
            table.free_after_checkpoint(block);
            outcome.blocks_reclaimed += 1;
        } else {
            older_all_freed = false;
        }
    }
}
