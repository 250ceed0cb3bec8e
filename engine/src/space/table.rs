//! The block table: which blocks are in use (the free bitmap), what each
//! holds, how many of its bytes are live; the pending-free list is kept here
//! and moved along by pending.rs.

use crate::format::FIRST_DATA_BLOCK;
use crate::format::snapshot::bit;
use crate::sleep_lock::SleepLock;
use std::collections::BTreeSet;

/// What a block currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockUse {
    Free,
    /// Superblock and checkpoint slots.
    Meta,
    /// Records; `generation` is its write generation (its age for the compactor).
    Log {
        generation: u64,
    },
    /// Part of a checkpoint's snapshot chain.
    Snapshot,
    /// Emptied by the compactor: nothing live, but the current checkpoint
    /// or the replayable tail may still name it (see the pending-free rule).
    /// Keeps its generation: until it is free it still holds down the
    /// full-scan floor (`oldest_generation`).
    Pending {
        generation: u64,
    },
}

/// Who is asking for a block. The reserve has two parts: room for the next
/// checkpoint's snapshot, which only checkpoints may use, and a margin on
/// top that deletes may use, so a full store can still shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    User,
    Delete,
    /// The compactor's moves: like deletes, they may use the margin (a full
    /// store must still be able to compact), never the snapshot room.
    Compact,
    Checkpoint,
}

/// The block table.
#[derive(Debug)]
pub struct BlockTable {
    pub(super) uses: Vec<BlockUse>,
    pub(super) live_bytes: Vec<u32>,
    /// The sum of `live_bytes`, kept as they change (the compactor's
    /// trigger reads it on every check: no walk over the whole file).
    pub(super) live_sum: u64,
    /// Blocks whose use is LOG, kept as uses change.
    pub(super) log_count: u64,
    pub(super) free_count: u64,
    pub(super) cursor: u32,
    /// Blocks kept back for the next checkpoint's snapshot.
    pub(super) snapshot_reserve_blocks: u64,
    /// Blocks kept back from puts, on top of the snapshot reserve.
    pub(super) margin_blocks: u64,
    pub(super) pending: Vec<u32>,
    pub(super) releasing: Vec<u32>,
    /// LOG blocks by (generation, block): the compactor's oldest blocks,
    /// and how it finds a fragment's predecessors. A set of pairs, since a
    /// damaged file may repeat a generation.
    pub(super) log_by_generation: BTreeSet<(u64, u32)>,
    /// Pending-free blocks the same way. Apart from the LOG blocks, since
    /// a run may leave thousands pending at the old end, and every pass
    /// would walk past them; the oldest of both sets is the full-scan floor
    /// (docs/FORMAT.md, block header `floor_gen`).
    pub(super) pending_by_generation: BTreeSet<(u64, u32)>,
}

impl BlockTable {
    /// A table where only the metadata blocks are in use.
    pub fn new(block_count: u32) -> Self {
        let mut uses = vec![BlockUse::Free; block_count as usize];
        for use_ in uses.iter_mut().take(FIRST_DATA_BLOCK as usize) {
            *use_ = BlockUse::Meta;
        }
        BlockTable {
            free_count: u64::from(block_count - FIRST_DATA_BLOCK),
            uses,
            live_bytes: vec![0; block_count as usize],
            live_sum: 0,
            log_count: 0,
            cursor: FIRST_DATA_BLOCK,
            snapshot_reserve_blocks: 0,
            margin_blocks: 0,
            pending: Vec::new(),
            releasing: Vec::new(),
            log_by_generation: BTreeSet::new(),
            pending_by_generation: BTreeSet::new(),
        }
    }

    pub fn block_count(&self) -> u32 {
        self.uses.len() as u32
    }

    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    pub fn pending_count(&self) -> u64 {
        (self.pending.len() + self.releasing.len()) as u64
    }

    /// Blocks user writes may not take.
    pub fn reserve_blocks(&self) -> u64 {
        self.snapshot_reserve_blocks + self.margin_blocks
    }

