//! Writes that read first: a conditional put (SET NX / XX) and an integer
//! increment (INCR, DECR, INCRBY). Each decides and appends under the log
//! lock, as delete and expire do: every write publishes to the index
//! under that lock, so no other write to the key can land between the
//! read and the append. Durability is the same as a put's: the answer
//! waits for the sync the policy asks for, after the lock is released, so
//! concurrent writers still share one sync.

use crate::error::{Error, Result};
use crate::index::read::read_value;
use crate::space::Purpose;
use crate::store::{Store, check_key, check_value};
use crate::writer::Op;
use std::time::Duration;

/// When a conditional put goes ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCondition {
    /// Only if the key holds no live value (SET NX).
    IfAbsent,
    /// Only if the key holds a live value (SET XX).
    IfPresent,
}

/// Decimal digits (and sign) of the longest i64.
const INTEGER_TEXT_BYTES_MAX: usize = 20;

impl Store {
    /// Stores `value` under `key` if `condition` holds; true if it did.
    pub fn put_if(&self, key: &[u8], value: &[u8], ttl: Option<Duration>, condition: PutCondition) -> Result<bool> {
        check_key(key)?;
        check_value(value)?;
        self.engine.writable()?;
        let expires_ms = self.expiry(ttl)?;
        let mut log = self.engine.writer.lock();
        let present = self.current_live(key)?.is_some();
        if present != (condition == PutCondition::IfPresent) {
            return Ok(false);
        }
        self.engine.counters.count_put();
        let op = Op { key, value, tombstone: false, expires_ms };
        let lsn = self.engine.writer.append_locked(self.engine.append_parts(), &mut log, &[op], Purpose::User)?;
        drop(log);
        self.engine.writer.wait_durable(&*self.engine.storage, lsn)?;
        Ok(true)
    }

    /// Adds `delta` to the decimal integer stored under `key` (a missing
    /// key counts as 0) and returns the sum, which is stored as decimal
    /// text. The key keeps its time to live. `NotAnInteger` if the value
    /// is not one, `Overflow` if the sum does not fit an i64; neither
    /// writes anything.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64> {
        check_key(key)?;
        self.engine.writable()?;
        let mut log = self.engine.writer.lock();
        let (current, expires_ms) = match self.current_live(key)? {
            Some(current) => {
                let expires_ms = current.first.header.expires_ms;
                // A longer value is no integer: do not read megabytes to say so.
                if current.first.header.value_len as usize > INTEGER_TEXT_BYTES_MAX {
                    return Err(Error::NotAnInteger);
                }
                let value = read_value(&*self.engine.storage, current.first)?;
                (parse_integer(&value).ok_or(Error::NotAnInteger)?, expires_ms)
            }
            None => (0, 0),
        };
        let sum = current.checked_add(delta).ok_or(Error::Overflow)?;
        let text = sum.to_string();
        self.engine.counters.count_put();
        let op = Op { key, value: text.as_bytes(), tombstone: false, expires_ms };
        let lsn = self.engine.writer.append_locked(self.engine.append_parts(), &mut log, &[op], Purpose::User)?;
        drop(log);
        self.engine.writer.wait_durable(&*self.engine.storage, lsn)?;
        Ok(sum)
    }
}

/// A value as Redis reads an integer: optional '-', decimal digits, no
/// leading zeros, no spaces or '+', within i64.
pub fn parse_integer(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == text.len(),
        [first, ..] => *first != b'0',
    };
    if !canonical || text.len() > INTEGER_TEXT_BYTES_MAX || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_integer;

    #[test]
    fn integers_parse_as_redis_reads_them() {
        // Canonical decimal i64 only: what INCR accepts.
        for (text, want) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"42", Some(42)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"007", None),
            (b"+5", None),
            (b" 5", None),
            (b"5 ", None),
            (b"1e3", None),
            (b"abc", None),
        ] {
            assert_eq!(parse_integer(text), want, "{:?}", text.escape_ascii().to_string());
        }
    }
}
