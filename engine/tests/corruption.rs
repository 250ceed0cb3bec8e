//! Corruption: single-bit flips, zeroed 512-byte sectors and garbage sectors
//! in a known image, at random and aimed at live records, the superblock
//! and the checkpoint slots. Checked on every trial: open either refuses
//! with an error or succeeds; no GET ever returns a wrong value; a key that
//! reads differently from the truth only does so with the damage visible (an
//! error, a cut tail, or damage in the recovery report). Damage aimed at a
//! live record or a metadata copy must always be visible.

mod common;

use blockkv_engine::recovery::SlotStatus;
use blockkv_engine::{ManualClock, SimDisk, Store, SyncPolicy};
use common::damage::{Damage, Image, damage, known_image};
use common::sim_options;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;

/// What opening a damaged image showed.
struct Outcome {
    opened: bool,
    visible: bool,
    wrong_values: Vec<String>,
    differing_keys: Vec<Vec<u8>>,
}

fn check(image: &Image, damaged: Vec<u8>) -> Outcome {
    let disk = Arc::new(SimDisk::from_image(damaged));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = match Store::open_storage(disk, Path::new("<sim>"), sim_options(SyncPolicy::Always, clock)) {
        Ok(store) => store,
        Err(_) => return Outcome { opened: false, visible: true, wrong_values: vec![], differing_keys: vec![] },
    };
    let report = store.recovery_report().clone();
    let mut visible = report.tail_cut.is_some()
        || !report.damaged.is_empty()
        || report.full_scan_reason.is_some()
        || report.slots.iter().any(|s| matches!(s, SlotStatus::Damaged { .. } | SlotStatus::Unusable { .. }));
    let mut wrong_values = Vec::new();
    let mut differing_keys = Vec::new();
    let held = |key: &[u8], value: &[u8]| image.history.get(key).is_some_and(|h| h.iter().any(|v| v == value));
    for (key, value) in &image.truth {
        match store.get(key) {
            Ok(Some(got)) if got == *value => {}
            Ok(Some(got)) if held(key, &got) => differing_keys.push(key.clone()),
            Ok(Some(_)) => wrong_values.push(String::from_utf8_lossy(key).into_owned()),
            Ok(None) => differing_keys.push(key.clone()),
            Err(_) => {
                visible = true;
                differing_keys.push(key.clone());
            }
        }
    }
    match store.scan(b"", None, usize::MAX) {
        Ok(keys) => {
            for key in keys.iter().filter(|k| !image.truth.contains_key(*k)) {
                match store.get(key) {
                    Ok(Some(got)) if held(key, &got) => differing_keys.push(key.clone()),
                    Ok(None) | Err(_) => differing_keys.push(key.clone()),
                    Ok(Some(_)) => {
                        wrong_values.push(format!("{} (a key that should not exist)", String::from_utf8_lossy(key)))
                    }
                }
            }
        }
        Err(_) => visible = true,
    }
    visible |= store.stats().corrupt_reads > 0;
    store.abandon();
    Outcome { opened: true, visible, wrong_values, differing_keys }
}

fn trial(image: &Image, how: Damage) -> Result<Outcome, String> {
    let outcome = check(image, damage(&image.bytes, how));
    if !outcome.wrong_values.is_empty() {
        return Err(format!("{how:?}: wrong values served for {:?}", outcome.wrong_values));
    }
    if !outcome.differing_keys.is_empty() && !outcome.visible {
        return Err(format!("{how:?}: {} keys changed silently", outcome.differing_keys.len()));
    }
    Ok(outcome)
}

