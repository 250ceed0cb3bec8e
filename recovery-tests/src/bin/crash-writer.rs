//! crash-writer: the load of one crash-test cycle. W threads, each on its
//! own connection, each owning K keys, send seeded random puts (8 B to
//! 300 KiB, mostly small) and deletes one at a time, logging each request
//! before it is sent and its answer after (blockkv_recovery_tests::oplog).
//! kvd dying (a broken connection) is the normal end. With
//! `--compact-every-ms`, one more connection asks for a compaction that
//! often, so kills land in compactions forced while the writers run.
//!
//! Prints one summary line: `acked=N puts=N deletes=N refused=N in_flight=N
//! unknown=N compactions=N`. Exit 0; 1 if a request got an answer that leaves its
//! outcome open (I/O error, poisoned store ...), a protocol error, or kvd
//! was still alive at `--max-seconds`; 2 on an operational error.

use anyhow::Context;
use blockkv_protocol::{ErrorKind, Request, Response};
use blockkv_recovery_tests::keyspace::{KEYS_PER_THREAD_MAX, KeyRef, OpId, THREADS_MAX, Written, pick_value_bytes};
use blockkv_recovery_tests::oplog::{LogWriter, OpKind, log_path};
use blockkv_recovery_tests::plan::thread_seed;
use blockkv_testkit::{CallError, Client};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "crash-writer", about = "logged random puts and deletes against kvd until it dies")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    /// Directory for the per-thread logs (created).
    #[arg(long)]
    log_dir: PathBuf,
    /// The cycle number (part of every op id, so values differ across cycles).
    #[arg(long)]
    cycle: u32,
    /// The cycle's seed (crash-plan).
    #[arg(long)]
    seed: u64,
    #[arg(long, default_value_t = 8)]
    threads: u32,
    #[arg(long, default_value_t = 32)]
    keys_per_thread: u32,
    /// Percent of operations that are deletes.
    #[arg(long, default_value_t = 25)]
    delete_percent: u32,
    /// Ask for a compaction this often, on a connection of its own (0: never).
    #[arg(long, default_value_t = 0)]
    compact_every_ms: u64,
    /// Give up (exit 1) if kvd is still answering after this long.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

