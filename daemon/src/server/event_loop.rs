//! The event loop: one mio thread owns the listener and every connection
//! (reads, handshakes, frame decoding, writes); a pool of worker threads runs
//! the engine calls. A connection's first byte says what it speaks: the
//! native protocol's magic, or else RESP (Redis clients; `resp/`).
//!
//! Short requests run on the event loop itself, as Redis runs everything:
//! reads of a key, plain puts, and other writes of a key unless `--sync
//! always`. A job is one connection's queued requests; the loop gathers
//! every ready connection's short job in a turn and runs them together, so
//! their puts share one write and, with `--sync always`, one fdatasync,
//! which the loop waits out as Redis does with `appendfsync always`
//! (pipeline.rs). Other writes under `--sync always` (each would wait for
//! its own sync) and long requests go to the workers, whose waits group
//! into shared syncs. Running on the loop saves two thread hand-offs per
//! request: at pipeline depth 1 they cost more than the request. A connection's pipelined requests go to a worker as one
//! job, in order, so its responses come back in order; different
//! connections' jobs run at once and share the engine's write groups.
//!
//! Every buffer is bounded: `CONNECTIONS_MAX`, the frame limit, requests
//! queued per connection, unsent response bytes per connection; a peer that
//! sends half a hello or half a frame and then nothing is closed after a
//! timeout. A bad frame (or a RESP protocol error) gets an error response,
//! then its connection is closed; nobody else notices.

use crate::handler::Context;
use crate::metrics::Metrics;
use crate::pipeline::{self, Queued, Weight, frame_response};
use crate::resp::{self, ScanCursors};
use blockkv_protocol::handshake::{HELLO_BYTES, is_native_first_byte};
use blockkv_protocol::resp::RespDecoder;
use blockkv_protocol::{ErrorKind, FrameDecoder, HandshakeReply, Hello, PROTOCOL_VERSION, Request, Response, codec};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests decoded but not yet run, per connection, before kvd stops
/// reading from it (pipelining backpressure).
pub const PIPELINE_REQUESTS_MAX: usize = 1024;
/// Requests handed to a worker in one job.
pub const JOB_REQUESTS_MAX: usize = 256;
/// Rounds of short jobs the event loop runs in one turn before it polls
/// for new input again.
const INLINE_ROUNDS_MAX: usize = 4;
/// Unsent response bytes per connection before kvd stops reading from it.
pub const OUT_BYTES_MAX: usize = 32 * 1024 * 1024;
/// A connection that holds half a hello or half a frame this long is
/// closed (default of kvd's hidden `--partial-timeout-ms`).
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests and unsent responses.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Largest answer buffer kept for reuse (`Loop::recycle`).
const SPARE_OUT_BYTES_MAX: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(500);

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
const WAKER: Token = Token(2);
const FIRST_CONNECTION: usize = 3;

/// What the server needs to run.
pub struct Server {
    pub listener: UnixListener,
    pub store: Arc<blockkv_engine::Store>,
    pub metrics: Arc<Metrics>,
    pub workers: usize,
    pub max_connections: usize,
    pub partial_timeout: Duration,
    pub data_path: String,
    pub sync_policy: String,
    pub on_sighup: Box<dyn Fn() + Send>,
}

struct Job {
    token: Token,
    requests: Vec<Queued>,
    /// Where the answers go: an emptied buffer of an earlier answer when
    /// there is one, so its capacity is reused (growing a fresh one, reply
    /// by reply, was 6% of kvd's time at GET pipeline 16: perf).
    out: Vec<u8>,
}

enum Phase {
    /// Waiting for the 6-byte hello.
    Hello(Vec<u8>),
    /// Native frames, after the handshake.
    Open,
    /// RESP, from the first byte on (there is no handshake).
    Resp(RespDecoder),
}

struct Connection {
    stream: UnixStream,
    phase: Phase,
    decoder: FrameDecoder,
    queued: VecDeque<Queued>,
    in_flight: bool,
    out: Vec<u8>,
    out_at: usize,
    /// Stop reading: answer what is queued, flush, then close.
    closing: bool,
    /// The peer shut its writing side; close once answered.
    peer_done: bool,
    writable_interest: bool,
    last_input: Instant,
    /// Sent after every earlier answer, before closing (a bad frame),
    /// already encoded.
    final_error: Option<Vec<u8>>,
}

