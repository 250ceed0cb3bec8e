//! The writer: everything that puts records in the log and makes them
//! durable and visible.
//!
//! - `log`: the log writer (packing records into LOG blocks, LSNs and
//!   generations), behind the log lock.
//! - `group`: write groups (one leader writes and syncs for many writers).
//! - `commit`: the sync rendezvous and the poison flag.
//!
//! Here: the three ways into the log — a write group (`submit`, for puts
//! and batches), an append for the writes that read first (`append_locked`:
//! delete, expire, conditional put, increment, carried tombstones, the
//! compactor's tombstones) and the compactor's moved record
//! (`append_moved_locked`) — and the wait for durability the sync policy
//! asks for. Each publishes what it wrote to the index and the live-byte
//! accounting through `index::apply`, under the log lock and the block
//! table (lock order: engine.rs).

mod commit;
mod group;
pub(crate) mod log;

pub(crate) use commit::Poison;
pub(crate) use log::{LogWriter, Op};

use crate::error::{Error, Result};
use crate::index::apply::{self, Moving, Order, Put, Update};
use crate::index::{Index, PREFETCH_KEYS_MIN, key_hash};
use crate::limits::LSN_MAX;
use crate::options::SyncPolicy;
use crate::sleep_lock::SleepLock;
use crate::space::{self, BlockTable, Purpose, Space};
use crate::storage::Storage;
use crate::ttl::TtlTable;
use commit::GroupCommit;
use group::{GroupInput, WriteGroup};
use log::{AppendError, Placed};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The subsystems an append updates besides the log itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub storage: &'a dyn Storage,
    pub space: &'a Space,
    pub index: &'a Index,
    pub ttl: &'a TtlTable,
}

/// The log writer behind its lock, the write groups, the sync rendezvous,
/// the poison flag and the sync policy.
#[derive(Debug)]
pub(crate) struct Writer {
    log: SleepLock<LogWriter>,
    group: WriteGroup,
    commit: GroupCommit,
    poison: Poison,
    /// The policy's kind; for `Periodic`, its interval is `sync_interval_ms`,
    /// which `set_sync_interval` changes while the store runs.
    sync: SyncPolicy,
    sync_interval_ms: AtomicU64,
}

impl Writer {
    pub fn new(log: LogWriter, sync: SyncPolicy) -> Self {
        let commit = GroupCommit::new(log.last_lsn());
        let interval_ms = match sync {
            SyncPolicy::Periodic(every) => every.as_millis() as u64,
            _ => 0,
        };
        Writer {
            log: SleepLock::new(log),
            group: WriteGroup::default(),
            commit,
            poison: Poison::default(),
            sync,
            sync_interval_ms: AtomicU64::new(interval_ms),
        }
    }

