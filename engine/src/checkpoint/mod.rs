//! Writing a checkpoint: capture, snapshot chain, sync, slot header, sync.
//!
//! Ordering (DESIGN invariant 4):
//! 1. Under the log lock, capture covered_lsn, replay_gen and replay_offset
//!    (where replay starts: covered records are never parsed again), the block table
//!    and the index: nothing is half-appended, so they agree.
//! 2. Write the snapshot chain into free blocks.
//! 3. fdatasync: covers the chain and every record with lsn <= covered_lsn.
//! 4. Write the slot header (both copies) into the slot that is *not* current.
//! 5. fdatasync: now, and only now, the checkpoint is current; blocks that
//!    were pending free before the capture, and the previous snapshot chain,
//!    become allocatable.

use crate::alloc::{BlockUse, Purpose};
use crate::error::{Error, Result};
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::FragmentKind;
use crate::format::slot::SlotHeader;
use crate::format::snapshot::{self, snapshot_bytes};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, COPY_OFFSETS, SLOT_BLOCKS, block_offset, masked_crc};
use crate::index::key_hash;
use crate::log::Op;
use crate::lookup;
use crate::recovery::scan::scan_block;
use crate::store::Inner;
use std::time::{Duration, Instant};

/// Snapshot payload bytes one block carries.
pub const SNAPSHOT_PAYLOAD_PER_BLOCK: usize = BLOCK_BYTES - BLOCK_HEADER_BYTES;

/// The durable checkpoint as the running store knows it.
#[derive(Debug)]
pub struct CheckpointState {
    /// Id of the current (durable) checkpoint; the next one is `id + 1`.
    pub id: u64,
    /// Slot (0 = A, 1 = B) holding the current checkpoint; the next goes to the other.
    pub slot: usize,
    /// The current checkpoint's snapshot blocks, freed when a newer one is durable.
    pub chain: Vec<u32>,
    /// Log bytes written when the current checkpoint was captured.
    pub log_bytes_at: u64,
    pub at: Instant,
}

/// What a checkpoint did, for logs and stats.
#[derive(Debug, Clone)]
pub struct CheckpointInfo {
    pub id: u64,
    pub covered_lsn: u64,
    pub entries: u64,
    pub snapshot_blocks: u64,
    /// Tombstones written to the log for blocks the snapshot took (see
    /// `allocate_chain`): newer than `covered_lsn`, so replayed after it.
    pub tombstones_carried: u64,
    pub elapsed: Duration,
}

/// Snapshot blocks needed for `entries` keys in a file of `block_count`
/// blocks of which `used` are in use.
pub fn snapshot_blocks(block_count: u64, used: u64, entries: u64) -> u64 {
    snapshot_bytes(block_count, used, entries).div_ceil(SNAPSHOT_PAYLOAD_PER_BLOCK as u64)
}

