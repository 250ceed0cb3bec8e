//! Unit-level behaviour of the public API, each test named for its case.

mod common;

use blockkv_engine::limits::{BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use blockkv_engine::{BatchOp, Error, KeyTtl, Options, Store, SyncPolicy};
use common::{SIM_BYTES, new_sim_store, open_image};
use std::time::Duration;

#[test]
fn put_get_delete_round_trip() {
    // The basic contract: what was put comes back, a delete removes it.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::Always);
    assert_eq!(store.get(b"a").expect("get"), None);
    store.put(b"a", b"1").expect("put");
    store.put(b"b", b"2").expect("put");
    store.put(b"a", b"3").expect("overwrite");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"3"[..]));
    assert!(store.exists(b"b").expect("exists"));
    assert!(store.delete(b"b").expect("delete"));
    assert!(!store.delete(b"b").expect("delete again"));
    assert!(!store.exists(b"b").expect("exists"));
    assert_eq!(store.stats().keys, 1);
}

#[test]
fn empty_key_and_empty_value_are_allowed() {
    // Redis allows both; so do we.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::None);
    store.put(b"", b"").expect("put");
    assert_eq!(store.get(b"").expect("get"), Some(Vec::new()));
}

#[test]
fn large_value_spans_blocks_and_survives_reopen() {
    // Values larger than a block are split into fragments and joined back.
    let (disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    let value: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    store.put(b"small", b"x").expect("put");
    store.put(b"big", &value).expect("put big");
    store.put(b"after", b"y").expect("put");
    assert_eq!(store.get(b"big").expect("get").as_deref(), Some(&value[..]));
    store.abandon(); // as if killed: no closing checkpoint
    let (_disk, store) = open_image(disk.durable_image(), clock).expect("reopen");
    assert_eq!(store.get(b"big").expect("get").as_deref(), Some(&value[..]));
    assert_eq!(store.get(b"after").expect("get").as_deref(), Some(&b"y"[..]));
}

#[test]
fn two_kilobyte_values_share_blocks_and_read_back_after_replay() {
    // A 2,000-byte value fits a block but not beside another: split into
    // FIRST and LAST, 100 of them take about 50 blocks, not 100.
    let (disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    let value = |i: u32| -> Vec<u8> { (0..2000u32).map(|j| (i * 31 + j * 7) as u8).collect() };
    let log_blocks_before = store.stats().blocks_log;
    for i in 0..100 {
        store.put(format!("session:{i:03}").as_bytes(), &value(i)).expect("put");
    }
    let log_blocks = store.stats().blocks_log - log_blocks_before;
    assert!(log_blocks <= 55, "100 values of 2,000 bytes took {log_blocks} LOG blocks");
    store.abandon(); // as if killed: every record is replayed
    let (_disk, store) = open_image(disk.durable_image(), clock).expect("reopen");
    for i in 0..100 {
        let got = store.get(format!("session:{i:03}").as_bytes()).expect("get");
        assert_eq!(got.as_deref(), Some(&value(i)[..]), "value {i}");
    }
}

#[test]
fn checkpoint_that_ends_inside_a_large_record_reopens_cleanly() {
    // Regression: the head block after a checkpoint can start with the LAST
    // fragment of a covered large record; replay once cut (and zeroed) there.
    let (disk, store, clock) = new_sim_store(4 * 1024 * 1024, SyncPolicy::Always);
    let value = vec![5u8; 100_000];
    store.put(b"big", &value).expect("put big");
    store.put(b"after", b"y").expect("put");
    store.close().expect("close");
    let (_disk, store) = open_image(disk.durable_image(), clock).expect("reopen");
    assert!(store.recovery_report().tail_cut.is_none(), "{}", store.recovery_report());
    assert_eq!(store.get(b"big").expect("get").as_deref(), Some(&value[..]));
    assert_eq!(store.get(b"after").expect("get").as_deref(), Some(&b"y"[..]));
}

#[test]
fn oversized_key_and_value_are_refused_cleanly() {
    // Limits are typed errors, and nothing is written.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::None);
    let key = vec![b'k'; KEY_BYTES_MAX + 1];
    assert!(matches!(store.put(&key, b"v"), Err(Error::TooLarge { what: "key", .. })));
    let value = vec![0u8; VALUE_BYTES_MAX + 1];
    assert!(matches!(store.put(b"k", &value), Err(Error::TooLarge { what: "value", .. })));
    store.put(&vec![b'k'; KEY_BYTES_MAX], b"v").expect("key at the limit");
    assert_eq!(store.stats().keys, 1);
}

#[test]
fn full_file_is_a_clean_no_space_error() {
    // Filling the file yields NoSpace with numbers; reads and deletes still work.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::None);
    let value = vec![7u8; 1000];
    let mut written = 0;
    let err = loop {
        match store.put(format!("key{written}").as_bytes(), &value) {
            Ok(()) => written += 1,
            Err(err) => break err,
        }
    };
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("live bytes"), "{err}");
    assert!(written > 100, "wrote {written}");
    assert_eq!(store.get(b"key0").expect("read").as_deref(), Some(&value[..]));
    assert!(store.delete(b"key0").expect("delete works when full"));
    store.checkpoint().expect("checkpoint works when full");
}

#[test]
fn batch_applies_all_operations() {
    // A batch is applied whole, deletes and puts of the same key in order.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::Always);
    store.put(b"gone", b"x").expect("put");
    store
        .write_batch(&[
            BatchOp::Put { key: b"a".to_vec(), value: b"1".to_vec(), ttl: None },
            BatchOp::Delete { key: b"gone".to_vec() },
            BatchOp::Put { key: b"a".to_vec(), value: b"2".to_vec(), ttl: None },
        ])
        .expect("batch");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"2"[..]));
    assert_eq!(store.get(b"gone").expect("get"), None);
}

