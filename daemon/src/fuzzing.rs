//! The RESP fuzz target's entry (daemon/fuzz): a byte stream decoded as kvd
//! decodes a connection's input and every command run against a fresh
//! in-memory store, through the same path the event loop takes
//! (`pipeline::run_jobs`, shared puts, transactions, WATCH), on two
//! sessions so that one client's writes meet the other's watches.

use crate::context::Context;
use crate::pipeline::{Job, Queued};
use crate::resp::{Call, Session};
use crate::settings::Settings;
use blockkv_engine::{Options, SimDisk, Store, SyncPolicy};
use blockkv_protocol::resp::{Decoded, RespDecoder};
use std::sync::Arc;

/// Bytes of the fuzz store's simulated disk: small, so that full-store
/// paths are reached too.
const FUZZ_STORE_BYTES: u64 = 512 * 1024;
/// Commands one input runs at most (a bound on the run's time).
const FUZZ_COMMANDS_MAX: usize = 2_000;

/// Runs `data` as RESP input. Each command goes to the first or the second
/// client, chosen by the low bit of its name's length; runs of commands
/// form jobs as a pipelined connection's would. Returns what each client
/// was answered.
pub fn resp_stream(data: &[u8]) -> [Vec<u8>; 2] {
    let opts = Options { background: false, sync: SyncPolicy::None, ..Options::default() };
    let mut answers = [Vec::new(), Vec::new()];
    let Ok(store) = Store::create_on(Arc::new(SimDisk::new(FUZZ_STORE_BYTES)), opts) else { return answers };
    let settings = Settings::new(1024, "info", Box::new(|_| Ok(())));
    let ctx = Context::new(Arc::new(store), "<fuzz>", "<fuzz>", SyncPolicy::None, settings);
    let mut sessions: Vec<Box<Session>> =
        (0..2).map(|_| Box::new(Session::new(ctx.clients.register("<fuzz>".into())))).collect();
    let mut decoder = RespDecoder::new();
    decoder.feed(data);
    let mut jobs: [Vec<Queued>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..FUZZ_COMMANDS_MAX {
        let call = match decoder.next_decoded() {
            Ok(Some(Decoded::Command(command))) => Call::resolve(command),
            Ok(Some(Decoded::Refused(message))) => Call::refused(&message),
            Ok(None) | Err(_) => break,
        };
        let side = call.first_arg_len() & 1;
        if call.closes_connection() {
            break;
        }
        jobs[side].push(Queued::Resp(call));
        if jobs[side].len() >= 8 {
            run(&ctx, &mut sessions, &mut jobs, &mut answers);
        }
    }
    run(&ctx, &mut sessions, &mut jobs, &mut answers);
    answers
}

fn run(ctx: &Context, sessions: &mut [Box<Session>], jobs: &mut [Vec<Queued>; 2], answers: &mut [Vec<u8>; 2]) {
    let mut batch: Vec<Job> = Vec::new();
    for (side, requests) in jobs.iter_mut().enumerate() {
        let session =
            std::mem::replace(&mut sessions[side], Box::new(Session::new(ctx.clients.register("<x>".into()))));
        batch.push(Job { token: mio::Token(side), requests: std::mem::take(requests), session, out: Vec::new() });
    }
    crate::pipeline::run_jobs(ctx, &mut batch);
    for (side, job) in batch.into_iter().enumerate() {
        sessions[side] = job.session;
        // Bounded: a reply is never larger than what the store holds plus its framing.
        assert!(job.out.len() < 64 * 1024 * 1024, "a reply of {} bytes", job.out.len());
        answers[side].extend_from_slice(&job.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_transactions_watches_and_errors_runs_without_panicking() {
        // The fuzz entry on a hand-written stream that reaches MULTI/EXEC, WATCH across sessions,
        // a refused over-limit bulk and unknown commands.
        let stream = b"*1\r\n$5\r\nMULTI\r\nSET a 1\r\nINCR a\r\nEXEC\r\nWATCH a\r\nSET a 2\r\n\
                       *2\r\n$4\r\nECHO\r\n$1\r\nx\r\nMULTI\r\nEXEC\r\nFLUSHALL\r\nKEYS *\r\nSCAN 0\r\n\
                       HELLO 3\r\nGET nope\r\nFOO bar\r\nINCRBYFLOAT f 0.1\r\n";
        let [even, odd] = resp_stream(stream);
        let (even, odd) = (String::from_utf8_lossy(&even), String::from_utf8_lossy(&odd));
        // Names of odd length (MULTI, SET, GET…) went to one session, even (INCR, EXEC…) to the other.
        // MULTI opens a transaction on its session only: SET queues there, INCR runs on the other.
        assert!(odd.starts_with("+OK\r\n+QUEUED\r\n-ERR WATCH inside MULTI is not allowed\r\n"), "{odd}");
        assert!(odd.contains("-ERR MULTI calls can not be nested"), "{odd}");
        assert!(even.starts_with(":1\r\n-ERR EXEC without MULTI\r\n"), "{even}");
        let mut big = b"*2\r\n$3\r\nGET\r\n$99999999\r\n".to_vec();
        big.extend_from_slice(b"tail");
        let [_, odd] = resp_stream(&big);
        assert!(odd.is_empty(), "a command still arriving is not answered");
    }
}
