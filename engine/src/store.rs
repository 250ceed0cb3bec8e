//! The public API: open/create, put, get, delete, exists, scan pages and
//! scan by prefix, atomic batches, TTLs, checkpoints, stats, close. The
//! work is done by the engine's subsystems (engine.rs, which also gives the
//! lock order).

use crate::background;
use crate::checkpoint::CheckpointInfo;
use crate::compaction::PassOutcome;
use crate::create::{create_file, validate_size, write_superblock};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::format::{BLOCK_HEADER_BYTES, block_offset};
use crate::index::cursor::{ScanPage, ScannedKey, read_page};
use crate::index::read::{read_value, record_extents};
use crate::index::{PREFETCH_KEYS_MIN, key_hash, lookup};
use crate::limits::{BATCH_BYTES_MAX, BATCH_OPS_MAX, KEY_BYTES_MAX, SCAN_VISIT_MAX, VALUE_BYTES_MAX};
use crate::options::Options;
use crate::recovery::{RecoveryMode, RecoveryReport};
use crate::space::Purpose;
use crate::stats::Stats;
use crate::storage::{FileStorage, LockMode, OpenFileError, Storage};
use crate::writer::Op;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Reclaim-and-retry rounds a write gets when it finds no room.
const NO_SPACE_RETRIES: u32 = 4;

/// Index entries per page of the engine's own walks (`for_each_key`,
/// `scan`): a page's copy of entries stays small (16 KiB) while the
/// per-page work (a shard lock, a sort) is spread over many keys.
const WALK_VISIT: usize = 1024;

/// Checkpoints a clean close writes at most: one, plus one more while the
/// last carried tombstones (each round uses up the blocks that needed it).
const CLOSE_CHECKPOINTS_MAX: u32 = 3;

/// One operation of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// A put expiring `ttl` after the batch is written (None: never).
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    /// A put expiring at Unix time `expires_ms` (0: never; a time already
    /// past makes it a delete, as `Store::put_at`).
    PutAt {
        key: Vec<u8>,
        value: Vec<u8>,
        expires_ms: u64,
    },
    Delete {
        key: Vec<u8>,
    },
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTtl {
    Missing,
    Persistent,
    ExpiresInMs(u64),
}

/// An open store. Share it between threads with `Arc<Store>`; all methods
/// take `&self`.
#[derive(Debug)]
pub struct Store {
    pub(crate) engine: Arc<Engine>,
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
            // held throughout: a reopen would leave a window where a process
            // forked meanwhile (its copy of the descriptor lives until exec)
            // still holds the lock.
            let format_opts = Options { background: false, read_only: false, ..opts.clone() };
            let format = |storage: Arc<dyn Storage>| Store::create_on(storage, format_opts)?.close();
            if let Some(storage) = create_file(path, bytes, format)? {
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
        if let Some(engine) = Arc::get_mut(&mut store.engine) {
            engine.set_recovery_mode(recovery);
        }
        Ok(store)
    }

    /// Opens a store on any [`Storage`] (the simulated disk in tests).
    pub fn open_storage(storage: Arc<dyn Storage>, path: &Path, opts: Options) -> Result<Store> {
        let writable = !opts.read_only;
        let (engine, wants_checkpoint) = Engine::open(storage, path, &opts)?;
        let engine = Arc::new(engine);
        if writable && wants_checkpoint {
            match engine.checkpoint() {
                Ok(_) => {}
                Err(err @ Error::NoSpace { .. }) => tracing::warn!("no checkpoint after recovery: {err}"),
                Err(err) => return Err(err),
            }
        }
        let threads = if opts.background && writable {
            background::spawn(&engine, opts.background_compaction, opts.background_expiry)
        } else {
            Vec::new()
        };
        Ok(Store { engine, threads, closed: false })
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
        self.engine.counters.count_put();
        let op = Op { key, value, tombstone: false, expires_ms };
        self.write(&[op], Purpose::User)
    }

    /// Keys in the index (expired ones included until the expiry thread,
    /// or a write that meets them, removes them): what `stats().keys` says,
    /// without its locks.
    pub fn key_count(&self) -> u64 {
        self.engine.index.len()
    }

    /// The value of `key`, or None if absent or expired. Never returns bytes
    /// that failed their checksum: those give `Error::Corrupt`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        self.engine.counters.count_get();
        match self.current_live(key)? {
            Some(current) => read_value(&*self.engine.storage, current.first).map(Some),
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
        self.engine.prefetch(hashes);
    }

