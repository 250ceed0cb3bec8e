//! kvd as a library: everything but `main`, so the fuzz target drives the
//! same code (`resp::fuzz_entry`) as the binary.
//!
//! Where things live:
//! - `config`: the command line and the store options it makes; `logging`,
//!   `detach` (`--daemonize`, the pidfile), `socket`, `malloc`.
//! - `server/`: the event loop, connections, protocol sniffing, the worker
//!   pool, signals.
//! - `pipeline`: running a job's requests, plain puts sharing one write;
//!   `weight`: where a request may run.
//! - `context`: what every command runs against; `metrics`,
//!   `clients`, `watches`, `settings`, `slowlog`, `monitor`.
//! - `handler`: the native protocol's commands; `resp/`: RESP's.
#![deny(unsafe_code)]

pub mod clients;
pub mod config;
pub mod context;
pub mod detach;
pub mod fuzzing;
pub mod handler;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod monitor;
pub mod pipeline;
pub mod resp;
pub mod server;
pub mod settings;
pub mod slowlog;
pub mod socket;
pub mod watches;
pub mod weight;
