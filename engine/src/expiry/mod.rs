//! Active expiry: removing keys whose TTL has passed, so that they leave the
//! index, the key count and the live bytes without waiting for a read, a
//! write or the compactor to meet them.
//!
//! A round pops the due entries of the TTL table (ttl.rs), earliest first,
//! and for each one:
//! 1. without the log lock, finds the index entry it names (same hash, same
//!    LSN bits) and reads its record back: a record that is gone, newer, or
//!    not expired makes the TTL entry stale, and nothing is written;
//! 2. under the log lock, checks that the record is still the key's current
//!    one (a write may have replaced it meanwhile) and appends a tombstone,
//!    a batch of them per lock hold, through the same append and
//!    `index::apply` as a delete.
//!
//! Why a tombstone and not only an unlink from the index: an older version
//! of the key may sit in an older block, and only a tombstone keeps every
//! recovery path (the full scan included) from finding it once the expired
//! record's block is compacted away (invariant 6, docs/DESIGN.md). The
//! compactor still drops the tombstone (or unlinks an expired record
//! without one) when nothing older survives. The tombstones are not waited
//! on for a sync: one lost in a crash leaves the expired record, which
//! still reads as absent and is removed again after the reopen; its block
//! cannot be freed before a checkpoint, and a checkpoint syncs first.
//!
//! Work per round is bounded by time
//! (`ROUND_MS_MAX` per `background::TICK_MS`, the 25% of a core Redis
//! allows its expiry cycle) and by keys (`ROUND_KEYS_MAX`). Stale entries
//! are purged here too, once they outnumber the live ones
//! (`TtlTable::stale_count`).

use crate::clock::Clock;
use crate::error::Result;
use crate::format::snapshot::IndexEntry;
use crate::index::read::read_fragment;
use crate::index::{Index, key_hash, lookup};
use crate::space::Purpose;
use crate::storage::Storage;
use crate::ttl::{TtlEntry, TtlTable};
use crate::writer::{self, Op, Writer};
use std::time::Instant;

/// Keys one round removes at most. Above what `ROUND_MS_MAX` allows on
/// this machine (about 1 µs a key: docs/BENCHMARKS.md), so time bounds a
/// round and this bounds a round whose clock is a test's.
pub const ROUND_KEYS_MAX: usize = 65_536;
/// Wall time one round may take (of a 100 ms tick: 25%, as Redis's
/// `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
pub const ROUND_MS_MAX: u64 = 25;
/// Due entries popped, and tombstones appended under one hold of the log
/// lock: writers wait for one batch at most.
pub const REMOVE_BATCH_KEYS: usize = 256;

/// What the expiry pass uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub storage: &'a dyn Storage,
    pub clock: &'a dyn Clock,
    pub index: &'a Index,
    pub ttl: &'a TtlTable,
    pub writer: &'a Writer,
    pub append: writer::Parts<'a>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRound {
    /// Keys removed (a tombstone each).
    pub removed: u64,
    /// Due TTL entries that named a record superseded since.
    pub stale: u64,
    /// Stale entries a purge dropped.
    pub purged: u64,
    /// Whether due entries were left for the next round (a budget ran out).
    pub more_due: bool,
}

/// One round: removes up to `keys_max` due keys, stopping at `deadline`.
pub(crate) fn round(parts: &Parts<'_>, keys_max: usize, deadline: Option<Instant>) -> Result<ExpiryRound> {
    let mut outcome = ExpiryRound { purged: purge_stale(parts), ..ExpiryRound::default() };
    let now_ms = parts.clock.now_ms();
    let mut popped = Vec::with_capacity(REMOVE_BATCH_KEYS);
    while (outcome.removed as usize) < keys_max {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            outcome.more_due = true;
            break;
        }
        popped.clear();
        let want = REMOVE_BATCH_KEYS.min(keys_max - outcome.removed as usize);
        parts.ttl.pop_due(now_ms, want, &mut popped);
        if popped.is_empty() {
            return Ok(outcome);
        }
        remove_batch(parts, &popped, now_ms, &mut outcome)?;
        outcome.more_due = true;
    }
    Ok(outcome)
}

