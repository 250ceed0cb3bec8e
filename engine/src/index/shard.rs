//! One shard of the index: `1 << depth` small hash tables, table `i`
//! holding the entries whose position (the hash bits below the shard's)
//! has `i` as its top `depth` bits, so each table covers one contiguous
//! range of hashes and the tables in order cover the shard in hash order.
//!
//! A lookup indexes the tables with the position's top bits and probes
//! one: O(1), one load more than a single table per shard. When a table
//! would grow past `TABLE_ENTRIES_MAX`, every table of the shard splits in
//! two (the depth grows by one), as one table per shard rehashed all its
//! entries when it grew; the tables halve again when the shard is nearly
//! empty. Bounded tables are what a walk in hash order needs: a scan page
//! copies at most one table more than it asked for, O(visit), never
//! O(keys).
//!
//! Why one depth for the whole shard rather than a directory of tables of
//! their own depths (extendible hashing, which splits one table at a
//! time): the directory is one more dependent load per lookup, and it
//! measured slower (docs/BENCHMARKS.md).

use super::{SHARD_BITS, table_hash};
use crate::format::snapshot::IndexEntry;
use hashbrown::HashTable;

/// Hash bits below the shard's: a position within a shard.
pub(super) const POSITION_BITS: u32 = 32 - SHARD_BITS;
const POSITION_MASK: u32 = (1 << POSITION_BITS) - 1;

/// Entries a table holds before the shard splits: the whole capacity of a
/// 512-bucket table (hashbrown fills 7/8).
pub(super) const TABLE_ENTRIES_MAX: usize = 448;
/// The shard halves when its tables hold fewer than this many entries on
/// average: far below a split, so keys added and removed around one size
/// do not split and halve the shard each time.
const HALVE_MEAN_ENTRIES: usize = TABLE_ENTRIES_MAX / 8;
/// Most depth: 4096 tables (128 KiB of table headers) per shard whatever the
/// hashes are (crafted keys can share any number of hash bits). Past it a
/// full table grows instead; with uniform hashes the first table of a
/// shard at this depth fills at about 90 million keys (4096 × 360 × 64),
/// and pages then copy larger tables.
const DEPTH_MAX: u32 = 12;
const _: () = assert!(DEPTH_MAX <= POSITION_BITS);

fn position(hash: u32) -> u32 {
    hash & POSITION_MASK
}

fn insert_into(table: &mut HashTable<IndexEntry>, entry: IndexEntry) {
    table.insert_unique(table_hash(entry.hash), entry, |e| table_hash(e.hash));
}

/// A shard's tables.
#[derive(Debug)]
pub(super) struct Shard {
    /// The shard has `1 << depth` tables.
    depth: u32,
    tables: Vec<HashTable<IndexEntry>>,
    /// Entries in all tables.
    len: usize,
    /// Below this many entries the shard tries to halve: `HALVE_MEAN_ENTRIES`
    /// per table, or half of it after a try failed (a skewed shard is not
    /// checked again on every removal).
    halve_below: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::with_capacity(0)
    }
}

impl Shard {
    /// An empty shard sized for `entry_count` entries (from a checkpoint):
    /// enough tables that each holds at most 7/8 of its bound on average, so
    /// loading rarely splits.
    pub fn with_capacity(entry_count: usize) -> Self {
        let mut depth = 0;
        while depth < DEPTH_MAX && entry_count > (TABLE_ENTRIES_MAX / 8 * 7) << depth {
            depth += 1;
        }
        let per_table = entry_count.div_ceil(1 << depth);
        let tables = (0..1 << depth).map(|_| HashTable::with_capacity(per_table)).collect();
        Shard { depth, tables, len: 0, halve_below: halve_below(depth) }
    }

    fn table_index(&self, hash: u32) -> usize {
        (position(hash) >> (POSITION_BITS - self.depth)) as usize
    }

    /// Appends every entry whose hash is `hash`. Entries with one hash are
    /// few (a 32-bit hash), so walking the probe sequence finds them all.
    #[inline]
    pub fn candidates(&self, hash: u32, out: &mut Vec<IndexEntry>) {
        let table = &self.tables[self.table_index(hash)];
        out.extend(table.iter_hash(table_hash(hash)).filter(|e| e.hash == hash).copied());
    }

    /// The exact entry `old`, to be replaced in place.
    pub fn find_mut(&mut self, old: IndexEntry) -> Option<&mut IndexEntry> {
        let index = self.table_index(old.hash);
        self.tables[index].find_mut(table_hash(old.hash), |e| *e == old)
    }

