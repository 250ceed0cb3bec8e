//! kv-bench's load: N clients, each on its own connection speaking the
//! native protocol, sending pipelined batches of GETs and PUTs over a key
//! space and timing every request from the moment its batch is sent to the
//! moment its answer arrives (HDR histograms, merged at the end).

use blockkv_protocol::{Request, Response, client_handshake, frame_message, read_message};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest latency the histograms hold (longer ones are clamped): 60 s.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Most clients (threads and connections) one run opens.
pub const CLIENTS_MAX: usize = 4096;
/// Deepest pipeline: kvd queues at most 1024 requests per connection.
pub const PIPELINE_MAX: usize = 1024;
/// Widest key space.
pub const KEYS_MAX: u64 = 1_000_000_000;

/// One run's shape.
#[derive(Debug, Clone)]
pub struct Workload {
    pub socket: PathBuf,
    pub clients: usize,
    pub pipeline: usize,
    pub keys: u64,
    pub value_bytes: usize,
    /// Fraction of requests that are GETs (0.0 to 1.0).
    pub read_ratio: f64,
    /// Each PUT's time to live, drawn uniformly from this range of ms
    /// (None: no TTL), as a session store writes.
    pub ttl_ms: Option<(u64, u64)>,
    pub stop: Stop,
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    Ops(u64),
    Seconds(f64),
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    pub ops: u64,
    pub gets: u64,
    pub puts: u64,
    /// Requests answered with an error (NoSpace, …).
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_ns: Histogram<u64>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The key of index `i`: "key:" and 12 digits, as redis-benchmark names
/// its keys, so both tools write the same bytes.
pub fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

/// Counts shared by the clients while they run.
#[derive(Debug, Default)]
pub struct Progress {
    pub ops: AtomicU64,
    done: AtomicBool,
}

/// Writes every key once (so GETs find values), with the run's clients and
/// pipeline. Returns how long it took.
pub fn preload(workload: &Workload) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let value = vec![b'x'; workload.value_bytes];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workload.clients)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut stream = connect(&workload.socket)?;
                    loop {
                        let first = next.fetch_add(workload.pipeline as u64, Ordering::Relaxed);
                        if first >= workload.keys {
                            return Ok(());
                        }
                        let last = (first + workload.pipeline as u64).min(workload.keys);
                        let batch: Vec<Request> = (first..last)
                            .map(|i| Request::Put { key: key(i), value: value.clone(), ttl_ms: None })
                            .collect();
                        for response in send_batch(&mut stream, &batch)? {
                            if let Response::Error { kind, message } = response {
                                anyhow::bail!("preload refused: {kind}: {message}");
                            }
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| anyhow::anyhow!("a client panicked"))?)
    })?;
    Ok(started.elapsed())
}

/// Runs the workload; `progress` is updated as requests are answered.
pub fn run(workload: &Workload, progress: &Progress) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workload.clients)
            .map(|client| scope.spawn(move || client_loop(workload, client as u64, started, progress)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a client panicked"))?)
            .collect::<anyhow::Result<Vec<Outcome>>>()
    });
    progress.done.store(true, Ordering::Relaxed);
    let mut total =
        Outcome { ops: 0, gets: 0, puts: 0, errors: 0, elapsed: started.elapsed(), latency_ns: histogram() };
    for outcome in results? {
        total.ops += outcome.ops;
        total.gets += outcome.gets;
        total.puts += outcome.puts;
        total.errors += outcome.errors;
        total.latency_ns.add(&outcome.latency_ns).map_err(|err| anyhow::anyhow!("merging histograms: {err}"))?;
    }
    Ok(total)
}

fn connect(socket: &Path) -> anyhow::Result<UnixStream> {
    let mut stream =
        UnixStream::connect(socket).map_err(|err| anyhow::anyhow!("cannot connect to {}: {err}", socket.display()))?;
    client_handshake(&mut stream)?;
    Ok(stream)
}

/// Sends `batch` in one write and reads its answers, in order.
fn send_batch(stream: &mut UnixStream, batch: &[Request]) -> anyhow::Result<Vec<Response>> {
    let mut out = Vec::new();
    for request in batch {
        frame_message(request, &mut out)?;
    }
    stream.write_all(&out)?;
    let mut answers = Vec::with_capacity(batch.len());
    for request in batch {
        let response: Response = read_message(stream)?.ok_or_else(|| anyhow::anyhow!("kvd closed the connection"))?;
        anyhow::ensure!(request.is_answered_by(&response), "{} answered by {response:?}", request.name());
        answers.push(response);
    }
    Ok(answers)
}

fn client_loop(workload: &Workload, client: u64, started: Instant, progress: &Progress) -> anyhow::Result<Outcome> {
    let mut stream = connect(&workload.socket)?;
    let mut rng = SmallRng::seed_from_u64(0x5EED ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let value = vec![b'x'; workload.value_bytes];
    let mut outcome = Outcome { ops: 0, gets: 0, puts: 0, errors: 0, elapsed: Duration::ZERO, latency_ns: histogram() };
    let mut batch = Vec::with_capacity(workload.pipeline);
    loop {
        let take = match workload.stop {
            Stop::Ops(total) => {
                let claimed = progress.ops.fetch_add(workload.pipeline as u64, Ordering::Relaxed);
                if claimed >= total {
                    progress.ops.fetch_sub(workload.pipeline as u64, Ordering::Relaxed);
                    break;
                }
                (total - claimed).min(workload.pipeline as u64) as usize
            }
            Stop::Seconds(seconds) => {
                if started.elapsed().as_secs_f64() >= seconds {
                    break;
                }
                progress.ops.fetch_add(workload.pipeline as u64, Ordering::Relaxed);
                workload.pipeline
            }
        };
        batch.clear();
        for _ in 0..take {
            let k = key(rng.random_range(0..workload.keys));
            if rng.random_bool(workload.read_ratio) {
                batch.push(Request::Get { key: k });
            } else {
                let ttl_ms = workload.ttl_ms.map(|(low, high)| rng.random_range(low..=high));
                batch.push(Request::Put { key: k, value: value.clone(), ttl_ms });
            }
        }
        let sent = Instant::now();
        let answers = send_batch(&mut stream, &batch)?;
        let latency = (sent.elapsed().as_nanos() as u64).clamp(1, LATENCY_NS_MAX);
        for (request, answer) in batch.iter().zip(&answers) {
            outcome.latency_ns.saturating_record(latency);
            match request {
                Request::Get { .. } => outcome.gets += 1,
                _ => outcome.puts += 1,
            }
            if matches!(answer, Response::Error { .. }) {
                outcome.errors += 1;
            }
        }
        outcome.ops += take as u64;
    }
    Ok(outcome)
}

/// True once `run` has returned (for a progress display thread).
pub fn finished(progress: &Progress) -> bool {
    progress.done.load(Ordering::Relaxed)
}
