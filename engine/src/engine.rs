//! The engine: the subsystems behind a [`Store`](crate::Store), each owning
//! its state behind a narrow interface, and the order their locks are taken.
//!
//! Subsystems, lowest layer first (each uses only those before it):
//! - `space`: the block table, the reserve rule, pending-free, NoSpace;
//! - `index`: the index, lookups, record reads, `apply` (a record applied to
//!   the index and the live bytes, by the write path and replay alike);
//! - `writer`: the log writer, write groups, group commit and poison;
//! - `checkpoint`: the checkpointer; `recovery`: opening from disk;
//! - `compaction`: the compactor and its policy; `expiry`: the active
//!   expiry round, over the TTL table (`ttl`, beside the index);
//! - this module, which holds them all; `background` runs its threads.
//!
//! # Lock order
//!
//! Every lock of the engine, in the order it may be taken: a thread holding
//! one may take only locks below it. Every other comment about locks
//! points here.
//!
//! 1. compaction pass (`Compactor::pass`): held for a whole pass.
//! 2. checkpoint state (`Checkpointer::state`): held for a whole checkpoint.
//! 3. write-group queue (`WriteGroup::queue`), then
//! 4. a write-group request's slot (`Request::slot`): neither is held while
//!    the leader runs the group.
//! 5. log (`Writer::log`, a `SleepLock`): every append, publish and
//!    checkpoint capture; the compactor takes it per record.
//! 6. block table (`Space::table`, a `SleepLock`).
//! 7. index shards (`Index::shards`, `RwLock`s): one at a time; a scan
//!    page holds one shard's, shared, only while it copies entries.
//! 8. TTL table (`TtlTable::state`): taken under the log and the block
//!    table by `index::apply`, and alone by the expiry round and `stats`;
//!    never with an index shard, and nothing is taken under it.
//! 9. compaction skip set (`Compactor::skip`), then
//! 10. victim queue (`Compactor::victims`): taken while holding the block
//!     table (picking victims), never with an index shard.
//! 11. group-commit state (`GroupCommit::state`): never held while syncing.
//! 12. background control (`Control::state`): taken under the log by a
//!     writer's nudge.
//! 13. poison reason (`Poison::reason`): under any of the above.
//!
//! Readers and scan pages take only an index shard (shared), copy what they
//! need, release it, then read the records through the storage's page cache
//! without any lock. The storage's own locks
//! (`SimDisk`) are below all of these.

use crate::checkpoint::{self, CheckpointInfo, Checkpointer};
use crate::clock::Clock;
use crate::compaction::{self, Compactor};
use crate::control::Control;
use crate::error::{Error, Result};
use crate::expiry::{self, ExpiryRound};
use crate::format::record::{RECORD_HEADER_BYTES, RecordHeader};
use crate::format::superblock::Superblock;
use crate::format::{BLOCK_BYTES, block_offset};
use crate::index::lookup::{self, Current};
use crate::index::{Index, key_hash};
use crate::options::Options;
use crate::recovery::{self, RecoveryMode, RecoveryReport};
use crate::space::{BlockUse, Space};
use crate::stats::{Counters, Stats};
use crate::storage::Storage;
use crate::ttl::{TtlEntry, TtlTable};
use crate::writer::{self, Writer};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What open established about the file: fixed for the store's life.
#[derive(Debug)]
struct Opened {
    path: PathBuf,
    superblock: Superblock,
    read_only: bool,
    recovery: RecoveryReport,
}

/// The subsystems behind a store.
#[derive(Debug)]
pub(crate) struct Engine {
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub writer: Writer,
    pub space: Space,
    pub index: Index,
    pub ttl: TtlTable,
    pub checkpointer: Checkpointer,
    pub compactor: Compactor,
    pub control: Control,
    pub counters: Counters,
    opened: Opened,
}

impl Engine {
    /// Recovers the store on `storage`; also says whether a checkpoint
    /// should be written before the store is used hard.
    pub fn open(storage: Arc<dyn Storage>, path: &Path, opts: &Options) -> Result<(Engine, bool)> {
        let writable = !opts.read_only;
        let recovered = recovery::recover(&*storage, path, opts.recovery, writable, opts.clock.now_ms())?;
        tracing::info!(path = %path.display(), "recovered {}", recovered.report);
        let engine = Engine {
            storage,
            clock: opts.clock.clone(),
            writer: Writer::new(recovered.log, opts.sync),
            space: Space::new(recovered.table),
            index: recovered.index,
            ttl: TtlTable::new(opts.clock.clone()),
            checkpointer: Checkpointer::new(recovered.checkpoint, opts),
            compactor: Compactor::default(),
            control: Control::default(),
            counters: Counters::default(),
            opened: Opened {
                path: path.to_path_buf(),
                superblock: recovered.superblock,
                read_only: opts.read_only,
                recovery: recovered.report,
            },
        };
        engine.space.update_reserve(&mut engine.space.lock(), engine.index.len());
        engine.rebuild_ttl();
        Ok((engine, recovered.wants_checkpoint))
    }

