//! The messages: one [`Request`] per frame from client to server, one
//! [`Response`] per frame back, in order.
//!
//! Wire compatibility rules (docs/PROTOCOL.md, "Evolution"): the position of
//! a variant is its tag on the wire and the order of fields is their order on
//! the wire, so new variants go only at the end of an enum, fields are never
//! reordered, and any change to any message bumps `PROTOCOL_VERSION`. The
//! handshake then refuses a peer of another version instead of letting it
//! misread a frame. `Request` and `Response` are deliberately *not*
//! `#[non_exhaustive]`: a new request must be a compile error in the daemon
//! until it is served, and a new response one in the client until it is read.

use crate::stats::StatsReply;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a client asks. One per frame; the server answers each with one
/// [`Response`], in the order the requests arrived (pipelining is allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Liveness check; answered by [`Response::Pong`].
    Ping,
    /// The value of `key`: [`Response::Value`].
    Get {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Store `value` under `key`, expiring after `ttl_ms` if given: [`Response::Done`].
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Delete `key`: [`Response::Deleted`] (true if it held a live value).
    Delete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Whether `key` holds a live value: [`Response::Exists`].
    Exists {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Keys starting with `prefix`, in byte order, strictly after
    /// `start_after` when given, at most `limit`, with their values when
    /// `values` is set: [`Response::Keys`].
    Scan {
        #[serde(with = "serde_bytes")]
        prefix: Vec<u8>,
        #[serde(with = "serde_bytes")]
        start_after: Option<Vec<u8>>,
        limit: u32,
        values: bool,
    },
    /// The time to live of `key`: [`Response::Ttl`].
    Ttl {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// Set (`Some`) or remove (`None`) the time to live of an existing key:
    /// [`Response::TtlSet`] (false if the key is absent).
    Expire {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    /// Apply every operation or none: [`Response::Done`].
    Batch(Vec<BatchOp>),
    /// Counters, latencies, space and the recovery report: [`Response::Stats`].
    Stats,
    /// Write a checkpoint now: [`Response::Checkpointed`].
    Checkpoint,
    /// Run a compaction pass now: [`Response::Done`].
    Compact,
}

/// One operation of [`Request::Batch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOp {
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Delete {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
}

/// What the server answers, one per request, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Ping`.
    Pong,
    /// Answer to `Get`: the value, or None if the key is absent or expired.
    Value(#[serde(with = "serde_bytes")] Option<Vec<u8>>),
    /// Answer to `Put`, `Batch` and `Compact`: done (and as durable as the
    /// server's sync policy promises).
    Done,
    /// Answer to `Delete`: true if the key held a live value.
    Deleted(bool),
    /// Answer to `Exists`.
    Exists(bool),
    /// Answer to `Scan`. `more` is true when keys are left after this page
    /// (it stopped at the limit, or at the frame's size): ask again with
    /// `start_after` = the last key. A page with `more` set holds at least
    /// one item, so paging always ends.
    Keys { items: Vec<ScanItem>, more: bool },
    /// Answer to `Ttl`.
    Ttl(TtlReply),
    /// Answer to `Expire`: false if the key was absent.
    TtlSet(bool),
    /// Answer to `Stats`.
    Stats(Box<StatsReply>),
    /// Answer to `Checkpoint`.
    Checkpointed { id: u64, covered_lsn: u64, keys: u64, snapshot_blocks: u64, elapsed_us: u64 },
    /// The request was refused or failed; `message` is for people.
    Error { kind: ErrorKind, message: String },
}

/// One key of a scan, with its value when the scan asked for values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanItem {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TtlReply {
    /// No live value under the key.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this many milliseconds.
    ExpiresInMs(u64),
}

/// Why a request was refused or failed. Every kind makes `kvctl` exit 4
/// ("the daemon refused"); the kind lets scripts and `--json` tell them
/// apart and clients decide whether a retry can help (only `Busy`).
/// New kinds go at the end (and bump the protocol version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The frame was too large or did not decode; the server closes the
    /// connection after this response.
    BadRequest,
    /// A key, value or batch is over a limit.
    TooLarge,
    /// The data file is full; reads and deletes keep working.
    NoSpace,
    /// A sync failed earlier; writes are refused until a restart.
    Poisoned,
    /// The store is open read-only.
    ReadOnly,
    /// The request is well formed but its arguments are not accepted.
    InvalidArgument,
    /// The server is at a limit (connections, queue); try again later.
    Busy,
    /// The server does not do this (yet), e.g. `Compact` before the compactor.
    Unsupported,
    /// Bytes on disk failed verification; the value is not returned.
    Corrupt,
    /// The operating system refused an I/O call.
    Io,
    /// Anything else: a bug.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order (tests walk them all; a new kind
    /// must be added here, which `every_error_kind_is_in_all` enforces).
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::BadRequest,
        ErrorKind::TooLarge,
        ErrorKind::NoSpace,
        ErrorKind::Poisoned,
        ErrorKind::ReadOnly,
        ErrorKind::InvalidArgument,
        ErrorKind::Busy,
        ErrorKind::Unsupported,
        ErrorKind::Corrupt,
        ErrorKind::Io,
        ErrorKind::Internal,
    ];

    /// A stable snake_case name for `--json` output and RESP error text.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::NoSpace => "no_space",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Busy => "busy",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Io => "io",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Request {
    /// Every request kind's name, in declaration order (STATS reports them
    /// in this order; kvctl names the command in its messages).
    pub const NAMES: [&'static str; 12] =
        ["ping", "get", "put", "delete", "exists", "scan", "ttl", "expire", "batch", "stats", "checkpoint", "compact"];

    /// This request's position in [`Request::NAMES`].
    pub fn kind_index(&self) -> usize {
        match self {
            Request::Ping => 0,
            Request::Get { .. } => 1,
            Request::Put { .. } => 2,
            Request::Delete { .. } => 3,
            Request::Exists { .. } => 4,
            Request::Scan { .. } => 5,
            Request::Ttl { .. } => 6,
            Request::Expire { .. } => 7,
            Request::Batch(_) => 8,
            Request::Stats => 9,
            Request::Checkpoint => 10,
            Request::Compact => 11,
        }
    }

    /// The request's name ("get", "put", ...).
    pub fn name(&self) -> &'static str {
        Request::NAMES[self.kind_index()]
    }

    /// True if `response` is a well-formed answer to this request (an
    /// error answers anything). PROTOCOL.md lists the pairs.
    pub fn is_answered_by(&self, response: &Response) -> bool {
        matches!(
            (self, response),
            (_, Response::Error { .. })
                | (Request::Ping, Response::Pong)
                | (Request::Get { .. }, Response::Value(_))
                | (Request::Put { .. } | Request::Batch(_) | Request::Compact, Response::Done)
                | (Request::Delete { .. }, Response::Deleted(_))
                | (Request::Exists { .. }, Response::Exists(_))
                | (Request::Scan { .. }, Response::Keys { .. })
                | (Request::Ttl { .. }, Response::Ttl(_))
                | (Request::Expire { .. }, Response::TtlSet(_))
                | (Request::Stats, Response::Stats(_))
                | (Request::Checkpoint, Response::Checkpointed { .. })
        )
    }
}

impl Response {
    /// An error response.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::Error { kind, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_is_in_all() {
        // An exhaustive match: a new variant fails to compile here until it
        // is given a place in ErrorKind::ALL.
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            let position = match kind {
                ErrorKind::BadRequest => 0,
                ErrorKind::TooLarge => 1,
                ErrorKind::NoSpace => 2,
                ErrorKind::Poisoned => 3,
                ErrorKind::ReadOnly => 4,
                ErrorKind::InvalidArgument => 5,
                ErrorKind::Busy => 6,
                ErrorKind::Unsupported => 7,
                ErrorKind::Corrupt => 8,
                ErrorKind::Io => 9,
                ErrorKind::Internal => 10,
            };
            assert_eq!(position, i);
        }
    }
}
