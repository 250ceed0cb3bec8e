//! The compactor: space comes back, nothing is lost, nothing deleted comes
//! back — through the checkpoint path, the full scan, and crashes at every
//! I/O call inside a compaction (with the checkpoint before and after it).

mod common;

use blockkv_engine::format::BLOCK_BYTES;
use blockkv_engine::{RecoveryMode, SimDisk, Store, SyncPolicy};
use common::{new_sim_store, open_image, sim_options};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn value(i: u32, round: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 7 + round as usize * 13 + j) as u8).collect()
}

/// Writes a churned history: `keys` keys overwritten `rounds` times, every
/// third key deleted at the end, some 9 KiB values (fragmented records).
fn churn(store: &Store, keys: u32, rounds: u32) -> State {
    let mut truth = State::new();
    for round in 0..rounds {
        for i in 0..keys {
            let len = if i % 17 == 0 { 9_000 } else { 100 + (i as usize % 5) * 60 };
            let v = value(i, round, len);
            store.put(&key(i), &v).expect("put");
            truth.insert(key(i), v);
        }
    }
    for i in (0..keys).step_by(3) {
        store.delete(&key(i)).expect("delete");
        truth.remove(&key(i));
    }
    truth
}

/// `rounds` rounds of 300-byte puts over `keys`, each followed by a full
/// compaction: old blocks empty out and the tombstones `churn` left go.
fn overwrite_and_compact(store: &Store, truth: &mut State, keys: std::ops::Range<u32>, rounds: u32) {
    for round in 0..rounds {
        for i in keys.clone() {
            let v = value(i, round, 300);
            store.put(&key(i), &v).expect("put");
            truth.insert(key(i), v);
        }
        store.compact().expect("compact");
    }
}

fn assert_state(store: &Store, truth: &State, keys: u32, what: &str) {
    for i in 0..keys {
        let got = store.get(&key(i)).unwrap_or_else(|err| panic!("{what}: get {i}: {err}"));
        assert_eq!(got.as_ref(), truth.get(&key(i)), "{what}: key {i}");
    }
    assert_eq!(store.stats().keys, truth.len() as u64, "{what}: key count");
}

/// The image with both checkpoint slots destroyed: recovery must scan.
fn without_checkpoints(mut image: Vec<u8>) -> Vec<u8> {
    image[BLOCK_BYTES..3 * BLOCK_BYTES].fill(0);
    image
}

#[test]
fn compaction_reclaims_blocks_and_keeps_every_value() {
    // Churn, compact, and check the values, the space, and a reopen.
    let (disk, store, clock) = new_sim_store(2 * 1024 * 1024, SyncPolicy::Always);
    let truth = churn(&store, 300, 4);
    let before = store.stats();
    let outcome = store.compact().expect("compact");
    let after = store.stats();
    assert!(outcome.blocks_reclaimed > 0, "{outcome:?}");
    assert!(after.blocks_free > before.blocks_free, "free {} -> {}", before.blocks_free, after.blocks_free);
    assert!(after.blocks_log < before.blocks_log);
    assert_state(&store, &truth, 300, "after compaction");
    let report = store.fsck(&|_, _| {});
    assert_eq!(report.errors(), 0, "{:?}", report.problems);
    store.close().expect("close");
    let (_, store) = open_image(disk.durable_image(), clock).expect("reopen");
    assert_state(&store, &truth, 300, "after reopen");
}

#[test]
fn utilization_after_a_full_compaction_is_at_least_ninety_percent() {
    // 100-byte values: live bytes / allocated LOG block bytes >= 0.9.
    let (_, store, _) = new_sim_store(4 * 1024 * 1024, SyncPolicy::None);
    for round in 0..5u32 {
        for i in 0..3000u32 {
            store.put(&key(i), &value(i, round, 100)).expect("put");
        }
    }
    for _ in 0..3 {
        store.compact().expect("compact");
    }
    let stats = store.stats();
    let allocated = stats.blocks_log * BLOCK_BYTES as u64;
    let utilization = stats.live_bytes as f64 / allocated as f64;
    println!("utilization {utilization:.3} ({} live bytes in {} LOG blocks)", stats.live_bytes, stats.blocks_log);
    assert!(utilization >= 0.9, "utilization {utilization:.3}");
}