    /// Free blocks the compactor's copies (and deletes) may take: all but
    /// the snapshot room, and one block, as the allocator keeps it.
    pub fn compaction_room_blocks(&self) -> u64 {
        self.free_count.saturating_sub(self.snapshot_reserve_blocks + 1)
    }

    pub fn set_reserve_blocks(&mut self, snapshot_blocks: u64, margin_blocks: u64) {
        self.snapshot_reserve_blocks = snapshot_blocks;
        self.margin_blocks = margin_blocks;
    }

    pub fn use_of(&self, block: u32) -> BlockUse {
        self.uses[block as usize]
    }

    pub fn live_total(&self) -> u64 {
        self.live_sum
    }

    /// How many blocks hold LOG use.
    pub fn log_count(&self) -> u64 {
        self.log_count
    }

    /// Takes the next free block after the cursor (next-fit, so a fresh file
    /// is written front to back).
    pub fn allocate(&mut self, purpose: Purpose, use_: BlockUse) -> Option<u32> {
        let floor = match purpose {
            Purpose::User => self.snapshot_reserve_blocks + self.margin_blocks,
            Purpose::Delete | Purpose::Compact => self.snapshot_reserve_blocks,
            Purpose::Checkpoint => 0,
        };
        if self.free_count <= floor {
            return None;
        }
        let count = self.block_count();
        let mut block = self.cursor;
        for _ in 0..count {
            if block >= count {
                block = FIRST_DATA_BLOCK;
            }
            if self.uses[block as usize] == BlockUse::Free {
                self.set_use(block, use_);
                self.cursor = block + 1;
                return Some(block);
            }
            block += 1;
        }
        None
    }

    /// Marks a block in use (recovery, snapshot loading).
    pub fn set_use(&mut self, block: u32, use_: BlockUse) {
        let was_free = self.uses[block as usize] == BlockUse::Free;
        let now_free = use_ == BlockUse::Free;
        match (was_free, now_free) {
            (true, false) => self.free_count -= 1,
            (false, true) => self.free_count += 1,
            _ => {}
        }
        if now_free {
            self.live_sum -= u64::from(std::mem::take(&mut self.live_bytes[block as usize]));
        }
        let was_log = matches!(self.uses[block as usize], BlockUse::Log { .. });
        let now_log = matches!(use_, BlockUse::Log { .. });
        match (was_log, now_log) {
            (false, true) => self.log_count += 1,
            (true, false) => self.log_count -= 1,
            _ => {}
        }
        match self.uses[block as usize] {
            BlockUse::Log { generation } => self.log_by_generation.remove(&(generation, block)),
            BlockUse::Pending { generation } => self.pending_by_generation.remove(&(generation, block)),
            _ => false,
        };
        match use_ {
            BlockUse::Log { generation } => self.log_by_generation.insert((generation, block)),
            BlockUse::Pending { generation } => self.pending_by_generation.insert((generation, block)),
            _ => false,
        };
        self.uses[block as usize] = use_;
    }

    /// The generation of the oldest LOG block not yet free, pending ones
    /// included: the full-scan floor. A pending block's records were copied
    /// but not necessarily synced; until the checkpoint that frees it has
    /// synced the copies, a full scan must still read the originals.
    pub fn oldest_generation(&self) -> Option<u64> {
        let oldest = |set: &BTreeSet<(u64, u32)>| set.first().map(|&(generation, _)| generation);
        match (oldest(&self.log_by_generation), oldest(&self.pending_by_generation)) {
            (Some(log), Some(pending)) => Some(log.min(pending)),
            (log, pending) => log.or(pending),
        }
    }

