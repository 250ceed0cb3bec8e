//! Multi-key RESP writes across kill -9 of a real kvd: a RENAME, a MULTI/EXEC
//! that moves an amount between two keys, and FLUSHALL each land whole or
//! not at all, however the process dies (`--sync always`, killed at a
//! random moment while a client writes). The seed is printed; set
//! BLOCKKV_RESP_KILL_SEED to replay one.

use blockkv_testkit::{Kvd, Launch, temp_dir};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Connection;
use std::path::Path;
use std::time::Duration;

/// Kill cycles per workload.
const CYCLES: usize = 12;
/// The total the transfers keep between the two accounts.
const TOTAL: i64 = 1000;
/// Keys each flush cycle writes before FLUSHALL.
const FLUSH_KEYS: usize = 200;

fn seed() -> u64 {
    let seed = std::env::var("BLOCKKV_RESP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (BLOCKKV_RESP_KILL_SEED={seed} replays it)");
    seed
}

fn start(dir: &Path) -> Kvd {
    Launch::new().args(["--sync", "always"]).start(dir)
}

fn connect(kvd: &Kvd) -> Connection {
    let url = format!("redis+unix://{}", kvd.socket().display());
    redis::Client::open(url).expect("client").get_connection().expect("connect")
}

/// Runs `work` on a thread against `kvd` until it fails (kvd is gone), and
/// kills kvd after a random moment.
fn kill_while(kvd: Kvd, rng: &mut StdRng, work: impl FnOnce(Connection) + Send + 'static) {
    let con = connect(&kvd);
    let writer = std::thread::spawn(move || work(con));
    std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
    kvd.kill();
    writer.join().expect("the writer stops when kvd is gone");
}

#[test]
fn renames_and_transactions_are_whole_after_kill_9() {
    // After each kill exactly one of the two names holds the token, and the two accounts sum to TOTAL.
    let mut rng = StdRng::seed_from_u64(seed());
    let dir = temp_dir();
    for cycle in 0..CYCLES {
        let kvd = start(dir.path());
        let mut con = connect(&kvd);
        if cycle == 0 {
            redis::cmd("MSET").arg(&["ren:a", "token", "acct:x", "1000", "acct:y", "0"]).exec(&mut con).expect("init");
        }
        let names: (Option<String>, Option<String>) =
            redis::cmd("MGET").arg("ren:a").arg("ren:b").query(&mut con).expect("mget");
        assert!(
            matches!(&names, (Some(t), None) | (None, Some(t)) if t == "token"),
            "cycle {cycle}: one name holds the token, got {names:?}"
        );
        let (x, y): (i64, i64) = redis::cmd("MGET").arg("acct:x").arg("acct:y").query(&mut con).expect("mget");
        assert_eq!(x + y, TOTAL, "cycle {cycle}: the accounts sum to {TOTAL}, got {x} + {y}");
        let from_a = names.0.is_some();
        let step: i64 = rng.random_range(1..10);
        kill_while(kvd, &mut rng, move |mut con| {
            let mut from_a = from_a;
            loop {
                let (from, to) = if from_a { ("ren:a", "ren:b") } else { ("ren:b", "ren:a") };
                if redis::cmd("RENAME").arg(from).arg(to).exec(&mut con).is_err() {
                    return;
                }
                from_a = !from_a;
                let moved: redis::RedisResult<()> =
                    redis::pipe().atomic().decr("acct:x", step).incr("acct:y", step).ignore().ignore().query(&mut con);
                if moved.is_err() {
                    return;
                }
            }
        });
    }
}

#[test]
fn flushall_is_whole_after_kill_9() {
    // Each round writes FLUSH_KEYS keys in one MSET, then FLUSHALL: after a kill, all or none are there.
    let mut rng = StdRng::seed_from_u64(seed());
    let dir = temp_dir();
    for cycle in 0..CYCLES {
        let kvd = start(dir.path());
        let mut con = connect(&kvd);
        let count: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
        assert!(count == 0 || count == FLUSH_KEYS as i64, "cycle {cycle}: all or none of the keys, got {count}");
        kill_while(kvd, &mut rng, |mut con| {
            let mut mset = redis::cmd("MSET");
            for i in 0..FLUSH_KEYS {
                mset.arg(format!("f:{i}")).arg(vec![b'v'; 512]);
            }
            loop {
                if mset.exec(&mut con).is_err() || redis::cmd("FLUSHALL").exec(&mut con).is_err() {
                    return;
                }
            }
        });
    }
}
