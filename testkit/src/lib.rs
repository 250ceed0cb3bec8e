//! What blockkv's end-to-end tests share: the real kvd binary on a temp dir,
//! and a blocking native-protocol client to talk to it. The daemon's, kvctl's
//! and the kill -9 test's end-to-end tests use these, so every crate starts,
//! waits for, stops and kills kvd the same way.
//!
//! Where things live:
//! - [`kvd`]: [`Kvd`], one kvd process on a directory (its data file, socket
//!   and stderr log in it), started by [`Kvd::start`] or a [`Launch`], ready
//!   once it answers a handshake; stopped with SIGTERM ([`Kvd::stop`]) or
//!   SIGKILL ([`Kvd::kill`]). [`kvd_bin`] finds the binary: `$BLOCKKV_KVD`
//!   if set, else the running test's profile's `target/<profile>/kvd` as
//!   `cargo test --workspace` built it (not rebuilt, so it may be older than
//!   the source when a crate is tested alone); only when that is missing does
//!   it run cargo to build it.
//! - [`client`]: [`Client`], a connection that has completed the handshake:
//!   one request and its answer at a time, with [`CallError`] telling a lost
//!   connection from a protocol error.
#![deny(unsafe_code)]

pub mod client;
pub mod kvd;

pub use client::{ANSWER_TIMEOUT, CallError, Client};
pub use kvd::{KVD_ENV, Kvd, Launch, READY_TIMEOUT, STOP_TIMEOUT, kvd_bin, temp_dir};