    /// Fills the TTL table from the index: the header of every indexed
    /// record is read back (in file order, in parallel) for its expiry.
    /// Checkpoints do not store expiry, and replay may start from one, so
    /// this runs after every recovery, before any write (the figures behind
    /// reading rather than storing it: docs/BENCHMARKS.md). The header is
    /// not checked against its CRC here, which covers the whole fragment: an
    /// entry is only a hint, and the round reads and verifies the record
    /// before it removes anything. Returns the keys with a TTL.
    pub fn rebuild_ttl(&self) -> u64 {
        let started = Instant::now();
        let mut entries = self.index.entries();
        // In file order, so the reads walk the log forwards; in the index's
        // order each one is a cache miss.
        entries.par_sort_unstable_by_key(|entry| (entry.block, entry.offset()));
        let storage = &*self.storage;
        let with_ttl: Vec<TtlEntry> = entries
            .par_iter()
            .filter_map(|entry| {
                let mut head = [0u8; RECORD_HEADER_BYTES];
                let at = block_offset(entry.block) + u64::from(entry.offset());
                storage.read_at(at, &mut head).ok()?;
                let header = RecordHeader::decode_unverified(&head).ok()?;
                (header.lsn == entry.lsn() && header.expires_ms != 0)
                    .then(|| TtlEntry::new(header.expires_ms, entry.hash, entry.lsn()))
            })
            .collect();
        let count = with_ttl.len() as u64;
        self.ttl.rebuild(with_ttl);
        tracing::info!(
            keys = entries.len() as u64,
            with_ttl = count,
            ms = started.elapsed().as_millis() as u64,
            "ttl table built from the index"
        );
        count
    }

