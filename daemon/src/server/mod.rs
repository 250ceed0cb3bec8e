//! kvd's server: one event-loop thread owns the listener and every
//! connection; a pool of worker threads runs the engine calls that may
//! take long. A connection's first byte says what it speaks: the native
//! protocol's magic, or else RESP (Redis clients; `resp/`).
//!
//! Where things live:
//! - `event_loop.rs`: the poll loop, accepting, which jobs run on the loop
//!   and which go to the workers, shutdown's drain.
//! - `connection.rs`: one connection's socket, queue, unsent bytes and
//!   backpressure.
//! - `sniff.rs`: the first-byte rule, the native handshake and frames, RESP
//!   decoding (each command resolved to its spec), bad input.
//! - `workers.rs`: the worker pool and its channels.
//! - `signals.rs`: SIGTERM, SIGINT, SIGHUP.
//!
//! A connection's pipelined requests go out as one job, in order, so its
//! responses come back in order; different connections' jobs run at once
//! and share the engine's write groups. Every buffer is bounded:
//! `CONNECTIONS_MAX`, the frame limit, requests queued per connection,
//! unsent response bytes per connection; a peer that sends half a hello or
//! half a frame and then nothing is closed after a timeout.

mod connection;
mod event_loop;
mod signals;
mod sniff;
mod workers;

use crate::context::Context;
use blockkv_engine::SyncPolicy;
use event_loop::{LISTENER, Loop, LoopConfig, SIGNALS, WAKER};
use mio::net::UnixListener;
use mio::{Interest, Poll, Waker};
use signals::Signals;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use workers::Workers;

/// A connection that holds half a hello or half a frame this long is
/// closed (default of kvd's hidden `--partial-timeout-ms`).
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server needs to run.
pub struct Server {
    pub listener: UnixListener,
    /// What every command runs against.
    pub ctx: Context,
    pub workers: usize,
    pub partial_timeout: Duration,
    pub on_sighup: Box<dyn Fn() + Send>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("workers", &self.workers).finish_non_exhaustive()
    }
}

impl Server {
    /// Serves until SIGTERM or SIGINT, then drains and returns.
    pub fn run(self) -> io::Result<()> {
        let poll = Poll::new()?;
        let mut listener = self.listener;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let signals = Signals::register(poll.registry(), SIGNALS, self.on_sighup)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let workers = Workers::spawn(self.workers, &self.ctx, waker)?;
        let config = LoopConfig {
            partial_timeout: self.partial_timeout,
            // Under `--sync always` each such write would wait out its own sync on the loop.
            inline_writes: self.ctx.sync_policy != SyncPolicy::Always,
        };
        Loop::new(poll, workers, self.ctx.clone(), config).run(&self.ctx, listener, signals)
    }
}
