//! What every command runs against, native and RESP alike: the store, the
//! counters, the RESP SCAN cursors, and the settings INFO and STATS show.
//! The event loop holds one; each worker holds a clone.

use crate::metrics::Metrics;
use crate::scan_cursors::ScanCursors;
use blockkv_engine::{Store, SyncPolicy};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Context {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The data file, as INFO and STATS show it.
    pub data_path: Arc<str>,
    /// The store's `--sync` policy: the event loop decides by it which
    /// writes it runs itself; CONFIG GET, INFO and STATS show it.
    pub sync_policy: SyncPolicy,
    /// RESP SCAN iterations in progress, shared by every connection.
    pub cursors: Arc<ScanCursors>,
}

impl Context {
    /// The sync policy as INFO and STATS show it.
    pub fn sync_policy_text(&self) -> String {
        sync_policy_text(self.sync_policy)
    }
}

/// `always`, `periodic(1s)` (the interval as Rust writes a `Duration`), `none`.
fn sync_policy_text(policy: SyncPolicy) -> String {
    match policy {
        SyncPolicy::Always => "always".to_string(),
        SyncPolicy::Periodic(every) => format!("periodic({every:?})"),
        SyncPolicy::None => "none".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sync_policy_shows_as_always_periodic_with_its_interval_or_none() {
        // The text INFO's blockkv_sync_policy and STATS's sync_policy carry.
        let periodic = |ms| SyncPolicy::Periodic(Duration::from_millis(ms));
        assert_eq!(sync_policy_text(SyncPolicy::Always), "always");
        assert_eq!(sync_policy_text(periodic(1000)), "periodic(1s)");
        assert_eq!(sync_policy_text(periodic(250)), "periodic(250ms)");
        assert_eq!(sync_policy_text(periodic(1500)), "periodic(1.5s)");
        assert_eq!(sync_policy_text(SyncPolicy::None), "none");
    }
}
