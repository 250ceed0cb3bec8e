//! The real data file: positional writes, `fdatasync`, and reads through a
//! read-only shared memory map.
#![allow(unsafe_code)] // the one place: mapping the file, see SAFETY below

use super::{Storage, check_range};
use memmap2::{Mmap, MmapOptions};
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A temp file unlocked and untouched this long is a crashed creation's.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(10);
/// Bytes written per call when zero-filling a new file.
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// Bytes from its offset that `prefetch` brings into the cache: a record
/// with a 16-byte key and a 100-byte value is 156 bytes, three or four
/// cache lines; a load of its first line alone left the others to miss
/// one by one when the record is read.
const PREFETCH_BYTES: usize = 192;
/// A cache line on x86-64 and most ARM cores: one load brings this many in.
const CACHE_LINE_BYTES: usize = 64;
const _: () = assert!(CACHE_LINE_BYTES.is_power_of_two() && PREFETCH_BYTES.is_multiple_of(CACHE_LINE_BYTES));

/// How the file is locked while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Exclusive `flock`: the normal mode for a store that writes.
    Exclusive,
    /// No lock at all: read-only inspection of a file another process holds
    /// (`kv-fsck --force`).
    None,
}

/// A data file opened for the engine.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    map: Mmap,
    len: u64,
    path: PathBuf,
}

/// Why a file could not be opened, before any engine logic runs.
#[derive(Debug)]
pub enum OpenFileError {
    Io(io::Error),
    Locked { pid: Option<u32> },
}

impl FileStorage {
    /// Opens an existing file. `writable = false` opens it read-only.
    pub fn open(path: &Path, writable: bool, lock: LockMode) -> Result<Self, OpenFileError> {
        let file = OpenOptions::new().read(true).write(writable).open(path).map_err(OpenFileError::Io)?;
        if lock == LockMode::Exclusive {
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(OpenFileError::Locked { pid: lock_holder_pid(&file) });
                }
                Err(TryLockError::Error(err)) => return Err(OpenFileError::Io(err)),
            }
        }
        FileStorage::map(file, path)
    }

    /// Maps an open (and, to write, locked) file.
    fn map(file: File, path: &Path) -> Result<Self, OpenFileError> {
        let len = file.metadata().map_err(OpenFileError::Io)?.len();
        // SAFETY: the map is read-only and shared. Other writers are kept out
        // by the exclusive flock (or, with LockMode::None, the caller only
        // inspects and verifies every byte it reads by checksum). Our own
        // writes go through pwrite on the same file, which the kernel keeps
        // coherent with the map; readers copy bytes out and verify them by
        // CRC, so a read that races a write is detected, never trusted. The
        // file is never truncated while mapped (its size is fixed).
        let map = unsafe { MmapOptions::new().len(len as usize).map(&file) }.map_err(OpenFileError::Io)?;
        Ok(FileStorage { file, map, len, path: path.to_path_buf() })
    }

    /// Creates a new file of `len` bytes at `path`, with every block
    /// allocated on the filesystem (so later writes cannot hit ENOSPC), and
    /// returns it opened and locked. The caller formats it, syncs, and then
    /// calls [`FileStorage::publish`] to move it into place.
    pub fn create_temp(path: &Path, len: u64) -> Result<(Self, PathBuf), OpenFileError> {
        let temp = temp_path(path);
        remove_stale_temps(path);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&temp).map_err(OpenFileError::Io)?;
        let result = (|| {
            // Locked from its first byte: another kvd's `remove_stale_temps`
            // takes only a temp file nobody holds.
            file.try_lock().map_err(|err| io::Error::other(format!("lock the new file: {err}")))?;
            // fallocate reserves the space (contiguous where it can) and fails
            // early on a full filesystem, but leaves "unwritten" extents that
            // ext4 converts on every first write (the cost: docs/BENCHMARKS.md).
            // Writing the zeros once at creation removes that cost for good.
            match rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len) {
                Ok(()) => {}
                // FUSE file systems (LazyFS) and some network ones have no
                // fallocate: the zeros written below allocate the space instead.
                Err(rustix::io::Errno::OPNOTSUPP) => {
                    tracing::warn!(path = %temp.display(), "the file system has no fallocate: allocating by writing zeros");
                }
                Err(err) => return Err(io::Error::from(err)),
            }
            let zeros = vec![0u8; ZERO_CHUNK_BYTES];
            let mut at = 0;
            while at < len {
                let chunk = (len - at).min(ZERO_CHUNK_BYTES as u64) as usize;
                file.write_all_at(&zeros[..chunk], at)?;
                at += chunk as u64;
            }
            FileStorage::map(file, &temp).map_err(|err| match err {
                OpenFileError::Io(err) => err,
                OpenFileError::Locked { .. } => io::Error::other("new file is locked"),
            })
        })();
        match result {
            Ok(storage) => Ok((storage, temp)),
            Err(err) => {
                let _ = std::fs::remove_file(&temp);
                Err(OpenFileError::Io(err))
            }
        }
    }

    /// Moves a formatted temp file to its final name, refusing to replace a
    /// file that appeared there meanwhile, then syncs the directory so the
    /// name itself is durable.
    pub fn publish(&mut self, temp: &Path, path: &Path) -> io::Result<()> {
        let cwd = rustix::fs::CWD;
        match rustix::fs::renameat_with(cwd, temp, cwd, path, rustix::fs::RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // No RENAME_NOREPLACE (FUSE, some network file systems): a hard
            // link is as atomic a "create unless it exists".
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS) => {
                tracing::warn!(path = %path.display(), "the file system has no RENAME_NOREPLACE: publishing by a hard link");
                publish_by_link(temp, path)?;
            }
            Err(err) => return Err(io::Error::from(err)),
        }
        self.path = path.to_path_buf();
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        // Durability: without this the rename (the file's name) may be lost in
        // a power cut even though the contents were synced.
        File::open(dir)?.sync_all()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".creating.{}", std::process::id()));
    path.with_file_name(name)
}

