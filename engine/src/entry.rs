//! A key's value with its absolute expiry, and writes that take an absolute
//! expiry: what Redis's EXPIREAT, PXAT, KEEPTTL, GETEX and a RENAME that
//! keeps the TTL need. Absolute times are Unix ms on the store's clock
//! (`Store::now_ms`), 0 meaning none, as records carry them (FORMAT.md).
//!
//! A time already past removes the key (a tombstone), as Redis deletes a key
//! given an expiry in the past; `expire_at` counts it in `expired_keys`, as
//! Redis's EXPIREAT does.

use crate::error::Result;
use crate::index::key_hash;
use crate::index::lookup;
use crate::index::read::read_value;
use crate::space::Purpose;
use crate::store::{Store, check_key, check_value, is_past, put_or_delete};

/// A live key's value and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    /// Unix time in ms at which the key is gone; 0 = never.
    pub expires_ms: u64,
}

impl Store {
    /// The store's clock: Unix time in ms, the time expiries are read against.
    pub fn now_ms(&self) -> u64 {
        self.engine.clock.now_ms()
    }

    /// The value of `key` with its expiry, or None if absent or expired.
    pub fn entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        check_key(key)?;
        self.engine.counters.count_get();
        let Some(current) = self.current_live(key)? else { return Ok(None) };
        let expires_ms = current.first.header.expires_ms;
        let value = read_value(&*self.engine.storage, current.first)?;
        Ok(Some(Entry { value, expires_ms }))
    }

    /// Stores `value` under `key`, expiring at `expires_ms` (0: never; a
    /// time already past deletes the key instead).
    pub fn put_at(&self, key: &[u8], value: &[u8], expires_ms: u64) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        self.engine.counters.count_put();
        self.write_one(put_or_delete(key, value, expires_ms, self.now_ms()))
    }

    /// Sets the expiry of an existing key to `expires_ms` (0: none, which
    /// is PERSIST) by rewriting its record; a time already past deletes it.
    /// False if the key is absent.
    pub fn expire_at(&self, key: &[u8], expires_ms: u64) -> Result<bool> {
        check_key(key)?;
        self.engine.writable()?;
        let mut log = self.engine.writer.lock();
        let found = lookup::find(&*self.engine.storage, &self.engine.index, key, key_hash(key)).for_read()?;
        let Some(current) = found.filter(|c| !self.expired(c)) else {
            return Ok(false);
        };
        let (value, purpose) = if is_past(expires_ms, self.now_ms()) {
            self.engine.ttl.count_expired();
            (Vec::new(), Purpose::Delete)
        } else {
            (read_value(&*self.engine.storage, current.first)?, Purpose::User)
        };
        let op = put_or_delete(key, &value, expires_ms, self.now_ms());
        let lsn = self.engine.writer.append_locked(self.engine.append_parts(), &mut log, &[op], purpose)?;
        drop(log);
        self.engine.writer.wait_durable(&*self.engine.storage, lsn)?;
        Ok(true)
    }
}
