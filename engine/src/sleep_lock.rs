//! The lock for the log writer and the block table: the two locks every
//! write takes and the compactor takes between writes.
//!
//! Why not parking_lot here (it serves every other lock): a contended
//! parking_lot lock spins, then calls `sched_yield` up to seven times
//! before it parks, and on two busy cores a yield can give the CPU away
//! for a whole time slice. `perf sched timehist` over one compacting round
//! (8 KiB puts at 10,000/s): of the writer's 69 waits over 1 ms inside a
//! put, 38 followed such a yield. std's futex mutex spins briefly and then
//! sleeps until the holder's unlock wakes it; it never yields. With both
//! locks on it, three alternating pairs of 5-round runs of the compaction
//! benchmark: put p99 ratio 2.10×, 2.24×, 2.14× → 1.89×, 1.50×, 1.57×;
//! compacting p999 3.36, 3.30, 3.34 ms → 2.46, 2.57, 2.59 ms. (The log
//! lock alone moved neither.)
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
