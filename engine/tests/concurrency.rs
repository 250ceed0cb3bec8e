//! Many threads at once: writers through group commit, readers, and the
//! background thread checkpointing underneath them. Every acknowledged
//! write must be readable at once and after a kill -9 style reopen, and
//! readers must only ever see values that some writer wrote.

mod common;

use blockkv_engine::{ManualClock, Options, SimDisk, Store, SyncPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const WRITERS: u64 = 8;
const PUTS_PER_WRITER: u64 = 400;
const KEYS_PER_WRITER: u64 = 50;

fn value(writer: u64, round: u64) -> Vec<u8> {
    let len = if round.is_multiple_of(37) { 6_000 } else { 20 + (round % 90) as usize };
    let mut bytes = format!("w{writer}r{round}:").into_bytes();
    bytes.resize(len, (writer * 31 + round) as u8);
    bytes
}

fn key(writer: u64, round: u64) -> Vec<u8> {
    format!("w{writer}-k{}", round % KEYS_PER_WRITER).into_bytes()
}

/// Every writer's last value of each key it wrote (writers own their keys).
fn last_values(writers: Vec<std::thread::JoinHandle<BTreeMap<Vec<u8>, Vec<u8>>>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    writers.into_iter().flat_map(|handle| handle.join().expect("writer")).collect()
}

#[test]
fn concurrent_writers_readers_and_checkpoints_lose_nothing() {
    // Group commit with 8 writers, a reader checking every value it sees,
    // checkpoints in a loop (and every 32 KiB of log), then a kill and reopen.
    let disk = Arc::new(SimDisk::new(16 * 1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let opts = Options {
        background: true,
        checkpoint_log_bytes: 32 * 1024,
        ..common::sim_options(SyncPolicy::Always, clock.clone())
    };
    let store = Arc::new(Store::create_on(disk.clone(), opts).expect("create"));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for writer in 0..WRITERS {
                    for k in 0..KEYS_PER_WRITER {
                        let key = format!("w{writer}-k{k}").into_bytes();
                        if let Some(got) = store.get(&key).expect("concurrent get") {
                            let round: u64 =
                                String::from_utf8_lossy(&got[..got.iter().position(|&b| b == b':').expect("tag")])
                                    .split('r')
                                    .nth(1)
                                    .and_then(|r| r.parse().ok())
                                    .expect("round in value");
                            assert_eq!(got, value(writer, round), "reader saw a value no writer wrote");
                            seen += 1;
                        }
                    }
                }
            }
            seen
        })
    };
    let checkpointer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                store.checkpoint().expect("checkpoint during writes");
                std::thread::yield_now();
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut last = BTreeMap::new();
                for round in 0..PUTS_PER_WRITER {
                    store.put(&key(writer, round), &value(writer, round)).expect("durable put");
                    last.insert(key(writer, round), value(writer, round));
                }
                last
            })
        })
        .collect();
    let expected = last_values(writers);
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader");
    checkpointer.join().expect("checkpointer");
    assert!(reads > 0, "the reader read something");
    for (key, value) in &expected {
        assert_eq!(store.get(key).expect("get").as_ref(), Some(value));
    }
    let checkpoints = store.stats().checkpoints;
    assert!(checkpoints >= 2, "checkpoints ran during the writes ({checkpoints})");
    let store = Arc::try_unwrap(store).expect("only owner");
    store.abandon();
    // sync=always: the durable image alone must hold every acknowledged write.
    let (_disk, reopened) = common::open_image(disk.durable_image(), clock).expect("reopen");
    for (key, value) in &expected {
        assert_eq!(
            reopened.get(key).expect("get after reopen").as_ref(),
            Some(value),
            "{}",
            reopened.recovery_report()
        );
    }
    assert_eq!(reopened.stats().keys, expected.len() as u64);
}

