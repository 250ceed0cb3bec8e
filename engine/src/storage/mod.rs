//! The seam between the engine and the disk. The engine does all its I/O
//! through [`Storage`]; [`FileStorage`] is the real file and [`SimDisk`] a
//! simulated disk for crash, fault and corruption tests.
//!
//! Contract every implementation keeps (and docs/FORMAT.md "Media assumptions"
//! states for real disks):
//! - `read_at` sees every byte written so far, synced or not (a page cache).
//! - `write_at` returns once the bytes are in that cache; they survive a crash
//!   of the process but not of the machine until `sync` returns Ok.
//! - `sync` makes every write issued before it durable, or fails. After a
//!   failed sync nothing is known about those writes.

mod file;
mod sim;

pub use file::{FileStorage, LockMode, OpenFileError};
pub use sim::{Fault, FaultKind, SimDisk};

use std::io;

/// Positional I/O on a fixed-size medium.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Size of the medium in bytes; fixed for its lifetime.
    fn len(&self) -> u64;
    /// Never true for a formatted store; here for clippy's `len` convention.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `buf.len()` bytes starting at `offset` into `buf`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `bytes` at `offset` (into the cache; see module docs).
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every earlier write durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// A hint that `offset` and the bytes after it (a record's worth) are
    /// about to be read: lets the reads of a batch wait for memory together
    /// instead of one after another. Reads and returns nothing; a medium
    /// without a cache to warm ignores it.
    fn prefetch(&self, _offset: u64) {}
}

pub(crate) fn check_range(len: u64, offset: u64, bytes: usize) -> io::Result<()> {
    match offset.checked_add(bytes as u64) {
        Some(end) if end <= len => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("I/O at {offset}+{bytes} is past the end of the {len}-byte medium"),
        )),
    }
}