#[test]
fn a_full_compaction_moves_each_record_at_most_once() {
    // Values of 0-6 KB under 20 keys leave slack in blocks: one `compact`
    // must not move its own copies again. In these seeded histories that
    // means at most one record per key, and about the live bytes.
    const KEYS: u64 = 20;
    let mut seed: u64 = 12345;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for trial in 0..12 {
        let (_, store, _) = new_sim_store(1 << 20, SyncPolicy::None);
        for _ in 0..200 {
            let key = format!("k{}", next() % KEYS).into_bytes();
            let len = (next() % 6000) as usize;
            if next() % 5 == 0 {
                store.delete(&key).expect("delete");
            } else {
                store.put(&key, &vec![b'v'; len]).expect("put");
            }
        }
        let live_before = store.stats().live_bytes;
        let outcome = store.compact().expect("compact");
        let header_bytes = blockkv_engine::format::RECORD_HEADER_BYTES as u64;
        println!(
            "trial {trial}: {} records, {} bytes moved; {live_before} live bytes",
            outcome.records_moved, outcome.bytes_moved
        );
        assert!(outcome.records_moved <= KEYS, "trial {trial}: {} records moved", outcome.records_moved);
        // Slack of a header per record: kept tombstones (not live bytes)
        // and copies split where their sources were not.
        assert!(
            outcome.bytes_moved <= live_before + header_bytes * outcome.records_moved,
            "trial {trial}: {} bytes moved, {live_before} live",
            outcome.bytes_moved
        );
    }
}

#[test]
fn no_deleted_key_comes_back_through_any_recovery_path() {
    // Deletes, then enough churn and compaction that tombstones are dropped;
    // then recovery from the checkpoint, from a full scan, and salvage.
    let (disk, store, clock) = new_sim_store(16 * 1024 * 1024, SyncPolicy::Always);
    let mut truth = churn(&store, 200, 2);
    overwrite_and_compact(&store, &mut truth, 200..400, 12);
    let stats = store.stats();
    assert!(stats.tombstones_dropped > 0, "the test must make the compactor drop tombstones: {stats:?}");
    assert_state(&store, &truth, 400, "live");
    store.close().expect("close");
    let image = disk.durable_image();
    let (_, store) = open_image(image.clone(), clock.clone()).expect("checkpoint path");
    assert_state(&store, &truth, 400, "checkpoint path");
    store.abandon();
    let (_, store) = open_image(without_checkpoints(image.clone()), clock.clone()).expect("full scan");
    assert!(store.recovery_report().full_scan_reason.is_some());
    assert_state(&store, &truth, 400, "full scan");
    store.abandon();
    let opts = blockkv_engine::Options { recovery: RecoveryMode::Salvage, ..sim_options(SyncPolicy::Always, clock) };
    let store = Store::open_storage(Arc::new(SimDisk::from_image(image)), Path::new("<sim>"), opts).expect("salvage");
    assert_state(&store, &truth, 400, "salvage");
}

