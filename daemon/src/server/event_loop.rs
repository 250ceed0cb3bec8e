//! The event loop: one mio thread owns the listener and every connection
//! (reads, handshakes, decoding, writes), runs the short jobs itself and
//! hands the rest to the workers.
//!
//! Short requests run on the loop, as Redis runs everything: reads of a
//! key, plain puts, and other writes of a key unless `--sync always`. The
//! loop gathers every ready connection's short job in a turn and runs them
//! together, so their puts share one write and, with `--sync always`, one
//! fdatasync, which the loop waits out as Redis does with `appendfsync
//! always` (pipeline.rs). Running on the loop saves two thread hand-offs
//! per request: at pipeline depth 1 they cost more than the request.

use super::connection::Connection;
use super::signals::Signals;
use super::workers::Workers;
use crate::context::Context;
use crate::metrics::Metrics;
use crate::pipeline::{self, Job};
use crate::resp::Session;
use crate::weight::Weight;
use blockkv_protocol::{HandshakeReply, PROTOCOL_VERSION};
use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Rounds of short jobs the event loop runs in one turn before it polls
/// for new input again.
const INLINE_ROUNDS_MAX: usize = 4;
/// How long shutdown waits for in-flight requests and unsent responses.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Largest answer buffer kept for reuse (`Loop::recycle`).
const SPARE_OUT_BYTES_MAX: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(500);

pub(super) const LISTENER: Token = Token(0);
pub(super) const SIGNALS: Token = Token(1);
pub(super) const WAKER: Token = Token(2);
const FIRST_CONNECTION: usize = 3;

pub(super) struct Loop {
    poll: Poll,
    connections: HashMap<Token, Connection>,
    /// Tokens are never reused, so a late answer cannot reach a newer
    /// connection that took an old one's place.
    next_token: usize,
    workers: Workers,
    metrics: Arc<Metrics>,
    ctx: Context,
    partial_timeout: Duration,
    /// Whether writes may run on the loop (not with `--sync always`).
    inline_writes: bool,
    /// Short jobs gathered this turn, run by `run_inline`.
    inline: Vec<Job>,
    /// Emptied answer buffers, for the next jobs (`Job::out`).
    spare_outs: Vec<Vec<u8>>,
    /// Where reads land, reused: a fresh zeroed array per read is costly
    /// at pipeline depth 1.
    read_buf: Box<[u8]>,
}

/// What the loop is given to start.
pub(super) struct LoopConfig {
    pub(super) partial_timeout: Duration,
    pub(super) inline_writes: bool,
}

impl Loop {
    pub(super) fn new(poll: Poll, workers: Workers, ctx: Context, config: LoopConfig) -> Loop {
        Loop {
            poll,
            connections: HashMap::new(),
            next_token: FIRST_CONNECTION,
            workers,
            metrics: ctx.metrics.clone(),
            ctx,
            partial_timeout: config.partial_timeout,
            inline_writes: config.inline_writes,
            inline: Vec::new(),
            spare_outs: Vec::new(),
            read_buf: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
        }
    }

