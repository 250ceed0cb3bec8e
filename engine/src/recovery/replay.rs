//! Replay of the LOG blocks written after a checkpoint, in generation order,
//! records in LSN order. The log's end is where the blocks stop, the first
//! record that does not verify, a missing generation, a record whose LSN goes
//! backwards, a large record missing a fragment, or a batch missing a member.
//! Everything from that point on is the cut tail.

use super::report::TailCut;
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::{FragmentKind, RECORD_HEADER_BYTES, RecordHeader, decode_fragment, is_clean_end};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, block_offset};
use crate::index::apply::{self, Order, Put, Update};
use crate::index::{Index, key_hash};
use crate::space::{BlockTable, BlockUse};
use crate::storage::Storage;

/// A record read back from the log, all fragments verified.
#[derive(Debug)]
struct Replayed {
    header: RecordHeader,
    key: Vec<u8>,
    block: u32,
    offset: u32,
    extents: Vec<(u32, u32)>,
    /// Next fragment's block while the record is incomplete.
    next_block: u32,
}

/// What replay found.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Block, generation and used bytes where appends continue.
    pub tail: Option<(u32, u64, usize)>,
    pub next_gen: u64,
    pub last_lsn: u64,
    pub cut: Option<TailCut>,
    /// LOG blocks after the cut: their headers must be zeroed.
    pub discard: Vec<u32>,
    pub blocks_replayed: u64,
    pub records_replayed: u64,
}

/// Where the log ends when it ends early: appends continue at `tail`.
struct Cut {
    tail: Option<(u32, u64, usize)>,
    at: (u32, u32),
    reason: String,
}

struct Replay<'a> {
    storage: &'a dyn Storage,
    index: &'a Index,
    table: &'a mut BlockTable,
    covered_lsn: u64,
    last_lsn: u64,
    open: Option<Replayed>,
    batch: Vec<Replayed>,
    records_replayed: u64,
}

