//! The public API: open/create, put, get, delete, exists, scan by prefix,
//! atomic batches, TTLs, checkpoints, stats, close.
//!
//! Locks, always taken in this order: checkpoint -> log -> block table ->
//! index shard. Readers take only an index shard (shared), then read the
//! record through the storage's page cache without any lock.

use crate::alloc::{BlockTable, BlockUse, Purpose};
use crate::background::{self, Control};
use crate::checkpoint::{self, CheckpointInfo, CheckpointState};
use crate::clock::Clock;
use crate::commit::{GroupCommit, Poison};
use crate::compactor::{self, CompactionCounters, PASS_VICTIMS_MAX, PassOutcome};
use crate::error::{Error, Result};
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_BYTES, COPY_OFFSETS, block_offset};
use crate::group::{GroupInput, WriteGroup};
use crate::index::{Index, key_hash};
use crate::limits::{
    BATCH_BYTES_MAX, BATCH_OPS_MAX, FILE_BYTES_MAX, FILE_BYTES_MIN, KEY_BYTES_MAX, LSN_MAX, RESERVE_BLOCKS_MIN,
    VALUE_BYTES_MAX,
};
use crate::log::{AppendError, LogWriter, Op};
use crate::lookup::{self, Current};
use crate::options::{Options, SyncPolicy};
use crate::read::{read_fragment, read_value, record_extents};
use crate::recovery::{self, RecoveryMode, RecoveryReport};
use crate::sleep_lock::SleepLock;
use crate::storage::OpenFileError;
use crate::storage::{FileStorage, LockMode, Storage};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Reclaim-and-retry rounds a write gets when it finds no room.
const NO_SPACE_RETRIES: u32 = 4;

/// Keys from which their records are first touched together: the old
/// records of an append's ops before `publish` reads them
/// (`prefetch_current`), and the keys a caller is about to read
/// (`Store::prefetch`). Not measured: for one to three keys the index
/// lookups, done twice, are unlikely to pay for the little overlap.
pub const PREFETCH_KEYS_MIN: usize = 4;

/// Checkpoints a clean close writes at most: one, plus one more while the
/// last carried tombstones (each round uses up the blocks that needed it).
const CLOSE_CHECKPOINTS_MAX: u32 = 3;

/// One operation of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8>, ttl: Option<Duration> },
    Delete { key: Vec<u8> },
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    Missing,
    Persistent,
    ExpiresInMs(u64),
}

/// Operation counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub puts: AtomicU64,
    pub gets: AtomicU64,
    pub deletes: AtomicU64,
    pub batches: AtomicU64,
    pub checkpoints: AtomicU64,
    pub corrupt_reads: AtomicU64,
    pub user_bytes: AtomicU64,
    pub checkpoint_bytes: AtomicU64,
}

/// A point-in-time view of the store's numbers.
#[derive(Debug, Clone)]
pub struct Stats {
    pub file_id: u64,
    pub created_ms: u64,
    pub keys: u64,
    pub index_heap_bytes: u64,
    pub block_count: u64,
    pub blocks_free: u64,
    pub blocks_pending_free: u64,
    pub blocks_log: u64,
    pub blocks_snapshot: u64,
    pub blocks_reserved: u64,
    pub live_bytes: u64,
    /// Bytes of LOG blocks not referenced by the index (old versions,
    /// tombstones, unused block tails).
    pub dead_bytes: u64,
    pub capacity_bytes: u64,
    pub last_lsn: u64,
    pub synced_lsn: u64,
    pub syncs: u64,
    pub checkpoints: u64,
    pub checkpoint_id: u64,
    pub puts: u64,
    pub gets: u64,
    pub deletes: u64,
    pub batches: u64,
    pub corrupt_reads: u64,
    /// Key + value bytes callers asked to write.
    pub user_bytes_written: u64,
    /// Bytes the log wrote to the file: user records, the compactor's
    /// copies, and the zero tails of newly opened blocks.
    pub log_bytes_written: u64,
    /// Bytes checkpoints wrote (snapshot blocks and slot headers).
    pub checkpoint_bytes_written: u64,
    pub compaction_passes: u64,
    pub blocks_reclaimed: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
    pub tombstones_dropped: u64,
    pub tombstones_kept: u64,
    pub expired_dropped: u64,
    pub poisoned: Option<String>,
}

impl Stats {
    /// Bytes written to the file (log + checkpoints) per byte users asked to
    /// write; 0 before any user write.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            return 0.0;
        }
        (self.log_bytes_written + self.checkpoint_bytes_written) as f64 / self.user_bytes_written as f64
    }
}

/// A record the compactor is moving: the index entry naming it and the
/// (block, bytes) of each of its fragments (`read::read_record`).
#[derive(Debug)]
pub(crate) struct Moving {
    pub entry: crate::format::snapshot::IndexEntry,
    pub extents: crate::read::Extents,
}

