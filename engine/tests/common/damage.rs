//! A known image and the ways to damage it, shared by the corruption tests
//! (what opening a damaged file serves) and the kv-fsck sweep (what the
//! checker reports, what salvage keeps).

use super::sim_options;
use blockkv_engine::{ManualClock, SimDisk, Store, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;
/// Byte ranges (file offset, length) of one record's fragments.
pub type Ranges = Vec<(u64, u32)>;

pub struct Image {
    pub bytes: Vec<u8>,
    pub truth: State,
    /// Every value each key ever held: an older one may come back after a
    /// visible cut (the log ends earlier); anything else is a wrong value.
    pub history: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
    /// (key, byte ranges of its record) for every live key.
    pub records: Vec<(Vec<u8>, Ranges)>,
}

/// A store with small and multi-block values, overwrites and deletes, a
/// checkpoint in the middle and writes after it (so both the snapshot and
/// the replay path hold live data), left as a kill -9 would leave it.
pub fn known_image() -> Image {
    build_image(Ending::Crash)
}

/// How the writer left the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// As kill -9 leaves it: writes after the checkpoint are in the replay tail.
    Crash,
    /// A clean close: a checkpoint covers every record, the tail is empty.
    Close,
}

pub fn build_image(ending: Ending) -> Image {
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = Store::create_on(disk.clone(), sim_options(SyncPolicy::Always, clock)).expect("create");
    let mut truth = State::new();
    let mut history: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for i in 0..60u32 {
        let key = format!("key-{i:03}").into_bytes();
        let len = if i % 13 == 0 { 9_000 } else { 40 + (i as usize * 7) % 300 };
        let value: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
        store.put(&key, &value).expect("put");
        history.entry(key.clone()).or_default().push(value.clone());
        truth.insert(key, value);
        if i == 35 {
            store.checkpoint().expect("checkpoint");
        }
        if i % 9 == 4 {
            let gone = format!("key-{:03}", i - 2).into_bytes();
            store.delete(&gone).expect("delete");
            truth.remove(&gone);
        }
    }
    let records =
        truth.keys().map(|k| (k.clone(), store.locate(k).expect("locate").expect("live key has a record"))).collect();
    match ending {
        Ending::Crash => store.abandon(),
        Ending::Close => store.close().expect("close"),
    }
    Image { bytes: disk.durable_image(), truth, history, records }
}

#[derive(Debug, Clone, Copy)]
pub enum Damage {
    BitFlip(u64),
    ZeroSector(u64),
    GarbageSector(u64, u64),
}

pub fn damage(image: &[u8], how: Damage) -> Vec<u8> {
    let mut bytes = image.to_vec();
    match how {
        Damage::BitFlip(bit) => bytes[(bit / 8) as usize] ^= 1 << (bit % 8),
        Damage::ZeroSector(sector) => bytes[sector as usize * 512..][..512].fill(0),
        Damage::GarbageSector(sector, seed) => {
            StdRng::seed_from_u64(seed).fill(&mut bytes[sector as usize * 512..][..512])
        }
    }
    bytes
}
