//! Emptying one victim: each record that must survive is decided and
//! copied under the log lock, one at a time.

use super::{Parts, PassOutcome};
use crate::error::{Error, Result};
use crate::format::RECORD_HEADER_BYTES;
use crate::format::record::{FragmentKind, RecordHeader};
use crate::format::snapshot::IndexEntry;
use crate::index::apply::{self, Moving, Order, Update};
use crate::index::key_hash;
use crate::index::lookup;
use crate::index::read::{fragments_max, read_fragment, read_record};
use crate::index::scan::scan_block;
use crate::space::{BlockUse, Purpose};
use crate::writer::{LogWriter, Op};
use std::sync::atomic::Ordering;

/// Moves every record of `block` that must survive to the head of the log.
/// The block is sealed, so it is parsed without a lock, and its dead puts
/// are told without the log lock; every other record is decided and
/// copied under it — every write publishes to the index under it, so what
/// the index says cannot change in between — and the lock is released
/// after each one, so foreground writes wait for one copy at most, never
/// for a whole pass.
pub(super) fn empty_block(parts: &Parts<'_>, block: u32, may_drop: bool, outcome: &mut PassOutcome) -> Result<bool> {
    let storage = parts.storage;
    let mut dropped = false;
    // The same parse the full scan uses; damage stops it at the first bad
    // record, and the block (with whatever it holds) stays where it is.
    let scan = scan_block(storage, block, false);
    if let Some(damage) = scan.damaged.first() {
        return Err(Error::corrupt(block, damage.offset, "compaction found a damaged record"));
    }
    // Live bytes count indexed puts only (every fragment, in each block it
    // spans), and a sealed block's can only fall: at 0 none of its puts
    // is indexed, and each is known dead without an index lookup (a cache
    // miss each, in blocks that are usually all dead: docs/BENCHMARKS.md).
    let any_live = parts.space.lock().live_table()[block as usize] > 0;
    // A record continued from an older block: only the first fragment of a
    // block can be one (a MIDDLE or LAST starts its block). Live only if
    // the block has live bytes.
    if let Some(fragment) = scan.fragments.first()
        && any_live
        && matches!(fragment.header.kind, FragmentKind::Middle | FragmentKind::Last)
    {
        move_continued(parts, block, &fragment.header, outcome)?;
    }
    let mut candidates = Vec::new();
    for fragment in scan.fragments {
        let (here, header, key) = (fragment.offset, fragment.header, fragment.key);
        if !matches!(header.kind, FragmentKind::Full | FragmentKind::First) {
            continue;
        }
        let hash = key_hash(&key);
        // A put no index entry points at stays dead: entries are only ever
        // pointed at new records at the head, never at a sealed block's.
        // So the dead are told before the log lock, and writers wait for
        // live records (and tombstones) only.
        if !header.is_tombstone() {
            let entry = IndexEntry::new(hash, block, here, header.lsn);
            let live = any_live && indexed_here(parts, entry, &mut candidates);
            debug_assert!(
                any_live || !indexed_here(parts, entry, &mut candidates),
                "block {block} has no live bytes, yet the index names its record at {here}"
            );
            if !live {
                continue; // an older version: no index entry points at it
            }
        }
        dropped |= move_record(parts, (block, here), header, (key, hash), may_drop, outcome)?;
    }
    Ok(dropped)
}

/// Decides, under the log lock, what becomes of one record of a victim
/// (the FULL or FIRST fragment at offset `here` of `block`, whose key
/// has index hash `hash`), and does it; then releases the lock.
/// Returns whether a record was dropped that only the victims' going
/// makes safe to drop.
fn move_record(
    parts: &Parts<'_>,
    (block, here): (u32, u32),
    header: RecordHeader,
    (key, hash): (Vec<u8>, u32),
    may_drop: bool,
    outcome: &mut PassOutcome,
) -> Result<bool> {
    let entry = IndexEntry::new(hash, block, here, header.lsn);
    // Decided here, before the lock: a put that expires after this check
    // is copied with its expiry (reads treat it as absent) and goes in a
    // later pass.
    let expired = header.expires_ms != 0 && header.expires_ms <= parts.clock.now_ms();
    // A put to move is read (and checksummed) before the lock: its blocks
    // are sealed and only the compactor frees LOG blocks, at the end of a
    // pass, so its bytes cannot change; whether the index still names it
    // can, and is checked again under the lock. Read before it, the lock is
    // held for less (docs/BENCHMARKS.md).
    let moving = if header.is_tombstone() || expired {
        None
    } else {
        let (value, extents) = read_record(parts.storage, block, read_fragment(parts.storage, block, here)?)?;
        Some((value, Moving { entry, extents }))
    };
    #[cfg(test)]
    super::tests::BEFORE_MOVE_LOCK.with_borrow_mut(|hook| hook.as_mut().map(|write| write()));
    let mut log = parts.writer.lock();
    let decided = if header.is_tombstone() {
        decide_tombstone(parts, &mut log, key, may_drop, outcome)
    } else if !still_current(parts, &key, entry) {
        Ok(false) // replaced since it was told live: an older version now
    } else if let Some((value, moving)) = moving {
        let op = Op { key: &key, value: &value, tombstone: false, expires_ms: header.expires_ms };
        parts.writer.append_moved_locked(parts.append(), &mut log, op, &moving).map(|_| {
            outcome.records_moved += 1;
            outcome.bytes_moved += (RECORD_HEADER_BYTES + key.len() + value.len()) as u64;
            false
        })
    } else {
        expire(parts, &mut log, key, may_drop, outcome)
    };
    // Released after each record, so a writer waits for one copy at most
    // (sleep_lock.rs: a sleeping writer is woken by this unlock).
    drop(log);
    decided
}

