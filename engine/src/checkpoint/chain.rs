//! Allocating a checkpoint's snapshot chain: free blocks, passing over those
//! a full scan would still read while they hide an older version of a key.

use super::Parts;
use crate::error::{Error, Result};
use crate::format::BLOCK_HEADER_BYTES;
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::block_offset;
use crate::format::record::FragmentKind;
use crate::format::snapshot::snapshot_blocks;
use crate::index::key_hash;
use crate::index::lookup;
use crate::index::scan::scan_block;
use crate::space::{BlockUse, Purpose};
use crate::writer::Op;

/// Allocates the snapshot chain, passing over a free block that a full
/// scan would still read (a LOG header at or above the full-scan floor)
/// while it holds a record of a key with no value — a tombstone, or an
/// expired record the compactor unlinked: the compactor may have dropped
/// every newer copy of it, trusting that the block is overwritten only by a
/// LOG block, whose header raises the floor above the older versions the
/// record hides. A snapshot header carries no floor, so a full scan could
/// bring an older version back. When only such
/// blocks are left, a tombstone for each such key is first written at the
/// head of the log, and synced. Returns the chain and how many tombstones
/// were carried.
pub(super) fn allocate_chain(
    parts: &Parts<'_>,
    bitmap: &mut [u8],
    entries: u64,
    floor: u64,
) -> Result<(Vec<u32>, u64)> {
    let block_count = u64::from(parts.space.block_count());
    let used: u64 = bitmap.iter().map(|b| u64::from(b.count_ones())).sum();
    // The chain's own blocks are in use too, which lengthens the payload by
    // 4 bytes each: iterate to the fixed point (two rounds at most in practice).
    let mut count = 0;
    loop {
        let needed = snapshot_blocks(block_count, used + count, entries);
        if needed == count {
            break;
        }
        count = needed;
    }
    let (mut chain, mut passed_over) = (Vec::with_capacity(count as usize), Vec::new());
    {
        let mut table = parts.space.lock();
        while (chain.len() as u64) < count && passed_over.len() < PASSED_OVER_MAX {
            let Some(block) = table.allocate(Purpose::Checkpoint, BlockUse::Snapshot) else { break };
            if hiding_keys(parts, block, floor).is_empty() {
                chain.push(block);
            } else {
                passed_over.push(block);
            }
        }
    }
    // Keep only as many passed-over blocks as the chain lacks, and give the
    // others back before the carried tombstones need room in the log.
    let shortfall = (count as usize).saturating_sub(chain.len()).min(passed_over.len());
    free_all(parts, &passed_over.split_off(shortfall));
    let mut carried = 0;
    while (chain.len() as u64) < count
        && let Some(block) = passed_over.pop()
    {
        for key in hiding_keys(parts, block, floor) {
            let mut log = parts.writer.lock();
            if lookup::find(parts.storage, parts.index, &key, key_hash(&key)).current.is_none() {
                let op = Op { key: &key, value: &[], tombstone: true, expires_ms: 0 };
                // Part of the checkpoint's own work: it may use the blocks
                // reserved for checkpoints.
                if let Err(err) = parts.writer.append_locked(parts.append(), &mut log, &[op], Purpose::Checkpoint) {
                    drop(log);
                    free_all(parts, chain.iter().chain(&passed_over).chain([&block]));
                    return Err(err);
                }
                carried += 1;
            }
        }
        chain.push(block);
    }
    // Durability: the carried tombstones must be on disk before a snapshot
    // overwrites the blocks they were carried from.
    if carried > 0
        && let Err(err) = parts.storage.sync()
    {
        free_all(parts, chain.iter().chain(&passed_over));
        parts.writer.poison().set(format!("sync of carried tombstones failed: {err}"));
        return Err(Error::io("sync of carried tombstones", err));
    }
    free_all(parts, &passed_over);
    if (chain.len() as u64) < count {
        free_all(parts, &chain);
        let table = parts.space.lock();
        return Err(parts.space.no_space(&table, count));
    }
    for &block in &chain {
        bitmap[block as usize / 8] |= 1 << (block % 8);
    }
    Ok((chain, carried))
}

/// Free blocks a snapshot may pass over before it falls back to carrying
/// tombstones: each is a block read and an index lookup per record, and
/// every block taken is one fewer for writers until the chain is done.
const PASSED_OVER_MAX: usize = 64;

fn free_all<'a>(parts: &Parts<'_>, blocks: impl IntoIterator<Item = &'a u32>) {
    let mut table = parts.space.lock();
    for &block in blocks {
        table.free_now(block);
    }
}

/// The keys of the records (tombstones, expired values) in free `block`
/// that a full scan would read (a LOG block at or above `floor`) and that
/// hold no value now: what those records hide must stay hidden.
fn hiding_keys(parts: &Parts<'_>, block: u32, floor: u64) -> Vec<Vec<u8>> {
    let mut head = [0u8; BLOCK_HEADER_BYTES];
    if parts.storage.read_at(block_offset(block), &mut head).is_err() {
        return Vec::new(); // unreadable: a full scan cannot read it either
    }
    match BlockHeader::decode(&head) {
        Ok(header) if header.kind == BlockKind::Log && header.generation >= floor => {
            scan_block(parts.storage, block, false)
                .fragments
                .into_iter()
                .filter(|f| matches!(f.header.kind, FragmentKind::Full | FragmentKind::First))
                .filter(|f| lookup::find(parts.storage, parts.index, &f.key, key_hash(&f.key)).current.is_none())
                .map(|f| f.key)
                .collect()
        }
        _ => Vec::new(),
    }
}
