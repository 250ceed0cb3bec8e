//! The checkpoint payload: the index and the block table as of `covered_lsn`.
//! It is stored in a chain of SNAPSHOT blocks (see block.rs) that the slot
//! header points to, so it can grow past one block.
//!
//! ```text
//! offset      size            field
//!   0         4               magic        "BKSN"
//!   4         4               reserved     zero
//!   8         8               block_count  must equal the superblock's
//!  16         8               entry_count  index entries that follow
//!  24         ceil(n/8)       bitmap       bit b (byte b/8, LSB first) = block b in use
//!   .         4 * used        live_bytes   u32 per in-use block, ascending block order:
//!                                          bytes of its records the index references
//!   .         16 * entries    entries      IndexEntry, below
//! ```
//!
//! An index entry holds no key: the key lives in the record it points to and
//! is compared there (see index/mod.rs). 16 bytes:
//!
//! ```text
//!   0  4  hash        key_hash(key), see index/mod.rs
//!   4  4  block       block of the record's first fragment
//!   8  8  lsn_offset  lsn << 12 | byte offset of the fragment in its block
//! ```

use super::{BLOCK_BYTES, get_u32, get_u64, put_u32, put_u64};
use crate::format::LSN_MAX;

pub const SNAPSHOT_MAGIC: u32 = u32::from_le_bytes(*b"BKSN");
pub const SNAPSHOT_HEADER_BYTES: usize = 24;
pub const INDEX_ENTRY_BYTES: usize = 16;
const OFFSET_BITS: u32 = 12;
const _: () = assert!(1 << OFFSET_BITS == BLOCK_BYTES);

/// One index entry: where the newest version of one key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    pub hash: u32,
    pub block: u32,
    lsn_offset: u64,
}

const _: () = assert!(std::mem::size_of::<IndexEntry>() == INDEX_ENTRY_BYTES);

impl IndexEntry {
    pub fn new(hash: u32, block: u32, offset: u32, lsn: u64) -> Self {
        debug_assert!(lsn <= LSN_MAX && (offset as usize) < BLOCK_BYTES);
        IndexEntry { hash, block, lsn_offset: (lsn << OFFSET_BITS) | u64::from(offset) }
    }

    pub fn lsn(&self) -> u64 {
        self.lsn_offset >> OFFSET_BITS
    }

    pub fn offset(&self) -> u32 {
        (self.lsn_offset & ((1 << OFFSET_BITS) - 1)) as u32
    }
}

/// Payload size for a file of `block_count` blocks, `used_count` of them in use,
/// and `entry_count` index entries.
pub fn snapshot_bytes(block_count: u64, used_count: u64, entry_count: u64) -> u64 {
    checked_snapshot_bytes(block_count, used_count, entry_count).unwrap_or(u64::MAX)
}

/// Snapshot payload bytes one block carries.
pub const SNAPSHOT_PAYLOAD_PER_BLOCK: usize = BLOCK_BYTES - super::BLOCK_HEADER_BYTES;

/// Snapshot blocks needed for `entries` keys in a file of `block_count`
/// blocks of which `used` are in use.
pub fn snapshot_blocks(block_count: u64, used: u64, entries: u64) -> u64 {
    snapshot_bytes(block_count, used, entries).div_ceil(SNAPSHOT_PAYLOAD_PER_BLOCK as u64)
}

/// As [`snapshot_bytes`], None when the counts (read from disk) overflow.
fn checked_snapshot_bytes(block_count: u64, used_count: u64, entry_count: u64) -> Option<u64> {
    (SNAPSHOT_HEADER_BYTES as u64)
        .checked_add(block_count.div_ceil(8))?
        .checked_add(used_count.checked_mul(4)?)?
        .checked_add(entry_count.checked_mul(INDEX_ENTRY_BYTES as u64)?)
}

/// Encodes a payload. `bitmap` is `ceil(block_count/8)` bytes; `live_bytes` has
/// one value per block (only those of in-use blocks are stored).
pub fn encode(block_count: u64, bitmap: &[u8], live_bytes: &[u32], entries: &[IndexEntry]) -> Vec<u8> {
    let used: Vec<u32> = (0..block_count as usize).filter(|&b| bit(bitmap, b)).map(|b| live_bytes[b]).collect();
    let total = snapshot_bytes(block_count, used.len() as u64, entries.len() as u64) as usize;
    let mut out = vec![0u8; total];
    put_u32(&mut out, 0, SNAPSHOT_MAGIC);
    put_u64(&mut out, 8, block_count);
    put_u64(&mut out, 16, entries.len() as u64);
    let mut at = SNAPSHOT_HEADER_BYTES;
    out[at..at + bitmap.len()].copy_from_slice(bitmap);
    at += bitmap.len();
    for live in used {
        put_u32(&mut out, at, live);
        at += 4;
    }
    for entry in entries {
        put_u32(&mut out, at, entry.hash);
        put_u32(&mut out, at + 4, entry.block);
        put_u64(&mut out, at + 8, entry.lsn_offset);
        at += INDEX_ENTRY_BYTES;
    }
    debug_assert_eq!(at, total);
    out
}

