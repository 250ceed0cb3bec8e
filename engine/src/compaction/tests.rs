use super::moves::empty_block;
use super::victims::BestBlocks;
use super::{PassOutcome, VICTIM_QUEUE_BLOCKS};
use crate::format::record::FragmentKind;
use crate::index::key_hash;
use crate::index::lookup;
use crate::index::read::read_fragment;
use crate::options::{Options, SyncPolicy};
use crate::storage::SimDisk;
use crate::store::Store;
use std::sync::Arc;

thread_local! {
    /// Runs in `move_record` between its read of a put and the log
    /// lock, on the thread that moves: a write racing the move.
    pub(super) static BEFORE_MOVE_LOCK: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        const { std::cell::RefCell::new(None) };
}

#[test]
fn a_put_replaced_between_the_moves_read_and_its_lock_is_not_copied() {
    // The compactor reads a live put before it takes the log lock; a
    // write replaces the key in between. The stale copy must not be
    // made: the key keeps the newer value, and the live-byte
    // accounting matches the records (kv-fsck).
    let options = Options { background: false, sync: SyncPolicy::None, ..Options::default() };
    let store = Arc::new(Store::create_on(Arc::new(SimDisk::new(1024 * 1024)), options).expect("create"));
    store.put(b"raced", &[1; 1_000]).expect("put");
    // Split across the block's end (its FIRST closes the block), then
    // deleted: only "raced" is live in the victim.
    store.put(b"filler", &[2; 3_500]).expect("put");
    store.delete(b"filler").expect("delete");
    let engine = &store.engine;
    let parts = engine.compaction_parts();
    let victim = lookup::find(&*engine.storage, &engine.index, b"raced", key_hash(b"raced"))
        .current
        .expect("indexed")
        .entry
        .block;
    assert_ne!(engine.writer.lock().active_block(), Some(victim), "the victim is sealed");
    let writer = store.clone();
    BEFORE_MOVE_LOCK.set(Some(Box::new(move || writer.put(b"raced", &[3; 1_000]).expect("racing put"))));
    let mut outcome = PassOutcome::default();
    let emptied = empty_block(&parts, victim, false, &mut outcome);
    BEFORE_MOVE_LOCK.set(None);
    emptied.expect("empty the victim");

    assert_eq!(outcome.records_moved, 0, "the replaced put was copied: {outcome:?}");
    assert_eq!(store.get(b"raced").expect("get"), Some(vec![3; 1_000]));
    assert_eq!(engine.space.lock().live_table()[victim as usize], 0, "nothing live is left there");
    let report = store.fsck(&|_, _| {});
    let accounting: Vec<_> = report.problems.iter().filter(|p| p.what.starts_with("live-byte accounting")).collect();
    assert!(accounting.is_empty(), "{accounting:?}");
    assert_eq!(report.errors(), 0, "{:?}", report.problems);
}

#[test]
fn an_older_entry_left_beside_a_newer_one_is_not_copied_over_it() {
    // A write that cannot read the key's current record (a read error
    // that passes) adds its entry beside the old one. The compactor
    // must then move nothing of the old record: copied with a new LSN,
    // its value would come back in place of the newer one.
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let options = Options { background: false, sync: SyncPolicy::None, ..Options::default() };
    let store = Store::create_on(disk.clone(), options).expect("create");
    store.put(b"key", &[1; 1_000]).expect("put");
    // Split across the block's end (its FIRST closes the block), then
    // deleted: only "key" is live there.
    store.put(b"filler", &[2; 3_500]).expect("put");
    store.delete(b"filler").expect("delete");
    let engine = &store.engine;
    let parts = engine.compaction_parts();
    let old = lookup::find(&*engine.storage, &engine.index, b"key", key_hash(b"key")).current.expect("indexed");
    let value_at = crate::format::block_offset(old.entry.block) + u64::from(old.entry.offset()) + 100;
    disk.corrupt(value_at, &[0xff]);
    store.put(b"key", &[3; 1_000]).expect("put over an unreadable record");
    disk.corrupt(value_at, &[1]); // the read error passes
    let mut candidates = Vec::new();
    engine.index.candidates(key_hash(b"key"), &mut candidates);
    assert_eq!(candidates.len(), 2, "both entries are in the index");

    let mut outcome = PassOutcome::default();
    empty_block(&parts, old.entry.block, false, &mut outcome).expect("empty the old record's block");

    assert_eq!(outcome.records_moved, 0, "the older record was copied: {outcome:?}");
    assert_eq!(store.get(b"key").expect("get"), Some(vec![3; 1_000]));
}

