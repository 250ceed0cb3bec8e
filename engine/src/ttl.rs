//! The TTL table: which indexed records expire when, so that the expiry
//! pass (expiry/) finds the keys whose time has come at a cost that follows
//! the keys that expire, not the size of the index.
//!
//! A min-heap of 16-byte entries (expiry time, key hash, low bits of the
//! record's LSN): no copy of the key, which is read back from its record
//! as the index does. An entry is a hint, never trusted alone: the pass
//! checks it against the index and the record before it removes anything.
//!
//! Entries go stale when their record is superseded (overwritten, deleted,
//! a new TTL, moved by the compactor); they are not searched for then but
//! counted (`superseded`), and dropped when popped or by a purge once
//! stale entries outnumber live ones, so they cannot pile up.
//!
//! Writers update the table under the log lock (index/apply.rs); its own
//! lock is a leaf of the lock order (engine.rs): nothing is taken under it.

use crate::clock::Clock;
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Heap bytes of one entry: the budget per key with a TTL (the heap's
/// spare capacity comes on top, at most as much again after a doubling).
pub const TTL_ENTRY_BYTES: usize = 16;
const _: () = assert!(std::mem::size_of::<TtlEntry>() == TTL_ENTRY_BYTES);

/// Stale entries below which no purge runs, however few the live ones: a
/// purge walks every entry, so a small table is left to its pops.
pub const PURGE_STALE_MIN: u64 = 1024;

/// Entries `avg_ttl_ms` samples: an estimate, as Redis's `avg_ttl` is.
pub const AVG_TTL_SAMPLES: usize = 64;

/// One indexed record with a TTL. Ordered by expiry first: the heap's
/// top is the next to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TtlEntry {
    pub expires_ms: u64,
    pub hash: u32,
    /// The record's LSN, low 32 bits: enough to tell the entry from a newer
    /// version of its key in the index (a match is checked on the record).
    lsn_low: u32,
}

impl TtlEntry {
    pub fn new(expires_ms: u64, hash: u32, lsn: u64) -> Self {
        TtlEntry { expires_ms, hash, lsn_low: lsn as u32 }
    }

    /// Whether a record of LSN `lsn` may be the one this entry names.
    pub fn names_lsn(&self, lsn: u64) -> bool {
        self.lsn_low == lsn as u32
    }
}

/// The table and its counters.
#[derive(Debug)]
pub(crate) struct TtlTable {
    state: Mutex<TtlState>,
    clock: Arc<dyn Clock>,
    /// Keys removed because their TTL had passed: by the expiry pass, by
    /// the compactor, or by a write that replaced or deleted an expired
    /// record (Redis's `expired_keys`).
    expired: AtomicU64,
}

#[derive(Debug, Default)]
struct TtlState {
    heap: BinaryHeap<Reverse<TtlEntry>>,
    /// Entries in `heap` whose record was superseded.
    stale: u64,
}

