//! One shard of the index: a directory of small hash tables, each holding
//! the entries of one contiguous range of key hashes (extendible hashing).
//!
//! A lookup indexes the directory with the hash bits below the shard's and
//! probes one table: O(1), one directory load more than a single table per
//! shard. A table that would grow past `TABLE_ENTRIES_MAX` splits its range
//! in two halves instead, so a walk in hash order (a scan page) copies at
//! most one table more than it asked for: O(visit) per page, never O(keys).
//!
//! Positions are the hash bits below the shard's (`POSITION_BITS` of them).
//! A table of depth `d` holds the positions whose top `d` bits are its
//! `prefix`; the directory has `1 << depth` slots, slot `s` naming the table
//! of the positions whose top `depth` bits are `s`, so a table of depth `d`
//! fills `1 << (depth - d)` consecutive slots.

use super::{SHARD_BITS, table_hash};
use crate::format::snapshot::IndexEntry;
use hashbrown::HashTable;

/// Hash bits below the shard's: a position within a shard.
pub(super) const POSITION_BITS: u32 = 32 - SHARD_BITS;
const POSITION_MASK: u32 = (1 << POSITION_BITS) - 1;

/// Entries a table holds before it splits: the whole capacity of a 512-bucket
/// table (hashbrown fills 7/8), so a table that splits is never regrown first.
pub(super) const TABLE_ENTRIES_MAX: usize = 448;
/// Two buddy tables merge when together they hold at most this many: far
/// enough below a split that a key added and removed at the boundary does
/// not split and merge a table each time.
const MERGE_ENTRIES_MAX: usize = TABLE_ENTRIES_MAX / 4;
/// Most directory bits: 2^16 slots (128 KiB) per shard at most, whatever the
/// hashes (crafted keys can share any number of hash bits). A full table at
/// this depth grows instead of splitting; uniform hashes reach it past about
/// 2^16 × 300 × 64 ≈ 1.2 billion keys.
const DEPTH_MAX: u32 = 16;
/// A slot names a table by its index in `Shard::tables`.
type Slot = u16;
const _: () = assert!(DEPTH_MAX <= Slot::BITS && DEPTH_MAX <= POSITION_BITS);

fn position(hash: u32) -> u32 {
    hash & POSITION_MASK
}

/// The entries of one range of positions.
#[derive(Debug)]
struct Table {
    /// Local depth: the table holds the positions whose top `depth` bits are `prefix`.
    depth: u32,
    prefix: u32,
    entries: HashTable<IndexEntry>,
}

impl Table {
    /// One past the last position the table holds (up to `1 << POSITION_BITS`).
    fn end(&self) -> u64 {
        u64::from(self.prefix + 1) << (POSITION_BITS - self.depth)
    }

    fn insert(&mut self, entry: IndexEntry) {
        let full = self.entries.len() == self.entries.capacity();
        if full && (TABLE_ENTRIES_MAX / 2..TABLE_ENTRIES_MAX).contains(&self.entries.len()) {
            // Removed entries left tombstones that used up the room: hashbrown
            // would double a table past half full, so it is rebuilt at its
            // bound instead (tables stay at 512 buckets).
            let old = std::mem::replace(&mut self.entries, HashTable::with_capacity(TABLE_ENTRIES_MAX));
            for kept in old {
                self.entries.insert_unique(table_hash(kept.hash), kept, |e| table_hash(e.hash));
            }
        }
        self.entries.insert_unique(table_hash(entry.hash), entry, |e| table_hash(e.hash));
    }

    /// True when every entry has one hash: no split can separate them.
    fn one_hash(&self) -> bool {
        let mut hashes = self.entries.iter().map(|e| e.hash);
        let first = hashes.next();
        hashes.all(|hash| Some(hash) == first)
    }
}

/// A shard's tables and their directory.
#[derive(Debug)]
pub(super) struct Shard {
    /// Global depth: the directory has `1 << depth` slots.
    depth: u32,
    slots: Vec<Slot>,
    tables: Vec<Table>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::with_capacity(0)
    }
}

impl Shard {
    /// An empty shard sized for `entry_count` entries (from a checkpoint):
    /// enough tables that each is filled to at most 7/8 of its bound, so a
    /// load rarely splits one.
    pub fn with_capacity(entry_count: usize) -> Self {
        let per_table = TABLE_ENTRIES_MAX / 8 * 7;
        let mut depth = 0;
        while depth < DEPTH_MAX && entry_count > per_table << depth {
            depth += 1;
        }
        let capacity = if depth == 0 { entry_count } else { TABLE_ENTRIES_MAX };
        let tables = (0..1u32 << depth)
            .map(|prefix| Table { depth, prefix, entries: HashTable::with_capacity(capacity) })
            .collect();
        Shard { depth, slots: (0..1 << depth).map(|s| s as Slot).collect(), tables }
    }