/// Whether `entry` (of `key`) is still the key's current index entry; the
/// caller holds the log lock. The entry must be there, and no entry with
/// its hash newer — else the keys are compared, as readers do: a newer
/// entry is another key whose hash collides, or a newer version of this
/// one that `publish` added beside it when it could not read this record.
/// Copying the older record then (with a new LSN) would bring its value
/// back.
fn still_current(parts: &Parts<'_>, key: &[u8], entry: IndexEntry) -> bool {
    let mut candidates = Vec::new();
    if !indexed_here(parts, entry, &mut candidates) {
        return false;
    }
    if candidates.iter().all(|c| *c == entry || c.lsn() < entry.lsn()) {
        return true;
    }
    lookup::find(parts.storage, parts.index, key, entry.hash).current.is_some_and(|c| c.entry == entry)
}

/// A victim's tombstone, under the log lock: dropped when superseded by a
/// newer put or when `may_drop`, else carried forward.
fn decide_tombstone(
    parts: &Parts<'_>,
    log: &mut LogWriter,
    key: Vec<u8>,
    may_drop: bool,
    outcome: &mut PassOutcome,
) -> Result<bool> {
    if lookup::find(parts.storage, parts.index, &key, key_hash(&key)).current.is_some() {
        return Ok(false); // superseded by a newer put
    }
    if may_drop {
        parts.compactor.counters.tombstones_dropped.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    parts.compactor.counters.tombstones_kept.fetch_add(1, Ordering::Relaxed);
    append_tombstone(parts, log, &key, outcome)?;
    outcome.records_moved += 1;
    Ok(false)
}

/// An expired put the index still names, under the log lock: treated as
/// a delete. Unlinked without a trace when `may_drop` (nothing older
/// survives), else through a tombstone. Returns whether it was dropped.
fn expire(
    parts: &Parts<'_>,
    log: &mut LogWriter,
    key: Vec<u8>,
    may_drop: bool,
    outcome: &mut PassOutcome,
) -> Result<bool> {
    if may_drop {
        unlink(parts, &key);
        parts.compactor.counters.expired_dropped.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    append_tombstone(parts, log, &key, outcome)?;
    Ok(false)
}

/// Appends a tombstone for `key` and publishes it; the caller holds the
/// log lock.
fn append_tombstone(parts: &Parts<'_>, log: &mut LogWriter, key: &[u8], outcome: &mut PassOutcome) -> Result<()> {
    let op = Op { key, value: &[], tombstone: true, expires_ms: 0 };
    parts.writer.append_locked(parts.append(), log, &[op], Purpose::Compact)?;
    outcome.bytes_moved += (RECORD_HEADER_BYTES + key.len()) as u64;
    Ok(())
}

/// Whether an index entry points at this very record. A put is live only
/// if one does; most records of a victim are dead, and this tells so from
/// the index alone, where `lookup::find` reads (and checksums) the record
/// of every entry with the key's hash — a read and a cache miss per dead
/// record, under the log lock (docs/BENCHMARKS.md).
/// Fills `candidates` with the entries of `entry`'s hash on the way.
fn indexed_here(parts: &Parts<'_>, entry: IndexEntry, candidates: &mut Vec<IndexEntry>) -> bool {
    candidates.clear();
    parts.index.candidates(entry.hash, candidates);
    candidates.contains(&entry)
}

/// Moves the record a victim's leading MIDDLE or LAST fragment belongs to,
/// if it is live. Its fragments sit in blocks of consecutive generations,
/// so its FIRST is found by walking back one generation at a time through
/// blocks that begin with a MIDDLE of the same record; a missing block
/// (freed) means the record is not live.
fn move_continued(parts: &Parts<'_>, victim: u32, continued: &RecordHeader, outcome: &mut PassOutcome) -> Result<()> {
    let storage = parts.storage;
    let BlockUse::Log { generation } = parts.space.lock().use_of(victim) else { return Ok(()) };
    let depth = fragments_max(continued.value_len) as u64;
    for back in 1..=depth.min(generation) {
        let Some(&block) = parts.space.lock().log_blocks_in(generation - back..generation - back + 1).first() else {
            return Ok(());
        };
        let scan = scan_block(storage, block, false);
        if let Some(first) =
            scan.fragments.iter().find(|f| f.header.kind == FragmentKind::First && f.header.lsn == continued.lsn)
        {
            // Dead unless indexed, told before the lock (as in `empty_block`):
            // with 8 KiB values nearly every victim starts with a
            // continuation, most of them dead.
            let hash = key_hash(&first.key);
            if !indexed_here(parts, IndexEntry::new(hash, block, first.offset, first.header.lsn), &mut Vec::new()) {
                return Ok(());
            }
            // Never dropped (may_drop false): an expired one becomes a
            // tombstone, as in a victim that keeps its tombstones.
            move_record(parts, (block, first.offset), first.header, (first.key.clone(), hash), false, outcome)?;
            return Ok(());
        }
        let leads = scan.fragments.first().map(|f| (f.header.kind, f.header.lsn));
        if leads != Some((FragmentKind::Middle, continued.lsn)) {
            return Ok(()); // the chain is broken: not a live record
        }
    }
    Ok(())
}

/// Drops `key` from the index without writing anything: the unlinking of
/// an expired key with no older version left. The caller holds the log lock.
/// Through `apply` like every index update, so the block table is held over
/// the lookup too: unlinks are rare, and only the compactor's own thread and
/// `stats` take that lock without the log lock.
fn unlink(parts: &Parts<'_>, key: &[u8]) {
    let update = Update { key, hash: key_hash(key), lsn: 0, put: None };
    apply::apply(parts.storage, parts.index, &mut parts.space.lock(), Some(parts.ttl), update, Order::Newest);
}
