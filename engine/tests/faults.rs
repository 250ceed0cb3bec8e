//! Fault injection: a fixed workload is run once per I/O call index and fault
//! kind (EIO, ENOSPC, short write), failing exactly that call. Checked: no
//! operation is acknowledged once a write or sync has failed (the store is
//! poisoned), reads keep working, and the image — crashed with pending writes
//! resolved at random — reopens cleanly to the acknowledged state or the
//! acknowledged state plus the one operation in flight.

mod common;

use blockkv_engine::{BatchOp, Error, Fault, FaultKind, ManualClock, SimDisk, Store, SyncPolicy};
use common::sim_options;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Step {
    Put(&'static str, Vec<u8>),
    Delete(&'static str),
    Batch(Vec<BatchOp>),
    Checkpoint,
}

fn workload() -> Vec<Step> {
    let big: Vec<u8> = (0..9_000u32).map(|i| (i % 253) as u8).collect();
    vec![
        Step::Put("a", b"1".to_vec()),
        Step::Put("b", vec![2; 300]),
        Step::Put("big", big.clone()),
        Step::Checkpoint,
        Step::Delete("a"),
        Step::Batch(vec![
            BatchOp::Put { key: b"c".to_vec(), value: vec![3; 50], ttl: None },
            BatchOp::Delete { key: b"b".to_vec() },
            BatchOp::Put { key: b"d".to_vec(), value: big, ttl: None },
        ]),
        Step::Put("e", vec![5; 2_000]),
        Step::Checkpoint,
        Step::Put("a", b"again".to_vec()),
        Step::Put("f", vec![6; 3_900]),
    ]
}

fn apply(state: &mut State, step: &Step) {
    match step {
        Step::Put(k, v) => {
            state.insert(k.as_bytes().to_vec(), v.clone());
        }
        Step::Delete(k) => {
            state.remove(k.as_bytes());
        }
        Step::Batch(ops) => common::apply_batch(state, ops),
        Step::Checkpoint => {}
    }
}

fn run(store: &Store, step: &Step) -> blockkv_engine::Result<()> {
    match step {
        Step::Put(k, v) => store.put(k.as_bytes(), v),
        Step::Delete(k) => store.delete(k.as_bytes()).map(|_| ()),
        Step::Batch(ops) => store.write_batch(ops),
        Step::Checkpoint => store.checkpoint().map(|_| ()),
    }
}

fn contents(store: &Store) -> State {
    let mut state = State::new();
    for key in store.scan(b"", None, usize::MAX).expect("scan") {
        let value = store.get(&key).expect("get").expect("scanned key has a value");
        state.insert(key, value);
    }
    state
}

/// Runs the workload with `fault` (None = count calls). Returns the total
/// I/O calls, or checks the outcome when a fault is set.
fn run_with(fault: Option<Fault>, crash_seed: u64) -> Result<u64, String> {
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = Store::create_on(disk.clone(), sim_options(SyncPolicy::Always, clock.clone())).expect("create");
    disk.set_fault(fault);
    let mut acked = State::new();
    let mut in_flight: Option<State> = None;
    for step in workload() {
        let mut next = acked.clone();
        apply(&mut next, &step);
        match (run(&store, &step), &in_flight) {
            (Ok(()), None) => acked = next,
            (Ok(()), Some(_)) => return Err(format!("{step:?} acknowledged after an I/O failure")),
            (Err(Error::Io { .. } | Error::Poisoned { .. }), None) => in_flight = Some(next),
            (Err(Error::Poisoned { .. }), Some(_)) => {}
            (Err(err), _) => return Err(format!("{step:?} failed with an unexpected error: {err}")),
        }
    }
    if let Some(pending) = &in_flight {
        // Reads keep working after poisoning, and show acknowledged data.
        let now = contents(&store);
        if now != acked && now != *pending {
            return Err("reads after poisoning show neither the acknowledged nor the in-flight state".into());
        }
    }
    let closed = store.close();
    if fault.is_none() {
        closed.map_err(|e| format!("clean close failed: {e}"))?;
        return Ok(disk.io_calls());
    }
    let image = disk.crash_image(crash_seed);
    let reopened = Store::open_storage(
        Arc::new(SimDisk::from_image(image)),
        Path::new("<sim>"),
        sim_options(SyncPolicy::Always, clock),
    )
    .map_err(|e| format!("reopen failed: {e}"))?;
    let recovered = contents(&reopened);
    // A fault in the final close (its checkpoint) leaves the acknowledged state.
    let ok = recovered == acked || in_flight.as_ref().is_some_and(|p| recovered == *p);
    if !ok {
        return Err(format!(
            "recovered {} keys; acknowledged {} keys (in flight: {:?} keys); recovery: {}",
            recovered.len(),
            acked.len(),
            in_flight.map(|p| p.len()),
            reopened.recovery_report()
        ));
    }
    Ok(0)
}

#[test]
fn every_failed_io_call_poisons_without_acknowledging_and_reopens_cleanly() {
    // Tries each write/sync of the workload (and of the closing checkpoint)
    // with each fault kind, and several crash outcomes for the pending writes.
    let total = run_with(None, 0).expect("workload runs without faults");
    assert!(total > 20, "workload makes {total} I/O calls");
    let mut failures = Vec::new();
    let mut cases = 0;
    for at_call in 0..total {
        for kind in [FaultKind::Eio, FaultKind::NoSpace, FaultKind::ShortWrite] {
            for crash_seed in 0..4 {
                cases += 1;
                if let Err(err) = run_with(Some(Fault { at_call, kind }), at_call * 31 + crash_seed) {
                    failures.push(format!("call {at_call} {kind:?} crash seed {crash_seed}: {err}"));
                }
            }
        }
    }
    println!("fault injection: {total} I/O calls, {cases} cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn failed_sync_refuses_every_later_write_but_serves_reads() {
    // A failed fdatasync must never be retried and pretended away.
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let clock = Arc::new(ManualClock::new(0));
    let store = Store::create_on(disk.clone(), sim_options(SyncPolicy::Always, clock)).expect("create");
    store.put(b"k", b"v1").expect("put");
    // The next call is the write of the next put; the one after is its sync.
    disk.set_fault(Some(Fault { at_call: disk.io_calls() + 1, kind: FaultKind::Eio }));
    assert!(matches!(store.put(b"k", b"v2"), Err(Error::Io { .. })));
    for _ in 0..3 {
        assert!(matches!(store.put(b"other", b"x"), Err(Error::Poisoned { .. })));
        assert!(matches!(store.delete(b"k"), Err(Error::Poisoned { .. })));
        assert!(matches!(store.checkpoint(), Err(Error::Poisoned { .. })));
    }
    assert!(store.get(b"k").expect("reads continue").is_some());
    let err = store.put(b"x", b"y").expect_err("poisoned");
    assert!(err.to_string().contains("fdatasync failed"), "the message says why: {err}");
    assert!(store.stats().poisoned.is_some());
}
