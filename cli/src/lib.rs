//! `kvctl`, the blockkv command-line client, as a library so that every
//! part of it can be unit-tested; `src/main.rs` only parses the arguments
//! and hands them to [`run`].
//!
//! One invocation is: parse the arguments ([`args`]), read the value if the
//! command takes one ([`input`]), connect and shake hands ([`client`]),
//! send one request and read one response (a scan pages through several),
//! print the answer plainly or as one JSON object ([`render`], [`json`],
//! [`stats_text`]) and exit with the code docs/OPERATIONS.md documents ([`exit`]).
//!
//! Where things live:
//! - [`args`]: the clap model, every command and flag docs/OPERATIONS.md lists.
//! - [`client`]: [`Client`] over a Unix socket, its timeouts and [`ClientError`].
//! - [`input`]: the value of `put`, from the argument, `--file` or stdin,
//!   binary-safe and bounded by the protocol's value limit.
//! - [`exit`]: the exit codes as constants and the mapping from a request
//!   and its response to a code.
//! - [`error`]: [`CliError`], everything that makes kvctl fail, with the
//!   message and the hint that tells the user what to do next.
//! - [`render`]: a response as plain text or as JSON.
//! - [`json`]: byte strings in JSON (UTF-8 text, else base64).
//! - [`stats_text`]: the readable `kvctl stats` summary.
//! - [`run`](mod@run): one invocation from start to exit code.
#![deny(unsafe_code)]

pub mod args;
pub mod client;
pub mod error;
pub mod exit;
pub mod input;
pub mod json;
pub mod render;
pub mod run;
pub mod stats_text;

pub use args::{Cli, Command};
pub use client::{Call, Client, ClientError, HANDSHAKE_TIMEOUT_MS, REPLY_TIMEOUT_S_DEFAULT};
pub use error::CliError;
pub use exit::{EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, exit_code_for};
pub use run::run;
