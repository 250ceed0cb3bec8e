//! Creating a data file: its size checked, its superblock written, and the
//! file made under a temporary name and renamed into place.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_BYTES, COPY_OFFSETS, block_offset};
use crate::limits::{FILE_BYTES_MAX, FILE_BYTES_MIN};
use crate::storage::{FileStorage, OpenFileError, Storage};
use std::path::Path;
use std::sync::Arc;

/// A data file size: a whole number of blocks within the limits.
pub(crate) fn validate_size(bytes: u64) -> Result<()> {
    if !(FILE_BYTES_MIN..=FILE_BYTES_MAX).contains(&bytes) || !bytes.is_multiple_of(BLOCK_BYTES as u64) {
        return Err(Error::InvalidArgument(format!(
            "file size {bytes} must be a multiple of {BLOCK_BYTES} between {FILE_BYTES_MIN} and {FILE_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// Writes a new superblock (both copies) for `storage` and syncs it.
pub(crate) fn write_superblock(storage: &dyn Storage, clock: &dyn Clock) -> Result<()> {
    let superblock = Superblock {
        block_count: storage.len() / BLOCK_BYTES as u64,
        created_ms: clock.now_ms(),
        file_id: rand::random(),
    };
    let encoded = superblock.encode();
    let mut block = vec![0u8; BLOCK_BYTES];
    for at in COPY_OFFSETS {
        block[at..at + encoded.len()].copy_from_slice(&encoded);
    }
    let io = |e| Error::io("write superblock", e);
    storage.write_at(block_offset(0), &block).map_err(io)?;
    // Durability: the superblock must be on disk before a checkpoint can
    // name this file's blocks.
    storage.sync().map_err(io)
}

/// Creates a new data file: formatted (by `format`: superblock and first
/// checkpoint) under a temporary name, then renamed into place, so a crash
/// never leaves a half-made file under the real name. Returns it still open
/// and locked, or None when another process created the file first (open
/// theirs).
pub(crate) fn create_file(
    path: &Path,
    bytes: u64,
    format: impl FnOnce(Arc<dyn Storage>) -> Result<()>,
) -> Result<Option<FileStorage>> {
    validate_size(bytes)?;
    let (storage, temp) = FileStorage::create_temp(path, bytes).map_err(|err| match err {
        OpenFileError::Io(err) => Error::io("create data file", err),
        OpenFileError::Locked { pid } => Error::Locked { path: path.to_path_buf(), pid },
    })?;
    let storage = Arc::new(storage);
    let made = format(storage.clone());
    let published = made.and_then(|()| {
        let mut storage =
            Arc::try_unwrap(storage).map_err(|_| Error::InvalidArgument("storage still shared".into()))?;
        match storage.publish(&temp, path) {
            Ok(()) => Ok(Some(storage)),
            // Another process created the file first: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(Error::io("publish data file", err)),
        }
    });
    if published.is_err() || temp.exists() {
        let _ = std::fs::remove_file(&temp);
    }
    published
}