/// Shared state behind a [`Store`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub storage: Arc<dyn Storage>,
    pub path: PathBuf,
    pub sync: SyncPolicy,
    pub clock: Arc<dyn Clock>,
    pub block_count: u32,
    pub superblock: Superblock,
    pub log: SleepLock<LogWriter>,
    pub table: SleepLock<BlockTable>,
    pub index: Index,
    pub commit: GroupCommit,
    pub group: WriteGroup,
    pub poison: Poison,
    pub ckpt: Mutex<CheckpointState>,
    pub counters: Counters,
    pub recovery: RecoveryReport,
    pub read_only: bool,
    /// Held for a whole compaction pass: one compactor at a time.
    pub compacting: Mutex<()>,
    pub compaction: CompactionCounters,
    /// Blocks the compactor found damaged and leaves alone.
    pub compaction_skip: Mutex<std::collections::HashSet<u32>>,
    /// Free space (pending-free included) below `FREE_FRACTION_URGENT` at the
    /// last write: user writes then assist the compactor (background.rs).
    pub space_short: std::sync::atomic::AtomicBool,
    /// Victims ranked by the last full scoring, best last (compactor.rs).
    pub victim_queue: Mutex<Vec<(u32, u64)>>,
    checkpoint_interval: Option<Duration>,
    checkpoint_log_bytes: u64,
    pub control: Control,
}

/// An open store. Share it between threads with `Arc<Store>`; all methods
/// take `&self`.
#[derive(Debug)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    /// The maintenance and compactor threads (background.rs).
    threads: Vec<JoinHandle<()>>,
    closed: bool,
}

