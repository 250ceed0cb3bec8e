//! A checkpoint slot header: the commit point of a checkpoint. Blocks 1 and 2
//! hold slots A and B; checkpoints alternate between them, and the newest
//! valid one wins. The header is written twice in its block (bytes 0 and
//! 2048) so one bad sector cannot lose it; either copy alone is enough.
//!
//! ```text
//! offset size field
//!   0     4   crc                   masked CRC32C of bytes 4..64
//!   4     4   magic                 "BKCP"
//!   8     8   checkpoint_id         1, 2, 3, ... (higher is newer)
//!  16     8   covered_lsn           every record with lsn <= this is in the snapshot
//!  24     8   replay_gen            replay LOG blocks with generation >= this
//!  32     8   written_ms            Unix time, milliseconds
//!  40     8   snapshot_bytes        payload bytes of the snapshot chain
//!  48     4   snapshot_first_block  first SNAPSHOT block of the chain
//!  52     4   snapshot_block_count  blocks in the chain
//!  56     4   snapshot_crc          masked CRC32C of the whole payload
//!  60     4   replay_offset         byte in the replay_gen block where replay
//!                                   starts (the records before it are covered)
//! ```

use super::{get_u32, get_u64, masked_crc, put_u32, put_u64};

pub const SLOT_HEADER_BYTES: usize = 64;
pub const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"BKCP");

/// A decoded slot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotHeader {
    pub checkpoint_id: u64,
    pub covered_lsn: u64,
    pub replay_gen: u64,
    pub written_ms: u64,
    pub snapshot_bytes: u64,
    pub snapshot_first_block: u32,
    pub snapshot_block_count: u32,
    pub snapshot_crc: u32,
    pub replay_offset: u32,
}

impl SlotHeader {
    pub fn encode(&self) -> [u8; SLOT_HEADER_BYTES] {
        let mut out = [0u8; SLOT_HEADER_BYTES];
        put_u32(&mut out, 4, SLOT_MAGIC);
        put_u64(&mut out, 8, self.checkpoint_id);
        put_u64(&mut out, 16, self.covered_lsn);
        put_u64(&mut out, 24, self.replay_gen);
        put_u64(&mut out, 32, self.written_ms);
        put_u64(&mut out, 40, self.snapshot_bytes);
        put_u32(&mut out, 48, self.snapshot_first_block);
        put_u32(&mut out, 52, self.snapshot_block_count);
        put_u32(&mut out, 56, self.snapshot_crc);
        put_u32(&mut out, 60, self.replay_offset);
        let crc = masked_crc(&out[4..]);
        put_u32(&mut out, 0, crc);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < SLOT_HEADER_BYTES {
            return Err("slot header is truncated");
        }
        if get_u32(bytes, 0) != masked_crc(&bytes[4..SLOT_HEADER_BYTES]) {
            return Err("slot header checksum mismatch");
        }
        if get_u32(bytes, 4) != SLOT_MAGIC {
            return Err("bad slot magic");
        }
        let header = SlotHeader {
            checkpoint_id: get_u64(bytes, 8),
            covered_lsn: get_u64(bytes, 16),
            replay_gen: get_u64(bytes, 24),
            written_ms: get_u64(bytes, 32),
            snapshot_bytes: get_u64(bytes, 40),
            snapshot_first_block: get_u32(bytes, 48),
            snapshot_block_count: get_u32(bytes, 52),
            snapshot_crc: get_u32(bytes, 56),
            replay_offset: get_u32(bytes, 60),
        };
        if header.checkpoint_id == 0
            || header.checkpoint_id > crate::format::GENERATION_MAX
            || header.replay_gen == 0
            || header.replay_gen > crate::format::GENERATION_MAX
            || header.snapshot_block_count == 0
            || header.covered_lsn > crate::format::LSN_MAX
            || (header.replay_offset as usize) < crate::format::BLOCK_HEADER_BYTES
            || header.replay_offset as usize > crate::format::BLOCK_BYTES
        {
            return Err("slot header field out of range");
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SlotHeader {
        SlotHeader {
            checkpoint_id: 5,
            covered_lsn: 77,
            replay_gen: 12,
            written_ms: 1,
            snapshot_bytes: 9000,
            snapshot_first_block: 40,
            snapshot_block_count: 3,
            snapshot_crc: 0xdead_beef,
            replay_offset: 1234,
        }
    }

    #[test]
    fn slot_header_round_trips() {
        assert_eq!(SlotHeader::decode(&sample().encode()), Ok(sample()));
    }

    #[test]
    fn zeroed_slot_is_not_a_checkpoint() {
        assert!(SlotHeader::decode(&[0u8; SLOT_HEADER_BYTES]).is_err());
    }

    #[test]
    fn every_single_bit_flip_in_a_slot_header_is_detected() {
        let bytes = sample().encode();
        for bit in 0..SLOT_HEADER_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(SlotHeader::decode(&flipped).is_err(), "bit {bit}");
        }
    }
}
