//! Per-command counters and latency histograms (hdrhistogram), and the
//! server's connection counters, for STATS and INFO. Native requests count
//! by kind (`COMMANDS`); RESP commands by their own name (`resp`, one per
//! spec, for INFO's commandstats and latencystats), and STATS folds each
//! into the native kind it stands for (its spec's `counted_as`).

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

impl Command {
    fn new() -> Command {
        Command {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")),
        }
    }

    fn record(&self, elapsed_us: u64, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us.lock().saturating_record(elapsed_us.clamp(1, LATENCY_US_MAX));
    }
}

/// One RESP command's LATENCY HISTOGRAM: (its `resp::spec` number, calls,
/// (bucket upper bound in µs, calls at most that long)).
pub type LatencyHistogram = (usize, u64, Vec<(u64, u64)>);

/// One RESP command's figures, as INFO shows them.
#[derive(Debug, Clone)]
pub struct RespCommandStats {
    pub calls: u64,
    pub failed: u64,
    pub total_us: u64,
    /// (p50, p99, p99.9) in µs.
    pub percentiles_us: (u64, u64, u64),
}

/// Everything kvd counts.
#[derive(Debug)]
pub struct Metrics {
    commands: Vec<Command>,
    /// One per RESP command (`resp::spec`'s numbering), and the native kind
    /// each is counted as in STATS.
    resp: Vec<(Command, Option<usize>, AtomicU64)>,
    pub started: Instant,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub bad_frames: AtomicU64,
    /// Reads that found their key, and that did not (INFO's keyspace_hits, _misses).
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    /// The most INFO has seen as used_memory.
    pub used_memory_peak: AtomicU64,
    /// (when, total calls then, the rate measured then) for instantaneous_ops_per_sec.
    rate: Mutex<(Instant, u64, u64)>,
}

impl Metrics {
    /// Counters for the native kinds and for RESP commands counted as
    /// `resp_counted_as` (one entry per RESP command).
    pub fn new(resp_counted_as: &[Option<usize>]) -> Metrics {
        Metrics {
            commands: COMMANDS.iter().map(|_| Command::new()).collect(),
            resp: resp_counted_as.iter().map(|slot| (Command::new(), *slot, AtomicU64::new(0))).collect(),
            started: Instant::now(),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            keyspace_hits: AtomicU64::new(0),
            keyspace_misses: AtomicU64::new(0),
            used_memory_peak: AtomicU64::new(0),
            rate: Mutex::new((Instant::now(), 0, 0)),
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
    /// Records one call of native command `index` (into COMMANDS).
    pub fn record(&self, index: usize, elapsed_us: u64, ok: bool) {
        self.commands[index].record(elapsed_us, ok);
    }

    /// Records one call of RESP command `index` (`resp::spec`'s numbering).
    pub fn record_resp(&self, index: usize, elapsed_us: u64, ok: bool) {
        if let Some((command, _, total_us)) = self.resp.get(index) {
            command.record(elapsed_us, ok);
            total_us.fetch_add(elapsed_us, Ordering::Relaxed);
        }
    }

    /// RESP commands called at least once: (index, figures).
    pub fn resp_commands(&self) -> Vec<(usize, RespCommandStats)> {
        self.resp
            .iter()
            .enumerate()
            .filter(|(_, (command, ..))| command.calls.load(Ordering::Relaxed) > 0)
            .map(|(index, (command, _, total_us))| {
                let histogram = command.latency_us.lock();
                let stats = RespCommandStats {
                    calls: command.calls.load(Ordering::Relaxed),
                    failed: command.errors.load(Ordering::Relaxed),
                    total_us: total_us.load(Ordering::Relaxed),
                    percentiles_us: (
                        histogram.value_at_quantile(0.50),
                        histogram.value_at_quantile(0.99),
                        histogram.value_at_quantile(0.999),
                    ),
                };
                (index, stats)
            })
            .collect()
    }

    /// A read found its key, or did not.
    pub fn lookup(&self, found: bool) {
        let counter = if found { &self.keyspace_hits } else { &self.keyspace_misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls per second since the previous measure at least 100 ms ago (as
    /// Redis samples it); the last rate when asked again sooner.
    pub fn ops_per_sec(&self) -> u64 {
        let total = self.total_calls();
        let mut rate = self.rate.lock();
        let elapsed = rate.0.elapsed();
        if elapsed.as_millis() >= 100 {
            let per_sec = (total.saturating_sub(rate.1) as f64 / elapsed.as_secs_f64()) as u64;
            *rate = (Instant::now(), total, per_sec);
        }
        rate.2
    }

    /// Each called RESP command's calls and latency histogram as Redis's
    /// LATENCY HISTOGRAM gives it: (bucket upper bound in µs, a power of
    /// two; calls that took at most that long), a bucket only where the
    /// count grows.
    pub fn resp_histograms(&self) -> Vec<LatencyHistogram> {
        let mut all = Vec::new();
        for (index, (command, ..)) in self.resp.iter().enumerate() {
            let calls = command.calls.load(Ordering::Relaxed);
            if calls == 0 {
                continue;
            }
            let histogram = command.latency_us.lock();
            let (mut buckets, mut bound, mut before) = (Vec::new(), 1u64, 0u64);
            while before < histogram.len() && bound <= LATENCY_US_MAX.next_power_of_two() {
                let upto = histogram.count_between(0, bound);
                if upto > before {
                    buckets.push((bound, upto));
                    before = upto;
                }
                bound *= 2;
            }
            all.push((index, calls, buckets));
        }
        all
    }

    /// Every call, native and RESP.
    pub fn total_calls(&self) -> u64 {
        let native: u64 = self.commands.iter().map(|c| c.calls.load(Ordering::Relaxed)).sum();
        let resp: u64 = self.resp.iter().map(|(c, ..)| c.calls.load(Ordering::Relaxed)).sum();
        native + resp
    }

    /// Per native kind, with the RESP commands counted as that kind folded in.
    pub fn commands(&self) -> Vec<CommandStats> {
        COMMANDS
            .iter()
            .zip(&self.commands)
            .enumerate()
            .map(|(slot, (name, command))| {
                let mut histogram = command.latency_us.lock().clone();
                let (mut calls, mut errors) =
                    (command.calls.load(Ordering::Relaxed), command.errors.load(Ordering::Relaxed));
                for (resp, counted_as, _) in &self.resp {
                    if *counted_as == Some(slot) {
                        calls += resp.calls.load(Ordering::Relaxed);
                        errors += resp.errors.load(Ordering::Relaxed);
                        let _ = histogram.add(&*resp.latency_us.lock());
                    }
                }
                CommandStats {
                    name: (*name).to_string(),
                    calls,
                    errors,
                    p50_us: histogram.value_at_quantile(0.50),
                    p99_us: histogram.value_at_quantile(0.99),
                    p999_us: histogram.value_at_quantile(0.999),
                    max_us: histogram.max(),
                }
            })
            .collect()
    }
}