impl TtlTable {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        TtlTable { state: Mutex::new(TtlState::default()), clock, expired: AtomicU64::new(0) }
    }

    /// Replaces the whole table with `entries` (after recovery: every
    /// indexed record with a TTL), none stale.
    pub fn rebuild(&self, entries: Vec<TtlEntry>) {
        let mut heap = BinaryHeap::from(entries.into_iter().map(Reverse).collect::<Vec<_>>());
        heap.shrink_to_fit();
        *self.state.lock() = TtlState { heap, stale: 0 };
    }

    /// A record with a TTL joined the index.
    #[inline]
    pub fn insert(&self, entry: TtlEntry) {
        self.state.lock().heap.push(Reverse(entry));
    }

    /// The record with expiry `expires_ms` (0: none) left the index or was
    /// replaced in it by a write; counts a key removed by expiry when its
    /// time had passed.
    #[inline]
    pub fn superseded(&self, expires_ms: u64) {
        if expires_ms == 0 {
            return;
        }
        self.state.lock().stale += 1;
        if expires_ms <= self.clock.now_ms() {
            self.expired.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The compactor moved a record with a TTL: its entry goes stale and
    /// `entry` names the copy. Not an expiry, whatever the time.
    pub fn moved(&self, entry: TtlEntry) {
        let mut state = self.state.lock();
        state.stale += 1;
        state.heap.push(Reverse(entry));
    }

    /// Moves up to `max` entries due at `now_ms` into `out`; the caller
    /// settles each with `settle` or gives it back with `insert`.
    pub fn pop_due(&self, now_ms: u64, max: usize, out: &mut Vec<TtlEntry>) {
        let mut state = self.state.lock();
        while out.len() < max {
            match state.heap.peek() {
                Some(Reverse(top)) if top.expires_ms <= now_ms => {
                    out.push(*top);
                    state.heap.pop();
                }
                _ => break,
            }
        }
    }

    /// `count` popped entries are done with: each was stale, or named a
    /// record that has been removed since (its removal counted it stale).
    pub fn settle(&self, count: u64) {
        let mut state = self.state.lock();
        state.stale = state.stale.saturating_sub(count);
    }

    /// Keys with a TTL in the index (expired ones not yet removed included).
    pub fn live_count(&self) -> u64 {
        let state = self.state.lock();
        (state.heap.len() as u64).saturating_sub(state.stale)
    }

    /// Stale entries, and whether they are many enough to purge.
    pub fn stale_count(&self) -> (u64, bool) {
        let state = self.state.lock();
        let live = (state.heap.len() as u64).saturating_sub(state.stale);
        (state.stale, state.stale >= PURGE_STALE_MIN && state.stale > live)
    }

    /// Takes every entry out for a purge (`restore` gives back the kept).
    /// Supersedes counted while the entries are out may name entries the
    /// purge drops: `stale` may then run high by as many until the next
    /// purge, which is the price of not holding writers for a whole walk.
    pub fn take_all(&self) -> Vec<TtlEntry> {
        let mut state = self.state.lock();
        state.stale = 0;
        std::mem::take(&mut state.heap).into_iter().map(|Reverse(entry)| entry).collect()
    }

    /// Puts the entries a purge kept back beside those inserted meanwhile.
    pub fn restore(&self, kept: Vec<TtlEntry>) {
        let mut state = self.state.lock();
        let mut heap = BinaryHeap::from(kept.into_iter().map(Reverse).collect::<Vec<_>>());
        heap.append(&mut state.heap);
        // The kept entries sit in the allocation that held them all.
        heap.shrink_to_fit();
        state.stale = state.stale.min(heap.len() as u64);
        state.heap = heap;
    }

    /// Up to `AVG_TTL_SAMPLES` entries spread over the table, for an
    /// estimate of the average TTL left (stale ones included, unless the
    /// caller checks them).
    pub fn sample(&self) -> Vec<TtlEntry> {
        let state = self.state.lock();
        let entries = state.heap.as_slice();
        let step = entries.len().div_ceil(AVG_TTL_SAMPLES).max(1);
        entries.iter().step_by(step).map(|Reverse(entry)| *entry).collect()
    }

    /// A key removed because its expiry was set in the past (EXPIREAT).
    pub fn count_expired(&self) {
        self.expired.fetch_add(1, Ordering::Relaxed);
    }

    pub fn expired_count(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Heap bytes of the table (its capacity, spare slots included).
    pub fn heap_bytes(&self) -> u64 {
        (self.state.lock().heap.capacity() * TTL_ENTRY_BYTES) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const NOW_MS: u64 = 1_700_000_000_000;

    fn table() -> (Arc<ManualClock>, TtlTable) {
        let clock = Arc::new(ManualClock::new(NOW_MS));
        (clock.clone(), TtlTable::new(clock))
    }

    #[test]
    fn entries_pop_in_expiry_order_and_only_when_due() {
        // Inserted out of order; popped earliest first, none before its time.
        let (clock, table) = table();
        for (i, ms) in [300u64, 100, 200].iter().enumerate() {
            table.insert(TtlEntry::new(NOW_MS + ms, i as u32, i as u64 + 1));
        }
        let mut out = Vec::new();
        table.pop_due(clock.now_ms(), 10, &mut out);
        assert!(out.is_empty());
        clock.advance_ms(250);
        table.pop_due(clock.now_ms(), 10, &mut out);
        assert_eq!(out.iter().map(|e| e.expires_ms - NOW_MS).collect::<Vec<_>>(), vec![100, 200]);
        assert_eq!(table.live_count(), 1);
    }

    #[test]
    fn supersedes_count_stale_and_expired_and_call_for_a_purge() {
        // Stale entries past live ones (and past the minimum) ask for a purge.
        let (clock, table) = table();
        let keys = PURGE_STALE_MIN * 2;
        for i in 0..keys {
            table.insert(TtlEntry::new(NOW_MS + 1000, i as u32, i + 1));
        }
        for _ in 0..keys / 2 {
            table.superseded(NOW_MS + 1000);
        }
        assert_eq!(table.stale_count(), (keys / 2, false), "stale == live is not yet a purge");
        table.superseded(NOW_MS + 1000);
        assert!(table.stale_count().1);
        assert_eq!(table.expired_count(), 0, "none had expired");
        clock.advance_ms(1000);
        table.superseded(NOW_MS + 1000);
        assert_eq!(table.expired_count(), 1);
        table.superseded(0);
        assert_eq!(table.stale_count().0, keys / 2 + 2, "a record without TTL has no entry");
    }

    #[test]
    fn a_purge_keeps_what_it_restores_and_what_was_inserted_meanwhile() {
        let (_, table) = table();
        for i in 0..10u32 {
            table.insert(TtlEntry::new(NOW_MS + u64::from(i), i, u64::from(i) + 1));
            table.superseded(NOW_MS + 5_000);
        }
        let all = table.take_all();
        assert_eq!(all.len(), 10);
        table.insert(TtlEntry::new(NOW_MS + 50, 99, 100));
        table.restore(all.into_iter().filter(|e| e.hash % 2 == 0).collect());
        assert_eq!(table.live_count(), 6);
        assert_eq!(table.stale_count().0, 0);
    }

    #[test]
    fn a_million_entries_cost_about_their_budget() {
        // Bytes per key with a TTL at 1M keys: the entry budget, plus the
        // spare capacity the heap's growth leaves (under a doubling).
        let (_, table) = table();
        let keys = 1_000_000u64;
        for i in 0..keys {
            table.insert(TtlEntry::new(NOW_MS + i % 10_000, i as u32, i + 1));
        }
        let per_key = table.heap_bytes() as f64 / keys as f64;
        println!("ttl table: {per_key:.1} bytes per key with a TTL at {keys} keys");
        assert!(per_key <= 2.0 * TTL_ENTRY_BYTES as f64, "{per_key} bytes per key");
        let rebuilt: Vec<TtlEntry> = table.take_all();
        table.rebuild(rebuilt);
        let per_key = table.heap_bytes() as f64 / keys as f64;
        println!("ttl table after a rebuild: {per_key:.1} bytes per key");
        assert!(per_key <= TTL_ENTRY_BYTES as f64 * 1.01, "{per_key} bytes per key");
    }
}
