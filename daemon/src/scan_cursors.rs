//! Where each open RESP SCAN iteration stands: cursor number -> the last
//! key it returned. Keys come in sorted order, so an iteration returns
//! every key that exists from its start to its end exactly once, whatever
//! is written meanwhile (Redis promises at least once).

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

/// SCAN cursors kvd remembers at once; the oldest is forgotten first (a
/// client that comes back with it gets an error and starts again).
pub const SCAN_CURSORS_MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct ScanCursors {
    inner: Mutex<Cursors>,
}

#[derive(Debug, Default)]
struct Cursors {
    last_keys: HashMap<u64, Vec<u8>>,
    /// Cursor numbers, oldest first, for forgetting.
    order: VecDeque<u64>,
    next: u64,
}

impl ScanCursors {
    /// The last key cursor `cursor` returned, if it is still remembered;
    /// the cursor is used up.
    pub fn resume(&self, cursor: u64) -> Option<Vec<u8>> {
        let mut cursors = self.inner.lock();
        let last = cursors.last_keys.remove(&cursor)?;
        cursors.order.retain(|&c| c != cursor);
        Some(last)
    }

    /// A new cursor that resumes after `last_key`.
    pub fn remember(&self, last_key: Vec<u8>) -> u64 {
        let mut cursors = self.inner.lock();
        if cursors.order.len() >= SCAN_CURSORS_MAX
            && let Some(oldest) = cursors.order.pop_front()
        {
            cursors.last_keys.remove(&oldest);
        }
        // Never 0 (the end of an iteration) and never reused.
        cursors.next += 1;
        let cursor = cursors.next;
        cursors.last_keys.insert(cursor, last_key);
        cursors.order.push_back(cursor);
        cursor
    }
}
