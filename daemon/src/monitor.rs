//! MONITOR: every command any client runs, streamed to each monitoring
//! connection as a status line, as Redis streams it. Each monitor has a
//! bounded feed; a monitor that does not read fast enough to keep its feed
//! under `MONITOR_FEED_BYTES_MAX` is dropped (its connection closed), so a
//! slow monitor never makes kvd's memory grow. With no monitor, a command
//! pays one atomic load.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unsent bytes one monitor's feed holds before the monitor is dropped.
pub const MONITOR_FEED_BYTES_MAX: usize = 4 * 1024 * 1024;

/// One monitor's lines not yet moved to its connection.
#[derive(Debug, Default)]
pub struct Feed {
    pub bytes: Vec<u8>,
    /// Over the bound: the event loop closes the connection.
    pub overflowed: bool,
}

#[derive(Debug, Default)]
pub struct Monitors {
    count: AtomicUsize,
    feeds: Mutex<Vec<(u64, Arc<Mutex<Feed>>)>>,
}

impl Monitors {
    /// Client `id` monitors from now on; its feed.
    pub fn add(&self, id: u64) -> Arc<Mutex<Feed>> {
        let feed = Arc::new(Mutex::new(Feed::default()));
        let mut feeds = self.feeds.lock();
        feeds.retain(|(other, _)| *other != id);
        feeds.push((id, feed.clone()));
        self.count.store(feeds.len(), Ordering::Relaxed);
        feed
    }

    pub fn remove(&self, id: u64) {
        let mut feeds = self.feeds.lock();
        feeds.retain(|(other, _)| *other != id);
        self.count.store(feeds.len(), Ordering::Relaxed);
    }

    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Streams one command run by client `from` (on `addr`) to every monitor.
    pub fn publish<'a>(&self, addr: &str, args: impl Iterator<Item = &'a [u8]>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut line = format!("+{}.{:06} [0 unix:{addr}]", now.as_secs(), now.subsec_micros()).into_bytes();
        for arg in args {
            line.extend_from_slice(b" \"");
            quote_into(&mut line, arg);
            line.push(b'"');
        }
        line.extend_from_slice(b"\r\n");
        for (_, feed) in self.feeds.lock().iter() {
            let mut feed = feed.lock();
            if feed.overflowed {
                continue;
            }
            if feed.bytes.len() + line.len() > MONITOR_FEED_BYTES_MAX {
                feed.overflowed = true;
                feed.bytes = Vec::new();
            } else {
                feed.bytes.extend_from_slice(&line);
            }
        }
    }
}

/// An argument as Redis's MONITOR quotes it (sdscatrepr): `\\`, `\"`,
/// `\n`, `\r`, `\t`, `\a`, `\b`, printable bytes as they are, others `\xhh`.
fn quote_into(line: &mut Vec<u8>, arg: &[u8]) {
    for &byte in arg {
        match byte {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'"' => line.extend_from_slice(b"\\\""),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' => line.extend_from_slice(b"\\t"),
            7 => line.extend_from_slice(b"\\a"),
            8 => line.extend_from_slice(b"\\b"),
            b' '..=b'~' => line.push(byte),
            _ => line.extend_from_slice(format!("\\x{byte:02x}").as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitor_gets_quoted_lines_and_is_dropped_when_its_feed_overflows() {
        // Lines are quoted as Redis quotes them; a feed past its bound is marked, not grown.
        let monitors = Monitors::default();
        let feed = monitors.add(7);
        monitors.publish("/s", [&b"SET"[..], b"k\"\n", b"\x01"].into_iter());
        let line = String::from_utf8(feed.lock().bytes.clone()).expect("ascii");
        assert!(line.ends_with(" [0 unix:/s] \"SET\" \"k\\\"\\n\" \"\\x01\"\r\n"), "{line}");
        let big = vec![b'x'; MONITOR_FEED_BYTES_MAX];
        monitors.publish("/s", [&big[..]].into_iter());
        assert!(feed.lock().overflowed && feed.lock().bytes.is_empty());
        monitors.remove(7);
        assert!(!monitors.any());
    }
}
