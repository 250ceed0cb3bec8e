//! The header at the start of every data block.
//!
//! ```text
//! offset size field
//!   0     4   crc            masked CRC32C of bytes 4..32
//!   4     4   magic          "BKBL"
//!   8     1   kind           1 = LOG (records follow), 2 = SNAPSHOT (checkpoint payload)
//!   9     1   reserved       zero
//!  10     2   prev_used      LOG: bytes the previous LOG block (generation - 1) held
//!                            when this block was opened, 0 = none; SNAPSHOT: 0
//!  12     4   seq            SNAPSHOT: position in its chain (0, 1, ..); LOG: 0
//!  16     8   generation            LOG: write generation, +1 per block opened, never reused
//!                            while the block's records can be replayed;
//!                            SNAPSHOT: the checkpoint id it belongs to
//!  24     4   next_block     SNAPSHOT: next block of the chain, 0 = last
//!  28     4   payload_bytes  SNAPSHOT: payload bytes in this block
//!  24     8   floor_gen      LOG (instead of the two above): the oldest
//!                            generation still in use when the block was
//!                            opened; a full scan ignores LOG blocks older
//!                            than the largest floor it finds
//! ```
//!
//! A LOG block's records start at byte 32 and end where the remaining bytes
//! are all zero: a block is written whole (header + zeros) when it is opened,
//! and later appends write only their own bytes. Zeros alone cannot tell a
//! sealed block from one whose last appends never reached the disk, so the
//! next block's `prev_used` says where the previous one really ended; replay
//! moves on only when the two agree.

use super::{BLOCK_BYTES, get_u32, get_u64, masked_crc, put_u32, put_u64};

pub const BLOCK_HEADER_BYTES: usize = 32;
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"BKBL");
const _: () = assert!(BLOCK_HEADER_BYTES == 32);

/// What a data block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Log,
    Snapshot,
}

impl BlockKind {
    fn code(self) -> u8 {
        match self {
            BlockKind::Log => 1,
            BlockKind::Snapshot => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(BlockKind::Log),
            2 => Some(BlockKind::Snapshot),
            _ => None,
        }
    }
}

/// A decoded block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub kind: BlockKind,
    pub prev_used: u16,
    pub seq: u32,
    pub generation: u64,
    pub next_block: u32,
    pub payload_bytes: u32,
    /// LOG only (0 for SNAPSHOT): see the table above.
    pub floor_gen: u64,
}

impl BlockHeader {
    pub fn log(generation: u64, prev_used: u16, floor_gen: u64) -> Self {
        BlockHeader { kind: BlockKind::Log, prev_used, seq: 0, generation, next_block: 0, payload_bytes: 0, floor_gen }
    }

    pub fn encode_into(&self, out: &mut [u8]) {
        out[..BLOCK_HEADER_BYTES].fill(0);
        put_u32(out, 4, BLOCK_MAGIC);
        out[8] = self.kind.code();
        out[10..12].copy_from_slice(&self.prev_used.to_le_bytes());
        put_u32(out, 12, self.seq);
        put_u64(out, 16, self.generation);
        match self.kind {
            BlockKind::Log => put_u64(out, 24, self.floor_gen),
            BlockKind::Snapshot => {
                put_u32(out, 24, self.next_block);
                put_u32(out, 28, self.payload_bytes);
            }
        }
        let crc = masked_crc(&out[4..BLOCK_HEADER_BYTES]);
        put_u32(out, 0, crc);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < BLOCK_HEADER_BYTES {
            return Err("block header is truncated");
        }
        if get_u32(bytes, 0) != masked_crc(&bytes[4..BLOCK_HEADER_BYTES]) {
            return Err("block header checksum mismatch");
        }
        if get_u32(bytes, 4) != BLOCK_MAGIC {
            return Err("bad block magic");
        }
        let kind = BlockKind::from_code(bytes[8]).ok_or("unknown block kind")?;
        if bytes[9] != 0 {
            return Err("reserved block header byte is not zero");
        }
        let header = BlockHeader {
            kind,
            prev_used: u16::from_le_bytes([bytes[10], bytes[11]]),
            seq: get_u32(bytes, 12),
            generation: get_u64(bytes, 16),
            next_block: 0,
            payload_bytes: 0,
            floor_gen: 0,
        };
        let header = match kind {
            BlockKind::Log => BlockHeader { floor_gen: get_u64(bytes, 24), ..header },
            BlockKind::Snapshot => {
                BlockHeader { next_block: get_u32(bytes, 24), payload_bytes: get_u32(bytes, 28), ..header }
            }
        };
        if header.floor_gen > header.generation {
            return Err("block floor generation is newer than the block");
        }
        if header.generation == 0 || header.generation > crate::format::GENERATION_MAX {
            return Err("block generation out of range");
        }
        if header.payload_bytes as usize > BLOCK_BYTES - BLOCK_HEADER_BYTES
            || usize::from(header.prev_used) > BLOCK_BYTES
        {
            return Err("block payload length out of range");
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_header_round_trips() {
        let header = BlockHeader {
            kind: BlockKind::Snapshot,
            prev_used: 0,
            seq: 3,
            generation: 8,
            next_block: 99,
            payload_bytes: 4000,
            floor_gen: 0,
        };
        let mut bytes = [0u8; BLOCK_HEADER_BYTES];
        header.encode_into(&mut bytes);
        assert_eq!(BlockHeader::decode(&bytes), Ok(header));
    }

    #[test]
    fn zeroed_block_is_not_a_block() {
        assert!(BlockHeader::decode(&[0u8; BLOCK_HEADER_BYTES]).is_err());
    }

    #[test]
    fn every_single_bit_flip_in_a_block_header_is_detected() {
        let mut bytes = [0u8; BLOCK_HEADER_BYTES];
        BlockHeader::log(42, 4000, 40).encode_into(&mut bytes);
        for bit in 0..BLOCK_HEADER_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(BlockHeader::decode(&flipped).is_err(), "bit {bit}");
        }
    }
}