    /// Serves until SIGTERM or SIGINT, then drains (for at most
    /// `SHUTDOWN_FLUSH_TIMEOUT`), closes every connection and stops the
    /// workers.
    pub(super) fn run(mut self, ctx: &Context, mut listener: UnixListener, mut signals: Signals) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut stopping: Option<Instant> = None;
        loop {
            let wait = if self.pending_inline() { Duration::ZERO } else { TICK };
            if let Err(err) = self.poll.poll(&mut events, Some(wait))
                && err.kind() != io::ErrorKind::Interrupted
            {
                return Err(err);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(&listener),
                    SIGNALS => signals.dispatch(|name| {
                        if stopping.is_none() {
                            tracing::info!(
                                connections = self.connections.len(),
                                "{name}: no new connections; finishing requests in flight"
                            );
                            self.poll.registry().deregister(&mut listener)?;
                            stopping = Some(Instant::now());
                        }
                        Ok(())
                    })?,
                    WAKER => self.collect_done(),
                    token => self.on_event(token, event.is_readable(), event.is_writable(), event.is_read_closed()),
                }
            }
            self.collect_done();
            self.run_inline(ctx);
            self.feed_monitors();
            self.sweep();
            if let Some(since) = stopping {
                let drained = self.connections.values().all(Connection::idle);
                if drained || since.elapsed() >= SHUTDOWN_FLUSH_TIMEOUT {
                    if !drained {
                        tracing::warn!("shutdown: gave up waiting for {} connections", self.connections.len());
                    }
                    break;
                }
            }
        }
        let Loop { poll, connections, workers, .. } = self;
        drop(connections);
        drop(poll);
        workers.join();
        Ok(())
    }

    fn accept(&mut self, listener: &UnixListener) {
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    self.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
                    if self.connections.len() >= self.ctx.settings.max_connections() {
                        // Over CONNECTIONS_MAX: say so in the handshake's
                        // place (best effort, never blocking), then close.
                        self.metrics.connections_refused.fetch_add(1, Ordering::Relaxed);
                        // (A RESP client reads this as garbage and gives up: also a refusal.)
                        let _ = stream.write(&HandshakeReply::Busy { server_version: PROTOCOL_VERSION }.encode());
                        tracing::warn!(
                            limit = self.ctx.settings.max_connections(),
                            "connection refused: at the connection limit"
                        );
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if self.poll.registry().register(&mut stream, token, Interest::READABLE).is_ok() {
                        let client = self.ctx.clients.register(self.ctx.socket_path.clone());
                        self.connections.insert(token, Connection::new(stream, Box::new(Session::new(client))));
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
            self.progress_and_resume(token);
        }
    }

    fn read(&mut self, token: Token, to_end: bool) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        if conn.read(&mut self.read_buf, to_end, &self.metrics).is_err() {
            self.drop_connection(token);
        }
    }

    /// `progress`, then, if that drained the answers below the limit, reads
    /// what waited meanwhile (an edge-triggered poll reports no bytes that
    /// arrived while reading was paused) and moves on again.
    fn progress_and_resume(&mut self, token: Token) {
        let was_paused = self.connections.get(&token).is_some_and(Connection::reading_paused);
        self.progress(token);
        if was_paused && self.connections.get(&token).is_some_and(|c| !c.reading_paused()) {
            self.read(token, true);
            self.progress(token);
        }
    }

    /// Dispatches queued requests, writes pending bytes, closes if done.
    fn progress(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else { return };
        if let Some((requests, session)) = conn.next_job() {
            let short = requests.iter().all(|request| match request.weight() {
                Weight::Read | Weight::Put => true,
                Weight::Write => self.inline_writes,
                Weight::Heavy => false,
            });
            let job = Job { token, requests, session, out: self.spare_outs.pop().unwrap_or_default() };
            if short {
                self.inline.push(job);
            } else if let Err(job) = self.workers.send(job) {
                conn.job_lost(job.session);
            }
        }
        let flushed = conn.flush(self.poll.registry(), token);
        if flushed.is_err() || conn.done() {
            self.drop_connection(token);
        }
    }

    fn collect_done(&mut self) {
        while let Some(job) = self.workers.try_done() {
            self.finish(job);
        }
    }

    /// Runs the short jobs gathered this turn, together; answering them may
    /// gather more (a connection with more queued), which run too, for a
    /// bounded number of rounds (the rest wait for the next turn, which then
    /// does not block: see `pending_inline`).
    fn run_inline(&mut self, ctx: &Context) {
        for _ in 0..INLINE_ROUNDS_MAX {
            if self.inline.is_empty() {
                return;
            }
            let mut jobs = std::mem::take(&mut self.inline);
            pipeline::run_jobs(ctx, &mut jobs);
            for job in jobs {
                self.finish(job);
            }
        }
    }

    /// Short jobs are waiting for the next turn.
    fn pending_inline(&self) -> bool {
        !self.inline.is_empty()
    }

    /// A job's answers are ready: queue them and move the connection on.
    fn finish(&mut self, job: Job) {
        let Job { token, out: answers, mut session, .. } = job;
        let Some(conn) = self.connections.get_mut(&token) else {
            // Closed meanwhile: what the session held goes now.
            session.unwatch(&self.ctx.watches);
            if session.monitor.is_some() {
                self.ctx.monitors.remove(session.client.id);
            }
            self.recycle(answers);
            return;
        };
        let spare = conn.answered(answers, session);
        self.recycle(spare);
        self.progress_and_resume(token);
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

    /// Moves what MONITOR streamed into each monitor's unsent bytes and
    /// sends it; drops monitors too slow to keep up.
    fn feed_monitors(&mut self) {
        if !self.ctx.monitors.any() {
            return;
        }
        let monitors: Vec<Token> = self.connections.iter().filter(|(_, c)| c.monitoring()).map(|(t, _)| *t).collect();
        for token in monitors {
            let Some(conn) = self.connections.get_mut(&token) else { continue };
            if !conn.take_monitored() {
                tracing::info!("closing a MONITOR connection that does not read fast enough");
                self.drop_connection(token);
                continue;
            }
            self.progress(token);
        }
    }

    /// Closes peers that sent half a hello or half a frame and went quiet,
    /// and those CLIENT KILL named.
    fn sweep(&mut self) {
        let stale: Vec<Token> =
            self.connections.iter().filter(|(_, c)| c.stale(self.partial_timeout)).map(|(t, _)| *t).collect();
        for token in stale {
            tracing::info!("closing a connection that sent a partial message and went quiet");
            self.drop_connection(token);
        }
        let killed: Vec<Token> =
            self.connections.iter().filter(|(_, c)| c.client().killed()).map(|(t, _)| *t).collect();
        for token in killed {
            tracing::info!("closing a connection: CLIENT KILL");
            self.drop_connection(token);
        }
    }

    fn drop_connection(&mut self, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            let _ = self.poll.registry().deregister(conn.stream_mut());
            self.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            self.ctx.clients.unregister(conn.client().id);
            self.ctx.monitors.remove(conn.client().id);
            if let Some(mut session) = conn.take_session() {
                session.unwatch(&self.ctx.watches);
            }
        }
        // At most one spare answer buffer per open connection (`recycle`).
        self.spare_outs.truncate(self.connections.len());
    }
}
