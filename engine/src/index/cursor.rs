//! Scan pages: the keys of one index page (`Index::page`), read back from
//! their records after the shard lock is released.
//!
//! The cursor is a position in key-hash space: cursor `c` in `1..2^32`
//! means "the next page starts at hash `c`"; 0 starts a walk and, returned,
//! ends it (a page never ends at hash 0, so the two meanings cannot meet).
//! It names no table, so it stays meaningful while tables split and merge,
//! and any value is valid: one of `2^32` or more is past the end.

use crate::format::snapshot::IndexEntry;
use crate::index::read::{Fragment, read_fragment};
use crate::index::{HASH_END, Index};
use crate::storage::Storage;

/// Reads of one hash's entries before a failing one counts as damage: a
/// record can fail because a writer replaced its entry (and its block was
/// reused) after the page was copied, so the entries are copied again first.
const HASH_READS_MAX: u32 = 3;

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// The live keys of the page, in key-hash order.
    pub keys: Vec<ScannedKey>,
    /// The cursor of the next page; 0 when the walk is complete.
    pub next: u64,
}

impl ScanPage {
    /// The keys alone.
    pub fn into_keys(self) -> Vec<Vec<u8>> {
        self.keys.into_iter().map(|scanned| scanned.key).collect()
    }
}

/// A key found by a scan, with what its record's header says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedKey {
    pub key: Vec<u8>,
    /// When the key expires, in ms since the Unix epoch; 0 if it does not.
    pub expires_ms: u64,
    /// Bytes of the key's value.
    pub value_len: u32,
}

/// The page at `cursor` (see the module doc) of about `visit` index
/// entries: their live keys, expired ones left out; records that fail
/// their checksum are left out and counted in `corrupt`.
pub(crate) fn read_page(storage: &dyn Storage, index: &Index, cursor: u64, visit: usize, now_ms: u64) -> PageRead {
    let mut read = PageRead { page: ScanPage::default(), corrupt: 0 };
    if cursor >= HASH_END {
        return read;
    }
    let (entries, next) = index.page(cursor, visit);
    read.page.next = if next == HASH_END { 0 } else { next };
    read.page.keys.reserve(entries.len());
    for run in entries.chunk_by(|a, b| a.hash == b.hash) {
        read_hash(storage, index, run, now_ms, &mut read);
    }
    read
}

/// A page and the records in it that failed their checksum.
#[derive(Debug)]
pub(crate) struct PageRead {
    pub page: ScanPage,
    pub corrupt: u64,
}

/// Reads the records of `run`, the entries of one hash. When one fails,
/// the hash's current entries are read instead (up to `HASH_READS_MAX`
/// times), so a key present all along is not lost to a concurrent write.
fn read_hash(storage: &dyn Storage, index: &Index, run: &[IndexEntry], now_ms: u64, read: &mut PageRead) {
    let mut current: Option<Vec<IndexEntry>> = None;
    let mut attempt = 1;
    loop {
        let entries = current.as_deref().unwrap_or(run);
        let first: Vec<Option<Fragment>> = entries.iter().map(|entry| verified_first(storage, entry)).collect();
        let failed = first.iter().filter(|fragment| fragment.is_none()).count();
        if failed == 0 || attempt == HASH_READS_MAX {
            read.corrupt += failed as u64;
            read.page.keys.extend(first.into_iter().flatten().filter_map(|fragment| live_key(&fragment, now_ms)));
            return;
        }
        attempt += 1;
        let mut candidates = Vec::with_capacity(entries.len());
        index.candidates(run[0].hash, &mut candidates);
        current = Some(candidates);
    }
}

/// The entry's record, if it verifies and is the one the entry names.
fn verified_first(storage: &dyn Storage, entry: &IndexEntry) -> Option<Fragment> {
    read_fragment(storage, entry.block, entry.offset()).ok().filter(|first| first.header.lsn == entry.lsn())
}

fn live_key(first: &Fragment, now_ms: u64) -> Option<ScannedKey> {
    let expires_ms = first.header.expires_ms;
    if (expires_ms != 0 && expires_ms <= now_ms) || first.header.is_tombstone() {
        return None;
    }
    Some(ScannedKey { key: first.key().to_vec(), expires_ms, value_len: first.header.value_len })
}
