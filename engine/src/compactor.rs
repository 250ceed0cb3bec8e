//! The compactor: moves live records out of mostly-dead LOG blocks and
//! frees those blocks through the pending-free list.
//!
//! A pass, in order (each step says why it is safe in RECOVERY.md,
//! "Compaction"):
//! 1. Under the log lock, pick victims by LFS cost-benefit,
//!    `(1 - u) * age / (1 + u)`, u = live bytes / payload bytes, age = how
//!    many generations ago the block was opened, plus the oldest block in
//!    use (so the log's tail keeps moving and tombstones can go). The
//!    active block is never a victim.
//! 2. Still under the log lock (every write publishes to the index under
//!    it, so what the index says cannot change underneath), read each
//!    victim in generation order and decide for each record:
//!    - a put the index names: move it (append a copy with a new LSN, then
//!      point the index at the copy) — or, if it has expired, treat it as a
//!      delete (below);
//!    - a put the index does not name: dead, dropped;
//!    - a tombstone whose key the index holds: superseded, dropped;
//!    - a tombstone whose key is absent: kept (re-appended) unless every
//!      LOG block older than the victim is a victim of this pass too — then
//!      no older version of the key survives anywhere a recovery looks.
//!
//!    Records whose fragments start in another block are found by walking
//!    the index, only when a victim's live bytes are not all accounted for.
//! 3. Release the log lock and sync: the copies are durable before any
//!    header can carry a full-scan floor above their source blocks.
//! 4. Move the emptied victims to the pending-free list; they become
//!    allocatable once the next checkpoint is durable.

use crate::alloc::{BlockUse, Purpose};
use crate::error::{Error, Result};
use crate::format::RECORD_HEADER_BYTES;
use crate::format::record::FragmentKind;
use crate::index::key_hash;
use crate::limits::BLOCK_PAYLOAD_BYTES;
use crate::log::{LogWriter, Op};
use crate::lookup;
use crate::read::{read_fragment, read_value, record_extents};
use crate::recovery::scan::scan_block;
use crate::store::Inner;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most victims in one pass: bounds how long one pass holds the log lock.
pub const PASS_VICTIMS_MAX: usize = 16;
/// Blocks fuller than this are never victims: moving them frees too little.
pub const VICTIM_UTILIZATION_MAX: f64 = 0.95;

/// Background trigger: free (and pending) blocks below this fraction of the
/// data blocks...
pub const FREE_FRACTION_MIN: f64 = 0.20;
/// ...or dead bytes above this fraction of the bytes LOG blocks occupy.
pub const DEAD_FRACTION_MAX: f64 = 0.50;
/// I/O budget of background compaction: bytes of records moved per second.
/// Above it the compactor waits, so foreground writes keep the disk; when
/// free blocks run short (below twice the reserve) it runs unthrottled, or
/// writes would fail.
pub const MOVE_BYTES_PER_SEC: u64 = 32 * 1024 * 1024;

/// Whether background compaction should run now, and whether it is urgent
/// (free space about to run out: ignore the I/O budget).
pub(crate) fn due(inner: &Inner) -> Option<bool> {
    let table = inner.table.lock();
    let data_blocks = u64::from(table.block_count()).saturating_sub(u64::from(crate::format::FIRST_DATA_BLOCK));
    let free = table.free_count() + table.pending_count();
    let urgent = free < 2 * table.reserve_blocks() + PASS_VICTIMS_MAX as u64;
    let (log_blocks, live) =
        table.log_blocks().fold((0u64, 0u64), |(blocks, live), (_, _, bytes)| (blocks + 1, live + u64::from(bytes)));
    let occupied = log_blocks * BLOCK_PAYLOAD_BYTES as u64;
    let dead_fraction = if occupied == 0 { 0.0 } else { 1.0 - live as f64 / occupied as f64 };
    let low = (free as f64) < FREE_FRACTION_MIN * data_blocks as f64;
    (urgent || low || dead_fraction > DEAD_FRACTION_MAX && log_blocks > PASS_VICTIMS_MAX as u64).then_some(urgent)
}

/// The compactor's counters (shown in STATS).
#[derive(Debug, Default)]
pub struct CompactionCounters {
    pub passes: AtomicU64,
    pub blocks_reclaimed: AtomicU64,
    pub records_moved: AtomicU64,
    pub bytes_moved: AtomicU64,
    pub tombstones_dropped: AtomicU64,
    pub tombstones_kept: AtomicU64,
    pub expired_dropped: AtomicU64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    pub victims: u64,
    pub blocks_reclaimed: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
}

