//! The superblock: what this file is. Written once, at creation, in two
//! copies (block 0, bytes 0 and 2048); never rewritten, so never torn later.
//!
//! ```text
//! offset size field
//!   0     8   magic        "BLOCKKV\0"
//!   8     4   version      FORMAT_VERSION
//!  12     4   block_bytes  4096
//!  16     8   block_count  file bytes / 4096
//!  24     8   created_ms   Unix time of creation, milliseconds
//!  32     8   file_id      random, tells files apart in reports
//!  40    20   reserved     zero
//!  60     4   crc          masked CRC32C of bytes 0..60
//! ```

use super::{BLOCK_BYTES, FORMAT_VERSION, get_u32, get_u64, masked_crc, put_u32, put_u64};

pub const SUPERBLOCK_BYTES: usize = 64;
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"BLOCKKV\0";
const CRC_AT: usize = 60;
const _: () = assert!(CRC_AT + 4 == SUPERBLOCK_BYTES);

/// The decoded superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub block_count: u64,
    pub created_ms: u64,
    pub file_id: u64,
}

impl Superblock {
    pub fn encode(&self) -> [u8; SUPERBLOCK_BYTES] {
        let mut out = [0u8; SUPERBLOCK_BYTES];
        out[0..8].copy_from_slice(&SUPERBLOCK_MAGIC);
        put_u32(&mut out, 8, FORMAT_VERSION);
        put_u32(&mut out, 12, BLOCK_BYTES as u32);
        put_u64(&mut out, 16, self.block_count);
        put_u64(&mut out, 24, self.created_ms);
        put_u64(&mut out, 32, self.file_id);
        let crc = masked_crc(&out[..CRC_AT]);
        put_u32(&mut out, CRC_AT, crc);
        out
    }

    /// Decodes one copy; the error says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < SUPERBLOCK_BYTES {
            return Err("superblock is truncated");
        }
        if bytes[0..8] != SUPERBLOCK_MAGIC {
            return Err("bad superblock magic");
        }
        if get_u32(bytes, CRC_AT) != masked_crc(&bytes[..CRC_AT]) {
            return Err("superblock checksum mismatch");
        }
        if get_u32(bytes, 8) != FORMAT_VERSION {
            return Err("unsupported format version");
        }
        if get_u32(bytes, 12) != BLOCK_BYTES as u32 {
            return Err("unsupported block size");
        }
        Ok(Superblock { block_count: get_u64(bytes, 16), created_ms: get_u64(bytes, 24), file_id: get_u64(bytes, 32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_round_trips() {
        let sb = Superblock { block_count: 16384, created_ms: 7, file_id: 9 };
        assert_eq!(Superblock::decode(&sb.encode()), Ok(sb));
    }

    #[test]
    fn zeroed_superblock_is_not_valid() {
        assert!(Superblock::decode(&[0u8; SUPERBLOCK_BYTES]).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = Superblock { block_count: 64, created_ms: 1, file_id: 2 }.encode();
        for bit in 0..SUPERBLOCK_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Superblock::decode(&flipped).is_err(), "bit {bit}");
        }
    }
}
