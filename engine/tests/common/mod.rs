//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

pub mod damage;

use blockkv_engine::{BatchOp, ManualClock, Options, RecoveryMode, SimDisk, Store, SyncPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A small simulated file: 256 KiB = 64 blocks.
pub const SIM_BYTES: u64 = 256 * 1024;

pub fn sim_options(sync: SyncPolicy, clock: Arc<ManualClock>) -> Options {
    Options {
        sync,
        recovery: RecoveryMode::TolerateTail,
        create_bytes: None,
        checkpoint_interval: None,
        checkpoint_log_bytes: u64::MAX,
        read_only: false,
        background: false,
        background_compaction: false,
        background_expiry: false,
        clock,
    }
}

/// A fresh store on a fresh simulated disk.
pub fn new_sim_store(bytes: u64, sync: SyncPolicy) -> (Arc<SimDisk>, Store, Arc<ManualClock>) {
    let disk = Arc::new(SimDisk::new(bytes));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = Store::create_on(disk.clone(), sim_options(sync, clock.clone())).expect("create store");
    (disk, store, clock)
}

/// Opens a store on a disk image.
pub fn open_image(image: Vec<u8>, clock: Arc<ManualClock>) -> blockkv_engine::Result<(Arc<SimDisk>, Store)> {
    let disk = Arc::new(SimDisk::from_image(image));
    let store =
        Store::open_storage(disk.clone(), std::path::Path::new("<sim>"), sim_options(SyncPolicy::Always, clock))?;
    Ok((disk, store))
}

/// Applies a batch to an oracle map, in order (last write wins).
pub fn apply_batch(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, ops: &[BatchOp]) {
    for op in ops {
        match op {
            BatchOp::Put { key, value, .. } | BatchOp::PutAt { key, value, .. } => {
                state.insert(key.clone(), value.clone());
            }
            BatchOp::Delete { key } => {
                state.remove(key);
            }
        }
    }
}

/// kv-fsck's errors, and its live-byte accounting warning (what the
/// compactor trusts); other warnings describe how the store was opened (a
/// new file has no checkpoint yet).
pub fn fsck_errors_and_accounting(store: &Store) -> Vec<blockkv_engine::fsck::Problem> {
    use blockkv_engine::fsck::Severity;
    let report = store.fsck(&|_, _| {});
    report
        .problems
        .into_iter()
        .filter(|p| p.severity == Severity::Error || p.what.starts_with("live-byte accounting"))
        .collect()
}
