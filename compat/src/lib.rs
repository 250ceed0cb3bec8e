//! Redis compatibility tests for kvd: every test runs first against a real
//! redis-server (so the test itself is right), then against kvd, started by
//! the shared testkit on a Unix socket.
//!
//! Where things live:
//! - [`resp`]: a RESP2/RESP3 connection whose [`Reply`] keeps the wire type,
//!   for exact comparisons (the differential test).
//! - [`redis_server`]: [`RedisServer`], a redis-server on a temp dir's socket.
//! - [`tools`]: where the client libraries and tools are, the loud
//!   `skipped:` line when one is missing, and `BLOCKKV_COMPAT_STRICT`.
//! - `tests/clients.rs`: one scenario per client library (redis-py,
//!   node-redis, ioredis: scripts in `clients/`; the Rust `redis` crate).
//! - `tests/redis_cli.rs`: redis-cli's modes (`--scan`, `--bigkeys`,
//!   `--memkeys`, `--stat`, `-3`, `help`, `monitor`).
//! - `tests/exporter.rs`: prometheus-redis-exporter scraping kvd.
//! - `tests/differential/`: seeded random command sequences sent to kvd
//!   and redis-server side by side, replies compared exactly.
#![deny(unsafe_code)]

pub mod redis_server;
pub mod resp;
pub mod tools;

pub use redis_server::RedisServer;
pub use resp::{Connection, Reply};
