//! Active expiry: keys whose TTL has passed leave the index, the key count
//! and the live bytes within a few rounds; they stay gone through every
//! recovery path; the TTL table is rebuilt on open and does not fill with
//! stale entries; the absolute-expiry APIs and the counters say what Redis's
//! would. Rounds are driven by hand on a `ManualClock` (`Store::expire_round`),
//! except in the one test of the background thread.

mod common;

use blockkv_engine::format::BLOCK_BYTES;
use blockkv_engine::{BatchOp, Clock, Entry, KeyTtl, ManualClock, Options, RecoveryMode, SimDisk, Store, SyncPolicy};
use common::{new_sim_store, open_image, sim_options};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rounds a second of the expiry thread (background::TICK_MS = 100).
const ROUNDS_PER_SECOND: u64 = 10;
const ROUND_MS: u64 = 1000 / ROUNDS_PER_SECOND;

fn key(i: u32) -> Vec<u8> {
    format!("session:{i:07}").into_bytes()
}

/// Both checkpoint slots zeroed: the next open scans every block.
fn without_checkpoints(mut image: Vec<u8>) -> Vec<u8> {
    image[BLOCK_BYTES..3 * BLOCK_BYTES].fill(0);
    image
}

/// `seconds` of the expiry thread's rounds, the clock moving a tick each.
fn run_rounds(store: &Store, clock: &ManualClock, seconds: u64) {
    for _ in 0..seconds * ROUNDS_PER_SECOND {
        clock.advance_ms(ROUND_MS);
        store.expire_round().expect("expiry round");
    }
}

#[test]
fn three_seconds_after_300k_keys_expire_fewer_than_1_percent_are_counted() {
    // 300,000 keys set with a 300 ms TTL, in batches; once expired, 3 s of
    // rounds must leave under 1% in key_count(), with their bytes dead.
    let (_disk, store, clock) = new_sim_store(64 * 1024 * 1024, SyncPolicy::None);
    let keys = 300_000u32;
    let ops: Vec<BatchOp> = (0..keys)
        .map(|i| BatchOp::Put { key: key(i), value: vec![b'v'; 16], ttl: Some(Duration::from_millis(300)) })
        .collect();
    for batch in ops.chunks(4096) {
        store.write_batch(batch).expect("batch of ttl puts");
    }
    store.put(b"persistent", b"stays").expect("put");
    let before = store.stats();
    assert_eq!((before.keys, before.keys_with_ttl), (u64::from(keys) + 1, u64::from(keys)));
    clock.advance_ms(300);
    assert_eq!(store.key_count(), u64::from(keys) + 1, "expired, not yet removed");
    run_rounds(&store, &clock, 3);
    let after = store.stats();
    println!(
        "after 3 s of rounds: {} keys, {} with a ttl, {} expired, live bytes {} -> {}",
        after.keys, after.keys_with_ttl, after.expired_keys, before.live_bytes, after.live_bytes
    );
    assert!(after.keys < u64::from(keys) / 100, "{} of {keys} keys still counted", after.keys);
    assert_eq!(after.keys, 1, "every expired key goes within 3 s at 65,536 a round");
    assert_eq!(after.expired_keys, u64::from(keys));
    assert_eq!(after.keys_with_ttl, 0);
    assert!(after.live_bytes < before.live_bytes / 100, "live bytes {}", after.live_bytes);
    assert_eq!(store.get(b"persistent").expect("get"), Some(b"stays".to_vec()));
}

