//! The offline checker behind `kv-fsck`: everything recovery verifies, plus
//! a full scan of every record and cross-checks of what the store believes
//! (checkpoint + replay) against what the blocks hold.
//!
//! Checks, each reported with block, offset, what is wrong and the key
//! when known:
//! - superblock copies, both checkpoint slots, the snapshot chain (recovery);
//! - every block header and record checksum (a parallel scan);
//! - the index against the scan: each key's entry names its newest record,
//!   no deleted key is indexed, and every entry leads to the record it
//!   names (one that does not means a block was reused while the checkpoint
//!   still referenced it: the pending-free rule broken, or damage);
//! - the bitmap against the blocks live records use, and each block's
//!   live-byte accounting; LOG blocks with no live record are counted as
//!   reclaimable (pending-free blocks of a crashed store show up so: the
//!   pending-free list lives in memory, and recovery rebuilds it as LOG
//!   blocks whose live bytes are zero);
//! - tombstones: a delete whose tombstone sits in a block the allocator
//!   could reuse while an older version survives could be undone;
//! - TTLs: expired keys awaiting cleanup, expiry times out of range.
//!
//! A torn tail after a crash is normal: it is a note, not a problem.

use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::FragmentKind;
use crate::index::lookup;
use crate::index::read::{read_fragment, record_extents};
use crate::index::scan::Damage;
use crate::index::{Index, key_hash};
use crate::recovery::scan::{Found, Record, drop_unfinished_batches, find_records};
use crate::recovery::{SlotStatus, scan_headers};
use crate::space::{BlockTable, BlockUse};
use crate::storage::Storage;
use crate::store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

/// Expiry times beyond this many milliseconds from now are suspect.
const TTL_MS_SANE_MAX: u64 = 100 * 365 * 24 * 3600 * 1000;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Data is damaged, lost or at risk.
    Error,
    /// Inconsistent bookkeeping that does not lose data.
    Warning,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub block: Option<u32>,
    pub offset: Option<u32>,
    pub what: String,
    pub key: Option<Vec<u8>>,
}

/// Counts over the whole file.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub blocks: u64,
    pub blocks_log: u64,
    pub blocks_snapshot: u64,
    pub blocks_free: u64,
    pub blocks_pending_free: u64,
    /// LOG blocks (the head block aside) that hold no live record: what the
    /// compactor can free without moving anything.
    pub blocks_reclaimable: u64,
    pub records_scanned: u64,
    pub live_records: u64,
    pub tombstones: u64,
    pub keys: u64,
    pub expired_keys: u64,
    pub damaged_records: u64,
}

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    pub problems: Vec<Problem>,
    /// Normal findings worth a line (a torn tail after a crash).
    pub notes: Vec<String>,
    pub totals: Totals,
    /// Records a damaged region starts at: (block, offset), for quarantine.
    pub damaged_at: Vec<(u32, u32)>,
}

impl FsckReport {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Error).count()
    }

    fn error(&mut self, block: Option<u32>, offset: Option<u32>, what: String, key: Option<Vec<u8>>) {
        self.problems.push(Problem { severity: Severity::Error, block, offset, what, key });
    }

    fn warning(&mut self, block: Option<u32>, offset: Option<u32>, what: String, key: Option<Vec<u8>>) {
        self.problems.push(Problem { severity: Severity::Warning, block, offset, what, key });
    }
}

