//! Applying a record to the index and the live-byte accounting: the one
//! update the write path (`Writer`'s publish) and replay share, so the two
//! cannot drift apart. The caller holds the log lock and the block table
//! (lock order: engine.rs). The TTL table (ttl.rs) follows the index here
//! too: a record with a TTL joins it, a superseded one is counted stale.

use crate::format::snapshot::IndexEntry;
use crate::index::Index;
use crate::index::lookup::{self, Current};
use crate::index::read::{Extents, record_extents};
use crate::space::BlockTable;
use crate::storage::Storage;
use crate::ttl::{TtlEntry, TtlTable};

/// One record to apply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update<'a> {
    pub key: &'a [u8],
    /// `key_hash(key)`.
    pub hash: u32,
    pub lsn: u64,
    /// Where the new version lives; None for a tombstone (the key holds no
    /// value from `lsn` on).
    pub put: Option<Put<'a>>,
}

/// Where a put's record lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Put<'a> {
    pub block: u32,
    pub offset: u32,
    /// (block, bytes) of every fragment.
    pub extents: &'a [(u32, u32)],
    /// The record's expiry (0: none).
    pub expires_ms: u64,
}

/// What the record is known to be, against the versions already indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// The newest version of its key: the write path, which assigns LSNs
    /// under the log lock it publishes under.
    Newest,
    /// Possibly older than what the index holds (replay after a checkpoint
    /// whose snapshot may already hold a newer version): then it changes
    /// nothing.
    IfNewer,
}

/// A record the compactor is moving: the index entry naming it and the
/// (block, bytes) of each of its fragments (`read::read_record`).
#[derive(Debug)]
pub(crate) struct Moving {
    pub entry: IndexEntry,
    pub extents: Extents,
}

/// Points the index at `update`'s record (or drops the key, for a
/// tombstone) and moves the live bytes from the version it supersedes to it.
/// `ttl` is None only in replay: recovery rebuilds the TTL table from the
/// index it ends with (`Engine::open`).
#[inline]
pub(crate) fn apply(
    storage: &dyn Storage,
    index: &Index,
    table: &mut BlockTable,
    ttl: Option<&TtlTable>,
    update: Update<'_>,
    order: Order,
) {
    let current = lookup::find(storage, index, update.key, update.hash).current;
    if order == Order::IfNewer && current.as_ref().is_some_and(|c| c.entry.lsn() >= update.lsn) {
        return;
    }
    if let Some(current) = &current {
        retire(storage, table, current);
        if let Some(ttl) = ttl {
            ttl.superseded(current.first.header.expires_ms);
        }
    }
    let old = current.map(|c| c.entry);
    match update.put {
        None => {
            if let Some(old) = old {
                index.remove(old);
            }
        }
        Some(put) => {
            for &(block, bytes) in put.extents {
                table.add_live(block, bytes);
            }
            index.replace(old, IndexEntry::new(update.hash, put.block, put.offset, update.lsn));
            if let Some(ttl) = ttl.filter(|_| put.expires_ms != 0) {
                ttl.insert(TtlEntry::new(put.expires_ms, update.hash, update.lsn));
            }
        }
    }
}

/// Points the index at the compactor's copy of `moving` and moves its live
/// bytes with it. The caller checked, under the log lock, that
/// `moving.entry` is the key's index entry: so, unlike `apply`, this reads
/// nothing back.
pub(crate) fn apply_moved(
    index: &Index,
    table: &mut BlockTable,
    ttl: &TtlTable,
    moving: &Moving,
    copy: Put<'_>,
    lsn: u64,
) {
    let entry = IndexEntry::new(moving.entry.hash, copy.block, copy.offset, lsn);
    let replaced = index.replace(Some(moving.entry), entry);
    debug_assert!(replaced, "the caller checked the entry under the log lock");
    // Were the entry gone, the copy is just a dead record: the accounting
    // changes only with the index.
    if replaced {
        for &(block, bytes) in &moving.extents {
            table.sub_live(block, bytes);
        }
        for &(block, bytes) in copy.extents {
            table.add_live(block, bytes);
        }
        if copy.expires_ms != 0 {
            ttl.moved(TtlEntry::new(copy.expires_ms, moving.entry.hash, lsn));
        }
    }
}

/// Takes a superseded (or unlinked) record's bytes out of the live-byte
/// accounting of every block it spans.
fn retire(storage: &dyn Storage, table: &mut BlockTable, current: &Current) {
    if let Ok(extents) = record_extents(storage, current.entry.block, &current.first) {
        for (block, bytes) in extents {
            table.sub_live(block, bytes);
        }
    }
}
