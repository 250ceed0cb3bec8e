//! The store's numbers: the operation counters the public API keeps, and
//! the point-in-time `Stats` it reports (gathered by `Engine::stats`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Operation counters of the public API.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    puts: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    batches: AtomicU64,
    corrupt_reads: AtomicU64,
    /// Key + value bytes callers asked to write.
    user_bytes: AtomicU64,
}

/// The counters' values at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted {
    pub puts: u64,
    pub gets: u64,
    pub deletes: u64,
    pub batches: u64,
    pub corrupt_reads: u64,
    pub user_bytes: u64,
}

impl Counters {
    #[inline]
    pub fn count_put(&self) {
        self.puts.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn count_get(&self) {
        self.gets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_delete(&self) {
        self.deletes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_corrupt_read(&self) {
        self.corrupt_reads.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub fn add_user_bytes(&self, bytes: u64) {
        self.user_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn read(&self) -> Counted {
        Counted {
            puts: self.puts.load(Ordering::Relaxed),
            gets: self.gets.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            corrupt_reads: self.corrupt_reads.load(Ordering::Relaxed),
            user_bytes: self.user_bytes.load(Ordering::Relaxed),
        }
    }
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
    /// Keys removed because their TTL had passed: by the expiry thread,
    /// the compactor, or a write or delete that met an expired record
    /// (Redis's `expired_keys`).
    pub expired_keys: u64,
    /// Keys in the index with a TTL, expired ones not yet removed included
    /// (Redis's `expires=`).
    pub keys_with_ttl: u64,
    /// Average TTL left of the keys with one, in ms, estimated from a
    /// sample (Redis's `avg_ttl=`); 0 when none.
    pub avg_ttl_ms: u64,
    /// Heap bytes of the TTL table.
    pub ttl_heap_bytes: u64,
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
