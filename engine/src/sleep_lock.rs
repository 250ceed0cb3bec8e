//! The lock for the log writer and the block table: the two locks every
//! write takes and the compactor takes between writes.
//!
//! Why not parking_lot here (it serves every other lock): a contended
//! parking_lot lock spins, then calls `sched_yield` up to seven times
//! before it parks, and on two busy cores a yield can give the CPU away
//! for a whole time slice. std's futex mutex spins briefly and then
//! sleeps until the holder's unlock wakes it; it never yields. Both locks
//! are needed on it for the compaction benchmark's put p99 to improve
//! (docs/BENCHMARKS.md). Their place in the lock order: engine.rs.
//!
//! A thread that panics holding the lock leaves the data as it was at the
//! panic, as parking_lot would: poisoning is ignored.

use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct SleepLock<T>(Mutex<T>);

impl<T> SleepLock<T> {
    pub fn new(value: T) -> Self {
        SleepLock(Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
