//! The slow log: RESP commands that took longer than
//! `slowlog-log-slower-than` µs, newest first, at most `slowlog-max-len`
//! of them (a bounded ring), as SLOWLOG GET shows them.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// Arguments kept per entry, and bytes per argument (as Redis keeps them).
pub const SLOWLOG_ARGS_MAX: usize = 32;
pub const SLOWLOG_ARG_BYTES_MAX: usize = 128;

#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_s: u64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub client_addr: String,
    pub client_name: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct SlowLog {
    next_id: AtomicU64,
    entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    /// Keeps one slow command; the oldest go past `len_max`.
    pub fn push(&self, mut entry: SlowEntry, len_max: usize) {
        entry.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.entries.lock();
        entries.push_front(entry);
        entries.truncate(len_max);
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> Vec<SlowEntry> {
        self.entries.lock().iter().take(count).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

/// A command's arguments as the slow log keeps them: at most
/// `SLOWLOG_ARGS_MAX`, the last saying how many more there were; each cut
/// to `SLOWLOG_ARG_BYTES_MAX` bytes with how many more.
pub fn kept_args(args: &[&[u8]]) -> Vec<Vec<u8>> {
    let total = args.len();
    let mut kept = Vec::new();
    for (i, &arg) in args.iter().enumerate() {
        if i == SLOWLOG_ARGS_MAX - 1 && total > SLOWLOG_ARGS_MAX {
            kept.push(format!("... ({} more arguments)", total - i).into_bytes());
            break;
        }
        if arg.len() > SLOWLOG_ARG_BYTES_MAX {
            let mut cut = arg[..SLOWLOG_ARG_BYTES_MAX].to_vec();
            cut.extend_from_slice(format!("... ({} more bytes)", arg.len() - SLOWLOG_ARG_BYTES_MAX).as_bytes());
            kept.push(cut);
        } else {
            kept.push(arg.to_vec());
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_cuts_long_commands() {
        // Three pushed into a ring of two: the newest two remain, newest first; long args are cut.
        let log = SlowLog::default();
        for n in 0..3 {
            let entry = SlowEntry {
                id: 0,
                unix_s: n,
                duration_us: n,
                args: vec![],
                client_addr: String::new(),
                client_name: vec![],
            };
            log.push(entry, 2);
        }
        let ids: Vec<u64> = log.newest(10).iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 1]);
        let long = [b'x'; 200];
        let many: Vec<&[u8]> = (0..40).map(|_| &long[..1]).collect();
        let kept = kept_args(&many);
        assert_eq!(kept.len(), SLOWLOG_ARGS_MAX);
        assert_eq!(kept.last().map(|a| String::from_utf8_lossy(a).into_owned()), Some("... (9 more arguments)".into()));
        let kept = kept_args(&[&long[..]]);
        assert!(kept[0].ends_with(b"... (72 more bytes)"));
    }
}
