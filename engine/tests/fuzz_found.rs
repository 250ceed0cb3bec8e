//! Regression tests for what `make fuzz` found, one per finding, each named
//! for the bug. The fuzz targets live in engine/fuzz and protocol/fuzz.

mod common;

use blockkv_engine::format::block::BlockHeader;
use blockkv_engine::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES};
use blockkv_engine::{Options, RecoveryMode, SimDisk, Store};
use common::damage::{Ending, build_image};
use std::path::Path;
use std::sync::Arc;

/// Opens `image` in every recovery mode and runs kv-fsck's check on it;
/// each must open or refuse, never panic, and a write it accepts must read
/// back after a reopen (a wrapped counter would write unreadable blocks).
fn open_every_way(image: &[u8]) {
    for mode in [RecoveryMode::Strict, RecoveryMode::TolerateTail, RecoveryMode::Salvage] {
        for read_only in [true, false] {
            let clock = Arc::new(blockkv_engine::ManualClock::new(1_700_000_000_000));
            let opts =
                Options { recovery: mode, read_only, ..common::sim_options(blockkv_engine::SyncPolicy::Always, clock) };
            let disk = Arc::new(SimDisk::from_image(image.to_vec()));
            let Ok(store) = Store::open_storage(disk.clone(), Path::new("<sim>"), opts.clone()) else { continue };
            let _ = store.fsck(&|_, _| {});
            let accepted = store.put(b"after", b"value").is_ok();
            let closed = store.close().is_ok();
            if accepted && closed && !read_only {
                let store = Store::open_storage(disk, Path::new("<sim>"), opts).expect("reopens after its own close");
                assert_eq!(store.get(b"after").expect("get"), Some(b"value".to_vec()), "{mode:?}");
                store.abandon();
            }
        }
    }
}

#[test]
fn block_generation_at_u64_max_does_not_overflow_the_full_scan() {
    // Found by the image target: a LOG header with a valid checksum and
    // generation u64::MAX; the full scan computed max_gen + 1 and panicked.
    let mut image = build_image(Ending::Close).bytes;
    image[BLOCK_BYTES..3 * BLOCK_BYTES].fill(0); // no checkpoint: full scan
    let block = 5 * BLOCK_BYTES;
    BlockHeader::log(u64::MAX, 0, 0).encode_into(&mut image[block..block + BLOCK_HEADER_BYTES]);
    open_every_way(&image);
}
