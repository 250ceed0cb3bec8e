//! Compaction benchmark (issue 5): fill a 64 MiB store to a target live
//! fraction with 8 KiB values, then overwrite 10x the file size in random
//! order with background compaction on. Prints NoSpace errors, write
//! amplification and put latency percentiles, next to a baseline: the same
//! puts into a 1 GiB file with the compactor thread off, where nothing
//! needs compacting.
//!
//! `cargo run --release -p blockkv-engine --example compaction_bench -- 0.5`
//! (argument: live fraction; `--value-bytes N`, default 8192; `--rate N`:
//! offer N puts per second instead of as many as one thread can issue —
//! latencies are then each put's own time, at a load the store sustains;
//! `--rounds N`, default 3: baseline and compacting runs alternate N times
//! and the medians are compared, since one run's p99 on a shared machine
//! swings several-fold).

use blockkv_engine::{Options, Store, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const FILE_BYTES: u64 = 64 * 1024 * 1024;
const BASELINE_FILE_BYTES: u64 = 1024 * 1024 * 1024;

struct Run {
    no_space: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
    stats_before: blockkv_engine::Stats,
    stats_after: blockkv_engine::Stats,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Fills to `live_fraction` of 64 MiB, then overwrites 10x 64 MiB.
fn run(
    file_bytes: u64,
    compactor: bool,
    live_fraction: f64,
    value_bytes: usize,
    rate: Option<f64>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options {
        create_bytes: Some(file_bytes),
        sync: SyncPolicy::Periodic(Duration::from_millis(1000)),
        background_compaction: compactor,
        ..Options::default()
    };
    let store = Store::open(dir.path().join("bench.kvdata"), opts)?;
    let keys = (FILE_BYTES as f64 * live_fraction / value_bytes as f64) as u32;
    let value = vec![0x5au8; value_bytes];
    for i in 0..keys {
        store.put(format!("key-{i:06}").as_bytes(), &value)?;
    }
    let stats_before = store.stats();
    let overwrites = (10 * FILE_BYTES / value_bytes as u64) as usize;
    let mut rng = StdRng::seed_from_u64(1);
    let mut latencies = Vec::with_capacity(overwrites);
    let mut no_space = 0u64;
    let started = Instant::now();
    for n in 0..overwrites {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let key = format!("key-{:06}", rng.random_range(0..keys));
        let at = Instant::now();
        match store.put(key.as_bytes(), &value) {
            Ok(()) => latencies.push(at.elapsed()),
            Err(blockkv_engine::Error::NoSpace { .. }) => no_space += 1,
            Err(err) => return Err(err.into()),
        }
    }
    let elapsed = started.elapsed();
    let stats_after = store.stats();
    store.close()?;
    latencies.sort_unstable();
    Ok(Run { no_space, latencies, elapsed, stats_before, stats_after })
}

/// The median; with an even count, the mean of the two middle values.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, Box<dyn std::error::Error>>
where
    T::Err: std::error::Error + 'static,
{
    match args.iter().position(|a| a == name) {
        Some(at) => Ok(Some(args.get(at + 1).ok_or(format!("{name} needs a value"))?.parse()?)),
        None => Ok(None),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let live_fraction: f64 = args.first().map_or(Ok(0.5), |a| a.parse())?;
    let value_bytes: usize = flag(&args, "--value-bytes")?.unwrap_or(8192);
    let rate: Option<f64> = flag(&args, "--rate")?;
    let rounds: usize = flag(&args, "--rounds")?.unwrap_or(3).max(1);
    println!(
        "live {live_fraction:.2}, {value_bytes} B values, rate {}, {rounds} rounds (baseline, compacting, alternating)",
        rate.map_or("unpaced".to_string(), |r| format!("{r}/s")),
    );
    let (mut p99_base, mut p99_compact, mut amplification) = (Vec::new(), Vec::new(), Vec::new());
    let (mut no_space, mut no_space_base) = (0, 0);
    for round in 1..=rounds {
        let baseline = run(BASELINE_FILE_BYTES, false, live_fraction, value_bytes, rate)?;
        let compacting = run(FILE_BYTES, true, live_fraction, value_bytes, rate)?;
        let (before, after) = (&compacting.stats_before, &compacting.stats_after);
        let user = after.user_bytes_written - before.user_bytes_written;
        let file = (after.log_bytes_written + after.checkpoint_bytes_written)
            - (before.log_bytes_written + before.checkpoint_bytes_written);
        let wa = file as f64 / user as f64;
        no_space += compacting.no_space;
        no_space_base += baseline.no_space;
        println!(
            "round {round}: {} overwrites in {:.1} s (baseline {:.1} s), NoSpace {} (baseline {}), write amplification {wa:.2} (file {} MiB / users {} MiB)",
            compacting.latencies.len() as u64 + compacting.no_space,
            compacting.elapsed.as_secs_f64(),
            baseline.elapsed.as_secs_f64(),
            compacting.no_space,
            baseline.no_space,
            file >> 20,
            user >> 20
        );
        for (name, r) in [("  baseline  ", &baseline), ("  compacting", &compacting)] {
            println!(
                "{name} put p50 {:?} p99 {:?} p999 {:?}",
                percentile(&r.latencies, 0.5),
                percentile(&r.latencies, 0.99),
                percentile(&r.latencies, 0.999)
            );
        }
        println!(
            "  compaction: {} passes, {} blocks reclaimed, {} records moved, {} checkpoints",
            after.compaction_passes,
            after.blocks_reclaimed,
            after.records_moved,
            after.checkpoints - before.checkpoints
        );
        p99_base.push(percentile(&baseline.latencies, 0.99).as_secs_f64() * 1e6);
        p99_compact.push(percentile(&compacting.latencies, 0.99).as_secs_f64() * 1e6);
        amplification.push(wa);
    }
    let (base, compact) = (median(p99_base), median(p99_compact));
    println!(
        "median of {rounds}: put p99 baseline {base:.0} µs, compacting {compact:.0} µs, ratio {:.2}; write amplification {:.2}; NoSpace {no_space} (baseline {no_space_base})",
        compact / base,
        median(amplification)
    );
    Ok(())
}