#[test]
fn expired_keys_stay_gone_after_compaction_and_every_recovery_path() {
    // TTL'd versions over persistent ones: once expired and compacted, the
    // older persistent version must not reappear.
    let (disk, store, clock) = new_sim_store(16 * 1024 * 1024, SyncPolicy::Always);
    for i in 0..200u32 {
        store.put(&key(i), b"persistent old version").expect("put");
    }
    for i in 0..200u32 {
        store.put_with_ttl(&key(i), b"short-lived", Some(Duration::from_secs(5))).expect("put ttl");
    }
    clock.advance_ms(10_000);
    for round in 0..10u32 {
        for i in 1000..1200u32 {
            store.put(&key(i), &value(i, round, 300)).expect("put");
        }
        store.compact().expect("compact");
    }
    for i in 0..200u32 {
        assert_eq!(store.get(&key(i)).expect("get"), None, "key {i} live");
    }
    store.close().expect("close");
    for (what, image) in
        [("checkpoint", disk.durable_image()), ("full scan", without_checkpoints(disk.durable_image()))]
    {
        let (_, store) = open_image(image, clock.clone()).expect(what);
        for i in 0..200u32 {
            assert_eq!(store.get(&key(i)).expect("get"), None, "{what}: key {i} came back");
        }
        store.abandon();
    }
}

#[test]
fn a_crash_at_every_io_call_of_a_compaction_loses_and_resurrects_nothing() {
    // Checkpoint, churn, compact (with its checkpoint after): crash before
    // each I/O call, under several seeds, then recover from the checkpoint
    // and from a full scan. Compaction changes no value, so every durable
    // state equals the truth.
    let build = || {
        let (disk, store, clock) = new_sim_store(1024 * 1024, SyncPolicy::Always);
        let truth = churn(&store, 150, 3);
        store.checkpoint().expect("checkpoint before");
        (disk, store, clock, truth)
    };
    let (disk, store, _, _) = build();
    let start = disk.io_calls();
    store.compact().expect("compact");
    let calls = disk.io_calls() - start;
    store.abandon();
    assert!(calls > 4, "a compaction does I/O: {calls} calls");
    let mut checked = 0;
    for call in 0..=calls {
        for seed in 0..4u64 {
            let (disk, store, clock, truth) = build();
            disk.capture_crash_before_call(disk.io_calls() + call, seed);
            store.compact().expect("compact");
            store.abandon();
            let image = disk.take_captured().unwrap_or_else(|| disk.crash_image(seed));
            for (path, image) in [("checkpoint", image.clone()), ("full scan", without_checkpoints(image))] {
                let what = format!("crash before call {call}/{calls}, seed {seed}, {path}");
                let (_, store) = open_image(image, clock.clone()).unwrap_or_else(|err| panic!("{what}: {err}"));
                assert_state(&store, &truth, 150, &what);
                store.abandon();
                checked += 1;
            }
        }
    }
    println!("{checked} crash images checked across {calls} I/O calls");
}

#[test]
fn a_long_churn_with_deletes_never_resurrects_a_key_through_a_full_scan() {
    // A small file, so freed blocks are reused in an order unrelated to their
    // age; random puts, deletes and compactions; after each round, the
    // durable image with both checkpoints destroyed must read as the truth.
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let (disk, store, clock) = new_sim_store(512 * 1024, SyncPolicy::Always);
    let mut rng = StdRng::seed_from_u64(5);
    let mut truth = State::new();
    let mut scans = 0;
    for round in 0..40u32 {
        for _ in 0..150 {
            let i = rng.random_range(0..120u32);
            if rng.random_bool(0.3) {
                store.delete(&key(i)).expect("delete");
                truth.remove(&key(i));
            } else {
                let v = value(i, round, rng.random_range(20..400));
                store.put(&key(i), &v).expect("put");
                truth.insert(key(i), v);
            }
        }
        store.compact().expect("compact");
        let (_, scanned) = open_image(without_checkpoints(disk.durable_image()), clock.clone()).expect("full scan");
        assert_state(&scanned, &truth, 120, &format!("round {round}, full scan"));
        scanned.abandon();
        scans += 1;
    }
    let stats = store.stats();
    println!("{scans} full scans; {} tombstones dropped, {} kept", stats.tombstones_dropped, stats.tombstones_kept);
    assert!(stats.tombstones_dropped > 0, "{stats:?}");
}

