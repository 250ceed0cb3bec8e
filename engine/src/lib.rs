//! blockkv engine: a log-structured key-value store in one fixed-size file
//! of 4 KiB blocks, with checkpoints and crash recovery.
//!
//! Where things live (lowest layer first; each module uses only modules
//! before it, which `tests/module_layers.rs` checks):
//! - [`limits`], [`format`] (every on-disk structure, encode + decode:
//!   docs/FORMAT.md), [`clock`], `error`, `options`, `sleep_lock` (the lock
//!   of the log and the block table), [`storage`] (the real file and
//!   [`SimDisk`]), `stats` (counters and [`Stats`]), `control` (the
//!   background threads' signals), `create` (making a data file).
//! - `space`: the block table, the checkpoint reserve, pending-free, NoSpace.
//! - `index`: key hash -> location, lookups, record reads, block scans,
//!   scan pages in hash order ([`ScanPage`]), and `apply`, the one update
//!   of the index and live bytes.
//! - `writer`: the log writer, write groups, group commit and poison.
//! - `checkpoint`: the checkpointer; [`recovery`]: reading checkpoints back,
//!   replay, full scan (docs/RECOVERY.md).
//! - `compaction` (public parts: [`compactor`]): moving live records out of
//!   mostly-dead blocks, and its policy.
//! - `engine`: the subsystems together, and the lock order; `background`:
//!   the maintenance and compactor threads.
//! - `store`: the public API ([`Store`]); start reading here. `update`: the
//!   writes that read first (conditional put, integer increment); `entry`:
//!   a value with its expiry, and writes with an absolute expiry; `clear`:
//!   every key deleted at once.
//! - `ttl` (beside the index): which records expire when; `expiry`: the
//!   active expiry round the expiry thread runs.
//! - [`fsck`]: the offline checker behind kv-fsck.
#![deny(unsafe_code)]

mod background;
mod checkpoint;
mod clear;
pub mod clock;
mod compaction;
mod control;
mod create;
mod engine;
mod entry;
mod error;
mod expiry;
pub mod format;
pub mod fsck;
mod index;
pub mod limits;
mod options;
pub mod recovery;
mod sleep_lock;
mod space;
mod stats;
pub mod storage;
mod store;
mod ttl;
mod tuning;
mod update;
mod writer;

/// The compactor's public numbers: its tuning constants, its counters and
/// what a pass did (`Store::compact`).
pub mod compactor {
    pub use crate::compaction::{
        CompactionCounters, DEAD_FILE_FRACTION_MAX, FREE_FRACTION_MIN, FREE_FRACTION_TARGET, FREE_FRACTION_URGENT,
        MOVE_BYTES_PER_SEC, OLDEST_VICTIMS_PER_PASS, PASS_VICTIMS_MAX, PassOutcome, RANK_CHUNK_BLOCKS,
        VICTIM_QUEUE_BLOCKS, VICTIM_UTILIZATION_MAX,
    };
}

pub use checkpoint::CheckpointInfo;
pub use clock::{Clock, ManualClock, SystemClock};
pub use entry::Entry;
pub use error::{Error, Result};
pub use index::cursor::{ScanPage, ScannedKey};
pub use index::key_hash;
pub use options::{
    CHECKPOINT_INTERVAL_S_DEFAULT, CHECKPOINT_LOG_BYTES_DEFAULT, Options, SYNC_INTERVAL_MS_DEFAULT, SyncPolicy,
};
pub use recovery::{RecoveryMode, RecoveryReport};
pub use stats::Stats;
pub use storage::{Fault, FaultKind, FileStorage, SimDisk, Storage};
pub use store::{BatchOp, KeyTtl, Store};
pub use update::{PutCondition, parse_integer};
