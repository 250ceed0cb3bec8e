//! `make run` until the daemon exists: opens (or creates) a data file, shows
//! what recovery found, writes and reads a few keys, checkpoints, prints the
//! store's numbers, and closes cleanly. Run it twice to see a clean reopen,
//! or kill it with Ctrl-C between runs of `--hold` to see recovery at work.
//!
//! Usage: cargo run --release -p blockkv-engine --example demo [PATH] [--hold]

use blockkv_engine::{Options, Store, SyncPolicy};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().filter(|a| a != "--hold").unwrap_or_else(|| "blockkv-demo.kvdata".into());
    let hold = std::env::args().any(|a| a == "--hold");
    let opts = Options { sync: SyncPolicy::Always, create_bytes: Some(64 * 1024 * 1024), ..Options::default() };
    let store = Store::open(&path, opts)?;
    println!("opened {path}");
    println!("recovery: {}", store.recovery_report());
    let runs = match store.get(b"demo:runs")? {
        Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0) + 1,
        None => 1,
    };
    store.put(b"demo:runs", runs.to_string().as_bytes())?;
    store.put_with_ttl(b"demo:session", b"expires in 60 s", Some(Duration::from_secs(60)))?;
    for i in 0..1000u32 {
        store.put(format!("demo:item:{i:04}").as_bytes(), format!("value {i} of run {runs}").as_bytes())?;
    }
    println!("run {runs}: wrote 1002 keys (sync always)");
    println!("demo:item:0042 = {:?}", store.get(b"demo:item:0042")?.map(|v| String::from_utf8_lossy(&v).into_owned()));
    println!("ttl demo:session = {:?}", store.ttl(b"demo:session")?);
    println!(
        "first keys: {:?}",
        store.scan(b"demo:item:", None, 3)?.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect::<Vec<_>>()
    );
    let info = store.checkpoint()?;
    println!(
        "checkpoint {} covers lsn {} ({} keys, {} snapshot blocks, {:.1} ms)",
        info.id,
        info.covered_lsn,
        info.entries,
        info.snapshot_blocks,
        info.elapsed.as_secs_f64() * 1e3
    );
    let stats = store.stats();
    println!(
        "keys {}, live {} B, dead {} B, blocks free {} of {}, syncs {}, index {} B",
        stats.keys,
        stats.live_bytes,
        stats.dead_bytes,
        stats.blocks_free,
        stats.block_count,
        stats.syncs,
        stats.index_heap_bytes
    );
    if hold {
        for i in 0..10u32 {
            store.put(format!("demo:after-checkpoint:{i}").as_bytes(), b"replayed after a kill")?;
        }
        println!("wrote 10 keys after the checkpoint; holding the store open:");
        println!("kill -9 this process and run again to watch recovery replay them");
        std::thread::park();
    }
    store.close()?;
    println!("closed cleanly");
    Ok(())
}
