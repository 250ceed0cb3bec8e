//! Keys and values of the crash test.
//!
//! Each writer thread owns a disjoint slice of keys (`crash/TTT/IIIII`, thread
//! `TTT`, index `IIIII`) and sends one request at a time, so at the kill at
//! most one request per key is in flight and "the outcome of the one request
//! in flight" is well defined.
//!
//! A value names the put that wrote it: its first 8 bytes are the put's
//! [`OpId`] (little-endian u64), the rest a pseudo-random stream seeded by
//! the op id, the key and the length. The checker recomputes the expected
//! bytes exactly, and a wrong value can be traced to the put (and key) it
//! came from.

use rand::Rng;
use std::fmt;

/// Every key of the test starts with this; a scan of it must find nothing else.
pub const KEY_PREFIX: &str = "crash/";
/// Writer threads at most: the thread is an 8-bit field of [`OpId`].
pub const THREADS_MAX: u32 = (1 << OpId::THREAD_BITS) - 1;
/// Keys per thread at most (five digits in the key name).
pub const KEYS_PER_THREAD_MAX: u32 = 99_999;
/// The smallest value: room for the op id.
pub const VALUE_BYTES_MIN: u32 = 8;
/// The largest value (300 KiB: a record fragmented over many 4 KiB blocks).
pub const VALUE_BYTES_MAX: u32 = 300 * 1024;

/// One key of the test: the writer thread that owns it and its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRef {
    pub thread: u32,
    pub index: u32,
}

impl KeyRef {
    /// The key's bytes as stored: `crash/TTT/IIIII`.
    pub fn name(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The key a stored name stands for; None for anything not of the form.
    pub fn parse(name: &[u8]) -> Option<KeyRef> {
        let text = std::str::from_utf8(name).ok()?.strip_prefix(KEY_PREFIX)?;
        let (thread, index) = text.split_once('/')?;
        let all_digits = |s: &str| s.len() >= 3 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(thread) || !all_digits(index) {
            return None;
        }
        let key = KeyRef { thread: thread.parse().ok()?, index: index.parse().ok()? };
        // Only the canonical spelling (no extra leading zeros) is a test key.
        (key.to_string().as_bytes() == name).then_some(key)
    }

    /// Every key of a run with `threads` writers of `keys_per_thread` keys each.
    pub fn all(threads: u32, keys_per_thread: u32) -> impl Iterator<Item = KeyRef> {
        (0..threads).flat_map(move |thread| (0..keys_per_thread).map(move |index| KeyRef { thread, index }))
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{:03}/{:05}", self.thread, self.index)
    }
}

/// Which operation: the cycle (unique over a run), the writer thread, and the
/// thread's sequence number within the cycle (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId {
    pub cycle: u32,
    pub thread: u32,
    pub seq: u32,
}

impl OpId {
    pub const CYCLE_BITS: u32 = 24;
    pub const THREAD_BITS: u32 = 8;
    pub const SEQ_BITS: u32 = 32;
    /// The largest cycle number an op id holds.
    pub const CYCLE_MAX: u32 = (1 << Self::CYCLE_BITS) - 1;

    pub fn to_u64(self) -> u64 {
        debug_assert!(self.cycle <= Self::CYCLE_MAX && self.thread <= THREADS_MAX);
        (u64::from(self.cycle) << (Self::THREAD_BITS + Self::SEQ_BITS))
            | (u64::from(self.thread) << Self::SEQ_BITS)
            | u64::from(self.seq)
    }

    pub fn from_u64(bits: u64) -> OpId {
        OpId {
            cycle: (bits >> (Self::THREAD_BITS + Self::SEQ_BITS)) as u32,
            thread: ((bits >> Self::SEQ_BITS) & u64::from(THREADS_MAX)) as u32,
            seq: bits as u32,
        }
    }
}

const _: () = assert!(OpId::CYCLE_BITS + OpId::THREAD_BITS + OpId::SEQ_BITS == 64);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cycle {} thread {} #{}", self.cycle, self.thread, self.seq)
    }
}

/// A value some put wrote: which put, and how long the value was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub op: OpId,
    pub value_bytes: u32,
}

