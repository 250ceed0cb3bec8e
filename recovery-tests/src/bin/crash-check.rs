//! crash-check: holds a restarted kvd to the writers' logs
//! (blockkv_recovery_tests::check has the rule). GETs every key of the run,
//! scans the test's prefix for keys that should not exist, and prints one
//! line per violation, then `summary ...` and `recovery: ...` lines.
//! With no violation it writes the settled state for the next cycle.
//!
//! Exit 0: every key as allowed; 1: violations; 2: operational error
//! (kvd unreachable, a log that does not parse).

use anyhow::{Context, bail};
use blockkv_protocol::{Request, Response, StatsReply};
use blockkv_recovery_tests::check::{Model, judge};
use blockkv_recovery_tests::keyspace::{KEY_PREFIX, KeyRef};
use blockkv_recovery_tests::oplog::read_logs;
use blockkv_recovery_tests::state::State;
use blockkv_testkit::Client;
use clap::Parser;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "crash-check", about = "check a restarted kvd against crash-writer's logs")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    /// The cycle's log directory (crash-writer --log-dir).
    #[arg(long)]
    log_dir: PathBuf,
    /// The state the previous check settled (missing: a new data file).
    #[arg(long)]
    state_in: PathBuf,
    /// Where to write the settled state when every key passes.
    #[arg(long)]
    state_out: PathBuf,
    #[arg(long, default_value_t = 8)]
    threads: u32,
    #[arg(long, default_value_t = 32)]
    keys_per_thread: u32,
}

/// Keys per SCAN page.
const SCAN_PAGE_KEYS: u32 = 10_000;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("crash-check: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns the number of violations printed.
fn run(args: &Args) -> anyhow::Result<usize> {
    let prior = State::load(&args.state_in).map_err(anyhow::Error::msg)?;
    let logs = read_logs(&args.log_dir).map_err(anyhow::Error::msg)?;
    let model = Model::build(&prior, &logs, args.threads, args.keys_per_thread).map_err(anyhow::Error::msg)?;
    let mut client = Client::connect(&args.socket).map_err(anyhow::Error::msg).context("cannot reach kvd")?;
    let mut violations = model.violations.clone();
    let mut settled = State::default();
    let mut in_flight_applied = 0u64;
    for (key, expect) in &model.keys {
        let observed = match call(&mut client, Request::Get { key: key.name() })? {
            Response::Value(value) => value,
            Response::Error { kind, message } => {
                violations.push(format!("{key}: get failed: {kind}: {message}"));
                continue;
            }
            other => bail!("get answered {other:?}"),
        };
        match judge(*key, expect, observed.as_deref(), args.keys_per_thread) {
            Ok(value) => {
                if expect.in_flight.is_some_and(|in_flight| in_flight.put == value && value != expect.acked) {
                    in_flight_applied += 1;
                }
                if let Some(written) = value {
                    settled.present.insert(*key, written);
                }
            }
            Err(violation) => violations.push(violation),
        }
    }
    violations.extend(scan_violations(&mut client, args, &settled)?);
    for violation in &violations {
        println!("VIOLATION {violation}");
    }
    let stats = match call(&mut client, Request::Stats)? {
        Response::Stats(stats) => stats,
        other => bail!("stats answered {other:?}"),
    };
    print_summary(&model, &settled, in_flight_applied, violations.len(), &stats);
    if violations.is_empty() {
        settled.save(&args.state_out).map_err(anyhow::Error::msg)?;
    }
    Ok(violations.len())
}

/// Every key under the test's prefix must be a key of the run, and the
/// scan must list exactly the keys that GET found (`settled`, for the keys
/// that passed).
fn scan_violations(client: &mut Client, args: &Args, settled: &State) -> anyhow::Result<Vec<String>> {
    let mut violations = Vec::new();
    let mut listed = BTreeSet::new();
    let mut start_after = None;
    loop {
        let request = Request::Scan {
            prefix: KEY_PREFIX.as_bytes().to_vec(),
            start_after: start_after.clone(),
            limit: SCAN_PAGE_KEYS,
            values: false,
        };
        let (items, more) = match call(client, request)? {
            Response::Keys { items, more } => (items, more),
            Response::Error { kind, message } => {
                violations.push(format!("scan failed: {kind}: {message}"));
                return Ok(violations);
            }
            other => bail!("scan answered {other:?}"),
        };
        for item in &items {
            match KeyRef::parse(&item.key) {
                Some(key) if key.thread < args.threads && key.index < args.keys_per_thread => {
                    listed.insert(key);
                }
                _ => violations
                    .push(format!("scan lists {:?}, not a key of this run", String::from_utf8_lossy(&item.key))),
            }
        }
        start_after = items.last().map(|item| item.key.clone());
        if !more || start_after.is_none() {
            break;
        }
    }
    for key in listed.iter().filter(|key| !settled.present.contains_key(key)) {
        // Keys that failed their own check are reported already; this catches
        // a scan that lists a key GET says is absent.
        violations.push(format!("{key}: scan lists it, get says absent (or it failed its check above)"));
    }
    for key in settled.present.keys().filter(|key| !listed.contains(key)) {
        violations.push(format!("{key}: get finds a value, scan does not list the key"));
    }
    Ok(violations)
}

fn print_summary(model: &Model, settled: &State, in_flight_applied: u64, violations: usize, stats: &StatsReply) {
    let space = &stats.space;
    let used_blocks = space.block_count.saturating_sub(space.blocks_free);
    let used_percent = used_blocks * 100 / space.block_count.max(1);
    println!(
        "summary keys={} present={} acked={} in_flight={} in_flight_applied={in_flight_applied} \
         violations={violations} space_used_percent={used_percent}",
        model.keys.len(),
        settled.present.len(),
        model.ops_acked,
        model.in_flight,
    );
    println!("recovery: {}", stats.recovery.text);
}

fn call(client: &mut Client, request: Request) -> anyhow::Result<Response> {
    client.call(&request).map_err(|err| anyhow::anyhow!("{} failed: {err}", request.name()))
}
