//! crash-kill: SIGKILL kvd in the middle of a checkpoint, with microsecond
//! aim. Connects and shakes hands first (so none of that is in the timed
//! window), sends a Checkpoint request, waits `--after-us`, SIGKILLs
//! `--pid`, then reads whatever answer made it out.
//!
//! Prints `done` if kvd had answered (the checkpoint was complete before
//! the kill) or `cut` if not. A shell cannot aim this well: starting
//! `kvctl checkpoint` and a `sleep` costs a millisecond or two of jitter,
//! and a checkpoint of the test's keys takes about half a millisecond.
//! Exit 0; 2 on an operational error (no kvd to connect to, kill refused).

use anyhow::Context;
use blockkv_protocol::{Request, Response, write_message};
use blockkv_recovery_tests::client::Client;
use clap::Parser;
use rustix::process::{Pid, Signal, kill_process};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "crash-kill", about = "SIGKILL kvd a given number of microseconds into a checkpoint request")]
struct Args {
    #[arg(long)]
    socket: PathBuf,
    /// kvd's process id.
    #[arg(long)]
    pid: i32,
    /// Microseconds from sending the checkpoint request to the kill.
    #[arg(long)]
    after_us: u64,
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
    write_message(client.stream(), &Request::Checkpoint).context("cannot send the checkpoint request")?;
    std::thread::sleep(Duration::from_micros(args.after_us));
    kill_process(pid, Signal::KILL).with_context(|| format!("cannot kill pid {}", args.pid))?;
    Ok(match client.receive() {
        Ok(Response::Checkpointed { .. }) => "done",
        Ok(_) | Err(_) => "cut",
    })
}
