//! The `Stats` answer: plain structs of named numbers and text, grouped the
//! way `kvctl stats` prints them. Latencies are in microseconds, sizes in
//! bytes, times in milliseconds unless a name says otherwise.

use serde::{Deserialize, Serialize};

/// Everything `kvctl stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReply {
    pub server: ServerStats,
    /// One entry per command the server has a counter for, native and RESP
    /// alike, in the server's order.
    pub commands: Vec<CommandStats>,
    pub space: SpaceStats,
    pub store: StoreStats,
    pub compaction: CompactionStats,
    /// What recovery found when the server opened the data file.
    pub recovery: RecoveryStats,
}

/// The compactor's work since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionStats {
    pub passes: u64,
    pub blocks_reclaimed: u64,
    pub records_moved: u64,
    pub bytes_moved: u64,
    pub tombstones_dropped: u64,
    pub tombstones_kept: u64,
    pub expired_dropped: u64,
    /// Bytes checkpoints wrote (counted in write amplification).
    pub checkpoint_bytes_written: u64,
    /// Bytes written to the file per byte clients wrote, in thousandths.
    pub write_amplification_milli: u64,
}

/// The daemon itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStats {
    /// The server's package version, e.g. "0.1.0".
    pub version: String,
    pub protocol_version: u16,
    pub uptime_ms: u64,
    pub data_path: String,
    /// "always", "periodic(1s)" (the interval as Rust writes a `Duration`) or "none".
    pub sync_policy: String,
    pub connections_open: u64,
    pub connections_total: u64,
    /// Connections refused at `CONNECTIONS_MAX`.
    pub connections_refused: u64,
    /// Frames answered with `BadRequest` (too large, or not decoding).
    pub bad_frames: u64,
}

/// Calls and latency of one command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandStats {
    /// The command's name, lower case: "get", "put", "scan" …
    pub name: String,
    pub calls: u64,
    /// Calls answered with an error response.
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// Blocks and bytes of the data file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceStats {
    pub block_bytes: u64,
    pub block_count: u64,
    pub blocks_free: u64,
    /// Freed blocks that become allocatable after the next checkpoint.
    pub blocks_pending_free: u64,
    pub blocks_log: u64,
    pub blocks_snapshot: u64,
    /// Free blocks kept back for checkpoints and deletes.
    pub blocks_reserved: u64,
    /// Bytes of records the index points to.
    pub live_bytes: u64,
    /// Bytes of LOG blocks the index does not point to.
    pub dead_bytes: u64,
    pub capacity_bytes: u64,
}

/// The engine's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    pub file_id: u64,
    pub created_ms: u64,
    pub keys: u64,
    pub index_bytes: u64,
    pub last_lsn: u64,
    pub synced_lsn: u64,
    pub syncs: u64,
    pub checkpoints: u64,
    pub checkpoint_id: u64,
    pub corrupt_reads: u64,
    pub user_bytes_written: u64,
    pub log_bytes_written: u64,
    /// Why the store is poisoned, if it is.
    pub poisoned: Option<String>,
}

/// The last recovery report: the one-line text plus its key numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryStats {
    /// The report as the server logged it, on one line.
    pub text: String,
    /// "strict", "tolerate-tail" or "salvage".
    pub mode: String,
    /// The checkpoint recovery started from; None after a full scan.
    pub checkpoint_id: Option<u64>,
    pub covered_lsn: u64,
    pub blocks_scanned: u64,
    pub log_blocks_replayed: u64,
    pub records_replayed: u64,
    pub tail_cut: bool,
    /// Verified records discarded with a cut tail.
    pub records_discarded: u64,
    /// Damaged records or blocks found.
    pub damaged: u64,
    pub keys_lost: u64,
    pub keys: u64,
    pub elapsed_us: u64,
}
