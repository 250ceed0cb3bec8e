//! One client connection: its socket, what it has sent and not yet had run
//! (`queued`), what it is owed and not yet sent (`out`), and when it stops
//! reading. The event loop drives it; every buffer here is bounded.

use super::sniff::{Inbound, Ingested};
use crate::clients::Client;
use crate::metrics::Metrics;
use crate::monitor::Feed;
use crate::pipeline::Queued;
use crate::resp::Session;
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

/// Requests decoded but not yet run, per connection, before kvd stops
/// reading from it (pipelining backpressure).
pub const PIPELINE_REQUESTS_MAX: usize = 1024;
/// Requests handed to a worker in one job.
pub const JOB_REQUESTS_MAX: usize = 256;
/// Unsent response bytes per connection before kvd stops reading from it.
pub const OUT_BYTES_MAX: usize = 32 * 1024 * 1024;

pub(super) struct Connection {
    stream: UnixStream,
    inbound: Inbound,
    queued: VecDeque<Queued>,
    /// A job of this connection's is running: its next one waits, so
    /// answers come back in order.
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
    /// Away with the job in flight; back with its answers.
    session: Option<Box<Session>>,
    client: Arc<Client>,
    /// After MONITOR: the commands streamed to this connection.
    monitor: Option<Arc<Mutex<Feed>>>,
}

impl Connection {
    pub(super) fn new(stream: UnixStream, session: Box<Session>) -> Self {
        let client = session.client.clone();
        Connection {
            stream,
            inbound: Inbound::new(),
            queued: VecDeque::new(),
            in_flight: false,
            out: Vec::new(),
            out_at: 0,
            closing: false,
            peer_done: false,
            writable_interest: false,
            last_input: Instant::now(),
            final_error: None,
            session: Some(session),
            client,
            monitor: None,
        }
    }

    /// Its entry in `Clients`.
    pub(super) fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Moves what MONITOR streamed to this connection into its unsent
    /// bytes; false if the feed overflowed (the monitor is too slow: close it).
    pub(super) fn take_monitored(&mut self) -> bool {
        let Some(feed) = &self.monitor else { return true };
        let mut feed = feed.lock();
        if feed.overflowed {
            return false;
        }
        if !feed.bytes.is_empty() && self.out.len() - self.out_at < OUT_BYTES_MAX {
            self.out.extend_from_slice(&feed.bytes);
            feed.bytes.clear();
        }
        true
    }

    pub(super) fn monitoring(&self) -> bool {
        self.monitor.is_some()
    }

    /// Gives back the session when the connection closes (None: it is away with a job).
    pub(super) fn take_session(&mut self) -> Option<Box<Session>> {
        self.session.take()
    }

    pub(super) fn stream_mut(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    pub(super) fn reading_paused(&self) -> bool {
        self.closing
            || self.peer_done
            || self.queued.len() >= PIPELINE_REQUESTS_MAX
            || self.out.len() - self.out_at >= OUT_BYTES_MAX
    }

    pub(super) fn idle(&self) -> bool {
        !self.in_flight && self.queued.is_empty() && self.final_error.is_none() && self.out_at == self.out.len()
    }

    /// Holding a partial hello or frame, and quiet since `timeout`.
    pub(super) fn stale(&self, timeout: std::time::Duration) -> bool {
        self.inbound.partial() && self.last_input.elapsed() >= timeout
    }

    /// Answered everything after the peer finished or kvd stopped reading.
    pub(super) fn done(&self) -> bool {
        (self.closing || self.peer_done) && self.idle()
    }

    /// Reads what the peer sent (unless paused) into `chunk` and decodes
    /// it; `to_end` reads until the socket says WouldBlock or end of stream
    /// even after a short read. An error: the socket failed.
    pub(super) fn read(&mut self, chunk: &mut [u8], to_end: bool, metrics: &Metrics) -> io::Result<()> {
        while !self.reading_paused() {
            match self.stream.read(chunk) {
                Ok(0) => {
                    self.peer_done = true;
                    break;
                }
                Ok(n) => {
                    self.last_input = Instant::now();
                    if let Ingested::Close { final_error } =
                        self.inbound.ingest(&chunk[..n], &mut self.queued, &mut self.out, metrics)
                    {
                        if final_error.is_some() {
                            self.final_error = final_error;
                        }
                        self.closing = true;
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
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// The next job's requests (at most `JOB_REQUESTS_MAX`), unless one is
    /// in flight or nothing is queued; the connection then waits for it.
    pub(super) fn next_job(&mut self) -> Option<(Vec<Queued>, Box<Session>)> {
        if self.in_flight || self.queued.is_empty() {
            return None;
        }
        let session = self.session.take()?;
        let take = self.queued.len().min(JOB_REQUESTS_MAX);
        self.in_flight = true;
        Some((self.queued.drain(..take).collect(), session))
    }

    /// The job could not be handed over (the pool is gone).
    pub(super) fn job_lost(&mut self, session: Box<Session>) {
        self.in_flight = false;
        // MONITOR starts it, RESET ends it.
        self.monitor = session.monitor.clone();
        self.session = Some(session);
    }

    /// A job's answers are ready: they join what is unsent, and its session
    /// comes back. Returns the buffer left over, emptied or not, for reuse.
    pub(super) fn answered(&mut self, answers: Vec<u8>, session: Box<Session>) -> Vec<u8> {
        self.in_flight = false;
        // MONITOR starts it, RESET ends it.
        self.monitor = session.monitor.clone();
        self.session = Some(session);
        if self.out_at == self.out.len() {
            // The usual case, nothing unsent: take the answers' buffer, no
            // copy, and give back the connection's old (empty) one.
            self.out_at = 0;
            std::mem::replace(&mut self.out, answers)
        } else {
            self.out.extend_from_slice(&answers);
            answers
        }
    }

    /// Sends what it can of the unsent bytes (the final error once every
    /// answer is in) and asks for a writable edge while some remain.
    /// An error: the socket failed.
    pub(super) fn flush(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        if !self.in_flight
            && self.queued.is_empty()
            && let Some(error) = self.final_error.take()
        {
            self.out.extend_from_slice(&error);
        }
        let mut failed = None;
        while self.out_at < self.out.len() {
            match self.stream.write(&self.out[self.out_at..]) {
                Ok(n) => self.out_at += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
        }
        let want_write = self.out_at < self.out.len();
        if want_write != self.writable_interest {
            let interest = if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            let _ = registry.reregister(&mut self.stream, token, interest);
            self.writable_interest = want_write;
        }
        failed.map_or(Ok(()), Err)
    }
}
