//! blockkv's kill -9 test against real processes. `crash-test.sh` starts
//! `kvd --sync always`, runs `crash-writer` against it, SIGKILLs kvd at a
//! chosen moment, runs `kv-fsck` on the image, restarts kvd and runs
//! `crash-check`; the binaries here are the parts that need more than a shell.
//!
//! Where things live:
//! - [`keyspace`]: which writer thread owns which key ([`KeyRef`]), the id of
//!   every operation ([`OpId`]), and value bytes that name the put that
//!   wrote them, so a wrong value says where it came from.
//! - [`oplog`]: the per-thread log: a line before each request is sent and
//!   a line after its answer, read back as [`ThreadLog`]s.
//! - [`state`]: what the store held after the previous cycle's check, carried
//!   across cycles because the data file is.
//! - [`check`]: the rule: from the previous state and this cycle's logs, what
//!   each key may hold, and the verdict on what it does hold.
//! - [`plan`]: every cycle's choices (kill moment, delays, writer seed),
//!   derived from the run's seed.
//!
//! The binaries: `crash-plan` (seeds and plans for the script), `crash-writer`
//! (the load, logged), `crash-kill` (SIGKILL a set number of microseconds
//! into a checkpoint request) and `crash-check` (the verdict). They talk to
//! kvd through the test kit's blocking client (`blockkv_testkit::Client`).
#![deny(unsafe_code)]

pub mod check;
pub mod keyspace;
pub mod oplog;
pub mod plan;
pub mod state;

pub use check::{InFlight, KeyExpectation, Model};
pub use keyspace::{KeyRef, OpId, Written};
pub use oplog::{LoggedOp, OpKind, Outcome, ThreadLog};
pub use state::State;