#[test]
fn random_damage_never_serves_a_wrong_value_and_never_loses_silently() {
    // Bit flips, zeroed and garbage sectors anywhere in the file.
    let image = known_image();
    let bits = image.bytes.len() as u64 * 8;
    let sectors = image.bytes.len() as u64 / 512;
    let mut rng = StdRng::seed_from_u64(7);
    let mut failures = Vec::new();
    let (mut visible, mut refused) = (0, 0);
    for i in 0..3_000u64 {
        let how = match i % 3 {
            0 => Damage::BitFlip(rng.random_range(0..bits)),
            1 => Damage::ZeroSector(rng.random_range(0..sectors)),
            _ => Damage::GarbageSector(rng.random_range(0..sectors), i),
        };
        match trial(&image, how) {
            Ok(outcome) => {
                visible += u64::from(outcome.visible);
                refused += u64::from(!outcome.opened);
            }
            Err(err) => failures.push(err),
        }
    }
    println!("random damage: 3000 trials, {visible} visible, {refused} refused to open, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn damage_to_a_live_record_is_always_detected() {
    // Every byte of a few live records (small, large, before and after the
    // checkpoint), flipped one bit at a time, then zeroed and garbage sectors.
    let image = known_image();
    let mut failures = Vec::new();
    let mut trials = 0;
    for (key, ranges) in image.records.iter().step_by(5) {
        for &(offset, len) in ranges.iter().take(2) {
            for byte in offset..offset + u64::from(len) {
                let bit = byte * 8 + (byte % 8);
                trials += 1;
                match trial(&image, Damage::BitFlip(bit)) {
                    Ok(outcome) if outcome.visible => {}
                    Ok(_) => failures
                        .push(format!("flip at byte {byte} in {:?} went unnoticed", String::from_utf8_lossy(key))),
                    Err(err) => failures.push(err),
                }
            }
            for how in [Damage::ZeroSector(offset / 512), Damage::GarbageSector(offset / 512, offset)] {
                trials += 1;
                match trial(&image, how) {
                    Ok(outcome) if outcome.visible => {}
                    Ok(_) => failures.push(format!("{how:?} in {:?} went unnoticed", String::from_utf8_lossy(key))),
                    Err(err) => failures.push(err),
                }
            }
        }
    }
    println!("live records: {trials} trials, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {trials} failed:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn damage_to_superblock_or_checkpoint_slots_is_reported_or_refused() {
    // Each copy of the superblock and of both slot headers, every bit.
    let image = known_image();
    let mut failures = Vec::new();
    let mut trials = 0;
    for block in 0..3u64 {
        for copy_at in [0u64, 2048] {
            for byte in 0..64u64 {
                let at = block * 4096 + copy_at + byte;
                trials += 1;
                match trial(&image, Damage::BitFlip(at * 8 + byte % 8)) {
                    Ok(outcome) if outcome.visible || is_empty_slot(&image.bytes, block) => {}
                    Ok(_) => failures.push(format!("flip at byte {at} went unreported")),
                    Err(err) => failures.push(err),
                }
            }
        }
    }
    println!("metadata: {trials} trials, {} failed", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn is_empty_slot(bytes: &[u8], block: u64) -> bool {
    bytes[block as usize * 4096..][..4096].iter().all(|&b| b == 0)
}

#[test]
fn losing_both_superblock_copies_is_a_clear_refusal() {
    // Without a superblock the file is refused with a message, never a panic.
    let image = known_image();
    let mut bytes = image.bytes.clone();
    bytes[..4096].fill(0xAB);
    let disk = Arc::new(SimDisk::from_image(bytes));
    let clock = Arc::new(ManualClock::new(0));
    let err =
        Store::open_storage(disk, Path::new("<sim>"), sim_options(SyncPolicy::Always, clock)).expect_err("refused");
    assert!(err.to_string().contains("superblock"), "{err}");
}

#[test]
fn losing_both_checkpoint_slots_degrades_to_a_full_scan() {
    // No usable checkpoint: every key comes back by scanning the blocks.
    let image = known_image();
    let mut bytes = image.bytes.clone();
    bytes[4096..3 * 4096].fill(0x5A);
    let outcome = check(&image, bytes);
    assert!(outcome.opened && outcome.visible);
    assert!(outcome.wrong_values.is_empty() && outcome.differing_keys.is_empty(), "{:?}", outcome.differing_keys);
}

#[test]
fn salvage_reads_records_behind_a_destroyed_block_header() {
    // Salvage must not let a destroyed header hide a block's records.
    let image = known_image();
    let (key, ranges) = image.records.iter().find(|(_, r)| r.len() == 1).expect("a one-fragment record");
    let block = ranges[0].0 / 4096;
    let mut bytes = image.bytes.clone();
    bytes[block as usize * 4096..][..32].fill(0);
    let disk = Arc::new(SimDisk::from_image(bytes));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let opts = blockkv_engine::Options {
        recovery: blockkv_engine::RecoveryMode::Salvage,
        ..sim_options(SyncPolicy::Always, clock)
    };
    let store = Store::open_storage(disk, Path::new("<sim>"), opts).expect("salvage opens");
    assert!(store.recovery_report().damaged.iter().any(|d| u64::from(d.block) == block), "{}", store.recovery_report());
    assert_eq!(store.get(key).expect("get").as_deref(), image.truth.get(key).map(Vec::as_slice));
}

#[test]
fn strict_mode_refuses_any_reported_damage() {
    // One damaged superblock copy is survivable, but strict says so and stops.
    let image = known_image();
    let mut bytes = image.bytes.clone();
    bytes[2048 + 20] ^= 1;
    let disk = Arc::new(SimDisk::from_image(bytes));
    let clock = Arc::new(ManualClock::new(0));
    let opts = blockkv_engine::Options {
        recovery: blockkv_engine::RecoveryMode::Strict,
        ..sim_options(SyncPolicy::Always, clock)
    };
    let err = Store::open_storage(disk, Path::new("<sim>"), opts).expect_err("strict refuses");
    assert!(err.to_string().contains("superblock"), "{err}");
}

#[test]
fn damage_to_a_checkpointed_record_in_the_head_block_loses_only_that_record() {
    // Regression: replay re-parsed the head block from its start, read a
    // damaged record the checkpoint covered as the end of the log, and cut
    // (and zeroed) every later record in the block, all of them checkpointed.
    let disk = Arc::new(SimDisk::new(1024 * 1024));
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = Store::create_on(disk.clone(), sim_options(SyncPolicy::Always, clock.clone())).expect("create");
    for i in 0..20u32 {
        store.put(format!("key-{i:02}").as_bytes(), format!("value {i}").as_bytes()).expect("put");
    }
    let (victim, _) =
        store.locate(b"key-05").expect("locate").expect("live").into_iter().next().map(|r| (r.0, r.1)).expect("range");
    store.close().expect("close: checkpoint covers every record");
    let mut bytes = disk.durable_image();
    bytes[victim as usize + 45] ^= 0x01;
    for round in 0..2 {
        let (reopened_disk, store) = common::open_image(bytes, clock.clone()).expect("reopen");
        assert!(store.get(b"key-05").is_err(), "round {round}: the damaged record is an error, never a value");
        for i in (0..20u32).filter(|&i| i != 5) {
            let key = format!("key-{i:02}");
            assert_eq!(
                store.get(key.as_bytes()).expect("get"),
                Some(format!("value {i}").into_bytes()),
                "round {round}: {key}"
            );
        }
        store.close().expect("close");
        bytes = reopened_disk.durable_image();
    }
}
