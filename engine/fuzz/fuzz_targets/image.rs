//! Damaged file images through every way the engine reads a file: open in
//! each recovery mode, every read, a write + checkpoint + reopen, and the
//! kv-fsck check. Invariant 8: none of them may panic or hang on any image.
//!
//! The input is a list of patches over a known image (a crashed store with
//! a checkpoint, a replay tail, large fragmented values, TTLs, deletes and a
//! batch). Its first byte chooses the base image and whether to re-seal:
//! re-sealing recomputes every checksum the patches broke, so the fuzzer
//! also reaches the code behind the checksums (a crafted file whose index
//! points anywhere, records whose lengths lie, snapshot chains that loop).
//!
//! Input: `flags:u8` then repeated `offset:u32le len:u8 bytes[len]`.
#![no_main]

use blockkv_engine::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, COPY_OFFSETS, RECORD_HEADER_BYTES, masked_crc};
use blockkv_engine::{BatchOp, ManualClock, Options, RecoveryMode, SimDisk, Store, SyncPolicy};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const IMAGE_BYTES: u64 = 64 * BLOCK_BYTES as u64;
const NOW_MS: u64 = 1_700_000_000_000;

fn options(recovery: RecoveryMode, read_only: bool) -> Options {
    Options {
        sync: SyncPolicy::Always,
        recovery,
        create_bytes: None,
        checkpoint_interval: None,
        checkpoint_log_bytes: u64::MAX,
        read_only,
        background: false,
        background_compaction: false,
        background_expiry: false,
        clock: Arc::new(ManualClock::new(NOW_MS)),
    }
}

/// The known image, crashed (`close == false`) or cleanly closed.
fn build(close: bool) -> Vec<u8> {
    let disk = Arc::new(SimDisk::new(IMAGE_BYTES));
    let store = Store::create_on(disk.clone(), options(RecoveryMode::TolerateTail, false)).expect("create");
    for i in 0..40u32 {
        let key = format!("key-{i:02}");
        let len = if i % 11 == 0 { 9_000 } else { 10 + (i as usize * 37) % 400 };
        let value: Vec<u8> = (0..len).map(|j| (i as usize + j) as u8).collect();
        let ttl = (i % 7 == 6).then(|| Duration::from_secs(u64::from(i) * 10));
        store.put_with_ttl(key.as_bytes(), &value, ttl).expect("put");
        if i % 5 == 3 {
            store.delete(format!("key-{:02}", i - 1).as_bytes()).expect("delete");
        }
        if i == 20 {
            store.checkpoint().expect("checkpoint");
        }
    }
    let batch = vec![
        BatchOp::Put { key: b"batch-a".to_vec(), value: vec![1; 300], ttl: None },
        BatchOp::Delete { key: b"key-05".to_vec() },
        BatchOp::Put { key: b"batch-b".to_vec(), value: vec![2; 5_000], ttl: None },
    ];
    store.write_batch(&batch).expect("batch");
    if close {
        store.close().expect("close");
    } else {
        store.abandon();
    }
    disk.durable_image()
}