    fn table_index(&self, hash: u32) -> usize {
        usize::from(self.slots[(position(hash) >> (POSITION_BITS - self.depth)) as usize])
    }

    fn table(&self, hash: u32) -> &Table {
        &self.tables[self.table_index(hash)]
    }

    /// Appends every entry whose hash is `hash`. Entries with one hash are
    /// few (a 32-bit hash), so walking the probe sequence finds them all.
    #[inline]
    pub fn candidates(&self, hash: u32, out: &mut Vec<IndexEntry>) {
        out.extend(self.table(hash).entries.iter_hash(table_hash(hash)).filter(|e| e.hash == hash).copied());
    }

    /// The exact entry `old`, to be replaced in place.
    pub fn find_mut(&mut self, old: IndexEntry) -> Option<&mut IndexEntry> {
        let index = self.table_index(old.hash);
        self.tables[index].entries.find_mut(table_hash(old.hash), |e| *e == old)
    }

    /// Adds `entry` (the caller knows it is not there), splitting its table
    /// first when it is full.
    pub fn insert(&mut self, entry: IndexEntry) {
        loop {
            let index = self.table_index(entry.hash);
            if self.tables[index].entries.len() < TABLE_ENTRIES_MAX || !self.split(index) {
                self.tables[index].insert(entry);
                return;
            }
        }
    }

