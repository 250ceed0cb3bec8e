//! The recovery report: what open found and did, for logs, STATS and kv-fsck.

pub use crate::index::scan::Damage;
pub use crate::options::RecoveryMode;
use std::fmt;
use std::time::Duration;

/// What recovery made of one checkpoint slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SlotStatus {
    /// Never written (all zeros).
    #[default]
    Empty,
    /// Valid header; `used` says whether recovery started from it.
    Valid { id: u64, used: bool },
    /// A header copy verifies but its snapshot does not.
    Unusable { id: u64, reason: String },
    /// Neither header copy verifies (torn or damaged).
    Damaged { reason: String },
}

/// Where and why the log was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    pub block: u32,
    pub offset: u32,
    pub reason: String,
    /// Records after the cut that verified but were discarded with it.
    pub records_discarded: u64,
    /// Blocks after the cut block that were discarded.
    pub blocks_discarded: u64,
}

/// Everything recovery found and did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub mode: RecoveryMode,
    /// Superblock copies that verified (of 2).
    pub superblock_copies_valid: u8,
    pub slots: [SlotStatus; 2],
    /// Checkpoint recovery started from; None = full scan.
    pub checkpoint_id: Option<u64>,
    pub covered_lsn: u64,
    /// Why a full scan ran, when it did.
    pub full_scan_reason: Option<String>,
    pub blocks_scanned: u64,
    pub log_blocks_replayed: u64,
    pub records_replayed: u64,
    pub tail_cut: Option<TailCut>,
    pub damaged: Vec<Damage>,
    /// Keys named by damaged records that no verified record brings back.
    pub keys_lost: Vec<Vec<u8>>,
    /// Keys in the index after recovery.
    pub keys: u64,
    pub elapsed: Duration,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.checkpoint_id, &self.full_scan_reason) {
            (Some(id), _) => write!(f, "from checkpoint {id} (lsn {})", self.covered_lsn)?,
            (None, Some(reason)) => write!(f, "by full scan ({reason})")?,
            (None, None) => write!(f, "from nothing")?,
        }
        write!(
            f,
            ", mode {}, {} blocks scanned, {} log blocks and {} records replayed, {} keys, {:.1} ms",
            self.mode,
            self.blocks_scanned,
            self.log_blocks_replayed,
            self.records_replayed,
            self.keys,
            self.elapsed.as_secs_f64() * 1e3
        )?;
        match &self.tail_cut {
            Some(cut) => write!(
                f,
                "; tail cut at block {} offset {} ({}), {} records and {} blocks discarded",
                cut.block, cut.offset, cut.reason, cut.records_discarded, cut.blocks_discarded
            )?,
            None => write!(f, "; clean tail")?,
        }
        if !self.damaged.is_empty() {
            write!(f, "; {} damaged records/blocks, {} keys lost", self.damaged.len(), self.keys_lost.len())?;
        }
        Ok(())
    }
}
