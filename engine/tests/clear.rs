//! `Store::clear`: every key deleted at once, all or nothing across a crash
//! at any I/O call, and gone through every recovery path once it returns.

mod common;

use blockkv_engine::format::BLOCK_BYTES;
use blockkv_engine::{Options, RecoveryMode, SimDisk, Store, SyncPolicy};
use common::{new_sim_store, open_image, sim_options};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// Both checkpoint slots zeroed: the next open scans every block.
fn without_checkpoints(mut image: Vec<u8>) -> Vec<u8> {
    image[BLOCK_BYTES..3 * BLOCK_BYTES].fill(0);
    image
}

/// Every key and value a store holds.
fn contents(store: &Store) -> State {
    let keys = store.scan(b"", None, usize::MAX).expect("scan");
    keys.into_iter().map(|key| (key.clone(), store.get(&key).expect("get").expect("scanned key has a value"))).collect()
}

/// Keys overwritten twice (older versions in older blocks), some with a
/// TTL, some large, some deleted, and a checkpoint among them.
fn fill(store: &Store) -> State {
    let mut truth = State::new();
    for round in 0..2u32 {
        for i in 0..150u32 {
            let len = if i % 23 == 0 { 6_000 } else { 40 + (i as usize % 7) * 30 };
            let value = vec![(i + round) as u8; len];
            if i % 5 == 0 {
                store.put_with_ttl(&key(i), &value, Some(Duration::from_secs(3600))).expect("put ttl");
            } else {
                store.put(&key(i), &value).expect("put");
            }
            truth.insert(key(i), value);
        }
        if round == 0 {
            store.checkpoint().expect("checkpoint");
        }
    }
    for i in (0..150u32).step_by(11) {
        store.delete(&key(i)).expect("delete");
        truth.remove(&key(i));
    }
    truth
}

#[test]
fn clear_removes_every_key_and_no_recovery_path_brings_one_back() {
    // Clear, then a write after it; the checkpoint path, a full scan and
    // salvage must each find only that write.
    let (disk, store, clock) = new_sim_store(2 * 1024 * 1024, SyncPolicy::Always);
    let truth = fill(&store);
    assert_eq!(store.clear().expect("clear"), truth.len() as u64);
    let stats = store.stats();
    assert_eq!((stats.keys, stats.live_bytes, stats.keys_with_ttl), (0, 0, 0));
    assert_eq!(contents(&store), State::new());
    store.put(&key(3), b"after the clear").expect("put after");
    let after = State::from([(key(3), b"after the clear".to_vec())]);
    for _ in 0..3 {
        store.compact().expect("compact");
    }
    assert_eq!(contents(&store), after);
    store.abandon();
    let image = disk.volatile_image();
    let (_, reopened) = open_image(image.clone(), clock.clone()).expect("checkpoint path");
    assert_eq!(contents(&reopened), after, "checkpoint path");
    reopened.abandon();
    let (_, scanned) = open_image(without_checkpoints(image.clone()), clock.clone()).expect("full scan");
    assert!(scanned.recovery_report().full_scan_reason.is_some());
    assert_eq!(contents(&scanned), after, "full scan");
    scanned.abandon();
    let opts = Options { recovery: RecoveryMode::Salvage, ..sim_options(SyncPolicy::Always, clock) };
    let salvaged =
        Store::open_storage(Arc::new(SimDisk::from_image(image)), Path::new("<sim>"), opts).expect("salvage");
    assert_eq!(contents(&salvaged), after, "salvage");
}

#[test]
fn a_crash_at_every_io_call_of_a_clear_leaves_every_key_or_none() {
    // Crash before each I/O call of a clear (its checkpoint, the tombstones
    // after it), under several seeds: the recovered store holds exactly the
    // keys before the clear, or nothing, never a part.
    let build = || {
        let (disk, store, clock) = new_sim_store(2 * 1024 * 1024, SyncPolicy::Always);
        let truth = fill(&store);
        (disk, store, clock, truth)
    };
    let (disk, store, _, _) = build();
    let start = disk.io_calls();
    store.clear().expect("clear");
    let calls = disk.io_calls() - start;
    store.abandon();
    assert!(calls >= 4, "a clear syncs and writes a checkpoint: {calls} calls");
    let (mut all, mut none) = (0, 0);
    for call in 0..=calls {
        for seed in 0..6u64 {
            let (disk, store, clock, truth) = build();
            disk.capture_crash_before_call(disk.io_calls() + call, seed);
            store.clear().expect("clear");
            store.abandon();
            let image = disk.take_captured().unwrap_or_else(|| disk.crash_image(seed));
            let what = format!("crash before call {call}/{calls}, seed {seed}");
            let (_, store) = open_image(image, clock.clone()).unwrap_or_else(|err| panic!("{what}: {err}"));
            let got = contents(&store);
            if got == truth {
                all += 1;
            } else if got.is_empty() {
                none += 1;
            } else {
                panic!("{what}: {} of {} keys recovered", got.len(), truth.len());
            }
            store.abandon();
        }
    }
    println!("clear: {all} crash images kept every key, {none} none, across {calls} I/O calls");
    assert!(all > 0 && none > 0, "crashes on both sides of the commit point: {all} all, {none} none");
}
