//! Commands that walk the keyspace: SCAN (MATCH glob, COUNT, TYPE), KEYS,
//! RANDOMKEY, FLUSHDB and FLUSHALL. All walk the index through the engine's
//! cursor (`Store::scan_page`): a SCAN call visits about COUNT index entries
//! and reads only their records, whatever the size of the store; with
//! MATCH, COUNT bounds the entries visited, not the keys returned, as in
//! Redis.

use super::failure::{Failure, Reply, integer_arg};
use super::glob;
use super::spec::Cx;
use blockkv_protocol::resp::Command;

/// Index entries one SCAN visits when COUNT is not given (Redis's default).
const SCAN_COUNT_DEFAULT: usize = 10;
/// The most index entries one SCAN visits, whatever COUNT asks (the
/// engine's `SCAN_VISIT_MAX`).
pub const SCAN_COUNT_MAX: usize = blockkv_engine::limits::SCAN_VISIT_MAX;

/// COUNT above which a SCAN runs on a worker rather than on the event loop:
/// a page of this many index entries takes about 0.4 ms (docs/BENCHMARKS.md).
const SCAN_INLINE_COUNT_MAX: i64 = 1000;

/// Whether a SCAN asks for more than the event loop runs itself.
pub(super) fn scan_is_large(args: &Command) -> bool {
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        if option.eq_ignore_ascii_case(b"COUNT") {
            return options.next().and_then(blockkv_engine::parse_integer).is_none_or(|n| n > SCAN_INLINE_COUNT_MAX);
        }
    }
    false
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub(super) fn scan(cx: &mut Cx, args: &Command) -> Reply {
    // Redis reads the cursor as an unsigned 64-bit number (strtoul: "-1" wraps).
    let text = std::str::from_utf8(&args[1]).ok();
    let cursor: u64 = text
        .and_then(|t| t.parse::<u64>().ok().or_else(|| t.parse::<i64>().ok().map(|n| n as u64)))
        .ok_or_else(|| Failure::err("invalid cursor"))?;
    let (mut pattern, mut count, mut strings_only) = (None, SCAN_COUNT_DEFAULT, true);
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(Failure::syntax)?;
        match option.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = Some(value.to_vec()),
            b"COUNT" => {
                let asked = integer_arg(value)?;
                if asked < 1 {
                    return Err(Failure::syntax());
                }
                count = (asked as usize).min(SCAN_COUNT_MAX);
            }
            // Every key kvd holds is a string.
            b"TYPE" => strings_only = value.eq_ignore_ascii_case(b"string"),
            _ => return Err(Failure::syntax()),
        }
    }
    let (next, mut keys) = page(cx, cursor, count)?;
    // Inside a transaction: its own writes, as Redis's SCAN in MULTI sees them.
    keys.retain(|key| cx.db.visible(key));
    if next == 0 {
        let staged = cx.db.staged_live();
        if !staged.is_empty() {
            keys.extend(staged);
            keys.sort_unstable();
            keys.dedup();
        }
    }
    cx.out.array(2);
    cx.out.bulk(next.to_string().as_bytes());
    let shown: Vec<&Vec<u8>> =
        keys.iter().filter(|key| strings_only && pattern.as_deref().is_none_or(|p| glob::matches(p, key))).collect();
    cx.out.array(shown.len());
    for key in shown {
        cx.out.bulk(key);
    }
    Ok(())
}

/// The keys one SCAN call visits from `cursor` (about `count` index
/// entries, never splitting a hash: `Store::scan_page`), and the cursor
/// after them (0: done). The cursor is the engine's: a position in key-hash
/// order, valid forever, with no state kept between calls.
fn page(cx: &mut Cx, cursor: u64, count: usize) -> Result<(u64, Vec<Vec<u8>>), Failure> {
    let page = cx.ctx.store.scan_page(cursor, count)?;
    Ok((page.next, page.into_keys()))
}

/// KEYS pattern: every key matching it, in one reply (one walk of the
/// index, O(keys)).
pub(super) fn keys(cx: &mut Cx, args: &Command) -> Reply {
    let pattern = &args[1];
    let mut keys = Vec::new();
    cx.ctx.store.for_each_key(|scanned| {
        if glob::matches(pattern, &scanned.key) {
            keys.push(scanned.key);
        }
    })?;
    keys.retain(|key| cx.db.visible(key));
    let staged = cx.db.staged_live();
    if !staged.is_empty() {
        keys.extend(staged.into_iter().filter(|key| glob::matches(pattern, key)));
        keys.sort_unstable();
        keys.dedup();
    }
    cx.out.array(keys.len());
    for key in &keys {
        cx.out.bulk(key);
    }
    Ok(())
}

/// RANDOMKEY: the first key from a random place in key-hash order, or nil
/// in an empty store.
pub(super) fn randomkey(cx: &mut Cx, _args: &Command) -> Reply {
    use std::hash::BuildHasher;
    // A cursor is a 32-bit hash to start from (1..=2^32 - 1; 0 starts at the beginning).
    let start = std::collections::hash_map::RandomState::new().hash_one(cx.db.now_ms()) as u32;
    let mut cursor = u64::from(start.max(1));
    let mut wrapped = false;
    loop {
        let page = cx.ctx.store.scan_page(cursor, RANDOMKEY_VISIT)?;
        if let Some(key) = page.keys.into_iter().map(|scanned| scanned.key).find(|key| cx.db.visible(key)) {
            cx.out.bulk(&key);
            return Ok(());
        }
        match page.next {
            0 if wrapped => break,
            0 => {
                wrapped = true;
                cursor = 0;
            }
            next => cursor = next,
        }
    }
    let staged = cx.db.staged_live();
    cx.out.bulk_or_null(staged.first().map(Vec::as_slice));
    Ok(())
}

/// Index entries one RANDOMKEY page visits.
const RANDOMKEY_VISIT: usize = 16;

/// FLUSHDB / FLUSHALL [ASYNC | SYNC]: every key removed (kvd has one database).
pub(super) fn flush(cx: &mut Cx, args: &Command) -> Reply {
    match args.len() {
        1 => {}
        2 if args[1].eq_ignore_ascii_case(b"ASYNC") || args[1].eq_ignore_ascii_case(b"SYNC") => {}
        _ => return Err(Failure::syntax()),
    }
    cx.db.clear()?;
    cx.out.ok();
    Ok(())
}