impl Connection {
    fn new(stream: UnixStream) -> Self {
        Connection {
            stream,
            phase: Phase::Hello(Vec::with_capacity(HELLO_BYTES)),
            decoder: FrameDecoder::new(),
            queued: VecDeque::new(),
            in_flight: false,
            out: Vec::new(),
            out_at: 0,
            closing: false,
            peer_done: false,
            writable_interest: false,
            last_input: Instant::now(),
            final_error: None,
        }
    }

    fn reading_paused(&self) -> bool {
        self.closing
            || self.peer_done
            || self.queued.len() >= PIPELINE_REQUESTS_MAX
            || self.out.len() - self.out_at >= OUT_BYTES_MAX
    }

    fn idle(&self) -> bool {
        !self.in_flight && self.queued.is_empty() && self.final_error.is_none() && self.out_at == self.out.len()
    }

    /// Holding a partial hello or frame.
    fn partial(&self) -> bool {
        match &self.phase {
            Phase::Hello(got) => !got.is_empty(),
            Phase::Open => self.decoder.buffered_bytes() > 0,
            Phase::Resp(decoder) => decoder.buffered_bytes() > 0,
        }
    }
}

impl Server {
    /// Serves until SIGTERM or SIGINT, then drains and returns.
    pub fn run(self) -> io::Result<()> {
        let poll = Poll::new()?;
        let mut listener = self.listener;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (job_tx, job_rx) = channel::<Job>();
        let (done_tx, done_rx) = channel::<(Token, Vec<u8>)>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let cursors = Arc::new(ScanCursors::default());
        let workers: Vec<_> = (0..self.workers)
            .map(|i| {
                let (jobs, done, waker) = (job_rx.clone(), done_tx.clone(), waker.clone());
                let (store, metrics, cursors) = (self.store.clone(), self.metrics.clone(), cursors.clone());
                let (data_path, sync_policy) = (self.data_path.clone(), self.sync_policy.clone());
                std::thread::Builder::new().name(format!("kvd-worker-{i}")).spawn(move || {
                    let ctx = Context {
                        store: &store,
                        metrics: &metrics,
                        data_path: &data_path,
                        sync_policy: &sync_policy,
                        cursors: &cursors,
                    };
                    worker(&ctx, &jobs, &done, &waker)
                })
            })
            .collect::<io::Result<_>>()?;
        drop(done_tx);
        let mut loop_state = Loop {
            poll,
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            jobs: job_tx,
            done: done_rx,
            metrics: self.metrics.clone(),
            max_connections: self.max_connections,
            partial_timeout: self.partial_timeout,
            inline_writes: self.sync_policy != "always",
            inline: Vec::new(),
            spare_outs: Vec::new(),
            read_buf: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
        };
        let ctx = Context {
            store: &self.store,
            metrics: &self.metrics,
            data_path: &self.data_path,
            sync_policy: &self.sync_policy,
            cursors: &cursors,
        };
        let mut events = Events::with_capacity(1024);
        let mut stopping: Option<Instant> = None;
        loop {
            let wait = if loop_state.pending_inline() { Duration::ZERO } else { TICK };
            if let Err(err) = loop_state.poll.poll(&mut events, Some(wait))
                && err.kind() != io::ErrorKind::Interrupted
            {
                return Err(err);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => loop_state.accept(&listener),
                    SIGNALS => {
                        for signal in signals.pending() {
                            match signal {
                                SIGHUP => {
                                    tracing::info!("SIGHUP: reopening the log file");
                                    (self.on_sighup)();
                                }
                                _ if stopping.is_none() => {
                                    let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                                    tracing::info!(
                                        connections = loop_state.connections.len(),
                                        "{name}: no new connections; finishing requests in flight"
                                    );
                                    loop_state.poll.registry().deregister(&mut listener)?;
                                    stopping = Some(Instant::now());
                                }
                                _ => {}
                            }
                        }
                    }
                    WAKER => loop_state.collect_done(),
                    token => {
                        loop_state.on_event(token, event.is_readable(), event.is_writable(), event.is_read_closed())
                    }
                }
            }
            loop_state.collect_done();
            loop_state.run_inline(&ctx);
            loop_state.sweep();
            if let Some(since) = stopping {
                let drained = loop_state.connections.values().all(Connection::idle);
                if drained || since.elapsed() >= SHUTDOWN_FLUSH_TIMEOUT {
                    if !drained {
                        tracing::warn!("shutdown: gave up waiting for {} connections", loop_state.connections.len());
                    }
                    break;
                }
            }
        }
        drop(loop_state);
        for handle in workers {
            let _ = handle.join();
        }
        Ok(())
    }
}

