//! Model-based tests: random operation sequences run against the store and
//! against a `BTreeMap` oracle that reads the same `ManualClock`, with
//! checkpoints, forced compactions, clean closes, kill -9 reopens and
//! power-cut reopens interleaved. After every operation its result must equal the oracle's;
//! after every reopen (and at the end of every case) the whole contents must:
//! keys from a full scan, and each key's value, existence and TTL.
//!
//! Which image each reopen starts from:
//! - CleanReopen: `close()`, then the durable image.
//! - KillReopen: `abandon()`, then the volatile image (a kill -9 keeps every
//!   write already issued), so the state must equal the oracle exactly.
//! - PowerCutReopen: `abandon()`, then the durable image. Only with
//!   `SyncPolicy::Always` (every test but the sync=none one): each
//!   acknowledged write was synced, so the state must equal the oracle
//!   exactly here too.
//!
//! `NoSpace` is not a failure, but the refused operation must have had no
//! effect: the full contents are compared with the unchanged oracle. A zero
//! TTL must be refused with `InvalidArgument`, also without effect. Stats are
//! checked too: the key count and the live-byte accounting. After every
//! compaction kv-fsck's check of the running store must find no error, and
//! per-block live bytes equal to what the records say.
//!
//! Case counts are small by default so the file stays well under a minute in
//! `--release` on two cores. PROPTEST_CASES is the long-run knob, e.g.
//! `PROPTEST_CASES=2000 cargo test --release -p blockkv-engine --test model`
//! (it replaces every test's default count). A failure prints the shrunk
//! operation list; keep it below as a named regression test.

mod common;

use blockkv_engine::format::record::SEAL_BYTES;
use blockkv_engine::format::{BLOCK_BYTES, BLOCK_HEADER_BYTES, RECORD_HEADER_BYTES};
use blockkv_engine::limits::{FRAGMENT_PAYLOAD_BYTES_MAX, KEY_BYTES_MAX};
use blockkv_engine::{BatchOp, Clock, Error, KeyTtl, ManualClock, SimDisk, Store, SyncPolicy, key_hash};
use common::{SIM_BYTES, new_sim_store, open_image, sim_options};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Big enough that `NoSpace` does not happen in a normal case, even between
/// compactions.
const FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Small enough that heavy overwriting fills it many times over in a case,
/// so compaction (forced, and by writes that find no room) keeps it going.
const CHURN_FILE_BYTES: u64 = 512 * 1024;

/// Two pairs of keys with equal `key_hash` (CRC32C is linear, so such pairs
/// come in families): the index holds only hashes, so these exercise the
/// "read the record back and compare the key" path everywhere.
const COLLIDING_KEYS: [&str; 4] = ["c1371838", "c2000402", "c1371839", "c2000403"];

// ---------------------------------------------------------------------------
// Operations and their strategies

/// A key; Debug prints the constructor call, so a shrunk case pastes as code.
#[derive(Clone, PartialEq, Eq)]
struct Key(String);

fn k(text: &str) -> Key {
    Key(text.to_string())
}

impl Key {
    /// A key at `KEY_BYTES_MAX`: the first fragment of a large value then
    /// has little room left for value bytes.
    fn long() -> Key {
        Key("k".repeat(KEY_BYTES_MAX))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Key::long() { write!(f, "Key::long()") } else { write!(f, "k({:?})", self.0) }
    }
}

/// A value of `len` bytes drawn from `seed`; two seeds give different bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Value {
    len: usize,
    seed: u32,
}

fn v(len: usize, seed: u32) -> Value {
    Value { len, seed }
}

impl Value {
    fn bytes(self) -> Vec<u8> {
        // xorshift64: cheap, and never stuck at zero because the state is odd.
        let mut state = (u64::from(self.seed) << 1 | 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..self.len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v({}, {})", self.len, self.seed)
    }
}

/// One member of a batch.
#[derive(Debug, Clone)]
enum Member {
    Put { key: Key, value: Value, ttl_ms: Option<u64> },
    Delete { key: Key },
}

/// One step of a case. TTLs of 0 ms are invalid and must change nothing.
#[derive(Debug, Clone)]
enum Op {
    Put {
        key: Key,
        value: Value,
    },
    PutTtl {
        key: Key,
        value: Value,
        ttl_ms: u64,
    },
    Delete {
        key: Key,
    },
    Get {
        key: Key,
    },
    Exists {
        key: Key,
    },
    Scan {
        prefix: Key,
        start_after: Option<Key>,
        limit: usize,
    },
    Batch {
        members: Vec<Member>,
    },
    Expire {
        key: Key,
        ttl_ms: Option<u64>,
    },
    Ttl {
        key: Key,
    },
    /// `put_at` at now + `offset_ms` (past or present: a delete).
    PutAt {
        key: Key,
        value: Value,
        offset_ms: i64,
    },
    /// `expire_at` at now + `offset_ms`; None persists.
    ExpireAt {
        key: Key,
        offset_ms: Option<i64>,
    },
    /// `entry`: value and absolute expiry.
    Entry {
        key: Key,
    },
    /// One round of active expiry: every expired key leaves the index.
    ExpireRound,
    /// `clear`: every key gone.
    Clear,
    AdvanceClock {
        ms: u64,
    },
    Checkpoint,
    Compact,
    CleanReopen,
    KillReopen,
    PowerCutReopen,
}

/// Which keys a case draws from.
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// Short keys over a three-letter alphabet (overwrites are common), plus
    /// the hash-colliding keys and the longest key now and then.
    Mixed,
    /// Mostly the hash-colliding keys.
    Colliding,
    /// Hundreds of keys, so the index and its snapshots grow.
    Wide,
}

/// Relative weights of each operation in a test's mix.
#[derive(Debug, Clone, Copy)]
struct Mix {
    keys: Keys,
    put: u32,
    put_ttl: u32,
    delete: u32,
    get: u32,
    exists: u32,
    scan: u32,
    batch: u32,
    expire: u32,
    ttl: u32,
    put_at: u32,
    expire_at: u32,
    entry: u32,
    expire_round: u32,
    clear: u32,
    advance: u32,
    checkpoint: u32,
    compact: u32,
    clean_reopen: u32,
    kill_reopen: u32,
    power_cut_reopen: u32,
    /// Weight of 5 000..20 000-byte values against 16 for small ones.
    big_values: u32,
}

const BALANCED: Mix = Mix {
    keys: Keys::Mixed,
    put: 20,
    put_ttl: 5,
    delete: 8,
    get: 10,
    exists: 4,
    scan: 4,
    batch: 6,
    expire: 4,
    ttl: 4,
    put_at: 3,
    expire_at: 3,
    entry: 3,
    expire_round: 3,
    clear: 1,
    advance: 5,
    checkpoint: 3,
    compact: 2,
    clean_reopen: 2,
    kill_reopen: 3,
    power_cut_reopen: 2,
    big_values: 2,
};