    /// True if `key` holds a value that has not expired.
    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        Ok(self.current_live(key)?.is_some())
    }

    /// Deletes `key`; true if it held a live value.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        self.engine.writable()?;
        self.engine.counters.count_delete();
        let mut log = self.engine.writer.lock();
        let found = lookup::find(&*self.engine.storage, &self.engine.index, key, key_hash(key));
        let live = found.current.as_ref().is_some_and(|c| !self.expired(c));
        // An unreadable candidate may be this key: write the tombstone anyway
        // so no recovery path can bring an older version back.
        if found.current.is_none() && found.unreadable.is_none() {
            return Ok(false);
        }
        let op = Op { key, value: &[], tombstone: true, expires_ms: 0 };
        let lsn = self.engine.writer.append_locked(self.engine.append_parts(), &mut log, &[op], Purpose::Delete)?;
        drop(log);
        self.engine.writer.wait_durable(&*self.engine.storage, lsn)?;
        Ok(live)
    }

    /// Applies every operation or none, even across a crash.
    pub fn write_batch(&self, ops: &[BatchOp]) -> Result<()> {
        check_batch_ops(ops.len())?;
        let now_ms = self.engine.clock.now_ms();
        let mut encoded = Vec::with_capacity(ops.len());
        for op in ops {
            encoded.push(match op {
                BatchOp::Put { key, value, ttl } => {
                    check_key(key)?;
                    check_value(value)?;
                    Op { key, value, tombstone: false, expires_ms: self.expiry(*ttl)? }
                }
                BatchOp::PutAt { key, value, expires_ms } => {
                    check_key(key)?;
                    check_value(value)?;
                    put_or_delete(key, value, *expires_ms, now_ms)
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
        self.engine.counters.count_batch();
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
            Some(c) => KeyTtl::ExpiresInMs(c.first.header.expires_ms.saturating_sub(self.engine.clock.now_ms())),
        })
    }

    /// Sets (Some) or removes (None) the TTL of an existing key by rewriting
    /// its record; false if the key is absent. `expire_at` with a time.
    pub fn expire(&self, key: &[u8], ttl: Option<Duration>) -> Result<bool> {
        check_key(key)?;
        self.expire_at(key, self.expiry(ttl)?)
    }

    /// One page of a walk over every live key, in key-hash order: start
    /// with cursor 0 and pass each page's `next` until it is 0. A page
    /// covers about `visit` index entries (1 to `SCAN_VISIT_MAX`), never
    /// some of the keys of one hash without the others, and reads only
    /// their records: its cost does not grow with the store. Stateless: a
    /// cursor is a position in hash space (index/cursor.rs), valid whatever
    /// the store does between pages; a key present for the whole walk is
    /// returned exactly once, a key added or removed meanwhile at most once.
    /// Expired keys are left out; records that fail their checksum are
    /// skipped and counted in `Stats::corrupt_reads`.
    pub fn scan_page(&self, cursor: u64, visit: usize) -> Result<ScanPage> {
        let visit = visit.clamp(1, SCAN_VISIT_MAX);
        let now = self.engine.clock.now_ms();
        let read = read_page(&*self.engine.storage, &self.engine.index, cursor, visit, now);
        for _ in 0..read.corrupt {
            self.engine.counters.count_corrupt_read();
        }
        Ok(read.page)
    }

    /// Hands every live key to `visit`, in key-hash order, page by page
    /// (`scan_page`, with its guarantees): for walks of the whole store,
    /// in memory of one page.
    pub fn for_each_key(&self, mut visit: impl FnMut(ScannedKey)) -> Result<()> {
        let mut cursor = 0;
        loop {
            let page = self.scan_page(cursor, WALK_VISIT)?;
            page.keys.into_iter().for_each(&mut visit);
            if page.next == 0 {
                return Ok(());
            }
            cursor = page.next;
        }
    }

    /// Keys starting with `prefix`, sorted, after `start_after` if given, at
    /// most `limit` of them. Walks every key (`for_each_key`): O(keys in the
    /// store) time, O(limit) memory. Records that fail their checksum are
    /// skipped and counted in `Stats::corrupt_reads` (their key cannot be
    /// known).
    pub fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        if limit == 0 {
            return Ok(keys);
        }
        // Past twice the limit, only the `limit` smallest can still be in
        // the answer: linear time per trim, memory bounded by the limit.
        let trim_at = limit.saturating_mul(2).max(64);
        self.for_each_key(|scanned| {
            if scanned.key.starts_with(prefix) && start_after.is_none_or(|after| scanned.key.as_slice() > after) {
                keys.push(scanned.key);
                if keys.len() >= trim_at {
                    keys.select_nth_unstable(limit);
                    keys.truncate(limit);
                }
            }
        })?;
        keys.sort_unstable();
        keys.truncate(limit);
        Ok(keys)
    }

    /// Where the current record of `key` lives: (byte offset in the file,
    /// bytes) of each fragment; None if the key has no record. For kv-fsck,
    /// corruption tests and the curious.
    pub fn locate(&self, key: &[u8]) -> Result<Option<Vec<(u64, u32)>>> {
        check_key(key)?;
        let Some(current) = self.engine.find_for_read(key)? else {
            return Ok(None);
        };
        let block = current.entry.block;
        let extents = record_extents(&*self.engine.storage, block, &current.first)?;
        let first_offset = block_offset(block) + u64::from(current.entry.offset());
        let ranges = extents
            .into_iter()
            .enumerate()
            .map(|(i, (b, bytes))| {
                let at = if i == 0 { first_offset } else { block_offset(b) + BLOCK_HEADER_BYTES as u64 };
                (at, bytes)
            })
            .collect();
        Ok(Some(ranges))
    }

    /// Writes a checkpoint now.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.engine.checkpoint()
    }

    /// Makes every write so far durable.
    pub fn sync(&self) -> Result<()> {
        self.engine.writable()?;
        self.engine.writer.sync_now(&*self.engine.storage)
    }

    /// The data file's path ("<new>" or the caller's name for other storage).
    pub fn path(&self) -> &Path {
        self.engine.path()
    }

    /// What recovery found when this store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.engine.recovery_report()
    }

    /// The store's numbers now.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
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
        if self.engine.read_only() || self.engine.writer.poison().is_set() {
            return Ok(());
        }
        // A clean close leaves nothing to replay, so the next open is quick
        // and its report says so: tombstones a checkpoint carries for its
        // snapshot blocks are newer than it covers, so another one follows.
        for _ in 0..CLOSE_CHECKPOINTS_MAX {
            if self.engine.checkpoint()?.tombstones_carried == 0 {
                break;
            }
        }
        Ok(())
    }

    fn stop_threads(&mut self) {
        self.engine.control.stop();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }

    /// Compacts until no block written before the call (or holding no live
    /// put) is worth it, then checkpoints so the freed blocks become
    /// allocatable (the on-demand trigger: `kvctl compact`).
    pub fn compact(&self) -> Result<PassOutcome> {
        self.engine.compaction_parts().reclaim(u64::MAX)
    }

    /// One record through a write group: a put, or the tombstone a put
    /// with a past expiry becomes (which may use the deletes' margin).
    pub(crate) fn write_one(&self, op: Op<'_>) -> Result<()> {
        let purpose = if op.tombstone { Purpose::Delete } else { Purpose::User };
        self.write(&[op], purpose)
    }

    /// One round of active expiry as the expiry thread runs it, without
    /// its time limit: for tests that drive the clock by hand. Returns the
    /// keys removed.
    #[doc(hidden)]
    pub fn expire_round(&self) -> Result<u64> {
        Ok(self.engine.expire_round(crate::expiry::ROUND_KEYS_MAX, None)?.removed)
    }

    /// Rebuilds the TTL table from the index as open does; returns the keys
    /// with a TTL. For measuring that part of open.
    #[doc(hidden)]
    pub fn rebuild_ttl_table(&self) -> u64 {
        self.engine.rebuild_ttl()
    }

    /// Puts and batches go through a write group (writer/group.rs). A write that
    /// finds no room lets the compactor reclaim dead blocks and tries again
    /// — a few times, because a concurrent compaction pass may take the
    /// room for its copies first — before it is `NoSpace`.
    fn write(&self, ops: &[Op<'_>], purpose: Purpose) -> Result<()> {
        self.engine.writable()?;
        if purpose == Purpose::User {
            background::assist_compaction(&self.engine);
        }
        let engine = &*self.engine;
        let submit = || engine.writer.submit(engine.append_parts(), ops, purpose, || engine.control.nudge_compactor());
        let mut attempts = 0;
        loop {
            match submit() {
                Err(err @ Error::NoSpace { .. }) if attempts == NO_SPACE_RETRIES => return Err(err),
                Err(Error::NoSpace { needed_blocks, .. }) => {
                    attempts += 1;
                    self.engine.compaction_parts().reclaim(needed_blocks)?;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        let user_bytes: usize = ops.iter().map(|op| op.key.len() + op.value.len()).sum();
        self.engine.counters.add_user_bytes(user_bytes as u64);
        Ok(())
    }

    #[inline]
    pub(crate) fn current_live(&self, key: &[u8]) -> Result<Option<crate::index::lookup::Current>> {
        self.engine.current_live(key)
    }

    #[inline]
    pub(crate) fn expired(&self, current: &crate::index::lookup::Current) -> bool {
        self.engine.expired(current)
    }

    #[inline]
    pub(crate) fn expiry(&self, ttl: Option<Duration>) -> Result<u64> {
        self.engine.expiry(ttl)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown() {
            tracing::error!("closing the store failed: {err}");
        }
    }
}

/// Whether an absolute expiry (0: none) has passed at `now_ms`.
pub(crate) fn is_past(expires_ms: u64, now_ms: u64) -> bool {
    expires_ms != 0 && expires_ms <= now_ms
}

/// The record a put with absolute expiry `expires_ms` writes at `now_ms`:
/// the put, or a tombstone when that time has passed (the key would read
/// as absent anyway; no value is kept for it).
pub(crate) fn put_or_delete<'a>(key: &'a [u8], value: &'a [u8], expires_ms: u64, now_ms: u64) -> Op<'a> {
    if is_past(expires_ms, now_ms) {
        Op { key, value: &[], tombstone: true, expires_ms: 0 }
    } else {
        Op { key, value, tombstone: false, expires_ms }
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