impl Store {
    /// Opens the data file at `path`, creating it when it does not exist and
    /// `opts.create_bytes` is set. Takes an exclusive lock unless read-only.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Store> {
        let path = path.as_ref();
        if !opts.read_only && !path.exists() {
            let Some(bytes) = opts.create_bytes else {
                return Err(Error::io("open", std::io::Error::new(std::io::ErrorKind::NotFound, "no such data file")));
            };
            // The new file is used through the descriptor that made it, lock
            // held throughout: closing and reopening it left a window where
            // a process forked meanwhile (its copy of the descriptor lives
            // until exec) still held the lock, and the reopen failed.
            if let Some(storage) = create_file(path, bytes, &opts)? {
                return Store::open_storage(Arc::new(storage), path, opts);
            }
        }
        let lock = if opts.read_only { LockMode::None } else { LockMode::Exclusive };
        let storage = FileStorage::open(path, !opts.read_only, lock).map_err(|err| match err {
            OpenFileError::Locked { pid } => Error::Locked { path: path.to_path_buf(), pid },
            OpenFileError::Io(err) => Error::io("open", err),
        })?;
        Store::open_storage(Arc::new(storage), path, opts)
    }

    /// Formats `storage` as a new, empty store (superblock + first checkpoint).
    pub fn create_on(storage: Arc<dyn Storage>, opts: Options) -> Result<Store> {
        validate_size(storage.len())?;
        write_superblock(&*storage, &*opts.clock)?;
        let recovery = opts.recovery;
        let mut store =
            Store::open_storage(storage, Path::new("<new>"), Options { recovery: RecoveryMode::TolerateTail, ..opts })?;
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.recovery.mode = recovery;
        }
        Ok(store)
    }

    /// Opens a store on any [`Storage`] (the simulated disk in tests).
    pub fn open_storage(storage: Arc<dyn Storage>, path: &Path, opts: Options) -> Result<Store> {
        let writable = !opts.read_only;
        let recovered = recovery::recover(&*storage, path, opts.recovery, writable, opts.clock.now_ms())?;
        let last_lsn = recovered.log.last_lsn();
        let wants_checkpoint = recovered.wants_checkpoint;
        tracing::info!(path = %path.display(), "recovered {}", recovered.report);
        let inner = Arc::new(Inner {
            block_count: recovered.superblock.block_count as u32,
            superblock: recovered.superblock,
            storage,
            path: path.to_path_buf(),
            sync: opts.sync,
            clock: opts.clock.clone(),
            log: SleepLock::new(recovered.log),
            table: SleepLock::new(recovered.table),
            index: recovered.index,
            commit: GroupCommit::new(last_lsn),
            group: WriteGroup::default(),
            poison: Poison::default(),
            ckpt: Mutex::new(recovered.ckpt),
            counters: Counters::default(),
            recovery: recovered.report,
            read_only: opts.read_only,
            compacting: Mutex::new(()),
            compaction: CompactionCounters::default(),
            compaction_skip: Mutex::new(std::collections::HashSet::new()),
            victim_queue: Mutex::new(Vec::new()),
            space_short: std::sync::atomic::AtomicBool::new(false),
            checkpoint_interval: opts.checkpoint_interval,
            checkpoint_log_bytes: opts.checkpoint_log_bytes,
            control: Control::default(),
        });
        inner.update_reserve(&mut inner.table.lock());
        if writable && wants_checkpoint {
            match checkpoint::write_checkpoint(&inner) {
                Ok(_) => {}
                Err(err @ Error::NoSpace { .. }) => tracing::warn!("no checkpoint after recovery: {err}"),
                Err(err) => return Err(err),
            }
        }
        let threads = if opts.background && writable {
            background::spawn(&inner, opts.background_compaction)
        } else {
            Vec::new()
        };
        Ok(Store { inner, threads, closed: false })
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_with_ttl(key, value, None)
    }

    /// Stores `value` under `key`; with `ttl` the key disappears after it.
    pub fn put_with_ttl(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let expires_ms = self.expiry(ttl)?;
        self.inner.counters.puts.fetch_add(1, Ordering::Relaxed);
        let op = Op { key, value, tombstone: false, expires_ms };
        self.write(&[op], Purpose::User)
    }

    /// Keys in the index (expired ones included until removed): what
    /// `stats().keys` says, without its locks.
    pub fn key_count(&self) -> u64 {
        self.inner.index.len()
    }

    /// The value of `key`, or None if absent or expired. Never returns bytes
    /// that failed their checksum: those give `Error::Corrupt`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        self.inner.counters.gets.fetch_add(1, Ordering::Relaxed);
        match self.current_live(key)? {
            Some(current) => read_value(&*self.inner.storage, current.first).map(Some),
            None => Ok(None),
        }
    }

    /// A hint that `keys` are about to be read (a pipelined batch of GETs):
    /// their index entries and records are fetched together, where reading
    /// them one by one waits for memory once per key. Changes nothing.
    /// Fewer than `PREFETCH_KEYS_MIN` keys are left alone.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        if keys.len() < PREFETCH_KEYS_MIN {
            return;
        }
        // Keys over the limit are refused by the read itself: not hashed here.
        let hashes = keys.iter().filter(|key| key.len() <= KEY_BYTES_MAX).map(|key| key_hash(key)).collect();
        self.inner.prefetch_hashes(hashes);
    }

    /// True if `key` holds a value that has not expired.
    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        Ok(self.current_live(key)?.is_some())
    }

    /// Deletes `key`; true if it held a live value.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.inner.writable()?;
        self.inner.counters.deletes.fetch_add(1, Ordering::Relaxed);
        let mut log = self.inner.log.lock();
        let found = lookup::find(&*self.inner.storage, &self.inner.index, key, key_hash(key));
        let live = found.current.as_ref().is_some_and(|c| !self.expired(c));
        // An unreadable candidate may be this key: write the tombstone anyway
        // so no recovery path can bring an older version back.
        if found.current.is_none() && found.unreadable.is_none() {
            return Ok(false);
        }
        let op = Op { key, value: &[], tombstone: true, expires_ms: 0 };
        let lsn = self.inner.append_locked(&mut log, &[op], Purpose::Delete)?;
        drop(log);
        self.inner.wait_durable(lsn)?;
        Ok(live)
    }

    /// Applies every operation or none, even across a crash.
    pub fn write_batch(&self, ops: &[BatchOp]) -> Result<()> {
        check_batch_ops(ops.len())?;
        let mut encoded = Vec::with_capacity(ops.len());
        for op in ops {
            encoded.push(match op {
                BatchOp::Put { key, value, ttl } => {
                    check_key(key)?;
                    check_value(value)?;
                    Op { key, value, tombstone: false, expires_ms: self.expiry(*ttl)? }
                }
                BatchOp::Delete { key } => {
                    check_key(key)?;
                    Op { key, value: &[], tombstone: true, expires_ms: 0 }
                }
            });
        }
        self.write_checked_batch(&encoded)
    }

    /// Plain puts (no TTL) applied as one atomic batch, like `write_batch`,
    /// but borrowing keys and values: a run of pipelined SETs needs no copy
    /// of each.
    pub fn put_all(&self, puts: &[(&[u8], &[u8])]) -> Result<()> {
        check_batch_ops(puts.len())?;
        let mut encoded = Vec::with_capacity(puts.len());
        for &(key, value) in puts {
            check_key(key)?;
            check_value(value)?;
            encoded.push(Op { key, value, tombstone: false, expires_ms: 0 });
        }
        self.write_checked_batch(&encoded)
    }

    /// A batch whose every op was checked: the total size, then one write.
    fn write_checked_batch(&self, encoded: &[Op<'_>]) -> Result<()> {
        if encoded.is_empty() {
            return Ok(());
        }
        let total: usize = encoded.iter().map(|op| op.key.len() + op.value.len()).sum();
        if total > BATCH_BYTES_MAX {
            return Err(Error::TooLarge { what: "batch", actual: total as u64, limit: BATCH_BYTES_MAX as u64 });
        }
        self.inner.counters.batches.fetch_add(1, Ordering::Relaxed);
        // A batch of deletes only shrinks the store: it may use the margin
        // that single deletes use, so a full store can still be emptied.
        let purpose = if encoded.iter().all(|op| op.tombstone) { Purpose::Delete } else { Purpose::User };
        self.write(encoded, purpose)
    }

    /// The time to live of `key`.
    pub fn ttl(&self, key: &[u8]) -> Result<KeyTtl> {
        check_key(key)?;
        Ok(match self.current_live(key)? {
            None => KeyTtl::Missing,
            Some(c) if c.first.header.expires_ms == 0 => KeyTtl::Persistent,
            Some(c) => KeyTtl::ExpiresInMs(c.first.header.expires_ms.saturating_sub(self.inner.clock.now_ms())),
        })
    }

    /// Sets (Some) or removes (None) the TTL of an existing key by rewriting
    /// its record; false if the key is absent.
    pub fn expire(&self, key: &[u8], ttl: Option<Duration>) -> Result<bool> {
        check_key(key)?;
        self.inner.writable()?;
        let expires_ms = self.expiry(ttl)?;
        let mut log = self.inner.log.lock();
        let found = lookup::find(&*self.inner.storage, &self.inner.index, key, key_hash(key)).for_read()?;
        let Some(current) = found.filter(|c| !self.expired(c)) else {
            return Ok(false);
        };
        let value = read_value(&*self.inner.storage, current.first)?;
        let op = Op { key, value: &value, tombstone: false, expires_ms };
        let lsn = self.inner.append_locked(&mut log, &[op], Purpose::User)?;
        drop(log);
        self.inner.wait_durable(lsn)?;
        Ok(true)
    }

    /// Keys starting with `prefix`, sorted, after `start_after` if given, at
    /// most `limit` of them. Reads every record's key: O(keys in the store).
    /// Records that fail their checksum are skipped and counted in
    /// `Stats::corrupt_reads` (their key cannot be known).
    pub fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>> {
        let now = self.inner.clock.now_ms();
        let mut keys = Vec::new();
        for entry in self.inner.index.entries() {
            match read_fragment(&*self.inner.storage, entry.block, entry.offset()) {
                Ok(first) if first.header.lsn == entry.lsn() => {
                    let expired = first.header.expires_ms != 0 && first.header.expires_ms <= now;
                    let key = first.key();
                    if !expired && key.starts_with(prefix) && start_after.is_none_or(|after| key > after) {
                        keys.push(key.to_vec());
                    }
                }
                Ok(_) | Err(_) => {
                    self.inner.counters.corrupt_reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        keys.sort_unstable();
        keys.truncate(limit);
        Ok(keys)
    }

    /// Where the current record of `key` lives: (byte offset in the file,
    /// bytes) of each fragment; None if the key has no record. For kv-fsck,
    /// corruption tests and the curious.
    pub fn locate(&self, key: &[u8]) -> Result<Option<Vec<(u64, u32)>>> {
        check_key(key)?;
        let Some(current) = self.inner.find_for_read(key)? else {
            return Ok(None);
        };
        let block = current.entry.block;
        let extents = record_extents(&*self.inner.storage, block, &current.first)?;
        let first_offset = block_offset(block) + u64::from(current.entry.offset());
        let ranges = extents
            .into_iter()
            .enumerate()
            .map(|(i, (b, bytes))| {
                let at = if i == 0 { first_offset } else { block_offset(b) + crate::format::BLOCK_HEADER_BYTES as u64 };
                (at, bytes)
            })
            .collect();
        Ok(Some(ranges))
    }

    /// Writes a checkpoint now.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        checkpoint::write_checkpoint(&self.inner)
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<()> {
        self.inner.writable()?;
        self.inner.commit.sync_now(&*self.inner.storage, &self.inner.poison)
    }

    /// The data file's path ("<new>" or the caller's name for other storage).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What recovery found when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The store's numbers now.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        // Lock order (module docs): checkpoint before log before table — a
        // checkpoint holds the first while it waits for the others.
        let checkpoint_id = inner.ckpt.lock().id;
        let (last_lsn, log_bytes) = {
            let log = inner.log.lock();
            (log.last_lsn(), log.bytes_written)
        };
        let table = inner.table.lock();
        let mut blocks_log = 0;
        let mut blocks_snapshot = 0;
        for block in 0..table.block_count() {
            match table.use_of(block) {
                BlockUse::Log { .. } => blocks_log += 1,
                BlockUse::Snapshot => blocks_snapshot += 1,
                BlockUse::Free | BlockUse::Meta | BlockUse::Pending { .. } => {}
            }
        }
        let live_bytes = table.live_total();
        let counters = &inner.counters;
        Stats {
            file_id: inner.superblock.file_id,
            created_ms: inner.superblock.created_ms,
            keys: inner.index.len(),
            index_heap_bytes: inner.index.heap_bytes(),
            block_count: u64::from(inner.block_count),
            blocks_free: table.free_count(),
            blocks_pending_free: table.pending_count(),
            blocks_log,
            blocks_snapshot,
            blocks_reserved: table.reserve_blocks(),
            live_bytes,
            dead_bytes: (blocks_log * BLOCK_BYTES as u64).saturating_sub(live_bytes),
            capacity_bytes: u64::from(inner.block_count) * BLOCK_BYTES as u64,
            last_lsn,
            synced_lsn: inner.commit.synced_lsn(),
            syncs: inner.commit.sync_count.load(Ordering::Relaxed),
            checkpoints: counters.checkpoints.load(Ordering::Relaxed),
            checkpoint_id,
            puts: counters.puts.load(Ordering::Relaxed),
            gets: counters.gets.load(Ordering::Relaxed),
            deletes: counters.deletes.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
            corrupt_reads: counters.corrupt_reads.load(Ordering::Relaxed),
            user_bytes_written: counters.user_bytes.load(Ordering::Relaxed),
            log_bytes_written: log_bytes,
            checkpoint_bytes_written: counters.checkpoint_bytes.load(Ordering::Relaxed),
            compaction_passes: inner.compaction.passes.load(Ordering::Relaxed),
            blocks_reclaimed: inner.compaction.blocks_reclaimed.load(Ordering::Relaxed),
            records_moved: inner.compaction.records_moved.load(Ordering::Relaxed),
            bytes_moved: inner.compaction.bytes_moved.load(Ordering::Relaxed),
            tombstones_dropped: inner.compaction.tombstones_dropped.load(Ordering::Relaxed),
            tombstones_kept: inner.compaction.tombstones_kept.load(Ordering::Relaxed),
            expired_dropped: inner.compaction.expired_dropped.load(Ordering::Relaxed),
            poisoned: inner.poison.check().err().map(|e| e.to_string()),
        }
    }

    /// Stops background work and, unless read-only or poisoned, writes a final
    /// checkpoint (which also syncs).
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Drops the store as a killed process would: no checkpoint, no sync.
    /// For crash tests; the file is left exactly as the writes made it.
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.closed = true;
        self.stop_threads();
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.stop_threads();
        if self.inner.read_only || self.inner.poison.is_set() {
            return Ok(());
        }
        // A clean close leaves nothing to replay, so the next open is quick
        // and its report says so: tombstones a checkpoint carries for its
        // snapshot blocks are newer than it covers, so another one follows.
        for _ in 0..CLOSE_CHECKPOINTS_MAX {
            if checkpoint::write_checkpoint(&self.inner)?.tombstones_carried == 0 {
                break;
            }
        }
        Ok(())
    }

    fn stop_threads(&mut self) {
        self.inner.control.stop();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }

    /// Compacts until no block written before the call (or holding no live
    /// put) is worth it, then checkpoints so the freed blocks become
    /// allocatable (the on-demand trigger: `kvctl compact`).
    pub fn compact(&self) -> Result<PassOutcome> {
        self.inner.reclaim(u64::MAX)
    }

    /// Puts and batches go through a write group (group.rs). A write that
    /// finds no room lets the compactor reclaim dead blocks and tries again
    /// — a few times, because a concurrent compaction pass may take the
    /// room for its copies first — before it is `NoSpace`.
    fn write(&self, ops: &[Op<'_>], purpose: Purpose) -> Result<()> {
        self.inner.writable()?;
        if purpose == Purpose::User {
            background::assist_compaction(&self.inner);
        }
        let submit = || self.inner.group.submit(ops, purpose, |group| self.inner.run_group(group));
        let mut attempts = 0;
        loop {
            match submit() {
                Err(err @ Error::NoSpace { .. }) if attempts == NO_SPACE_RETRIES => return Err(err),
                Err(Error::NoSpace { needed_blocks, .. }) => {
                    attempts += 1;
                    self.inner.reclaim(needed_blocks)?;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        let user_bytes: usize = ops.iter().map(|op| op.key.len() + op.value.len()).sum();
        self.inner.counters.user_bytes.fetch_add(user_bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn current_live(&self, key: &[u8]) -> Result<Option<Current>> {
        let current = self.inner.find_for_read(key)?;
        Ok(current.filter(|c| !self.expired(c)))
    }

    pub(crate) fn expired(&self, current: &Current) -> bool {
        let expires = current.first.header.expires_ms;
        expires != 0 && expires <= self.inner.clock.now_ms()
    }

    pub(crate) fn expiry(&self, ttl: Option<Duration>) -> Result<u64> {
        match ttl {
            None => Ok(0),
            Some(ttl) if ttl.is_zero() => Err(Error::InvalidArgument("ttl must be positive".into())),
            Some(ttl) => Ok(self.inner.clock.now_ms().saturating_add(ttl.as_millis() as u64)),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!("closing the store failed: {err}");
        }
    }
}

impl Inner {
    /// Runs compaction passes until `blocks_wanted` blocks (beyond the
    /// reserve) are free, or will be once a batch worth a checkpoint is
    /// pending (`release_batch_blocks`), or passes stop gaining; then
    /// checkpoints if the free blocks alone are not enough. When a pass finds
    /// no room for its copies while emptied blocks wait, the checkpoint comes
    /// first and the passes go on with the room it released.
    /// `blocks_wanted = u64::MAX`: compact all that gains.
    pub(crate) fn reclaim(&self, blocks_wanted: u64) -> Result<PassOutcome> {
        let mut total = PassOutcome::default();
        // Only blocks written before this run are victims. The run's own
        // copies are packed as densely as the log packs anything (blocks
        // keep some slack: `SPLIT_ROOM_MIN_BYTES`): moving them again gains
        // nothing, yet left eligible they were moved once their sources
        // were gone, up to 7x the live bytes in one `compact` of a small
        // store with 0-6 KB values.
        let generation_below = self.log.lock().replay_gen();
        // Every round either gains a block or releases pending ones, and
        // ends when it can do neither; the bound is a second guard.
        for _ in 0..self.block_count {
            // Out of room: no victim's copies fit, or the copies ran out.
            let (gained, out_of_room) = match compactor::compact_pass(self, PASS_VICTIMS_MAX, generation_below) {
                Ok(pass) => {
                    total.victims += pass.victims;
                    total.blocks_reclaimed += pass.blocks_reclaimed;
                    total.records_moved += pass.records_moved;
                    total.bytes_moved += pass.bytes_moved;
                    (background::gains(&pass), pass.victims == 0)
                }
                Err(Error::NoSpace { .. }) => (false, true),
                Err(err) => return Err(err),
            };
            let (enough, pending) = {
                let table = self.table.lock();
                let wanted = blocks_wanted.saturating_add(table.reserve_blocks());
                let pending = table.pending_count();
                let batch = pending >= compactor::release_batch_blocks(&table);
                (table.free_count() >= wanted || table.free_count() + pending >= wanted && batch, pending)
            };
            let room_to_release = out_of_room && pending > 0;
            if enough || !gained && !room_to_release {
                break;
            }
            if out_of_room {
                checkpoint::write_checkpoint(self)?;
            }
        }
        let needed = {
            let table = self.table.lock();
            table.pending_count() > 0 && table.free_count() < blocks_wanted.saturating_add(table.reserve_blocks())
        };
        if needed {
            checkpoint::write_checkpoint(self)?;
        }
        Ok(total)
    }

    /// Drops `key` from the index without writing anything: the compactor's
    /// unlinking of an expired key with no older version left.
    pub(crate) fn unlink(&self, key: &[u8]) {
        let current = lookup::find(&*self.storage, &self.index, key, key_hash(key)).current;
        if let Some(current) = current {
            self.retire(&mut self.table.lock(), &current);
            self.index.remove(current.entry);
        }
    }

    /// Takes a superseded (or unlinked) record's bytes out of the live-byte
    /// accounting of every block it spans.
    fn retire(&self, table: &mut BlockTable, current: &Current) {
        if let Ok(extents) = record_extents(&*self.storage, current.entry.block, &current.first) {
            for (block, bytes) in extents {
                table.sub_live(block, bytes);
            }
        }
    }

    pub(crate) fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.poison.check()
    }

    /// Runs one write group: places every request, writes them all with one
    /// flush, publishes them in LSN order, syncs once (sync=always), and
    /// hands each request its outcome.
    fn run_group(&self, group: &[GroupInput<'_, '_>]) -> Vec<Result<u64>> {
        let mut log = self.log.lock();
        if self.poison.is_set() {
            return group.iter().map(|_| self.poison.check().map(|()| 0)).collect();
        }
        let mut table = self.table.lock();
        let new_keys: u64 = group.iter().map(|(ops, _)| ops.len() as u64).sum();
        self.reserve_for(&mut table, new_keys);
        let mut placed = Vec::with_capacity(group.len());
        for &(ops, purpose) in group {
            let outcome = if log.last_lsn() + ops.len() as u64 > LSN_MAX {
                Err(Error::InvalidArgument(format!("log sequence numbers exhausted (limit {LSN_MAX})")))
            } else {
                log.place(&mut table, ops, purpose).map_err(|wanted| self.no_space(&table, wanted))
            };
            placed.push(outcome);
        }
        if let Err(err) = log.flush(&*self.storage) {
            self.poison.set(format!("log write failed: {err}"));
            return group
                .iter()
                .map(|_| Err(Error::io("log write", std::io::Error::new(err.kind(), err.to_string()))))
                .collect();
        }
        let mut last = None;
        for (&(ops, _), outcome) in group.iter().zip(&placed) {
            if let Ok(places) = outcome {
                self.publish(&mut table, ops, places);
                last = places.last().map(|p| p.lsn).or(last);
            }
        }
        self.update_reserve(&mut table);
        if let Some(last) = last {
            self.commit.written_lsn.store(last, Ordering::Release);
        }
        let nudge = compactor::wanted_by_writers(&table);
        drop(table);
        if nudge {
            self.control.nudge_compactor();
        }
        drop(log);
        let synced = last.map_or(Ok(()), |lsn| self.wait_durable(lsn));
        placed
            .into_iter()
            .map(|outcome| match (outcome, &synced) {
                (Ok(places), Ok(())) => Ok(places.last().map_or(0, |p| p.lsn)),
                // The sync covering this request failed (and poisoned the
                // store): every writer in the group gets that I/O error.
                (Ok(_), Err(err)) => Err(copy_error(err)),
                (Err(err), _) => Err(err),
            })
            .collect()
    }

    fn no_space(&self, table: &BlockTable, blocks_wanted: u64) -> Error {
        Error::NoSpace {
            needed_blocks: blocks_wanted,
            free_blocks: table.free_count(),
            reserved_blocks: table.reserve_blocks(),
            live_bytes: table.live_total(),
            capacity_bytes: u64::from(self.block_count) * BLOCK_BYTES as u64,
        }
    }

    /// Appends `ops` (place, flush, publish) for the writes that read before
    /// they write (delete, expire); the caller holds the log lock. Returns
    /// the LSN of the last record.
    pub(crate) fn append_locked(&self, log: &mut LogWriter, ops: &[Op<'_>], purpose: Purpose) -> Result<u64> {
        self.append_then(log, ops, purpose, |table, placed| self.publish(table, ops, placed))
    }

    /// Appends the compactor's copy of a record and points the index at
    /// it. The caller holds the log lock and has checked, under it, that
    /// `moving.entry` is the key's index entry: so, unlike `publish`, this
    /// reads nothing back (publish's lookup and extents walk were two of
    /// the three reads of each 8 KiB record a move did under the lock).
    pub(crate) fn append_moved_locked(&self, log: &mut LogWriter, op: Op<'_>, moving: &Moving) -> Result<u64> {
        self.append_then(log, &[op], Purpose::Compact, |table, placed| {
            let copy = &placed[0];
            let entry = crate::format::snapshot::IndexEntry::new(moving.entry.hash, copy.block, copy.offset, copy.lsn);
            let replaced = self.index.replace(Some(moving.entry), entry);
            debug_assert!(replaced, "the caller checked the entry under the log lock");
            // Were the entry gone, the copy is just a dead record: the
            // accounting changes only with the index.
            if replaced {
                for &(block, bytes) in &moving.extents {
                    table.sub_live(block, bytes);
                }
                for &(block, bytes) in &copy.extents {
                    table.add_live(block, bytes);
                }
            }
        })
    }

    /// Place, flush, then `publish` what was placed; the caller holds the
    /// log lock.
    fn append_then(
        &self,
        log: &mut LogWriter,
        ops: &[Op<'_>],
        purpose: Purpose,
        publish: impl FnOnce(&mut BlockTable, &[crate::log::Placed]),
    ) -> Result<u64> {
        self.poison.check()?;
        if log.last_lsn() + ops.len() as u64 > LSN_MAX {
            return Err(Error::InvalidArgument(format!("log sequence numbers exhausted (limit {LSN_MAX})")));
        }
        let mut table = self.table.lock();
        // Keep room for a snapshot holding every key this append may add.
        self.reserve_for(&mut table, ops.len() as u64);
        let placed = match log.append(&*self.storage, &mut table, ops, purpose) {
            Ok(placed) => placed,
            Err(AppendError::NoSpace { blocks_wanted }) => return Err(self.no_space(&table, blocks_wanted)),
            Err(AppendError::Io(err)) => {
                self.poison.set(format!("log write failed: {err}"));
                return Err(Error::io("log write", err));
            }
        };
        publish(&mut table, &placed);
        self.update_reserve(&mut table);
        let last = placed.last().map_or(log.last_lsn(), |p| p.lsn);
        self.commit.written_lsn.store(last, Ordering::Release);
        Ok(last)
    }

    /// Makes written records visible: index entries and live bytes, in LSN
    /// order. Only after their bytes are in storage, so a reader never finds
    /// an entry whose record it cannot read.
    fn publish(&self, table: &mut BlockTable, ops: &[Op<'_>], placed: &[crate::log::Placed]) {
        if ops.len() >= PREFETCH_KEYS_MIN {
            self.prefetch_current(ops);
        }
        for (op, placed) in ops.iter().zip(placed) {
            let hash = key_hash(op.key);
            let current = lookup::find(&*self.storage, &self.index, op.key, hash).current;
            if let Some(current) = &current {
                self.retire(table, current);
            }
            let old = current.map(|c| c.entry);
            if op.tombstone {
                if let Some(old) = old {
                    self.index.remove(old);
                }
            } else {
                for &(block, bytes) in &placed.extents {
                    table.add_live(block, bytes);
                }
                let entry = crate::format::snapshot::IndexEntry::new(hash, placed.block, placed.offset, placed.lsn);
                self.index.replace(old, entry);
            }
        }
    }

    /// Touches the record every op's key is indexed at, before `publish`
    /// reads them one by one to compare keys: each read is a cache miss
    /// (11% of kvd's time at SET pipeline 16, perf), and touched together
    /// they overlap.
    fn prefetch_current(&self, ops: &[Op<'_>]) {
        self.prefetch_hashes(ops.iter().map(|op| key_hash(op.key)).collect());
    }

    /// Touches the records the index holds for `hashes`, all together.
    fn prefetch_hashes(&self, mut hashes: Vec<u32>) {
        let mut candidates = Vec::with_capacity(hashes.len());
        self.index.candidates_of_many(&mut hashes, &mut candidates);
        for entry in &candidates {
            self.storage.prefetch(block_offset(entry.block) + u64::from(entry.offset()));
        }
    }

    /// Keeps room for the next checkpoint's snapshot (sized for every block
    /// in use and one more key) plus a margin that deletes may use.
    /// Also refreshes `space_short` (read by every put without a lock).
    fn update_reserve(&self, table: &mut BlockTable) {
        self.reserve_for(table, 1);
        let short = compactor::free_fraction(table, true) < compactor::FREE_FRACTION_URGENT;
        self.space_short.store(short, Ordering::Relaxed);
    }

    fn reserve_for(&self, table: &mut BlockTable, new_keys: u64) {
        let blocks = u64::from(self.block_count);
        let snapshot = checkpoint::snapshot_blocks(blocks, blocks, self.index.len() + new_keys);
        table.set_reserve_blocks(snapshot, RESERVE_BLOCKS_MIN);
    }

    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<()> {
        match self.sync {
            SyncPolicy::Always => self.commit.wait_durable(lsn, &*self.storage, &self.poison),
            SyncPolicy::Periodic(_) | SyncPolicy::None => Ok(()),
        }
    }

    /// Lookup for readers, retried when a concurrent write changed the
    /// candidates between reading the index and reading the record.
    fn find_for_read(&self, key: &[u8]) -> Result<Option<Current>> {
        let hash = key_hash(key);
        let mut attempt = 0;
        loop {
            match lookup::find(&*self.storage, &self.index, key, hash).for_read() {
                Err(err @ Error::Corrupt { .. }) => {
                    attempt += 1;
                    if attempt >= 3 {
                        self.counters.corrupt_reads.fetch_add(1, Ordering::Relaxed);
                        return Err(err);
                    }
                }
                other => return other,
            }
        }
    }

    pub(crate) fn checkpoint_due(&self) -> bool {
        let written = self.log.lock().bytes_written;
        let (at_bytes, at_time) = {
            let ckpt = self.ckpt.lock();
            (ckpt.log_bytes_at, ckpt.at)
        };
        let since = written.saturating_sub(at_bytes);
        let snapshot_bytes = self.index.len() * crate::format::snapshot::INDEX_ENTRY_BYTES as u64;
        since >= self.checkpoint_log_bytes.max(snapshot_bytes)
            || (since > 0 && self.checkpoint_interval.is_some_and(|every| at_time.elapsed() >= every))
    }
}

/// A copy of a sync outcome's error for each writer of a group.
fn copy_error(err: &Error) -> Error {
    match err {
        Error::Io { op, source } => Error::Io { op, source: std::io::Error::new(source.kind(), source.to_string()) },
        other => Error::Poisoned { reason: other.to_string() },
    }
}

/// Ops in one batch: at most `BATCH_OPS_MAX`.
fn check_batch_ops(count: usize) -> Result<()> {
    if count > BATCH_OPS_MAX {
        return Err(Error::TooLarge { what: "batch", actual: count as u64, limit: BATCH_OPS_MAX as u64 });
    }
    Ok(())
}

pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::TooLarge { what: "key", actual: key.len() as u64, limit: KEY_BYTES_MAX as u64 });
    }
    Ok(())
}

pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(Error::TooLarge { what: "value", actual: value.len() as u64, limit: VALUE_BYTES_MAX as u64 });
    }
    Ok(())
}

fn validate_size(bytes: u64) -> Result<()> {
    if !(FILE_BYTES_MIN..=FILE_BYTES_MAX).contains(&bytes) || !bytes.is_multiple_of(BLOCK_BYTES as u64) {
        return Err(Error::InvalidArgument(format!(
            "file size {bytes} must be a multiple of {BLOCK_BYTES} between {FILE_BYTES_MIN} and {FILE_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

fn write_superblock(storage: &dyn Storage, clock: &dyn Clock) -> Result<()> {
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

/// Creates a new data file: formatted and checkpointed under a temporary
/// name, then renamed into place, so a crash never leaves a half-made file
/// under the real name. Returns it still open and locked, or None when
/// another process created the file first (open theirs).
fn create_file(path: &Path, bytes: u64, opts: &Options) -> Result<Option<FileStorage>> {
    validate_size(bytes)?;
    let (storage, temp) = FileStorage::create_temp(path, bytes).map_err(|err| match err {
        OpenFileError::Io(err) => Error::io("create data file", err),
        OpenFileError::Locked { pid } => Error::Locked { path: path.to_path_buf(), pid },
    })?;
    let storage = Arc::new(storage);
    let made = Store::create_on(storage.clone(), Options { background: false, read_only: false, ..opts.clone() })
        .and_then(|store| store.close());
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