    /// What an append updates.
    #[inline]
    pub fn append_parts(&self) -> writer::Parts<'_> {
        writer::Parts { storage: &*self.storage, space: &self.space, index: &self.index, ttl: &self.ttl }
    }

    /// One round of active expiry (expiry/).
    pub fn expire_round(&self, keys_max: usize, deadline: Option<Instant>) -> Result<ExpiryRound> {
        self.writable()?;
        let parts = expiry::Parts {
            storage: &*self.storage,
            clock: &*self.clock,
            index: &self.index,
            ttl: &self.ttl,
            writer: &self.writer,
            append: self.append_parts(),
        };
        expiry::round(&parts, keys_max, deadline)
    }

    /// Keys with a TTL, and an estimate of the average TTL they have left
    /// (ms; 0 when none), from a sample as Redis's `avg_ttl` is.
    pub fn ttl_summary(&self) -> (u64, u64) {
        let now_ms = self.clock.now_ms();
        let mut candidates = Vec::new();
        let mut left = Vec::new();
        for sampled in self.ttl.sample() {
            candidates.clear();
            self.index.candidates(sampled.hash, &mut candidates);
            if candidates.iter().any(|c| sampled.names_lsn(c.lsn())) {
                left.push(sampled.expires_ms.saturating_sub(now_ms));
            }
        }
        let average = if left.is_empty() { 0 } else { left.iter().sum::<u64>() / left.len() as u64 };
        (self.ttl.live_count(), average)
    }

    pub fn checkpoint_parts(&self) -> checkpoint::Parts<'_> {
        checkpoint::Parts {
            storage: &*self.storage,
            clock: &*self.clock,
            space: &self.space,
            index: &self.index,
            ttl: &self.ttl,
            writer: &self.writer,
        }
    }

    pub fn compaction_parts(&self) -> compaction::Parts<'_> {
        compaction::Parts {
            compactor: &self.compactor,
            storage: &*self.storage,
            clock: &*self.clock,
            space: &self.space,
            index: &self.index,
            ttl: &self.ttl,
            writer: &self.writer,
            checkpointer: &self.checkpointer,
            read_only: self.opened.read_only,
        }
    }

    /// Writes a checkpoint now.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.checkpointer.write(&self.checkpoint_parts())
    }

    #[inline]
    pub fn writable(&self) -> Result<()> {
        if self.opened.read_only {
            return Err(Error::ReadOnly);
        }
        self.writer.poison().check()
    }

    pub fn read_only(&self) -> bool {
        self.opened.read_only
    }

    pub fn path(&self) -> &Path {
        &self.opened.path
    }

    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.opened.recovery
    }

    /// The mode the report names (a new store is opened tolerating a tail,
    /// then reports the mode it was asked for).
    pub fn set_recovery_mode(&mut self, mode: RecoveryMode) {
        self.opened.recovery.mode = mode;
    }

    /// Lookup for readers, retried when a concurrent write changed the
    /// candidates between reading the index and reading the record.
    #[inline]
    pub fn find_for_read(&self, key: &[u8]) -> Result<Option<Current>> {
        let hash = key_hash(key);
        let mut attempt = 0;
        loop {
            match lookup::find(&*self.storage, &self.index, key, hash).for_read() {
                Err(err @ Error::Corrupt { .. }) => {
                    attempt += 1;
                    if attempt >= 3 {
                        self.counters.count_corrupt_read();
                        return Err(err);
                    }
                }
                other => return other,
            }
        }
    }

    /// The key's current record, unless it has expired.
    #[inline]
    pub fn current_live(&self, key: &[u8]) -> Result<Option<Current>> {
        let current = self.find_for_read(key)?;
        Ok(current.filter(|c| !self.expired(c)))
    }

    #[inline]
    pub fn expired(&self, current: &Current) -> bool {
        let expires = current.first.header.expires_ms;
        expires != 0 && expires <= self.clock.now_ms()
    }

    /// The expiry time of a write with `ttl` (0: none).
    #[inline]
    pub fn expiry(&self, ttl: Option<Duration>) -> Result<u64> {
        match ttl {
            None => Ok(0),
            Some(ttl) if ttl.is_zero() => Err(Error::InvalidArgument("ttl must be positive".into())),
            Some(ttl) => Ok(self.clock.now_ms().saturating_add(ttl.as_millis() as u64)),
        }
    }

    /// The store's numbers now.
    pub fn stats(&self) -> Stats {
        // Lock order (above): checkpoint before log before table.
        let checkpoint_id = self.checkpointer.id();
        let (last_lsn, log_bytes) = {
            let log = self.writer.lock();
            (log.last_lsn(), log.bytes_written)
        };
        // The TTL table and the index shards come after the block table in
        // the lock order: taken here, before it, one at a time.
        let (keys_with_ttl, avg_ttl_ms) = self.ttl_summary();
        let table = self.space.lock();
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
        let counted = self.counters.read();
        let compaction = self.compactor.counters();
        let superblock = &self.opened.superblock;
        Stats {
            file_id: superblock.file_id,
            created_ms: superblock.created_ms,
            keys: self.index.len(),
            index_heap_bytes: self.index.heap_bytes(),
            block_count: u64::from(self.space.block_count()),
            blocks_free: table.free_count(),
            blocks_pending_free: table.pending_count(),
            blocks_log,
            blocks_snapshot,
            blocks_reserved: table.reserve_blocks(),
            live_bytes,
            dead_bytes: (blocks_log * BLOCK_BYTES as u64).saturating_sub(live_bytes),
            capacity_bytes: self.space.capacity_bytes(),
            last_lsn,
            synced_lsn: self.writer.synced_lsn(),
            syncs: self.writer.sync_count(),
            checkpoints: self.checkpointer.count(),
            checkpoint_id,
            puts: counted.puts,
            gets: counted.gets,
            deletes: counted.deletes,
            batches: counted.batches,
            corrupt_reads: counted.corrupt_reads,
            user_bytes_written: counted.user_bytes,
            log_bytes_written: log_bytes,
            checkpoint_bytes_written: self.checkpointer.bytes(),
            compaction_passes: compaction.passes.load(Ordering::Relaxed),
            blocks_reclaimed: compaction.blocks_reclaimed.load(Ordering::Relaxed),
            records_moved: compaction.records_moved.load(Ordering::Relaxed),
            bytes_moved: compaction.bytes_moved.load(Ordering::Relaxed),
            tombstones_dropped: compaction.tombstones_dropped.load(Ordering::Relaxed),
            tombstones_kept: compaction.tombstones_kept.load(Ordering::Relaxed),
            expired_dropped: compaction.expired_dropped.load(Ordering::Relaxed),
            expired_keys: self.ttl.expired_count(),
            keys_with_ttl,
            avg_ttl_ms,
            ttl_heap_bytes: self.ttl.heap_bytes(),
            poisoned: self.writer.poison().check().err().map(|e| e.to_string()),
        }
    }

    /// Touches the records of `hashes` together (`Store::prefetch`).
    pub fn prefetch(&self, hashes: Vec<u32>) {
        self.index.prefetch_records(&*self.storage, hashes);
    }
}