    /// LOG blocks in use, oldest first: (block, generation, live bytes).
    pub fn log_blocks_by_age(&self) -> impl Iterator<Item = (u32, u64, u32)> + '_ {
        self.log_by_generation.iter().map(|&(generation, block)| (block, generation, self.live_bytes[block as usize]))
    }

    /// LOG blocks (not pending) with a generation in `generations`, newest
    /// first.
    pub fn log_blocks_in(&self, generations: std::ops::Range<u64>) -> Vec<u32> {
        self.log_by_generation
            .range((generations.start, 0)..(generations.end, 0))
            .rev()
            .map(|&(_, block)| block)
            .collect()
    }

    /// LOG blocks in use among `blocks`, with their generation and live
    /// bytes.
    fn log_blocks_among(&self, blocks: std::ops::Range<u32>) -> impl Iterator<Item = (u32, u64, u32)> + '_ {
        let end = blocks.end.min(self.block_count());
        (blocks.start.min(end)..end).filter_map(|block| match self.uses[block as usize] {
            BlockUse::Log { generation } => Some((block, generation, self.live_bytes[block as usize])),
            _ => None,
        })
    }

    /// Frees a block that nothing durable can name (an old snapshot chain
    /// once a newer checkpoint is durable, a discarded tail block).
    pub fn free_now(&mut self, block: u32) {
        self.set_use(block, BlockUse::Free);
    }

    pub fn add_live(&mut self, block: u32, bytes: u32) {
        let live = &mut self.live_bytes[block as usize];
        let before = *live;
        *live = live.saturating_add(bytes);
        self.live_sum += u64::from(*live - before);
    }

    pub fn sub_live(&mut self, block: u32, bytes: u32) {
        let live = &mut self.live_bytes[block as usize];
        let before = *live;
        *live = live.saturating_sub(bytes);
        self.live_sum -= u64::from(before - *live);
    }

    /// No block holds a live record any more (every key was deleted at
    /// once: `Store::clear`).
    pub fn clear_live(&mut self) {
        self.live_bytes.fill(0);
        self.live_sum = 0;
    }

    /// Rebuilds the table from a snapshot's bitmap and live bytes. Blocks the
    /// bitmap marks in use become LOG blocks with generation 0 until the
    /// header scan tells their kind and generation.
    pub fn from_snapshot(bitmap: &[u8], live_bytes: Vec<u32>) -> Self {
        let block_count = live_bytes.len() as u32;
        let mut table = BlockTable::new(block_count);
        for block in FIRST_DATA_BLOCK..block_count {
            if bit(bitmap, block as usize) {
                table.set_use(block, BlockUse::Log { generation: 0 });
            }
        }
        table.live_sum = live_bytes.iter().map(|&b| u64::from(b)).sum();
        table.live_bytes = live_bytes;
        table
    }

    /// Live bytes per block, for snapshots.
    pub fn live_table(&self) -> &[u32] {
        &self.live_bytes
    }
}

