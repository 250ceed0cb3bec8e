//! The append path: packs records into the active LOG block, opens new blocks
//! (written whole, header + zeros, so a block's records end at its first zero
//! bytes), and splits values larger than a block into FIRST/MIDDLE/LAST
//! fragments (and a record that would leave 512 or more value bytes of a
//! block unused into FIRST/LAST: `SPLIT_ROOM_MIN_BYTES`). Callers hold the
//! log lock; LSNs and generations are assigned here in log order.

use crate::format::block::BlockHeader;
use crate::format::record::{FLAG_TOMBSTONE, FragmentKind, RECORD_HEADER_BYTES, RecordHeader, SEAL_BYTES};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, block_offset};
use crate::space::{BlockTable, BlockUse, Purpose};
use crate::storage::Storage;
use std::io;

/// Room for value bytes left in the block being filled at or above which a
/// record that does not fit there is split (FIRST here, LAST in the next
/// block) rather than moved whole to a new block. Without splitting, a
/// block of 2,000-byte values holds one record and is half empty: a store
/// half full of them by bytes is full, and compaction cannot help.
/// So a block's slack stays under 40 + key + 512 bytes (about an eighth
/// of a block with short keys), and a record that fits in the room left,
/// or is written where less is left, stays one FULL fragment (one read).
pub const SPLIT_ROOM_MIN_BYTES: usize = 512;

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub tombstone: bool,
    pub expires_ms: u64,
}

/// Where an appended record landed.
#[derive(Debug, Clone)]
pub struct Placed {
    pub lsn: u64,
    pub block: u32,
    pub offset: u32,
    /// (block, bytes) for every fragment, for live-byte accounting.
    pub extents: Vec<(u32, u32)>,
}

/// Why an append did not happen (nothing was written, or the store must be
/// poisoned).
#[derive(Debug)]
pub enum AppendError {
    /// Not enough free blocks; the writer is unchanged.
    NoSpace { blocks_wanted: u64 },
    /// A write failed; bytes may be half on disk. The caller poisons.
    Io(io::Error),
}

#[derive(Debug)]
struct Active {
    block: u32,
    generation: u64,
    buf: Box<[u8]>,
    used: usize,
    /// Bytes of `buf` already written; 0 = never written (write it whole).
    written: usize,
}

/// The log writer's state.
#[derive(Debug)]
pub struct LogWriter {
    active: Option<Active>,
    /// Blocks left behind by placements since the last flush, in log order.
    sealed: Vec<Active>,
    next_gen: u64,
    next_lsn: u64,
    /// The full-scan floor the newest LOG header carries (0 when unknown):
    /// free blocks of an older generation are invisible to a full scan.
    floor_gen: u64,
    /// Bytes written to the file by appends, ever (for stats).
    pub bytes_written: u64,
}

impl LogWriter {
    /// A writer continuing after recovery. `active` is the tail block, its
    /// content, and how many of its bytes hold records.
    /// A tail block with no room left for a SEAL (only a damaged or crafted
    /// file has one: the writer always keeps that room) is not resumed: it
    /// stays as it is, and the next write opens a new block.
    pub fn new(next_gen: u64, next_lsn: u64, active: Option<(u32, u64, Box<[u8]>, usize)>) -> Self {
        let floor_gen = active
            .as_ref()
            .and_then(|(_, _, buf, _)| BlockHeader::decode(&buf[..BLOCK_HEADER_BYTES]).ok())
            .map_or(0, |header| header.floor_gen);
        let active = active
            .filter(|&(_, _, _, used)| used + SEAL_BYTES <= BLOCK_BYTES)
            .map(|(block, generation, buf, used)| Active { block, generation, buf, used, written: used });
        LogWriter { active, sealed: Vec::new(), next_gen, next_lsn, floor_gen, bytes_written: 0 }
    }

    /// The full-scan floor of the newest LOG header written (see the field).
    pub fn floor_gen(&self) -> u64 {
        self.floor_gen
    }

    /// The block being filled, never a compaction victim.
    pub fn active_block(&self) -> Option<u32> {
        self.active.as_ref().map(|a| a.block)
    }

    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// LOG blocks with a generation at or above this one hold records newer
    /// than everything already appended before it (the checkpoint's replay start).
    pub fn replay_gen(&self) -> u64 {
        self.active.as_ref().map_or(self.next_gen, |a| a.generation)
    }

    /// Where in the `replay_gen` block the not-yet-covered records begin.
    pub fn replay_offset(&self) -> u32 {
        self.active.as_ref().map_or(BLOCK_HEADER_BYTES, |a| a.used) as u32
    }