fn key_strategy(keys: Keys) -> BoxedStrategy<Key> {
    let colliding = select(COLLIDING_KEYS.to_vec()).prop_map(k);
    match keys {
        Keys::Mixed => prop_oneof![
            40 => "[abc]{0,3}".prop_map(Key),
            3 => colliding,
            1 => Just(Key::long()),
        ]
        .boxed(),
        Keys::Colliding => prop_oneof![
            8 => colliding,
            1 => "[ab]".prop_map(Key),
        ]
        .boxed(),
        Keys::Wide => prop_oneof![
            20 => "[abcde]{1,4}".prop_map(Key),
            1 => colliding,
        ]
        .boxed(),
    }
}

fn value_strategy(big_values: u32) -> BoxedStrategy<Value> {
    let len = prop_oneof![
        16 => 0..300usize,
        // Around the largest record that still fits one block unfragmented.
        1 => (FRAGMENT_PAYLOAD_BYTES_MAX - SEAL_BYTES - 16)..(FRAGMENT_PAYLOAD_BYTES_MAX + 16),
        big_values => 5_000..20_000usize,
    ];
    (len, any::<u32>()).prop_map(|(len, seed)| Value { len, seed }).boxed()
}

fn ttl_strategy() -> BoxedStrategy<u64> {
    prop_oneof![1 => Just(0u64), 30 => 1..5_000u64].boxed()
}

/// An absolute expiry relative to now: mostly ahead, sometimes now or past.
fn offset_strategy() -> BoxedStrategy<i64> {
    prop_oneof![1 => -3_000..=0i64, 6 => 1..5_000i64].boxed()
}

fn batch_strategy(mix: Mix) -> BoxedStrategy<Op> {
    let member = prop_oneof![
        3 => (key_strategy(mix.keys), value_strategy(mix.big_values), proptest::option::of(ttl_strategy()))
            .prop_map(|(key, value, ttl_ms)| Member::Put { key, value, ttl_ms }),
        1 => key_strategy(mix.keys).prop_map(|key| Member::Delete { key }),
    ];
    (proptest::collection::vec(member, 1..=6), any::<bool>())
        .prop_map(|(mut members, repeat_key)| {
            // Make the same key appear twice in the batch, half the time.
            if repeat_key && members.len() >= 2 {
                let first = match &members[0] {
                    Member::Put { key, .. } | Member::Delete { key } => key.clone(),
                };
                match members.last_mut() {
                    Some(Member::Put { key, .. } | Member::Delete { key }) => *key = first,
                    None => {}
                }
            }
            Op::Batch { members }
        })
        .boxed()
}

fn op_strategy(mix: Mix) -> BoxedStrategy<Op> {
    let key = || key_strategy(mix.keys);
    let value = || value_strategy(mix.big_values);
    let prefix = prop_oneof![4 => "[abc]{0,2}".prop_map(Key), 1 => select(vec!["c1", "c2", "k"]).prop_map(k)];
    let limit = prop_oneof![3 => 0..6usize, 1 => Just(usize::MAX)];
    let start_after = proptest::option::of("[abc]{0,3}".prop_map(Key));
    let advance = prop_oneof![6 => 0..3_000u64, 1 => 3_000..20_000u64];
    let arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (mix.put, (key(), value()).prop_map(|(key, value)| Op::Put { key, value }).boxed()),
        (
            mix.put_ttl,
            (key(), value(), ttl_strategy()).prop_map(|(key, value, ttl_ms)| Op::PutTtl { key, value, ttl_ms }).boxed(),
        ),
        (mix.delete, key().prop_map(|key| Op::Delete { key }).boxed()),
        (mix.get, key().prop_map(|key| Op::Get { key }).boxed()),
        (mix.exists, key().prop_map(|key| Op::Exists { key }).boxed()),
        (
            mix.scan,
            (prefix, start_after, limit)
                .prop_map(|(prefix, start_after, limit)| Op::Scan { prefix, start_after, limit })
                .boxed(),
        ),
        (mix.batch, batch_strategy(mix)),
        (
            mix.expire,
            (key(), proptest::option::of(ttl_strategy())).prop_map(|(key, ttl_ms)| Op::Expire { key, ttl_ms }).boxed(),
        ),
        (mix.ttl, key().prop_map(|key| Op::Ttl { key }).boxed()),
        (
            mix.put_at,
            (key(), value(), offset_strategy())
                .prop_map(|(key, value, offset_ms)| Op::PutAt { key, value, offset_ms })
                .boxed(),
        ),
        (
            mix.expire_at,
            (key(), proptest::option::of(offset_strategy()))
                .prop_map(|(key, offset_ms)| Op::ExpireAt { key, offset_ms })
                .boxed(),
        ),
        (mix.entry, key().prop_map(|key| Op::Entry { key }).boxed()),
        (mix.expire_round, Just(Op::ExpireRound).boxed()),
        (mix.clear, Just(Op::Clear).boxed()),
        (mix.advance, advance.prop_map(|ms| Op::AdvanceClock { ms }).boxed()),
        (mix.checkpoint, Just(Op::Checkpoint).boxed()),
        (mix.compact, Just(Op::Compact).boxed()),
        (mix.clean_reopen, Just(Op::CleanReopen).boxed()),
        (mix.kill_reopen, Just(Op::KillReopen).boxed()),
        (mix.power_cut_reopen, Just(Op::PowerCutReopen).boxed()),
    ];
    // Arms of weight 0 are left out, so shrinking cannot reach them either.
    Union::new_weighted(arms.into_iter().filter(|(weight, _)| *weight > 0).collect()).boxed()
}

fn ops_strategy(mix: Mix, op_count: RangeInclusive<usize>) -> BoxedStrategy<Vec<Op>> {
    proptest::collection::vec(op_strategy(mix), op_count).boxed()
}

// ---------------------------------------------------------------------------
// The oracle

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Vec<u8>,
    expires_ms: Option<u64>,
}

/// What the store must hold. Expired entries stay until deleted or
/// overwritten, as in the store's index; they read as absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Oracle {
    map: BTreeMap<Vec<u8>, Entry>,
    /// Expired entries deleted here that the store may still hold: the
    /// compactor unlinks an expired key with nothing older left without a
    /// tombstone, so a later delete writes none either, and a reopen from a
    /// checkpoint taken before the unlink brings the (still expired) entry
    /// back. They read as absent; they only widen the bounds on stats.
    ghosts: BTreeMap<Vec<u8>, Entry>,
}