#[test]
fn put_all_applies_every_put_or_none_and_refuses_bad_input_whole() {
    // Borrowed plain puts: the last of a repeated key wins, and one key over
    // the limit, or more ops than a batch takes, refuses them all.
    let (disk, store, clock) = new_sim_store(SIM_BYTES, SyncPolicy::Always);
    store.put_all(&[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]).expect("put_all");
    let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
    let refused = store.put_all(&[(b"c", b"4"), (&long_key, b"5")]);
    assert!(matches!(refused, Err(Error::TooLarge { what: "key", .. })), "{refused:?}");
    let many: Vec<(&[u8], &[u8])> = vec![(b"d", b"6"); BATCH_OPS_MAX + 1];
    let refused = store.put_all(&many);
    assert!(matches!(refused, Err(Error::TooLarge { what: "batch", .. })), "{refused:?}");
    store.close().expect("close");
    let (_disk, store) = open_image(disk.durable_image(), clock).expect("reopen");
    assert_eq!(store.get(b"a").expect("get").as_deref(), Some(&b"3"[..]));
    assert_eq!(store.get(b"b").expect("get").as_deref(), Some(&b"2"[..]));
    assert_eq!(store.get(b"c").expect("get"), None, "refused with the long key");
    assert_eq!(store.get(b"d").expect("get"), None, "refused as too many");
}