    /// Adds `entry` (the caller knows it is not there), splitting the shard
    /// first when the entry's table is full.
    pub fn insert(&mut self, entry: IndexEntry) {
        let mut index = self.table_index(entry.hash);
        while self.tables[index].len() >= TABLE_ENTRIES_MAX && self.can_split(index) {
            self.split();
            index = self.table_index(entry.hash);
        }
        let table = &mut self.tables[index];
        if table.len() == table.capacity() && (TABLE_ENTRIES_MAX / 2..TABLE_ENTRIES_MAX).contains(&table.len()) {
            // Removed entries left tombstones that used up the room: hashbrown
            // would double a table past half full, so it is rebuilt at its
            // bound instead (tables stay at 512 buckets at most).
            let old = std::mem::replace(table, HashTable::with_capacity(TABLE_ENTRIES_MAX));
            for kept in old {
                insert_into(table, kept);
            }
        }
        insert_into(table, entry);
        self.len += 1;
    }

    /// Removes the exact entry `old`; false if it was not there.
    pub fn remove(&mut self, old: IndexEntry) -> bool {
        let index = self.table_index(old.hash);
        let Ok(found) = self.tables[index].find_entry(table_hash(old.hash), |e| *e == old) else {
            return false;
        };
        found.remove();
        self.len -= 1;
        if self.len < self.halve_below {
            self.try_halve();
        }
        true
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &IndexEntry> {
        self.tables.iter().flat_map(|table| table.iter())
    }

    /// Appends the entries of the table holding `from` (a position) whose
    /// position is `from` or after; returns the position after that table.
    pub fn copy_table_from(&self, from: u32, out: &mut Vec<IndexEntry>) -> u64 {
        debug_assert!(from <= POSITION_MASK);
        let shift = POSITION_BITS - self.depth;
        let index = from >> shift;
        out.extend(self.tables[index as usize].iter().filter(|e| position(e.hash) >= from).copied());
        u64::from(index + 1) << shift
    }

    /// Bytes allocated for the tables (buckets and control bytes) and their headers.
    pub fn heap_bytes(&self) -> u64 {
        let tables: usize = self.tables.iter().map(HashTable::allocation_size).sum();
        (tables + self.tables.capacity() * size_of::<HashTable<IndexEntry>>()) as u64
    }

    /// Whether splitting can help the full table at `index`: not when its
    /// entries share one hash, nor at `DEPTH_MAX`.
    fn can_split(&self, index: usize) -> bool {
        let mut hashes = self.tables[index].iter().map(|e| e.hash);
        let first = hashes.next();
        self.depth < DEPTH_MAX && !hashes.all(|hash| Some(hash) == first)
    }

    /// Splits every table in two halves of its range: table `i` becomes
    /// tables `2i` and `2i + 1`. A half that receives nothing allocates
    /// nothing (clustered hashes may split a shard several times in a row).
    fn split(&mut self) {
        self.depth += 1;
        let high_bit = 1 << (POSITION_BITS - self.depth);
        let old = std::mem::take(&mut self.tables);
        self.tables.reserve_exact(old.len() * 2);
        for table in old {
            let high_count = table.iter().filter(|e| position(e.hash) & high_bit != 0).count();
            let mut low = HashTable::with_capacity(table.len() - high_count);
            let mut high = HashTable::with_capacity(high_count);
            for entry in table {
                insert_into(if position(entry.hash) & high_bit != 0 { &mut high } else { &mut low }, entry);
            }
            self.tables.push(low);
            self.tables.push(high);
        }
        self.halve_below = halve_below(self.depth);
    }

    /// Merges tables `2i` and `2i + 1` into one, unless a merged table
    /// would hold more than half its bound (then the next try waits for
    /// the shard to halve its size).
    fn try_halve(&mut self) {
        let fits =
            self.tables.chunks(2).all(|pair| pair.iter().map(HashTable::len).sum::<usize>() <= TABLE_ENTRIES_MAX / 2);
        if self.depth == 0 || !fits {
            self.halve_below = self.len / 2;
            return;
        }
        self.depth -= 1;
        let old = std::mem::take(&mut self.tables);
        self.tables.reserve_exact(old.len() / 2);
        let mut pairs = old.into_iter();
        while let (Some(low), Some(high)) = (pairs.next(), pairs.next()) {
            let mut merged = HashTable::with_capacity(low.len() + high.len());
            for entry in low.into_iter().chain(high) {
                insert_into(&mut merged, entry);
            }
            self.tables.push(merged);
        }
        self.halve_below = halve_below(self.depth);
    }

    /// Checks every entry lies in its table's range (for tests).
    #[cfg(test)]
    pub fn check(&self) {
        assert_eq!(self.tables.len(), 1 << self.depth);
        assert_eq!(self.iter().count(), self.len);
        for (index, table) in self.tables.iter().enumerate() {
            for entry in table.iter() {
                assert_eq!(self.table_index(entry.hash), index);
            }
        }
    }

    #[cfg(test)]
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
}

/// The entry count below which a shard of `depth` tries to halve.
fn halve_below(depth: u32) -> usize {
    if depth == 0 { 0 } else { HALVE_MEAN_ENTRIES << depth }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn entry(hash: u32, lsn: u64) -> IndexEntry {
        IndexEntry::new(hash, 10, 32, lsn)
    }

    fn found(shard: &Shard, hash: u32) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        shard.candidates(hash, &mut out);
        out
    }

