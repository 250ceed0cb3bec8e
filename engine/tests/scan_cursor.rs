//! `Store::scan_page`: the stateless cursor over the index. Each test names
//! the guarantee it tries to break.

mod common;

use blockkv_engine::limits::SCAN_VISIT_MAX;
use blockkv_engine::{Clock, ScanPage, Store, SyncPolicy, key_hash};
use common::new_sim_store;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

const SIM_32_MIB: u64 = 32 << 20;

/// Every page of a walk from cursor 0, calling `between` after each.
fn walk(store: &Store, visit: usize, mut between: impl FnMut(&Store)) -> Vec<ScanPage> {
    let mut pages = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.scan_page(cursor, visit).expect("scan page");
        cursor = page.next;
        pages.push(page);
        if cursor == 0 {
            return pages;
        }
        between(store);
    }
}

fn keys_of(pages: &[ScanPage]) -> Vec<Vec<u8>> {
    pages.iter().flat_map(|page| page.keys.iter().map(|scanned| scanned.key.clone())).collect()
}

fn stable_key(i: u32) -> Vec<u8> {
    format!("stable:{i}").into_bytes()
}

#[test]
fn every_key_present_for_the_whole_walk_is_returned_once_while_keys_come_and_go_and_the_index_grows() {
    // 2,000 keys present throughout; between pages of a walk at visit 7,
    // 60 new keys are put and 30 of the new ones deleted, so the index grows
    // past ten times its size and its shards split under the walk.
    // Each key present throughout comes back once, no key twice, and no key
    // deleted before the walk started comes back.
    let (_disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    for i in 0..2_000 {
        store.put(&stable_key(i), b"v").expect("put");
    }
    for i in 0..500 {
        let key = format!("gone:{i}");
        store.put(key.as_bytes(), b"v").expect("put");
        assert!(store.delete(key.as_bytes()).expect("delete"));
    }
    let mut added: Vec<Vec<u8>> = Vec::new();
    let mut next_churn = 0u64;
    let pages = walk(&store, 7, |store| {
        for _ in 0..60 {
            let key = format!("churn:{next_churn}").into_bytes();
            next_churn += 1;
            store.put(&key, b"c").expect("put churn");
            added.push(key);
        }
        for _ in 0..30 {
            let at = (next_churn as usize * 7919) % added.len();
            let key = added.swap_remove(at);
            assert!(store.delete(&key).expect("delete churn"));
        }
    });
    assert!(store.key_count() > 20_000, "the index grew under the walk: {} keys", store.key_count());
    let keys = keys_of(&pages);
    let mut seen = HashSet::new();
    for key in &keys {
        assert!(seen.insert(key.clone()), "{} returned twice", String::from_utf8_lossy(key));
        assert!(!key.starts_with(b"gone:"), "a key deleted before the walk came back");
    }
    let missing: Vec<u32> = (0..2_000).filter(|&i| !seen.contains(&stable_key(i))).collect();
    assert!(missing.is_empty(), "keys present all along but not returned: {missing:?}");
    assert_eq!(store.stats().corrupt_reads, 0);
}

/// Two different keys with one 32-bit hash (found by search: about 80,000
/// keys give a pair by the birthday bound).
fn colliding_pair() -> (Vec<u8>, Vec<u8>) {
    let mut first_with = HashMap::new();
    for i in 0u32.. {
        let key = format!("collide:{i}").into_bytes();
        if let Some(other) = first_with.insert(key_hash(&key), key.clone()) {
            return (other, key);
        }
    }
    unreachable!("a u32 counter ran out before two hashes met")
}

#[test]
fn keys_with_one_hash_always_come_back_in_the_same_page() {
    // Two keys share a 32-bit hash among 3,000 others; at every visit count
    // from 1, the page holding one holds the other, and a page asked for
    // one entry still returns both.
    let (a, b) = colliding_pair();
    assert_ne!(a, b);
    assert_eq!(key_hash(&a), key_hash(&b));
    let (_disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    for i in 0..3_000 {
        store.put(&stable_key(i), b"v").expect("put");
    }
    store.put(&a, b"a").expect("put a");
    store.put(&b, b"b").expect("put b");
    for visit in [1, 2, 3, 10, 1000] {
        let pages = walk(&store, visit, |_| {});
        let holding: Vec<&ScanPage> =
            pages.iter().filter(|page| page.keys.iter().any(|k| k.key == a || k.key == b)).collect();
        assert_eq!(holding.len(), 1, "visit {visit}: the pair came in {} pages", holding.len());
        let page_keys: BTreeSet<&[u8]> = holding[0].keys.iter().map(|k| k.key.as_slice()).collect();
        assert!(page_keys.contains(a.as_slice()) && page_keys.contains(b.as_slice()), "visit {visit}");
        assert_eq!(keys_of(&pages).len(), 3_002, "visit {visit}");
    }
}

#[test]
fn pages_come_in_key_hash_order_and_cover_every_key() {
    // Keys of all pages, in the order returned, are sorted by hash; a
    // cursor is the hash the next page starts from.
    let (_disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    for i in 0..5_000 {
        store.put(&stable_key(i), b"v").expect("put");
    }
    let mut from = 0u64;
    let mut hashes = Vec::new();
    for page in walk(&store, 25, |_| {}) {
        for scanned in &page.keys {
            let hash = key_hash(&scanned.key);
            assert!(u64::from(hash) >= from && (page.next == 0 || u64::from(hash) < page.next));
            hashes.push(hash);
        }
        assert!(page.keys.len() <= 25 + 1, "a page of about 25 entries had {}", page.keys.len());
        from = page.next;
    }
    assert_eq!(hashes.len(), 5_000);
    assert!(hashes.is_sorted());
}

#[test]
fn scanned_keys_carry_expiry_and_value_length_and_expired_keys_are_left_out() {
    // A persistent key, a key with a TTL and a key whose TTL has passed:
    // the page gives the first two with their header's expiry and length.
    let (_disk, store, clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    store.put(b"forever", b"12345").expect("put");
    store.put_with_ttl(b"later", &[7u8; 3000], Some(Duration::from_secs(60))).expect("put");
    store.put_with_ttl(b"soon", b"x", Some(Duration::from_secs(1))).expect("put");
    let later_ms = clock.now_ms() + 60_000;
    clock.advance_ms(1_000);
    let mut scanned: Vec<_> = walk(&store, 1000, |_| {}).into_iter().flat_map(|page| page.keys).collect();
    scanned.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(scanned.len(), 2, "the expired key is left out: {scanned:?}");
    assert_eq!((scanned[0].key.as_slice(), scanned[0].expires_ms, scanned[0].value_len), (&b"forever"[..], 0, 5));
    assert_eq!(
        (scanned[1].key.as_slice(), scanned[1].expires_ms, scanned[1].value_len),
        (&b"later"[..], later_ms, 3000)
    );
}

#[test]
fn a_damaged_record_is_skipped_and_counted() {
    // One key's record gets a flipped byte: the walk leaves that key out,
    // returns the rest, and counts one corrupt read.
    let (disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    for i in 0..100 {
        store.put(&stable_key(i), b"value").expect("put");
    }
    let ranges = store.locate(&stable_key(42)).expect("locate").expect("live");
    let (at, bytes) = ranges[0];
    disk.corrupt(at + u64::from(bytes) - 1, &[0xff]);
    let keys: BTreeSet<Vec<u8>> = keys_of(&walk(&store, 10, |_| {})).into_iter().collect();
    assert_eq!(keys.len(), 99);
    assert!(!keys.contains(&stable_key(42)));
    assert_eq!(store.stats().corrupt_reads, 1);
}

#[test]
fn any_cursor_is_valid_and_visit_counts_are_bounded() {
    // A cursor past the hash space is an empty last page; a visit count of
    // 0 still moves forward; one above the limit is taken as the limit.
    let (_disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    let key_count = SCAN_VISIT_MAX as u32 + 5_000;
    for i in 0..key_count {
        store.put(&stable_key(i), b"v").expect("put");
    }
    for cursor in [1u64 << 32, u64::MAX] {
        assert_eq!(store.scan_page(cursor, 10).expect("page"), ScanPage::default());
    }
    let page = store.scan_page(0, 0).expect("page");
    assert!(!page.keys.is_empty() && page.next != 0);
    let most = store.scan_page(0, usize::MAX).expect("page");
    // One entry fewer when the limit falls among keys of one hash.
    assert!((SCAN_VISIT_MAX - 1..=SCAN_VISIT_MAX).contains(&most.keys.len()), "{} keys", most.keys.len());
    assert_ne!(most.next, 0);
    let rest = store.scan_page(most.next, usize::MAX).expect("page");
    assert_eq!((most.keys.len() + rest.keys.len(), rest.next), (key_count as usize, 0));
    let middle = store.scan_page(u64::from(u32::MAX / 2), 10).expect("page");
    assert!(middle.keys.iter().all(|k| key_hash(&k.key) >= u32::MAX / 2));
}

/// Writer rounds (overwrites, then a compaction) the walks of the
/// concurrency test run against at least.
const WRITER_ROUNDS_MIN: u32 = 100;

#[test]
fn paging_against_concurrent_writers_and_compaction_loses_no_key_and_counts_no_damage() {
    // A writer overwrites the 2,000 stable keys and churns others while
    // compacting, so blocks a page's entries name are freed and reused
    // under it; walks at visit 10 still return every stable key once and
    // count no corrupt read.
    let (_disk, store, _clock) = new_sim_store(4 << 20, SyncPolicy::None);
    let store = Arc::new(store);
    for i in 0..2_000 {
        store.put(&stable_key(i), &[1u8; 200]).expect("put");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU32::new(0));
    let writer = {
        let (store, stop, rounds) = (store.clone(), stop.clone(), rounds.clone());
        std::thread::spawn(move || {
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                for i in (round % 7..2_000).step_by(7) {
                    store.put(&stable_key(i), &[round as u8; 200]).expect("overwrite");
                }
                let churn = format!("churn:{}", round % 50).into_bytes();
                store.put(&churn, b"c").expect("put churn");
                if round.is_multiple_of(3) {
                    store.delete(&churn).expect("delete churn");
                }
                store.compact().expect("compact");
                round += 1;
                rounds.store(round, Ordering::Relaxed);
            }
        })
    };
    let mut walks = 0;
    while walks < 5 || rounds.load(Ordering::Relaxed) < WRITER_ROUNDS_MIN {
        walks += 1;
        let keys = keys_of(&walk(&store, 10, |_| {}));
        let unique: HashSet<&Vec<u8>> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "a key came back twice");
        let missing = (0..2_000).filter(|&i| !unique.contains(&stable_key(i))).count();
        assert_eq!(missing, 0);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(store.stats().blocks_reclaimed > 0, "compaction freed blocks under the walks");
    assert_eq!(store.stats().corrupt_reads, 0, "after {walks} walks");
}

#[test]
fn scan_keeps_its_sorted_prefix_semantics_over_the_cursor() {
    // The sorted scan, now built on pages, with a limit far below the
    // matches (trimmed as it goes) and a start_after.
    let (_disk, store, _clock) = new_sim_store(SIM_32_MIB, SyncPolicy::None);
    for i in 0..3_000 {
        store.put(format!("user:{i:05}").as_bytes(), b"v").expect("put");
        store.put(format!("item:{i:05}").as_bytes(), b"v").expect("put");
    }
    let want: Vec<Vec<u8>> = (1_000..1_005).map(|i| format!("user:{i:05}").into_bytes()).collect();
    assert_eq!(store.scan(b"user:", Some(b"user:00999"), 5).expect("scan"), want);
    assert_eq!(store.scan(b"user:", None, usize::MAX).expect("scan").len(), 3_000);
    assert!(store.scan(b"", None, 0).expect("scan").is_empty());
    let mut all = 0;
    store.for_each_key(|_| all += 1).expect("walk");
    assert_eq!(all, 6_000);
}