impl Store {
    /// Checks the store (open it read-only for an offline check). `progress`
    /// is called with (blocks read, blocks to read) during the scan.
    pub fn fsck(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> FsckReport {
        let engine = &self.engine;
        let storage = &*engine.storage;
        let mut report = FsckReport::default();
        from_recovery(self, &mut report);

        let (headers, _) = scan_headers(storage, engine.space.block_count());
        let total = headers.iter().flatten().count() as u64;
        let done = AtomicU64::new(0);
        let tick = || progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
        let Found { records, damaged, .. } = find_records(storage, &headers, true, engine.clock.now_ms(), &tick);
        report_damage(self, &headers, &damaged, &mut report);
        report.totals.records_scanned = records.len() as u64;

        let last_lsn = self.stats().last_lsn;
        let records = within_the_log(records, last_lsn, &mut report);
        let mut newest = HashMap::with_capacity(records.len());
        for record in records.iter().filter(|r| r.header.lsn <= last_lsn) {
            newest.insert(record.key.as_slice(), record);
        }
        // Lock order (engine.rs): the log before the block table.
        let head = engine.writer.lock().active_block();
        let table = engine.space.lock();
        let visible_puts = visible_puts(&records, &headers, &table, last_lsn);
        let check = KeyCheck {
            storage,
            index: &engine.index,
            table: &table,
            visible_puts: &visible_puts,
            now: engine.clock.now_ms(),
        };
        let mut live = vec![0u64; table.block_count() as usize];
        for (key, record) in &newest {
            check.newest(key, record, &mut live, &mut report);
        }
        check_index_entries(self, &table, &mut report);
        count_blocks(&table, &live, head, &mut report);
        report.totals.keys = engine.index.len();
        report
    }
}

/// Reports the damage the scan found, except where recovery cut the log (and
/// after it): that is the torn tail of a crash, which recovery discards.
fn report_damage(store: &Store, headers: &[Option<BlockHeader>], damaged: &[Damage], report: &mut FsckReport) {
    let cut = store.recovery_report().tail_cut.as_ref().map(|cut| {
        let generation = headers[cut.block as usize].map_or(0, |h| h.generation);
        (cut.block, cut.offset, generation)
    });
    let in_cut_tail = |block: u32, offset: u32| {
        cut.is_some_and(|(cut_block, cut_offset, cut_generation)| {
            (block == cut_block && offset >= cut_offset)
                || headers[block as usize].is_some_and(|h| h.kind == BlockKind::Log && h.generation > cut_generation)
        })
    };
    let mut tail_damage = 0;
    for damage in damaged {
        if in_cut_tail(damage.block, damage.offset) {
            tail_damage += 1;
            continue;
        }
        report.error(Some(damage.block), Some(damage.offset), damage.reason.clone(), damage.key_hint.clone());
        report.damaged_at.push((damage.block, damage.offset));
    }
    if tail_damage > 0 {
        report.notes.push(format!("{tail_damage} torn records lie in the cut tail (discarded at the next open)"));
    }
    report.totals.damaged_records = damaged.len() as u64 - tail_damage;
}

/// The records in LSN order without unfinished batches, noting those beyond
/// the log's end: recovery cut them (a torn tail) and they are not the truth.
fn within_the_log(mut records: Vec<Record>, last_lsn: u64, report: &mut FsckReport) -> Vec<Record> {
    records.sort_unstable_by_key(|r| r.header.lsn);
    let max_lsn = records.last().map_or(0, |r| r.header.lsn);
    let records = drop_unfinished_batches(records, max_lsn);
    let beyond = records.iter().filter(|r| r.header.lsn > last_lsn).count();
    if beyond > 0 {
        report.notes.push(format!("{beyond} records lie beyond the end of the log (lsn > {last_lsn}): a cut tail"));
    }
    records
}

/// Keys with a put a full scan would still read once free blocks are reused:
/// at or above the floor a new block header would carry (the oldest
/// generation not yet free). One pass, not one per tombstone.
fn visible_puts<'a>(
    records: &'a [Record],
    headers: &[Option<BlockHeader>],
    table: &BlockTable,
    last_lsn: u64,
) -> HashSet<&'a [u8]> {
    let floor = table.oldest_generation().unwrap_or(u64::MAX);
    records
        .iter()
        .filter(|r| r.header.lsn <= last_lsn && !r.header.is_tombstone() && !r.extents.is_empty())
        .filter(|r| headers[r.block as usize].is_some_and(|h| h.generation >= floor))
        .map(|r| r.key.as_slice())
        .collect()
}

/// What checking each key's newest record against the index needs.
struct KeyCheck<'a> {
    storage: &'a dyn Storage,
    index: &'a Index,
    table: &'a BlockTable,
    visible_puts: &'a HashSet<&'a [u8]>,
    now: u64,
}

impl KeyCheck<'_> {
    /// Checks `record`, the newest of `key`, against the index, and adds
    /// the bytes of a live record to `live` (per block).
    fn newest(&self, key: &[u8], record: &Record, live: &mut [u64], report: &mut FsckReport) {
        let key = key.to_vec();
        let found = lookup::find(self.storage, self.index, &key, key_hash(&key)).current;
        let at = (Some(record.block), Some(record.offset));
        if record.header.is_tombstone() {
            report.totals.tombstones += 1;
            if found.is_some() {
                report.error(at.0, at.1, "deleted key is still in the index".into(), Some(key.clone()));
            }
            // A tombstone in a free block is gone once the block is
            // reused; that is safe (the compactor's drop rule) only if
            // no older version of the key lies where a full scan would
            // still look then (`visible_puts`). This tombstone is the
            // key's newest record, so every such put is older.
            if self.table.use_of(record.block) == BlockUse::Free && self.visible_puts.contains(key.as_slice()) {
                let what =
                    "tombstone in a free block while an older version survives: reusing the block would undo the delete"
                        .into();
                report.error(at.0, at.1, what, Some(key));
            }
            return;
        }
        let expires = record.header.expires_ms;
        if found.is_none() && expires != 0 && expires <= self.now {
            // Expired, and dropped from the index by the compactor (or
            // never re-added): reads treat it as absent either way.
            return;
        }
        report.totals.live_records += 1;
        let Some(current) = found else {
            let what = format!("newest record (lsn {}) is not in the index", record.header.lsn);
            report.error(at.0, at.1, what, Some(key));
            return;
        };
        if current.entry.lsn() != record.header.lsn {
            let what =
                format!("index names lsn {} but the newest record is lsn {}", current.entry.lsn(), record.header.lsn);
            report.error(at.0, at.1, what, Some(key.clone()));
        }
        let expires = current.first.header.expires_ms;
        if expires != 0 && expires <= self.now {
            report.totals.expired_keys += 1;
        } else if expires > self.now.saturating_add(TTL_MS_SANE_MAX) {
            report.warning(at.0, at.1, format!("expiry {expires} ms is more than 100 years away"), Some(key.clone()));
        }
        match record_extents(self.storage, current.entry.block, &current.first) {
            Ok(extents) => {
                for (block, bytes) in extents {
                    live[block as usize] += u64::from(bytes);
                    if !matches!(self.table.use_of(block), BlockUse::Log { .. }) {
                        let what = "block holds a live record but is not in use in the bitmap".into();
                        report.error(Some(block), None, what, Some(key.clone()));
                    }
                }
            }
            Err(err) => report.error(at.0, at.1, format!("live record unreadable: {err}"), Some(key)),
        }
    }
}

