//! kv-bench's load (blockkv_tools::bench, what the kv-bench binary runs)
//! against the real kvd: every request counted once, refusals counted as
//! errors, and the keys it wrote readable afterwards.

mod common;

use blockkv_testkit::{Kvd, temp_dir};
use blockkv_tools::bench::{self, Progress, Stop, Workload};
use common::start;
use redis::Commands;

fn workload(kvd: &Kvd, keys: u64, value_bytes: usize, read_ratio: f64, ops: u64) -> Workload {
    Workload {
        ttl_ms: None,
        socket: kvd.socket().to_path_buf(),
        clients: 3,
        pipeline: 8,
        keys,
        value_bytes,
        read_ratio,
        stop: Stop::Ops(ops),
    }
}

#[test]
fn kv_bench_counts_every_request_once_and_leaves_its_keys_readable() {
    // A mixed run of 3,001 requests (not a multiple of the pipeline): the
    // counts add up exactly, nothing fails, and the preloaded keys hold
    // the run's values.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let load = workload(&kvd, 500, 100, 0.5, 3_001);
    bench::preload(&load).expect("preload");
    let outcome = bench::run(&load, &Progress::default()).expect("run");
    assert_eq!(outcome.ops, 3_001);
    assert_eq!(outcome.gets + outcome.puts, outcome.ops);
    assert!(outcome.gets > 1_000 && outcome.puts > 1_000, "a 0.5 read ratio mixes both: {outcome:?}");
    assert_eq!(outcome.errors, 0);
    assert_eq!(outcome.latency_ns.len(), 3_001, "one latency per request");

    let client = redis::Client::open(format!("redis+unix://{}", kvd.socket().display())).expect("client");
    let mut redis = client.get_connection().expect("connect");
    let keys: u64 = redis::cmd("DBSIZE").query(&mut redis).expect("dbsize");
    assert_eq!(keys, 500, "puts only overwrite the preloaded keys");
    for i in [0, 7, 499] {
        let value: Vec<u8> = redis.get(bench::key(i)).expect("get");
        assert_eq!(value, vec![b'x'; 100], "key {i}");
    }
}

#[test]
fn kv_bench_counts_refused_puts_as_errors_and_goes_on() {
    // 2,000 random 8 KiB puts over 2,000 keys (about 1,260 distinct keys,
    // 10 MB) into an 8 MiB file: kvd refuses some with NoSpace; the run
    // still answers all 2,000 and says how many were refused.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let load = workload(&kvd, 2_000, 8 * 1024, 0.0, 2_000);
    let outcome = bench::run(&load, &Progress::default()).expect("run");
    assert_eq!(outcome.ops, 2_000);
    assert_eq!(outcome.puts, 2_000);
    assert!(outcome.errors > 0, "a full file refuses puts: {outcome:?}");
    // Refused puts cost nothing that was stored: every key kvd holds reads back whole.
    let client = redis::Client::open(format!("redis+unix://{}", kvd.socket().display())).expect("client");
    let mut redis = client.get_connection().expect("connect");
    let stored: u64 = redis::cmd("DBSIZE").query(&mut redis).expect("dbsize");
    assert!(stored >= 200, "what fits is stored: {stored} keys");
    let mut found = 0;
    for i in 0..2_000 {
        let value: Option<Vec<u8>> = redis.get(bench::key(i)).expect("get");
        if let Some(value) = value {
            assert_eq!(value, vec![b'x'; 8 * 1024], "key {i}");
            found += 1;
        }
    }
    assert_eq!(found, stored);
}
