//! The kv-fsck sweep: thousands of damaged copies of a known image (single
//! bit flips, zeroed 512-byte sectors, garbage sectors; at random and aimed
//! at live records), each checked twice:
//! - `Store::fsck` (what kv-fsck runs) must report every change that hits
//!   a live record, naming its block or key — or the file must refuse to
//!   open, which kv-fsck reports as an error too;
//! - a salvage open must keep every key whose record is untouched, and
//!   never serve a value the key did not hold.
//!
//! Images come in two endings. After a clean close a checkpoint covers
//! every record, so any hit is an error. After kill -9 the records written
//! since the checkpoint form the replay tail, where damage to the newest
//! records cannot be told from a torn write: recovery cuts the log there,
//! and kv-fsck reports the cut (a note with its block and offset). The sweep
//! allows that outcome only for the crash ending and only with the cut made.

mod common;

use blockkv_engine::{ManualClock, Options, RecoveryMode, SimDisk, Store, SyncPolicy};
use common::damage::{Damage, Ending, Image, build_image, damage};
use common::sim_options;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;

const BLOCK_BYTES: u64 = 4096;

fn options(mode: RecoveryMode, read_only: bool) -> Options {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    Options { recovery: mode, read_only, ..sim_options(SyncPolicy::Always, clock) }
}

/// How kv-fsck saw one damaged image.
#[derive(Debug, Default)]
struct Tally {
    trials: u64,
    unchanged: u64,
    hits: u64,
    hits_as_errors: u64,
    hits_refused: u64,
    hits_as_cut_tail: u64,
    misses_reported: u64,
    salvage_keys_kept: u64,
}

/// Live keys whose record bytes the damage changed.
fn keys_hit<'a>(image: &'a Image, damaged: &[u8]) -> Vec<(&'a [u8], Vec<u64>)> {
    let mut hit = Vec::new();
    for (key, ranges) in &image.records {
        let blocks: Vec<u64> = ranges
            .iter()
            .filter(|&&(at, len)| {
                let range = at as usize..at as usize + len as usize;
                image.bytes[range.clone()] != damaged[range]
            })
            .map(|&(at, _)| at / BLOCK_BYTES)
            .collect();
        if !blocks.is_empty() {
            hit.push((key.as_slice(), blocks));
        }
    }
    hit
}

fn trial(image: &Image, ending: Ending, how: Damage, tally: &mut Tally) -> Result<(), String> {
    tally.trials += 1;
    let damaged = damage(&image.bytes, how);
    if damaged == image.bytes {
        tally.unchanged += 1;
        return Ok(());
    }
    let hit = keys_hit(image, &damaged);
    check_fsck(ending, how, &damaged, &hit, tally)?;
    check_salvage(image, how, damaged, &hit, tally)
}

fn check_fsck(
    ending: Ending,
    how: Damage,
    damaged: &[u8],
    hit: &[(&[u8], Vec<u64>)],
    tally: &mut Tally,
) -> Result<(), String> {
    let disk = Arc::new(SimDisk::from_image(damaged.to_vec()));
    let store = match Store::open_storage(disk, Path::new("<sim>"), options(RecoveryMode::TolerateTail, true)) {
        Ok(store) => store,
        Err(_) => {
            // kv-fsck turns a refusal to open into an error finding.
            tally.hits += u64::from(!hit.is_empty());
            tally.hits_refused += u64::from(!hit.is_empty());
            return Ok(());
        }
    };
    let report = store.fsck(&|_, _| {});
    let cut = store.recovery_report().tail_cut.is_some();
    store.abandon();
    if hit.is_empty() {
        tally.misses_reported += u64::from(report.errors() > 0);
        return Ok(());
    }
    tally.hits += 1;
    if report.errors() > 0 {
        tally.hits_as_errors += 1;
        let named = hit.iter().any(|(key, blocks)| {
            report
                .problems
                .iter()
                .any(|p| p.key.as_deref() == Some(*key) || p.block.is_some_and(|b| blocks.contains(&u64::from(b))))
        });
        if !named {
            let problems: Vec<_> = report.problems.iter().map(|p| (p.block, p.offset, &p.what)).collect();
            return Err(format!("{how:?}: reported, but no problem names the damaged block or key: {problems:?}"));
        }
        return Ok(());
    }
    if ending == Ending::Crash && cut && !report.notes.is_empty() {
        tally.hits_as_cut_tail += 1;
        return Ok(());
    }
    let keys: Vec<_> = hit.iter().map(|(k, _)| String::from_utf8_lossy(k).into_owned()).collect();
    Err(format!("{how:?} ({ending:?} image): damage to {keys:?} went unreported (notes {:?})", report.notes))
}