impl Oracle {
    fn live(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.expires_ms.is_none_or(|at| at > now_ms))
    }

    fn live_count(&self, now_ms: u64) -> u64 {
        self.map.values().filter(|e| e.expires_ms.is_none_or(|at| at > now_ms)).count() as u64
    }

    /// Bounds on the store's live bytes: every held record counts its key,
    /// value and one header per fragment. How many fragments a large value
    /// takes depends on where the log placed it: at least the fewest that can
    /// carry it, at most two more than its value alone needs (a FIRST that
    /// got one value byte, a LAST that left room for its block's SEAL).
    /// Expired entries may be dropped, so only live ones count to the low end;
    /// ghosts may come back, so they count to the high end.
    fn live_bytes_bounds(&self, now_ms: u64) -> (u64, u64) {
        let (mut low, mut high) = (0, 0);
        for (key, entry) in self.map.iter().chain(&self.ghosts) {
            let live = self.map.contains_key(key) && entry.expires_ms.is_none_or(|at| at > now_ms);
            let payload = key.len() + entry.value.len();
            let fewest = payload.div_ceil(FRAGMENT_PAYLOAD_BYTES_MAX).max(1);
            let most = 2 + entry.value.len().div_ceil(FRAGMENT_PAYLOAD_BYTES_MAX);
            if live {
                low += (payload + fewest * RECORD_HEADER_BYTES) as u64;
            }
            high += (payload + most * RECORD_HEADER_BYTES) as u64;
        }
        (low, high)
    }

    /// Keys the store's index may hold: live, expired, and ghosts.
    fn held_count(&self) -> u64 {
        (self.map.len() + self.ghosts.len()) as u64
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>, expires_ms: Option<u64>) {
        self.ghosts.remove(key);
        self.map.insert(key.to_vec(), Entry { value, expires_ms });
    }

    /// True if the key was live.
    fn delete(&mut self, key: &[u8], now_ms: u64) -> bool {
        let live = self.live(key, now_ms).is_some();
        if let Some(entry) = self.map.remove(key)
            && !live
        {
            self.ghosts.insert(key.to_vec(), entry);
        }
        live
    }

    /// True if the key was live (and now has the new expiry).
    fn expire(&mut self, key: &[u8], expires_ms: Option<u64>, now_ms: u64) -> bool {
        if self.live(key, now_ms).is_none() {
            return false;
        }
        if let Some(entry) = self.map.get_mut(key) {
            entry.expires_ms = expires_ms;
        }
        true
    }

    /// Every expired entry removed, as the expiry round removes them. Its
    /// tombstones are not synced, so a power cut may bring them back: ghosts.
    fn expire_all(&mut self, now_ms: u64) {
        let expired: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter(|(_, e)| e.expires_ms.is_some_and(|at| at <= now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.delete(&key, now_ms);
        }
    }

    /// Live keys with a TTL.
    fn live_with_ttl(&self, now_ms: u64) -> u64 {
        self.map.values().filter(|e| e.expires_ms.is_some_and(|at| at > now_ms)).count() as u64
    }

    fn ttl(&self, key: &[u8], now_ms: u64) -> KeyTtl {
        match self.live(key, now_ms) {
            None => KeyTtl::Missing,
            Some(Entry { expires_ms: None, .. }) => KeyTtl::Persistent,
            Some(Entry { expires_ms: Some(at), .. }) => KeyTtl::ExpiresInMs(at - now_ms),
        }
    }

    fn scan(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize, now_ms: u64) -> Vec<Vec<u8>> {
        self.map
            .keys()
            .filter(|key| key.starts_with(prefix) && start_after.is_none_or(|after| key.as_slice() > after))
            .filter(|key| self.live(key, now_ms).is_some())
            .take(limit)
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Running a case

/// Counts over a test's cases, to check the test reached what it aims at.
#[derive(Debug, Default)]
struct Tally {
    no_space: Cell<u64>,
    reopens: Cell<u64>,
    blocks_reclaimed: Cell<u64>,
}

impl Tally {
    fn bump(counter: &Cell<u64>) {
        counter.set(counter.get() + 1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reopen {
    Clean,
    Kill,
    PowerCut,
}

/// How a case's store is set up.
#[derive(Debug, Clone, Copy)]
struct Setup {
    file_bytes: u64,
    /// For the first open and every reopen. PowerCutReopen needs `Always`.
    sync: SyncPolicy,
}

const ROOMY: Setup = Setup { file_bytes: FILE_BYTES, sync: SyncPolicy::Always };

/// The store under test, its disk and clock, and the oracle.
struct Model<'t> {
    sync: SyncPolicy,
    disk: Arc<SimDisk>,
    store: Option<Store>,
    clock: Arc<ManualClock>,
    oracle: Oracle,
    tally: &'t Tally,
}

type Check = Result<(), String>;

fn ensure_eq<T: PartialEq + fmt::Debug>(got: T, want: T, what: impl fmt::Display) -> Check {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, expected {want:?}")) }
}

fn show_key(key: &[u8]) -> String {
    if key.len() > 24 { format!("<{}-byte key>", key.len()) } else { String::from_utf8_lossy(key).into_owned() }
}

fn show_keys(keys: &[Vec<u8>]) -> Vec<String> {
    keys.iter().map(|key| show_key(key)).collect()
}

fn show_value(value: Option<&[u8]>) -> String {
    match value {
        None => "None".to_string(),
        Some(bytes) => format!("Some({} bytes, starting {:?})", bytes.len(), &bytes[..bytes.len().min(8)]),
    }
}

fn unexpected(what: &str, err: &Error) -> String {
    format!("{what} failed unexpectedly: {err} ({err:?})")
}

impl<'t> Model<'t> {
    fn new(setup: Setup, tally: &'t Tally) -> Model<'t> {
        let (disk, store, clock) = new_sim_store(setup.file_bytes, setup.sync);
        Model { sync: setup.sync, disk, store: Some(store), clock, oracle: Oracle::default(), tally }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("the store is open between operations")
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A write's result: Some(value) when acknowledged, None on `NoSpace`
    /// (after checking that the refused write changed nothing).
    fn acknowledged<T>(&mut self, what: &str, result: blockkv_engine::Result<T>) -> Result<Option<T>, String> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoSpace { .. }) => {
                Tally::bump(&self.tally.no_space);
                self.compare_all(&format!("after NoSpace on {what}"))?;
                Ok(None)
            }
            Err(err) => Err(unexpected(what, &err)),
        }
    }

    /// A zero TTL is refused before anything is written.
    fn refused_as_invalid<T: fmt::Debug>(what: &str, result: blockkv_engine::Result<T>) -> Check {
        match result {
            Err(Error::InvalidArgument(_)) => Ok(()),
            other => Err(format!("{what} with a zero ttl: got {other:?}, expected InvalidArgument")),
        }
    }

    fn run(&mut self, ops: &[Op]) -> Check {
        for (step, op) in ops.iter().enumerate() {
            self.apply(op).map_err(|err| format!("step {step} {op:?}: {err}"))?;
        }
        self.compare_all("at the end of the case")?;
        self.reopen(Reopen::Clean).map_err(|err| format!("final clean reopen: {err}"))
    }

    fn apply(&mut self, op: &Op) -> Check {
        let now = self.now();
        match op {
            Op::Put { key, value } => {
                let bytes = value.bytes();
                if self.acknowledged("put", self.store().put(key.bytes(), &bytes))?.is_some() {
                    self.oracle.put(key.bytes(), bytes, None);
                }
                self.check_key(key.bytes(), "after put")
            }
            Op::PutTtl { key, value, ttl_ms } => {
                let bytes = value.bytes();
                let result = self.store().put_with_ttl(key.bytes(), &bytes, Some(Duration::from_millis(*ttl_ms)));
                if *ttl_ms == 0 {
                    Self::refused_as_invalid("put_with_ttl", result)?;
                } else if self.acknowledged("put_with_ttl", result)?.is_some() {
                    self.oracle.put(key.bytes(), bytes, Some(now + ttl_ms));
                }
                self.check_key(key.bytes(), "after put_with_ttl")
            }
            Op::Delete { key } => {
                let result = self.store().delete(key.bytes());
                if let Some(found) = self.acknowledged("delete", result)? {
                    let was_live = self.oracle.delete(key.bytes(), now);
                    ensure_eq(found, was_live, "delete's return value")?;
                }
                self.check_key(key.bytes(), "after delete")
            }
            Op::Get { key } => self.check_key(key.bytes(), "get"),
            Op::Exists { key } => {
                let got = self.store().exists(key.bytes()).map_err(|err| unexpected("exists", &err))?;
                ensure_eq(got, self.oracle.live(key.bytes(), now).is_some(), "exists")
            }
            Op::Scan { prefix, start_after, limit } => {
                let start_after = start_after.as_ref().map(Key::bytes);
                let got =
                    self.store().scan(prefix.bytes(), start_after, *limit).map_err(|err| unexpected("scan", &err))?;
                let want = self.oracle.scan(prefix.bytes(), start_after, *limit, now);
                ensure_eq(show_keys(&got), show_keys(&want), "scan")
            }
            Op::Batch { members } => self.batch(members),
            Op::Expire { key, ttl_ms } => {
                let result = self.store().expire(key.bytes(), ttl_ms.map(Duration::from_millis));
                if *ttl_ms == Some(0) {
                    Self::refused_as_invalid("expire", result)?;
                } else if let Some(found) = self.acknowledged("expire", result)? {
                    let was_live = self.oracle.expire(key.bytes(), ttl_ms.map(|ms| now + ms), now);
                    ensure_eq(found, was_live, "expire's return value")?;
                }
                self.check_key(key.bytes(), "after expire")
            }
            Op::Ttl { key } => {
                let got = self.store().ttl(key.bytes()).map_err(|err| unexpected("ttl", &err))?;
                ensure_eq(got, self.oracle.ttl(key.bytes(), now), "ttl")
            }
            Op::PutAt { key, value, offset_ms } => {
                let at = now.saturating_add_signed(*offset_ms);
                let bytes = value.bytes();
                if self.acknowledged("put_at", self.store().put_at(key.bytes(), &bytes, at))?.is_some() {
                    if at <= now {
                        self.oracle.delete(key.bytes(), now);
                    } else {
                        self.oracle.put(key.bytes(), bytes, Some(at));
                    }
                }
                self.check_key(key.bytes(), "after put_at")
            }
            Op::ExpireAt { key, offset_ms } => {
                let at = offset_ms.map_or(0, |offset| now.saturating_add_signed(offset));
                let result = self.store().expire_at(key.bytes(), at);
                if let Some(found) = self.acknowledged("expire_at", result)? {
                    let was_live = if at != 0 && at <= now {
                        self.oracle.delete(key.bytes(), now)
                    } else {
                        self.oracle.expire(key.bytes(), (at != 0).then_some(at), now)
                    };
                    ensure_eq(found, was_live, "expire_at's return value")?;
                }
                self.check_key(key.bytes(), "after expire_at")
            }
            Op::Entry { key } => {
                let got = self.store().entry(key.bytes()).map_err(|err| unexpected("entry", &err))?;
                let want = self.oracle.live(key.bytes(), now).map(|e| (e.value.clone(), e.expires_ms.unwrap_or(0)));
                ensure_eq(got.map(|e| (e.value, e.expires_ms)), want, "entry")
            }
            Op::ExpireRound => {
                let result = self.store().expire_round();
                if self.acknowledged("expire_round", result)?.is_some() {
                    self.oracle.expire_all(now);
                    let stats = self.store().stats();
                    ensure_eq(stats.keys, self.oracle.live_count(now), "keys after an expiry round")?;
                    ensure_eq(stats.keys_with_ttl, self.oracle.live_with_ttl(now), "keys with a ttl after a round")?;
                }
                self.compare_all("after an expiry round")
            }
            Op::Clear => {
                let held = self.store().key_count();
                let result = self.store().clear();
                if let Some(removed) = self.acknowledged("clear", result)? {
                    ensure_eq(removed, held, "clear's count")?;
                    // Durable (a checkpoint), so nothing from before comes back.
                    self.oracle = Oracle::default();
                }
                self.compare_all("after clear")
            }
            Op::AdvanceClock { ms } => {
                self.clock.advance_ms(*ms);
                Ok(())
            }
            Op::Checkpoint => {
                let result = self.store().checkpoint();
                self.acknowledged("checkpoint", result).map(|_| ())
            }
            Op::Compact => self.compact(),
            Op::CleanReopen => self.reopen(Reopen::Clean),
            Op::KillReopen => self.reopen(Reopen::Kill),
            Op::PowerCutReopen => self.reopen(Reopen::PowerCut),
        }
    }

    fn batch(&mut self, members: &[Member]) -> Check {
        let now = self.now();
        let ops: Vec<BatchOp> = members
            .iter()
            .map(|member| match member {
                Member::Put { key, value, ttl_ms } => BatchOp::Put {
                    key: key.bytes().to_vec(),
                    value: value.bytes(),
                    ttl: ttl_ms.map(Duration::from_millis),
                },
                Member::Delete { key } => BatchOp::Delete { key: key.bytes().to_vec() },
            })
            .collect();
        let result = self.store().write_batch(&ops);
        let zero_ttl = members.iter().any(|m| matches!(m, Member::Put { ttl_ms: Some(0), .. }));
        if zero_ttl {
            Self::refused_as_invalid("write_batch", result)?;
        } else if self.acknowledged("write_batch", result)?.is_some() {
            // In order: a later member on the same key wins.
            for op in ops {
                match op {
                    BatchOp::Put { key, value, ttl } => {
                        self.oracle.put(&key, value, ttl.map(|ttl| now + ttl.as_millis() as u64));
                    }
                    BatchOp::PutAt { key, value, expires_ms } => {
                        self.oracle.put(&key, value, (expires_ms != 0).then_some(expires_ms));
                    }
                    BatchOp::Delete { key } => {
                        self.oracle.delete(&key, now);
                    }
                }
            }
        }
        for member in members {
            let (Member::Put { key, .. } | Member::Delete { key }) = member;
            self.check_key(key.bytes(), "after write_batch")?;
        }
        Ok(())
    }

    /// A forced compaction: the contents must not change, and the running
    /// store must check clean — blocks, records, index, bitmap and the
    /// per-block live bytes the next victim choice relies on.
    fn compact(&mut self) -> Check {
        let result = self.store().compact();
        if let Some(outcome) = self.acknowledged("compact", result)? {
            let reclaimed = &self.tally.blocks_reclaimed;
            reclaimed.set(reclaimed.get() + outcome.blocks_reclaimed);
        }
        let problems = common::fsck_errors_and_accounting(self.store());
        if !problems.is_empty() {
            return Err(format!("kv-fsck after compaction: {problems:#?}"));
        }
        self.compare_all("after compaction")
    }

    /// Closes or drops the store as `how` says and opens the matching image.
    fn reopen(&mut self, how: Reopen) -> Check {
        Tally::bump(&self.tally.reopens);
        let store = self.store.take().expect("the store is open between operations");
        let mut closed_cleanly = false;
        let image = match how {
            Reopen::Clean => {
                match store.close() {
                    Ok(()) => closed_cleanly = true,
                    // The closing checkpoint found no room; every write is
                    // synced anyway (sync=always), so the image still holds it.
                    Err(Error::NoSpace { .. }) => Tally::bump(&self.tally.no_space),
                    Err(err) => return Err(unexpected("close", &err)),
                }
                self.disk.durable_image()
            }
            Reopen::Kill => {
                store.abandon();
                self.disk.volatile_image()
            }
            Reopen::PowerCut => {
                // Only acknowledged-and-synced writes are in the durable image.
                assert_eq!(
                    self.sync,
                    SyncPolicy::Always,
                    "a power-cut reopen must equal the oracle only with sync=always"
                );
                store.abandon();
                self.disk.durable_image()
            }
        };
        let (disk, store) = self.open(image).map_err(|err| unexpected("reopen", &err))?;
        let report = store.recovery_report();
        let clean = report.checkpoint_id.is_some()
            && report.full_scan_reason.is_none()
            && report.tail_cut.is_none()
            && report.damaged.is_empty();
        if !clean {
            return Err(format!("{how:?} reopen of an untorn image was not clean: {report}"));
        }
        if closed_cleanly && report.records_replayed != 0 {
            return Err(format!("reopen after a clean close replayed records: {report}"));
        }
        self.disk = disk;
        self.store = Some(store);
        self.compare_all(&format!("after {how:?} reopen"))
    }

    /// Opens `image` with the case's sync policy.
    fn open(&self, image: Vec<u8>) -> blockkv_engine::Result<(Arc<SimDisk>, Store)> {
        if self.sync == SyncPolicy::Always {
            return open_image(image, self.clock.clone());
        }
        let disk = Arc::new(SimDisk::from_image(image));
        let store = Store::open_storage(disk.clone(), Path::new("<sim>"), sim_options(self.sync, self.clock.clone()))?;
        Ok((disk, store))
    }

    /// Value, existence and TTL of one key.
    fn check_key(&self, key: &[u8], context: &str) -> Check {
        let now = self.now();
        let store = self.store();
        let want = self.oracle.live(key, now);
        let got = store.get(key).map_err(|err| unexpected("get", &err))?;
        if got.as_deref() != want.map(|e| e.value.as_slice()) {
            return Err(format!(
                "{context}: get {} returned {}, expected {}",
                show_key(key),
                show_value(got.as_deref()),
                show_value(want.map(|e| e.value.as_slice()))
            ));
        }
        let exists = store.exists(key).map_err(|err| unexpected("exists", &err))?;
        ensure_eq(exists, want.is_some(), format_args!("{context}: exists {}", show_key(key)))?;
        let ttl = store.ttl(key).map_err(|err| unexpected("ttl", &err))?;
        ensure_eq(ttl, self.oracle.ttl(key, now), format_args!("{context}: ttl {}", show_key(key)))
    }

    /// The whole contents: every key a full scan returns, and each key's state.
    fn compare_all(&self, context: &str) -> Check {
        let now = self.now();
        let store = self.store();
        let got = store.scan(b"", None, usize::MAX).map_err(|err| unexpected("scan", &err))?;
        let want = self.oracle.scan(b"", None, usize::MAX, now);
        ensure_eq(show_keys(&got), show_keys(&want), format_args!("{context}: all keys"))?;
        for key in &want {
            self.check_key(key, context)?;
        }
        // The index may still hold expired keys, never more than the oracle.
        let stats = store.stats();
        let (live, held) = (self.oracle.live_count(now), self.oracle.held_count());
        if !(live..=held).contains(&stats.keys) {
            return Err(format!("{context}: stats says {} keys; {live} are live and {held} held", stats.keys));
        }
        // Live-byte accounting (what a compactor will trust) counts exactly
        // the records the index holds.
        let (low, high) = self.oracle.live_bytes_bounds(now);
        if !(low..=high).contains(&stats.live_bytes) {
            return Err(format!("{context}: stats says {} live bytes; expected {low}..={high}", stats.live_bytes));
        }
        Ok(())
    }
}

/// Runs one case on a fresh store; the error says which step failed and why.
fn run_case(setup: Setup, ops: &[Op], tally: &Tally) -> Check {
    Model::new(setup, tally).run(ops)
}

/// Runs a fixed case (a regression) and fails the test on any mismatch.
fn replay_case(setup: Setup, ops: &[Op]) {
    if let Err(err) = run_case(setup, ops, &Tally::default()) {
        panic!("{err}");
    }
}

/// Runs `default_cases` random cases (or PROPTEST_CASES) and returns the tally.
fn check(default_cases: u32, setup: Setup, strategy: BoxedStrategy<Vec<Op>>) -> Tally {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(default_cases);
    // No failure file: a shrunk failure becomes a named regression test here.
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let tally = Tally::default();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |ops| run_case(setup, &ops, &tally).map_err(TestCaseError::fail));
    if let Err(err) = result {
        panic!("{err}");
    }
    tally
}

// ---------------------------------------------------------------------------
// Random cases

#[test]
fn colliding_keys_share_a_hash() {
    // The model's colliding keys really collide (else the tests that use them prove less).
    assert_eq!(key_hash(COLLIDING_KEYS[0].as_bytes()), key_hash(COLLIDING_KEYS[1].as_bytes()));
    assert_eq!(key_hash(COLLIDING_KEYS[2].as_bytes()), key_hash(COLLIDING_KEYS[3].as_bytes()));
    assert_ne!(key_hash(COLLIDING_KEYS[0].as_bytes()), key_hash(COLLIDING_KEYS[2].as_bytes()));
}

#[test]
fn random_operations_match_the_oracle() {
    // Every operation in a balanced mix, reopens of all three kinds included.
    let tally = check(256, ROOMY, ops_strategy(BALANCED, 1..=80));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn kill_and_power_cut_reopens_recover_exactly_the_acknowledged_state() {
    // Writes, big values and batches between frequent kill -9 and power-cut
    // reopens: replay of the tail after a checkpoint must lose nothing.
    let mix = Mix {
        put: 25,
        batch: 10,
        checkpoint: 4,
        clean_reopen: 1,
        kill_reopen: 8,
        power_cut_reopen: 6,
        big_values: 4,
        get: 4,
        scan: 2,
        ..BALANCED
    };
    let tally = check(200, ROOMY, ops_strategy(mix, 1..=80));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn checkpoints_and_clean_reopens_keep_every_key() {
    // Many checkpoints and clean closes between writes: each reopen starts
    // from a checkpoint (old snapshot chains freed and reused) and replays nothing.
    let mix = Mix { checkpoint: 10, clean_reopen: 6, kill_reopen: 2, power_cut_reopen: 1, ..BALANCED };
    let tally = check(160, ROOMY, ops_strategy(mix, 1..=80));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn ttls_expire_on_the_clock_across_reopens() {
    // TTL puts, EXPIRE, TTL and clock jumps, with reopens: expiry is absolute
    // time and survives every kind of restart.
    let mix = Mix {
        put: 8,
        put_ttl: 20,
        expire: 15,
        ttl: 12,
        put_at: 10,
        expire_at: 10,
        entry: 6,
        expire_round: 8,
        advance: 15,
        delete: 5,
        big_values: 1,
        kill_reopen: 3,
        clean_reopen: 2,
        ..BALANCED
    };
    let tally = check(128, ROOMY, ops_strategy(mix, 1..=80));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn hash_colliding_keys_stay_distinct() {
    // Keys whose index hashes are equal: puts, deletes, batches, TTLs and
    // replay must each touch only their own key.
    let mix = Mix { keys: Keys::Colliding, delete: 14, batch: 10, kill_reopen: 5, ..BALANCED };
    let tally = check(128, ROOMY, ops_strategy(mix, 1..=60));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn long_histories_over_many_keys_match_the_oracle() {
    // Hundreds of operations over hundreds of keys: larger indexes, snapshot
    // chains of several blocks, and many checkpoints in one history.
    let mix = Mix { keys: Keys::Wide, put: 40, batch: 10, big_values: 1, ..BALANCED };
    let tally = check(32, ROOMY, ops_strategy(mix, 150..=400));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn full_file_refuses_writes_without_effect() {
    // The smallest file fills within a case: NoSpace must leave the contents
    // unchanged, and reads, deletes and reopens keep working.
    let mix = Mix { put: 30, batch: 8, big_values: 12, delete: 6, ..BALANCED };
    let tally = check(400, Setup { file_bytes: SIM_BYTES, sync: SyncPolicy::Always }, ops_strategy(mix, 40..=120));
    assert!(tally.no_space.get() > 0, "the small file filled up at least once");
}

#[test]
fn heavy_churn_with_compactions_and_reopens_matches_the_oracle() {
    // A small file overwritten many times over with puts, deletes and TTLs,
    // compactions forced between them and by writes that find no room, and
    // every kind of reopen: nothing lost, nothing deleted or expired comes
    // back, and the accounting stays exact.
    let mix = Mix {
        put: 30,
        put_ttl: 10,
        delete: 14,
        batch: 8,
        expire: 6,
        advance: 8,
        compact: 6,
        checkpoint: 2,
        kill_reopen: 4,
        power_cut_reopen: 3,
        clean_reopen: 2,
        big_values: 4,
        ..BALANCED
    };
    let tally =
        check(96, Setup { file_bytes: CHURN_FILE_BYTES, sync: SyncPolicy::Always }, ops_strategy(mix, 100..=300));
    assert!(tally.blocks_reclaimed.get() > 0, "compactions reclaimed blocks");
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

#[test]
fn kill_reopens_without_sync_recover_every_issued_write() {
    // sync=none: nothing is synced between checkpoints, yet a kill -9 keeps
    // every issued write, so each kill reopen must equal the oracle exactly.
    let mix = Mix { kill_reopen: 8, power_cut_reopen: 0, batch: 10, big_values: 3, ..BALANCED };
    let setup = Setup { file_bytes: FILE_BYTES, sync: SyncPolicy::None };
    let tally = check(128, setup, ops_strategy(mix, 1..=80));
    assert!(tally.reopens.get() > 0, "cases reopened the store");
}

// ---------------------------------------------------------------------------
// Fixed cases

#[test]
fn records_at_every_block_boundary_survive_reopens() {
    // A record placed where the one before left `room` bytes, for every room
    // a FULL record can leave: FULL fitting with its block's SEAL or one byte
    // over, a FIRST with one value byte or no room for one, LAST fragments
    // that just fit beside the SEAL or just do not.
    let setup = Setup { file_bytes: 1024 * 1024, sync: SyncPolicy::Always };
    let (header, fragment_max) = (RECORD_HEADER_BYTES, FRAGMENT_PAYLOAD_BYTES_MAX);
    let block_payload = BLOCK_BYTES - BLOCK_HEADER_BYTES;
    let mut cases = 0;
    for room in SEAL_BYTES..=SEAL_BYTES + header + 8 {
        // Key "a" at the start of a fresh block, leaving `room` bytes after it.
        let first_len = block_payload - header - 1 - room;
        // Key "b": a FULL record in a fresh block, near its largest.
        let mut second_lens = vec![fragment_max - 1 - SEAL_BYTES, fragment_max - SEAL_BYTES, fragment_max - 1];
        // A FULL record that fills `room` up to the SEAL, and one byte more.
        if let Some(fit) = (room + 1).checked_sub(header + 1 + SEAL_BYTES) {
            second_lens.extend([fit.saturating_sub(1), fit]);
        }
        // A FIRST taking all of `room`, then LAST/MIDDLE fragments at their edges.
        let first_part = room.saturating_sub(header + 1).max(1);
        for rest in
            [fragment_max - SEAL_BYTES, fragment_max - SEAL_BYTES + 1, fragment_max, 2 * fragment_max - SEAL_BYTES]
        {
            second_lens.extend([first_part + rest - 1, first_part + rest, first_part + rest + 1]);
        }
        for second_len in second_lens {
            cases += 1;
            replay_case(
                setup,
                &[
                    Op::Put { key: k("a"), value: v(first_len, 1) },
                    Op::Put { key: k("b"), value: v(second_len, 2) },
                    Op::Put { key: k("c"), value: v(3, 3) },
                    Op::KillReopen,
                    Op::Put { key: k("d"), value: v(5, 4) },
                    Op::Delete { key: k("a") },
                    Op::PowerCutReopen,
                    Op::Put { key: k("b"), value: v(second_len, 5) },
                    Op::CleanReopen,
                ],
            );
        }
    }
    assert!(cases > 500, "ran {cases} placements");
}

#[test]
fn same_key_twice_in_a_batch_then_kill_keeps_the_last() {
    // The last write to a key inside one batch wins, in memory and after replay.
    replay_case(
        ROOMY,
        &[
            Op::Put { key: k("a"), value: v(10, 1) },
            Op::Checkpoint,
            Op::Batch {
                members: vec![
                    Member::Put { key: k("a"), value: v(9_000, 2), ttl_ms: None },
                    Member::Delete { key: k("b") },
                    Member::Put { key: k("a"), value: v(20, 3), ttl_ms: Some(500) },
                ],
            },
            Op::KillReopen,
            Op::Batch {
                members: vec![
                    Member::Put { key: k("b"), value: v(1, 4), ttl_ms: None },
                    Member::Delete { key: k("b") },
                ],
            },
            Op::PowerCutReopen,
            Op::AdvanceClock { ms: 500 },
            Op::Get { key: k("a") },
        ],
    );
}

#[test]
fn an_expired_key_the_compactor_unlinked_is_not_an_fsck_error() {
    // The compactor drops an expired key with no older version from the
    // index: kv-fsck must call its record expired, not "newest record is not
    // in the index" (an error).
    replay_case(
        ROOMY,
        &[
            Op::PutTtl { key: k(""), value: v(0, 0), ttl_ms: 1 },
            Op::AdvanceClock { ms: 1 },
            Op::Put { key: k("b"), value: v(3968, 0) },
            Op::Put { key: k("a"), value: v(0, 0) },
            Op::Compact,
        ],
    );
}

#[test]
fn a_snapshot_never_overwrites_a_tombstone_a_full_scan_still_needs() {
    // A snapshot chain must pass over a free block holding a record that
    // hides older versions of its key (here "c", whose tombstone the
    // compactions dropped) while an older put of the key lies in a free block
    // a full scan still reads: kv-fsck would find that put newest and not in
    // the index (checkpoint.rs, `allocate_chain`). The filler puts bring the
    // 512 KiB file to where the compactions leave such blocks.
    replay_case(
        Setup { file_bytes: CHURN_FILE_BYTES, sync: SyncPolicy::Always },
        &[
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Put { key: k("aa"), value: v(23, 0) },
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Put { key: k("c1371838"), value: v(62, 0) },
            Op::Put { key: k("bc"), value: v(10725, 0) },
            Op::Put { key: k("ba"), value: v(149, 0) },
            Op::Put { key: k("aaa"), value: v(285, 0) },
            Op::Put { key: k("aab"), value: v(199, 0) },
            Op::Put { key: k("a"), value: v(8658, 0) },
            Op::Put { key: k("a"), value: v(272, 0) },
            Op::Put { key: k("ab"), value: v(207, 0) },
            Op::Put { key: k("bc"), value: v(255, 0) },
            Op::Put { key: k("c2000402"), value: v(259, 0) },
            Op::Put { key: k("b"), value: v(57, 0) },
            Op::Put { key: k("ca"), value: v(189, 0) },
            Op::Put { key: Key::long(), value: v(202, 0) },
            Op::Put { key: k(""), value: v(128, 0) },
            Op::Compact,
            Op::Batch {
                members: vec![
                    Member::Put { key: k(""), value: v(150, 0), ttl_ms: None },
                    Member::Put { key: k("b"), value: v(19762, 0), ttl_ms: None },
                    Member::Put { key: k("c"), value: v(150, 0), ttl_ms: None },
                    Member::Put { key: k(""), value: v(91, 0), ttl_ms: None },
                ],
            },
            Op::KillReopen,
            Op::Expire { key: k(""), ttl_ms: None },
            Op::Put { key: k(""), value: v(7292, 0) },
            Op::Batch {
                members: vec![
                    Member::Put { key: k("bb"), value: v(103, 0), ttl_ms: None },
                    Member::Put { key: k("aab"), value: v(22, 0), ttl_ms: None },
                    Member::Delete { key: k("") },
                    Member::Put { key: k(""), value: v(157, 0), ttl_ms: None },
                    Member::Delete { key: k("c") },
                ],
            },
            Op::Compact,
            Op::CleanReopen,
            Op::Compact,
            Op::CleanReopen,
            Op::Compact,
        ],
    );
}

#[test]
fn an_expired_record_broken_by_block_reuse_still_hides_older_versions() {
    // An expired two-block record ("c2000402" after its EXPIRE) whose second
    // block the compaction reused still hides the key's older put: a full
    // scan keeps its FIRST fragment alone (scan.rs, `assemble_chains`), or
    // kv-fsck finds the old put newest and not in the index.
    replay_case(
        Setup { file_bytes: CHURN_FILE_BYTES, sync: SyncPolicy::Always },
        &[
            Op::Put { key: k("c2000402"), value: v(1965, 0) },
            Op::CleanReopen,
            Op::Expire { key: k("c2000402"), ttl_ms: Some(1) },
            Op::Put { key: k(""), value: v(3904, 0) },
            Op::AdvanceClock { ms: 1 },
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Compact,
            Op::CleanReopen,
            Op::Checkpoint,
            Op::Compact,
        ],
    );
}

#[test]
fn an_expired_key_the_compactor_unlinked_may_return_expired_after_a_kill() {
    // A key a writer's assist pass unlinks expired, then deleted, comes back expired after a kill reopen.
    // The large put leaves 10 of the 512 KiB file's 125 data blocks free,
    // under FREE_FRACTION_URGENT (in a 256 KiB file the reserve keeps puts
    // above it), so the next put runs an assist pass, which writes no
    // checkpoint. Its oldest victim holds only "a" (expired: unlinked, no
    // tombstone) and b's dead first version ("c" sealed it before the large
    // value), so it empties. The delete finds no entry and writes nothing,
    // and the replay from the creation checkpoint brings "a" back: the key
    // count includes it, and the oracle holds it as a ghost.
    let tally = Tally::default();
    let mut model = Model::new(Setup { file_bytes: CHURN_FILE_BYTES, sync: SyncPolicy::Always }, &tally);
    let apply = |model: &mut Model<'_>, ops: &[Op]| {
        for op in ops {
            if let Err(err) = model.apply(op) {
                panic!("{op:?}: {err}");
            }
        }
    };
    apply(
        &mut model,
        &[
            Op::PutTtl { key: k("a"), value: v(0, 0), ttl_ms: 1 },
            Op::AdvanceClock { ms: 1 },
            Op::Put { key: k("b"), value: v(3900, 0) },
            Op::Put { key: k("c"), value: v(1000, 0) },
            Op::Put { key: k("b"), value: v(450_000, 0) },
        ],
    );
    let before = model.store().stats();
    apply(&mut model, &[Op::Put { key: k("c"), value: v(0, 0) }]);
    let after = model.store().stats();
    assert_eq!(
        (after.expired_dropped, after.blocks_pending_free, after.checkpoints),
        (before.expired_dropped + 1, before.blocks_pending_free + 1, before.checkpoints),
        "the put's assist pass unlinks \"a\" and empties its block, and no checkpoint follows"
    );
    apply(&mut model, &[Op::Delete { key: k("a") }, Op::KillReopen]);
    assert_eq!(model.store().stats().keys, 3, "\"a\" is back in the index, expired, beside \"b\" and \"c\"");
    if let Err(err) = model.run(&[]) {
        panic!("{err}");
    }
}

#[test]
fn a_clean_close_covers_the_tombstones_its_checkpoint_carried() {
    // In a nearly full file the closing checkpoint's snapshot can only take
    // free blocks holding tombstones a full scan needs, so it carries them to
    // the head of the log, after its capture: the clean close must checkpoint
    // again, or the reopen replays them (store.rs, `close`). The case's last
    // step is the model's own final clean reopen.
    replay_case(
        Setup { file_bytes: SIM_BYTES, sync: SyncPolicy::Always },
        &[
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Batch {
                members: vec![
                    Member::Put { key: k("c2000402"), value: v(7894, 0), ttl_ms: None },
                    Member::Put { key: k("cca"), value: v(15411, 0), ttl_ms: None },
                    Member::Put { key: k("bb"), value: v(101, 0), ttl_ms: None },
                ],
            },
            Op::Put { key: k("aa"), value: v(62, 0) },
            Op::Batch {
                members: vec![
                    Member::Put { key: k(""), value: v(11266, 0), ttl_ms: None },
                    Member::Delete { key: k("aaa") },
                ],
            },
            Op::Put { key: k("c"), value: v(16705, 0) },
            Op::Put { key: k("a"), value: v(223, 0) },
            Op::Put { key: k("cca"), value: v(82, 0) },
            Op::Put { key: k(""), value: v(13454, 0) },
            Op::Put { key: k(""), value: v(9103, 0) },
            Op::Put { key: Key::long(), value: v(13621, 0) },
            Op::Put { key: k("ac"), value: v(102, 0) },
            Op::Put { key: k("c2000403"), value: v(3911, 0) },
            Op::Expire { key: k(""), ttl_ms: None },
            Op::Put { key: k(""), value: v(19481, 0) },
            Op::Put { key: k(""), value: v(74, 0) },
            Op::Batch {
                members: vec![
                    Member::Put { key: k("ccb"), value: v(65, 0), ttl_ms: None },
                    Member::Put { key: k("ac"), value: v(102, 0), ttl_ms: None },
                    Member::Put { key: k(""), value: v(124, 0), ttl_ms: None },
                    Member::Put { key: k("a"), value: v(19880, 0), ttl_ms: None },
                    Member::Put { key: k("ccb"), value: v(290, 0), ttl_ms: None },
                ],
            },
            Op::Put { key: k("ab"), value: v(132, 0) },
            Op::Delete { key: k("") },
            Op::Put { key: k("aba"), value: v(26, 0) },
            Op::Put { key: k("bc"), value: v(13572, 0) },
            Op::Put { key: k(""), value: v(9029, 0) },
            Op::Delete { key: k("ccb") },
            Op::Put { key: k(""), value: v(252, 0) },
            Op::Delete { key: k("") },
            Op::Put { key: k("b"), value: v(153, 0) },
            Op::Put { key: k("bac"), value: v(15293, 0) },
            Op::Put { key: Key::long(), value: v(8827, 0) },
            Op::Put { key: k("aaa"), value: v(15183, 0) },
            Op::Put { key: k("ba"), value: v(239, 0) },
            Op::Put { key: k("c1371838"), value: v(195, 0) },
            Op::Put { key: k("caa"), value: v(16591, 0) },
            Op::Put { key: k("aab"), value: v(86, 0) },
            Op::Put { key: k("ac"), value: v(10199, 0) },
            Op::Put { key: k("ab"), value: v(12018, 0) },
            Op::Compact,
            Op::Batch {
                members: vec![
                    Member::Delete { key: Key::long() },
                    Member::Put { key: k("c"), value: v(0, 0), ttl_ms: None },
                ],
            },
            Op::Batch {
                members: vec![
                    Member::Put { key: k(""), value: v(13547, 0), ttl_ms: None },
                    Member::Put { key: k("aac"), value: v(15458, 0), ttl_ms: None },
                    Member::Put { key: Key::long(), value: v(3989, 0), ttl_ms: None },
                ],
            },
            Op::Put { key: k(""), value: v(3975, 0) },
            Op::Put { key: Key::long(), value: v(0, 0) },
            Op::Delete { key: k("") },
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Put { key: k(""), value: v(0, 0) },
            Op::Put { key: k("a"), value: v(12762, 0) },
            Op::Put { key: k(""), value: v(3519, 0) },
            Op::Put { key: k(""), value: v(12942, 0) },
            Op::Put { key: k("b"), value: v(1669, 0) },
            Op::Compact,
            Op::Put { key: k(""), value: v(0, 0) },
        ],
    );
}
