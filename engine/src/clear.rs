//! Deleting every key at once (FLUSHALL, FLUSHDB), all or nothing across a
//! crash.
//!
//! The commit point is a checkpoint of an empty index
//! (`Checkpointer::write_cleared`): its capture, under the log lock,
//! empties the index, the live bytes and the TTL table, and until its slot
//! header is durable recovery uses the previous checkpoint and replays the
//! log as it was, every key there; once it is, recovery starts from an
//! empty index and replays only what was written after the clear. No new
//! record kind: the format is unchanged.
//!
//! Then a tombstone for each key that was there, in batches, and a sync,
//! for the one recovery path that uses no checkpoint: a full scan (both
//! slots unusable, or salvage) would otherwise find the keys' records,
//! which stay in their blocks until compaction frees them. A crash before
//! the sync leaves that path (after damage to both slots, not after a crash
//! alone) and kv-fsck finding some keys' records: docs/RECOVERY.md, "Known
//! limits". A key written again since the clear gets no tombstone (its new
//! record is its newest); the check and the append are under the log lock.

use crate::error::{Error, Result};
use crate::index::key_hash;
use crate::index::lookup;
use crate::index::read::read_fragment;
use crate::limits::BATCH_OPS_MAX;
use crate::space::{BlockTable, Purpose};
use crate::store::Store;
use crate::writer::Op;
use rayon::prelude::*;

/// Reclaim-and-retry rounds a batch of tombstones gets when it finds no room.
const NO_SPACE_RETRIES: u32 = 4;

impl Store {
    /// Deletes every key; returns how many the index held (expired ones not
    /// yet removed included). Durable when it returns: a crash before
    /// leaves every key, after, none. A failure once the store was emptied
    /// in memory poisons it (the file still holds the keys). Writers wait
    /// through the capture, which reads every key back (for its tombstone),
    /// and for one batch of tombstones at a time after it.
    pub fn clear(&self) -> Result<u64> {
        let engine = &*self.engine;
        engine.writable()?;
        let storage = &*engine.storage;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut removed = 0;
        let mut empty = |table: &mut BlockTable| {
            let entries = engine.index.entries();
            // A record that cannot be read has no key to tombstone; the
            // checkpoint path forgets it all the same.
            keys = entries
                .par_iter()
                .filter_map(|entry| {
                    let first = read_fragment(storage, entry.block, entry.offset()).ok()?;
                    (first.header.lsn == entry.lsn()).then(|| first.key().to_vec())
                })
                .collect();
            for &entry in &entries {
                engine.index.remove(entry);
            }
            table.clear_live();
            engine.ttl.rebuild(Vec::new());
            removed = entries.len() as u64;
        };
        let info = engine.checkpointer.write_cleared(&engine.checkpoint_parts(), &mut empty)?;
        tracing::info!(keys = removed, checkpoint = info.id, "store cleared");
        // Durability: synced before the return, so that once a clear has
        // returned a full scan and kv-fsck agree with the checkpoint.
        if let Err(err) = self.tombstone_all(&keys).and_then(|()| engine.writer.sync_now(storage)) {
            tracing::warn!(
                "store cleared, but tombstones for a full scan were not all written ({err}); \
                 a recovery without a checkpoint may find some keys again"
            );
        }
        Ok(removed)
    }

    /// Tombstones for `keys`, but for those written again since the clear.
    fn tombstone_all(&self, keys: &[Vec<u8>]) -> Result<()> {
        let engine = &*self.engine;
        for chunk in keys.chunks(BATCH_OPS_MAX) {
            let mut attempts = 0;
            loop {
                let mut log = engine.writer.lock();
                let ops: Vec<Op<'_>> = chunk
                    .iter()
                    .filter(|key| lookup::find(&*engine.storage, &engine.index, key, key_hash(key)).current.is_none())
                    .map(|key| Op { key, value: &[], tombstone: true, expires_ms: 0 })
                    .collect();
                if ops.is_empty() {
                    break;
                }
                match engine.writer.append_locked(engine.append_parts(), &mut log, &ops, Purpose::Delete) {
                    Ok(_) => break,
                    Err(Error::NoSpace { needed_blocks, .. }) if attempts < NO_SPACE_RETRIES => {
                        drop(log);
                        attempts += 1;
                        engine.compaction_parts().reclaim(needed_blocks)?;
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }
}
