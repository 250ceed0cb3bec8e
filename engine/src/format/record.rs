//! A record fragment inside a LOG block. A record is a single FULL fragment,
//! or FIRST, MIDDLE..., LAST, each in its own block, linked by `next_block`,
//! all with the same lsn: a record larger than a block always, and one that
//! fits a block when it is split to fill the block before (FIRST, LAST;
//! `writer/log.rs: SPLIT_ROOM_MIN_BYTES`).
//!
//! A SEAL (header only) ends a LOG block the writer left for a newly
//! allocated one and names that block in `next_block`; its lsn is the one
//! most recently assigned (recovery does not use it). So every block the log moved on from names its successor
//! (SEAL, or a FIRST/MIDDLE fragment), and recovery can tell "the log ends
//! here" from "the next block's header was destroyed".
//!
//! ```text
//! offset size field
//!   0     4   crc            masked CRC32C of bytes 4..(40 + fragment_len)
//!   4     1   kind           1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST, 5 SEAL
//!   5     1   flags          bit 0: TOMBSTONE (a delete; FULL only, no value)
//!   6     2   key_len        FULL/FIRST: key bytes; MIDDLE/LAST: 0
//!   8     2   fragment_len   bytes after this header in this fragment
//!                            (FULL/FIRST: key then value bytes; else value bytes)
//!  10     2   batch_index    position in its atomic batch, 0-based
//!  12     2   batch_count    records in its atomic batch (1 = not a batch)
//!  14     2   reserved       zero
//!  16     8   lsn            log sequence number, 1.., unique per record
//!  24     8   expires_ms     Unix time in ms after which the key is gone; 0 = never
//!  32     4   value_len      total value bytes across all fragments
//!  36     4   next_block     FIRST/MIDDLE: block of the next fragment;
//!                            SEAL: the next LOG block; else 0
//!  40     .   payload        fragment_len bytes
//! ```

use super::{get_u16, get_u32, get_u64, masked_crc, put_u16, put_u32, put_u64};
use crate::format::{FRAGMENT_PAYLOAD_BYTES_MAX, KEY_BYTES_MAX, LSN_MAX, VALUE_BYTES_MAX};

pub const RECORD_HEADER_BYTES: usize = 40;
const _: () = assert!(RECORD_HEADER_BYTES == 40);

/// Where a fragment sits in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    Full,
    First,
    Middle,
    Last,
    Seal,
}

/// Bytes a SEAL takes; the writer always leaves room for one.
pub const SEAL_BYTES: usize = RECORD_HEADER_BYTES;

impl FragmentKind {
    fn code(self) -> u8 {
        match self {
            FragmentKind::Full => 1,
            FragmentKind::First => 2,
            FragmentKind::Middle => 3,
            FragmentKind::Last => 4,
            FragmentKind::Seal => 5,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(FragmentKind::Full),
            2 => Some(FragmentKind::First),
            3 => Some(FragmentKind::Middle),
            4 => Some(FragmentKind::Last),
            5 => Some(FragmentKind::Seal),
            _ => None,
        }
    }
}

pub const FLAG_TOMBSTONE: u8 = 1;

/// A decoded fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: FragmentKind,
    pub flags: u8,
    pub key_len: u16,
    pub fragment_len: u16,
    pub batch_index: u16,
    pub batch_count: u16,
    pub lsn: u64,
    pub expires_ms: u64,
    pub value_len: u32,
    pub next_block: u32,
}

