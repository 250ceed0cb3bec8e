//! Recovery: superblock -> newest usable checkpoint -> replay of the blocks
//! written after it -> index. With no usable checkpoint (or in salvage mode),
//! a full parallel scan of every block instead. docs/RECOVERY.md walks through
//! the steps and argues each invariant.

mod from_checkpoint;
mod records;
mod replay;
mod report;
pub(crate) mod scan;

use from_checkpoint::from_checkpoint;
pub use report::{Damage, RecoveryMode, RecoveryReport, SlotStatus, TailCut};

use crate::checkpoint::Current;
use crate::error::{Error, Result};
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::{RECORD_HEADER_BYTES, RecordHeader, decode_fragment, is_clean_end};
use crate::format::slot::SlotHeader;
use crate::format::snapshot::{self, Snapshot};
use crate::format::superblock::{SUPERBLOCK_MAGIC, Superblock};
use crate::format::{
    BLOCK_BYTES, BLOCK_HEADER_BYTES, COPY_OFFSETS, FIRST_DATA_BLOCK, SLOT_BLOCKS, block_offset, masked_crc,
};
use crate::index::Index;
use crate::space::BlockTable;
use crate::storage::Storage;
use crate::writer::LogWriter;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

/// The state recovery hands to the store.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub superblock: Superblock,
    pub table: BlockTable,
    pub index: Index,
    pub log: LogWriter,
    /// The current checkpoint (what the next one follows).
    pub checkpoint: Current,
    pub report: RecoveryReport,
    /// A checkpoint should be written before the store is used hard.
    pub wants_checkpoint: bool,
}

/// Recovers the store on `storage`. `writable = false` changes nothing on
/// disk (a cut tail is left in place, only reported).
/// `now_ms` tells expired records (which a full scan may find half
/// overwritten: not damage) from live ones.
pub(crate) fn recover(
    storage: &dyn Storage,
    path: &Path,
    mode: RecoveryMode,
    writable: bool,
    now_ms: u64,
) -> Result<Recovered> {
    let started = Instant::now();
    let mut report = RecoveryReport { mode, ..RecoveryReport::default() };
    let superblock = read_superblock(storage, path, mode, &mut report)?;
    let block_count = superblock.block_count as u32;
    let (headers, orphans) = scan_headers(storage, block_count);
    report.blocks_scanned = u64::from(block_count - FIRST_DATA_BLOCK);
    let slots = read_slots(storage, &mut report);
    if mode == RecoveryMode::Strict
        && let Some(reason) = report.slots.iter().find_map(|s| match s {
            SlotStatus::Damaged { reason } => Some(reason.clone()),
            _ => None,
        })
    {
        return Err(Error::RecoveryRefused { reason: format!("strict mode: a checkpoint slot is damaged ({reason})") });
    }
    let newest_id = slots.iter().flatten().map(|(_, h)| h.checkpoint_id).max().unwrap_or(0);
    let mut candidates: Vec<(usize, SlotHeader)> = slots.iter().flatten().copied().collect();
    candidates.sort_by_key(|(_, h)| std::cmp::Reverse(h.checkpoint_id));
    let mut loaded = None;
    if mode != RecoveryMode::Salvage {
        for (slot, header) in candidates {
            match load_snapshot(storage, &headers, &header, block_count) {
                Ok(snapshot) => {
                    loaded = Some(Loaded { slot, header, snapshot });
                    break;
                }
                Err(reason) => {
                    if mode == RecoveryMode::Strict {
                        return Err(Error::RecoveryRefused {
                            reason: format!("strict mode: checkpoint {} is unusable ({reason})", header.checkpoint_id),
                        });
                    }
                    report.slots[slot] = SlotStatus::Unusable { id: header.checkpoint_id, reason: reason.into() };
                }
            }
        }
    }
    if mode == RecoveryMode::Strict
        && let Some(damage) = report.damaged.first()
    {
        return Err(Error::RecoveryRefused {
            reason: format!("strict mode: block {} offset {}: {}", damage.block, damage.offset, damage.reason),
        });
    }
    let mut recovered = match loaded {
        Some(loaded) => {
            report.slots[loaded.slot] = SlotStatus::Valid { id: loaded.header.checkpoint_id, used: true };
            let blocks = Blocks { headers: &headers, orphans: &orphans };
            from_checkpoint(storage, blocks, superblock, loaded, newest_id, report, writable)?
        }
        None if mode == RecoveryMode::Strict => {
            return Err(Error::RecoveryRefused { reason: "strict mode: no usable checkpoint".into() });
        }
        None => {
            let new_file = report.slots.iter().all(|slot| *slot == SlotStatus::Empty);
            let reason = match (mode, new_file) {
                (RecoveryMode::Salvage, _) => "salvage mode scans every block",
                (_, true) => "a new file: no checkpoint yet",
                (_, false) => "no usable checkpoint",
            };
            report.full_scan_reason = Some(reason.into());
            let current_slot = slots.iter().flatten().max_by_key(|(_, h)| h.checkpoint_id).map_or(1, |(s, _)| *s);
            from_full_scan(storage, &headers, superblock, current_slot, newest_id, report, now_ms)
        }
    };
    recovered.report.keys = recovered.index.len();
    recovered.report.elapsed = started.elapsed();
    Ok(recovered)
}

