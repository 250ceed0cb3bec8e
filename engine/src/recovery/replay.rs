//! Replay of the LOG blocks written after a checkpoint, in generation order,
//! records in LSN order. The log's end is where the blocks stop, the first
//! record that does not verify, a missing generation, a record whose LSN goes
//! backwards, a large record missing a fragment, or a batch missing a member.
//! Everything from that point on is the cut tail.
//!
//! Here: the walk over the blocks and where the log ends; `records`: what
//! becomes of each record.

use super::Blocks;
use super::records::Replay;
use super::report::TailCut;
use crate::format::block::{BlockHeader, BlockKind};
use crate::format::record::{FragmentKind, RECORD_HEADER_BYTES, decode_fragment, is_clean_end};
use crate::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, block_offset};
use crate::index::Index;
use crate::space::{BlockTable, BlockUse};
use crate::storage::Storage;

/// A place in the log: a block, its generation, a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub block: u32,
    pub generation: u64,
    pub offset: usize,
}

impl Position {
    fn at(self) -> At {
        At { block: self.block, offset: self.offset as u32 }
    }
}

/// Where a cut is reported: a block and a byte offset in it.
#[derive(Debug, Clone, Copy)]
struct At {
    block: u32,
    offset: u32,
}

/// Where replay starts, from the checkpoint's slot header.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// The first generation to replay.
    pub replay_gen: u64,
    /// Where in the `replay_gen` block the records not covered begin.
    pub replay_offset: usize,
    pub covered_lsn: u64,
}

/// What replay found.
#[derive(Debug)]
pub struct ReplayOutcome {
    /// Where appends continue (the used bytes of the tail block).
    pub tail: Option<Position>,
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
    tail: Option<Position>,
    at: At,
    reason: String,
}

impl Cut {
    /// A cut at `here`, where appends continue.
    fn at(here: Position, reason: String) -> Cut {
        Cut { tail: Some(here), at: here.at(), reason }
    }
}

/// Why the walk over the blocks stopped before the last one.
enum Stop {
    Cut(Cut),
    /// A record is still open where its next fragment should start:
    /// reported by `end_cut` as an unfinished record.
    Unfinished,
}

/// The walk over the blocks after the checkpoint.
struct Walk<'a> {
    storage: &'a dyn Storage,
    headers: &'a [Option<BlockHeader>],
    start: Start,
    records: Replay<'a>,
    /// Where appends continue: the end of the last block walked (at its
    /// SEAL, if it has one).
    tail: Option<Position>,
    /// The block the last one names as its successor (SEAL or FIRST/MIDDLE).
    named_next: Option<u32>,
    /// Where the last block's bytes really end (SEAL included), for prev_used.
    block_end: usize,
    blocks_replayed: u64,
    buf: Vec<u8>,
}

/// Replays LOG blocks with generation >= `start.replay_gen` into `index`
/// and `table`.
pub fn replay(
    storage: &dyn Storage,
    blocks: Blocks<'_>,
    start: Start,
    index: &Index,
    table: &mut BlockTable,
) -> ReplayOutcome {
    let chain = log_chain(blocks.headers, start.replay_gen);
    let records = Replay {
        storage,
        index,
        table,
        covered_lsn: start.covered_lsn,
        last_lsn: start.covered_lsn,
        open: None,
        batch: Vec::new(),
        records_replayed: 0,
    };
    let mut walk = Walk {
        storage,
        headers: blocks.headers,
        start,
        records,
        tail: None,
        named_next: None,
        block_end: 0,
        blocks_replayed: 0,
        buf: vec![0u8; BLOCK_BYTES],
    };
    let mut cut = None;
    for (expected, &(generation, block)) in (start.replay_gen..).zip(&chain) {
        match walk.block(expected, generation, block) {
            Ok(()) => {}
            Err(Stop::Cut(found)) => {
                cut = Some(found);
                break;
            }
            Err(Stop::Unfinished) => break,
        }
    }
    let cut = walk.end_cut(cut);
    let (cut, beyond) = walk.orphans_cut(blocks.orphans, cut);
    walk.finish(chain, cut, beyond)
}

