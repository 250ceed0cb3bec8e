//! Every limit of the engine, named with its unit last. Checked where input
//! enters (`Store::put`, `Store::write_batch`, `Store::create`) and documented
//! in the README, "Limits".

use crate::format::BLOCK_BYTES;
/// The limits the format's decoders enforce (defined beside the fields).
pub use crate::format::{
    BLOCK_PAYLOAD_BYTES, FRAGMENT_PAYLOAD_BYTES_MAX, GENERATION_MAX, KEY_BYTES_MAX, LSN_MAX, VALUE_BYTES_MAX,
};

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
/// Most index entries one scan page visits (`Store::scan_page`): a larger
/// count asked for is taken as this, so one page's work and memory (16 bytes
/// an entry, then its key) stay bounded.
pub const SCAN_VISIT_MAX: usize = 64 * 1024;
/// Blocks kept free for checkpoints and (later) the compactor beyond the
/// snapshot size itself; user writes get `NoSpace` before dipping into them.
pub const RESERVE_BLOCKS_MIN: u64 = 8;

const _: () = assert!(KEY_BYTES_MAX < FRAGMENT_PAYLOAD_BYTES_MAX);
const _: () = assert!(BATCH_OPS_MAX <= u16::MAX as usize);