fn base(close: bool) -> &'static [u8] {
    static CRASHED: OnceLock<Vec<u8>> = OnceLock::new();
    static CLOSED: OnceLock<Vec<u8>> = OnceLock::new();
    if close { CLOSED.get_or_init(|| build(true)) } else { CRASHED.get_or_init(|| build(false)) }
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Recomputes every checksum at the positions the format puts them
/// (docs/FORMAT.md), innermost first: records, block headers, snapshot
/// payloads into their slot headers, slot headers, the superblock.
fn reseal(image: &mut [u8]) {
    let block_count = image.len() / BLOCK_BYTES;
    for block in 3..block_count {
        let at = block * BLOCK_BYTES;
        if &image[at + 4..at + 8] != b"BKBL" {
            continue;
        }
        if image[at + 8] == 1 {
            // A LOG block: walk its records by their (patched) lengths.
            let mut offset = BLOCK_HEADER_BYTES;
            while offset + RECORD_HEADER_BYTES <= BLOCK_BYTES && (1..=5).contains(&image[at + offset + 4]) {
                let fragment = u16::from_le_bytes([image[at + offset + 8], image[at + offset + 9]]) as usize;
                let end = offset + RECORD_HEADER_BYTES + fragment;
                if end > BLOCK_BYTES {
                    break;
                }
                let crc = masked_crc(&image[at + offset + 4..at + end]);
                put_u32(image, at + offset, crc);
                offset = end;
            }
        }
        let crc = masked_crc(&image[at + 4..at + BLOCK_HEADER_BYTES]);
        put_u32(image, at, crc);
    }
    for slot_block in [1usize, 2] {
        for copy in COPY_OFFSETS {
            let at = slot_block * BLOCK_BYTES + copy;
            if &image[at + 4..at + 8] != b"BKCP" {
                continue;
            }
            // The snapshot chain: first block and count from the slot header,
            // next block and payload length from each block header.
            let mut payload = Vec::new();
            let mut block = get_u32(image, at + 48) as usize;
            for _ in 0..get_u32(image, at + 52).min(block_count as u32) {
                if block == 0 || block >= block_count {
                    break;
                }
                let header = block * BLOCK_BYTES;
                let len = (get_u32(image, header + 28) as usize).min(BLOCK_BYTES - BLOCK_HEADER_BYTES);
                payload.extend_from_slice(&image[header + BLOCK_HEADER_BYTES..header + BLOCK_HEADER_BYTES + len]);
                block = get_u32(image, header + 24) as usize;
            }
            put_u32(image, at + 56, masked_crc(&payload));
            let crc = masked_crc(&image[at + 4..at + 64]);
            put_u32(image, at, crc);
        }
    }
    for copy in COPY_OFFSETS {
        let crc = masked_crc(&image[copy..copy + 60]);
        put_u32(image, copy + 60, crc);
    }
}

/// Every read the store offers, then a write, a checkpoint and a reopen.
fn exercise(disk: Arc<SimDisk>, mode: RecoveryMode, read_only: bool) {
    let Ok(store) = Store::open_storage(disk.clone(), Path::new("<fuzz>"), options(mode, read_only)) else {
        return;
    };
    let _ = store.recovery_report().to_string();
    if let Ok(keys) = store.scan(b"", None, usize::MAX) {
        for key in keys.iter().take(200) {
            let _ = store.get(key);
            let _ = store.ttl(key);
            let _ = store.locate(key);
        }
    }
    for probe in [&b"key-00"[..], b"key-33", b"batch-b", b"absent"] {
        let _ = store.get(probe);
        let _ = store.exists(probe);
    }
    let _ = store.stats();
    if read_only {
        store.abandon();
        return;
    }
    let _ = store.put(b"fuzz-new", &[7u8; 5_000]);
    let _ = store.delete(b"key-01");
    let _ = store.checkpoint();
    store.abandon();
    // What the writes left behind must open again (or refuse) as well.
    if let Ok(store) = Store::open_storage(disk, Path::new("<fuzz>"), options(mode, false)) {
        let _ = store.get(b"fuzz-new");
        store.abandon();
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, mut patches)) = input.split_first() else { return };
    let mut image = base(flags & 2 != 0).to_vec();
    while patches.len() >= 5 {
        let offset = get_u32(patches, 0) as usize % image.len();
        let len = usize::from(patches[4]).min(patches.len() - 5).min(image.len() - offset);
        image[offset..offset + len].copy_from_slice(&patches[5..5 + len]);
        patches = &patches[5 + len..];
    }
    if flags & 1 != 0 {
        reseal(&mut image);
    }
    let read_only = Arc::new(SimDisk::from_image(image.clone()));
    if let Ok(store) = Store::open_storage(read_only, Path::new("<fuzz>"), options(RecoveryMode::TolerateTail, true)) {
        let report = store.fsck(&|_, _| {});
        let _ = report.errors();
        store.abandon();
    }
    for mode in [RecoveryMode::Strict, RecoveryMode::TolerateTail, RecoveryMode::Salvage] {
        exercise(Arc::new(SimDisk::from_image(image.clone())), mode, false);
    }
});
