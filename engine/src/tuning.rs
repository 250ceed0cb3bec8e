//! Settings a running store may change: the interval of `--sync periodic`
//! and the checkpoint interval (kvd's CONFIG SET); and how long ago the
//! last checkpoint was written. The background thread
//! reads both afresh each round, so a change applies within one tick.

use crate::error::{Error, Result};
use crate::options::SyncPolicy;
use crate::store::Store;
use std::time::Duration;

impl Store {
    /// The sync policy, with the current interval if periodic.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.engine.writer.sync_policy()
    }

    /// A new interval for `SyncPolicy::Periodic`; an error under another policy.
    pub fn set_sync_interval(&self, every: Duration) -> Result<()> {
        if every.is_zero() {
            return Err(Error::InvalidArgument("the sync interval must be at least 1 ms".into()));
        }
        if !self.engine.writer.set_sync_interval(every) {
            return Err(Error::InvalidArgument("the sync interval applies only to the periodic sync policy".into()));
        }
        Ok(())
    }

    /// How long after a checkpoint, with writes since, the next one is due
    /// (None: only by log bytes written, and at close).
    pub fn checkpoint_interval(&self) -> Option<Duration> {
        self.engine.checkpointer.interval()
    }

    pub fn set_checkpoint_interval(&self, every: Option<Duration>) {
        self.engine.checkpointer.set_interval(every);
    }

    /// How long ago the newest checkpoint was written, or the store opened
    /// if none was written since (INFO's last-save time).
    pub fn checkpoint_age(&self) -> Duration {
        self.engine.checkpointer.age()
    }
}