/// Moves `temp` to `path` unless `path` exists (`AlreadyExists` then, and
/// both stay): a hard link, then the temp name removed.
fn publish_by_link(temp: &Path, path: &Path) -> io::Result<()> {
    std::fs::hard_link(temp, path)?;
    std::fs::remove_file(temp)
}

/// Removes `path`'s temp files (`<name>.creating.<pid>`) that a crash left
/// behind: those no process holds the lock of, whatever their pid says
/// (pids are reused). Best effort; each removal is logged.
fn remove_stale_temps(path: &Path) {
    let Some(name) = path.file_name().map(|n| format!("{}.creating.", n.to_string_lossy())) else { return };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&name) {
            continue;
        }
        let stale = entry.path();
        let Ok(file) = File::open(&stale) else { continue };
        // Held: another process is creating it now. Touched in the last
        // seconds: a creator may be between making it and locking it.
        let recent = file.metadata().and_then(|m| m.modified()).ok().and_then(|at| at.elapsed().ok());
        if recent.is_none_or(|age| age < STALE_TEMP_AGE) || file.try_lock().is_err() {
            continue;
        }
        let bytes = file.metadata().map_or(0, |m| m.len());
        if std::fs::remove_file(&stale).is_ok() {
            tracing::info!(path = %stale.display(), bytes, "removed a data file left half-made by a crash during creation");
        }
    }
}

/// The pid holding a lock on `file`, read from /proc/locks (Linux). flock
/// itself cannot say who holds it.
fn lock_holder_pid(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let inode = meta.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // Line format: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let pid = fields.get(4)?.parse::<u32>().ok()?;
        let file_inode = fields.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
        (file_inode == inode).then_some(pid)
    })
}

impl Storage for FileStorage {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.len, offset, buf.len())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.map[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        check_range(self.len, offset, bytes.len())?;
        self.file.write_all_at(bytes, offset)
    }

    fn prefetch(&self, offset: u64) {
        // One load per cache line through the map: independent of the loads
        // before them, so the CPU keeps several such cache misses (or
        // page-cache lookups) in flight at once. `black_box` keeps the loads
        // from being dropped.
        let Ok(start) = usize::try_from(offset) else { return };
        let end = start.saturating_add(PREFETCH_BYTES).min(self.map.len());
        for at in (start & !(CACHE_LINE_BYTES - 1)..end).step_by(CACHE_LINE_BYTES) {
            std::hint::black_box(self.map[at]);
        }
    }

    fn sync(&self) -> io::Result<()> {
        // fdatasync: the file's size never changes, so data + the metadata
        // needed to read it back is all we need.
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_near_and_past_the_end_of_the_file_reads_nothing_out_of_range() {
        // Offsets in the last cache line, at the end, past it and at the
        // largest u64: prefetch must touch only bytes inside the map (out
        // of range, the indexing panics), and it changes nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        let len = 8 * 4096 + 100; // not a multiple of a cache line
        let (storage, _temp) = FileStorage::create_temp(&dir.path().join("f"), len).expect("create");
        for offset in [0, len - 200, len - 1, len, len + 1, len + 10_000, u64::MAX - 1, u64::MAX] {
            storage.prefetch(offset);
        }
        let mut last = [1u8; 1];
        storage.read_at(len - 1, &mut last).expect("read the last byte");
        assert_eq!(last, [0], "a new file reads as zeros");
    }

    #[test]
    fn publishing_by_a_link_never_replaces_a_file() {
        // The fallback without RENAME_NOREPLACE: onto a free name it moves the temp; onto a
        // taken one it fails AlreadyExists and leaves both files as they were.
        let dir = tempfile::tempdir().expect("tempdir");
        let (temp, path) = (dir.path().join("t"), dir.path().join("data"));
        std::fs::write(&temp, b"new").expect("temp");
        publish_by_link(&temp, &path).expect("publish");
        assert!(!temp.exists());
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        std::fs::write(&temp, b"other").expect("temp");
        let err = publish_by_link(&temp, &path).expect_err("taken");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert!(temp.exists());
    }

    #[test]
    fn only_stale_unlocked_temps_are_removed() {
        // A crashed creation's temp (unlocked, old) goes; one held by a lock or just made stays.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.kvdata");
        let old = std::time::SystemTime::now() - 2 * STALE_TEMP_AGE;
        let make = |suffix: &str, age: Option<std::time::SystemTime>| {
            let temp = dir.path().join(format!("data.kvdata.creating.{suffix}"));
            let file = File::create(&temp).expect("temp");
            if let Some(at) = age {
                file.set_modified(at).expect("mtime");
            }
            (temp, file)
        };
        let (stale, _) = make("1", Some(old));
        let (held, held_file) = make("2", Some(old));
        held_file.try_lock().expect("hold it");
        let (fresh, _) = make("3", None);
        // Another data file's temp is not this one's to remove.
        let other = dir.path().join("another.kvdata.creating.1");
        File::create(&other).and_then(|f| f.set_modified(old)).expect("other");
        remove_stale_temps(&path);
        assert!(!stale.exists(), "stale and unlocked: removed");
        assert!(held.exists() && fresh.exists() && other.exists());
    }
}