#[test]
fn ttl_expires_and_persists_across_reopen() {
    // TTLs are absolute times: they expire on the clock and survive restart.
    let (disk, store, clock) = new_sim_store(SIM_BYTES, SyncPolicy::Always);
    store.put_with_ttl(b"s", b"v", Some(Duration::from_secs(10))).expect("put");
    store.put(b"p", b"v").expect("put");
    assert_eq!(store.ttl(b"s").expect("ttl"), KeyTtl::ExpiresInMs(10_000));
    assert_eq!(store.ttl(b"p").expect("ttl"), KeyTtl::Persistent);
    assert!(store.expire(b"p", Some(Duration::from_secs(5))).expect("expire"));
    clock.advance_ms(6_000);
    assert_eq!(store.get(b"p").expect("get"), None);
    assert_eq!(store.ttl(b"s").expect("ttl"), KeyTtl::ExpiresInMs(4_000));
    store.close().expect("close");
    let (_disk, store) = open_image(disk.durable_image(), clock.clone()).expect("reopen");
    assert!(store.exists(b"s").expect("exists"));
    clock.advance_ms(4_000);
    assert!(!store.exists(b"s").expect("exists"));
    assert_eq!(store.ttl(b"s").expect("ttl"), KeyTtl::Missing);
}

#[test]
fn scan_returns_sorted_keys_with_prefix() {
    // Prefix scan: sorted, filtered, paged with start_after and limit.
    let (_disk, store, _clock) = new_sim_store(SIM_BYTES, SyncPolicy::None);
    for key in ["user:3", "user:1", "order:1", "user:2"] {
        store.put(key.as_bytes(), b"v").expect("put");
    }
    let keys = store.scan(b"user:", None, 10).expect("scan");
    assert_eq!(keys, vec![b"user:1".to_vec(), b"user:2".to_vec(), b"user:3".to_vec()]);
    let page = store.scan(b"user:", Some(b"user:1"), 1).expect("scan");
    assert_eq!(page, vec![b"user:2".to_vec()]);
}

#[test]
fn clean_close_reopens_from_checkpoint_without_replay() {
    // Close writes a checkpoint; the next open replays nothing.
    let (disk, store, clock) = new_sim_store(SIM_BYTES, SyncPolicy::None);
    for i in 0..50 {
        store.put(format!("k{i}").as_bytes(), b"value").expect("put");
    }
    store.close().expect("close");
    let (_disk, store) = open_image(disk.durable_image(), clock).expect("reopen");
    let report = store.recovery_report();
    assert!(report.checkpoint_id.is_some(), "{report}");
    assert_eq!(report.records_replayed, 0, "{report}");
    assert!(report.tail_cut.is_none(), "{report}");
    assert_eq!(store.stats().keys, 50);
}