/// The LOG blocks of generation >= `replay_gen`, as (generation, block),
/// in generation order.
fn log_chain(headers: &[Option<BlockHeader>], replay_gen: u64) -> Vec<(u64, u32)> {
    let mut chain: Vec<(u64, u32)> = headers
        .iter()
        .enumerate()
        .filter_map(|(block, h)| match h {
            Some(h) if h.kind == BlockKind::Log && h.generation >= replay_gen => Some((h.generation, block as u32)),
            _ => None,
        })
        .collect();
    chain.sort_unstable();
    chain
}

impl Walk<'_> {
    /// Replays one block, the `expected` generation of the chain.
    fn block(&mut self, expected: u64, generation: u64, block: u32) -> Result<(), Stop> {
        self.check_link(expected, generation, block)?;
        if self.storage.read_at(block_offset(block), &mut self.buf).is_err() {
            let at = At { block, offset: 0 };
            return Err(Stop::Cut(Cut { tail: self.tail, at, reason: "block could not be read".into() }));
        }
        self.blocks_replayed += 1;
        self.records.table.set_use(block, BlockUse::Log { generation });
        // The head block's records before replay_offset are the checkpoint's:
        // they are never parsed again, so damage to one of them cannot be
        // mistaken for the end of the log (and cut, and zeroed).
        let from = if generation == self.start.replay_gen {
            self.start.replay_offset.clamp(BLOCK_HEADER_BYTES, BLOCK_BYTES)
        } else {
            BLOCK_HEADER_BYTES
        };
        self.records_of(Position { block, generation, offset: from })
    }

    /// Whether `block` continues the log: the generation expected, the
    /// block the previous one named, and that block ending where this one
    /// says it did.
    fn check_link(&self, expected: u64, generation: u64, block: u32) -> Result<(), Stop> {
        let cut = |reason: String| {
            let at = self.tail.map_or(At { block, offset: 0 }, Position::at);
            Err(Stop::Cut(Cut { tail: self.tail, at, reason }))
        };
        if generation != expected {
            return cut(format!("block of generation {expected} is missing"));
        }
        let header = self.headers[block as usize].expect("chain holds only blocks with valid headers");
        if let Some(named) = self.named_next.filter(|&named| named != block) {
            return cut(format!("the log names block {named} as next, but generation {generation} is block {block}"));
        }
        let used = self.block_end;
        if self.tail.is_some() && self.blocks_replayed > 0 && usize::from(header.prev_used) != used {
            return cut(format!(
                "block of generation {} ends at byte {used}, but the next block says it held {} (lost appends)",
                generation - 1,
                header.prev_used
            ));
        }
        Ok(())
    }

    /// The fragments of the block in `self.buf` from `here` on.
    fn records_of(&mut self, mut here: Position) -> Result<(), Stop> {
        self.named_next = None;
        let mut seal_at: Option<usize> = None;
        loop {
            let offset = here.offset;
            if offset + RECORD_HEADER_BYTES > BLOCK_BYTES || is_clean_end(&self.buf[offset..]) {
                return self.block_ends(here, seal_at);
            }
            let header =
                decode_fragment(&self.buf[offset..]).map_err(|reason| Stop::Cut(Cut::at(here, reason.into())))?;
            if let Some(seal) = seal_at {
                let tail = Some(Position { offset: seal, ..here });
                return Err(Stop::Cut(Cut { tail, at: here.at(), reason: "record after a SEAL".into() }));
            }
            let bytes = header.fragment_bytes();
            if header.kind == FragmentKind::Seal {
                self.named_next = Some(header.next_block);
                seal_at = Some(offset);
            } else {
                let fragment = &self.buf[offset..offset + bytes];
                self.records
                    .take(here.block, offset as u32, &header, fragment)
                    .map_err(|reason| Stop::Cut(Cut::at(here, reason.into())))?;
            }
            here.offset += bytes;
        }
    }

    /// The block's records end at `end` (a SEAL at `seal_at` before it).
    fn block_ends(&mut self, end: Position, seal_at: Option<usize>) -> Result<(), Stop> {
        let open_next = self.records.open.as_ref().map(|open| open.next_block);
        self.named_next = self.named_next.or(open_next);
        if open_next == Some(end.block) && end.offset == BLOCK_HEADER_BYTES {
            return Err(Stop::Unfinished);
        }
        // Appends continue at the SEAL, if any: a cut here removes it.
        self.tail = Some(Position { offset: seal_at.unwrap_or(end.offset), ..end });
        self.block_end = end.offset;
        Ok(())
    }

    /// The cut at the end of the walk: a named successor that is not
    /// there, or a record or batch still open.
    fn end_cut(&self, mut cut: Option<Cut>) -> Option<Cut> {
        // The last block names a successor that is not there: its header was
        // destroyed or its first write torn. The log ends before the SEAL.
        if let (None, Some(named)) = (&cut, self.named_next) {
            let at = self.tail.map_or(At { block: named, offset: 0 }, Position::at);
            let reason = format!("block {named}, named as the next block, has no valid header");
            cut = Some(Cut { tail: self.tail, at, reason });
        }
        // A record or batch still open at the end never completed: the log
        // ends at its first record (always at or before any cut found later).
        let records = &self.records;
        let unfinished = records.open.as_ref().or(records.batch.first()).map(|r| (r.block, r.offset));
        if let Some((block, offset)) = unfinished {
            let here = Position { block, generation: gen_of(self.headers, block), offset: offset as usize };
            cut = Some(Cut::at(here, "large record or batch is incomplete".into()));
        }
        cut
    }

    /// Blocks whose header does not verify but whose records continue past
    /// the end: the log did go on (a damaged header, or a torn one), so this
    /// end is a cut and those blocks are discarded with it.
    fn orphans_cut(&self, orphans: &[(u32, u64)], mut cut: Option<Cut>) -> (Option<Cut>, Vec<u32>) {
        let last_lsn = self.records.last_lsn;
        let beyond: Vec<u32> = orphans.iter().filter(|(_, lsn)| *lsn > last_lsn).map(|&(block, _)| block).collect();
        if cut.is_none()
            && let Some(&first) = beyond.first()
        {
            let at = self.tail.map_or(At { block: first, offset: 0 }, Position::at);
            let reason = format!("block {first} continues the log but its header does not verify");
            cut = Some(Cut { tail: self.tail, at, reason });
        }
        (cut, beyond)
    }

    /// The outcome: blocks after the tail freed, the cut reported with what
    /// it discards.
    fn finish(self, chain: Vec<(u64, u32)>, cut: Option<Cut>, beyond: Vec<u32>) -> ReplayOutcome {
        let replay_gen = self.start.replay_gen;
        let (tail, cut) = match cut {
            None => (self.tail, None),
            Some(Cut { tail, at, reason }) => {
                let cut =
                    TailCut { block: at.block, offset: at.offset, reason, records_discarded: 0, blocks_discarded: 0 };
                (tail, Some(cut))
            }
        };
        let tail_gen = tail.map_or(replay_gen.saturating_sub(1), |tail| tail.generation);
        let mut discard: Vec<u32> =
            chain.iter().filter(|(generation, _)| *generation > tail_gen).map(|&(_, block)| block).collect();
        for &block in &discard {
            self.records.table.set_use(block, BlockUse::Free);
        }
        let cut = cut.map(|mut cut| {
            cut.blocks_discarded = discard.len() as u64 + beyond.len() as u64;
            cut.records_discarded = count_discarded(self.storage, tail, &discard);
            cut
        });
        if cut.is_some() {
            discard.extend(beyond);
        }
        ReplayOutcome {
            tail,
            next_gen: tail.map_or(replay_gen, |tail| tail.generation + 1),
            last_lsn: self.records.last_lsn,
            cut,
            discard,
            blocks_replayed: self.blocks_replayed,
            records_replayed: self.records.records_replayed,
        }
    }
}

fn gen_of(headers: &[Option<BlockHeader>], block: u32) -> u64 {
    headers[block as usize].map_or(0, |h| h.generation)
}

/// Records that verify after the cut (reported, then discarded).
fn count_discarded(storage: &dyn Storage, tail: Option<Position>, discard: &[u32]) -> u64 {
    let starts =
        tail.map(|tail| (tail.block, tail.offset)).into_iter().chain(discard.iter().map(|&b| (b, BLOCK_HEADER_BYTES)));
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