#[test]
fn a_record_continued_into_a_victim_moves_and_the_victim_empties() {
    // A 9,000-byte value spans three blocks (FIRST, MIDDLE, LAST).
    // Emptying only the block its LAST starts must find the record by
    // walking back and move all of it: that block then holds no live
    // bytes and can be freed. Without the walk it stays live for ever
    // in background passes, which pick blocks one by one.
    let options = Options { background: false, sync: SyncPolicy::None, ..Options::default() };
    let store = Store::create_on(Arc::new(SimDisk::new(1024 * 1024)), options).expect("create");
    let big: Vec<u8> = (0..9_000u32).map(|i| (i * 7) as u8).collect();
    store.put(b"before", &[1; 100]).expect("put");
    store.put(b"big", &big).expect("put");
    // Too large for what the LAST left of its block: split, its FIRST
    // closes that block; deleted, so only the LAST is live there.
    store.put(b"after", &[2; 3_000]).expect("put");
    store.delete(b"after").expect("delete");
    let engine = &store.engine;
    let parts = engine.compaction_parts();
    let entry = lookup::find(&*engine.storage, &engine.index, b"big", key_hash(b"big")).current.expect("indexed");
    let first = read_fragment(&*engine.storage, entry.entry.block, entry.entry.offset()).expect("first");
    assert_eq!(first.header.kind, FragmentKind::First);
    let middle_block = first.header.next_block;
    let middle =
        read_fragment(&*engine.storage, middle_block, crate::format::BLOCK_HEADER_BYTES as u32).expect("middle");
    assert_eq!(middle.header.kind, FragmentKind::Middle);
    let last_block = middle.header.next_block;
    assert_ne!(engine.writer.lock().active_block(), Some(last_block), "the LAST's block is sealed");
    assert!(engine.space.lock().live_table()[last_block as usize] > 0);

    let mut outcome = PassOutcome::default();
    empty_block(&parts, last_block, false, &mut outcome).expect("empty the LAST's block");

    assert_eq!(outcome.records_moved, 1, "{outcome:?}");
    assert_eq!(engine.space.lock().live_table()[last_block as usize], 0, "nothing live is left there");
    let moved = lookup::find(&*engine.storage, &engine.index, b"big", key_hash(b"big")).current.expect("indexed");
    assert_ne!(moved.entry.block, entry.entry.block, "the index names the copy");
    assert_eq!(store.get(b"big").expect("get"), Some(big));
}

#[test]
fn best_blocks_keeps_what_a_full_sort_would_in_its_order() {
    // Many scores, ties and repeats among them, offered in a scrambled
    // order: the kept ones are a full sort's best, best last.
    for count in [0usize, 1, VICTIM_QUEUE_BLOCKS, 2 * VICTIM_QUEUE_BLOCKS + 1, 10_000] {
        let blocks: Vec<(f64, u32, u64)> = (0..count as u32)
            .map(|block| {
                let scrambled = block.wrapping_mul(2_654_435_761) % 1000;
                (f64::from(scrambled) / 7.0, block, u64::from(block) * 3)
            })
            .collect();
        let mut best = BestBlocks::default();
        for &(benefit, block, generation) in &blocks {
            best.offer(benefit, block, generation);
        }
        let got = best.ranked();
        let mut sorted = blocks.clone();
        sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want_scores: Vec<f64> = sorted.iter().take(VICTIM_QUEUE_BLOCKS).map(|b| b.0).rev().collect();
        let score_of = |block: u32| blocks[block as usize].0;
        let got_scores: Vec<f64> = got.iter().map(|&(block, _)| score_of(block)).collect();
        assert_eq!(got_scores, want_scores, "{count} blocks");
        assert!(got.iter().all(|&(block, generation)| generation == u64::from(block) * 3));
    }
}
