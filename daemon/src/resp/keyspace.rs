//! What RESP commands read and write through: the store itself, or a
//! transaction's view of it. Each command is written once against
//! `Keyspace`; run alone it reaches the store directly (each call one of
//! the engine's atomic operations), run inside EXEC — or as one of the
//! commands that read several keys or read and then write (`Spec::isolated`)
//! — it reaches a `Tx`, which reads through its own pending writes and
//! applies them all at the end as one of the engine's atomic batches: all
//! or none, even across a crash.
//!
//! Expiry times here are absolute, in milliseconds since the Unix epoch;
//! 0 means none.

use crate::watches::Watches;
use blockkv_engine::limits::{BATCH_BYTES_MAX, BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use blockkv_engine::{BatchOp, Error, KeyTtl, PutCondition, Store, parse_integer};
use std::collections::HashMap;
use std::time::Duration;

pub use blockkv_engine::Entry;

/// The engine's own size check, made when a write is staged rather than
/// when the batch is applied, so the command that broke it is the one refused.
fn check_size(what: &'static str, actual: usize, limit: usize) -> Result<(), Error> {
    if actual > limit {
        return Err(Error::TooLarge { what, actual: actual as u64, limit: limit as u64 });
    }
    Ok(())
}

pub trait Keyspace {
    fn now_ms(&self) -> u64;

    fn entry(&mut self, key: &[u8]) -> Result<Option<Entry>, Error>;

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entry(key)?.map(|entry| entry.value))
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.entry(key)?.is_some())
    }

    /// None: no such key; Some(0): no expiry; else when it expires.
    fn expires_ms(&mut self, key: &[u8]) -> Result<Option<u64>, Error> {
        Ok(self.entry(key)?.map(|entry| entry.expires_ms))
    }

    /// Stores `value`; an expiry already past removes the key instead.
    fn put(&mut self, key: &[u8], value: &[u8], expires_ms: u64) -> Result<(), Error>;

    /// Removes `key`; true if it held a live value.
    fn remove(&mut self, key: &[u8]) -> Result<bool, Error>;

    fn put_if(&mut self, key: &[u8], value: &[u8], expires_ms: u64, condition: PutCondition) -> Result<bool, Error> {
        let present = self.exists(key)?;
        if present != (condition == PutCondition::IfPresent) {
            return Ok(false);
        }
        self.put(key, value, expires_ms)?;
        Ok(true)
    }

    /// Adds `delta` to the integer under `key` (missing: 0), keeping its expiry.
    fn incr_by(&mut self, key: &[u8], delta: i64) -> Result<i64, Error> {
        let (current, expires_ms) = match self.entry(key)? {
            Some(entry) => (parse_integer(&entry.value).ok_or(Error::NotAnInteger)?, entry.expires_ms),
            None => (0, 0),
        };
        let sum = current.checked_add(delta).ok_or(Error::Overflow)?;
        self.put(key, sum.to_string().as_bytes(), expires_ms)?;
        Ok(sum)
    }

    /// Gives an existing key a new expiry (0: none); false if it is absent.
    fn set_expiry(&mut self, key: &[u8], expires_ms: u64) -> Result<bool, Error> {
        match self.entry(key)? {
            Some(entry) => {
                self.put(key, &entry.value, expires_ms)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Every pair, all or none (MSET).
    fn put_all(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), Error>;

    /// Keys in the store, as DBSIZE counts them.
    fn key_count(&self) -> u64;

    /// Removes every key (FLUSHALL); how many there were.
    fn clear(&mut self) -> Result<u64, Error>;

    /// Whether a key the store's walk found is there in this view.
    fn visible(&mut self, _key: &[u8]) -> bool {
        true
    }

    /// Live keys of this view that a walk of the store cannot show (a
    /// transaction's staged puts).
    fn staged_live(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// The store itself: each call is one of the engine's atomic operations.
pub struct Direct<'a> {
    pub store: &'a Store,
    pub watches: &'a Watches,
}

impl Keyspace for Direct<'_> {
    fn now_ms(&self) -> u64 {
        self.store.now_ms()
    }

    fn entry(&mut self, key: &[u8]) -> Result<Option<Entry>, Error> {
        self.store.entry(key)
    }

    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.store.get(key)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool, Error> {
        self.store.exists(key)
    }

    fn expires_ms(&mut self, key: &[u8]) -> Result<Option<u64>, Error> {
        let now = self.now_ms();
        Ok(match self.store.ttl(key)? {
            KeyTtl::Missing => None,
            KeyTtl::Persistent => Some(0),
            KeyTtl::ExpiresInMs(left) => Some(now + left.max(1)),
        })
    }

    fn put(&mut self, key: &[u8], value: &[u8], expires_ms: u64) -> Result<(), Error> {
        self.store.put_at(key, value, expires_ms)?;
        self.watches.touch(key);
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, Error> {
        let removed = self.store.delete(key)?;
        if removed {
            self.watches.touch(key);
        }
        Ok(removed)
    }

    fn put_if(&mut self, key: &[u8], value: &[u8], expires_ms: u64, condition: PutCondition) -> Result<bool, Error> {
        // The engine's conditional put takes a time to live; EX and PX give one.
        let ttl = match expires_ms {
            0 => None,
            at => Some(Duration::from_millis(at.saturating_sub(self.now_ms()).max(1))),
        };
        let done = self.store.put_if(key, value, ttl, condition)?;
        if done {
            self.watches.touch(key);
        }
        Ok(done)
    }

    fn incr_by(&mut self, key: &[u8], delta: i64) -> Result<i64, Error> {
        let sum = self.store.incr_by(key, delta)?;
        self.watches.touch(key);
        Ok(sum)
    }

    fn set_expiry(&mut self, key: &[u8], expires_ms: u64) -> Result<bool, Error> {
        let done = self.store.expire_at(key, expires_ms)?;
        if done {
            self.watches.touch(key);
        }
        Ok(done)
    }

    fn put_all(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), Error> {
        self.store.put_all(pairs)?;
        pairs.iter().for_each(|(key, _)| self.watches.touch(key));
        Ok(())
    }

    fn key_count(&self) -> u64 {
        self.store.key_count()
    }

    fn clear(&mut self) -> Result<u64, Error> {
        // Run alone (FLUSHALL is `Isolation::Alone`): what exists now is what the clear removes.
        self.watches.touch_where(|key| self.store.exists(key).unwrap_or(true));
        // All or nothing across a crash: the engine's commit point is one checkpoint.
        self.store.clear()
    }
}

/// A transaction's view: reads see its own writes first; `commit` applies
/// them as one batch. Run under the exclusive side of `Context::isolation`,
/// so what it read is still so when it commits.
pub struct Tx<'a> {
    store: &'a Store,
    now_ms: u64,
    /// Each key written: its final entry, or None if removed.
    pending: HashMap<Vec<u8>, Option<Entry>>,
    /// Keys in the order first written, so the batch is deterministic.
    order: Vec<Vec<u8>>,
    /// FLUSHALL ran: keys not written since are gone.
    cleared: bool,
    /// Keys written before a FLUSHALL in this transaction: changed for
    /// WATCH though the flush dropped their writes.
    flushed_writes: Vec<Vec<u8>>,
}

impl<'a> Tx<'a> {
    pub fn new(store: &'a Store) -> Tx<'a> {
        Tx {
            store,
            now_ms: store.now_ms(),
            pending: HashMap::new(),
            order: Vec::new(),
            cleared: false,
            flushed_writes: Vec::new(),
        }
    }

    fn stage(&mut self, key: &[u8], entry: Option<Entry>) {
        if self.pending.insert(key.to_vec(), entry).is_none() {
            self.order.push(key.to_vec());
        }
    }

    /// Applies every staged write as one atomic batch, then marks the keys
    /// changed for WATCH. Err: nothing was applied (too many writes for one
    /// batch, no space, …).
    pub fn commit(self, watches: &Watches) -> Result<(), Error> {
        // The batch's limits are checked before a FLUSHALL in the transaction
        // commits, so that a refusal applies nothing at all.
        if self.order.len() > BATCH_OPS_MAX {
            return Err(Error::TooLarge {
                what: "transaction (keys written)",
                actual: self.order.len() as u64,
                limit: BATCH_OPS_MAX as u64,
            });
        }
        let bytes: usize = self
            .order
            .iter()
            .map(|key| key.len() + self.pending[key].as_ref().map_or(0, |entry| entry.value.len()))
            .sum();
        if bytes > BATCH_BYTES_MAX {
            return Err(Error::TooLarge {
                what: "transaction (bytes written)",
                actual: bytes as u64,
                limit: BATCH_BYTES_MAX as u64,
            });
        }
        if self.cleared {
            Direct { store: self.store, watches }.clear()?;
            self.flushed_writes.iter().for_each(|key| watches.touch(key));
        }
        if self.order.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(self.order.len());
        for key in &self.order {
            let op = match &self.pending[key] {
                Some(entry) => {
                    BatchOp::PutAt { key: key.clone(), value: entry.value.clone(), expires_ms: entry.expires_ms }
                }
                None => BatchOp::Delete { key: key.clone() },
            };
            ops.push(op);
        }
        self.store.write_batch(&ops)?;
        self.order.iter().for_each(|key| watches.touch(key));
        Ok(())
    }
}

impl Keyspace for Tx<'_> {
    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn entry(&mut self, key: &[u8]) -> Result<Option<Entry>, Error> {
        if let Some(staged) = self.pending.get(key) {
            return Ok(staged.clone().filter(|e| e.expires_ms == 0 || e.expires_ms > self.now_ms));
        }
        if self.cleared {
            return Ok(None);
        }
        self.store.entry(key)
    }

    fn put(&mut self, key: &[u8], value: &[u8], expires_ms: u64) -> Result<(), Error> {
        check_size("key", key.len(), KEY_BYTES_MAX)?;
        check_size("value", value.len(), VALUE_BYTES_MAX)?;
        let entry = (expires_ms == 0 || expires_ms > self.now_ms).then(|| Entry { value: value.to_vec(), expires_ms });
        self.stage(key, entry);
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, Error> {
        let present = self.exists(key)?;
        if present {
            self.stage(key, None);
        }
        Ok(present)
    }

    fn put_all(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), Error> {
        // Every pair is checked before any is staged: all or none.
        for (key, value) in pairs {
            check_size("key", key.len(), KEY_BYTES_MAX)?;
            check_size("value", value.len(), VALUE_BYTES_MAX)?;
        }
        pairs.iter().try_for_each(|(key, value)| self.put(key, value, 0))
    }

    fn key_count(&self) -> u64 {
        if self.cleared {
            return self.pending.values().filter(|entry| entry.is_some()).count() as u64;
        }
        let mut count = self.store.key_count() as i64;
        for (key, entry) in &self.pending {
            let before = self.store.exists(key).unwrap_or(false);
            count += i64::from(entry.is_some()) - i64::from(before);
        }
        count.max(0) as u64
    }

    fn visible(&mut self, key: &[u8]) -> bool {
        match self.pending.get(key) {
            Some(staged) => staged.as_ref().is_some_and(|e| e.expires_ms == 0 || e.expires_ms > self.now_ms),
            None => !self.cleared,
        }
    }

    fn staged_live(&self) -> Vec<Vec<u8>> {
        self.order
            .iter()
            .filter(|key| self.pending[*key].as_ref().is_some_and(|e| e.expires_ms == 0 || e.expires_ms > self.now_ms))
            .cloned()
            .collect()
    }

    fn clear(&mut self) -> Result<u64, Error> {
        let count = self.key_count();
        self.pending.clear();
        self.flushed_writes.append(&mut self.order);
        self.cleared = true;
        Ok(count)
    }
}
