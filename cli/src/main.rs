//! kvctl: parse the arguments, hand them and the standard streams to
//! [`blockkv_cli::run`], exit with the code it returns (docs/OPERATIONS.md).
//! clap itself prints usage errors and exits 2.
#![deny(unsafe_code)]

use anyhow::Context;
use blockkv_cli::Cli;
use blockkv_cli::run::Streams;
use clap::Parser;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_with_stdio(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let _ = writeln!(io::stderr(), "kvctl: {error:#}");
            ExitCode::from(blockkv_cli::EXIT_USAGE)
        }
    }
}

/// Runs `cli` on this process's stdin, stdout (buffered: a scan writes a
/// line per key) and stderr.
fn run_with_stdio(cli: &Cli) -> anyhow::Result<u8> {
    let stdin = io::stdin();
    let stdin_is_terminal = stdin.is_terminal();
    let mut stdout = BufWriter::new(io::stdout().lock());
    let streams =
        Streams { stdin: &mut stdin.lock(), stdin_is_terminal, stdout: &mut stdout, stderr: &mut io::stderr().lock() };
    let code = blockkv_cli::run(cli, streams);
    match stdout.flush() {
        // The reader went away (`kvctl scan | head`): nothing is lost that anyone wanted.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        flushed => {
            flushed.context("cannot write kvctl's output to stdout — check where stdout goes (disk full?)")?;
            Ok(code)
        }
    }
}
