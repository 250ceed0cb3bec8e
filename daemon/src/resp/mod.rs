//! kvd's RESP2 commands: what `redis-cli`, `redis-benchmark` and Redis
//! client libraries send, run against the engine. The wire format is in
//! blockkv_protocol::resp; this module turns one decoded command into its
//! reply bytes. docs/PROTOCOL.md, "RESP".
//!
//! Where things live: `spec.rs` (the command table: each command's arity,
//! weight, STATS counter and runner, looked up once as a command is
//! decoded; and COMMAND), `strings.rs` (GET, SET…, MGET, MSET, INCR…, DEL,
//! EXISTS), `keys.rs` (EXPIRE…, TTL…, PERSIST, SCAN, DBSIZE), `server.rs`
//! (PING, ECHO, INFO, and what clients send when they connect: CONFIG GET,
//! CLIENT, SELECT, QUIT), `unknown.rs` (commands kvd does not run, and
//! those of types it does not store), `failure.rs` (errors as Redis words
//! them).

mod bits;
mod connection;
mod docs;
mod failure;
mod glob;
mod info;
mod inspect;
mod keys;
mod keyspace;
mod long_double;
mod reply;
mod server;
mod session;
mod spec;
mod strings;
mod transaction;
mod unknown;
mod walk;

pub use failure::put_engine_error;
pub use session::Session;
pub use spec::{Call, counted_as, set_index};