/// Replays LOG blocks with generation >= `replay_gen` into `index` and `table`.
#[allow(clippy::too_many_arguments)]
pub fn replay(
    storage: &dyn Storage,
    headers: &[Option<BlockHeader>],
    orphans: &[(u32, u64)],
    replay_gen: u64,
    replay_offset: usize,
    covered_lsn: u64,
    index: &Index,
    table: &mut BlockTable,
) -> ReplayOutcome {
    let mut chain: Vec<(u64, u32)> = headers
        .iter()
        .enumerate()
        .filter_map(|(block, h)| match h {
            Some(h) if h.kind == BlockKind::Log && h.generation >= replay_gen => Some((h.generation, block as u32)),
            _ => None,
        })
        .collect();
    chain.sort_unstable();
    let mut replay = Replay {
        storage,
        index,
        table,
        covered_lsn,
        last_lsn: covered_lsn,
        open: None,
        batch: Vec::new(),
        records_replayed: 0,
    };
    let mut tail: Option<(u32, u64, usize)> = None;
    let mut cut: Option<Cut> = None;
    let mut blocks_replayed = 0;
    // The block the last one names as its successor (SEAL or FIRST/MIDDLE),
    // and where that SEAL sits (a cut at it must remove it).
    let mut named_next: Option<u32> = None;
    let mut seal_at: Option<(u32, usize)>;
    // Where the last block's bytes really end (SEAL included), for prev_used.
    let mut block_end = 0;
    let mut buf = vec![0u8; BLOCK_BYTES];
    'blocks: for (expected, &(generation, block)) in (replay_gen..).zip(&chain) {
        if generation != expected {
            let at = tail.map_or((block, 0), |(b, _, used)| (b, used as u32));
            cut = Some(Cut { tail, at, reason: format!("block of generation {expected} is missing") });
            break;
        }
        let header = headers[block as usize].expect("chain holds only blocks with valid headers");
        if let Some(named) = named_next.filter(|&named| named != block) {
            let at = tail.map_or((block, 0), |(b, _, o)| (b, o as u32));
            let reason = format!("the log names block {named} as next, but generation {generation} is block {block}");
            cut = Some(Cut { tail, at, reason });
            break;
        }
        if let Some((prev_block, _, _)) = tail.filter(|_| blocks_replayed > 0) {
            let used = block_end;
            if usize::from(header.prev_used) != used {
                let reason = format!(
                    "block of generation {} ends at byte {used}, but the next block says it held {} (lost appends)",
                    generation - 1,
                    header.prev_used
                );
                let at = tail.map_or((prev_block, used as u32), |(b, _, o)| (b, o as u32));
                cut = Some(Cut { tail, at, reason });
                break;
            }
        }
        if storage.read_at(block_offset(block), &mut buf).is_err() {
            cut = Some(Cut { tail, at: (block, 0), reason: "block could not be read".into() });
            break;
        }
        blocks_replayed += 1;
        replay.table.set_use(block, BlockUse::Log { generation });
        // The head block's records before replay_offset are the checkpoint's:
        // they are never parsed again, so damage to one of them cannot be
        // mistaken for the end of the log (and cut, and zeroed).
        let mut offset = if generation == replay_gen {
            replay_offset.clamp(BLOCK_HEADER_BYTES, BLOCK_BYTES)
        } else {
            BLOCK_HEADER_BYTES
        };
        named_next = None;
        seal_at = None;
        loop {
            if offset + RECORD_HEADER_BYTES > BLOCK_BYTES || is_clean_end(&buf[offset..]) {
                named_next = named_next.or(replay.open.as_ref().map(|open| open.next_block));
                if replay.open.as_ref().is_some_and(|open| open.next_block == block && offset == BLOCK_HEADER_BYTES) {
                    // Reported below as an unfinished record.
                    break 'blocks;
                }
                // Appends continue at the SEAL, if any: a cut here removes it.
                tail = Some((block, generation, seal_at.map_or(offset, |(_, at)| at)));
                block_end = offset;
                break;
            }
            let header = match decode_fragment(&buf[offset..]) {
                Ok(header) => header,
                Err(reason) => {
                    cut = Some(Cut {
                        tail: Some((block, generation, offset)),
                        at: (block, offset as u32),
                        reason: reason.into(),
                    });
                    break 'blocks;
                }
            };
            if seal_at.is_some() {
                let tail = seal_at.map(|(b, o)| (b, generation, o));
                cut = Some(Cut { tail, at: (block, offset as u32), reason: "record after a SEAL".into() });
                break 'blocks;
            }
            if header.kind == FragmentKind::Seal {
                named_next = Some(header.next_block);
                seal_at = Some((block, offset));
                offset += header.fragment_bytes();
                continue;
            }
            if let Err(reason) =
                replay.take(block, offset as u32, &header, &buf[offset..offset + header.fragment_bytes()])
            {
                cut = Some(Cut {
                    tail: Some((block, generation, offset)),
                    at: (block, offset as u32),
                    reason: reason.into(),
                });
                break 'blocks;
            }
            offset += header.fragment_bytes();
        }
    }
    // The last block names a successor that is not there: its header was
    // destroyed or its first write torn. The log ends before the SEAL.
    if let (None, Some(named)) = (&cut, named_next) {
        let at = tail.map_or((named, 0), |(b, _, o)| (b, o as u32));
        let reason = format!("block {named}, named as the next block, has no valid header");
        cut = Some(Cut { tail, at, reason });
    }
    // A record or batch still open at the end never completed: the log ends
    // at its first record.
    let unfinished =
        replay.open.as_ref().map(|r| (r.block, r.offset)).or(replay.batch.first().map(|r| (r.block, r.offset)));
    if let Some((block, offset)) = unfinished {
        // Always at or before any cut found later in the log.
        let generation = gen_of(headers, block);
        cut = Some(Cut {
            tail: Some((block, generation, offset as usize)),
            at: (block, offset),
            reason: "large record or batch is incomplete".into(),
        });
    }
    let records_replayed = replay.records_replayed;
    let last_lsn = replay.last_lsn;
    // A block whose header does not verify but whose records continue past
    // the end: the log did go on (a damaged header, or a torn one), so this
    // end is a cut and those blocks are discarded with it.
    let beyond: Vec<u32> = orphans.iter().filter(|(_, lsn)| *lsn > last_lsn).map(|&(block, _)| block).collect();
    if cut.is_none()
        && let Some(&first) = beyond.first()
    {
        let at = tail.map_or((first, 0), |(b, _, used)| (b, used as u32));
        let reason = format!("block {first} continues the log but its header does not verify");
        cut = Some(Cut { tail, at, reason });
    }
    let mut outcome =
        finish(storage, replay_gen, chain, tail, cut, blocks_replayed, records_replayed, last_lsn, replay.table);
    if let Some(cut) = outcome.cut.as_mut() {
        cut.blocks_discarded += beyond.len() as u64;
        outcome.discard.extend(beyond);
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
fn finish(
    storage: &dyn Storage,
    replay_gen: u64,
    chain: Vec<(u64, u32)>,
    tail: Option<(u32, u64, usize)>,
    cut: Option<Cut>,
    blocks_replayed: u64,
    records_replayed: u64,
    last_lsn: u64,
    table: &mut BlockTable,
) -> ReplayOutcome {
    let (tail, cut) = match cut {
        None => (tail, None),
        Some(Cut { tail, at: (block, offset), reason }) => {
            (tail, Some(TailCut { block, offset, reason, records_discarded: 0, blocks_discarded: 0 }))
        }
    };
    let tail_gen = tail.map_or(replay_gen.saturating_sub(1), |(_, generation, _)| generation);
    let discard: Vec<u32> =
        chain.iter().filter(|(generation, _)| *generation > tail_gen).map(|&(_, block)| block).collect();
    for &block in &discard {
        table.set_use(block, BlockUse::Free);
    }
    let cut = cut.map(|mut cut| {
        cut.blocks_discarded = discard.len() as u64;
        cut.records_discarded = count_discarded(storage, tail, &discard);
        cut
    });
    let next_gen = tail.map_or(replay_gen, |(_, generation, _)| generation + 1);
    ReplayOutcome { tail, next_gen, last_lsn, cut, discard, blocks_replayed, records_replayed }
}

fn gen_of(headers: &[Option<BlockHeader>], block: u32) -> u64 {
    headers[block as usize].map_or(0, |h| h.generation)
}

/// Records that verify after the cut (reported, then discarded).
fn count_discarded(storage: &dyn Storage, tail: Option<(u32, u64, usize)>, discard: &[u32]) -> u64 {
    let starts =
        tail.map(|(block, _, used)| (block, used)).into_iter().chain(discard.iter().map(|&b| (b, BLOCK_HEADER_BYTES)));
    let mut buf = vec![0u8; BLOCK_BYTES];
    let mut count = 0;
    for (block, mut offset) in starts {
        if storage.read_at(block_offset(block), &mut buf).is_err() {
            continue;
        }
        while offset + RECORD_HEADER_BYTES <= BLOCK_BYTES {
            match decode_fragment(&buf[offset..]) {
                Ok(h) => {
                    count += u64::from(matches!(h.kind, FragmentKind::Full | FragmentKind::First));
                    offset += h.fragment_bytes();
                }
                Err(_) => break,
            }
        }
    }
    count
}

impl Replay<'_> {
    /// Takes one verified fragment in log order.
    fn take(&mut self, block: u32, offset: u32, header: &RecordHeader, bytes: &[u8]) -> Result<(), &'static str> {
        match header.kind {
            FragmentKind::Middle | FragmentKind::Last => {
                let open = self.open.as_mut().ok_or("fragment without its FIRST")?;
                if open.next_block != block || offset as usize != BLOCK_HEADER_BYTES || open.header.lsn != header.lsn {
                    return Err("fragment does not continue the open record");
                }
                open.extents.push((block, bytes.len() as u32));
                open.next_block = header.next_block;
                if header.kind == FragmentKind::Last {
                    let record = self.open.take().expect("checked above");
                    self.complete(record)?;
                }
                Ok(())
            }
            FragmentKind::Seal => Err("SEAL handled by the block loop"),
            FragmentKind::Full | FragmentKind::First => {
                if self.open.is_some() {
                    return Err("record interrupts a large record");
                }
                // Records at or below covered_lsn are the checkpoint's, at the
                // start of the head block; once one newer record is seen, no
                // lsn may go backwards.
                let applied_any = self.last_lsn > self.covered_lsn;
                if applied_any && header.lsn <= self.last_lsn {
                    return Err("record lsn goes backwards (stale bytes)");
                }
                let key = bytes[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + usize::from(header.key_len)].to_vec();
                let record = Replayed {
                    header: *header,
                    key,
                    block,
                    offset,
                    extents: vec![(block, bytes.len() as u32)],
                    next_block: header.next_block,
                };
                if header.kind == FragmentKind::First {
                    self.open = Some(record);
                    Ok(())
                } else {
                    self.complete(record)
                }
            }
        }
    }

    /// A whole record: covered ones are skipped, batch members wait for
    /// their batch, the rest are applied.
    fn complete(&mut self, record: Replayed) -> Result<(), &'static str> {
        let lsn = record.header.lsn;
        if lsn <= self.covered_lsn {
            return Ok(());
        }
        if lsn <= self.last_lsn {
            return Err("record lsn goes backwards (stale bytes)");
        }
        let count = record.header.batch_count;
        if count == 1 {
            if !self.batch.is_empty() {
                return Err("batch interrupted by another record");
            }
            self.last_lsn = lsn;
            self.apply(record);
            return Ok(());
        }
        let in_order = usize::from(record.header.batch_index) == self.batch.len()
            && self.batch.last().is_none_or(|prev| prev.header.lsn + 1 == lsn && prev.header.batch_count == count);
        if !in_order {
            return Err("batch member out of order");
        }
        self.last_lsn = lsn;
        let last = record.header.batch_index + 1 == count;
        self.batch.push(record);
        if last {
            for member in std::mem::take(&mut self.batch) {
                self.apply(member);
            }
        }
        Ok(())
    }

    /// Applies a record to the index and the live-byte accounting, unless the
    /// index already holds a newer version of its key (`apply::Order`).
    fn apply(&mut self, record: Replayed) {
        self.records_replayed += 1;
        let put = (!record.header.is_tombstone()).then_some(Put {
            block: record.block,
            offset: record.offset,
            extents: &record.extents,
        });
        let update = Update { key: &record.key, hash: key_hash(&record.key), lsn: record.header.lsn, put };
        apply::apply(self.storage, self.index, self.table, update, Order::IfNewer);
    }
}
