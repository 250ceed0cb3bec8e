//! The in-memory index: key hash -> location of the key's newest record.
//!
//! Memory is the budget here (target: under 40 bytes + key per key), so an
//! entry is 16 bytes and holds no copy of the key: the key is read back from
//! its record (through the page cache) and compared there. Lookups read the
//! record anyway to return the value, so a GET pays nothing extra; a write
//! pays one record read when an entry with the same 32-bit hash exists.
//!
//! Concurrency: `SHARD_COUNT` shards, selected by the top bits of the hash,
//! each a `RwLock<Shard>`. Readers share a shard; every mutation also holds
//! the log lock (lock order: engine.rs), so "find the current entry, then
//! replace it" is atomic among writers.
//!
//! Order: a shard is a row of small tables over consecutive hash ranges
//! (`shard`), so the index can be walked in hash order from any
//! hash, a page of about `visit` entries at a time (`page`), whatever
//! the tables did between two pages: what a stateless scan cursor needs.
//!
//! Beside the index: `lookup` (resolving a key among its candidates),
//! `read` (verified records), `scan` (one block's fragments), `apply`
//! (a record applied to the index and the live-byte accounting) and
//! `cursor` (scan pages: the records of an index page, read back).
//!
//! `key_hash` is part of the on-disk format (checkpoints store it): CRC32C of
//! the key with a fixed seed, then the murmur3 finalizer to spread the bits.

pub(crate) mod apply;
pub(crate) mod cursor;
pub(crate) mod lookup;
pub(crate) mod read;
pub(crate) mod scan;
mod shard;

use crate::format::block_offset;
use crate::format::snapshot::IndexEntry;
use crate::storage::Storage;
use parking_lot::RwLock;
use shard::{POSITION_BITS, Shard};
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys from which their records are first touched together: the old
/// records of an append's ops before they are read one by one (the
/// writer's publish), and the keys a caller is about to read
/// (`Store::prefetch`). Not measured: for one to three keys the index
/// lookups, done twice, are unlikely to pay for the little overlap.
pub const PREFETCH_KEYS_MIN: usize = 4;

const SHARD_BITS: u32 = 6;
/// Number of independently locked shards.
pub const SHARD_COUNT: usize = 1 << SHARD_BITS;
const KEY_HASH_SEED: u32 = 0x6b76_6462; // "bdvk"