/// What to do with one record of a victim.
enum Action {
    /// Append a copy (a put, or a tombstone that is still needed).
    Keep { key: Vec<u8>, value: Vec<u8>, tombstone: bool, expires_ms: u64 },
    /// The key expired: remove it from the index, writing a tombstone only
    /// when older versions may survive elsewhere.
    Expire { key: Vec<u8>, tombstone: bool },
}

/// Chooses up to `max` victims, best first by cost-benefit.
fn pick_victims(inner: &Inner, log: &LogWriter, max: usize) -> Vec<(u32, u64)> {
    let table = inner.table.lock();
    let newest = log.replay_gen();
    let active = log.active_block();
    let skip = inner.compaction_skip.lock();
    let mut scored: Vec<(f64, u32, u64)> = table
        .log_blocks()
        .filter(|&(block, _, _)| Some(block) != active && !skip.contains(&block))
        .filter_map(|(block, generation, live)| {
            let u = f64::from(live) / BLOCK_PAYLOAD_BYTES as f64;
            if u >= VICTIM_UTILIZATION_MAX {
                return None;
            }
            let age = newest.saturating_sub(generation).max(1) as f64;
            Some(((1.0 - u) * age / (1.0 + u), block, generation))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(max.saturating_sub(1).max(1));
    let mut victims: Vec<(u32, u64)> = scored.into_iter().map(|(_, block, generation)| (block, generation)).collect();
    // The oldest block in use joins every pass, however full: tombstones
    // can be dropped only once every older block is gone, so the log's tail
    // must keep moving or deletes would be carried forward for ever.
    let oldest = table
        .log_blocks()
        .filter(|&(block, _, _)| Some(block) != active && !skip.contains(&block))
        .min_by_key(|&(_, generation, _)| generation);
    if !victims.is_empty()
        && let Some((block, generation, _)) = oldest
        && !victims.iter().any(|&(b, _)| b == block)
    {
        victims.push((block, generation));
    }
    victims.sort_by_key(|&(_, generation)| generation);
    victims
}

/// One compaction pass over up to `max_victims` blocks.
pub(crate) fn compact_pass(inner: &Inner, max_victims: usize) -> Result<PassOutcome> {
    let _only_one = inner.compacting.lock();
    inner.writable()?;
    let mut outcome = PassOutcome::default();
    let mut log = inner.log.lock();
    let victims = pick_victims(inner, &log, max_victims);
    if victims.is_empty() {
        return Ok(outcome);
    }
    outcome.victims = victims.len() as u64;
    let victim_set: HashSet<u32> = victims.iter().map(|&(block, _)| block).collect();
    // Tombstones in a victim may go only if every older LOG block in use is
    // also a victim (and is emptied: see `freeable` below).
    let oldest_other = {
        let table = inner.table.lock();
        table.log_blocks().filter(|(block, _, _)| !victim_set.contains(block)).map(|(_, g, _)| g).min()
    };
    // (block, emptied without error, dropped something), in generation order.
    let mut processed = Vec::with_capacity(victims.len());
    let mut stop = None;
    let mut all_emptied = true;
    for &(block, generation) in &victims {
        let may_drop = all_emptied && oldest_other.is_none_or(|oldest| generation < oldest);
        match empty_block(inner, &mut log, block, may_drop, &mut outcome) {
            Ok(dropped) => processed.push((block, true, dropped)),
            Err(err @ Error::Corrupt { .. }) => {
                // Damage stays where it is (kv-fsck reports it); the block
                // is skipped from now on, and later victims keep tombstones.
                tracing::warn!("compaction skips block {block}: {err}");
                inner.compaction_skip.lock().insert(block);
                processed.push((block, false, false));
                all_emptied = false;
            }
            Err(err) => {
                stop = Some(err);
                break;
            }
        }
    }
    if stop.is_none()
        && let Err(err) = move_continuations(inner, &mut log, &victim_set, &mut outcome)
    {
        stop = Some(err);
    }
    drop(log);
    // Durability: the copies must be on disk before their sources are
    // pending-free — a later block header may then carry a floor above the
    // sources, and a full scan would no longer look at them.
    inner.commit.sync_now(&*inner.storage, &inner.poison)?;
    let mut table = inner.table.lock();
    // A victim that dropped tombstones did so because every older victim
    // was going too: free it only if they all were.
    let mut older_all_freed = true;
    for (block, ok, dropped) in processed {
        let empty =
            ok && table.live_table()[block as usize] == 0 && matches!(table.use_of(block), BlockUse::Log { .. });
        if empty && (older_all_freed || !dropped) {
            table.free_after_checkpoint(block);
            outcome.blocks_reclaimed += 1;
        } else {
            older_all_freed = false;
        }
    }
    drop(table);
    let c = &inner.compaction;
    c.passes.fetch_add(1, Ordering::Relaxed);
    c.blocks_reclaimed.fetch_add(outcome.blocks_reclaimed, Ordering::Relaxed);
    c.records_moved.fetch_add(outcome.records_moved, Ordering::Relaxed);
    c.bytes_moved.fetch_add(outcome.bytes_moved, Ordering::Relaxed);
    match stop {
        Some(err) if outcome.blocks_reclaimed == 0 => Err(err),
        _ => Ok(outcome),
    }
}

/// Moves every record of `block` that must survive to the head of the log.
fn empty_block(
    inner: &Inner,
    log: &mut LogWriter,
    block: u32,
    may_drop: bool,
    outcome: &mut PassOutcome,
) -> Result<bool> {
    let storage = &*inner.storage;
    let mut dropped = false;
    // The same parse the full scan uses; damage stops it at the first bad
    // record, and the block (with whatever it holds) stays where it is.
    let scan = scan_block(storage, block, false);
    if let Some(damage) = scan.damaged.first() {
        return Err(Error::corrupt(block, damage.offset, "compaction found a damaged record"));
    }
    let now = inner.clock.now_ms();
    for fragment in scan.fragments {
        let (here, header, key) = (fragment.offset, fragment.header, fragment.key);
        if !matches!(header.kind, FragmentKind::Full | FragmentKind::First) {
            continue;
        }
        let current = lookup::find(storage, &inner.index, &key, key_hash(&key)).current;
        let action = if header.is_tombstone() {
            if current.is_some() {
                continue; // superseded by a newer put
            }
            if may_drop {
                inner.compaction.tombstones_dropped.fetch_add(1, Ordering::Relaxed);
                dropped = true;
                continue;
            }
            inner.compaction.tombstones_kept.fetch_add(1, Ordering::Relaxed);
            Action::Keep { key, value: Vec::new(), tombstone: true, expires_ms: 0 }
        } else {
            let Some(current) = current.filter(|c| c.entry.block == block && c.entry.offset() == here) else {
                continue; // an older version
            };
            if header.expires_ms != 0 && header.expires_ms <= now {
                dropped |= may_drop;
                Action::Expire { key, tombstone: !may_drop }
            } else {
                let value = read_value(storage, current.first)?;
                Action::Keep { key, value, tombstone: false, expires_ms: header.expires_ms }
            }
        };
        apply(inner, log, action, outcome)?;
    }
    Ok(dropped)
}

/// Appends (or, for an expired key with nothing older left, just unlinks)
/// one record, and publishes it.
fn apply(inner: &Inner, log: &mut LogWriter, action: Action, outcome: &mut PassOutcome) -> Result<()> {
    match action {
        Action::Keep { key, value, tombstone, expires_ms } => {
            let op = Op { key: &key, value: &value, tombstone, expires_ms };
            inner.append_locked(log, &[op], Purpose::Compact)?;
            outcome.records_moved += 1;
            outcome.bytes_moved += (RECORD_HEADER_BYTES + key.len() + value.len()) as u64;
        }
        Action::Expire { key, tombstone: true } => {
            let op = Op { key: &key, value: &[], tombstone: true, expires_ms: 0 };
            inner.append_locked(log, &[op], Purpose::Compact)?;
            outcome.bytes_moved += (RECORD_HEADER_BYTES + key.len()) as u64;
        }
        Action::Expire { key, tombstone: false } => {
            inner.unlink(&key);
            inner.compaction.expired_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Moves live records whose later fragments sit in a victim while their
/// first fragment is elsewhere. Only walks the index when some victim's
/// live bytes say such a record exists.
fn move_continuations(
    inner: &Inner,
    log: &mut LogWriter,
    victims: &HashSet<u32>,
    outcome: &mut PassOutcome,
) -> Result<()> {
    let unexplained = {
        let table = inner.table.lock();
        victims.iter().any(|&block| table.live_table()[block as usize] != 0)
    };
    if !unexplained {
        return Ok(());
    }
    let storage = &*inner.storage;
    for entry in inner.index.entries() {
        let Ok(first) = read_fragment(storage, entry.block, entry.offset()) else { continue };
        if first.header.kind != FragmentKind::First {
            continue;
        }
        let Ok(extents) = record_extents(storage, entry.block, &first) else { continue };
        if !extents.iter().any(|(block, _)| victims.contains(block)) {
            continue;
        }
        let key = first.key().to_vec();
        let expires_ms = first.header.expires_ms;
        let value = read_value(storage, first)?;
        apply(inner, log, Action::Keep { key, value, tombstone: false, expires_ms }, outcome)?;
    }
    Ok(())
}
