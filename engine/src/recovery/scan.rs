//! Full scan: rebuild the index from every LOG block, without a checkpoint.
//! Blocks are parsed in parallel (rayon); records are then resolved in LSN
//! order, newest version of each key wins, tombstones delete.
//!
//! In salvage mode blocks whose header does not verify are read too, and
//! what verifies in them is kept (and reported).
//!
//! Two rules keep this path from inventing state:
//! - A batch with missing members is dropped when it is the end of the log
//!   (it never completed). An older batch with members missing (damage, or
//!   later the compactor) keeps the members present.
//! - Every block with a valid LOG header stays in use: a block holding only
//!   dead records may still hold the tombstone that keeps an older version
//!   down (invariant 6, docs/DESIGN.md). Reclaiming it is the compactor's job.

use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::{FragmentKind, RecordHeader};
use crate::format::snapshot::IndexEntry;
use crate::format::{BLOCK_HEADER_BYTES, FIRST_DATA_BLOCK};
use crate::index::scan::{BlockScan, Damage, Fragment, scan_block};
use crate::index::{Index, key_hash};
use crate::space::{BlockTable, BlockUse};
use crate::storage::Storage;
use rayon::prelude::*;
use std::collections::HashMap;

/// The result of a full scan.
#[derive(Debug)]
pub struct Scanned {
    pub table: BlockTable,
    pub index: Index,
    pub max_gen: u64,
    pub max_lsn: u64,
    pub records: u64,
    pub damaged: Vec<Damage>,
    pub keys_lost: Vec<Vec<u8>>,
}

/// A whole record found by a scan, every fragment verified.
#[derive(Debug)]
pub(crate) struct Record {
    pub header: RecordHeader,
    pub key: Vec<u8>,
    pub block: u32,
    pub offset: u32,
    pub extents: Vec<(u32, u32)>,
}

/// Everything a scan of the blocks found: whole records (unsorted), damage,
/// and the blocks without a valid header whose records were read anyway.
#[derive(Debug)]
pub(crate) struct Found {
    pub records: Vec<Record>,
    pub damaged: Vec<Damage>,
    pub salvaged: Vec<u32>,
}

/// Reads every LOG block (and, with `resync`, every block whose header does
/// not verify) in parallel and joins fragments into records. `progress` is
/// called once per block read.
pub(crate) fn find_records(
    storage: &dyn Storage,
    headers: &[Option<BlockHeader>],
    resync: bool,
    now_ms: u64,
    progress: &(dyn Fn() + Sync),
) -> Found {
    let floor = floor_gen(headers);
    let blocks: Vec<u32> = (FIRST_DATA_BLOCK..headers.len() as u32)
        .filter(|&b| match headers[b as usize] {
            Some(h) => h.kind == BlockKind::Log && h.generation >= floor,
            // Salvage also reads blocks whose header does not verify: a
            // destroyed header must not hide the records behind it.
            None => resync,
        })
        .collect();
    let mut scans: Vec<BlockScan> = blocks
        .par_iter()
        .map(|&block| {
            let scan = scan_block(storage, block, resync);
            progress();
            scan
        })
        .collect();
    let salvaged: Vec<u32> = scans
        .iter_mut()
        .filter(|s| headers[s.block as usize].is_none() && !s.fragments.is_empty())
        .map(|s| {
            let reason = format!("block header does not verify; {} records salvaged from it", s.fragments.len());
            s.damaged.insert(0, Damage { block: s.block, offset: 0, reason, key_hint: None });
            s.block
        })
        .collect();
    let mut damaged: Vec<Damage> = scans
        .iter()
        .filter(|s| headers[s.block as usize].is_some() || !s.fragments.is_empty())
        .flat_map(|s| s.damaged.iter().cloned())
        .collect();
    let records = assemble(&scans, now_ms, &mut damaged);
    Found { records, damaged, salvaged }
}