    /// Appends `ops` as one unit (an atomic batch when more than one), writes
    /// them to storage in log order, and returns where each landed.
    pub fn append(
        &mut self,
        storage: &dyn Storage,
        table: &mut BlockTable,
        ops: &[Op<'_>],
        purpose: Purpose,
    ) -> Result<Vec<Placed>, AppendError> {
        let placed = self.place(table, ops, purpose).map_err(|blocks_wanted| AppendError::NoSpace { blocks_wanted })?;
        self.flush(storage).map_err(AppendError::Io)?;
        Ok(placed)
    }

    /// Places `ops` as one unit (an atomic batch when more than one) in the
    /// block buffers, assigning LSNs, without any I/O. On `Err(blocks
    /// wanted)` nothing of this call remains; earlier placements stand.
    /// Nothing placed is durable, or visible to readers, before `flush`.
    pub fn place(&mut self, table: &mut BlockTable, ops: &[Op<'_>], purpose: Purpose) -> Result<Vec<Placed>, u64> {
        let saved = Saved {
            active: self.active.as_ref().map(|a| (a.block, a.used)),
            sealed: self.sealed.len(),
            next_gen: self.next_gen,
            next_lsn: self.next_lsn,
            floor_gen: self.floor_gen,
        };
        let mut plan = Plan { allocated: Vec::new() };
        let batch_count = ops.len() as u16;
        let mut placed = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.place_one(table, &mut plan, op, i as u16, batch_count, purpose) {
                Ok(p) => placed.push(p),
                Err(blocks_wanted) => {
                    self.roll_back(table, plan, saved);
                    return Err(blocks_wanted);
                }
            }
        }
        Ok(placed)
    }

    /// Writes everything placed since the last flush, in log order: sealed
    /// blocks, then what is new in the active one.
    pub fn flush(&mut self, storage: &dyn Storage) -> io::Result<()> {
        for mut block in std::mem::take(&mut self.sealed) {
            self.bytes_written += write_block(storage, &mut block)?;
        }
        if let Some(active) = self.active.as_mut() {
            self.bytes_written += write_block(storage, active)?;
        }
        Ok(())
    }

    fn place_one(
        &mut self,
        table: &mut BlockTable,
        plan: &mut Plan,
        op: &Op<'_>,
        batch_index: u16,
        batch_count: u16,
        purpose: Purpose,
    ) -> Result<Placed, u64> {
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        let total = RECORD_HEADER_BYTES + op.key.len() + op.value.len();
        let room = self.active.as_ref().map_or(0, |a| BLOCK_BYTES - a.used);
        let mut header = RecordHeader {
            kind: FragmentKind::Full,
            flags: if op.tombstone { FLAG_TOMBSTONE } else { 0 },
            key_len: op.key.len() as u16,
            fragment_len: 0,
            batch_index,
            batch_count: batch_count.max(1),
            lsn,
            expires_ms: op.expires_ms,
            value_len: op.value.len() as u32,
            next_block: 0,
        };
        // A FULL record must leave room for the SEAL that will end its block.
        // One that fits in an empty block but not in the room left opens a
        // new block, unless that would leave `SPLIT_ROOM_MIN_BYTES` of its
        // value's room unused: then it is split into FIRST and LAST.
        let fits_empty = total + SEAL_BYTES <= BLOCK_BYTES - BLOCK_HEADER_BYTES;
        let worth_splitting = room >= RECORD_HEADER_BYTES + op.key.len() + SPLIT_ROOM_MIN_BYTES;
        if total + SEAL_BYTES <= room || fits_empty && !worth_splitting {
            if total + SEAL_BYTES > room {
                self.open_block(table, plan, None, purpose)?;
            }
            header.fragment_len = (op.key.len() + op.value.len()) as u16;
            let (block, offset) = self.write_fragment(&header, &[op.key, op.value]);
            return Ok(Placed { lsn, block, offset, extents: vec![(block, total as u32)] });
        }
        // Fragmented: FIRST holds the key and as much value as fits.
        if room < RECORD_HEADER_BYTES + op.key.len() + 1 {
            self.open_block(table, plan, None, purpose)?;
        }
        let room = BLOCK_BYTES - self.active.as_ref().map_or(BLOCK_BYTES, |a| a.used);
        // FIRST takes what the block has left, but never the whole value: a
        // record just too big for the seal's room still ends in a LAST.
        let mut value_at = (room - RECORD_HEADER_BYTES - op.key.len()).min(op.value.len() - 1);
        let mut next = allocate(table, plan, purpose)?;
        header.kind = FragmentKind::First;
        header.fragment_len = (op.key.len() + value_at) as u16;
        header.next_block = next;
        let (block, offset) = self.write_fragment(&header, &[op.key, &op.value[..value_at]]);
        let mut extents = vec![(block, (RECORD_HEADER_BYTES + usize::from(header.fragment_len)) as u32)];
        header.key_len = 0;
        while value_at < op.value.len() {
            self.open_block(table, plan, Some(next), purpose)?;
            // MIDDLE fragments fill their block (they link onward); the LAST
            // one leaves room for the SEAL that may follow it.
            let remaining = op.value.len() - value_at;
            let fragment_max = BLOCK_BYTES - BLOCK_HEADER_BYTES - RECORD_HEADER_BYTES;
            let chunk =
                if remaining <= fragment_max - SEAL_BYTES { remaining } else { fragment_max.min(remaining - 1) };
            let last = value_at + chunk == op.value.len();
            header.kind = if last { FragmentKind::Last } else { FragmentKind::Middle };
            header.fragment_len = chunk as u16;
            header.next_block = if last { 0 } else { allocate(table, plan, purpose)? };
            let (frag_block, _) = self.write_fragment(&header, &[&op.value[value_at..value_at + chunk]]);
            extents.push((frag_block, (RECORD_HEADER_BYTES + chunk) as u32));
            value_at += chunk;
            next = header.next_block;
        }
        Ok(Placed { lsn, block, offset, extents })
    }

    /// Seals the active block and starts `block` (or a newly allocated one).
    fn open_block(
        &mut self,
        table: &mut BlockTable,
        plan: &mut Plan,
        block: Option<u32>,
        purpose: Purpose,
    ) -> Result<(), u64> {
        let (block, linked) = match block {
            Some(block) => (block, true),
            None => (allocate(table, plan, purpose)?, false),
        };
        if !linked {
            self.seal(block);
        }
        let generation = self.next_gen;
        self.next_gen += 1;
        table.set_use(block, BlockUse::Log { generation });
        let mut buf = vec![0u8; BLOCK_BYTES].into_boxed_slice();
        // The previous block is sealed now: record where it ends, so replay
        // can tell its zero tail from appends that were lost.
        let prev_used = self.active.as_ref().map_or(0, |a| a.used as u16);
        // The full-scan floor: every LOG block older than the oldest one in
        // use holds nothing a recovery needs (compaction/, docs/RECOVERY.md).
        let floor_gen = table.oldest_generation().unwrap_or(generation).min(generation);
        BlockHeader::log(generation, prev_used, floor_gen).encode_into(&mut buf);
        self.floor_gen = self.floor_gen.max(floor_gen);
        let fresh = Active { block, generation, buf, used: BLOCK_HEADER_BYTES, written: 0 };
        if let Some(old) = self.active.replace(fresh) {
            self.sealed.push(old);
        }
        Ok(())
    }

    /// Ends the active block with a SEAL naming `next`. Room for it was kept
    /// by every FULL record placed there; a block ending in a FIRST or
    /// MIDDLE fragment is linked by that fragment instead.
    fn seal(&mut self, next: u32) {
        let lsn = self.next_lsn - 1;
        let Some(active) = self.active.as_mut() else { return };
        let header = RecordHeader {
            kind: FragmentKind::Seal,
            flags: 0,
            key_len: 0,
            fragment_len: 0,
            batch_index: 0,
            batch_count: 1,
            lsn: lsn.max(1),
            expires_ms: 0,
            value_len: 0,
            next_block: next,
        };
        debug_assert!(active.used + SEAL_BYTES <= BLOCK_BYTES, "room for the seal is always kept");
        let end = active.used + SEAL_BYTES;
        header.encode_into(&[], &mut active.buf[active.used..end]);
        active.used = end;
    }

    fn write_fragment(&mut self, header: &RecordHeader, parts: &[&[u8]]) -> (u32, u32) {
        let active = self.active.as_mut().expect("a block is open before a fragment is written");
        let offset = active.used;
        let end = offset + header.fragment_bytes();
        header.encode_into(parts, &mut active.buf[offset..end]);
        active.used = end;
        (active.block, offset as u32)
    }

    fn roll_back(&mut self, table: &mut BlockTable, plan: Plan, saved: Saved) {
        for block in plan.allocated {
            table.free_now(block);
        }
        self.next_gen = saved.next_gen;
        self.next_lsn = saved.next_lsn;
        // The headers of the blocks given back are never written.
        self.floor_gen = saved.floor_gen;
        let mut candidates = self.sealed.split_off(saved.sealed).into_iter().chain(self.active.take());
        self.active = saved.active.and_then(|(block, used)| {
            let mut active = candidates.find(|a| a.block == block)?;
            active.buf[used..].fill(0);
            active.used = used;
            Some(active)
        });
    }
}

/// Blocks one `place` call allocated, freed again if it rolls back.
struct Plan {
    allocated: Vec<u32>,
}

/// The writer's state before a `place` call, for its roll back.
struct Saved {
    active: Option<(u32, usize)>,
    sealed: usize,
    next_gen: u64,
    next_lsn: u64,
    floor_gen: u64,
}

fn allocate(table: &mut BlockTable, plan: &mut Plan, purpose: Purpose) -> Result<u32, u64> {
    match table.allocate(purpose, BlockUse::Log { generation: 0 }) {
        Some(block) => {
            plan.allocated.push(block);
            Ok(block)
        }
        None => Err(plan.allocated.len() as u64 + 1),
    }
}

/// Writes what of `block` is not yet on storage. A never-written block goes
/// out whole, header and zero tail included.
fn write_block(storage: &dyn Storage, block: &mut Active) -> io::Result<u64> {
    let from = if block.written == 0 { 0 } else { block.written };
    let to = if block.written == 0 { BLOCK_BYTES } else { block.used };
    if to > from {
        storage.write_at(block_offset(block.block) + from as u64, &block.buf[from..to])?;
    }
    block.written = block.used;
    Ok((to - from) as u64)
}

#[cfg(test)]
mod tests {
    use super::SPLIT_ROOM_MIN_BYTES;
    use crate::format::record::{FragmentKind, RECORD_HEADER_BYTES, SEAL_BYTES};
    use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES};
    use crate::index::key_hash;
    use crate::index::lookup;
    use crate::options::{Options, SyncPolicy};
    use crate::storage::SimDisk;
    use crate::store::Store;
    use std::sync::Arc;

