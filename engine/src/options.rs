//! Open options and their defaults.

use crate::clock::{Clock, SystemClock};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default `Periodic` sync interval.
pub const SYNC_INTERVAL_MS_DEFAULT: u64 = 1000;
/// Default time between checkpoints (when anything was written).
pub const CHECKPOINT_INTERVAL_S_DEFAULT: u64 = 60;
/// A checkpoint is also due once this many log bytes were written since the
/// last one (or the snapshot's own size, if larger), to bound replay time.
pub const CHECKPOINT_LOG_BYTES_DEFAULT: u64 = 16 * 1024 * 1024;

/// When acknowledged writes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every write returns after an fdatasync that covers it (group commit).
    Always,
    /// A background fdatasync every interval; writes return once written.
    Periodic(Duration),
    /// fdatasync only at checkpoints and close.
    None,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "always" => Ok(SyncPolicy::Always),
            "periodic" => Ok(SyncPolicy::Periodic(Duration::from_millis(SYNC_INTERVAL_MS_DEFAULT))),
            "none" => Ok(SyncPolicy::None),
            other => Err(format!("unknown sync policy {other:?}: use always, periodic or none")),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    pub sync: SyncPolicy,
    pub recovery: RecoveryMode,
    /// Create the file at this size if it does not exist; None = must exist.
    pub create_bytes: Option<u64>,
    /// Time-based checkpoints; None = only by bytes written and at close.
    pub checkpoint_interval: Option<Duration>,
    pub checkpoint_log_bytes: u64,
    /// Open without writing anything (no lock, no tail truncation, no
    /// checkpoint). For inspection of a file another process may hold.
    pub read_only: bool,
    /// Run the background threads: periodic sync and checkpoints, and the
    /// compactor.
    pub background: bool,
    /// Let the compactor thread run (with `background`). Off, space comes
    /// back only through `Store::compact` and writes that find no room;
    /// benchmarks turn it off to measure a baseline.
    pub background_compaction: bool,
    /// Let the expiry thread run (with `background`): keys whose TTL has
    /// passed are removed within about a tick. Off, they read as absent
    /// and stay counted until a write, a delete or the compactor meets them.
    pub background_expiry: bool,
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncPolicy::Periodic(Duration::from_millis(SYNC_INTERVAL_MS_DEFAULT)),
            recovery: RecoveryMode::TolerateTail,
            create_bytes: None,
            checkpoint_interval: Some(Duration::from_secs(CHECKPOINT_INTERVAL_S_DEFAULT)),
            checkpoint_log_bytes: CHECKPOINT_LOG_BYTES_DEFAULT,
            read_only: false,
            background: true,
            background_compaction: true,
            background_expiry: true,
            clock: Arc::new(SystemClock),
        }
    }
}

/// How much damage open accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open on any damage, a torn tail or torn checkpoint included.
    Strict,
    /// A torn tail is the normal end of the log: cut it, report it, open.
    #[default]
    TolerateTail,
    /// Scan every block, skip what is damaged, keep every record that verifies.
    Salvage,
}

impl std::str::FromStr for RecoveryMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "strict" => Ok(RecoveryMode::Strict),
            "tolerate-tail" => Ok(RecoveryMode::TolerateTail),
            "salvage" => Ok(RecoveryMode::Salvage),
            other => Err(format!("unknown recovery mode {other:?}: use strict, tolerate-tail or salvage")),
        }
    }
}

impl fmt::Display for RecoveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoveryMode::Strict => "strict",
            RecoveryMode::TolerateTail => "tolerate-tail",
            RecoveryMode::Salvage => "salvage",
        })
    }
}
