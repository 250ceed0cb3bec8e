//! Running jobs: each is one connection's pipelined requests, in order;
//! the event loop runs every ready connection's short job of a turn
//! together. A run of consecutive plain puts — native `Put`, RESP `SET key
//! value`, from one connection's pipeline or from several connections'
//! jobs — goes to the engine as one atomic batch (`Store::put_all`, keys
//! and values borrowed from the requests): one `pwrite` and, with `--sync
//! always`, one `fdatasync` for all of them, where one at a time would pay
//! a system call (and a sync wait) each. Each put still gets its own
//! answer, sent only once the shared write is as durable as a single put
//! would be. The run is atomic (all applied or none, even across a
//! crash): stronger than each put needs, and a refusal (no space) refuses
//! every put of the run.

use crate::context::Context;
use crate::handler;
use crate::metrics;
use crate::resp::{self, Call, Session};
use crate::weight::Weight;
use blockkv_engine::limits::{BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use blockkv_protocol::resp::put_simple;
use blockkv_protocol::{ErrorKind, Request, Response, frame_message};
use std::time::Instant;

/// Key and value bytes one shared write carries at most; a longer run is
/// cut into several (the engine's batch limit is 64 MiB).
pub const SHARED_WRITE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// One connection's queued requests, run in order, with its session; their
/// answers go to `out`.
#[derive(Debug)]
pub struct Job {
    pub token: mio::Token,
    pub requests: Vec<Queued>,
    pub session: Box<Session>,
    /// An emptied buffer of an earlier answer when there is one, so its
    /// capacity is reused instead of grown reply by reply.
    pub out: Vec<u8>,
}

/// A decoded request waiting to run: a RESP command comes with its spec.
#[derive(Debug)]
pub enum Queued {
    Native(Request),
    Resp(Call),
}

impl Queued {
    pub fn weight(&self) -> Weight {
        if self.could_share_put() {
            return Weight::Put;
        }
        match self {
            Queued::Native(request) => match request {
                Request::Ping | Request::Get { .. } | Request::Exists { .. } | Request::Ttl { .. } => Weight::Read,
                Request::Put { .. } | Request::Delete { .. } | Request::Expire { .. } | Request::Batch(_) => {
                    Weight::Write
                }
                Request::Scan { .. } | Request::Stats | Request::Checkpoint | Request::Compact => Weight::Heavy,
            },
            Queued::Resp(call) => call.weight(),
        }
    }

    /// The key of a plain GET.
    fn read_key(&self) -> Option<&[u8]> {
        match self {
            Queued::Native(Request::Get { key }) => Some(key),
            Queued::Native(_) => None,
            Queued::Resp(call) => call.read_key(),
        }
    }

    /// A plain put, wherever it runs (inside MULTI it is only queued,
    /// which is as short).
    fn could_share_put(&self) -> bool {
        match self {
            Queued::Native(Request::Put { ttl_ms: None, .. }) => true,
            Queued::Native(_) => false,
            Queued::Resp(call) => call.is_plain_put(),
        }
    }

    /// Key and value of a put that may share a write: no TTL, within
    /// limits, not queued in a transaction.
    fn plain_put(&self, session: &Session) -> Option<(&[u8], &[u8])> {
        let (key, value) = match self {
            Queued::Native(Request::Put { key, value, ttl_ms: None }) => (key.as_slice(), value.as_slice()),
            Queued::Native(_) => return None,
            Queued::Resp(call) => call.plain_put(session)?,
        };
        (key.len() <= KEY_BYTES_MAX && value.len() <= VALUE_BYTES_MAX).then_some((key, value))
    }
}

/// Runs several jobs (each one connection's requests, in order, with its
/// session), appending each job's answers to its `out`. Puts from
/// different jobs may share a write: they are independent, and each
/// connection's own order is kept.
pub fn run_jobs(ctx: &Context, jobs: &mut [Job]) {
    let now_ms = ctx.clients.since_start_ms();
    for job in jobs.iter() {
        job.session.client.active(now_ms);
    }
    // A turn's GETs fetch their records together first: each GET's index
    // entry and record are cache misses, which overlap when touched together.
    let reads: Vec<&[u8]> = jobs.iter().flat_map(|job| &job.requests).filter_map(Queued::read_key).collect();
    ctx.store.prefetch(&reads);
    let mut requests: Vec<std::vec::IntoIter<Queued>> =
        jobs.iter_mut().map(|job| std::mem::take(&mut job.requests).into_iter()).collect();
    let mut pending =
        requests.iter_mut().enumerate().flat_map(|(job, requests)| requests.map(move |r| (job, r))).peekable();
    while let Some((job, request)) = pending.next() {
        let mut bytes = request.plain_put(&jobs[job].session).map(|(key, value)| key.len() + value.len());
        let mut run = vec![(job, request)];
        while let Some(so_far) = bytes
            && run.len() < BATCH_OPS_MAX
            && let Some(next) = pending.next_if(|(next_job, next)| {
                next.plain_put(&jobs[*next_job].session)
                    .is_some_and(|(key, value)| so_far + key.len() + value.len() <= SHARED_WRITE_BYTES_MAX)
            })
        {
            bytes = next.1.plain_put(&jobs[next.0].session).map(|(key, value)| so_far + key.len() + value.len());
            run.push(next);
        }
        if run.len() >= 2 {
            shared_put(ctx, run, jobs);
        } else {
            for (job, request) in run {
                let job = &mut jobs[job];
                run_one(ctx, request, &mut job.session, &mut job.out);
            }
        }
    }
}

fn run_one(ctx: &Context, request: Queued, session: &mut Session, out: &mut Vec<u8>) {
    match request {
        Queued::Native(request) => frame_response(&handler::handle(ctx, request), out),
        // QUIT's closing is arranged when it is read (server/sniff.rs).
        Queued::Resp(call) => call.execute(ctx, session, out),
    }
}

/// One write for a run of two or more plain puts; each answer goes to its
/// job's output.
fn shared_put(ctx: &Context, run: Vec<(usize, Queued)>, jobs: &mut [Job]) {
    let started = Instant::now();
    let answer_to: Vec<(usize, bool)> =
        run.iter().map(|(job, request)| (*job, matches!(request, Queued::Native(_)))).collect();
    // Borrowed from the requests: `run_jobs` sends plain puts only.
    let puts: Vec<(&[u8], &[u8])> =
        run.iter().filter_map(|(job, request)| request.plain_put(&jobs[*job].session)).collect();
    if ctx.monitors.any() {
        for (job, request) in &run {
            if let Some((key, value)) = request.plain_put(&jobs[*job].session) {
                ctx.monitors.publish(&ctx.socket_path, [&b"SET"[..], key, value].into_iter());
            }
        }
    }
    let result = {
        let _shared = ctx.isolation.read();
        let result = ctx.store.put_all(&puts);
        if result.is_ok() {
            puts.iter().for_each(|(key, _)| ctx.watches.touch(key));
        }
        result
    };
    let elapsed_us = started.elapsed().as_micros() as u64;
    for (job, native) in answer_to {
        if native {
            ctx.metrics.record(metrics::PUT, elapsed_us, result.is_ok());
        } else {
            ctx.metrics.record_resp(resp::set_index(), elapsed_us, result.is_ok());
        }
        let out = &mut jobs[job].out;
        match (native, &result) {
            (true, Ok(())) => frame_response(&Response::Done, out),
            (true, Err(err)) => frame_response(&handler::error_response(err), out),
            (false, Ok(())) => put_simple(out, "OK"),
            (false, Err(err)) => resp::put_engine_error(out, err),
        }
    }
}

/// Appends `response` as a frame (an encoding failure becomes an Internal
/// error response instead).
pub fn frame_response(response: &Response, out: &mut Vec<u8>) {
    if let Err(err) = frame_message(response, out) {
        let fallback = Response::error(ErrorKind::Internal, format!("response could not be encoded: {err}"));
        let _ = frame_message(&fallback, out);
    }
}