#[test]
fn real_file_create_lock_and_reopen() {
    // The real file: created at size, locked against a second open, reopened.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data.kvdata");
    let opts = Options { create_bytes: Some(1024 * 1024), ..Options::default() };
    let store = Store::open(&path, opts.clone()).expect("create");
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), 1024 * 1024);
    store.put(b"k", b"v").expect("put");
    match Store::open(&path, opts.clone()) {
        Err(Error::Locked { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("second open must be refused, got {other:?}"),
    }
    store.close().expect("close");
    let store = Store::open(&path, opts).expect("reopen");
    assert_eq!(store.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    assert!(std::fs::read_dir(dir.path()).expect("ls").count() == 1, "no temp file left behind");
}

#[test]
fn existing_file_that_is_not_blockkv_is_refused() {
    // A random file is never formatted over or misread.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, vec![b'x'; 1024 * 1024]).expect("write");
    let opts = Options { create_bytes: Some(1024 * 1024), ..Options::default() };
    match Store::open(&path, opts) {
        Err(Error::NotBlockkv { .. }) => {}
        other => panic!("expected NotBlockkv, got {other:?}"),
    }
    assert!(std::fs::read(&path).expect("read").iter().all(|&b| b == b'x'), "file untouched");
}

#[test]
fn records_near_a_block_in_size_round_trip() {
    // Regression: a record a few bytes larger than a block minus the SEAL's
    // room panicked the writer; every size around the boundaries must work.
    let (disk, store, clock) = new_sim_store(8 * 1024 * 1024, SyncPolicy::None);
    let mut written = Vec::new();
    for len in (3_900..4_100).chain(7_950..8_150) {
        let key = format!("len{len}").into_bytes();
        let value: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
        store.put(&key, &value).expect("put");
        written.push((key, value));
    }
    store.abandon();
    let (_disk, store) = open_image(disk.volatile_image(), clock).expect("reopen");
    assert!(store.recovery_report().tail_cut.is_none(), "{}", store.recovery_report());
    for (key, value) in written {
        assert_eq!(store.get(&key).expect("get").as_deref(), Some(&value[..]));
    }
}

/// Waits for `done` (polling), failing after a generous timeout: the
/// background thread's work is checked, never its speed.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn background_thread_checkpoints_after_enough_log_bytes() {
    // The byte trigger: a checkpoint follows once the log grew past the limit.
    let disk = std::sync::Arc::new(blockkv_engine::SimDisk::new(4 * 1024 * 1024));
    let clock = std::sync::Arc::new(blockkv_engine::ManualClock::new(0));
    let opts = Options {
        background: true,
        checkpoint_log_bytes: 64 * 1024,
        ..common::sim_options(SyncPolicy::None, clock.clone())
    };
    let store = Store::create_on(disk.clone(), opts).expect("create");
    let before = store.stats().checkpoint_id;
    for i in 0..1000 {
        store.put(format!("k{i}").as_bytes(), &[1u8; 100]).expect("put");
    }
    wait_for("a byte-triggered checkpoint", || store.stats().checkpoint_id > before);
    store.abandon();
    // The checkpoint made everything durable without a close.
    let (_disk, reopened) = open_image(disk.durable_image(), clock).expect("reopen");
    assert!(reopened.recovery_report().checkpoint_id.is_some_and(|id| id > before));
}

#[test]
fn periodic_sync_makes_writes_durable_without_a_close() {
    // sync=periodic: within the interval, acknowledged writes reach the disk.
    let disk = std::sync::Arc::new(blockkv_engine::SimDisk::new(SIM_BYTES));
    let clock = std::sync::Arc::new(blockkv_engine::ManualClock::new(0));
    let opts = Options {
        background: true,
        ..common::sim_options(SyncPolicy::Periodic(Duration::from_millis(20)), clock.clone())
    };
    let store = Store::create_on(disk.clone(), opts).expect("create");
    store.put(b"k", b"v").expect("put");
    let written = store.stats().last_lsn;
    wait_for("the periodic sync", || store.stats().synced_lsn >= written);
    store.abandon();
    let (_disk, reopened) = open_image(disk.durable_image(), clock).expect("reopen");
    assert_eq!(reopened.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
}

#[test]
fn sync_and_checkpoint_intervals_change_while_the_store_runs() {
    // The periodic sync interval and the checkpoint interval take new values; the sync
    // interval is refused under a policy that has none, and a zero interval is refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let periodic = Options {
        create_bytes: Some(1024 * 1024),
        sync: SyncPolicy::Periodic(Duration::from_millis(1000)),
        ..Options::default()
    };
    let store = Store::open(dir.path().join("p.kv"), periodic).expect("open");
    store.set_sync_interval(Duration::from_millis(250)).expect("periodic takes an interval");
    assert_eq!(store.sync_policy(), SyncPolicy::Periodic(Duration::from_millis(250)));
    assert!(matches!(store.set_sync_interval(Duration::ZERO), Err(Error::InvalidArgument(_))));
    store.set_checkpoint_interval(Some(Duration::from_secs(7)));
    assert_eq!(store.checkpoint_interval(), Some(Duration::from_secs(7)));
    store.set_checkpoint_interval(None);
    assert_eq!(store.checkpoint_interval(), None);
    store.close().expect("close");
    let always = Options { create_bytes: Some(1024 * 1024), sync: SyncPolicy::Always, ..Options::default() };
    let store = Store::open(dir.path().join("a.kv"), always).expect("open");
    assert!(matches!(store.set_sync_interval(Duration::from_millis(5)), Err(Error::InvalidArgument(_))));
    assert_eq!(store.sync_policy(), SyncPolicy::Always);
    store.close().expect("close");
}