/// The full-scan floor: the largest `floor_gen` any LOG header carries.
/// LOG blocks older than it were free when that header was written, and
/// hold nothing a recovery may use: records superseded by newer ones, or
/// versions of keys whose tombstones the compactor dropped because every
/// older version lay below this floor (docs/RECOVERY.md, "Compaction").
pub(crate) fn floor_gen(headers: &[Option<BlockHeader>]) -> u64 {
    headers.iter().flatten().filter(|h| h.kind == BlockKind::Log).map(|h| h.floor_gen).max().unwrap_or(0)
}

/// Scans every LOG block. `resync` (salvage) looks past a damaged record for
/// the next one that verifies; otherwise the rest of that block is skipped.
pub fn full_scan(storage: &dyn Storage, headers: &[Option<BlockHeader>], resync: bool, now_ms: u64) -> Scanned {
    let floor = floor_gen(headers);
    let log_blocks: Vec<(u32, u64)> = headers
        .iter()
        .enumerate()
        .filter_map(|(b, h)| {
            h.filter(|h| h.kind == BlockKind::Log && h.generation >= floor).map(|h| (b as u32, h.generation))
        })
        .collect();
    let Found { mut records, damaged, salvaged } = find_records(storage, headers, resync, now_ms, &|| {});

    records.par_sort_unstable_by_key(|r| r.header.lsn);
    let max_lsn = records.last().map_or(0, |r| r.header.lsn);
    let records = drop_unfinished_batches(records, max_lsn);
    let record_count = records.len() as u64;

    let mut newest: HashMap<&[u8], &Record> = HashMap::with_capacity(records.len());
    for record in &records {
        newest.insert(&record.key, record);
    }
    let mut table = BlockTable::new(headers.len() as u32);
    for &(block, generation) in &log_blocks {
        table.set_use(block, BlockUse::Log { generation });
    }
    for &block in &salvaged {
        table.set_use(block, BlockUse::Log { generation: 0 });
    }
    let mut entries = Vec::with_capacity(newest.len());
    // A record with no extents is an expired one whose chain is broken: it
    // only hides older versions (`assemble_chains`).
    let absent = |r: &Record| r.header.is_tombstone() || r.extents.is_empty();
    for record in newest.values().filter(|r| !absent(r)) {
        for &(block, bytes) in &record.extents {
            table.add_live(block, bytes);
        }
        entries.push(IndexEntry::new(key_hash(&record.key), record.block, record.offset, record.header.lsn));
    }
    let keys_lost = damaged
        .iter()
        .filter_map(|d| d.key_hint.clone())
        .filter(|key| newest.get(key.as_slice()).is_none_or(|r| absent(r)))
        .collect();
    Scanned {
        index: Index::from_entries(&entries),
        table,
        max_gen: log_blocks.iter().map(|&(_, generation)| generation).max().unwrap_or(0),
        max_lsn,
        records: record_count,
        damaged,
        keys_lost,
    }
}

/// Joins FIRST/MIDDLE/LAST fragments into records. An incomplete one is
/// damage — unless a newer record of its key exists: the compactor frees
/// the blocks of superseded versions, so their chains may end in a block
/// reused since.
fn assemble(scans: &[BlockScan], now_ms: u64, damaged: &mut Vec<Damage>) -> Vec<Record> {
    let mut broken = Vec::new();
    let records = assemble_chains(scans, now_ms, &mut broken);
    let mut newest: HashMap<&[u8], u64> = HashMap::with_capacity(records.len());
    for record in &records {
        let lsn = newest.entry(record.key.as_slice()).or_insert(0);
        *lsn = (*lsn).max(record.header.lsn);
    }
    for (damage, lsn, expires_ms) in broken {
        let superseded = damage.key_hint.as_deref().and_then(|key| newest.get(key)).is_some_and(|&n| n > lsn);
        // An expired record reads as absent whole or not; the compactor
        // unlinks one and frees its blocks, which may be reused since.
        let expired = expires_ms != 0 && expires_ms <= now_ms;
        if !superseded && !expired {
            damaged.push(damage);
        }
    }
    records
}