/// How one thread's run ended.
#[derive(Debug, Default)]
struct ThreadSummary {
    puts: u64,
    deletes: u64,
    refused: u64,
    in_flight: u64,
    /// Compactions asked for and answered (the compacting connection only).
    compactions: u64,
    /// Why the thread stopped, if not because kvd died.
    trouble: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(1..=THREADS_MAX).contains(&args.threads) || !(1..=KEYS_PER_THREAD_MAX).contains(&args.keys_per_thread) {
        eprintln!("crash-writer: --threads must be 1..={THREADS_MAX}, --keys-per-thread 1..={KEYS_PER_THREAD_MAX}");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(summaries) => report(&summaries),
        Err(err) => {
            eprintln!("crash-writer: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<Vec<ThreadSummary>> {
    std::fs::create_dir_all(&args.log_dir).with_context(|| format!("cannot create {}", args.log_dir.display()))?;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|thread| {
                let log = LogWriter::create(&log_path(&args.log_dir, thread), args.cycle, thread)
                    .with_context(|| format!("cannot create the log of thread {thread}"))?;
                Ok(scope.spawn(move || write_until_kvd_dies(args, thread, log, deadline)))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let compactor =
            (args.compact_every_ms > 0).then(|| scope.spawn(move || compact_until_kvd_dies(args, deadline)));
        handles
            .into_iter()
            .chain(compactor)
            .map(|handle| handle.join().map_err(|_| anyhow::anyhow!("a writer thread panicked"))?)
            .collect()
    })
}

/// One thread: connect, then puts and deletes on its own keys until the
/// connection breaks.
fn write_until_kvd_dies(
    args: &Args,
    thread: u32,
    mut log: LogWriter,
    deadline: Instant,
) -> anyhow::Result<ThreadSummary> {
    let mut summary = ThreadSummary::default();
    let mut rng = StdRng::seed_from_u64(thread_seed(args.seed, thread));
    let mut client = match Client::connect(&args.socket) {
        Ok(client) => client,
        Err(CallError::Gone(_)) => return Ok(summary),
        Err(err) => return Ok(ThreadSummary { trouble: Some(err.to_string()), ..summary }),
    };
    for seq in 1.. {
        if Instant::now() > deadline {
            summary.trouble = Some(format!("kvd still answering after {} s", args.max_seconds));
            break;
        }
        let index = rng.random_range(0..args.keys_per_thread);
        let key = KeyRef { thread, index };
        let (kind, request) = if rng.random_range(0..100) < args.delete_percent {
            (OpKind::Delete { index }, Request::Delete { key: key.name() })
        } else {
            let value_bytes = pick_value_bytes(&mut rng);
            let written = Written { op: OpId { cycle: args.cycle, thread, seq }, value_bytes };
            (
                OpKind::Put { index, value_bytes },
                Request::Put { key: key.name(), value: written.value(key), ttl_ms: None },
            )
        };
        // The log line goes first: from the moment the request leaves, it may be applied.
        log.sent(seq, kind)?;
        match client.call(&request) {
            Ok(Response::Done) => {
                log.acked(seq, None)?;
                summary.puts += 1;
            }
            Ok(Response::Deleted(deleted)) => {
                log.acked(seq, Some(deleted))?;
                summary.deletes += 1;
            }
            Ok(Response::Error { kind: ErrorKind::NoSpace, .. }) => {
                log.refused(seq, ErrorKind::NoSpace.as_str())?;
                summary.refused += 1;
            }
            Ok(Response::Error { kind, message }) => {
                let error = format!("{kind}: {message}");
                log.unknown(seq, &error)?;
                summary.trouble = Some(format!("request {seq} ({}) answered {error}", request.name()));
                break;
            }
            Ok(other) => {
                // call() checks the pairing; a Done for a delete cannot get here.
                anyhow::bail!("request {seq} answered {other:?}");
            }
            Err(CallError::Gone(_)) => {
                summary.in_flight += 1;
                break;
            }
            Err(err @ CallError::Protocol(_)) => {
                summary.in_flight += 1;
                summary.trouble = Some(format!("request {seq}: {err}"));
                break;
            }
        }
    }
    Ok(summary)
}

/// The compacting connection: a compaction request every
/// `--compact-every-ms` until the connection breaks. Compaction answers
/// `Done`; any error is trouble (it must never fail for lack of room).
fn compact_until_kvd_dies(args: &Args, deadline: Instant) -> anyhow::Result<ThreadSummary> {
    let mut summary = ThreadSummary::default();
    let mut client = match Client::connect(&args.socket) {
        Ok(client) => client,
        Err(CallError::Gone(_)) => return Ok(summary),
        Err(err) => return Ok(ThreadSummary { trouble: Some(err.to_string()), ..summary }),
    };
    while Instant::now() <= deadline {
        std::thread::sleep(Duration::from_millis(args.compact_every_ms));
        match client.call(&Request::Compact) {
            Ok(Response::Done) => summary.compactions += 1,
            Ok(other) => {
                summary.trouble = Some(format!("compaction {} answered {other:?}", summary.compactions + 1));
                return Ok(summary);
            }
            Err(CallError::Gone(_)) => return Ok(summary),
            Err(err) => {
                summary.trouble = Some(format!("compaction {}: {err}", summary.compactions + 1));
                return Ok(summary);
            }
        }
    }
    summary.trouble = Some(format!("kvd still answering after {} s", args.max_seconds));
    Ok(summary)
}

fn report(summaries: &[ThreadSummary]) -> ExitCode {
    let total = |field: fn(&ThreadSummary) -> u64| summaries.iter().map(field).sum::<u64>();
    let (puts, deletes) = (total(|s| s.puts), total(|s| s.deletes));
    let troubles: Vec<&str> = summaries.iter().filter_map(|s| s.trouble.as_deref()).collect();
    println!(
        "acked={} puts={puts} deletes={deletes} refused={} in_flight={} unknown={} compactions={}",
        puts + deletes,
        total(|s| s.refused),
        total(|s| s.in_flight),
        troubles.len(),
        total(|s| s.compactions)
    );
    for (thread, trouble) in summaries.iter().enumerate().filter_map(|(t, s)| Some((t, s.trouble.as_deref()?))) {
        eprintln!("crash-writer: thread {thread}: {trouble}");
    }
    if troubles.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