    /// Fills a fresh block so that `room` bytes are left in it, puts `key`
    /// with a value of `value_bytes`, reads it back, and returns the kind
    /// of its first fragment.
    fn first_kind_after_room(room: usize, key: &[u8], value_bytes: usize) -> FragmentKind {
        let options = Options { background: false, sync: SyncPolicy::None, ..Options::default() };
        let store = Store::create_on(Arc::new(SimDisk::new(1024 * 1024)), options).expect("create");
        let filler_bytes = BLOCK_BYTES - BLOCK_HEADER_BYTES - RECORD_HEADER_BYTES - 1 - room;
        store.put(b"f", &vec![1; filler_bytes]).expect("put the filler");
        let value: Vec<u8> = (0..value_bytes).map(|i| (i % 251) as u8).collect();
        store.put(key, &value).expect("put");
        assert_eq!(store.get(key).expect("get"), Some(value), "room {room}");
        let engine = &store.engine;
        let filler = lookup::find(&*engine.storage, &engine.index, b"f", key_hash(b"f")).current.expect("filler");
        assert_eq!(filler.entry.offset() as usize, BLOCK_HEADER_BYTES, "the filler opens its block");
        let found = lookup::find(&*engine.storage, &engine.index, key, key_hash(key)).current.expect("indexed");
        found.first.header.kind
    }

