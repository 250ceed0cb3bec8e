//! Compaction benchmark (issue 5): fill a 64 MiB store to a target live
//! fraction with 8 KiB values, then overwrite 10x the file size in random
//! order with background compaction on. Prints NoSpace errors, write
//! amplification and put latency percentiles.
//!
//! `cargo run --release -p blockkv-engine --example compaction_bench -- 0.5`

use blockkv_engine::{Options, Store, SyncPolicy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const FILE_BYTES: u64 = 64 * 1024 * 1024;
const VALUE_BYTES: usize = 8 * 1024;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let live_fraction: f64 = std::env::args().nth(1).map_or(Ok(0.5), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.kvdata");
    let opts = Options {
        create_bytes: Some(FILE_BYTES),
        sync: SyncPolicy::Periodic(Duration::from_millis(1000)),
        ..Options::default()
    };
    let store = Store::open(&path, opts)?;
    let keys = (FILE_BYTES as f64 * live_fraction / VALUE_BYTES as f64) as u32;
    let value = vec![0x5au8; VALUE_BYTES];
    for i in 0..keys {
        store.put(format!("key-{i:06}").as_bytes(), &value)?;
    }
    let filled = store.stats();
    let overwrites = (10 * FILE_BYTES / VALUE_BYTES as u64) as usize;
    let mut rng = StdRng::seed_from_u64(1);
    let mut latencies = Vec::with_capacity(overwrites);
    let mut no_space = 0u64;
    let started = Instant::now();
    for _ in 0..overwrites {
        let key = format!("key-{:06}", rng.random_range(0..keys));
        let at = Instant::now();
        match store.put(key.as_bytes(), &value) {
            Ok(()) => latencies.push(at.elapsed()),
            Err(blockkv_engine::Error::NoSpace { .. }) => no_space += 1,
            Err(err) => return Err(err.into()),
        }
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    latencies.sort_unstable();
    let user = stats.user_bytes_written - filled.user_bytes_written;
    let file = (stats.log_bytes_written + stats.checkpoint_bytes_written)
        - (filled.log_bytes_written + filled.checkpoint_bytes_written);
    println!(
        "live {live_fraction:.2}: {keys} keys x 8 KiB, {overwrites} overwrites in {:.1} s, NoSpace {no_space}",
        elapsed.as_secs_f64()
    );
    println!(
        "write amplification during overwrites {:.2} (file {} MiB / users {} MiB); overall {:.2}",
        file as f64 / user as f64,
        file >> 20,
        user >> 20,
        stats.write_amplification()
    );
    println!(
        "put p50 {:?} p99 {:?} p999 {:?}; compaction: {} passes, {} blocks reclaimed, {} records moved",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        stats.compaction_passes,
        stats.blocks_reclaimed,
        stats.records_moved
    );
    store.close()?;
    Ok(())
}
