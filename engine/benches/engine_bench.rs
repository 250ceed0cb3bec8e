//! Engine benchmark (run with `make bench`): 1M keys of 16 bytes with
//! 100-byte values on a real file. Prints a markdown table with the median of
//! three rounds for every figure. Knobs: BLOCKKV_BENCH_KEYS (default
//! 1,000,000), BLOCKKV_BENCH_DIR (default ./target/bench-data; put it on the
//! disk you care about: fdatasync cost is the disk's), BLOCKKV_BENCH_QUICK=1
//! (put, get and index bytes only: for comparing two builds in alternation).

use blockkv_engine::{Options, RecoveryMode, Store, SyncPolicy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 100;
const ROUNDS: usize = 3;
const DURABLE_SECONDS: u64 = 2;

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// "key:" and 12 decimal digits, 16 bytes, rewritten in place.
#[derive(Default)]
struct KeyBuf([u8; 16]);

impl KeyBuf {
    fn of(&mut self, mut i: u64) -> &[u8] {
        self.0[..4].copy_from_slice(b"key:");
        for at in (4..16).rev() {
            self.0[at] = b'0' + (i % 10) as u8;
            i /= 10;
        }
        &self.0
    }
}

/// CPU time this thread has run, in ns (the scheduler's own count): on a
/// shared machine it moves far less than wall time with others' load.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn options(sync: SyncPolicy, bytes: u64) -> Options {
    Options {
        sync,
        create_bytes: Some(bytes),
        checkpoint_interval: None,
        checkpoint_log_bytes: u64::MAX,
        ..Options::default()
    }
}

fn fresh(dir: &Path, name: &str, sync: SyncPolicy, bytes: u64) -> (Store, PathBuf) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    (Store::open(&path, options(sync, bytes)).expect("create bench store"), path)
}