#[test]
fn fsck_finds_no_errors_after_compactions_and_crashes() {
    // Regressions from the kill -9 crash test: after compaction, kv-fsck
    // flagged (1) a dropped tombstone left in a freed block although every
    // older version of its key was freed too, and (2) a superseded large
    // record whose continuation block had been freed and reused. Neither is
    // damage. Churn with large values, deletes and compactions; after every
    // round, the crashed image must check clean.
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let (disk, store, clock) = new_sim_store(512 * 1024, SyncPolicy::Always);
    let mut rng = StdRng::seed_from_u64(11);
    for round in 0..30u32 {
        for _ in 0..120 {
            let i = rng.random_range(0..100u32);
            if rng.random_bool(0.3) {
                store.delete(&key(i)).expect("delete");
            } else {
                let len = if rng.random_bool(0.3) { 9_000 } else { rng.random_range(20..400) };
                store.put(&key(i), &value(i, round, len)).expect("put");
            }
        }
        store.compact().expect("compact");
        let (_, crashed) = open_image(disk.crash_image(u64::from(round)), clock.clone()).expect("recovers");
        let report = crashed.fsck(&|_, _| {});
        assert_eq!(report.errors(), 0, "round {round}: {:#?}", report.problems);
        crashed.abandon();
    }
}

#[test]
fn fsck_names_index_entries_left_pointing_into_a_reused_block() {
    // The pending-free rule broken on purpose: a LOG block the checkpoint's
    // index still names is overwritten with a valid copy of another LOG
    // block, as if it had been reused before the checkpoint that freed it.
    // Every key that no longer reads back its value must have an index
    // entry kv-fsck reports (the per-key checks alone see no record of
    // those keys at all).
    use blockkv_engine::format::block::{BlockHeader, BlockKind};
    use blockkv_engine::format::{FIRST_DATA_BLOCK, block_offset};
    let (disk, store, clock) = new_sim_store(512 * 1024, SyncPolicy::Always);
    for i in 0..60 {
        store.put(&key(i), &value(i, 0, 300)).expect("put");
    }
    store.close().expect("close");
    let mut image = disk.durable_image();
    let block_range = |block: u32| block_offset(block) as usize..block_offset(block) as usize + BLOCK_BYTES;
    let log_blocks: Vec<u32> = (FIRST_DATA_BLOCK..(image.len() / BLOCK_BYTES) as u32)
        .filter(|&block| BlockHeader::decode(&image[block_range(block)]).is_ok_and(|h| h.kind == BlockKind::Log))
        .collect();
    assert!(log_blocks.len() >= 4, "the keys fill several LOG blocks: {log_blocks:?}");
    let (source, reused) = (log_blocks[0], log_blocks[2]);
    let copy = image[block_range(source)].to_vec();
    image[block_range(reused)].copy_from_slice(&copy);

    let (_, reopened) = open_image(image, clock).expect("a reused block is not a recovery failure");
    let unreadable = (0..60).filter(|&i| reopened.get(&key(i)).ok().flatten() != Some(value(i, 0, 300))).count();
    assert!(unreadable > 0, "keys that lived in block {reused} no longer read back");
    let report = reopened.fsck(&|_, _| {});
    let entry_errors: Vec<_> =
        report.problems.iter().filter(|p| p.what.starts_with("index entry") && p.block == Some(reused)).collect();
    assert_eq!(entry_errors.len(), unreadable, "{:#?}", report.problems);
    assert_eq!(report.errors(), unreadable, "{:#?}", report.problems);
}

/// The whole records (not fragments of larger ones) of one block of
/// `image` that verify: (key, is a tombstone).
fn records_in(image: &[u8], block: u32) -> Vec<(Vec<u8>, bool)> {
    use blockkv_engine::format::record::{FragmentKind, RECORD_HEADER_BYTES, RecordHeader, decode_fragment};
    use blockkv_engine::format::{BLOCK_HEADER_BYTES, block_offset};
    let bytes = &image[block_offset(block) as usize..][..BLOCK_BYTES];
    let mut records = Vec::new();
    let mut at = BLOCK_HEADER_BYTES;
    while at + RECORD_HEADER_BYTES <= BLOCK_BYTES {
        let Ok(header) = RecordHeader::decode_unverified(&bytes[at..]) else { break };
        let end = at + header.fragment_bytes();
        if end > BLOCK_BYTES || decode_fragment(&bytes[at..end]).is_err() {
            break;
        }
        let key = bytes[at + RECORD_HEADER_BYTES..][..usize::from(header.key_len)].to_vec();
        if header.kind == FragmentKind::Full {
            records.push((key, header.is_tombstone()));
        }
        at = end;
    }
    records
}