/// Resolves popped entries to keys, then removes those still current under
/// the log lock. On an error the entries not removed go back.
fn remove_batch(parts: &Parts<'_>, popped: &[TtlEntry], now_ms: u64, outcome: &mut ExpiryRound) -> Result<()> {
    let mut due: Vec<(TtlEntry, IndexEntry, Vec<u8>)> = Vec::with_capacity(popped.len());
    let mut candidates = Vec::new();
    let mut stale_popped = 0;
    for &ttl_entry in popped {
        match resolve(parts, ttl_entry, now_ms, &mut candidates) {
            Resolved::Due(entry, key) => due.push((ttl_entry, entry, key)),
            Resolved::Stale => stale_popped += 1,
            // Damage is reported by the reads that meet it; the entry goes.
            Resolved::Unreadable => {}
        }
    }
    let mut log = parts.writer.lock();
    let mut ops = Vec::with_capacity(due.len());
    for (_, entry, key) in &due {
        if still_current(parts, key, *entry, &mut candidates) {
            ops.push(Op { key, value: &[], tombstone: true, expires_ms: 0 });
        }
        // Else replaced between the read and the lock: stale too.
    }
    let stale_locked = (due.len() - ops.len()) as u64;
    // Deletes may use the margin kept for them, so a full store still expires.
    let appended =
        if ops.is_empty() { Ok(0) } else { parts.writer.append_locked(parts.append, &mut log, &ops, Purpose::Delete) };
    drop(log);
    if let Err(err) = appended {
        parts.ttl.settle(stale_popped);
        for (ttl_entry, _, _) in &due {
            parts.ttl.insert(*ttl_entry);
        }
        return Err(err);
    }
    let removed = ops.len() as u64;
    outcome.removed += removed;
    outcome.stale += stale_popped + stale_locked;
    // Each removal counted its entry stale (apply), as each supersede did:
    // all these entries are out of the table now.
    parts.ttl.settle(removed + stale_popped + stale_locked);
    Ok(())
}

/// Whether `entry` (of `key`) is still the key's current index entry; the
/// caller holds the log lock. From the index alone when no entry with its
/// hash is newer (the usual case: the record was read and verified just
/// before the lock); else the keys are compared, as readers do.
fn still_current(parts: &Parts<'_>, key: &[u8], entry: IndexEntry, candidates: &mut Vec<IndexEntry>) -> bool {
    candidates.clear();
    parts.index.candidates(entry.hash, candidates);
    if !candidates.contains(&entry) {
        return false;
    }
    if candidates.iter().all(|c| *c == entry || c.lsn() < entry.lsn()) {
        return true;
    }
    lookup::find(parts.storage, parts.index, key, entry.hash).current.is_some_and(|c| c.entry == entry)
}

enum Resolved {
    /// Still indexed and expired: its index entry and key.
    Due(IndexEntry, Vec<u8>),
    /// Its record was superseded.
    Stale,
    Unreadable,
}

/// What a popped entry names now (no lock but an index shard's, shared).
fn resolve(parts: &Parts<'_>, ttl_entry: TtlEntry, now_ms: u64, candidates: &mut Vec<IndexEntry>) -> Resolved {
    candidates.clear();
    parts.index.candidates(ttl_entry.hash, candidates);
    let Some(entry) = candidates.iter().find(|c| ttl_entry.names_lsn(c.lsn())).copied() else {
        return Resolved::Stale;
    };
    let Ok(first) = read_fragment(parts.storage, entry.block, entry.offset()) else {
        return Resolved::Unreadable;
    };
    let header = first.header;
    let expired = header.expires_ms != 0 && header.expires_ms <= now_ms;
    if header.lsn != entry.lsn() || header.is_tombstone() || header.expires_ms != ttl_entry.expires_ms || !expired {
        return Resolved::Stale;
    }
    debug_assert_eq!(key_hash(first.key()), entry.hash);
    Resolved::Due(entry, first.key().to_vec())
}

/// Drops stale entries once they outnumber the live ones: each entry is
/// kept only if the index still names its record. Walks the table without
/// its lock (writers keep inserting meanwhile); returns the entries dropped.
fn purge_stale(parts: &Parts<'_>) -> u64 {
    if !parts.ttl.stale_count().1 {
        return 0;
    }
    let all = parts.ttl.take_all();
    let before = all.len();
    let mut candidates = Vec::new();
    let kept: Vec<TtlEntry> = all
        .into_iter()
        .filter(|ttl_entry| {
            candidates.clear();
            parts.index.candidates(ttl_entry.hash, &mut candidates);
            candidates.iter().any(|c| ttl_entry.names_lsn(c.lsn()))
        })
        .collect();
    let purged = (before - kept.len()) as u64;
    parts.ttl.restore(kept);
    tracing::info!(purged, kept = before as u64 - purged, "ttl table purged of stale entries");
    purged
}