fn worker(ctx: &Context<'_>, jobs: &Mutex<Receiver<Job>>, done: &Sender<(Token, Vec<u8>)>, waker: &Waker) {
    loop {
        // One job at a time: plain puts, which gain from sharing a write,
        // run on the event loop; a worker's job is answered as soon as it
        // is done, never held behind another connection's long one.
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let mut outs = [job.out];
        pipeline::run_jobs(ctx, vec![job.requests], &mut outs);
        let [out] = outs;
        if done.send((job.token, out)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

struct Loop {
    poll: Poll,
    connections: HashMap<Token, Connection>,
    /// Tokens are never reused, so a late answer cannot reach a newer
    /// connection that took an old one's place.
    next_token: usize,
    jobs: Sender<Job>,
    done: Receiver<(Token, Vec<u8>)>,
    metrics: Arc<Metrics>,
    max_connections: usize,
    partial_timeout: Duration,
    /// Whether writes may run on the loop (not with `--sync always`).
    inline_writes: bool,
    /// Short jobs gathered this turn, run by `run_inline`.
    inline: Vec<Job>,
    /// Emptied answer buffers, for the next jobs (`Job::out`).
    spare_outs: Vec<Vec<u8>>,
    /// Where reads land, reused: a fresh zeroed 64 KiB array per read was
    /// 12% of kvd's time at pipeline depth 1 (perf).
    read_buf: Box<[u8]>,
}

impl Loop {
    fn accept(&mut self, listener: &UnixListener) {
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    self.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
                    if self.connections.len() >= self.max_connections {
                        // Over CONNECTIONS_MAX: say so in the handshake's
                        // place (best effort, never blocking), then close.
                        self.metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
                        // (A RESP client reads this as garbage and gives up: also a refusal.)
                        let _ = stream.write(&HandshakeReply::Busy { server_version: PROTOCOL_VERSION }.encode());
                        tracing::warn!(limit = self.max_connections, "connection refused: at the connection limit");
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if self.poll.registry().register(&mut stream, token, Interest::READABLE).is_ok() {
                        self.connections.insert(token, Connection::new(stream));
                        self.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    tracing::error!("accept failed: {err}");
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, token: Token, readable: bool, writable: bool, read_closed: bool) {
        if !self.connections.contains_key(&token) {
            return;
        }
        if readable || read_closed {
            // After the peer's shutdown no new edge comes: read to the end.
            self.read(token, read_closed);
        }
        if writable || readable {
            let was_paused = self.connections.get(&token).is_some_and(Connection::reading_paused);
            self.progress(token);
            // Answers drained below the limit: read what waited meanwhile
            // (no new edge reports bytes that arrived while paused).
            if was_paused && self.connections.get(&token).is_some_and(|c| !c.reading_paused()) {
                self.read(token, true);
                self.progress(token);
            }
        }
    }

    /// Reads what the peer sent (unless paused) and decodes it; `to_end`
    /// reads until the socket says WouldBlock or end of stream even after a
    /// short read.
    fn read(&mut self, token: Token, to_end: bool) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        let chunk = &mut self.read_buf[..];
        while !conn.reading_paused() {
            match conn.stream.read(chunk) {
                Ok(0) => {
                    conn.peer_done = true;
                    break;
                }
                Ok(n) => {
                    conn.last_input = Instant::now();
                    if !ingest(conn, &chunk[..n], &self.metrics) {
                        break;
                    }
                    // A short read emptied the socket: bytes that arrive
                    // later raise a new edge, so no read is needed just to
                    // see WouldBlock (one system call per request saved).
                    if n < chunk.len() && !to_end {
                        break;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.drop_connection(token);
                    return;
                }
            }
        }
    }

    /// Dispatches queued requests, writes pending bytes, closes if done.
    fn progress(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        if !conn.in_flight && !conn.queued.is_empty() {
            let take = conn.queued.len().min(JOB_REQUESTS_MAX);
            let requests: Vec<Queued> = conn.queued.drain(..take).collect();
            conn.in_flight = true;
            let short = requests.iter().all(|request| match request.weight() {
                Weight::Read | Weight::Put => true,
                Weight::Write => self.inline_writes,
                Weight::Heavy => false,
            });
            let job = Job { token, requests, out: self.spare_outs.pop().unwrap_or_default() };
            if short {
                self.inline.push(job);
            } else if self.jobs.send(job).is_err() {
                conn.in_flight = false;
            }
        }
        if !conn.in_flight
            && conn.queued.is_empty()
            && let Some(error) = conn.final_error.take()
        {
            conn.out.extend_from_slice(&error);
        }
        let mut failed = false;
        while conn.out_at < conn.out.len() {
            match conn.stream.write(&conn.out[conn.out_at..]) {
                Ok(n) => conn.out_at += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if conn.out_at == conn.out.len() {
            conn.out.clear();
            conn.out_at = 0;
        }
        let want_write = conn.out_at < conn.out.len();
        if want_write != conn.writable_interest {
            let interest = if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            let _ = self.poll.registry().reregister(&mut conn.stream, token, interest);
            conn.writable_interest = want_write;
        }
        if failed || ((conn.closing || conn.peer_done) && conn.idle()) {
            self.drop_connection(token);
        }
    }

    fn collect_done(&mut self) {
        while let Ok((token, bytes)) = self.done.try_recv() {
            self.finish(token, bytes);
        }
    }

    /// Runs the short jobs gathered this turn, together; answering them may
    /// gather more (a connection with more queued), which run too, for a
    /// bounded number of rounds (the rest wait for the next turn, which then
    /// does not block: see `pending_inline`).
    fn run_inline(&mut self, ctx: &Context<'_>) {
        for _ in 0..INLINE_ROUNDS_MAX {
            if self.inline.is_empty() {
                return;
            }
            let mut tokens = Vec::with_capacity(self.inline.len());
            let mut requests = Vec::with_capacity(self.inline.len());
            let mut outs = Vec::with_capacity(self.inline.len());
            for job in self.inline.drain(..) {
                tokens.push(job.token);
                requests.push(job.requests);
                outs.push(job.out);
            }
            pipeline::run_jobs(ctx, requests, &mut outs);
            for (token, out) in tokens.into_iter().zip(outs) {
                self.finish(token, out);
            }
        }
    }

    /// Short jobs are waiting for the next turn.
    fn pending_inline(&self) -> bool {
        !self.inline.is_empty()
    }

    /// A job's answers are ready: queue them and move the connection on.
    fn finish(&mut self, token: Token, answers: Vec<u8>) {
        let Some(conn) = self.connections.get_mut(&token) else {
            self.recycle(answers);
            return;
        };
        conn.in_flight = false;
        let spare = if conn.out_at == conn.out.len() {
            // The usual case, nothing unsent: take the answers' buffer, no
            // copy, and keep the connection's old (empty) one for reuse.
            conn.out_at = 0;
            std::mem::replace(&mut conn.out, answers)
        } else {
            conn.out.extend_from_slice(&answers);
            answers
        };
        let was_paused = conn.reading_paused();
        self.recycle(spare);
        self.progress(token);
        // Reading may have been paused by backpressure: resume by hand,
        // since an edge-triggered poll will not report the old bytes.
        if was_paused && self.connections.get(&token).is_some_and(|c| !c.reading_paused()) {
            self.read(token, true);
            self.progress(token);
        }
    }

    /// Keeps an answer buffer for a later job, emptied; not a large one
    /// (one big answer should not pin its memory) nor more than one per
    /// connection.
    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if bytes.capacity() <= SPARE_OUT_BYTES_MAX && self.spare_outs.len() < self.connections.len() {
            bytes.clear();
            self.spare_outs.push(bytes);
        }
    }

    /// Closes peers that sent half a hello or half a frame and went quiet.
    fn sweep(&mut self) {
        let stale: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| c.partial() && c.last_input.elapsed() >= self.partial_timeout)
            .map(|(t, _)| *t)
            .collect();
        for token in stale {
            tracing::info!("closing a connection that sent a partial message and went quiet");
            self.drop_connection(token);
        }
    }

    fn drop_connection(&mut self, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        }
        // At most one spare answer buffer per open connection (`recycle`).
        self.spare_outs.truncate(self.connections.len());
    }
}

/// Feeds received bytes through the handshake and the frame decoder.
/// Returns false when the connection stops reading (refused or bad input).
fn ingest(conn: &mut Connection, mut input: &[u8], metrics: &Metrics) -> bool {
    if let Phase::Hello(got) = &mut conn.phase
        && got.is_empty()
        && !input.is_empty()
        && !is_native_first_byte(input[0])
    {
        conn.phase = Phase::Resp(RespDecoder::new());
    }
    if let Phase::Resp(decoder) = &mut conn.phase {
        decoder.feed(input);
        loop {
            match decoder.next_command() {
                Ok(Some(command)) => {
                    let quit = resp::is_quit(&command);
                    conn.queued.push_back(Queued::Resp(command));
                    if quit {
                        conn.closing = true;
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(err) => {
                    let mut reply = Vec::new();
                    blockkv_protocol::resp::put_error(&mut reply, &format!("ERR {err}"));
                    return refuse(conn, metrics, err.to_string(), reply);
                }
            }
        }
    }
    if let Phase::Hello(got) = &mut conn.phase {
        let take = (HELLO_BYTES - got.len()).min(input.len());
        got.extend_from_slice(&input[..take]);
        input = &input[take..];
        if got.len() < HELLO_BYTES {
            return true;
        }
        let mut hello = [0u8; HELLO_BYTES];
        hello.copy_from_slice(got);
        let reply = match Hello::decode(&hello) {
            Ok(hello) => HandshakeReply::answer(&hello),
            Err(_) => HandshakeReply::VersionRefused { server_version: PROTOCOL_VERSION },
        };
        conn.out.extend_from_slice(&reply.encode());
        if !matches!(reply, HandshakeReply::Accepted { .. }) {
            conn.closing = true;
            return false;
        }
        conn.phase = Phase::Open;
    }
    loop {
        match conn.decoder.next_frame(&mut input) {
            Ok(Some(payload)) => match codec::decode::<Request>(&payload) {
                Ok(request) => conn.queued.push_back(Queued::Native(request)),
                Err(err) => return refuse_frame(conn, metrics, format!("request does not decode: {err}")),
            },
            Ok(None) => return true,
            Err(err) => return refuse_frame(conn, metrics, format!("bad frame: {err}")),
        }
    }
}

/// A bad native frame, answered with a BadRequest error response.
fn refuse_frame(conn: &mut Connection, metrics: &Metrics, message: String) -> bool {
    let mut reply = Vec::new();
    frame_response(&Response::error(ErrorKind::BadRequest, message.clone()), &mut reply);
    refuse(conn, metrics, message, reply)
}

/// Bad input: the requests decoded before it are still answered, in
/// order, then `reply` (the error in the connection's protocol), then the
/// connection closes.
fn refuse(conn: &mut Connection, metrics: &Metrics, message: String, reply: Vec<u8>) -> bool {
    metrics.bad_frames.fetch_add(1, Ordering::Relaxed);
    tracing::info!("closing a connection: {message}");
    conn.final_error = Some(reply);
    conn.closing = true;
    false
}
