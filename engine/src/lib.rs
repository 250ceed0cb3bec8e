//! blockkv engine: a log-structured key-value store in one fixed-size file
//! of 4 KiB blocks, with checkpoints and crash recovery.
//!
//! Where things live:
//! - [`store`]: the public API ([`Store`]); start reading here. `update`:
//!   the writes that read first (conditional put, integer increment).
//! - `format/`: every on-disk structure, encode + decode (docs/FORMAT.md).
//! - [`storage`]: the seam to the disk: the real file and [`SimDisk`].
//! - `log`: the append path; `group`: write groups (one leader writes and
//!   syncs for many writers); `commit`: the sync rendezvous and the poison flag.
//! - `index`: key hash -> location; `lookup`: resolving a key among candidates.
//! - `alloc`: the block table (free bitmap, live bytes, pending-free list).
//! - `checkpoint`: writing a checkpoint; [`recovery`]: reading them back,
//!   replay, full scan (docs/RECOVERY.md).
//! - `compactor`: moving live records out of mostly-dead blocks;
//!   `background`: the maintenance and compactor threads.
//! - [`fsck`]: the offline checker behind kv-fsck.
//! - [`limits`]: every limit, named. `sleep_lock`: the log and table lock.
#![deny(unsafe_code)]
// The files already sit where the engine's restructuring puts them; the
// module names are still the old ones until it lands.

#[path = "space/table.rs"]
mod alloc;
mod background;
#[path = "checkpoint/mod.rs"]
mod checkpoint;
pub mod clock;
#[path = "writer/commit.rs"]
mod commit;
#[path = "compaction/mod.rs"]
pub mod compactor;
mod error;
pub mod format;
pub mod fsck;
#[path = "writer/group.rs"]
mod group;
#[path = "index/mod.rs"]
mod index;
pub mod limits;
#[path = "writer/log.rs"]
mod log;
#[path = "index/lookup.rs"]
mod lookup;
mod options;
#[path = "index/read.rs"]
mod read;
pub mod recovery;
mod sleep_lock;
pub mod storage;
mod store;
mod update;

pub use checkpoint::CheckpointInfo;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use index::key_hash;
pub use options::{
    CHECKPOINT_INTERVAL_S_DEFAULT, CHECKPOINT_LOG_BYTES_DEFAULT, Options, SYNC_INTERVAL_MS_DEFAULT, SyncPolicy,
};
pub use recovery::{RecoveryMode, RecoveryReport};
pub use storage::{Fault, FaultKind, FileStorage, SimDisk, Storage};
pub use store::{BatchOp, KeyTtl, Stats, Store};
pub use update::{PutCondition, parse_integer};
