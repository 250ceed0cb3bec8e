//! `--daemonize`: fork, setsid, fork again, umask 027, chdir /, stdio to
//! /dev/null (the daemonize crate does the forking), and a readiness pipe
//! so that the command the user typed exits 0 only once the daemon holds
//! the data file's lock and listens, and otherwise exits non-zero with the
//! daemon's own error message. Also the pidfile: written once the lock is
//! held, removed at exit.

use anyhow::{Context, bail};
use daemonize::{Daemonize, Outcome};
use std::io::{PipeWriter, Read, Write};
use std::path::{Path, PathBuf};

/// What the detached daemon reports to the waiting parent.
#[derive(Debug)]
pub struct Readiness(Option<PipeWriter>);

impl Readiness {
    /// Not daemonized: nobody is waiting.
    pub fn foreground() -> Self {
        Readiness(None)
    }

    /// Tells the parent the daemon is up (it then exits 0).
    pub fn ready(&mut self) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(b"ok\n");
        }
    }

    /// Tells the parent why the daemon could not start (it prints it, exits 1).
    pub fn failed(&mut self, message: &str) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(message.as_bytes());
        }
    }
}

/// Detaches. Returns in the daemon only; the original process waits for
/// the daemon's readiness and exits with the matching status.
pub fn daemonize() -> anyhow::Result<Readiness> {
    let (mut reader, writer) = std::io::pipe().context("cannot create the readiness pipe")?;
    match Daemonize::new().working_directory("/").umask(0o027).execute() {
        Outcome::Parent(Ok(_)) => {
            drop(writer);
            let mut said = String::new();
            let _ = reader.read_to_string(&mut said);
            if said == "ok\n" {
                std::process::exit(0);
            }
            let said = if said.is_empty() { "the daemon exited before it was ready" } else { said.as_str() };
            eprintln!("kvd: {said}");
            std::process::exit(1);
        }
        Outcome::Parent(Err(err)) => bail!("cannot daemonize: {err}"),
        Outcome::Child(Ok(_)) => {
            drop(reader);
            Ok(Readiness(Some(writer)))
        }
        Outcome::Child(Err(err)) => {
            let mut readiness = Readiness(Some(writer));
            readiness.failed(&format!("cannot daemonize: {err}"));
            std::process::exit(1);
        }
    }
}

/// The pidfile, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's pid (via a temp file and rename, so a reader
    /// never sees it half written).
    pub fn write(path: &Path) -> anyhow::Result<PidFile> {
        let temp = path.with_extension("pid.tmp");
        std::fs::write(&temp, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pidfile {}", temp.display()))?;
        std::fs::rename(&temp, path).with_context(|| format!("cannot write the pidfile {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
