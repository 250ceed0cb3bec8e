//! Scan-cursor benchmark (`cargo bench -p blockkv-engine --bench
//! scan_bench`): the time to page through every key with `Store::scan_page`
//! at visit 10 and 1000, and the cost of one page, at 100,000 and 1,000,000
//! keys of 16 bytes with 100-byte values on a real file. A page's cost
//! should not depend on the store's size. Prints a markdown table, each
//! figure the median of three walks. Knobs: BLOCKKV_BENCH_SIZES (comma
//! separated key counts, default "100000,1000000"), BLOCKKV_BENCH_DIR
//! (default ./target/bench-data).

use blockkv_engine::{Options, Store, SyncPolicy};
use std::path::PathBuf;
use std::time::Instant;

const VALUE_BYTES: usize = 100;
const ROUNDS: usize = 3;
const VISITS: [usize; 2] = [10, 1000];

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// "key:" and 12 decimal digits: 16 bytes, as in engine_bench.
fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// One walk from cursor 0 to the end: (seconds, pages, keys).
fn walk(store: &Store, visit: usize) -> (f64, u64, u64) {
    let start = Instant::now();
    let (mut cursor, mut pages, mut keys) = (0, 0u64, 0u64);
    loop {
        let page = store.scan_page(cursor, visit).expect("scan page");
        pages += 1;
        keys += page.keys.len() as u64;
        cursor = page.next;
        if cursor == 0 {
            return (start.elapsed().as_secs_f64(), pages, keys);
        }
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("BLOCKKV_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BLOCKKV_BENCH_SIZES: comma-separated key counts"))
        .collect();
    let dir = PathBuf::from(std::env::var("BLOCKKV_BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    println!("# blockkv scan bench: 16-byte keys, {VALUE_BYTES}-byte values, median of {ROUNDS} walks");
    println!("| keys | visit | walk (s) | pages | µs per page | keys returned | index heap bytes per key |");
    println!("|---|---|---|---|---|---|---|");
    let value = vec![0x5au8; VALUE_BYTES];
    for &count in &sizes {
        let path = dir.join("scan.kvdata");
        let _ = std::fs::remove_file(&path);
        let file_bytes = (count * 200 * 2).max(64 << 20).div_ceil(4096) * 4096;
        let opts = Options {
            sync: SyncPolicy::None,
            create_bytes: Some(file_bytes),
            checkpoint_interval: None,
            checkpoint_log_bytes: u64::MAX,
            ..Options::default()
        };
        let store = Store::open(&path, opts).expect("create bench store");
        for i in 0..count {
            store.put(&key(i), &value).expect("put");
        }
        let stats = store.stats();
        let heap_per_key = stats.index_heap_bytes as f64 / stats.keys as f64;
        for visit in VISITS {
            let mut secs = Vec::new();
            let mut last = (0, 0);
            for _ in 0..ROUNDS {
                let (s, pages, keys) = walk(&store, visit);
                assert_eq!(keys, count, "a walk returns every key once");
                secs.push(s);
                last = (pages, keys);
            }
            let walk_s = median(secs);
            let per_page_us = walk_s * 1e6 / last.0 as f64;
            println!(
                "| {count} | {visit} | {walk_s:.3} | {} | {per_page_us:.2} | {} | {heap_per_key:.1} |",
                last.0, last.1
            );
        }
        // What one page cost before the cursor: a sorted scan reads every record.
        let start = Instant::now();
        let first = store.scan(b"", None, 10).expect("scan");
        assert_eq!(first.len(), 10.min(count as usize));
        println!("| {count} | Store::scan, limit 10 (one call) | {:.3} | 1 | | | |", start.elapsed().as_secs_f64());
        drop(store);
        let _ = std::fs::remove_file(&path);
    }
}