#[test]
fn a_round_removes_only_what_has_expired_and_leaves_what_was_replaced() {
    // Keys expiring at different times, one persisted, one overwritten with
    // a later TTL, one deleted: each round removes exactly the due ones.
    let (_disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    for i in 0..10u32 {
        store.put_with_ttl(&key(i), b"v", Some(Duration::from_millis(100 * u64::from(i + 1)))).expect("put");
    }
    assert!(store.expire(&key(0), None).expect("persist"));
    store.put_with_ttl(&key(1), b"again", Some(Duration::from_secs(60))).expect("overwrite");
    assert!(store.delete(&key(2)).expect("delete"));
    clock.advance_ms(450);
    assert_eq!(store.expire_round().expect("round"), 1, "key 3 (400 ms); 0, 1 and 2 were replaced");
    assert_eq!(store.key_count(), 8);
    assert_eq!(store.expire_round().expect("round"), 0, "nothing else is due");
    clock.advance_ms(10_000);
    assert_eq!(store.expire_round().expect("round"), 6, "keys 4..10");
    assert_eq!(store.key_count(), 2, "the persisted key and the overwritten one");
    assert_eq!(store.get(&key(0)).expect("get"), Some(b"v".to_vec()));
    assert_eq!(store.get(&key(1)).expect("get"), Some(b"again".to_vec()));
    let stats = store.stats();
    assert_eq!((stats.keys_with_ttl, stats.expired_keys), (1, 7));
}

#[test]
fn keys_removed_by_expiry_stay_gone_after_compaction_and_every_recovery_path() {
    // Persistent versions under TTL'd ones: after the round removes the
    // TTL'd ones and compaction has moved and freed blocks, no recovery path
    // (checkpoint, full scan, salvage) brings the older version back.
    let (disk, store, clock) = new_sim_store(16 * 1024 * 1024, SyncPolicy::Always);
    for i in 0..200u32 {
        store.put(&key(i), b"persistent old version").expect("put");
    }
    for i in 0..200u32 {
        store.put_with_ttl(&key(i), b"short-lived", Some(Duration::from_secs(5))).expect("put ttl");
    }
    clock.advance_ms(10_000);
    assert_eq!(store.expire_round().expect("round"), 200);
    assert_eq!(store.key_count(), 0);
    for round in 0..10u32 {
        for i in 1000..1200u32 {
            store.put(&key(i), &vec![round as u8; 300]).expect("put");
        }
        store.compact().expect("compact");
    }
    let check = |store: &Store, what: &str| {
        for i in 0..200u32 {
            assert_eq!(store.get(&key(i)).expect("get"), None, "{what}: key {i} came back");
        }
        assert_eq!(store.key_count(), 200, "{what}: only the 200 later keys");
    };
    check(&store, "live");
    store.close().expect("close");
    let image = disk.durable_image();
    let (_, store) = open_image(image.clone(), clock.clone()).expect("checkpoint path");
    check(&store, "checkpoint path");
    store.abandon();
    let (_, store) = open_image(without_checkpoints(image.clone()), clock.clone()).expect("full scan");
    assert!(store.recovery_report().full_scan_reason.is_some());
    check(&store, "full scan");
    store.abandon();
    let opts = Options { recovery: RecoveryMode::Salvage, ..sim_options(SyncPolicy::Always, clock) };
    let store = Store::open_storage(Arc::new(SimDisk::from_image(image)), Path::new("<sim>"), opts).expect("salvage");
    check(&store, "salvage");
}

#[test]
fn an_expired_key_over_an_older_version_in_a_kept_block_stays_gone_after_a_full_scan() {
    // The older version sits in a full, live block that compaction keeps;
    // the expired version's block is emptied, freed and reused. Only the
    // tombstone the round wrote still hides the older version from a full
    // scan (an unlink from the index alone would bring it back).
    // A small file, so freed blocks are soon reused; many fillers before the
    // older version, so its block is not among the oldest for a while.
    let (disk, store, clock) = new_sim_store(512 * 1024, SyncPolicy::Always);
    for i in 0..2_000u32 {
        store.put(&key(i), &[b'f'; 30]).expect("filler put");
    }
    store.put_with_ttl(&key(1900), b"short-lived", Some(Duration::from_millis(1))).expect("put ttl");
    clock.advance_ms(1);
    assert_eq!(store.expire_round().expect("round"), 1);
    // After each pass a full scan of the durable image: the window in which
    // the expired version's block is reused while the older one's is kept
    // lasts a few passes (the oldest blocks join every pass).
    for round in 0..40u32 {
        for j in 5_000..5_100u32 {
            store.put(&key(j), &vec![round as u8; 300]).expect("churn put");
        }
        store.compact().expect("compact");
        let (_, scanned) = open_image(without_checkpoints(disk.durable_image()), clock.clone()).expect("full scan");
        assert!(scanned.recovery_report().full_scan_reason.is_some());
        assert_eq!(scanned.get(&key(1900)).expect("get"), None, "after pass {round}: the older version came back");
        scanned.abandon();
    }
    assert_eq!(store.key_count(), 2_099, "the fillers but 1900, and the churned keys");
}

#[test]
fn the_ttl_table_is_rebuilt_on_every_kind_of_open() {
    // TTL keys in the checkpoint and in the replayed tail, then a kill: the
    // reopened store (checkpoint + replay, or full scan) knows every one,
    // and a round after they expire removes them all.
    let (disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    for i in 0..100u32 {
        store.put_with_ttl(&key(i), b"checkpointed", Some(Duration::from_secs(10))).expect("put");
    }
    store.checkpoint().expect("checkpoint");
    for i in 100..150u32 {
        store.put_with_ttl(&key(i), b"replayed", Some(Duration::from_secs(20))).expect("put");
    }
    store.put(b"persistent", b"p").expect("put");
    assert!(store.expire(&key(0), None).expect("persist one"));
    store.abandon();
    let image = disk.volatile_image();
    let start_ms = clock.now_ms();
    for (what, image) in [("checkpoint + replay", image.clone()), ("full scan", without_checkpoints(image))] {
        let clock = Arc::new(ManualClock::new(start_ms));
        let (_, store) = open_image(image, clock.clone()).expect(what);
        let stats = store.stats();
        assert_eq!((stats.keys, stats.keys_with_ttl), (151, 149), "{what}");
        let left = stats.avg_ttl_ms;
        assert!((10_000..=20_000).contains(&left), "{what}: average ttl left {left} ms");
        clock.advance_ms(20_000);
        assert_eq!(store.expire_round().expect("round"), 149, "{what}");
        assert_eq!(store.key_count(), 2, "{what}: the persisted key and the persistent one");
        store.abandon();
    }
}

#[test]
fn stale_ttl_entries_are_purged_once_they_outnumber_live_ones() {
    // One key whose TTL is set again and again: every EXPIRE leaves a stale
    // entry behind; a round purges them, so the table shrinks back.
    let (_disk, store, _clock) = new_sim_store(16 * 1024 * 1024, SyncPolicy::None);
    store.put_with_ttl(b"session", b"v", Some(Duration::from_secs(3600))).expect("put");
    for i in 0..5_000u64 {
        assert!(store.expire(b"session", Some(Duration::from_secs(3600 + i))).expect("expire"));
    }
    let before = store.stats();
    assert_eq!(before.keys_with_ttl, 1);
    assert!(before.ttl_heap_bytes >= 5_000 * 16, "stale entries are kept until a purge: {}", before.ttl_heap_bytes);
    assert_eq!(store.expire_round().expect("round"), 0);
    let after = store.stats();
    assert_eq!(after.keys_with_ttl, 1);
    assert!(after.ttl_heap_bytes <= 1024, "purged: {} bytes left", after.ttl_heap_bytes);
    assert_eq!(store.ttl(b"session").expect("ttl"), KeyTtl::ExpiresInMs((3600 + 4_999) * 1000));
}

#[test]
fn absolute_expiry_apis_keep_and_set_times_as_given() {
    // entry() reports the absolute expiry; put_at, BatchOp::PutAt and
    // expire_at take one; a time already past deletes; 0 persists.
    let (_disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    let now = store.now_ms();
    assert_eq!(now, clock.now_ms());
    store.put_at(b"a", b"1", now + 5_000).expect("put_at");
    assert_eq!(store.entry(b"a").expect("entry"), Some(Entry { value: b"1".to_vec(), expires_ms: now + 5_000 }));
    store.put(b"b", b"2").expect("put");
    assert_eq!(store.entry(b"b").expect("entry").map(|e| e.expires_ms), Some(0));
    assert!(store.expire_at(b"b", now + 7_000).expect("expire_at"));
    assert_eq!(store.ttl(b"b").expect("ttl"), KeyTtl::ExpiresInMs(7_000));
    assert!(store.expire_at(b"b", 0).expect("persist"));
    assert_eq!(store.ttl(b"b").expect("ttl"), KeyTtl::Persistent);
    assert!(!store.expire_at(b"missing", now + 1).expect("expire_at of a missing key"));
    assert!(store.expire_at(b"a", now).expect("expire_at now"), "a time already past deletes");
    assert_eq!(store.entry(b"a").expect("entry"), None);
    store
        .write_batch(&[
            BatchOp::PutAt { key: b"c".to_vec(), value: b"3".to_vec(), expires_ms: now + 1_000 },
            BatchOp::PutAt { key: b"b".to_vec(), value: b"gone".to_vec(), expires_ms: now - 1 },
            BatchOp::PutAt { key: b"d".to_vec(), value: b"4".to_vec(), expires_ms: 0 },
        ])
        .expect("batch");
    assert_eq!(store.get(b"b").expect("get"), None, "a put at a past time is a delete");
    assert_eq!(store.entry(b"c").expect("entry").map(|e| e.expires_ms), Some(now + 1_000));
    assert_eq!(store.entry(b"d").expect("entry").map(|e| e.expires_ms), Some(0));
    assert_eq!(store.key_count(), 2, "the past put left no record in the index");
    store.put_at(b"e", b"5", now - 10).expect("put_at in the past");
    assert_eq!(store.key_count(), 2);
    let stats = store.stats();
    assert_eq!((stats.keys_with_ttl, stats.expired_keys), (1, 1), "c has a ttl; a was expired by expire_at");
}

#[test]
fn expired_keys_counts_removals_by_rounds_writes_and_deletes() {
    // Redis's expired_keys: a key whose TTL passed counts once when it goes,
    // whoever removes it; a read of it removes nothing.
    let (_disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    for i in 0..4u32 {
        store.put_with_ttl(&key(i), b"v", Some(Duration::from_millis(10))).expect("put");
    }
    clock.advance_ms(10);
    assert_eq!(store.get(&key(0)).expect("get"), None);
    assert_eq!(store.stats().expired_keys, 0, "a read removes nothing");
    store.put(&key(0), b"new").expect("overwrite an expired key");
    assert!(!store.delete(&key(1)).expect("delete an expired key"), "it was not live");
    assert_eq!(store.stats().expired_keys, 2);
    assert_eq!(store.expire_round().expect("round"), 2);
    let stats = store.stats();
    assert_eq!((stats.expired_keys, stats.keys), (4, 1));
}

#[test]
fn the_expiry_thread_removes_expired_keys_on_the_system_clock() {
    // Background threads on the system clock: 2,000 keys with a 50 ms TTL
    // leave the key count without any call, within a few ticks.
    let disk = Arc::new(SimDisk::new(8 * 1024 * 1024));
    let opts = Options { background: true, ..Options::default() };
    let store = Store::create_on(disk, opts).expect("create");
    let ops: Vec<BatchOp> = (0..2_000u32)
        .map(|i| BatchOp::Put { key: key(i), value: b"v".to_vec(), ttl: Some(Duration::from_millis(50)) })
        .collect();
    store.write_batch(&ops).expect("batch");
    store.put(b"persistent", b"p").expect("put");
    let started = Instant::now();
    while store.key_count() > 1 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.key_count(), 1, "after {:?}", started.elapsed());
    assert_eq!(store.stats().expired_keys, 2_000);
    store.close().expect("close");
}