impl Written {
    /// The exact bytes this put stored under `key`.
    pub fn value(&self, key: KeyRef) -> Vec<u8> {
        let op_bits = self.op.to_u64();
        let length = self.value_bytes as usize;
        let mut value = Vec::with_capacity(length.next_multiple_of(8).max(8));
        value.extend_from_slice(&op_bits.to_le_bytes());
        // The length seeds the stream too, so a truncated value is not
        // mistaken for a shorter put's.
        let key_bits = u64::from(key.thread) << 32 | u64::from(key.index);
        let mut stream = op_bits ^ key_bits.wrapping_mul(0xA24B_AED4_963E_E407) ^ u64::from(self.value_bytes) << 40;
        while value.len() < length {
            value.extend_from_slice(&splitmix64(&mut stream).to_le_bytes());
        }
        value.truncate(length);
        value
    }
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the value of put {} ({} bytes)", self.op, self.value_bytes)
    }
}

/// What `bytes` found under `key` are, in words: the value of which put (to
/// this key or, misdirected, to another key of the same thread), or bytes
/// no put of the test wrote.
pub fn describe_value(key: KeyRef, bytes: &[u8], keys_per_thread: u32) -> String {
    let head = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    if let Some(op_bits) = head {
        let written = Written { op: OpId::from_u64(op_bits), value_bytes: bytes.len() as u32 };
        if written.op.thread <= THREADS_MAX && written.value(key) == bytes {
            return written.to_string();
        }
        let owner = written.op.thread;
        if let Some(other) = (0..keys_per_thread)
            .map(|index| KeyRef { thread: owner, index })
            .find(|other| written.value(*other) == bytes)
        {
            return format!("{written}, written to {other}, not to this key");
        }
    }
    let shown: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{} bytes no put of this key wrote (first bytes {shown})", bytes.len())
}

/// A value length: mostly small, some spanning blocks, a few up to 300 KiB.
pub fn pick_value_bytes(rng: &mut impl Rng) -> u32 {
    match rng.random_range(0..100) {
        0..70 => rng.random_range(VALUE_BYTES_MIN..=128),
        70..95 => rng.random_range(129..=4096),
        95..99 => rng.random_range(4097..=64 * 1024),
        _ => rng.random_range(64 * 1024 + 1..=VALUE_BYTES_MAX),
    }
}

/// SplitMix64: a fast, well-mixed stream from a 64-bit state; also how the
/// run's seed is turned into each cycle's.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn key_names_round_trip_and_others_are_refused() {
        // Every test key parses back; near misses and other keys do not.
        let key = KeyRef { thread: 7, index: 1234 };
        assert_eq!(key.name(), b"crash/007/01234");
        assert_eq!(KeyRef::parse(&key.name()), Some(key));
        for other in [&b"crash/007/1234"[..], b"crash/7/01234", b"crash/007/001234", b"crash/007", b"user:1", b""] {
            assert_eq!(KeyRef::parse(other), None, "{:?}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn op_ids_round_trip_through_u64() {
        // The fields at their limits survive the packing.
        for op in [
            OpId { cycle: 0, thread: 0, seq: 0 },
            OpId { cycle: OpId::CYCLE_MAX, thread: THREADS_MAX, seq: u32::MAX },
            OpId { cycle: 17, thread: 3, seq: 99 },
        ] {
            assert_eq!(OpId::from_u64(op.to_u64()), op);
        }
    }

    #[test]
    fn values_name_their_put_and_key() {
        // A value is recognised as its put's; a neighbour's value is named as misdirected.
        let key = KeyRef { thread: 2, index: 5 };
        let written = Written { op: OpId { cycle: 4, thread: 2, seq: 31 }, value_bytes: 1000 };
        let value = written.value(key);
        assert_eq!(value.len(), 1000);
        assert_eq!(describe_value(key, &value, 8), written.to_string());
        let neighbour = KeyRef { thread: 2, index: 6 };
        assert!(describe_value(neighbour, &value, 8).contains("written to crash/002/00005"));
        assert!(describe_value(key, &value[..999], 8).contains("no put of this key wrote"));
        assert!(describe_value(key, b"short", 8).contains("5 bytes no put"));
    }

    #[test]
    fn value_lengths_stay_in_range_and_are_mostly_small() {
        // 8 bytes to 300 KiB, most of them at most 128 bytes.
        let mut rng = StdRng::seed_from_u64(1);
        let lengths: Vec<u32> = (0..10_000).map(|_| pick_value_bytes(&mut rng)).collect();
        assert!(lengths.iter().all(|&n| (VALUE_BYTES_MIN..=VALUE_BYTES_MAX).contains(&n)));
        assert!(lengths.iter().filter(|&&n| n <= 128).count() > 6_000);
        assert!(lengths.iter().any(|&n| n > 64 * 1024));
    }
}