    /// Removes the exact entry `old`; false if it was not there.
    pub fn remove(&mut self, old: IndexEntry) -> bool {
        let index = self.table_index(old.hash);
        match self.tables[index].entries.find_entry(table_hash(old.hash), |e| *e == old) {
            Ok(found) => {
                found.remove();
                let mut merged = Some(index);
                while let Some(index) = merged {
                    merged = self.merge_with_buddy(index);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &IndexEntry> {
        self.tables.iter().flat_map(|table| table.entries.iter())
    }

    /// Appends the entries of the table holding `from` (a position) whose
    /// position is `from` or after; returns the position after that table.
    pub fn copy_table_from(&self, from: u32, out: &mut Vec<IndexEntry>) -> u64 {
        debug_assert!(from <= POSITION_MASK);
        let table = &self.tables[usize::from(self.slots[(from >> (POSITION_BITS - self.depth)) as usize])];
        out.extend(table.entries.iter().filter(|e| position(e.hash) >= from).copied());
        table.end()
    }

    /// Bytes allocated for the tables and the directory.
    pub fn heap_bytes(&self) -> u64 {
        let tables: usize = self.tables.iter().map(|table| table.entries.allocation_size()).sum();
        let directory = self.slots.capacity() * size_of::<Slot>() + self.tables.capacity() * size_of::<Table>();
        (tables + directory) as u64
    }

    /// Splits the table at `index` in two halves of its range; false when it
    /// cannot (its entries share one hash, or it is at `DEPTH_MAX`). One
    /// half may receive every entry: the caller then splits again.
    fn split(&mut self, index: usize) -> bool {
        let table = &self.tables[index];
        if table.depth == DEPTH_MAX || table.one_hash() {
            return false;
        }
        if table.depth == self.depth {
            self.slots = self.slots.iter().flat_map(|&slot| [slot, slot]).collect();
            self.depth += 1;
        }
        let table = &mut self.tables[index];
        table.depth += 1;
        table.prefix <<= 1;
        let (depth, high_prefix) = (table.depth, table.prefix | 1);
        let high_bit = 1 << (POSITION_BITS - depth);
        let in_high = |e: &IndexEntry| position(e.hash) & high_bit != 0;
        let high_count = table.entries.iter().filter(|e| in_high(e)).count();
        // A half that receives nothing allocates nothing: clustered hashes
        // split several times in a row and would leave empty tables behind.
        let entries = if high_count == table.entries.len() {
            std::mem::take(&mut table.entries)
        } else if high_count == 0 {
            HashTable::new()
        } else {
            let mut high = HashTable::with_capacity(TABLE_ENTRIES_MAX);
            for entry in table.entries.extract_if(|e| in_high(e)) {
                high.insert_unique(table_hash(entry.hash), entry, |e| table_hash(e.hash));
            }
            high
        };
        self.tables.push(Table { depth, prefix: high_prefix, entries });
        self.point_slots_at(self.tables.len() - 1);
        true
    }

    /// Merges the table at `index` with its buddy (the other half of the
    /// range one level up) when the buddy is not split further and the two
    /// together are small; returns where the merged table is.
    fn merge_with_buddy(&mut self, index: usize) -> Option<usize> {
        let table = &self.tables[index];
        if table.depth == 0 {
            return None;
        }
        let buddy_slot = ((table.prefix ^ 1) << (self.depth - table.depth)) as usize;
        let buddy = usize::from(self.slots[buddy_slot]);
        let buddy_table = &self.tables[buddy];
        if buddy_table.depth != table.depth || table.entries.len() + buddy_table.entries.len() > MERGE_ENTRIES_MAX {
            return None;
        }
        let mut gone = self.tables.swap_remove(buddy);
        // The swap moved the last table (possibly `index` itself) to `buddy`.
        let index = if index == self.tables.len() { buddy } else { index };
        if buddy < self.tables.len() {
            self.point_slots_at(buddy);
        }
        let table = &mut self.tables[index];
        table.depth -= 1;
        table.prefix >>= 1;
        if table.entries.capacity() < gone.entries.capacity() {
            std::mem::swap(&mut table.entries, &mut gone.entries);
        }
        for entry in gone.entries {
            table.insert(entry);
        }
        self.point_slots_at(index);
        Some(index)
    }

    /// Points every directory slot of the table at `index` at it.
    fn point_slots_at(&mut self, index: usize) {
        let table = &self.tables[index];
        let shift = self.depth - table.depth;
        let first = (table.prefix << shift) as usize;
        self.slots[first..first + (1 << shift)].fill(index as Slot);
    }

    /// Checks the directory against the tables (for tests): every slot names
    /// the table whose range holds it, every entry lies in its table's range.
    #[cfg(test)]
    pub fn check(&self) {
        assert_eq!(self.slots.len(), 1 << self.depth);
        for (slot, &index) in self.slots.iter().enumerate() {
            let table = &self.tables[usize::from(index)];
            assert!(table.depth <= self.depth);
            assert_eq!(slot >> (self.depth - table.depth), table.prefix as usize, "slot {slot}");
        }
        for table in &self.tables {
            let start = u64::from(table.prefix) << (POSITION_BITS - table.depth);
            for entry in table.entries.iter() {
                assert!((start..table.end()).contains(&u64::from(position(entry.hash))));
            }
        }
    }

    #[cfg(test)]
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
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
    fn tables_split_as_entries_arrive_and_merge_as_they_leave() {
        // 20,000 random positions in one shard, then removed again: the
        // directory names the right table throughout and every entry is found.
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
        assert!(shard.tables.iter().all(|t| t.entries.len() <= TABLE_ENTRIES_MAX));
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
        assert!(shard.table_count() < 20, "{} tables left for no entry", shard.table_count());
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
        let largest = shard.tables.iter().map(|t| t.entries.allocation_size()).max().unwrap_or(0);
        assert!(largest <= bound, "a table of {largest} bytes, bound {bound}");
    }

    #[test]
    fn entries_of_one_hash_stay_in_one_table_that_grows() {
        // More entries of one hash than a table's bound cannot be split
        // apart: the table grows, the directory does not.
        let mut shard = Shard::default();
        for lsn in 1..=1000 {
            shard.insert(entry(12345, lsn));
        }
        shard.insert(entry(12346, 1001));
        shard.check();
        assert_eq!(found(&shard, 12345).len(), 1000);
        assert_eq!(found(&shard, 12346).len(), 1);
        assert!(shard.depth <= DEPTH_MAX);
    }

    #[test]
    fn clustered_hashes_stop_splitting_at_the_depth_limit() {
        // Hashes that differ only in their lowest bits: splitting cannot
        // separate them above DEPTH_MAX, so the directory stops there and
        // the empty halves left on the way allocate nothing.
        let mut shard = Shard::default();
        for low in 0..600u32 {
            shard.insert(entry(0x0155_0000 | low, u64::from(low) + 1));
        }
        shard.check();
        assert_eq!(shard.depth, DEPTH_MAX);
        assert_eq!(shard.iter().count(), 600);
        let empty_bytes: usize =
            shard.tables.iter().filter(|t| t.entries.is_empty()).map(|t| t.entries.allocation_size()).sum();
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