    #[test]
    fn tables_split_as_entries_arrive_and_halve_as_they_leave() {
        // 20,000 random positions in one shard, then removed again: every
        // entry stays in its table's range and is found.
        let mut rng = StdRng::seed_from_u64(7);
        let mut shard = Shard::default();
        let entries: Vec<IndexEntry> =
            (1..=20_000).map(|lsn| entry(rng.random::<u32>() & POSITION_MASK, lsn)).collect();
        for (i, &e) in entries.iter().enumerate() {
            shard.insert(e);
            if i % 997 == 0 {
                shard.check();
            }
        }
        shard.check();
        assert!(shard.table_count() >= 20_000 / TABLE_ENTRIES_MAX, "{} tables", shard.table_count());
        assert!(shard.tables.iter().all(|t| t.len() <= TABLE_ENTRIES_MAX));
        for e in &entries {
            assert!(found(&shard, e.hash).contains(e));
        }
        for (i, &e) in entries.iter().enumerate() {
            assert!(shard.remove(e));
            if i % 997 == 0 {
                shard.check();
            }
        }
        shard.check();
        assert_eq!(shard.table_count(), 1, "tables left for no entry");
        assert_eq!(shard.iter().count(), 0);
    }

    #[test]
    fn churn_never_grows_a_table_past_its_bound() {
        // Removes and inserts at random keep a shard near 10,000 entries:
        // the tombstones removals leave never make a table double in size.
        let mut rng = StdRng::seed_from_u64(9);
        let mut shard = Shard::default();
        let mut live = Vec::new();
        for lsn in 1..=200_000 {
            if live.len() >= 10_000 {
                let gone = live.swap_remove(rng.random_range(0..live.len()));
                assert!(shard.remove(gone));
            }
            let e = entry(rng.random::<u32>() & POSITION_MASK, lsn);
            shard.insert(e);
            live.push(e);
        }
        shard.check();
        let bound = HashTable::<IndexEntry>::with_capacity(TABLE_ENTRIES_MAX).allocation_size();
        let largest = shard.tables.iter().map(HashTable::allocation_size).max().unwrap_or(0);
        assert!(largest <= bound, "a table of {largest} bytes, bound {bound}");
    }

    #[test]
    fn entries_of_one_hash_stay_in_one_table_that_grows() {
        // More entries of one hash than a table's bound cannot be split
        // apart: the table grows, the shard does not split.
        let mut shard = Shard::default();
        for lsn in 1..=1000 {
            shard.insert(entry(12345, lsn));
        }
        shard.insert(entry(12346, 1001));
        shard.check();
        assert_eq!(found(&shard, 12345).len(), 1000);
        assert_eq!(found(&shard, 12346).len(), 1);
        assert_eq!(shard.table_count(), 1);
    }

    #[test]
    fn clustered_hashes_stop_splitting_at_the_depth_limit() {
        // Hashes that differ only in their lowest bits: splitting cannot
        // separate them above DEPTH_MAX, so the shard stops there and the
        // empty halves left on the way allocate nothing.
        let mut shard = Shard::default();
        for low in 0..600u32 {
            shard.insert(entry(0x0155_0000 | low, u64::from(low) + 1));
        }
        shard.check();
        assert_eq!(shard.depth, DEPTH_MAX);
        assert_eq!(shard.iter().count(), 600);
        let empty_bytes: usize = shard.tables.iter().filter(|t| t.is_empty()).map(HashTable::allocation_size).sum();
        assert_eq!(empty_bytes, 0);
    }

    #[test]
    fn copy_table_from_takes_the_rest_of_one_table_in_range_order() {
        // Walking a shard table by table from position 0 visits every entry
        // once, and each table's range starts where the last one ended.
        let mut rng = StdRng::seed_from_u64(8);
        let mut shard = Shard::default();
        for lsn in 1..=5_000 {
            shard.insert(entry(rng.random::<u32>() & POSITION_MASK, lsn));
        }
        let (mut at, mut seen) = (0u64, Vec::new());
        while at < 1 << POSITION_BITS {
            let before = seen.len();
            let end = shard.copy_table_from(at as u32, &mut seen);
            assert!(end > at);
            assert!(seen[before..].iter().all(|e| (at..end).contains(&u64::from(position(e.hash)))));
            at = end;
        }
        assert_eq!(seen.len(), 5_000);
    }
}
