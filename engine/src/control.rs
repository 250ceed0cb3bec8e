//! Start, stop and wake-up signals shared by the store and its background
//! threads (background.rs: maintenance, compactor, expiry). Writers wake
//! the compactor as soon as free space drops below the trigger
//! (`Control::nudge_compactor`), instead of leaving it to the next tick: a
//! fast writer fills a 64 MiB file in a fraction of a second.

use parking_lot::{Condvar, Mutex};
use std::time::Duration;

/// Start/stop signals shared by the store and its threads.
#[derive(Debug, Default)]
pub(crate) struct Control {
    state: Mutex<ControlState>,
    maintenance_wake: Condvar,
    compactor_wake: Condvar,
    expiry_wake: Condvar,
}

#[derive(Debug, Default)]
struct ControlState {
    stop: bool,
    /// A writer saw free space below the trigger since the compactor last
    /// woke; set under the mutex, so a nudge is never lost between the
    /// compactor's check and its wait.
    compaction_wanted: bool,
}

impl Control {
    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.maintenance_wake.notify_all();
        self.compactor_wake.notify_all();
        self.expiry_wake.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.state.lock().stop
    }

    /// Wakes the compactor now (at most one notification per wake-up).
    pub fn nudge_compactor(&self) {
        let mut state = self.state.lock();
        if !state.compaction_wanted {
            state.compaction_wanted = true;
            self.compactor_wake.notify_one();
        }
    }

    /// Waits up to `wait` (less when nudged); false once the store stops.
    fn wait(&self, wake: &Condvar, wait: Duration, nudgeable: bool) -> bool {
        let mut state = self.state.lock();
        let nudged = nudgeable && state.compaction_wanted;
        if !state.stop && !nudged {
            wake.wait_for(&mut state, wait);
        }
        if nudgeable {
            state.compaction_wanted = false;
        }
        !state.stop
    }
}

/// Which thread a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Thread {
    Maintenance,
    Compactor,
    Expiry,
}

impl Control {
    /// Waits up to `wait` on `thread`'s wake-up (less when nudged, if
    /// `nudgeable`); false once the store stops.
    pub fn wait_for(&self, thread: Thread, wait: Duration, nudgeable: bool) -> bool {
        let wake = match thread {
            Thread::Maintenance => &self.maintenance_wake,
            Thread::Compactor => &self.compactor_wake,
            Thread::Expiry => &self.expiry_wake,
        };
        self.wait(wake, wait, nudgeable)
    }
}