/// Calls `visit` with every LOG block in use, its generation and live
/// bytes, `chunk_blocks` blocks per hold of the table lock: writers take
/// that lock on every write, so a walk of the whole file must not hold it.
/// `visit` runs under the lock: it must be cheap and must not take it.
/// What it sees is not one consistent picture (blocks change between
/// chunks); callers check what they pick again under the lock.
pub(super) fn for_each_log_block(
    table: &SleepLock<BlockTable>,
    chunk_blocks: u32,
    mut visit: impl FnMut(u32, u64, u32),
) {
    let chunk_blocks = chunk_blocks.max(1);
    let block_count = table.lock().block_count();
    for start in (0..block_count).step_by(chunk_blocks as usize) {
        let locked = table.lock();
        for (block, generation, live) in locked.log_blocks_among(start..start.saturating_add(chunk_blocks)) {
            visit(block, generation, live);
        }
        // A writer waiting for the lock is woken by this unlock. std's
        // mutex is not fair: the walk may take the lock back before the
        // writer runs, for one more chunk (the cost: docs/BENCHMARKS.md,
        // the sleeping locks).
        drop(locked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_live_sum_log_count_and_generation_sets_match_a_recount() {
        // Random uses and live-byte changes: the kept totals, and the LOG
        // and pending blocks by generation, equal a walk.
        let mut table = BlockTable::new(64);
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for step in 0..20_000u32 {
            let block = FIRST_DATA_BLOCK + next() % (64 - FIRST_DATA_BLOCK);
            match next() % 5 {
                0 => table.set_use(block, BlockUse::Log { generation: u64::from(step) }),
                1 => table.set_use(block, BlockUse::Free),
                2 => table.set_use(block, BlockUse::Pending { generation: u64::from(step) }),
                3 => table.add_live(block, next() % 5000),
                _ => table.sub_live(block, next() % 5000),
            }
            let recount: u64 = table.live_bytes.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(table.live_total(), recount, "step {step}");
            let walked = table.uses.iter().filter(|u| matches!(u, BlockUse::Log { .. })).count();
            assert_eq!(table.log_count(), walked as u64, "step {step}");
            let (mut log, mut pending) = (BTreeSet::new(), BTreeSet::new());
            for (at, use_) in table.uses.iter().enumerate() {
                match *use_ {
                    BlockUse::Log { generation } => log.insert((generation, at as u32)),
                    BlockUse::Pending { generation } => pending.insert((generation, at as u32)),
                    _ => false,
                };
            }
            assert_eq!(table.log_by_generation, log, "step {step}");
            assert_eq!(table.pending_by_generation, pending, "step {step}");
        }
    }

    #[test]
    fn log_blocks_taken_a_chunk_at_a_time_are_every_log_block_once() {
        // The compactor ranks in chunks; uneven chunks and ranges past the
        // end must neither skip nor repeat a block.
        let mut table = BlockTable::new(61);
        for block in FIRST_DATA_BLOCK..61 {
            if block % 3 != 0 {
                table.set_use(block, BlockUse::Log { generation: u64::from(block) * 2 });
                table.add_live(block, block * 10);
            }
        }
        let expected: Vec<(u32, u64, u32)> =
            (0..61).filter(|b| b >= &FIRST_DATA_BLOCK && b % 3 != 0).map(|b| (b, u64::from(b) * 2, b * 10)).collect();
        let table = SleepLock::new(table);
        for chunk in [0u32, 1, 7, 60, 61, 1000] {
            let mut seen = Vec::new();
            for_each_log_block(&table, chunk, |block, generation, live| seen.push((block, generation, live)));
            assert_eq!(seen, expected, "chunk {chunk}");
        }
    }

    #[test]
    fn pending_blocks_hold_the_floor_but_are_not_log_blocks_by_age() {
        // A block emptied by the compactor keeps the full-scan floor down
        // until it is free, yet is no longer a LOG block to compact.
        let mut table = BlockTable::new(FIRST_DATA_BLOCK + 4);
        let [a, b, c, _] = std::array::from_fn(|i| FIRST_DATA_BLOCK + i as u32);
        for (block, generation) in [(a, 5), (b, 9), (c, 7)] {
            table.set_use(block, BlockUse::Log { generation });
        }
        table.free_after_checkpoint(a);
        assert_eq!(table.oldest_generation(), Some(5), "the pending block is the floor");
        let by_age: Vec<u32> = table.log_blocks_by_age().map(|(block, _, _)| block).collect();
        assert_eq!(by_age, vec![c, b]);
        assert_eq!(table.log_blocks_in(5..10), vec![b, c]);
        table.on_capture();
        table.on_checkpoint_durable();
        assert_eq!(table.oldest_generation(), Some(7), "freed: the floor moves up");
        table.free_after_checkpoint(b);
        table.free_after_checkpoint(c);
        assert_eq!(table.oldest_generation(), Some(7), "only pending blocks left");
        assert_eq!(table.log_blocks_by_age().count(), 0);
    }

    #[test]
    fn user_writes_leave_the_reserve_alone() {
        let mut table = BlockTable::new(8);
        table.set_reserve_blocks(1, 1);
        assert!(table.allocate(Purpose::User, BlockUse::Log { generation: 1 }).is_some());
        assert!(table.allocate(Purpose::User, BlockUse::Log { generation: 1 }).is_some());
        assert!(table.allocate(Purpose::User, BlockUse::Log { generation: 1 }).is_some());
        assert_eq!(table.allocate(Purpose::User, BlockUse::Log { generation: 1 }), None);
        assert!(
            table.allocate(Purpose::Delete, BlockUse::Log { generation: 1 }).is_some(),
            "deletes may use the margin"
        );
        assert_eq!(table.allocate(Purpose::Delete, BlockUse::Log { generation: 1 }), None, "but not the snapshot room");
        assert!(table.allocate(Purpose::Checkpoint, BlockUse::Snapshot).is_some());
    }
}
