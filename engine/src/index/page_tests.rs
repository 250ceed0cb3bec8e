//! `Index::page`: hash order, whole hashes per page, and every entry
//! present all along found once while shards split or halve between pages.

use super::{HASH_END, Index};
use crate::format::snapshot::IndexEntry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Walks the whole index, calling `between` after each page; returns the
/// pages as (from, entries, next).
fn walk(index: &Index, visit: usize, mut between: impl FnMut()) -> Vec<(u64, Vec<IndexEntry>, u64)> {
    let mut pages = Vec::new();
    let mut from = 0;
    while from < HASH_END {
        let (entries, next) = index.page(from, visit);
        assert!(next > from, "a page moves forward: {from} -> {next}");
        pages.push((from, entries, next));
        from = next;
        between();
    }
    pages
}

#[test]
fn a_page_never_splits_the_entries_of_one_hash() {
    // Hashes with 1 to 6 entries each, walked with every small visit count:
    // a hash's entries all come in one page, pages cover `from..next` in
    // hash order, and together they hold every entry once.
    let mut rng = StdRng::seed_from_u64(3);
    let index = Index::default();
    let mut lsn = 0;
    let mut all = BTreeSet::new();
    for _ in 0..3_000 {
        let hash = rng.random::<u32>();
        for _ in 0..rng.random_range(1..=6) {
            lsn += 1;
            let entry = IndexEntry::new(hash, 7, 32, lsn);
            assert!(index.replace(None, entry));
            all.insert((entry.hash, entry.lsn()));
        }
    }
    for visit in [1, 2, 3, 5, 8, 100, 1000] {
        let pages = walk(&index, visit, || {});
        let mut page_of_hash = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for (number, (from, entries, next)) in pages.iter().enumerate() {
            assert!(entries.is_sorted_by_key(|e| e.hash), "visit {visit}: a page is in hash order");
            for e in entries {
                assert!((*from..*next).contains(&u64::from(e.hash)), "visit {visit}: hash outside its page");
                assert_eq!(*page_of_hash.entry(e.hash).or_insert(number), number, "visit {visit}: hash split");
                assert!(seen.insert((e.hash, e.lsn())), "visit {visit}: entry twice");
            }
            let hashes: BTreeSet<u32> = entries.iter().map(|e| e.hash).collect();
            assert!(entries.len() < visit + 6 || hashes.len() == 1, "visit {visit}: {} entries", entries.len());
        }
        assert_eq!(seen, all, "visit {visit}");
    }
}

#[test]
fn a_walk_finds_every_entry_present_all_along_while_the_shards_split() {
    // Between pages of a walk (visit 10), 40 entries are added and 20 of
    // the added ones removed: over 60,000 entries arrive during the walk,
    // the shards split under it. Every entry present from start to end is
    // in exactly one page; no entry is seen twice.
    let mut rng = StdRng::seed_from_u64(4);
    let index = Index::default();
    let mut lsn = 0u64;
    let mut fresh = |rng: &mut StdRng| {
        lsn += 1;
        IndexEntry::new(rng.random(), 9, 64, lsn)
    };
    let stable: Vec<IndexEntry> = (0..5_000).map(|_| fresh(&mut rng)).collect();
    for &entry in &stable {
        index.replace(None, entry);
    }
    let mut churn = Vec::new();
    let pages = walk(&index, 10, || {
        for _ in 0..40 {
            let entry = fresh(&mut rng);
            index.replace(None, entry);
            churn.push(entry);
        }
        for _ in 0..20 {
            let gone = churn.swap_remove(rng.random_range(0..churn.len()));
            assert!(index.remove(gone));
        }
    });
    assert!(index.len() > 30_000, "the index grew under the walk: {}", index.len());
    let mut seen = HashSet::new();
    for (_, entries, _) in &pages {
        for e in entries {
            assert!(seen.insert(*e), "entry seen twice: {e:?}");
        }
    }
    let missing = stable.iter().filter(|e| !seen.contains(e)).count();
    assert_eq!(missing, 0, "of {} entries present all along", stable.len());
}

#[test]
fn a_walk_finds_every_entry_present_all_along_while_the_shards_halve() {
    // 60,000 entries, 2,000 of them kept; between pages of a walk (visit
    // 10), 200 of the others are removed until none is left, so every shard
    // halves its tables under the walk. Each kept entry is in one page.
    let mut rng = StdRng::seed_from_u64(5);
    let index = Index::default();
    let all: Vec<IndexEntry> = (1..=60_000).map(|lsn| IndexEntry::new(rng.random(), 9, 64, lsn)).collect();
    for &entry in &all {
        index.replace(None, entry);
    }
    let tables = |index: &Index| index.shards.iter().map(|shard| shard.read().table_count()).sum::<usize>();
    let tables_before = tables(&index);
    let (kept, mut doomed) = all.split_at(2_000);
    let pages = walk(&index, 10, || {
        let (now, later) = doomed.split_at(doomed.len().min(200));
        for &gone in now {
            assert!(index.remove(gone));
        }
        doomed = later;
    });
    assert!(doomed.is_empty(), "the walk ended before the removals did");
    assert!(tables(&index) * 4 <= tables_before, "tables {tables_before} -> {}", tables(&index));
    let seen: HashSet<IndexEntry> = pages.iter().flat_map(|(_, entries, _)| entries.iter().copied()).collect();
    assert_eq!(kept.iter().filter(|e| !seen.contains(e)).count(), 0);
}