/// Writes a checkpoint; see the module docs for the order of steps.
pub(crate) fn write_checkpoint(inner: &Inner) -> Result<CheckpointInfo> {
    let mut state = inner.ckpt.lock();
    if inner.read_only {
        return Err(Error::ReadOnly);
    }
    inner.poison.check()?;
    let started = Instant::now();
    let block_count = u64::from(inner.block_count);
    let (covered_lsn, (replay_gen, replay_offset), mut bitmap, live, entries, log_bytes, floor) = {
        let log = inner.log.lock();
        let mut table = inner.table.lock();
        table.on_capture();
        (
            log.last_lsn(),
            (log.replay_gen(), log.replay_offset()),
            table.bitmap(),
            table.live_table().to_vec(),
            inner.index.entries(),
            log.bytes_written,
            log.floor_gen(),
        )
    };
    // Durability: the LOG header that carries `floor` (written before the
    // capture) must be on disk before a snapshot block overwrites a free
    // block, for `allocate_chain` to judge what a full scan would see.
    inner.storage.sync().map_err(|err| {
        inner.table.lock().on_checkpoint_failed();
        inner.poison.set(format!("sync before a checkpoint failed: {err}"));
        Error::io("sync before checkpoint", err)
    })?;
    let (chain, tombstones_carried) = match allocate_chain(inner, &mut bitmap, entries.len() as u64, floor) {
        Ok(allocated) => allocated,
        Err(err) => {
            inner.table.lock().on_checkpoint_failed();
            return Err(err);
        }
    };
    let payload = snapshot::encode(block_count, &bitmap, &live, &entries);
    let header = SlotHeader {
        checkpoint_id: state.id + 1,
        covered_lsn,
        replay_gen,
        written_ms: inner.clock.now_ms(),
        snapshot_bytes: payload.len() as u64,
        snapshot_first_block: chain[0],
        snapshot_block_count: chain.len() as u32,
        snapshot_crc: masked_crc(&payload),
        replay_offset,
    };
    let slot = 1 - state.slot;
    if let Err(err) = write_durably(inner, &header, &chain, &payload, slot) {
        let mut table = inner.table.lock();
        table.on_checkpoint_failed();
        for &block in &chain {
            table.free_now(block);
        }
        return Err(err);
    }
    {
        let mut table = inner.table.lock();
        table.on_checkpoint_durable();
        for &block in &state.chain {
            table.free_now(block);
        }
    }
    state.id = header.checkpoint_id;
    state.slot = slot;
    state.chain = chain;
    state.log_bytes_at = log_bytes;
    state.at = Instant::now();
    let info = CheckpointInfo {
        id: header.checkpoint_id,
        covered_lsn,
        entries: entries.len() as u64,
        snapshot_blocks: u64::from(header.snapshot_block_count),
        tombstones_carried,
        elapsed: started.elapsed(),
    };
    inner.counters.checkpoints.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        id = info.id,
        covered_lsn,
        keys = info.entries,
        snapshot_blocks = info.snapshot_blocks,
        ms = info.elapsed.as_secs_f64() * 1e3,
        "checkpoint written"
    );
    Ok(info)
}