/// The block totals, and the live-byte accounting against what the records
/// say (`live`); `head` is the log's active block, never reclaimable.
fn count_blocks(table: &BlockTable, live: &[u64], head: Option<u32>, report: &mut FsckReport) {
    for block in 0..table.block_count() {
        let accounted = u64::from(table.live_table()[block as usize]);
        if matches!(table.use_of(block), BlockUse::Log { .. }) && live[block as usize] == 0 && Some(block) != head {
            report.totals.blocks_reclaimable += 1;
        }
        if matches!(table.use_of(block), BlockUse::Log { .. }) && accounted != live[block as usize] {
            let what = format!("live-byte accounting says {accounted}, the records say {}", live[block as usize]);
            report.warning(Some(block), None, what, None);
        }
        match table.use_of(block) {
            BlockUse::Log { .. } => report.totals.blocks_log += 1,
            BlockUse::Snapshot => report.totals.blocks_snapshot += 1,
            BlockUse::Free => report.totals.blocks_free += 1,
            BlockUse::Meta | BlockUse::Pending { .. } => {}
        }
    }
    report.totals.blocks = u64::from(table.block_count());
    report.totals.blocks_pending_free = table.pending_count();
}

/// Every index entry must lead to the first fragment of a record in a LOG
/// block with the entry's LSN and key hash. The per-key check above starts
/// from the records; this one starts from the index, so it also finds an
/// entry whose record is gone altogether — what a block reused before the
/// checkpoint naming it was replaced leaves behind (invariant 5, docs/DESIGN.md).
fn check_index_entries(store: &Store, table: &BlockTable, report: &mut FsckReport) {
    let storage = &*store.engine.storage;
    for entry in store.engine.index.entries() {
        let at = (Some(entry.block), Some(entry.offset()));
        let lsn = entry.lsn();
        let fragment = match read_fragment(storage, entry.block, entry.offset()) {
            Ok(fragment) => fragment,
            Err(err) => {
                report.error(at.0, at.1, format!("index entry (lsn {lsn}) leads to no valid record: {err}"), None);
                continue;
            }
        };
        let key = Some(fragment.key().to_vec());
        let first = matches!(fragment.header.kind, FragmentKind::Full | FragmentKind::First);
        if fragment.header.lsn != lsn || key_hash(fragment.key()) != entry.hash || !first {
            let what = format!(
                "index entry (lsn {lsn}) leads to another record (lsn {}): its block was reused while the index still named it",
                fragment.header.lsn
            );
            report.error(at.0, at.1, what, key);
        } else if !matches!(table.use_of(entry.block), BlockUse::Log { .. }) {
            let what = format!("index entry (lsn {lsn}) names a block that is not a LOG block in use");
            report.error(at.0, at.1, what, key);
        }
    }
}

/// Turns what recovery found into findings.
fn from_recovery(store: &Store, report: &mut FsckReport) {
    let recovery = store.recovery_report();
    if recovery.superblock_copies_valid < 2 {
        report.warning(
            Some(0),
            None,
            format!("{} of 2 superblock copies verify", recovery.superblock_copies_valid),
            None,
        );
    }
    for (slot, status) in recovery.slots.iter().enumerate() {
        let name = ["A", "B"][slot];
        match status {
            SlotStatus::Damaged { reason } => {
                report.warning(Some(1 + slot as u32), None, format!("checkpoint slot {name}: {reason}"), None)
            }
            SlotStatus::Unusable { id, reason } => report.warning(
                Some(1 + slot as u32),
                None,
                format!("checkpoint slot {name} (id {id}) is unusable: {reason}"),
                None,
            ),
            SlotStatus::Valid { .. } | SlotStatus::Empty => {}
        }
    }
    if let Some(reason) = &recovery.full_scan_reason {
        report.warning(None, None, format!("no checkpoint could be used ({reason})"), None);
    }
    if let Some(cut) = &recovery.tail_cut {
        report.notes.push(format!(
            "log tail cut at block {} offset {} ({}); {} records after it are discarded at the next open: normal after a crash",
            cut.block, cut.offset, cut.reason, cut.records_discarded
        ));
    }
    for damage in &recovery.damaged {
        // Damaged records are found again by the scan; report the rest here.
        if damage.offset == 0 || damage.block < crate::format::FIRST_DATA_BLOCK {
            report.error(Some(damage.block), Some(damage.offset), damage.reason.clone(), damage.key_hint.clone());
        }
    }
}