/// A decoded payload.
#[derive(Debug)]
pub struct Snapshot {
    pub bitmap: Vec<u8>,
    pub live_bytes: Vec<u32>,
    pub entries: Vec<IndexEntry>,
}

/// Decodes a payload, checking every length and every reference against the
/// file's block count (the caller has already checked the payload CRC).
pub fn decode(bytes: &[u8], block_count: u64) -> Result<Snapshot, &'static str> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES || get_u32(bytes, 0) != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic");
    }
    if get_u64(bytes, 8) != block_count {
        return Err("snapshot block count differs from the superblock");
    }
    let entry_count = get_u64(bytes, 16);
    let bitmap_bytes = block_count.div_ceil(8) as usize;
    let mut at = SNAPSHOT_HEADER_BYTES;
    let bitmap = bytes.get(at..at + bitmap_bytes).ok_or("snapshot bitmap is truncated")?.to_vec();
    at += bitmap_bytes;
    let used_count = (0..block_count as usize).filter(|&b| bit(&bitmap, b)).count() as u64;
    if checked_snapshot_bytes(block_count, used_count, entry_count) != Some(bytes.len() as u64) {
        return Err("snapshot length disagrees with its counts");
    }
    let mut live_bytes = vec![0u32; block_count as usize];
    for (b, live) in live_bytes.iter_mut().enumerate() {
        if bit(&bitmap, b) {
            *live = get_u32(bytes, at);
            at += 4;
            if *live as usize > BLOCK_BYTES - crate::format::BLOCK_HEADER_BYTES {
                return Err("live bytes larger than a block");
            }
        }
    }
    let mut entries = Vec::with_capacity(entry_count as usize);
    for _ in 0..entry_count {
        let entry =
            IndexEntry { hash: get_u32(bytes, at), block: get_u32(bytes, at + 4), lsn_offset: get_u64(bytes, at + 8) };
        at += INDEX_ENTRY_BYTES;
        if u64::from(entry.block) >= block_count || !bit(&bitmap, entry.block as usize) {
            return Err("index entry points at a block that is not in use");
        }
        if entry.lsn() == 0 {
            return Err("index entry has lsn 0");
        }
        entries.push(entry);
    }
    Ok(Snapshot { bitmap, live_bytes, entries })
}

/// Bit `index` of a little-endian bitmap.
pub fn bit(bitmap: &[u8], index: usize) -> bool {
    bitmap[index / 8] & (1 << (index % 8)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips() {
        let block_count = 20u64;
        let mut bitmap = vec![0u8; 3];
        for b in [3usize, 4, 9] {
            bitmap[b / 8] |= 1 << (b % 8);
        }
        let mut live = vec![0u32; 20];
        live[3] = 100;
        live[9] = 4000;
        let entries = vec![IndexEntry::new(7, 3, 32, 5), IndexEntry::new(8, 9, 4000, (1 << 52) - 1)];
        let bytes = encode(block_count, &bitmap, &live, &entries);
        let snap = decode(&bytes, block_count).expect("decodes");
        assert_eq!(snap.bitmap, bitmap);
        assert_eq!(snap.live_bytes, live);
        assert_eq!(snap.entries, entries);
        assert_eq!(snap.entries[1].offset(), 4000);
        assert_eq!(snap.entries[1].lsn(), (1 << 52) - 1);
    }

    #[test]
    fn snapshot_with_absurd_entry_count_is_rejected_without_panic() {
        // A crafted payload (its CRC would be recomputed by an attacker)
        // whose counts overflow the length arithmetic.
        for count in [u64::MAX, u64::MAX / 16 + 1, u64::MAX / 8] {
            let mut bytes = encode(8, &[0u8; 1], &[0; 8], &[]);
            put_u64(&mut bytes, 16, count);
            assert!(decode(&bytes, 8).is_err(), "count {count}");
        }
    }

    #[test]
    fn snapshot_entry_pointing_at_free_block_is_rejected() {
        let bitmap = vec![0u8; 1];
        let bytes = encode(8, &bitmap, &[0; 8], &[IndexEntry::new(1, 5, 32, 1)]);
        assert!(decode(&bytes, 8).is_err());
    }
}