fn read_superblock(
    storage: &dyn Storage,
    path: &Path,
    mode: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<Superblock> {
    let not_ours = |reason: String| Error::NotBlockkv { path: path.to_path_buf(), reason };
    if storage.len() < BLOCK_BYTES as u64 * u64::from(FIRST_DATA_BLOCK + 1) {
        return Err(not_ours(format!("file is {} bytes, too small to be a blockkv file", storage.len())));
    }
    let mut block = vec![0u8; BLOCK_BYTES];
    storage.read_at(0, &mut block).map_err(|e| Error::io("read superblock", e))?;
    let copies: Vec<_> = COPY_OFFSETS.iter().map(|&at| Superblock::decode(&block[at..])).collect();
    report.superblock_copies_valid = copies.iter().filter(|c| c.is_ok()).count() as u8;
    for (copy, &at) in copies.iter().zip(&COPY_OFFSETS) {
        if let Err(reason) = copy {
            report.damaged.push(Damage {
                block: 0,
                offset: at as u32,
                reason: format!("superblock copy: {reason}"),
                key_hint: None,
            });
        }
    }
    let file_blocks = storage.len() / BLOCK_BYTES as u64;
    let superblock = match copies.iter().find_map(|c| c.as_ref().ok()) {
        Some(sb) => *sb,
        None if mode == RecoveryMode::Salvage => {
            tracing::warn!(
                "both superblock copies are damaged; salvage assumes {file_blocks} blocks from the file size"
            );
            Superblock { block_count: file_blocks, created_ms: 0, file_id: 0 }
        }
        None => {
            let has_magic = COPY_OFFSETS.iter().any(|&at| block[at..at + 8] == SUPERBLOCK_MAGIC);
            let reason = match (has_magic, copies.first()) {
                (true, Some(Err(reason))) => {
                    format!(
                        "both superblock copies are damaged ({reason}); open with --recovery salvage or run kv-fsck --repair"
                    )
                }
                _ => "no blockkv superblock (wrong file?)".to_string(),
            };
            return Err(not_ours(reason));
        }
    };
    if superblock.block_count != file_blocks || superblock.block_count > u64::from(u32::MAX) {
        return Err(not_ours(format!(
            "superblock says {} blocks but the file holds {file_blocks}",
            superblock.block_count
        )));
    }
    Ok(superblock)
}

/// A checkpoint whose snapshot verified: where recovery starts.
#[derive(Debug)]
struct Loaded {
    slot: usize,
    header: SlotHeader,
    snapshot: Snapshot,
}

/// What the header scan found.
#[derive(Debug, Clone, Copy)]
struct Blocks<'a> {
    /// Every block's header; None where it does not verify.
    headers: &'a [Option<BlockHeader>],
    /// Blocks whose header does not verify but whose first record does:
    /// (block, that record's lsn). A block like that beyond the end of the
    /// log means the log went on, so the end found is a cut, not clean.
    orphans: &'a [(u32, u64)],
}

/// Every block's header, read in parallel, and the orphan blocks (above).
pub(crate) fn scan_headers(storage: &dyn Storage, block_count: u32) -> (Vec<Option<BlockHeader>>, Vec<(u32, u64)>) {
    let scanned: Vec<(Option<BlockHeader>, Option<u64>)> = (0..block_count)
        .into_par_iter()
        .map(|block| {
            if block < FIRST_DATA_BLOCK {
                return (None, None);
            }
            let mut bytes = [0u8; BLOCK_HEADER_BYTES + RECORD_HEADER_BYTES];
            if storage.read_at(block_offset(block), &mut bytes).is_err() {
                return (None, None);
            }
            match BlockHeader::decode(&bytes) {
                Ok(header) => (Some(header), None),
                Err(_) => (None, orphan_lsn(storage, block, &bytes[BLOCK_HEADER_BYTES..])),
            }
        })
        .collect();
    let orphans = scanned.iter().enumerate().filter_map(|(b, (_, lsn))| lsn.map(|lsn| (b as u32, lsn))).collect();
    (scanned.into_iter().map(|(h, _)| h).collect(), orphans)
}

