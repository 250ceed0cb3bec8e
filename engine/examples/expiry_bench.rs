//! Active expiry on the system clock, in a real file with every background
//! thread on, and the cost the TTL table adds to open.
//!
//! `cargo run --release -p blockkv-engine --example expiry_bench -- expire 300000 300`
//! sets N keys (16-byte values, in batches of 4096 as pipelined SETs
//! become) with a TTL of T ms, then prints key_count() each 500 ms from
//! the moment the last key expired, the time until fewer than 1% and until
//! none are counted, live bytes before and after, and the CPU time of the
//! expiry thread (from /proc) against the wall time it ran.
//! `... -- expire 1500000 500 --value-bytes 100` is the session-store case.
//!
//! `... -- open 1000000` writes N keys with a one-hour TTL, closes, then
//! times `Store::open` and the TTL table's rebuild alone (the rest of open
//! is what open cost without it), and prints the table's bytes per key;
//! `--no-ttl` writes the keys without a TTL (the rebuild still reads
//! every indexed record's header).
//!
//! `... -- clear 1000000` writes N keys and times `Store::clear`.

use blockkv_engine::{BatchOp, Options, Store, SyncPolicy};
use std::time::{Duration, Instant};

const BATCH_OPS: usize = 4096;
const POLL_MS: u64 = 500;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let flag_value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let value_bytes = flag_value("--value-bytes", 16);
    match args.first().map(String::as_str) {
        Some("open") => open_cost(number(1, 1_000_000), value_bytes, !args.iter().any(|a| a == "--no-ttl")),
        Some("clear") => clear_cost(number(1, 1_000_000), value_bytes),
        _ => expire(number(1, 300_000), number(2, 300), value_bytes),
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("session:{i:08}").into_bytes()
}

/// A file big enough for `keys` records and as many tombstones, twice over.
fn file_bytes(keys: u64, value_bytes: usize) -> u64 {
    let per_key = 2 * (40 + 16 + value_bytes as u64) + 2 * (40 + 16);
    (keys * per_key).max(64 << 20).next_multiple_of(4096)
}

fn write_keys(store: &Store, keys: u64, value_bytes: usize, ttl: Option<Duration>) -> blockkv_engine::Result<()> {
    let value = vec![b'v'; value_bytes];
    let mut ops = Vec::with_capacity(BATCH_OPS);
    for i in 0..keys {
        ops.push(BatchOp::Put { key: key(i), value: value.clone(), ttl });
        if ops.len() == BATCH_OPS {
            store.write_batch(&ops)?;
            ops.clear();
        }
    }
    store.write_batch(&ops)
}

fn expire(keys: u64, ttl_ms: u64, value_bytes: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options {
        create_bytes: Some(file_bytes(keys, value_bytes)),
        sync: SyncPolicy::Periodic(Duration::from_millis(1000)),
        ..Options::default()
    };
    let store = Store::open(dir.path().join("expiry.kvdata"), opts)?;
    let started = Instant::now();
    write_keys(&store, keys, value_bytes, Some(Duration::from_millis(ttl_ms)))?;
    let set_secs = started.elapsed().as_secs_f64();
    // Every key's expiry is at most ttl_ms after the end of the writes.
    let all_expired = Instant::now() + Duration::from_millis(ttl_ms);
    let before = store.stats();
    println!(
        "set {keys} keys with a {ttl_ms} ms ttl in {set_secs:.2} s: {} keys, {} with a ttl, {:.1} MiB live",
        before.keys,
        before.keys_with_ttl,
        before.live_bytes as f64 / (1 << 20) as f64
    );
    std::thread::sleep(all_expired.saturating_duration_since(Instant::now()));
    let cpu_before = expiry_thread_cpu_s();
    let t0 = Instant::now();
    let (mut under_1pct, mut zero) = (None, None);
    let mut next_print = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(20) && zero.is_none() {
        let count = store.key_count();
        if under_1pct.is_none() && count < keys / 100 {
            under_1pct = Some(t0.elapsed());
        }
        if count == 0 {
            zero = Some(t0.elapsed());
        }
        if t0.elapsed() >= next_print || zero.is_some() {
            println!("  +{:>5} ms after the last expiry: {count} keys", t0.elapsed().as_millis());
            next_print += Duration::from_millis(POLL_MS);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = expiry_thread_cpu_s().zip(cpu_before).map(|(after, before)| after - before);
    let after = store.stats();
    let show = |d: Option<Duration>| d.map_or("not within 20 s".to_string(), |d| format!("{} ms", d.as_millis()));
    println!("under 1% counted after {}, none after {}", show(under_1pct), show(zero));
    println!(
        "live bytes {:.1} MiB -> {:.1} MiB, expired_keys {}, keys_with_ttl {}",
        before.live_bytes as f64 / (1 << 20) as f64,
        after.live_bytes as f64 / (1 << 20) as f64,
        after.expired_keys,
        after.keys_with_ttl
    );
    if let Some(cpu) = cpu {
        println!("expiry thread: {cpu:.2} s of CPU in {wall:.2} s ({:.0}% of a core)", 100.0 * cpu / wall);
    }
    store.close()?;
    Ok(())
}

fn open_cost(keys: u64, value_bytes: usize, with_ttl: bool) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("open.kvdata");
    let opts = Options {
        create_bytes: Some(file_bytes(keys, value_bytes)),
        sync: SyncPolicy::None,
        checkpoint_interval: None,
        ..Options::default()
    };
    let store = Store::open(&path, opts.clone())?;
    write_keys(&store, keys, value_bytes, with_ttl.then_some(Duration::from_secs(3600)))?;
    store.close()?;
    for round in 0..3 {
        let started = Instant::now();
        let store = Store::open(&path, opts.clone())?;
        let open_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let counted = store.rebuild_ttl_table();
        let rebuild_ms = started.elapsed().as_secs_f64() * 1e3;
        let stats = store.stats();
        println!(
            "open {round}: {open_ms:.0} ms with the ttl table, of which its rebuild {rebuild_ms:.0} ms ({counted} keys with a ttl of {}); without it {:.0} ms",
            stats.keys,
            open_ms - rebuild_ms
        );
        if with_ttl {
            println!(
                "  ttl table: {} bytes, {:.1} bytes per key with a ttl",
                stats.ttl_heap_bytes,
                stats.ttl_heap_bytes as f64 / stats.keys_with_ttl.max(1) as f64
            );
        }
        store.close()?;
    }
    Ok(())
}

fn clear_cost(keys: u64, value_bytes: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options { create_bytes: Some(file_bytes(keys, value_bytes)), ..Options::default() };
    let store = Store::open(dir.path().join("clear.kvdata"), opts)?;
    write_keys(&store, keys, value_bytes, None)?;
    let started = Instant::now();
    let removed = store.clear()?;
    let stats = store.stats();
    println!(
        "clear of {removed} keys: {:.0} ms, {} keys left, {} checkpoints",
        started.elapsed().as_secs_f64() * 1e3,
        stats.keys,
        stats.checkpoints
    );
    store.close()?;
    Ok(())
}

/// CPU seconds (user + system) of the `blockkv-expiry` thread, from /proc.
fn expiry_thread_cpu_s() -> Option<f64> {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != "blockkv-expiry" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        return Some((utime + stime) / ticks_per_s);
    }
    None
}