#[test]
fn a_full_scan_ignores_free_blocks_below_the_floor_when_the_tombstones_are_gone() {
    // The full-scan floor's own test (RECOVERY.md, "Compaction"). After
    // churn and compaction, blocks below the floor are free. Every such
    // block holding a tombstone is wiped, as reuse would (a snapshot block
    // there, or a LOG block with a newer generation), while the free
    // blocks holding older puts of the deleted keys stay intact. A full
    // scan must still read every deleted key as deleted: only the floor
    // (carried by the newer blocks' headers) keeps it from those puts.
    use blockkv_engine::format::block::{BlockHeader, BlockKind};
    use blockkv_engine::format::{FIRST_DATA_BLOCK, block_offset};
    let (disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    let mut truth = churn(&store, 200, 3);
    overwrite_and_compact(&store, &mut truth, 1000..1100, 12);
    let store_stats = store.stats();
    store.close().expect("close");
    let mut image = disk.durable_image();
    let block_count = (image.len() / BLOCK_BYTES) as u32;
    let header = |image: &[u8], block: u32| {
        BlockHeader::decode(&image[block_offset(block) as usize..][..BLOCK_BYTES])
            .ok()
            .filter(|h| h.kind == BlockKind::Log)
    };
    let floor = (FIRST_DATA_BLOCK..block_count).filter_map(|b| header(&image, b)).map(|h| h.floor_gen).max();
    let floor = floor.expect("LOG blocks");
    let below: Vec<u32> =
        (FIRST_DATA_BLOCK..block_count).filter(|&b| header(&image, b).is_some_and(|h| h.generation < floor)).collect();
    let mut wiped = 0;
    for &block in &below {
        if records_in(&image, block).iter().any(|(_, tombstone)| *tombstone) {
            let at = block_offset(block) as usize;
            image[at..at + BLOCK_BYTES].fill(0);
            wiped += 1;
        }
    }
    // Deleted keys with a put left below the floor and no tombstone left
    // anywhere: what a full scan without the floor would bring back.
    let remaining: Vec<(Vec<u8>, bool)> = (FIRST_DATA_BLOCK..block_count)
        .filter(|&b| header(&image, b).is_some())
        .flat_map(|b| records_in(&image, b))
        .collect();
    let tombstoned: std::collections::HashSet<&[u8]> =
        remaining.iter().filter(|(_, tombstone)| *tombstone).map(|(key, _)| key.as_slice()).collect();
    let exposed: std::collections::HashSet<Vec<u8>> = below
        .iter()
        .flat_map(|&block| records_in(&image, block))
        .filter(|(key, tombstone)| !tombstone && !truth.contains_key(key) && !tombstoned.contains(key.as_slice()))
        .map(|(key, _)| key)
        .collect();
    assert!(
        wiped > 0 && !exposed.is_empty(),
        "the churn must leave tombstones and older puts below the floor: {wiped} wiped; {store_stats:?}"
    );
    let (_, scanned) = open_image(without_checkpoints(image), clock).expect("full scan");
    assert!(scanned.recovery_report().full_scan_reason.is_some());
    assert_state(&scanned, &truth, 1100, &format!("full scan with {wiped} tombstone blocks wiped"));
    println!(
        "{wiped} tombstone blocks wiped; {} deleted keys have a put below the floor and no tombstone",
        exposed.len()
    );
}