/// Records whose chain is whole (and expired ones with their FIRST alone);
/// `broken` gets each FIRST fragment whose chain is not, with its LSN and
/// expiry.
fn assemble_chains(scans: &[BlockScan], now_ms: u64, broken: &mut Vec<(Damage, u64, u64)>) -> Vec<Record> {
    let first_fragment: HashMap<u32, &Fragment> = scans
        .iter()
        .filter_map(|s| s.fragments.first().filter(|f| f.offset as usize == BLOCK_HEADER_BYTES).map(|f| (s.block, f)))
        .collect();
    let mut records = Vec::new();
    for scan in scans {
        for fragment in &scan.fragments {
            let header = fragment.header;
            match header.kind {
                FragmentKind::Full => records.push(Record {
                    header,
                    key: fragment.key.clone(),
                    block: scan.block,
                    offset: fragment.offset,
                    extents: vec![(scan.block, header.fragment_bytes() as u32)],
                }),
                FragmentKind::First => match follow(&first_fragment, &header) {
                    Some(mut rest) => {
                        rest.insert(0, (scan.block, header.fragment_bytes() as u32));
                        records.push(Record {
                            header,
                            key: fragment.key.clone(),
                            block: scan.block,
                            offset: fragment.offset,
                            extents: rest,
                        });
                    }
                    None => {
                        broken.push((
                            Damage {
                                block: scan.block,
                                offset: fragment.offset,
                                reason: "large record is missing a fragment".into(),
                                key_hint: Some(fragment.key.clone()),
                            },
                            header.lsn,
                            header.expires_ms,
                        ));
                        // An expired record still says "absent since lsn N"
                        // with its FIRST alone: kept, with no extents (it
                        // is never indexed or counted live, like a
                        // tombstone), it hides the older versions of its key.
                        if header.expires_ms != 0 && header.expires_ms <= now_ms {
                            records.push(Record {
                                header,
                                key: fragment.key.clone(),
                                block: scan.block,
                                offset: fragment.offset,
                                extents: Vec::new(),
                            });
                        }
                    }
                },
                FragmentKind::Middle | FragmentKind::Last | FragmentKind::Seal => {}
            }
        }
    }
    records
}

fn follow(first_fragment: &HashMap<u32, &Fragment>, first: &RecordHeader) -> Option<Vec<(u32, u32)>> {
    let mut extents = Vec::new();
    let mut next = first.next_block;
    let mut total = usize::from(first.fragment_len) - usize::from(first.key_len);
    loop {
        let fragment = first_fragment.get(&next)?;
        let ok = fragment.header.lsn == first.lsn
            && matches!(fragment.header.kind, FragmentKind::Middle | FragmentKind::Last);
        if !ok || extents.len() > crate::index::read::fragments_max(first.value_len) {
            return None;
        }
        extents.push((next, fragment.header.fragment_bytes() as u32));
        total += usize::from(fragment.header.fragment_len);
        if fragment.header.kind == FragmentKind::Last {
            return (total == first.value_len as usize).then_some(extents);
        }
        next = fragment.header.next_block;
    }
}

/// Drops a batch with missing members when nothing newer follows it. With no
/// compactor yet, members go missing only through damage or a torn tail.
pub(crate) fn drop_unfinished_batches(records: Vec<Record>, max_lsn: u64) -> Vec<Record> {
    let mut present: HashMap<u64, u16> = HashMap::new();
    for r in records.iter().filter(|r| r.header.batch_count > 1) {
        *present.entry(r.header.lsn.saturating_sub(u64::from(r.header.batch_index))).or_default() += 1;
    }
    records
        .into_iter()
        .filter(|r| {
            let count = r.header.batch_count;
            if count == 1 {
                return true;
            }
            let first = r.header.lsn.saturating_sub(u64::from(r.header.batch_index));
            let complete = present.get(&first).copied().unwrap_or(0) >= count;
            complete || first + u64::from(count) - 1 < max_lsn
        })
        .collect()
}
