//! Reading records back: one verified fragment, a whole value across its
//! fragments, and the blocks a record occupies. Every byte returned has passed
//! its CRC (invariant 1, docs/DESIGN.md).

use crate::error::{Error, Result};
use crate::format::record::{FragmentKind, RECORD_HEADER_BYTES, RecordHeader, decode_fragment};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, block_offset};
use crate::limits::VALUE_BYTES_MAX;
use crate::storage::Storage;

/// (block, bytes) of each fragment of a record, in order: what its
/// live-byte accounting adds and takes away.
pub type Extents = Vec<(u32, u32)>;

/// A verified fragment: its header and its bytes (header included).
#[derive(Debug)]
pub struct Fragment {
    pub header: RecordHeader,
    pub bytes: Vec<u8>,
}

impl Fragment {
    pub fn key(&self) -> &[u8] {
        &self.bytes[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + usize::from(self.header.key_len)]
    }

    fn value_part(&self) -> &[u8] {
        &self.bytes[RECORD_HEADER_BYTES + usize::from(self.header.key_len)..]
    }
}

/// Reads and verifies the fragment at `offset` in `block`.
pub fn read_fragment(storage: &dyn Storage, block: u32, offset: u32) -> Result<Fragment> {
    let at = offset as usize;
    if !(BLOCK_HEADER_BYTES..=BLOCK_BYTES - RECORD_HEADER_BYTES).contains(&at) {
        return Err(Error::corrupt(block, offset, "record offset out of range"));
    }
    let base = block_offset(block) + at as u64;
    let mut head = [0u8; RECORD_HEADER_BYTES];
    storage.read_at(base, &mut head).map_err(|e| Error::io("read record", e))?;
    let header = RecordHeader::decode_unverified(&head).map_err(|reason| Error::corrupt(block, offset, reason))?;
    let len = header.fragment_bytes();
    if at + len > BLOCK_BYTES {
        return Err(Error::corrupt(block, offset, "record runs past the end of its block"));
    }
    let mut bytes = vec![0u8; len];
    bytes[..RECORD_HEADER_BYTES].copy_from_slice(&head);
    storage
        .read_at(base + RECORD_HEADER_BYTES as u64, &mut bytes[RECORD_HEADER_BYTES..])
        .map_err(|e| Error::io("read record", e))?;
    let header = decode_fragment(&bytes).map_err(|reason| Error::corrupt(block, offset, reason))?;
    Ok(Fragment { header, bytes })
}

/// The whole value of the record whose first fragment is `first`, following
/// FIRST -> MIDDLE -> LAST and checking each belongs to the same record.
pub fn read_value(storage: &dyn Storage, first: Fragment) -> Result<Vec<u8>> {
    assemble_value(storage, first, |_, _| {})
}

/// The whole value of the record whose first fragment is `first` (at
/// `block`), and the (block, bytes) of every fragment: what the compactor
/// needs to move it, in one walk.
pub fn read_record(storage: &dyn Storage, block: u32, first: Fragment) -> Result<(Vec<u8>, Extents)> {
    let mut extents = vec![(block, first.bytes.len() as u32)];
    let value = assemble_value(storage, first, |at, bytes| extents.push((at, bytes)))?;
    Ok((value, extents))
}

/// `read_value`, handing (block, bytes) of each continuation to `visit`.
fn assemble_value(storage: &dyn Storage, first: Fragment, mut visit: impl FnMut(u32, u32)) -> Result<Vec<u8>> {
    if first.header.kind == FragmentKind::Full {
        let mut bytes = first.bytes;
        bytes.drain(..RECORD_HEADER_BYTES + usize::from(first.header.key_len));
        return Ok(bytes);
    }
    let mut value = Vec::with_capacity((first.header.value_len as usize).min(VALUE_BYTES_MAX));
    value.extend_from_slice(first.value_part());
    let mut last_block = first.header.next_block;
    for_each_continuation(storage, &first, |at, fragment| {
        value.extend_from_slice(fragment.value_part());
        visit(at, fragment.bytes.len() as u32);
        last_block = at;
    })?;
    if value.len() != first.header.value_len as usize {
        let reason = "fragments do not add up to the value length";
        return Err(Error::corrupt(last_block, BLOCK_HEADER_BYTES as u32, reason));
    }
    Ok(value)
}

/// Most fragments a record of `value_len` bytes can have. Every fragment
/// but the FIRST and LAST carries more than half a block of value, so a
/// longer chain (a cycle in a crafted image) is damage, never a reason to
/// loop forever.
pub fn fragments_max(value_len: u32) -> usize {
    value_len as usize / (BLOCK_BYTES / 2) + 2
}

/// (block, bytes) of every fragment of the record starting at `first`.
pub fn record_extents(storage: &dyn Storage, block: u32, first: &Fragment) -> Result<Extents> {
    let mut extents = vec![(block, first.bytes.len() as u32)];
    for_each_continuation(storage, first, |at, fragment| extents.push((at, fragment.bytes.len() as u32)))?;
    Ok(extents)
}

/// Reads and verifies the MIDDLE and LAST fragments that follow `first`,
/// in order, handing each (with its block) to `visit`; nothing for a FULL
/// record.
fn for_each_continuation(storage: &dyn Storage, first: &Fragment, mut visit: impl FnMut(u32, &Fragment)) -> Result<()> {
    let mut next = first.header.next_block;
    let mut kind = first.header.kind;
    let fragments_max = fragments_max(first.header.value_len);
    let mut fragment_count = 1;
    while matches!(kind, FragmentKind::First | FragmentKind::Middle) {
        if fragment_count > fragments_max {
            return Err(Error::corrupt(next, BLOCK_HEADER_BYTES as u32, "fragment chain longer than its value"));
        }
        let fragment = read_fragment(storage, next, BLOCK_HEADER_BYTES as u32)?;
        check_continuation(&fragment, next, first.header.lsn)?;
        visit(next, &fragment);
        fragment_count += 1;
        kind = fragment.header.kind;
        next = fragment.header.next_block;
    }
    Ok(())
}

fn check_continuation(fragment: &Fragment, block: u32, lsn: u64) -> Result<()> {
    let ok = fragment.header.lsn == lsn && matches!(fragment.header.kind, FragmentKind::Middle | FragmentKind::Last);
    if ok { Ok(()) } else { Err(Error::corrupt(block, BLOCK_HEADER_BYTES as u32, "fragment chain broken")) }
}