/// The lsn of a verified record at the start of a block with a bad header.
fn orphan_lsn(storage: &dyn Storage, block: u32, head: &[u8]) -> Option<u64> {
    let header = RecordHeader::decode_unverified(head).ok()?;
    let mut bytes = vec![0u8; header.fragment_bytes()];
    storage.read_at(block_offset(block) + BLOCK_HEADER_BYTES as u64, &mut bytes).ok()?;
    decode_fragment(&bytes).ok().map(|h| h.lsn)
}

/// Both slots; the better header copy of each.
fn read_slots(storage: &dyn Storage, report: &mut RecoveryReport) -> [Option<(usize, SlotHeader)>; 2] {
    let mut out = [None, None];
    let mut block = vec![0u8; BLOCK_BYTES];
    for (slot, &slot_block) in SLOT_BLOCKS.iter().enumerate() {
        if let Err(err) = storage.read_at(block_offset(slot_block), &mut block) {
            report.slots[slot] = SlotStatus::Damaged { reason: format!("read failed: {err}") };
            continue;
        }
        let copies: Vec<_> = COPY_OFFSETS.iter().map(|&at| SlotHeader::decode(&block[at..])).collect();
        let best = copies.iter().filter_map(|c| c.as_ref().ok()).max_by_key(|h| h.checkpoint_id);
        report.slots[slot] = match (best, is_clean_end(&block)) {
            (Some(header), _) => {
                for (copy, &at) in copies.iter().zip(&COPY_OFFSETS) {
                    let stale = copy.as_ref().is_ok_and(|h| h != header);
                    if copy.is_err() || stale {
                        let reason = match copy {
                            Err(reason) => format!("checkpoint slot header copy: {reason}"),
                            Ok(_) => "checkpoint slot header copies disagree".to_string(),
                        };
                        report.damaged.push(Damage { block: slot_block, offset: at as u32, reason, key_hint: None });
                    }
                }
                out[slot] = Some((slot, *header));
                SlotStatus::Valid { id: header.checkpoint_id, used: false }
            }
            (None, true) => SlotStatus::Empty,
            (None, false) => SlotStatus::Damaged {
                reason: copies.iter().find_map(|c| c.as_ref().err()).copied().unwrap_or("unreadable").into(),
            },
        };
    }
    out
}

/// Reads and verifies the snapshot chain a slot header names.
fn load_snapshot(
    storage: &dyn Storage,
    headers: &[Option<BlockHeader>],
    slot: &SlotHeader,
    block_count: u32,
) -> Result<Snapshot, &'static str> {
    let mut payload = Vec::with_capacity(slot.snapshot_bytes.min(u64::from(block_count) * BLOCK_BYTES as u64) as usize);
    let mut block = slot.snapshot_first_block;
    for seq in 0..slot.snapshot_block_count {
        let header = headers
            .get(block as usize)
            .copied()
            .flatten()
            .ok_or("snapshot chain names a block without a valid header")?;
        if header.kind != BlockKind::Snapshot || header.generation != slot.checkpoint_id || header.seq != seq {
            return Err("snapshot chain names a block of another checkpoint");
        }
        if (header.next_block == 0) != (seq + 1 == slot.snapshot_block_count) {
            return Err("snapshot chain length disagrees with its slot");
        }
        let start = payload.len();
        payload.resize(start + header.payload_bytes as usize, 0);
        storage
            .read_at(block_offset(block) + BLOCK_HEADER_BYTES as u64, &mut payload[start..])
            .map_err(|_| "snapshot block could not be read")?;
        block = header.next_block;
    }
    if payload.len() as u64 != slot.snapshot_bytes || masked_crc(&payload) != slot.snapshot_crc {
        return Err("snapshot checksum mismatch");
    }
    snapshot::decode(&payload, u64::from(block_count))
}

fn from_full_scan(
    storage: &dyn Storage,
    headers: &[Option<BlockHeader>],
    superblock: Superblock,
    current_slot: usize,
    newest_id: u64,
    mut report: RecoveryReport,
    now_ms: u64,
) -> Recovered {
    let scanned = scan::full_scan(storage, headers, report.mode == RecoveryMode::Salvage, now_ms);
    report.records_replayed = scanned.records;
    report.log_blocks_replayed = headers.iter().flatten().filter(|h| h.kind == BlockKind::Log).count() as u64;
    report.damaged.extend(scanned.damaged);
    report.keys_lost = scanned.keys_lost;
    Recovered {
        superblock,
        table: scanned.table,
        index: scanned.index,
        log: LogWriter::new(scanned.max_gen + 1, scanned.max_lsn + 1, None),
        checkpoint: Current { id: newest_id, slot: current_slot, chain: Vec::new() },
        report,
        wants_checkpoint: true,
    }
}
