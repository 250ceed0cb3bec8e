//! On-disk structures, one file each, encode and decode side by side.
//! docs/FORMAT.md draws the same bytes with a worked example.
//!
//! File layout (block = 4096 bytes, block numbers are u32):
//!
//! ```text
//! block 0          superblock (two copies: byte 0 and byte 2048)
//! block 1, 2       checkpoint slots A and B (two header copies each)
//! block 3 ..       data blocks: LOG blocks (records) and SNAPSHOT blocks
//!                  (checkpointed index), allocated from the free bitmap
//! ```
//!
//! All integers are little-endian and explicitly sized. Every structure
//! carries a masked CRC32C; an all-zero region never decodes as valid.

pub mod block;
pub mod record;
pub mod slot;
pub mod snapshot;
pub mod superblock;

/// Bytes in a block; the unit of allocation.
pub const BLOCK_BYTES: usize = 4096;
/// The media's atomic write unit we assume (see docs/FORMAT.md).
pub const SECTOR_BYTES: usize = 512;
/// Bytes of the header at the start of every data block.
pub const BLOCK_HEADER_BYTES: usize = block::BLOCK_HEADER_BYTES;
/// Bytes of the header before every record fragment.
pub const RECORD_HEADER_BYTES: usize = record::RECORD_HEADER_BYTES;
/// Block holding the superblock.
pub const SUPERBLOCK_BLOCK: u32 = 0;
/// Blocks holding the two checkpoint slots.
pub const SLOT_BLOCKS: [u32; 2] = [1, 2];
/// First block the allocator may hand out.
pub const FIRST_DATA_BLOCK: u32 = 3;
/// Byte offsets, inside block 0 and inside each slot block, of the two
/// copies of the superblock / slot header. They sit in different sectors so
/// that one damaged sector cannot take both.
pub const COPY_OFFSETS: [usize; 2] = [0, 2048];
// The limits the decoders enforce live here, beside the fields they bound;
// `limits` names them with every other limit.
/// Largest key. A key must fit whole in the first fragment of a record.
pub const KEY_BYTES_MAX: usize = 1024;
/// Largest value. Larger values are split across blocks (FIRST/MIDDLE/LAST).
pub const VALUE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest LSN: the index packs it with a 12-bit in-block offset into a u64.
pub const LSN_MAX: u64 = (1 << 52) - 1;
/// Largest block generation (and checkpoint id). At a million blocks
/// opened per second it lasts 142 years; decoders refuse anything larger, so
/// a crafted header cannot wrap `generation + 1` to zero.
pub const GENERATION_MAX: u64 = (1 << 52) - 1;
/// Payload bytes a block offers to records.
pub const BLOCK_PAYLOAD_BYTES: usize = BLOCK_BYTES - BLOCK_HEADER_BYTES;
/// Largest fragment payload (key + value bytes) in one block.
pub const FRAGMENT_PAYLOAD_BYTES_MAX: usize = BLOCK_PAYLOAD_BYTES - RECORD_HEADER_BYTES;

/// On-disk format version, checked at open.
pub const FORMAT_VERSION: u32 = 1;

const _: () = assert!(BLOCK_BYTES.is_multiple_of(SECTOR_BYTES));
const _: () = assert!(COPY_OFFSETS[1].is_multiple_of(SECTOR_BYTES));

/// Byte offset of a block in the file.
pub fn block_offset(block: u32) -> u64 {
    u64::from(block) * BLOCK_BYTES as u64
}

/// CRC32C, masked as LevelDB does so that a CRC stored inside checksummed
/// bytes does not checksum to a fixed point.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    mask(crc32c::crc32c(bytes))
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

pub(crate) fn get_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn get_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

pub(crate) fn get_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

pub(crate) fn put_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_of_zeros_is_not_zero() {
        // An all-zero region must never carry a matching stored CRC of 0.
        for len in [0, 4, 28, 36, 60, 4092] {
            assert_ne!(masked_crc(&vec![0u8; len]), 0, "len {len}");
        }
    }
}