impl RecordHeader {
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// Bytes this fragment occupies in its block.
    pub fn fragment_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + usize::from(self.fragment_len)
    }

    /// Checks the fields against each other and the limits; used on encode and
    /// decode alike so a bad record is never written and never believed.
    pub fn validate(&self) -> Result<(), &'static str> {
        let key_len = usize::from(self.key_len);
        let fragment_len = usize::from(self.fragment_len);
        if fragment_len > FRAGMENT_PAYLOAD_BYTES_MAX {
            return Err("fragment length out of range");
        }
        if key_len > KEY_BYTES_MAX || self.value_len as usize > VALUE_BYTES_MAX {
            return Err("key or value length over the limit");
        }
        if self.lsn == 0 || self.lsn > LSN_MAX {
            return Err("lsn out of range");
        }
        if self.batch_count == 0 || self.batch_index >= self.batch_count {
            return Err("batch position out of range");
        }
        if self.flags & !FLAG_TOMBSTONE != 0 {
            return Err("unknown record flags");
        }
        let value_here = fragment_len.checked_sub(key_len).ok_or("key longer than fragment")?;
        match self.kind {
            FragmentKind::Full => {
                if value_here != self.value_len as usize || self.next_block != 0 {
                    return Err("FULL record lengths disagree");
                }
                if self.is_tombstone() && self.value_len != 0 {
                    return Err("tombstone carries a value");
                }
            }
            FragmentKind::First => {
                if value_here >= self.value_len as usize || self.next_block == 0 || self.is_tombstone() {
                    return Err("FIRST fragment fields disagree");
                }
            }
            FragmentKind::Seal => {
                if fragment_len != 0 || self.value_len != 0 || self.flags != 0 || self.next_block == 0 {
                    return Err("SEAL fields out of range");
                }
            }
            FragmentKind::Middle | FragmentKind::Last => {
                if key_len != 0 || self.is_tombstone() || fragment_len == 0 {
                    return Err("continuation fragment fields disagree");
                }
                if (self.kind == FragmentKind::Middle) != (self.next_block != 0) {
                    return Err("continuation next_block disagrees with kind");
                }
            }
        }
        Ok(())
    }

    /// Writes header + payload into `out` (which must be exactly
    /// `RECORD_HEADER_BYTES + payload.len()` long) and seals it with the CRC.
    pub fn encode_into(&self, payload_parts: &[&[u8]], out: &mut [u8]) {
        debug_assert_eq!(self.validate(), Ok(()));
        put_u32(out, 0, 0);
        out[4] = self.kind.code();
        out[5] = self.flags;
        put_u16(out, 6, self.key_len);
        put_u16(out, 8, self.fragment_len);
        put_u16(out, 10, self.batch_index);
        put_u16(out, 12, self.batch_count);
        put_u16(out, 14, 0);
        put_u64(out, 16, self.lsn);
        put_u64(out, 24, self.expires_ms);
        put_u32(out, 32, self.value_len);
        put_u32(out, 36, self.next_block);
        let mut at = RECORD_HEADER_BYTES;
        for part in payload_parts {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        debug_assert_eq!(at, out.len());
        let crc = masked_crc(&out[4..at]);
        put_u32(out, 0, crc);
    }

    /// Decodes the header only (no CRC check: the CRC covers the payload too).
    /// Use [`decode_fragment`] to verify.
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, &'static str> {
        if bytes.len() < RECORD_HEADER_BYTES {
            return Err("record header is truncated");
        }
        let kind = FragmentKind::from_code(bytes[4]).ok_or("unknown record kind")?;
        if get_u16(bytes, 14) != 0 {
            return Err("reserved record bytes are not zero");
        }
        let header = RecordHeader {
            kind,
            flags: bytes[5],
            key_len: get_u16(bytes, 6),
            fragment_len: get_u16(bytes, 8),
            batch_index: get_u16(bytes, 10),
            batch_count: get_u16(bytes, 12),
            lsn: get_u64(bytes, 16),
            expires_ms: get_u64(bytes, 24),
            value_len: get_u32(bytes, 32),
            next_block: get_u32(bytes, 36),
        };
        header.validate()?;
        Ok(header)
    }
}

/// Decodes and verifies the fragment at the start of `bytes` (which may run
/// on past it). Returns the header; its payload is
/// `bytes[RECORD_HEADER_BYTES..header.fragment_bytes()]`.
pub fn decode_fragment(bytes: &[u8]) -> Result<RecordHeader, &'static str> {
    let header = RecordHeader::decode_unverified(bytes)?;
    let end = header.fragment_bytes();
    if end > bytes.len() {
        return Err("record runs past the end of its block");
    }
    if get_u32(bytes, 0) != masked_crc(&bytes[4..end]) {
        return Err("record checksum mismatch");
    }
    Ok(header)
}

/// True when `bytes` holds nothing but zeros: the clean end of a LOG block.
pub fn is_clean_end(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(key: &[u8], value: &[u8]) -> Vec<u8> {
        let header = RecordHeader {
            kind: FragmentKind::Full,
            flags: 0,
            key_len: key.len() as u16,
            fragment_len: (key.len() + value.len()) as u16,
            batch_index: 0,
            batch_count: 1,
            lsn: 9,
            expires_ms: 0,
            value_len: value.len() as u32,
            next_block: 0,
        };
        let mut out = vec![0u8; RECORD_HEADER_BYTES + key.len() + value.len()];
        header.encode_into(&[key, value], &mut out);
        out
    }

    #[test]
    fn full_record_round_trips() {
        let bytes = full(b"key", b"value");
        let header = decode_fragment(&bytes).expect("valid");
        assert_eq!(header.lsn, 9);
        assert_eq!(&bytes[RECORD_HEADER_BYTES..header.fragment_bytes()], b"keyvalue");
    }

    #[test]
    fn zeroed_block_is_not_a_record() {
        assert!(decode_fragment(&[0u8; 128]).is_err());
        assert!(is_clean_end(&[0u8; 128]));
    }

    #[test]
    fn every_single_bit_flip_in_a_record_is_detected() {
        let bytes = full(b"k1", b"some value bytes");
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_fragment(&flipped).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn record_running_past_its_block_is_rejected() {
        let bytes = full(b"k", b"v");
        assert!(decode_fragment(&bytes[..bytes.len() - 1]).is_err());
    }
}
