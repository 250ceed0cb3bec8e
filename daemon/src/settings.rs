//! kvd's settings that CONFIG SET may change while it runs: the connection
//! limit, the log level, the slow log's threshold and length. The sync
//! interval and the checkpoint interval live in the engine and are changed
//! there (`Store::set_sync_interval`, `Store::set_checkpoint_interval`).
//! Every other setting is a flag, fixed at start.

use crate::logging::SetLevel;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Commands slower than this are kept in the slow log (Redis's default).
pub const SLOWLOG_SLOWER_THAN_US_DEFAULT: i64 = 10_000;
/// Entries the slow log keeps (Redis's default).
pub const SLOWLOG_LEN_DEFAULT: usize = 128;
/// The most entries CONFIG SET may ask the slow log to keep.
pub const SLOWLOG_LEN_MAX: usize = 100_000;

pub struct Settings {
    max_connections: AtomicUsize,
    slowlog_slower_than_us: AtomicI64,
    slowlog_len: AtomicUsize,
    log_level: Mutex<String>,
    set_level: SetLevel,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("max_connections", &self.max_connections()).finish_non_exhaustive()
    }
}

impl Settings {
    pub fn new(max_connections: usize, log_level: &str, set_level: SetLevel) -> Settings {
        Settings {
            max_connections: AtomicUsize::new(max_connections),
            slowlog_slower_than_us: AtomicI64::new(SLOWLOG_SLOWER_THAN_US_DEFAULT),
            slowlog_len: AtomicUsize::new(SLOWLOG_LEN_DEFAULT),
            log_level: Mutex::new(log_level.to_string()),
            set_level,
        }
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections.load(Ordering::Relaxed)
    }

    pub fn set_max_connections(&self, limit: usize) {
        self.max_connections.store(limit, Ordering::Relaxed);
    }

    /// Negative: the slow log is off.
    pub fn slowlog_slower_than_us(&self) -> i64 {
        self.slowlog_slower_than_us.load(Ordering::Relaxed)
    }

    pub fn set_slowlog_slower_than_us(&self, us: i64) {
        self.slowlog_slower_than_us.store(us, Ordering::Relaxed);
    }

    pub fn slowlog_len(&self) -> usize {
        self.slowlog_len.load(Ordering::Relaxed)
    }

    pub fn set_slowlog_len(&self, len: usize) {
        self.slowlog_len.store(len.min(SLOWLOG_LEN_MAX), Ordering::Relaxed);
    }

    pub fn log_level(&self) -> String {
        self.log_level.lock().clone()
    }

    /// A tracing filter (`info`, `debug`, `blockkv_engine=debug`, …).
    pub fn set_log_level(&self, level: &str) -> Result<(), String> {
        (self.set_level)(level)?;
        *self.log_level.lock() = level.to_string();
        Ok(())
    }
}