/// Allocates the snapshot chain, passing over a free block that a full
/// scan would still read (a LOG header at or above the full-scan floor)
/// while it holds a record of a key with no value — a tombstone, or an
/// expired record the compactor unlinked: the compactor may have dropped
/// every newer copy of it, trusting that the block is overwritten only by a
/// LOG block, whose header raises the floor above the older versions the
/// record hides. A snapshot header carries no floor, so a full scan could
/// bring an older version back (found by the model tests). When only such
/// blocks are left, a tombstone for each such key is first written at the
/// head of the log, and synced. Returns the chain and how many tombstones
/// were carried.
fn allocate_chain(inner: &Inner, bitmap: &mut [u8], entries: u64, floor: u64) -> Result<(Vec<u32>, u64)> {
    let block_count = u64::from(inner.block_count);
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
        let mut table = inner.table.lock();
        while (chain.len() as u64) < count && passed_over.len() < PASSED_OVER_MAX {
            let Some(block) = table.allocate(Purpose::Checkpoint, BlockUse::Snapshot) else { break };
            if hiding_keys(inner, block, floor).is_empty() {
                chain.push(block);
            } else {
                passed_over.push(block);
            }
        }
    }
    // Keep only as many passed-over blocks as the chain lacks, and give the
    // others back before the carried tombstones need room in the log.
    let shortfall = (count as usize).saturating_sub(chain.len()).min(passed_over.len());
    free_all(inner, &passed_over.split_off(shortfall));
    let mut carried = 0;
    while (chain.len() as u64) < count
        && let Some(block) = passed_over.pop()
    {
        for key in hiding_keys(inner, block, floor) {
            let mut log = inner.log.lock();
            if lookup::find(&*inner.storage, &inner.index, &key, key_hash(&key)).current.is_none() {
                let op = Op { key: &key, value: &[], tombstone: true, expires_ms: 0 };
                // Part of the checkpoint's own work: it may use the blocks
                // reserved for checkpoints.
                if let Err(err) = inner.append_locked(&mut log, &[op], Purpose::Checkpoint) {
                    drop(log);
                    free_all(inner, chain.iter().chain(&passed_over).chain([&block]));
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
        && let Err(err) = inner.storage.sync()
    {
        free_all(inner, chain.iter().chain(&passed_over));
        inner.poison.set(format!("sync of carried tombstones failed: {err}"));
        return Err(Error::io("sync of carried tombstones", err));
    }
    free_all(inner, &passed_over);
    if (chain.len() as u64) < count {
        free_all(inner, &chain);
        let table = inner.table.lock();
        return Err(Error::NoSpace {
            needed_blocks: count,
            free_blocks: table.free_count(),
            reserved_blocks: table.reserve_blocks(),
            live_bytes: table.live_total(),
            capacity_bytes: block_count * BLOCK_BYTES as u64,
        });
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

fn free_all<'a>(inner: &Inner, blocks: impl IntoIterator<Item = &'a u32>) {
    let mut table = inner.table.lock();
    for &block in blocks {
        table.free_now(block);
    }
}

/// The keys of the records (tombstones, expired values) in free `block`
/// that a full scan would read (a LOG block at or above `floor`) and that
/// hold no value now: what those records hide must stay hidden.
fn hiding_keys(inner: &Inner, block: u32, floor: u64) -> Vec<Vec<u8>> {
    let mut head = [0u8; BLOCK_HEADER_BYTES];
    if inner.storage.read_at(block_offset(block), &mut head).is_err() {
        return Vec::new(); // unreadable: a full scan cannot read it either
    }
    match BlockHeader::decode(&head) {
        Ok(header) if header.kind == BlockKind::Log && header.generation >= floor => {
            scan_block(&*inner.storage, block, false)
                .fragments
                .into_iter()
                .filter(|f| matches!(f.header.kind, FragmentKind::Full | FragmentKind::First))
                .filter(|f| lookup::find(&*inner.storage, &inner.index, &f.key, key_hash(&f.key)).current.is_none())
                .map(|f| f.key)
                .collect()
        }
        _ => Vec::new(),
    }
}

fn write_durably(inner: &Inner, header: &SlotHeader, chain: &[u32], payload: &[u8], slot: usize) -> Result<()> {
    let storage = &*inner.storage;
    let poison_on = |err: std::io::Error| {
        inner.poison.set(format!("checkpoint write failed: {err}"));
        Error::io("checkpoint write", err)
    };
    let mut buf = vec![0u8; BLOCK_BYTES];
    for (seq, (&block, chunk)) in chain.iter().zip(payload.chunks(SNAPSHOT_PAYLOAD_PER_BLOCK)).enumerate() {
        buf.fill(0);
        BlockHeader {
            kind: BlockKind::Snapshot,
            prev_used: 0,
            seq: seq as u32,
            generation: header.checkpoint_id,
            next_block: chain.get(seq + 1).copied().unwrap_or(0),
            payload_bytes: chunk.len() as u32,
            floor_gen: 0,
        }
        .encode_into(&mut buf);
        buf[BLOCK_HEADER_BYTES..BLOCK_HEADER_BYTES + chunk.len()].copy_from_slice(chunk);
        storage.write_at(block_offset(block), &buf).map_err(poison_on)?;
        inner.counters.checkpoint_bytes.fetch_add(BLOCK_BYTES as u64, std::sync::atomic::Ordering::Relaxed);
    }
    // Durability: the slot header must not name a snapshot block, or a record
    // the snapshot points at, before they are durable. This sync starts after
    // all of them were written.
    inner.commit.sync_now(storage, &inner.poison)?;
    buf.fill(0);
    let encoded = header.encode();
    for at in COPY_OFFSETS {
        buf[at..at + encoded.len()].copy_from_slice(&encoded);
    }
    storage.write_at(block_offset(SLOT_BLOCKS[slot]), &buf).map_err(poison_on)?;
    inner.counters.checkpoint_bytes.fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
    // Durability: the checkpoint is current only once its slot header is
    // durable; until then recovery keeps using the other slot.
    inner.commit.sync_now(storage, &inner.poison)
}
