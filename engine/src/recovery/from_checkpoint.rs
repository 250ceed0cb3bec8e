//! Recovery from a checkpoint: the block table and index its snapshot
//! holds, then replay of the log written after it, and the cut tail made
//! final.

use super::replay::{self, Position, Start};
use super::{Blocks, Loaded, Recovered};
use crate::checkpoint::Current;
use crate::error::{Error, Result};
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::is_clean_end;
use crate::format::slot::SlotHeader;
use crate::format::snapshot::Snapshot;
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_BYTES, FIRST_DATA_BLOCK, block_offset};
use crate::index::Index;
use crate::options::RecoveryMode;
use crate::recovery::{Damage, RecoveryReport, TailCut};
use crate::space::{BlockTable, BlockUse};
use crate::storage::Storage;
use crate::writer::LogWriter;

/// Recovery from the checkpoint `loaded`: its snapshot, then replay of the
/// log after it.
pub(super) fn from_checkpoint(
    storage: &dyn Storage,
    blocks: Blocks<'_>,
    superblock: Superblock,
    loaded: Loaded,
    newest_id: u64,
    mut report: RecoveryReport,
    writable: bool,
) -> Result<Recovered> {
    let Loaded { slot, header, snapshot } = loaded;
    report.checkpoint_id = Some(header.checkpoint_id);
    report.covered_lsn = header.covered_lsn;
    let index = Index::from_entries(&snapshot.entries);
    let (mut table, chain) = table_from_snapshot(blocks.headers, &superblock, &header, snapshot, &mut report);
    let start = Start {
        replay_gen: header.replay_gen,
        replay_offset: header.replay_offset as usize,
        covered_lsn: header.covered_lsn,
    };
    let outcome = replay::replay(storage, blocks, start, &index, &mut table);
    report.log_blocks_replayed = outcome.blocks_replayed;
    report.records_replayed = outcome.records_replayed;
    check_strict(&report, outcome.cut.as_ref())?;
    if outcome.cut.is_some() && writable {
        truncate_tail(storage, outcome.tail, &outcome.discard)?;
    }
    report.tail_cut = outcome.cut.clone();
    let active = match outcome.tail {
        Some(tail) => {
            let mut buf = vec![0u8; BLOCK_BYTES].into_boxed_slice();
            storage.read_at(block_offset(tail.block), &mut buf).map_err(|e| Error::io("read tail block", e))?;
            buf[tail.offset..].fill(0);
            Some((tail.block, tail.generation, buf, tail.offset))
        }
        None => None,
    };
    let wants_checkpoint = outcome.records_replayed > 0 || outcome.cut.is_some();
    Ok(Recovered {
        superblock,
        table,
        index,
        log: LogWriter::new(outcome.next_gen, outcome.last_lsn + 1, active),
        checkpoint: Current { id: newest_id, slot, chain },
        report,
        wants_checkpoint,
    })
}

/// Strict mode refuses a cut log and any damage found.
fn check_strict(report: &RecoveryReport, cut: Option<&TailCut>) -> Result<()> {
    if report.mode != RecoveryMode::Strict {
        return Ok(());
    }
    if let Some(cut) = cut {
        return Err(Error::RecoveryRefused {
            reason: format!("strict mode: log damaged at block {} offset {}: {}", cut.block, cut.offset, cut.reason),
        });
    }
    if let Some(damage) = report.damaged.first() {
        return Err(Error::RecoveryRefused {
            reason: format!("strict mode: block {} offset {}: {}", damage.block, damage.offset, damage.reason),
        });
    }
    Ok(())
}

/// The block table the snapshot describes, each block in use given the
/// kind its header names; and the snapshot's own chain, in order.
fn table_from_snapshot(
    headers: &[Option<BlockHeader>],
    superblock: &Superblock,
    header: &SlotHeader,
    snapshot: Snapshot,
    report: &mut RecoveryReport,
) -> (BlockTable, Vec<u32>) {
    let mut table = BlockTable::from_snapshot(&snapshot.bitmap, snapshot.live_bytes);
    let mut chain = Vec::new();
    for block in FIRST_DATA_BLOCK..superblock.block_count as u32 {
        if table.use_of(block) == BlockUse::Free {
            continue;
        }
        match headers[block as usize] {
            Some(h) if h.kind == BlockKind::Log => table.set_use(block, BlockUse::Log { generation: h.generation }),
            // The snapshot's own chain stays; older chains it still listed are free.
            Some(h) if h.generation == header.checkpoint_id => {
                table.set_use(block, BlockUse::Snapshot);
                chain.push(block);
            }
            Some(_) => table.set_use(block, BlockUse::Free),
            None => report.damaged.push(Damage {
                block,
                offset: 0,
                reason: "block in use has no valid header".into(),
                key_hint: None,
            }),
        }
    }
    chain.sort_by_key(|&b| headers[b as usize].map_or(0, |h| h.seq));
    (table, chain)
}

/// Makes the cut final: zeroes what follows it so that no later recovery,
/// full scan included, can read the discarded records back.
fn truncate_tail(storage: &dyn Storage, tail: Option<Position>, discard: &[u32]) -> Result<()> {
    let io = |e| Error::io("truncate tail", e);
    let mut wrote = false;
    if let Some(Position { block, offset: used, .. }) = tail {
        let mut rest = vec![0u8; BLOCK_BYTES - used];
        storage.read_at(block_offset(block) + used as u64, &mut rest).map_err(io)?;
        if !is_clean_end(&rest) {
            rest.fill(0);
            storage.write_at(block_offset(block) + used as u64, &rest).map_err(io)?;
            wrote = true;
        }
    }
    let zeros = vec![0u8; BLOCK_BYTES];
    for &block in discard {
        // Whole blocks: their records must not look like the log going on.
        storage.write_at(block_offset(block), &zeros).map_err(io)?;
        wrote = true;
    }
    if wrote {
        // Durability: the discarded records must be gone before any new
        // record is appended after the cut (reusing their LSNs and
        // generations), or a later recovery could replay them.
        storage.sync().map_err(io)?;
    }
    Ok(())
}
