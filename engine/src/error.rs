//! The engine's one error type.

use std::path::PathBuf;

/// Everything the engine can refuse or fail with. Binaries map these to exit
/// codes; none of them is a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes on disk failed verification (checksum, magic, bounds).
    #[error("corrupt data at block {block}, offset {offset}: {reason}")]
    Corrupt { block: u32, offset: u32, reason: String },
    /// The operating system refused an I/O call.
    #[error("I/O error during {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file has no room for this write; reads and deletes keep working.
    #[error(
        "no space: need {needed_blocks} free blocks, {free_blocks} free of which {reserved_blocks} are reserved; \
         {live_bytes} live bytes in a {capacity_bytes}-byte file"
    )]
    NoSpace { needed_blocks: u64, free_blocks: u64, reserved_blocks: u64, live_bytes: u64, capacity_bytes: u64 },
    /// An input is over a named limit.
    #[error("{what} is {actual} bytes; the limit is {limit}")]
    TooLarge { what: &'static str, actual: u64, limit: u64 },
    /// A write or sync failed earlier; no write is acknowledged any more.
    #[error("store is poisoned: {reason}; writes are refused, reads continue; restart to recover")]
    Poisoned { reason: String },
    /// Another process (or another open in this one) holds the file.
    #[error("{} is locked by {}", path.display(), holder_text(*pid))]
    Locked { path: PathBuf, pid: Option<u32> },
    /// The file exists but is not a blockkv data file (or is too damaged to tell).
    #[error("{} is not a usable blockkv data file: {reason}", path.display())]
    NotBlockkv { path: PathBuf, reason: String },
    /// Recovery found damage that the chosen recovery mode does not accept.
    #[error("recovery refused: {reason}")]
    RecoveryRefused { reason: String },
    /// A caller passed something the API does not accept.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store was opened read-only.
    #[error("store is open read-only")]
    ReadOnly,
    /// An increment of a value that is not a decimal 64-bit integer (the
    /// text is Redis's, which RESP clients show as is).
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// An increment whose result does not fit 64 bits.
    #[error("increment or decrement would overflow")]
    Overflow,
}

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process or open file".to_string(),
    }
}

impl Error {
    pub(crate) fn io(op: &'static str, source: std::io::Error) -> Self {
        Error::Io { op, source }
    }

    pub(crate) fn corrupt(block: u32, offset: u32, reason: impl Into<String>) -> Self {
        Error::Corrupt { block, offset, reason: reason.into() }
    }
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
