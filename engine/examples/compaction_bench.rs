//! Compaction benchmark: fill a 64 MiB store to a target live
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
//! swings several-fold; `--interval-ms N`, default 500: the width of the
//! intervals of the put p99 over time; `--json PATH`: also write every
//! round's figures, each run's p99 per interval and the medians as JSON, the
//! input of bench/plot.sh).

use blockkv_engine::{Options, Store, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const FILE_BYTES: u64 = 64 * 1024 * 1024;
const BASELINE_FILE_BYTES: u64 = 1024 * 1024 * 1024;

struct Run {
    no_space: u64,
    /// Every successful put's latency, sorted.
    latencies: Vec<Duration>,
    /// The p99 of the puts that started in each interval, in µs.
    interval_p99_us: Vec<f64>,
    elapsed: Duration,
    stats_before: blockkv_engine::Stats,
    stats_after: blockkv_engine::Stats,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// The p99 of each interval's latencies, in µs (an empty interval: 0).
fn interval_p99s(mut intervals: Vec<Vec<Duration>>) -> Vec<f64> {
    intervals
        .iter_mut()
        .map(|latencies| {
            latencies.sort_unstable();
            if latencies.is_empty() { 0.0 } else { percentile(latencies, 0.99).as_secs_f64() * 1e6 }
        })
        .collect()
}

/// Fills to `live_fraction` of 64 MiB, then overwrites 10x 64 MiB.
fn run(
    file_bytes: u64,
    compactor: bool,
    live_fraction: f64,
    value_bytes: usize,
    rate: Option<f64>,
    interval: Duration,
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
    let mut intervals: Vec<Vec<Duration>> = Vec::new();
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
        let slot = (at.duration_since(started).as_nanos() / interval.as_nanos().max(1)) as usize;
        match store.put(key.as_bytes(), &value) {
            Ok(()) => {
                let latency = at.elapsed();
                latencies.push(latency);
                if intervals.len() <= slot {
                    intervals.resize_with(slot + 1, Vec::new);
                }
                intervals[slot].push(latency);
            }
            Err(blockkv_engine::Error::NoSpace { .. }) => no_space += 1,
            Err(err) => return Err(err.into()),
        }
    }
    let elapsed = started.elapsed();
    let stats_after = store.stats();
    store.close()?;
    latencies.sort_unstable();
    let interval_p99_us = interval_p99s(intervals);
    Ok(Run { no_space, latencies, interval_p99_us, elapsed, stats_before, stats_after })
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

/// One run's figures as a JSON object (numbers only, so no escaping).
fn run_json(run: &Run) -> String {
    let us = |p: f64| percentile(&run.latencies, p).as_secs_f64() * 1e6;
    let series: Vec<String> = run.interval_p99_us.iter().map(|v| format!("{v:.1}")).collect();
    format!(
        "{{\"puts\": {}, \"no_space\": {}, \"elapsed_s\": {:.3}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \"p999_us\": {:.1}, \"interval_p99_us\": [{}]}}",
        run.latencies.len(),
        run.no_space,
        run.elapsed.as_secs_f64(),
        us(0.5),
        us(0.99),
        us(0.999),
        series.join(", ")
    )
}

/// Per interval, the median over the rounds of that interval's p99.
fn median_series(runs: &[Vec<f64>]) -> Vec<f64> {
    let length = runs.iter().map(Vec::len).min().unwrap_or(0);
    (0..length).map(|i| median(runs.iter().map(|r| r[i]).collect())).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let live_fraction: f64 = args.first().map_or(Ok(0.5), |a| a.parse())?;
    let value_bytes: usize = flag(&args, "--value-bytes")?.unwrap_or(8192);
    let rate: Option<f64> = flag(&args, "--rate")?;
    let rounds: usize = flag(&args, "--rounds")?.unwrap_or(3).max(1);
    let interval_ms: u64 = flag(&args, "--interval-ms")?.unwrap_or(500).max(1);
    let json_path: Option<String> = flag(&args, "--json")?;
    let interval = Duration::from_millis(interval_ms);
    println!(
        "live {live_fraction:.2}, {value_bytes} B values, rate {}, {rounds} rounds (baseline, compacting, alternating)",
        rate.map_or("unpaced".to_string(), |r| format!("{r}/s")),
    );
    let (mut p99_base, mut p99_compact, mut amplification) = (Vec::new(), Vec::new(), Vec::new());
    let (mut series_base, mut series_compact) = (Vec::new(), Vec::new());
    let (mut no_space, mut no_space_base) = (0, 0);
    let mut rounds_json = Vec::new();
    for round in 1..=rounds {
        let baseline = run(BASELINE_FILE_BYTES, false, live_fraction, value_bytes, rate, interval)?;
        let compacting = run(FILE_BYTES, true, live_fraction, value_bytes, rate, interval)?;
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
        let checkpoints = after.checkpoints - before.checkpoints;
        println!(
            "  compaction: {} passes, {} blocks reclaimed, {} records moved, {checkpoints} checkpoints",
            after.compaction_passes, after.blocks_reclaimed, after.records_moved,
        );
        rounds_json.push(format!(
            "    {{\"round\": {round}, \"write_amplification\": {wa:.3}, \"compaction_passes\": {}, \"blocks_reclaimed\": {}, \"records_moved\": {}, \"checkpoints\": {checkpoints},\n     \"baseline\": {},\n     \"compacting\": {}}}",
            after.compaction_passes,
            after.blocks_reclaimed,
            after.records_moved,
            run_json(&baseline),
            run_json(&compacting)
        ));
        p99_base.push(percentile(&baseline.latencies, 0.99).as_secs_f64() * 1e6);
        p99_compact.push(percentile(&compacting.latencies, 0.99).as_secs_f64() * 1e6);
        amplification.push(wa);
        series_base.push(baseline.interval_p99_us);
        series_compact.push(compacting.interval_p99_us);
    }
    let (base, compact) = (median(p99_base), median(p99_compact));
    let wa = median(amplification);
    println!(
        "median of {rounds}: put p99 baseline {base:.0} µs, compacting {compact:.0} µs, ratio {:.2}; write amplification {wa:.2}; NoSpace {no_space} (baseline {no_space_base})",
        compact / base,
    );
    if let Some(path) = json_path {
        let list = |v: Vec<f64>| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ");
        let json = format!(
            "{{\n  \"bench\": \"compaction\",\n  \"params\": {{\"live_fraction\": {live_fraction}, \"value_bytes\": {value_bytes}, \"rate_per_s\": {}, \"rounds\": {rounds}, \"interval_ms\": {interval_ms}, \"file_bytes\": {FILE_BYTES}, \"baseline_file_bytes\": {BASELINE_FILE_BYTES}}},\n  \"summary\": {{\"baseline_p99_us\": {base:.1}, \"compacting_p99_us\": {compact:.1}, \"p99_ratio\": {:.3}, \"write_amplification\": {wa:.3}, \"no_space\": {no_space}, \"no_space_baseline\": {no_space_base}}},\n  \"median_interval_p99_us\": {{\"baseline\": [{}], \"compacting\": [{}]}},\n  \"rounds\": [\n{}\n  ]\n}}\n",
            rate.map_or("null".to_string(), |r| r.to_string()),
            compact / base,
            list(median_series(&series_base)),
            list(median_series(&series_compact)),
            rounds_json.join(",\n")
        );
        std::fs::write(&path, json)?;
        println!("JSON: {path}");
    }
    Ok(())
}