    /// The log lock and the log writer behind it.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, LogWriter> {
        self.log.lock()
    }

    pub fn poison(&self) -> &Poison {
        &self.poison
    }

    pub fn sync_policy(&self) -> SyncPolicy {
        match self.sync {
            SyncPolicy::Periodic(_) => {
                SyncPolicy::Periodic(Duration::from_millis(self.sync_interval_ms.load(Ordering::Relaxed)))
            }
            other => other,
        }
    }

    /// A new interval for `SyncPolicy::Periodic`; false (nothing changed)
    /// under another policy.
    pub fn set_sync_interval(&self, every: Duration) -> bool {
        if !matches!(self.sync, SyncPolicy::Periodic(_)) {
            return false;
        }
        self.sync_interval_ms.store(every.as_millis().max(1) as u64, Ordering::Relaxed);
        true
    }

    /// Highest LSN handed to storage, and highest LSN known durable.
    pub fn written_and_synced_lsn(&self) -> (u64, u64) {
        (self.commit.written_lsn(), self.commit.synced_lsn())
    }

    pub fn synced_lsn(&self) -> u64 {
        self.commit.synced_lsn()
    }

    pub fn sync_count(&self) -> u64 {
        self.commit.sync_count()
    }

    /// Writes `ops` (one put, or one atomic batch) through a write group and
    /// returns the LSN of its last record once it is as durable as the sync
    /// policy promises. `nudge` runs when free space fell below the
    /// compactor's write trigger.
    #[inline]
    pub fn submit(&self, parts: Parts<'_>, ops: &[Op<'_>], purpose: Purpose, nudge: impl Fn()) -> Result<u64> {
        self.group.submit(ops, purpose, |group| self.run_group(parts, group, &nudge))
    }

    /// Runs one write group: places every request, writes them all with one
    /// flush, publishes them in LSN order, syncs once (sync=always), and
    /// hands each request its outcome.
    fn run_group(&self, parts: Parts<'_>, group: &[GroupInput<'_, '_>], nudge: &impl Fn()) -> Vec<Result<u64>> {
        let mut log = self.log.lock();
        if self.poison.is_set() {
            return group.iter().map(|_| self.poison.check().map(|()| 0)).collect();
        }
        let mut table = parts.space.lock();
        let new_keys: u64 = group.iter().map(|(ops, _)| ops.len() as u64).sum();
        parts.space.reserve_for(&mut table, parts.index.len() + new_keys);
        let mut placed = Vec::with_capacity(group.len());
        for &(ops, purpose) in group {
            let outcome = if log.last_lsn() + ops.len() as u64 > LSN_MAX {
                Err(lsns_exhausted())
            } else {
                log.place(&mut table, ops, purpose).map_err(|wanted| parts.space.no_space(&table, wanted))
            };
            placed.push(outcome);
        }
        if let Err(err) = log.flush(parts.storage) {
            self.poison.set(format!("log write failed: {err}"));
            return group
                .iter()
                .map(|_| Err(Error::io("log write", std::io::Error::new(err.kind(), err.to_string()))))
                .collect();
        }
        let mut last = None;
        for (&(ops, _), outcome) in group.iter().zip(&placed) {
            if let Ok(places) = outcome {
                publish(parts, &mut table, ops, places);
                last = places.last().map(|p| p.lsn).or(last);
            }
        }
        parts.space.update_reserve(&mut table, parts.index.len());
        if let Some(last) = last {
            self.commit.note_written(last);
        }
        let wanted = space::wanted_by_writers(&table);
        drop(table);
        if wanted {
            nudge();
        }
        drop(log);
        let synced = last.map_or(Ok(()), |lsn| self.wait_durable(parts.storage, lsn));
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

    /// Appends `ops` (place, flush, publish) for the writes that read before
    /// they write; the caller holds the log lock. Returns the LSN of the
    /// last record.
    pub fn append_locked(
        &self,
        parts: Parts<'_>,
        log: &mut LogWriter,
        ops: &[Op<'_>],
        purpose: Purpose,
    ) -> Result<u64> {
        self.append_then(parts, log, ops, purpose, |table, placed| publish(parts, table, ops, placed))
    }

    /// Appends the compactor's copy of a record and points the index at
    /// it. The caller holds the log lock and has checked, under it, that
    /// `moving.entry` is the key's index entry (`apply::apply_moved`).
    pub fn append_moved_locked(
        &self,
        parts: Parts<'_>,
        log: &mut LogWriter,
        op: Op<'_>,
        moving: &Moving,
    ) -> Result<u64> {
        self.append_then(parts, log, &[op], Purpose::Compact, |table, placed| {
            let copy = &placed[0];
            let put = Put { block: copy.block, offset: copy.offset, extents: &copy.extents, expires_ms: op.expires_ms };
            apply::apply_moved(parts.index, table, parts.ttl, moving, put, copy.lsn);
        })
    }

    /// Place, flush, then `publish` what was placed; the caller holds the
    /// log lock.
    fn append_then(
        &self,
        parts: Parts<'_>,
        log: &mut LogWriter,
        ops: &[Op<'_>],
        purpose: Purpose,
        publish: impl FnOnce(&mut BlockTable, &[Placed]),
    ) -> Result<u64> {
        self.poison.check()?;
        if log.last_lsn() + ops.len() as u64 > LSN_MAX {
            return Err(lsns_exhausted());
        }
        let mut table = parts.space.lock();
        // Keep room for a snapshot holding every key this append may add.
        parts.space.reserve_for(&mut table, parts.index.len() + ops.len() as u64);
        let placed = match log.append(parts.storage, &mut table, ops, purpose) {
            Ok(placed) => placed,
            Err(AppendError::NoSpace { blocks_wanted }) => return Err(parts.space.no_space(&table, blocks_wanted)),
            Err(AppendError::Io(err)) => {
                self.poison.set(format!("log write failed: {err}"));
                return Err(Error::io("log write", err));
            }
        };
        publish(&mut table, &placed);
        parts.space.update_reserve(&mut table, parts.index.len());
        let last = placed.last().map_or(log.last_lsn(), |p| p.lsn);
        self.commit.note_written(last);
        Ok(last)
    }

    /// Returns once `lsn` is as durable as the sync policy promises.
    pub fn wait_durable(&self, storage: &dyn Storage, lsn: u64) -> Result<()> {
        match self.sync {
            SyncPolicy::Always => self.commit.wait_durable(lsn, storage, &self.poison),
            SyncPolicy::Periodic(_) | SyncPolicy::None => Ok(()),
        }
    }

    /// Issues a sync that starts after this call (`GroupCommit::sync_now`).
    pub fn sync_now(&self, storage: &dyn Storage) -> Result<()> {
        self.commit.sync_now(storage, &self.poison)
    }
}

/// Makes written records visible: index entries and live bytes, in LSN
/// order. Only after their bytes are in storage, so a reader never finds
/// an entry whose record it cannot read.
#[inline]
fn publish(parts: Parts<'_>, table: &mut BlockTable, ops: &[Op<'_>], placed: &[Placed]) {
    if ops.len() >= PREFETCH_KEYS_MIN {
        // Each old record is read to compare keys, a cache miss each:
        // touched together first, they overlap (docs/BENCHMARKS.md).
        parts.index.prefetch_records(parts.storage, ops.iter().map(|op| key_hash(op.key)).collect());
    }
    for (op, placed) in ops.iter().zip(placed) {
        let put = (!op.tombstone).then_some(Put {
            block: placed.block,
            offset: placed.offset,
            extents: &placed.extents,
            expires_ms: op.expires_ms,
        });
        let update = Update { key: op.key, hash: key_hash(op.key), lsn: placed.lsn, put };
        apply::apply(parts.storage, parts.index, table, Some(parts.ttl), update, Order::Newest);
    }
}

fn lsns_exhausted() -> Error {
    Error::InvalidArgument(format!("log sequence numbers exhausted (limit {LSN_MAX})"))
}

/// A copy of a sync outcome's error for each writer of a group.
fn copy_error(err: &Error) -> Error {
    match err {
        Error::Io { op, source } => Error::Io { op, source: std::io::Error::new(source.kind(), source.to_string()) },
        other => Error::Poisoned { reason: other.to_string() },
    }
}