    #[test]
    fn a_record_that_fits_a_block_is_split_only_where_enough_room_is_left() {
        // The edges of SPLIT_ROOM_MIN_BYTES, a 1-byte LAST, and a 1 KB key.
        let room_to_split = RECORD_HEADER_BYTES + 1 + SPLIT_ROOM_MIN_BYTES;
        assert_eq!(first_kind_after_room(room_to_split, b"k", 3_000), FragmentKind::First);
        assert_eq!(first_kind_after_room(room_to_split - 1, b"k", 3_000), FragmentKind::Full);
        // Room for the record but not its SEAL: FIRST holds all the value
        // but one byte, and a 1-byte LAST follows in the next block.
        let total = RECORD_HEADER_BYTES + 1 + 1_000;
        assert_eq!(first_kind_after_room(total + SEAL_BYTES - 1, b"k", 1_000), FragmentKind::First);
        assert_eq!(first_kind_after_room(total + SEAL_BYTES, b"k", 1_000), FragmentKind::Full);
        let long_key = vec![b'x'; 1024];
        let room_to_split = RECORD_HEADER_BYTES + long_key.len() + SPLIT_ROOM_MIN_BYTES;
        assert_eq!(first_kind_after_room(room_to_split, &long_key, 2_500), FragmentKind::First);
        assert_eq!(first_kind_after_room(room_to_split - 1, &long_key, 2_500), FragmentKind::Full);
    }
}