#[test]
fn a_failed_write_or_sync_inside_a_group_acknowledges_no_one() {
    // Eight writers share groups; an I/O call fails mid-run. Every put that
    // returned Ok must be in a crash image of the disk afterwards.
    use blockkv_engine::{Fault, FaultKind};
    for (round, kind) in
        [FaultKind::Eio, FaultKind::ShortWrite, FaultKind::NoSpace].into_iter().cycle().take(12).enumerate()
    {
        let disk = Arc::new(SimDisk::new(8 * 1024 * 1024));
        let clock = Arc::new(ManualClock::new(0));
        let store = Arc::new(
            Store::create_on(disk.clone(), common::sim_options(SyncPolicy::Always, clock.clone())).expect("create"),
        );
        disk.set_fault(Some(Fault { at_call: disk.io_calls() + 5 + round as u64 * 7, kind }));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..200u64 {
                        let key = format!("w{writer}-{i}").into_bytes();
                        match store.put(&key, &value(writer, i)) {
                            Ok(()) => acked.push((key, value(writer, i))),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked: Vec<(Vec<u8>, Vec<u8>)> = writers.into_iter().flat_map(|h| h.join().expect("writer")).collect();
        assert!(store.stats().poisoned.is_some(), "round {round}: the fault poisoned the store");
        Arc::try_unwrap(store).expect("only owner").abandon();
        for seed in 0..3 {
            let (_disk, reopened) = common::open_image(disk.crash_image(seed), clock.clone()).expect("reopen");
            for (key, value) in &acked {
                assert_eq!(
                    reopened.get(key).expect("get").as_ref(),
                    Some(value),
                    "round {round} {kind:?} seed {seed}: acknowledged {} lost",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }
}

#[test]
fn stats_during_checkpoints_and_compaction_does_not_deadlock() {
    // Regression: `stats()` took the block table and then the checkpoint
    // lock, the reverse of a checkpoint's order; STATS during a checkpoint
    // (kvd serves both) hung both threads. Stats, checkpoints, compactions
    // and writes in a loop; a watchdog fails the test if they stop moving.
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = Arc::new(Store::create_on(disk, common::sim_options(SyncPolicy::None, clock)).expect("create"));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|role| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match role {
                        0 => {
                            let stats = store.stats();
                            assert!(stats.block_count > 0);
                        }
                        1 => {
                            store.checkpoint().expect("checkpoint");
                            store.compact().expect("compact");
                        }
                        _ => store.put(format!("k{}", rounds % 64).as_bytes(), &[rounds as u8; 3000]).expect("put"),
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rounds: Vec<u64> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
        let _ = done_tx.send(rounds);
    });
    let rounds = done_rx.recv_timeout(std::time::Duration::from_secs(60)).expect("threads deadlocked");
    assert!(rounds.iter().all(|&r| r > 0), "every role ran: {rounds:?}");
}

/// Records the compactor must have moved while the race test's writers ran.
const RACE_MOVES_MIN: u64 = 50;
/// Rounds a race-test writer writes at most, waiting for those moves.
const RACE_ROUNDS_MAX: u64 = 200_000;

#[test]
fn compaction_racing_writers_on_the_same_keys_loses_nothing_and_counts_exactly() {
    // The compactor reads a live record before it takes the log lock, so a
    // writer may replace the key in between. Writers overwrite a few keys
    // (small and fragmented values) while full compactions run in a loop:
    // every key must end at its last value, the live-byte accounting must
    // stay exact (fsck), and both recovery paths must agree.
    let disk = Arc::new(SimDisk::new(4 * 1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store =
        Arc::new(Store::create_on(disk.clone(), common::sim_options(SyncPolicy::None, clock.clone())).expect("create"));
    let stop = Arc::new(AtomicBool::new(false));
    let moved = Arc::new(AtomicU64::new(0));
    let compactor = {
        let (store, stop, moved) = (store.clone(), stop.clone(), moved.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let outcome = store.compact().expect("compact while writers run");
                moved.fetch_add(outcome.records_moved, Ordering::Relaxed);
                store.checkpoint().expect("checkpoint");
            }
        })
    };
    // Writers go on until the compactor has moved records under them (a
    // release build wrote 1,500 rounds before it moved any, a third of the
    // time), within a bound.
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let (store, moved) = (store.clone(), moved.clone());
            std::thread::spawn(move || {
                let mut last = BTreeMap::new();
                for round in 0..RACE_ROUNDS_MAX {
                    if round >= 1_500 && moved.load(Ordering::Relaxed) >= RACE_MOVES_MIN {
                        break;
                    }
                    let key = format!("w{writer}-k{}", round % 12).into_bytes();
                    store.put(&key, &value(writer, round)).expect("put");
                    last.insert(key, value(writer, round));
                }
                last
            })
        })
        .collect();
    let expected = last_values(writers);
    stop.store(true, Ordering::Relaxed);
    compactor.join().expect("compactor");
    let moved = moved.load(Ordering::Relaxed);
    assert!(moved >= RACE_MOVES_MIN, "the compactor moved {moved} live records while writers ran");
    let check = |store: &Store, what: &str| {
        for (key, value) in &expected {
            assert_eq!(store.get(key).expect("get").as_ref(), Some(value), "{what}");
        }
        assert_eq!(store.stats().keys, expected.len() as u64, "{what}");
        let problems = common::fsck_errors_and_accounting(store);
        assert!(problems.is_empty(), "{what}: {problems:?}");
    };
    check(&store, "after the race");
    Arc::try_unwrap(store).expect("only owner").close().expect("close");
    let image = disk.durable_image();
    let (_disk, reopened) = common::open_image(image.clone(), clock.clone()).expect("reopen from the checkpoint");
    check(&reopened, "reopened from the checkpoint");
    let mut scanned = image;
    scanned[blockkv_engine::format::BLOCK_BYTES..3 * blockkv_engine::format::BLOCK_BYTES].fill(0);
    let (_disk, rescanned) = common::open_image(scanned, clock).expect("reopen by a full scan");
    check(&rescanned, "reopened by a full scan");
}
