//! Choosing victims: cost-benefit ranking of the LOG blocks, the victim
//! queue it fills, and the pick of one pass's victims.

use super::{OLDEST_VICTIMS_PER_PASS, PASS_VICTIMS_MAX, Parts, VICTIM_UTILIZATION_MAX};
use crate::limits::BLOCK_PAYLOAD_BYTES;
use crate::space::BlockUse;
use crate::writer::LogWriter;

/// Blocks ranked per full scoring: the scoring walks every block, so it is
/// done once per this many victims, not once per pass; later passes take
/// the next best from the ranking, checking each is still worth it.
pub const VICTIM_QUEUE_BLOCKS: usize = 16 * PASS_VICTIMS_MAX;

/// Cost-benefit score of a block, or None when it is too full to be worth
/// moving.
fn score(newest: u64, generation: u64, live: u32) -> Option<f64> {
    let u = f64::from(live) / BLOCK_PAYLOAD_BYTES as f64;
    let age = newest.saturating_sub(generation).max(1) as f64;
    (u < VICTIM_UTILIZATION_MAX).then(|| (1.0 - u) * age / (1.0 + u))
}

/// Blocks scored per hold of the table lock while ranking: writers take
/// that lock on every write, and scoring a whole file at once shows in
/// their put p99 (docs/BENCHMARKS.md).
pub const RANK_CHUNK_BLOCKS: u32 = 1024;

/// Ranks every LOG block by cost-benefit and keeps the best
/// `VICTIM_QUEUE_BLOCKS`, best last. Holds neither the log lock nor the
/// table lock for long (`for_each_log_block`), so the ranking is not one
/// consistent picture — it need not be, since `pick_victims` checks each
/// block again under both locks before taking it.
///
/// Keeps at most twice the queue while it walks, cutting back to the best
/// half whenever that fills: collecting every block first (a 1 GiB file
/// has 262,144) costs page faults on large fresh vectors.
fn rank_victims(parts: &Parts<'_>, generation_below: u64) -> Vec<(u32, u64)> {
    let newest = parts.writer.lock().replay_gen();
    let mut best = BestBlocks::default();
    parts.space.for_each_log_block(RANK_CHUNK_BLOCKS, |block, generation, live| {
        if !below_or_dead(generation, generation_below, live) {
            return;
        }
        if let Some(benefit) = score(newest, generation, live) {
            best.offer(benefit, block, generation);
        }
    });
    best.ranked()
}

/// Refills the victim queue. Ranks before taking the queue's lock: ranking
/// walks every block.
pub(super) fn rerank(parts: &Parts<'_>, generation_below: u64) {
    let ranked = rank_victims(parts, generation_below);
    *parts.compactor.victims.lock() = ranked;
}

/// Whether a block may be a victim of a pass bounded by `generation_below`:
/// older than the bound, or holding no live put at all (tombstones carried
/// forward by the same run must still be able to go).
fn below_or_dead(generation: u64, generation_below: u64, live: u32) -> bool {
    generation < generation_below || live == 0
}

/// The `VICTIM_QUEUE_BLOCKS` best-scoring blocks of those offered.
#[derive(Debug)]
pub(super) struct BestBlocks {
    /// (score, block, generation); at most twice the queue.
    kept: Vec<(f64, u32, u64)>,
    /// The best score cut so far: one no better cannot make the cut.
    floor: f64,
}

impl Default for BestBlocks {
    fn default() -> Self {
        BestBlocks { kept: Vec::with_capacity(2 * VICTIM_QUEUE_BLOCKS), floor: f64::NEG_INFINITY }
    }
}

impl BestBlocks {
    pub(super) fn offer(&mut self, benefit: f64, block: u32, generation: u64) {
        if benefit > self.floor {
            self.kept.push((benefit, block, generation));
            if self.kept.len() == 2 * VICTIM_QUEUE_BLOCKS {
                self.cut();
            }
        }
    }

    /// Cuts to the best `VICTIM_QUEUE_BLOCKS`, partitioned around the cut
    /// (best first); only what is kept in the end gets sorted.
    fn cut(&mut self) {
        if self.kept.len() > VICTIM_QUEUE_BLOCKS {
            self.kept.select_nth_unstable_by(VICTIM_QUEUE_BLOCKS, |a, b| b.0.total_cmp(&a.0));
            self.floor = self.floor.max(self.kept[VICTIM_QUEUE_BLOCKS].0);
            self.kept.truncate(VICTIM_QUEUE_BLOCKS);
        }
    }

    /// (block, generation), best last.
    pub(super) fn ranked(mut self) -> Vec<(u32, u64)> {
        self.cut();
        self.kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.kept.into_iter().map(|(_, block, generation)| (block, generation)).collect()
    }
}

/// Chooses up to `max` victims among the blocks older than
/// `generation_below` or holding no live put: the oldest blocks in use,
/// then the best by cost-benefit, as long as their live bytes fit in the
/// room the compactor may fill (a pass must not run out of space halfway;
/// when room is short, passes get smaller).
pub(super) fn pick_victims(parts: &Parts<'_>, log: &LogWriter, max: usize, generation_below: u64) -> Vec<(u32, u64)> {
    let table = parts.space.lock();
    let newest = log.replay_gen();
    let active = log.active_block();
    let skip = parts.compactor.skip.lock();
    let usable = |block: u32, generation: u64| {
        Some(block) != active
            && below_or_dead(generation, generation_below, table.live_table()[block as usize])
            && table.use_of(block) == BlockUse::Log { generation }
            && (skip.is_empty() || !skip.contains(&block))
    };
    // Copies of one block's records take at most its live bytes plus one
    // record header per block they spill into: count a block per victim.
    let mut room = table.compaction_room_blocks().saturating_mul(BLOCK_PAYLOAD_BYTES as u64);
    let mut take = |live: u32| {
        let cost = u64::from(live) + BLOCK_PAYLOAD_BYTES as u64 / 8;
        let fits = cost <= room;
        if fits {
            room -= cost;
        }
        fits
    };
    let mut queue = parts.compactor.victims.lock();
    let mut best = Vec::new();
    while best.len() < max.saturating_sub(OLDEST_VICTIMS_PER_PASS).max(1) {
        let Some((block, generation)) = queue.pop() else { break };
        let live = table.live_table()[block as usize];
        if usable(block, generation) && score(newest, generation, live).is_some() {
            best.push((block, generation, live));
        }
    }
    if best.is_empty() {
        return Vec::new(); // every block is full: nothing worth a pass
    }
    // The oldest blocks in use join every pass, however full: tombstones
    // can be dropped only once every older block is gone, so the log's tail
    // must keep moving or deletes would be carried forward for ever.
    let oldest = table.log_blocks_by_age().filter(|&(block, generation, _)| usable(block, generation));
    let mut victims: Vec<(u32, u64)> = Vec::new();
    for (block, generation, live) in oldest.take(OLDEST_VICTIMS_PER_PASS).chain(best) {
        if !victims.iter().any(|&(b, _)| b == block) && take(live) {
            victims.push((block, generation));
        }
    }
    victims.sort_by_key(|&(_, generation)| generation);
    victims
}
