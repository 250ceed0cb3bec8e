//! kv-bench: load kvd over its native protocol and report throughput and
//! latency percentiles.
//!
//! ```text
//! kv-bench [--socket PATH] [--clients N] [--ops N | --seconds S] [--keys N]
//!          [--value-bytes N] [--read-ratio R] [--pipeline N] [--json]
//! ```
//! Every key is written once first (so GETs find values) unless
//! `--no-preload`. Exit 0; 1 if any request was answered with an error;
//! 2 on bad arguments or when kvd cannot be reached.
#![deny(unsafe_code)]

use blockkv_protocol::paths::{SOCKET_ENV, default_socket_path};
use blockkv_tools::bench::{self, CLIENTS_MAX, KEYS_MAX, PIPELINE_MAX, Progress, Stop, Workload};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Load kvd and measure it.
#[derive(Debug, Parser)]
#[command(name = "kv-bench", version)]
struct Args {
    /// The socket kvd listens on [default: $KV_SOCKET, else the per-user path].
    #[arg(long, env = SOCKET_ENV)]
    socket: Option<PathBuf>,
    /// Concurrent clients, each a thread with its own connection.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Requests in all (default 100,000 when --seconds is not given).
    #[arg(long, conflicts_with = "seconds")]
    ops: Option<u64>,
    /// Run this long instead of a number of requests.
    #[arg(long)]
    seconds: Option<f64>,
    /// Keys drawn from, uniformly ("key:000000000000" onwards).
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Fraction of requests that are GETs; the rest are PUTs.
    #[arg(long, default_value_t = 0.5)]
    read_ratio: f64,
    /// Requests each client sends before reading their answers.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Give each PUT a time to live drawn uniformly from MIN-MAX ms (a
    /// session store's load; the preload writes without one).
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_ttl_range)]
    ttl_ms: Option<(u64, u64)>,
    /// Do not write every key before the run.
    #[arg(long)]
    no_preload: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let workload = match workload(&args) {
        Ok(workload) => workload,
        Err(err) => {
            eprintln!("kv-bench: {err}");
            return ExitCode::from(2);
        }
    };
    match run(&args, &workload) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("kv-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn workload(args: &Args) -> Result<Workload, String> {
    if !(1..=CLIENTS_MAX).contains(&args.clients) {
        return Err(format!("--clients must be 1..={CLIENTS_MAX}"));
    }
    if !(1..=PIPELINE_MAX).contains(&args.pipeline) {
        return Err(format!("--pipeline must be 1..={PIPELINE_MAX}"));
    }
    if !(1..=KEYS_MAX).contains(&args.keys) {
        return Err(format!("--keys must be 1..={KEYS_MAX}"));
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err("--read-ratio must be between 0 and 1".into());
    }
    if args.value_bytes > blockkv_protocol::frame::FRAME_VALUE_BYTES_MAX {
        return Err(format!("--value-bytes must be at most {}", blockkv_protocol::frame::FRAME_VALUE_BYTES_MAX));
    }
    let stop = match (args.ops, args.seconds) {
        (_, Some(seconds)) if seconds.is_finite() && seconds > 0.0 => Stop::Seconds(seconds),
        (_, Some(_)) => return Err("--seconds must be positive".into()),
        (Some(0), None) => return Err("--ops must be positive".into()),
        (ops, None) => Stop::Ops(ops.unwrap_or(100_000)),
    };
    Ok(Workload {
        socket: args.socket.clone().unwrap_or_else(default_socket_path),
        clients: args.clients,
        pipeline: args.pipeline,
        keys: args.keys,
        value_bytes: args.value_bytes,
        read_ratio: args.read_ratio,
        ttl_ms: args.ttl_ms,
        stop,
    })
}

/// `MIN-MAX` in ms, 1 <= MIN <= MAX.
fn parse_ttl_range(text: &str) -> Result<(u64, u64), String> {
    let (low, high) = text.split_once('-').ok_or("expected MIN-MAX, such as 1000-60000")?;
    let (low, high): (u64, u64) =
        (low.parse().map_err(|_| "MIN is not a number")?, high.parse().map_err(|_| "MAX is not a number")?);
    if low == 0 || low > high {
        return Err("expected 1 <= MIN <= MAX".into());
    }
    Ok((low, high))
}

/// Runs it and prints the report; returns the number of error answers.
fn run(args: &Args, workload: &Workload) -> anyhow::Result<u64> {
    let show = std::io::stderr().is_terminal() && !args.json;
    let preload = if args.no_preload || workload.read_ratio == 0.0 {
        None
    } else {
        if show {
            eprintln!("kv-bench: writing {} keys first", workload.keys);
        }
        Some(bench::preload(workload)?)
    };
    let progress = Progress::default();
    let outcome = std::thread::scope(|scope| {
        if show {
            scope.spawn(|| show_progress(workload, &progress));
        }
        bench::run(workload, &progress)
    })?;
    let h = &outcome.latency_ns;
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        let out = json!({
            "clients": workload.clients, "pipeline": workload.pipeline, "keys": workload.keys,
            "value_bytes": workload.value_bytes, "read_ratio": workload.read_ratio,
            "preload_seconds": preload.map(|d| d.as_secs_f64()),
            "ops": outcome.ops, "gets": outcome.gets, "puts": outcome.puts, "errors": outcome.errors,
            "seconds": outcome.elapsed.as_secs_f64(), "ops_per_sec": outcome.ops_per_sec(),
            "latency_us": { "p50": us(0.50), "p99": us(0.99), "p999": us(0.999), "max": h.max() as f64 / 1000.0 },
        });
        println!("{out}");
    } else {
        println!(
            "kv-bench: {} clients, pipeline {}, {} keys, {}-byte values, read ratio {:.2}",
            workload.clients, workload.pipeline, workload.keys, workload.value_bytes, workload.read_ratio
        );
        if let Some(took) = preload {
            println!("  preload: {} keys in {:.2} s", workload.keys, took.as_secs_f64());
        }
        println!(
            "  {} requests ({} gets, {} puts, {} errors) in {:.2} s: {:.0} requests/s",
            outcome.ops,
            outcome.gets,
            outcome.puts,
            outcome.errors,
            outcome.elapsed.as_secs_f64(),
            outcome.ops_per_sec()
        );
        println!(
            "  latency p50 {:.1} us, p99 {:.1} us, p999 {:.1} us, max {:.1} us",
            us(0.50),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0
        );
    }
    Ok(outcome.errors)
}

/// A progress bar on stderr, by requests or by seconds.
fn show_progress(workload: &Workload, progress: &Progress) {
    let bar = match workload.stop {
        Stop::Ops(total) => ProgressBar::new(total),
        Stop::Seconds(seconds) => ProgressBar::new((seconds * 1000.0) as u64),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    while !bench::finished(progress) {
        let ops = progress.ops.load(Ordering::Relaxed);
        match workload.stop {
            Stop::Ops(total) => bar.set_position(ops.min(total)),
            Stop::Seconds(_) => bar.set_position(started.elapsed().as_millis() as u64),
        }
        bar.set_message(format!("{:.0} requests/s", ops as f64 / started.elapsed().as_secs_f64().max(1e-3)));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
