//! Writing a checkpoint, in the order the module docs give (mod.rs).

use super::chain::allocate_chain;
use super::{CheckpointInfo, CheckpointState, Checkpointer, Parts};
use crate::error::{Error, Result};
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::slot::SlotHeader;
use crate::format::snapshot::{self, IndexEntry, SNAPSHOT_PAYLOAD_PER_BLOCK};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, COPY_OFFSETS, SLOT_BLOCKS, block_offset, masked_crc};
use crate::space::BlockTable;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What step 1 captures under the log lock.
struct Capture {
    covered_lsn: u64,
    replay_gen: u64,
    replay_offset: u32,
    bitmap: Vec<u8>,
    live: Vec<u32>,
    entries: Vec<IndexEntry>,
    log_bytes: u64,
    /// The full-scan floor of the newest LOG header (`chain::allocate_chain`).
    floor: u64,
}

impl Checkpointer {
    /// Writes a checkpoint; see the module docs for the order of steps.
    pub fn write(&self, parts: &Parts<'_>) -> Result<CheckpointInfo> {
        self.write_capturing(parts, None)
    }

    /// Writes a checkpoint of an empty index: every key deleted at once.
    /// `clear` runs in the capture, under the log lock and the block table,
    /// and empties what the running store holds; the checkpoint is the
    /// commit point, so a crash before its slot is durable recovers every
    /// key and one after recovers none. A failure after the capture (the
    /// running store is then empty, the file not) poisons the store.
    pub fn write_cleared(&self, parts: &Parts<'_>, clear: &mut dyn FnMut(&mut BlockTable)) -> Result<CheckpointInfo> {
        let mut cleared = false;
        let written = self.write_capturing(
            parts,
            Some(&mut |table: &mut BlockTable| {
                clear(table);
                cleared = true;
            }),
        );
        if let Err(err) = &written
            && cleared
        {
            parts.writer.poison().set(format!("a clear could not be made durable: {err}"));
        }
        written
    }

    fn write_capturing(
        &self,
        parts: &Parts<'_>,
        clear: Option<&mut dyn FnMut(&mut BlockTable)>,
    ) -> Result<CheckpointInfo> {
        let mut state = self.state.lock();
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        parts.writer.poison().check()?;
        let started = Instant::now();
        let mut capture = capture(parts, clear);
        // Durability: the LOG header that carries `floor` (written before the
        // capture) must be on disk before a snapshot block overwrites a free
        // block, for `allocate_chain` to judge what a full scan would see.
        parts.storage.sync().map_err(|err| {
            parts.space.lock().on_checkpoint_failed();
            parts.writer.poison().set(format!("sync before a checkpoint failed: {err}"));
            Error::io("sync before checkpoint", err)
        })?;
        let entry_count = capture.entries.len() as u64;
        let (chain, tombstones_carried) = match allocate_chain(parts, &mut capture.bitmap, entry_count, capture.floor) {
            Ok(allocated) => allocated,
            Err(err) => {
                parts.space.lock().on_checkpoint_failed();
                return Err(err);
            }
        };
        let block_count = u64::from(parts.space.block_count());
        let payload = snapshot::encode(block_count, &capture.bitmap, &capture.live, &capture.entries);
        let header = SlotHeader {
            checkpoint_id: state.current.id + 1,
            covered_lsn: capture.covered_lsn,
            replay_gen: capture.replay_gen,
            written_ms: parts.clock.now_ms(),
            snapshot_bytes: payload.len() as u64,
            snapshot_first_block: chain[0],
            snapshot_block_count: chain.len() as u32,
            snapshot_crc: masked_crc(&payload),
            replay_offset: capture.replay_offset,
        };
        let slot = 1 - state.current.slot;
        if let Err(err) = self.write_durably(parts, &header, &chain, &payload, slot) {
            let mut table = parts.space.lock();
            table.on_checkpoint_failed();
            for &block in &chain {
                table.free_now(block);
            }
            return Err(err);
        }
        made_current(parts, &mut state, &header, chain, capture.log_bytes);
        let info = CheckpointInfo {
            id: header.checkpoint_id,
            covered_lsn: capture.covered_lsn,
            entries: entry_count,
            snapshot_blocks: u64::from(header.snapshot_block_count),
            tombstones_carried,
            elapsed: started.elapsed(),
        };
        self.written.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            id = info.id,
            covered_lsn = info.covered_lsn,
            keys = info.entries,
            snapshot_blocks = info.snapshot_blocks,
            ms = info.elapsed.as_secs_f64() * 1e3,
            "checkpoint written"
        );
        Ok(info)
    }

    /// Steps 2 to 5: the chain, a sync, the slot header, a sync.
    fn write_durably(
        &self,
        parts: &Parts<'_>,
        header: &SlotHeader,
        chain: &[u32],
        payload: &[u8],
        slot: usize,
    ) -> Result<()> {
        let storage = parts.storage;
        let poison_on = |err: std::io::Error| {
            parts.writer.poison().set(format!("checkpoint write failed: {err}"));
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
            self.bytes_written.fetch_add(BLOCK_BYTES as u64, Ordering::Relaxed);
        }
        // Durability: the slot header must not name a snapshot block, or a record
        // the snapshot points at, before they are durable. This sync starts after
        // all of them were written.
        parts.writer.sync_now(storage)?;
        buf.fill(0);
        let encoded = header.encode();
        for at in COPY_OFFSETS {
            buf[at..at + encoded.len()].copy_from_slice(&encoded);
        }
        storage.write_at(block_offset(SLOT_BLOCKS[slot]), &buf).map_err(poison_on)?;
        self.bytes_written.fetch_add(buf.len() as u64, Ordering::Relaxed);
        // Durability: the checkpoint is current only once its slot header is
        // durable; until then recovery keeps using the other slot.
        parts.writer.sync_now(storage)
    }
}

/// Step 1: what the checkpoint covers, captured under the log lock and the
/// block table (after `clear`, when given, has emptied the store).
fn capture(parts: &Parts<'_>, clear: Option<&mut dyn FnMut(&mut BlockTable)>) -> Capture {
    let log = parts.writer.lock();
    let mut table = parts.space.lock();
    if let Some(clear) = clear {
        clear(&mut table);
    }
    table.on_capture();
    Capture {
        covered_lsn: log.last_lsn(),
        replay_gen: log.replay_gen(),
        replay_offset: log.replay_offset(),
        bitmap: table.bitmap(),
        live: table.live_table().to_vec(),
        entries: parts.index.entries(),
        log_bytes: log.bytes_written,
        floor: log.floor_gen(),
    }
}

/// After step 5: the pending blocks the capture took and the previous
/// chain are free, and the new checkpoint is the current one.
fn made_current(parts: &Parts<'_>, state: &mut CheckpointState, header: &SlotHeader, chain: Vec<u32>, log_bytes: u64) {
    {
        let mut table = parts.space.lock();
        table.on_checkpoint_durable();
        for &block in &state.current.chain {
            table.free_now(block);
        }
    }
    state.current.id = header.checkpoint_id;
    state.current.slot = 1 - state.current.slot;
    state.current.chain = chain;
    state.log_bytes_at = log_bytes;
    state.at = Instant::now();
}
