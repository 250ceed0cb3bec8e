//! Parsing one block's fragments in order, as the full scan, the compactor
//! and the checkpoint's chain allocation read a block: every fragment
//! verified, damage reported with where and what.

use crate::format::record::{RECORD_HEADER_BYTES, RecordHeader, decode_fragment, is_clean_end};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, block_offset};
use crate::storage::Storage;

/// Room for this many fragments is reserved before a block is parsed: a
/// block of 100-byte values holds 27. The compactor parses every victim
/// this way, and growing the list one push at a time shows in its profile.
const SCAN_FRAGMENTS_RESERVED: usize = 32;

/// A record or block that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub block: u32,
    pub offset: u32,
    pub reason: String,
    /// The key the damaged header names, when it parses (unverified).
    pub key_hint: Option<Vec<u8>>,
}

/// A verified fragment of a scanned block: where it starts, its header and
/// its key (empty for a MIDDLE, LAST or SEAL).
#[derive(Debug)]
pub(crate) struct Fragment {
    pub offset: u32,
    pub header: RecordHeader,
    pub key: Vec<u8>,
}

/// What one block holds: its verified fragments, in order, and its damage.
#[derive(Debug)]
pub(crate) struct BlockScan {
    pub block: u32,
    pub fragments: Vec<Fragment>,
    pub damaged: Vec<Damage>,
}

/// Parses `block`. `resync` (salvage) looks past a damaged record for the
/// next one that verifies; otherwise the rest of the block is skipped.
pub(crate) fn scan_block(storage: &dyn Storage, block: u32, resync: bool) -> BlockScan {
    let fragments = Vec::with_capacity(SCAN_FRAGMENTS_RESERVED);
    let mut scan = BlockScan { block, fragments, damaged: Vec::new() };
    let mut buf = vec![0u8; BLOCK_BYTES];
    if let Err(err) = storage.read_at(block_offset(block), &mut buf) {
        scan.damaged.push(Damage { block, offset: 0, reason: format!("read failed: {err}"), key_hint: None });
        return scan;
    }
    let mut offset = BLOCK_HEADER_BYTES;
    while offset + RECORD_HEADER_BYTES <= BLOCK_BYTES && !is_clean_end(&buf[offset..]) {
        match decode_fragment(&buf[offset..]) {
            Ok(header) => {
                let key_end = offset + RECORD_HEADER_BYTES + usize::from(header.key_len);
                let key = buf[offset + RECORD_HEADER_BYTES..key_end].to_vec();
                scan.fragments.push(Fragment { offset: offset as u32, header, key });
                offset += header.fragment_bytes();
            }
            Err(reason) => {
                scan.damaged.push(Damage {
                    block,
                    offset: offset as u32,
                    reason: reason.into(),
                    key_hint: key_hint(&buf[offset..]),
                });
                if !resync {
                    break;
                }
                offset = next_valid(&buf, offset + 1).unwrap_or(BLOCK_BYTES);
            }
        }
    }
    scan
}

/// The first offset at or after `from` where a fragment verifies.
fn next_valid(buf: &[u8], from: usize) -> Option<usize> {
    (from..=BLOCK_BYTES - RECORD_HEADER_BYTES).find(|&at| decode_fragment(&buf[at..]).is_ok())
}

/// The key a damaged record's header names, if its header still parses.
fn key_hint(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = RecordHeader::decode_unverified(bytes).ok()?;
    let end = RECORD_HEADER_BYTES + usize::from(header.key_len);
    (header.key_len > 0 && end <= bytes.len()).then(|| bytes[RECORD_HEADER_BYTES..end].to_vec())
}
