//! Commands that walk the keyspace: SCAN (MATCH glob, COUNT, TYPE), KEYS,
//! RANDOMKEY, FLUSHDB and FLUSHALL.

use super::failure::{Failure, Reply, integer_arg};
use super::glob;
use super::spec::Cx;
use blockkv_protocol::resp::Command;

/// Keys one SCAN visits when COUNT is not given (Redis's default).
const SCAN_COUNT_DEFAULT: usize = 10;
/// The most keys one SCAN visits, whatever COUNT asks.
pub const SCAN_COUNT_MAX: usize = 100_000;

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
    let (next, mut keys) = page(cx, cursor, count, pattern.as_deref())?;
    // Inside a transaction: its own writes, as Redis's SCAN in MULTI sees them.
    keys.retain(|key| cx.db.visible(key));
    if next == 0 {
        keys.extend(cx.db.staged_live());
        keys.sort_unstable();
        keys.dedup();
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

/// The keys one SCAN call visits from `cursor` (about `count`), and the
/// cursor after them (0: done).
fn page(cx: &mut Cx, cursor: u64, count: usize, pattern: Option<&[u8]>) -> Result<(u64, Vec<Vec<u8>>), Failure> {
    let prefix = pattern.map_or(&[][..], glob::literal_prefix);
    let start_after = match cursor {
        0 => None,
        cursor => match cx.ctx.cursors.resume(cursor) {
            Some(last) => Some(last),
            // A cursor kvd never gave, or forgot: the iteration is over.
            None => return Ok((0, Vec::new())),
        },
    };
    let keys = cx.ctx.store.scan(prefix, start_after.as_deref(), count + 1)?;
    let more = keys.len() > count;
    let mut keys = keys;
    keys.truncate(count);
    let next = match keys.last() {
        Some(last) if more => cx.ctx.cursors.remember(last.clone()),
        _ => 0,
    };
    Ok((next, keys))
}

/// KEYS pattern: every key matching it, in one reply.
pub(super) fn keys(cx: &mut Cx, args: &Command) -> Reply {
    let pattern = &args[1];
    let mut keys = cx.ctx.store.scan(glob::literal_prefix(pattern), None, usize::MAX)?;
    keys.retain(|key| cx.db.visible(key));
    keys.extend(cx.db.staged_live());
    keys.sort_unstable();
    keys.dedup();
    let matching: Vec<&Vec<u8>> = keys.iter().filter(|key| glob::matches(pattern, key)).collect();
    cx.out.array(matching.len());
    for key in matching {
        cx.out.bulk(key);
    }
    Ok(())
}

/// RANDOMKEY: some key, or nil in an empty store.
pub(super) fn randomkey(cx: &mut Cx, _args: &Command) -> Reply {
    let key = cx.ctx.store.scan(b"", None, 1)?.pop();
    cx.out.bulk_or_null(key.as_deref());
    Ok(())
}

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
