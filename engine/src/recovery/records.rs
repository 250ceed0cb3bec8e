//! Replay's records: fragments joined into records, batches held until
//! whole, and each whole record applied through `index::apply`.

use crate::format::BLOCK_HEADER_BYTES;
use crate::format::record::{FragmentKind, RECORD_HEADER_BYTES, RecordHeader};
use crate::index::apply::{self, Order, Put, Update};
use crate::index::{Index, key_hash};
use crate::space::BlockTable;
use crate::storage::Storage;

/// A record read back from the log, all fragments verified.
#[derive(Debug)]
pub(super) struct Replayed {
    header: RecordHeader,
    key: Vec<u8>,
    pub block: u32,
    pub offset: u32,
    extents: Vec<(u32, u32)>,
    /// Next fragment's block while the record is incomplete.
    pub next_block: u32,
}

/// Records in log order, as replay reads them.
pub(super) struct Replay<'a> {
    pub storage: &'a dyn Storage,
    pub index: &'a Index,
    pub table: &'a mut BlockTable,
    /// Records at or below it are the checkpoint's.
    pub covered_lsn: u64,
    /// The newest record taken.
    pub last_lsn: u64,
    /// A large record whose LAST fragment is still to come.
    pub open: Option<Replayed>,
    /// The members of a batch taken so far.
    pub batch: Vec<Replayed>,
    pub records_replayed: u64,
}

impl Replay<'_> {
    /// Takes one verified fragment in log order.
    pub fn take(&mut self, block: u32, offset: u32, header: &RecordHeader, bytes: &[u8]) -> Result<(), &'static str> {
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
            expires_ms: record.header.expires_ms,
        });
        let update = Update { key: &record.key, hash: key_hash(&record.key), lsn: record.header.lsn, put };
        // No TTL table yet: the engine builds it from the index replay ends with.
        apply::apply(self.storage, self.index, self.table, None, update, Order::IfNewer);
    }
}