fn main() {
    let keys: u64 = std::env::var("BLOCKKV_BENCH_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = PathBuf::from(std::env::var("BLOCKKV_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    // Records are 40 + 16 + 100 bytes; leave room for snapshots and headroom.
    let file_bytes = (keys * 200 * 2).max(64 << 20).div_ceil(4096) * 4096;
    let value = vec![0x5au8; VALUE_BYTES];
    let mut order: Vec<u64> = (0..keys).collect();
    order.shuffle(&mut StdRng::seed_from_u64(1));
    // Each key is written into one reused stack buffer: no allocation, and
    // hot in cache, as a caller's own key would be. (A precomputed Vec of
    // 1M keys costs a cache miss of its own per lookup: 776k vs 1.08M gets/s.)
    let mut name = KeyBuf::default();

    println!("# blockkv engine bench: {keys} keys, 16-byte keys, {VALUE_BYTES}-byte values, median of {ROUNDS}");
    println!("| measurement | median | rounds |");
    println!("|---|---|---|");

    // Single-thread put, sync none: fill a fresh store each round.
    let mut put_rates = Vec::new();
    let mut put_cpu = Vec::new();
    let mut kept = None;
    for _ in 0..ROUNDS {
        let (store, path) = fresh(&dir, "bench.kvdata", SyncPolicy::None, file_bytes);
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        for &i in &order {
            store.put(name.of(i), &value).expect("put");
        }
        put_rates.push(keys as f64 / start.elapsed().as_secs_f64());
        put_cpu.push((thread_cpu_ns() - cpu) as f64 / keys as f64);
        if let Some((old, _)) = kept.replace((store, path)) {
            drop::<Store>(old);
        }
    }
    row("put, 1 thread, sync none (ops/s)", &put_rates);
    row("  put, CPU ns per op", &put_cpu);
    let (store, path) = kept.expect("a store");

    // Single-thread get of every key in random order.
    let mut get_rates = Vec::new();
    let mut get_cpu = Vec::new();
    for round in 0..ROUNDS {
        let mut lookups = order.clone();
        lookups.shuffle(&mut StdRng::seed_from_u64(10 + round as u64));
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        for &i in &lookups {
            let got = store.get(name.of(i)).expect("get");
            assert_eq!(got.as_deref().map(<[u8]>::len), Some(VALUE_BYTES));
        }
        get_rates.push(keys as f64 / start.elapsed().as_secs_f64());
        get_cpu.push((thread_cpu_ns() - cpu) as f64 / keys as f64);
    }
    row("get, 1 thread (ops/s)", &get_rates);
    row("  get, CPU ns per op", &get_cpu);

    let stats = store.stats();
    let index_per_key = stats.index_heap_bytes as f64 / stats.keys as f64;
    println!(
        "| index heap bytes per key (16-byte keys; keys are not held in memory) | {index_per_key:.1} | {} keys |",
        stats.keys
    );

    if std::env::var_os("BLOCKKV_BENCH_QUICK").is_some() {
        drop(store);
        let _ = std::fs::remove_file(&path);
        return;
    }

    // Open from a checkpoint (clean close) and by full scan.
    drop(store);
    let mut open_ckpt = Vec::new();
    let mut open_scan = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let store = Store::open(&path, options(SyncPolicy::None, file_bytes)).expect("reopen");
        open_ckpt.push(start.elapsed().as_secs_f64());
        assert_eq!(store.stats().keys, keys);
        drop(store);
        let start = Instant::now();
        let scan_opts =
            Options { read_only: true, recovery: RecoveryMode::Salvage, ..options(SyncPolicy::None, file_bytes) };
        let store = Store::open(&path, scan_opts).expect("full scan");
        open_scan.push(start.elapsed().as_secs_f64());
        assert_eq!(store.stats().keys, keys);
    }
    row_s("open from checkpoint (s)", &open_ckpt);
    row_s("open by full parallel scan (s)", &open_scan);
    let _ = std::fs::remove_file(&path);

    // Durable puts through group commit.
    for writers in [1usize, 8, 64] {
        let mut rates = Vec::new();
        let mut per_sync = Vec::new();
        let mut sync_ms = Vec::new();
        for _ in 0..ROUNDS {
            let (store, path) = fresh(&dir, "durable.kvdata", SyncPolicy::Always, 256 << 20);
            let store = Arc::new(store);
            let syncs_before = store.stats().syncs;
            let (rate, puts, secs) = durable_rate(store.clone(), writers);
            let syncs = (store.stats().syncs - syncs_before).max(1) as f64;
            rates.push(rate);
            per_sync.push(puts as f64 / syncs);
            sync_ms.push(secs * 1e3 / syncs);
            drop(store);
            let _ = std::fs::remove_file(path);
        }
        row(&format!("durable put, {writers} writers, sync always (ops/s)"), &rates);
        row_f(&format!("  puts per fdatasync, {writers} writers"), &per_sync);
        row_f(&format!("  wall ms per fdatasync, {writers} writers"), &sync_ms);
    }
}

fn durable_rate(store: Arc<Store>, writers: usize) -> (f64, u64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (store, done, stop) = (store.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let value = vec![0xa5u8; VALUE_BYTES];
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.put(&key(w as u64 * 10_000_000 + i % 100_000), &value).expect("durable put");
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(DURABLE_SECONDS));
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().expect("writer");
    }
    let secs = start.elapsed().as_secs_f64();
    let puts = done.load(Ordering::Relaxed);
    (puts as f64 / secs, puts, secs)
}

fn row_f(name: &str, values: &[f64]) {
    let all: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
    println!("| {name} | {:.2} | {} |", median(values.to_vec()), all.join(", "));
}

fn row(name: &str, rates: &[f64]) {
    let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    println!("| {name} | {:.0} | {} |", median(rates.to_vec()), all.join(", "));
}

fn row_s(name: &str, secs: &[f64]) {
    let all: Vec<String> = secs.iter().map(|s| format!("{s:.3}")).collect();
    println!("| {name} | {:.3} | {} |", median(secs.to_vec()), all.join(", "));
}
