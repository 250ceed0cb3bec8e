//! crash-kill: SIGKILL kvd in the middle of a checkpoint or a compaction,
//! with microsecond aim. Connects and shakes hands first (so none of that
//! is in the timed window), sends the `--request` (checkpoint or compact),
//! waits `--after-us`, SIGKILLs `--pid`, then reads whatever answer made it
//! out.
//!
//! Prints `done` if kvd had answered (the checkpoint or compaction was
//! complete before the kill) or `cut` if not. A shell cannot aim this well: starting
//! `kvctl checkpoint` and a `sleep` costs a millisecond or two of jitter,
//! and a checkpoint of the test's keys takes about half a millisecond.
//! Exit 0; 2 on an operational error (no kvd to connect to, kill refused).

use anyhow::Context;
use blockkv_protocol::{Request, Response, write_message};
use blockkv_testkit::Client;
use clap::{Parser, ValueEnum};
use rustix::process::{Pid, Signal, kill_process};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "crash-kill", about = "SIGKILL kvd a given number of microseconds into a checkpoint or compaction")]
struct Args {
    /// What kvd is asked to do before the kill.
    #[arg(long, value_enum, default_value_t = Work::Checkpoint)]
    request: Work,
    #[arg(long)]
    socket: PathBuf,
    /// kvd's process id.
    #[arg(long)]
    pid: i32,
    /// Microseconds from sending the request to the kill.
    #[arg(long)]
    after_us: u64,
}

/// The request whose work the kill cuts.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Work {
    Checkpoint,
    Compact,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(outcome) => {
            println!("{outcome}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("crash-kill: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<&'static str> {
    let pid = Pid::from_raw(args.pid).context("--pid must be a positive process id")?;
    let mut client = Client::connect(&args.socket).map_err(anyhow::Error::msg).context("cannot reach kvd")?;
    let request = match args.request {
        Work::Checkpoint => Request::Checkpoint,
        Work::Compact => Request::Compact,
    };
    write_message(client.stream(), &request).with_context(|| format!("cannot send the {} request", request.name()))?;
    std::thread::sleep(Duration::from_micros(args.after_us));
    kill_process(pid, Signal::KILL).with_context(|| format!("cannot kill pid {}", args.pid))?;
    Ok(match client.receive() {
        Ok(response) if request.is_answered_by(&response) && !matches!(response, Response::Error { .. }) => "done",
        Ok(_) | Err(_) => "cut",
    })
}
