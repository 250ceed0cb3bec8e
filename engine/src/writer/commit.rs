//! Group commit and the poison flag.
//!
//! Writers append under the log lock, then wait here until an `fdatasync`
//! that started after their write has returned. Whoever finds no sync
//! running becomes the leader and issues one sync for every write done so
//! far; the others wait for it. A failed sync poisons the store: no waiter
//! is acknowledged, and no write is accepted after (invariant 7,
//! docs/DESIGN.md).

use crate::error::{Error, Result};
use crate::storage::Storage;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set once, never cleared: the store refuses writes until reopened.
#[derive(Debug, Default)]
pub struct Poison {
    flag: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Poison {
    pub fn check(&self) -> Result<()> {
        if self.flag.load(Ordering::Acquire) {
            let reason = self.reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        Ok(())
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub fn set(&self, reason: String) {
        let mut slot = self.reason.lock();
        if slot.is_none() {
            tracing::error!(%reason, "store poisoned: refusing writes from now on");
            *slot = Some(reason);
        }
        self.flag.store(true, Ordering::Release);
    }
}

#[derive(Debug, Default)]
struct CommitState {
    synced_lsn: u64,
    syncing: bool,
}

/// The group-commit rendezvous.
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<CommitState>,
    done: Condvar,
    /// Highest LSN whose bytes have been handed to storage (set under the log lock).
    written_lsn: AtomicU64,
    /// Number of syncs issued.
    sync_count: AtomicU64,
}

impl GroupCommit {
    pub fn new(durable_lsn: u64) -> Self {
        let commit = GroupCommit::default();
        commit.state.lock().synced_lsn = durable_lsn;
        commit.written_lsn.store(durable_lsn, Ordering::Release);
        commit
    }

    pub fn synced_lsn(&self) -> u64 {
        self.state.lock().synced_lsn
    }

    /// Records that every LSN up to `lsn` was handed to storage; the caller
    /// holds the log lock.
    #[inline]
    pub fn note_written(&self, lsn: u64) {
        self.written_lsn.store(lsn, Ordering::Release);
    }

    pub fn written_lsn(&self) -> u64 {
        self.written_lsn.load(Ordering::Acquire)
    }

    pub fn sync_count(&self) -> u64 {
        self.sync_count.load(Ordering::Relaxed)
    }

    /// Returns once `lsn` is durable, joining or leading a group sync.
    pub fn wait_durable(&self, lsn: u64, storage: &dyn Storage, poison: &Poison) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            poison.check()?;
            if state.synced_lsn >= lsn {
                return Ok(());
            }
            if state.syncing {
                self.done.wait(&mut state);
                continue;
            }
            self.lead(&mut state, storage, poison)?;
        }
    }

    /// Issues a sync that starts after this call (waiting out one already
    /// running, which may not cover the caller's writes).
    pub fn sync_now(&self, storage: &dyn Storage, poison: &Poison) -> Result<()> {
        let mut state = self.state.lock();
        while state.syncing {
            self.done.wait(&mut state);
        }
        poison.check()?;
        self.lead(&mut state, storage, poison)
    }

    fn lead(
        &self,
        state: &mut parking_lot::MutexGuard<'_, CommitState>,
        storage: &dyn Storage,
        poison: &Poison,
    ) -> Result<()> {
        state.syncing = true;
        // Every LSN up to `target` was written before we read it, so the
        // sync below covers it.
        let target = self.written_lsn.load(Ordering::Acquire);
        let result = parking_lot::MutexGuard::unlocked(state, || storage.sync());
        state.syncing = false;
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(()) => {
                state.synced_lsn = state.synced_lsn.max(target);
                Ok(())
            }
            Err(err) => {
                poison.set(format!("fdatasync failed: {err}"));
                Err(Error::io("sync", err))
            }
        };
        self.done.notify_all();
        outcome
    }
}
