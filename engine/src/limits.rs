//! Every limit of the engine, named with its unit last. Checked where input
//! enters (`Store::put`, `Store::write_batch`, `Store::create`) and documented
//! in README "Limits".

use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, RECORD_HEADER_BYTES};

/// Largest key. A key must fit whole in the first fragment of a record.
pub const KEY_BYTES_MAX: usize = 1024;
/// Largest value. Larger values are split across blocks (FIRST/MIDDLE/LAST).
pub const VALUE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most operations in one atomic batch (the record header counts them in a u16).
pub const BATCH_OPS_MAX: usize = 4096;
/// Most key + value bytes in one atomic batch.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Smallest data file: superblock, two checkpoint slots and room to work.
pub const FILE_BYTES_MIN: u64 = 64 * BLOCK_BYTES as u64;
/// Largest data file: block numbers are u32 on disk.
pub const FILE_BYTES_MAX: u64 = (u32::MAX as u64) * BLOCK_BYTES as u64;
/// Default size of a new data file.
pub const FILE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Largest LSN: the index packs it with a 12-bit in-block offset into a u64.
pub const LSN_MAX: u64 = (1 << 52) - 1;
/// Largest block generation (and checkpoint id). At a million blocks
/// opened per second it lasts 142 years; decoders refuse anything larger, so
/// a crafted header cannot wrap `generation + 1` to zero.
pub const GENERATION_MAX: u64 = (1 << 52) - 1;
/// Blocks kept free for checkpoints and (later) the compactor beyond the
/// snapshot size itself; user writes get `NoSpace` before dipping into them.
pub const RESERVE_BLOCKS_MIN: u64 = 8;
/// Payload bytes a block offers to records.
pub const BLOCK_PAYLOAD_BYTES: usize = BLOCK_BYTES - BLOCK_HEADER_BYTES;
/// Largest fragment payload (key + value bytes) in one block.
pub const FRAGMENT_PAYLOAD_BYTES_MAX: usize = BLOCK_PAYLOAD_BYTES - RECORD_HEADER_BYTES;

const _: () = assert!(KEY_BYTES_MAX < FRAGMENT_PAYLOAD_BYTES_MAX);
const _: () = assert!(BATCH_OPS_MAX <= u16::MAX as usize);