fn check_salvage(
    image: &Image,
    how: Damage,
    damaged: Vec<u8>,
    hit: &[(&[u8], Vec<u64>)],
    tally: &mut Tally,
) -> Result<(), String> {
    let disk = Arc::new(SimDisk::from_image(damaged));
    let store = Store::open_storage(disk, Path::new("<sim>"), options(RecoveryMode::Salvage, false))
        .map_err(|err| format!("{how:?}: salvage refused to open: {err}"))?;
    let was_hit = |key: &[u8]| hit.iter().any(|(k, _)| *k == key);
    for (key, value) in &image.truth {
        let got = store.get(key);
        if !was_hit(key) {
            match got {
                Ok(Some(got)) if got == *value => tally.salvage_keys_kept += 1,
                other => {
                    return Err(format!(
                        "{how:?}: salvage lost undamaged key {:?}: {:?}",
                        String::from_utf8_lossy(key),
                        other.map(|v| v.map(|v| v.len()))
                    ));
                }
            }
        } else if let Ok(Some(got)) = got
            && !image.history.get(key).is_some_and(|h| h.contains(&got))
        {
            return Err(format!("{how:?}: salvage served a wrong value for {:?}", String::from_utf8_lossy(key)));
        }
    }
    store.abandon();
    Ok(())
}

fn sweep(ending: Ending, random_trials: u64) -> Tally {
    let image = build_image(ending);
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let bits = image.bytes.len() as u64 * 8;
    let sectors = image.bytes.len() as u64 / 512;
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..random_trials {
        let how = match i % 3 {
            0 => Damage::BitFlip(rng.random_range(0..bits)),
            1 => Damage::ZeroSector(rng.random_range(0..sectors)),
            _ => Damage::GarbageSector(rng.random_range(0..sectors), i),
        };
        if let Err(err) = trial(&image, ending, how, &mut tally) {
            failures.push(err);
        }
    }
    // Aimed: every 11th byte of every live record, then each sector it touches.
    for (_, ranges) in image.records.clone() {
        for (at, len) in ranges {
            for byte in (at..at + u64::from(len)).step_by(11) {
                if let Err(err) = trial(&image, ending, Damage::BitFlip(byte * 8 + byte % 8), &mut tally) {
                    failures.push(err);
                }
            }
            for sector in at / 512..=(at + u64::from(len) - 1) / 512 {
                for how in [Damage::ZeroSector(sector), Damage::GarbageSector(sector, at)] {
                    if let Err(err) = trial(&image, ending, how, &mut tally) {
                        failures.push(err);
                    }
                }
            }
        }
    }
    println!("{ending:?} image: {tally:?}, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(tally.hits > 1_000, "the sweep must actually hit live records: {tally:?}");
    tally
}

#[test]
fn fsck_is_clean_on_undamaged_images() {
    // The sweep means nothing if kv-fsck complains about a healthy file.
    for ending in [Ending::Crash, Ending::Close] {
        let image = build_image(ending);
        let disk = Arc::new(SimDisk::from_image(image.bytes.clone()));
        let store = Store::open_storage(disk, Path::new("<sim>"), options(RecoveryMode::TolerateTail, true))
            .expect("healthy image opens");
        let report = store.fsck(&|_, _| {});
        assert_eq!(report.errors(), 0, "{ending:?}: {:?}", report.problems);
        assert_eq!(report.totals.keys, image.truth.len() as u64);
    }
}

#[test]
fn fsck_reports_every_hit_on_a_cleanly_closed_image() {
    // A checkpoint covers everything: no damage may pass as a torn tail.
    let tally = sweep(Ending::Close, 1_000);
    assert_eq!(tally.hits_as_cut_tail, 0);
}

#[test]
fn fsck_reports_every_hit_on_a_crashed_image() {
    // Damage to checkpointed records is an error; damage in the replay tail
    // is an error or a reported cut.
    sweep(Ending::Crash, 1_000);
}