/// The index hash of a key (stable across versions: stored in checkpoints).
pub fn key_hash(key: &[u8]) -> u32 {
    let mut h = crc32c::crc32c_append(KEY_HASH_SEED, key);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn shard_of(hash: u32) -> usize {
    (hash >> (32 - SHARD_BITS)) as usize
}

/// One past the last hash: where a walk of the index ends.
pub const HASH_END: u64 = 1 << 32;

/// The sharded index.
#[derive(Debug)]
pub struct Index {
    shards: Vec<RwLock<Shard>>,
    /// Entries in all shards; kept beside them so the write path can read it
    /// without taking 64 locks (it sizes the checkpoint reserve on every put).
    len: AtomicU64,
}

impl Default for Index {
    fn default() -> Self {
        Index { shards: (0..SHARD_COUNT).map(|_| RwLock::new(Shard::default())).collect(), len: AtomicU64::new(0) }
    }
}

impl Index {
    /// An index holding `entries` (from a checkpoint), built shard by shard.
    pub fn from_entries(entries: &[IndexEntry]) -> Self {
        let mut per_shard = vec![0usize; SHARD_COUNT];
        for entry in entries {
            per_shard[shard_of(entry.hash)] += 1;
        }
        let index = Index {
            shards: per_shard.iter().map(|&n| RwLock::new(Shard::with_capacity(n))).collect(),
            len: AtomicU64::new(entries.len() as u64),
        };
        for entry in entries {
            index.shards[shard_of(entry.hash)].write().insert(*entry);
        }
        index
    }

    /// Appends every entry whose hash is `hash` to `out`.
    pub fn candidates(&self, hash: u32, out: &mut Vec<IndexEntry>) {
        self.shards[shard_of(hash)].read().candidates(hash, out);
    }

    /// Appends every entry whose hash is one of `hashes` to `out`, taking
    /// each shard's lock once: without a locked instruction between them,
    /// the table reads of many keys wait for memory together (for
    /// prefetching a batch: `Writer`'s publish, `Store::prefetch`). Sorts `hashes`.
    pub fn candidates_of_many(&self, hashes: &mut [u32], out: &mut Vec<IndexEntry>) {
        hashes.sort_unstable_by_key(|&hash| shard_of(hash));
        for run in hashes.chunk_by(|a, b| shard_of(*a) == shard_of(*b)) {
            let shard = self.shards[shard_of(run[0])].read();
            for &hash in run {
                shard.candidates(hash, out);
            }
        }
    }

    /// Touches the records the index holds for `hashes`, all together.
    pub fn prefetch_records(&self, storage: &dyn Storage, mut hashes: Vec<u32>) {
        let mut candidates = Vec::with_capacity(hashes.len());
        self.candidates_of_many(&mut hashes, &mut candidates);
        for entry in &candidates {
            storage.prefetch(block_offset(entry.block) + u64::from(entry.offset()));
        }
    }

    /// Replaces the exact entry `old` with `new`, or inserts `new` when `old`
    /// is None. Returns false (and changes nothing) if `old` is gone.
    pub fn replace(&self, old: Option<IndexEntry>, new: IndexEntry) -> bool {
        debug_assert!(old.is_none_or(|o| o.hash == new.hash));
        let mut shard = self.shards[shard_of(new.hash)].write();
        match old {
            Some(old) => match shard.find_mut(old) {
                Some(slot) => {
                    *slot = new;
                    true
                }
                None => false,
            },
            None => {
                shard.insert(new);
                self.len.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// Removes the exact entry `old`; false if it was not there.
    pub fn remove(&self, old: IndexEntry) -> bool {
        let removed = self.shards[shard_of(old.hash)].write().remove(old);
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Number of entries (keys, expired ones included until removed).
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// A copy of every entry, shard by shard (for checkpoints and kv-fsck).
    pub fn entries(&self) -> Vec<IndexEntry> {
        let mut out = Vec::with_capacity(self.len() as usize);
        for shard in &self.shards {
            out.extend(shard.read().iter().copied());
        }
        out
    }

    /// Heap bytes allocated for the tables (buckets and control bytes) and
    /// their directories.
    pub fn heap_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.read().heap_bytes()).sum()
    }

    /// The entries whose hash is `from` or after, in hash order: about
    /// `visit` of them (at least one hash's worth unless none is left), never
    /// some of one hash's entries without the others. Returns them with the
    /// hash the next page starts from (`HASH_END` after the last): every
    /// entry with a hash in `from..next` that was in the index all along is
    /// in the page. Copies whole tables under one shard's read lock at a
    /// time, at most one table more than `visit` entries: O(visit).
    pub fn page(&self, from: u64, visit: usize) -> (Vec<IndexEntry>, u64) {
        let visit = visit.max(1);
        let mut entries = Vec::with_capacity(visit + shard::TABLE_ENTRIES_MAX);
        let mut at = from;
        while at < HASH_END && entries.len() < visit {
            let shard_index = (at >> POSITION_BITS) as usize;
            let shard_start = (shard_index as u64) << POSITION_BITS;
            let shard = self.shards[shard_index].read();
            while at < shard_start + (1 << POSITION_BITS) && entries.len() < visit {
                at = shard_start + shard.copy_table_from((at - shard_start) as u32, &mut entries);
            }
        }
        let next = cut_page(&mut entries, visit, at);
        entries.sort_unstable_by_key(|e| e.hash);
        (entries, next)
    }
}

/// Keeps the smallest hashes of `entries` (copied up to `copied_to`): the
/// first `visit` unless that would split the entries of one hash, in which
/// case that hash is left for the next page — or, when the first `visit`
/// all share it, taken alone. Returns the hash the next page starts from.
fn cut_page(entries: &mut Vec<IndexEntry>, visit: usize, copied_to: u64) -> u64 {
    if entries.len() <= visit {
        return copied_to;
    }
    entries.select_nth_unstable_by_key(visit, |e| e.hash);
    let first_left = entries[visit].hash;
    if entries[..visit].iter().any(|e| e.hash < first_left) {
        entries.retain(|e| e.hash < first_left);
        return u64::from(first_left);
    }
    let after = entries.iter().map(|e| e.hash).filter(|&hash| hash > first_left).min();
    entries.retain(|e| e.hash == first_left);
    after.map_or(copied_to, u64::from)
}

#[cfg(test)]
mod page_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable() {
        // Stored in checkpoints: changing it is a format change.
        assert_eq!(key_hash(b""), key_hash(b""));
        assert_eq!(key_hash(b"user:1"), 0x6f9d_07d3, "got {:#x}", key_hash(b"user:1"));
    }

    #[test]
    fn candidates_of_many_finds_what_candidates_finds_in_every_shard() {
        // Hashes from several shards, asked out of shard order, one twice,
        // one absent: the same entries as one `candidates` call per hash.
        let index = Index::default();
        let hashes = [0xfc00_0001, 5, 0x8000_0000, 5 | 1 << 27, 0x4000_0007];
        for (i, &hash) in hashes.iter().enumerate() {
            assert!(index.replace(None, IndexEntry::new(hash, 10 + i as u32, 32, 1 + i as u64)));
        }
        let mut asked = [0x4000_0007, 5, 0xfc00_0001, 0x1234_5678, 5, 0x8000_0000];
        let mut want = Vec::new();
        for &hash in &asked {
            index.candidates(hash, &mut want);
        }
        let mut got = Vec::new();
        index.candidates_of_many(&mut asked, &mut got);
        want.sort_by_key(|e| (e.block, e.lsn()));
        got.sort_by_key(|e| (e.block, e.lsn()));
        assert_eq!(got, want);
        assert_eq!(got.len(), 5, "0x1234_5678 is absent and 5 is asked twice");
    }

    #[test]
    fn colliding_hashes_keep_every_entry() {
        let index = Index::default();
        let a = IndexEntry::new(5, 10, 32, 1);
        let b = IndexEntry::new(5, 11, 32, 2);
        assert!(index.replace(None, a));
        assert!(index.replace(None, b));
        let mut found = Vec::new();
        index.candidates(5, &mut found);
        found.sort_by_key(|e| e.block);
        assert_eq!(found, vec![a, b]);
        let c = IndexEntry::new(5, 12, 64, 3);
        assert!(index.replace(Some(a), c));
        assert!(!index.replace(Some(a), c), "old entry already replaced");
        assert_eq!(index.len(), 2);
        assert!(index.remove(b));
        assert_eq!(index.len(), 1);
        found.clear();
        index.candidates(5, &mut found);
        assert_eq!(found, vec![c]);
    }
}
