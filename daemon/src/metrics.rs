//! Per-command counters and latency histograms (hdrhistogram), and the
//! server's connection counters, for STATS.

use blockkv_protocol::CommandStats;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The commands STATS reports on, in this order.
pub const COMMANDS: [&str; 12] = blockkv_protocol::Request::NAMES;
/// The STATS counter of plain puts, native and RESP, run one by one or sharing a write.
pub const PUT: usize = slot("put");
/// Largest latency a histogram records (longer ones are clamped): 60 s.
const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Debug)]
struct Command {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// Everything kvd counts.
#[derive(Debug)]
pub struct Metrics {
    commands: Vec<Command>,
    pub started: Instant,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub bad_frames: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let commands = COMMANDS
            .iter()
            .map(|_| Command {
                calls: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                latency_us: Mutex::new(
                    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds"),
                ),
            })
            .collect();
        Metrics {
            commands,
            started: Instant::now(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
        }
    }
}

/// The index of `name` in `COMMANDS`, found at compile time where it is
/// used in a constant (a name STATS does not count does not compile).
pub const fn slot(name: &str) -> usize {
    let mut index = 0;
    while index < COMMANDS.len() {
        if same_bytes(COMMANDS[index].as_bytes(), name.as_bytes()) {
            return index;
        }
        index += 1;
    }
    panic!("STATS has no counter of that name");
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut at = 0;
    while at < a.len() {
        if a[at] != b[at] {
            return false;
        }
        at += 1;
    }
    true
}

impl Metrics {
    /// Records one call of command `index` (into COMMANDS).
    pub fn record(&self, index: usize, elapsed_us: u64, ok: bool) {
        let command = &self.commands[index];
        command.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            command.errors.fetch_add(1, Ordering::Relaxed);
        }
        command.latency_us.lock().saturating_record(elapsed_us.clamp(1, LATENCY_US_MAX));
    }

    pub fn commands(&self) -> Vec<CommandStats> {
        COMMANDS
            .iter()
            .zip(&self.commands)
            .map(|(name, command)| {
                let histogram = command.latency_us.lock();
                CommandStats {
                    name: (*name).to_string(),
                    calls: command.calls.load(Ordering::Relaxed),
                    errors: command.errors.load(Ordering::Relaxed),
                    p50_us: histogram.value_at_quantile(0.50),
                    p99_us: histogram.value_at_quantile(0.99),
                    p999_us: histogram.value_at_quantile(0.999),
                    max_us: histogram.max(),
                }
            })
            .collect()
    }
}
