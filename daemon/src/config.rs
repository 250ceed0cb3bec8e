//! kvd's command line (docs/OPERATIONS.md), its defaults, and the store
//! options it turns into.

use anyhow::{Context, bail};
use blockkv_engine::{Options, RecoveryMode, SyncPolicy};
use blockkv_protocol::paths;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Default worker threads under `--sync always`: a worker waits out the
/// fdatasync of each write it runs, and waiting workers are what fill a
/// write group (throughput by worker count: docs/BENCHMARKS.md).
pub const WORKERS_SYNC_ALWAYS_DEFAULT: usize = 32;
/// Otherwise nothing waits on the disk, and threads beyond the cores only
/// contend: the default is one per core beside the event loop's
/// (docs/BENCHMARKS.md).
pub fn workers_default(sync: SyncArg) -> usize {
    match sync {
        SyncArg::Always => WORKERS_SYNC_ALWAYS_DEFAULT,
        SyncArg::Periodic | SyncArg::None => {
            std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1)
        }
    }
}
/// Default for `CONNECTIONS_MAX`: clients over it get a Busy handshake.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;

/// The `--sync` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    Always,
    Periodic,
    None,
}

/// kvd — the blockkv daemon.
#[derive(Debug, Parser)]
#[command(name = "kvd", version, about = "blockkv daemon: serves one data file on a Unix socket")]
pub struct Args {
    /// Data file (created at --size if missing). Default: $KV_DATA, else a per-user path.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Unix socket to listen on. Default: $KV_SOCKET, else a per-user path.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Size of a new data file (KiB, MiB, GiB suffixes); ignored for an existing file.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub size: u64,
    /// When writes are made durable: always (fdatasync before each reply, grouped), periodic, none.
    #[arg(long, value_enum, default_value_t = SyncArg::Periodic)]
    pub sync: SyncArg,
    /// Interval of --sync periodic.
    #[arg(long, default_value_t = blockkv_engine::SYNC_INTERVAL_MS_DEFAULT)]
    pub sync_interval_ms: u64,
    /// Stay in the foreground (the default; for systemd and tests).
    #[arg(long, conflicts_with = "daemonize")]
    pub foreground: bool,
    /// Detach: fork, setsid, fork, umask, chdir /, stdio to /dev/null; exits
    /// 0 once the daemon holds the data file and listens.
    #[arg(long)]
    pub daemonize: bool,
    /// Write the daemon's pid here once the data file's lock is held.
    #[arg(long)]
    pub pidfile: Option<PathBuf>,
    /// Log to this file instead of stderr (reopened on SIGHUP).
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace); RUST_LOG wins when set.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Worker threads for engine calls. Default: 32 with --sync always,
    /// else one per core beside the event loop (docs/BENCHMARKS.md has the measurements).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Most connections at once; more are refused with a Busy handshake.
    #[arg(long, default_value_t = CONNECTIONS_MAX_DEFAULT)]
    pub max_connections: usize,
    /// Seconds between checkpoints (when anything was written).
    #[arg(long, default_value_t = blockkv_engine::CHECKPOINT_INTERVAL_S_DEFAULT)]
    pub checkpoint_interval_s: u64,
    /// Close a client that holds half a hello or half a frame this long.
    #[arg(long, hide = true, default_value_t = crate::server::PARTIAL_TIMEOUT.as_millis() as u64)]
    pub partial_timeout_ms: u64,
    /// How much damage opening accepts: strict, tolerate-tail, salvage.
    #[arg(long, default_value = "tolerate-tail")]
    pub recovery: RecoveryMode,
}

impl Args {
    pub fn data_path(&self) -> PathBuf {
        absolute(self.data.clone().unwrap_or_else(paths::default_data_path))
    }

    pub fn socket_path(&self) -> PathBuf {
        absolute(self.socket.clone().unwrap_or_else(paths::default_socket_path))
    }

    /// Where logs go: --log-file, or next to the data file when daemonized
    /// (stderr is /dev/null then), or stderr.
    pub fn log_path(&self) -> Option<PathBuf> {
        match (&self.log_file, self.daemonize) {
            (Some(path), _) => Some(absolute(path.clone())),
            (None, true) => Some(self.data_path().with_extension("log")),
            (None, false) => None,
        }
    }

    pub fn pidfile_path(&self) -> Option<PathBuf> {
        self.pidfile.clone().map(absolute)
    }

    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync {
            SyncArg::Always => SyncPolicy::Always,
            SyncArg::Periodic => SyncPolicy::Periodic(Duration::from_millis(self.sync_interval_ms.max(1))),
            SyncArg::None => SyncPolicy::None,
        }
    }

    pub fn store_options(&self) -> Options {
        Options {
            sync: self.sync_policy(),
            recovery: self.recovery,
            create_bytes: Some(self.size),
            checkpoint_interval: (self.checkpoint_interval_s > 0)
                .then(|| Duration::from_secs(self.checkpoint_interval_s)),
            ..Options::default()
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| workers_default(self.sync))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.workers == Some(0) {
            bail!("--workers must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        Ok(())
    }
}

/// Paths are made absolute up front: a daemon changes directory to /.
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// "64MiB", "1GiB", "512KiB" or plain bytes.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = digits.parse().with_context(|| format!("size {text:?} does not start with a number"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        other => bail!("unknown size unit {other:?}: use KiB, MiB or GiB"),
    };
    number.checked_mul(scale).with_context(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64MiB").expect("parse"), 64 << 20);
        assert_eq!(parse_size("1GiB").expect("parse"), 1 << 30);
        assert_eq!(parse_size("4096").expect("parse"), 4096);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
