//! Regression tests for what `make fuzz` found, one per finding, each named
//! for the bug. The fuzz targets live in engine/fuzz and protocol/fuzz.

mod common;

use blockkv_engine::format::block::BlockHeader;
use blockkv_engine::format::record::RECORD_HEADER_BYTES;
use blockkv_engine::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, masked_crc};
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

#[test]
fn head_block_filled_past_the_seal_room_is_not_resumed() {
    // Found by the image target: a re-sealed record in the head block that
    // ends closer than a SEAL header to the block's end. Recovery resumed
    // the block there, and the next write, moving on to a new block, had no
    // room to seal it: a panic (debug assertion; an out-of-bounds slice in
    // release). Built directly: one record, stretched to end 10 bytes short
    // of the block, its checksum recomputed.
    let (disk, store, _clock) = common::new_sim_store(common::SIM_BYTES, blockkv_engine::SyncPolicy::Always);
    let key = b"fuzz-finding-2";
    store.put(key, &[0xab; 100]).expect("put");
    store.abandon();
    let mut image = disk.durable_image();
    let key_at = image.windows(key.len()).position(|w| w == key).expect("record in the image");
    let record = key_at - RECORD_HEADER_BYTES;
    let block_end = (record / BLOCK_BYTES + 1) * BLOCK_BYTES;
    let fragment_len = block_end - 10 - record - RECORD_HEADER_BYTES;
    let value_len = fragment_len - key.len();
    image[record + 8..record + 10].copy_from_slice(&(fragment_len as u16).to_le_bytes());
    image[record + 32..record + 36].copy_from_slice(&(value_len as u32).to_le_bytes());
    let crc = masked_crc(&image[record + 4..record + RECORD_HEADER_BYTES + fragment_len]);
    image[record..record + 4].copy_from_slice(&crc.to_le_bytes());
    open_every_way(&image);
    // The stretched record itself is intact, so it reads back.
    let opts = common::sim_options(blockkv_engine::SyncPolicy::Always, Arc::new(blockkv_engine::ManualClock::new(0)));
    let store = Store::open_storage(Arc::new(SimDisk::from_image(image)), Path::new("<sim>"), opts).expect("opens");
    assert_eq!(store.get(key).expect("get").map(|v| v.len()), Some(value_len));
    store.put(b"next", &[1; 50]).expect("a write after it goes to a new block");
    assert_eq!(store.get(b"next").expect("get"), Some(vec![1; 50]));
}
