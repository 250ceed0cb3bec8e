//! What every command runs against, native and RESP alike: the store, the
//! counters, the connected clients, the watched
//! keys, and the settings INFO and STATS show. The event loop holds one;
//! each worker holds a clone.

use crate::clients::Clients;
use crate::metrics::Metrics;
use crate::monitor::Monitors;
use crate::settings::Settings;
use crate::slowlog::SlowLog;
use crate::watches::Watches;
use blockkv_engine::{Store, SyncPolicy};
use parking_lot::RwLock;
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
    pub clients: Arc<Clients>,
    /// The socket clients connect to (CLIENT LIST's addr).
    pub socket_path: Arc<str>,
    pub watches: Arc<Watches>,
    /// Every command runs holding one side: most share it; EXEC and the
    /// commands that read several keys or read then write take it alone,
    /// so no other command runs between their reads and their writes.
    pub isolation: Arc<RwLock<()>>,
    /// What CONFIG SET may change while kvd runs.
    pub settings: Arc<Settings>,
    pub slowlog: Arc<SlowLog>,
    pub monitors: Arc<Monitors>,
}

impl Context {
    /// A context for `store` with fresh counters, clients and watches.
    pub fn new(
        store: Arc<Store>,
        data_path: &str,
        socket_path: &str,
        sync_policy: SyncPolicy,
        settings: Settings,
    ) -> Context {
        Context {
            store,
            metrics: Arc::new(Metrics::new(&crate::resp::counted_as())),
            data_path: data_path.into(),
            sync_policy,
            clients: Arc::new(Clients::default()),
            socket_path: socket_path.into(),
            watches: Arc::new(Watches::default()),
            isolation: Arc::new(RwLock::new(())),
            settings: Arc::new(settings),
            slowlog: Arc::new(SlowLog::default()),
            monitors: Arc::new(Monitors::default()),
        }
    }
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
