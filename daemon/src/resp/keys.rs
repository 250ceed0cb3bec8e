//! Key commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX, XX, GT, LT),
//! EXPIRETIME, PEXPIRETIME, TTL, PTTL, PERSIST, TYPE, RENAME, RENAMENX,
//! COPY, RANDOMKEY, DBSIZE. Walking the keyspace (SCAN, KEYS, FLUSHDB) is
//! in `walk.rs`.

use super::failure::{Failure, Reply, integer_arg};
use super::spec::Cx;
use blockkv_protocol::resp::Command;

/// Which expiries EXPIRE's NX, XX, GT, LT let it replace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    /// NX: only a key without one.
    WithoutExpiry,
    /// XX: only a key with one.
    WithExpiry,
    /// GT: only a later one (no expiry counts as never).
    Later,
    /// LT: only a sooner one.
    Sooner,
}

/// EXPIRE … with a condition reads the expiry first: it runs alone.
pub(super) fn expire_conditional(args: &Command) -> bool {
    args.len() > 3
}

fn condition(args: &Command) -> Result<Vec<Only>, Failure> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in args.iter().skip(3) {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Err(Failure::err(format_args!("Unsupported option {}", String::from_utf8_lossy(option))));
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Failure::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(Failure::err("GT and LT options at the same time are not compatible"));
    }
    let given = [(nx, Only::WithoutExpiry), (xx, Only::WithExpiry), (gt, Only::Later), (lt, Only::Sooner)];
    Ok(given.into_iter().filter(|(on, _)| *on).map(|(_, condition)| condition).collect())
}

/// EXPIRE key seconds / PEXPIRE key ms / EXPIREAT key unix-s / PEXPIREAT
/// key unix-ms, [NX | XX | GT | LT]: 1 if the expiry was set. A time
/// already past removes the key.
fn expire_with(cx: &mut Cx, args: &Command, unit_ms: i64, absolute: bool, name: &str) -> Reply {
    // Redis reads the options before the time.
    let only = condition(args)?;
    let amount = integer_arg(&args[2])?;
    let invalid = || Failure::err(format_args!("invalid expire time in '{name}' command"));
    let base = if absolute { 0 } else { cx.db.now_ms() as i64 };
    let at = amount.checked_mul(unit_ms).and_then(|ms| ms.checked_add(base)).ok_or_else(invalid)?;
    let Some(current) = cx.db.expires_ms(&args[1])? else {
        cx.out.integer(0);
        return Ok(());
    };
    // A key's expiry as a time to compare: none is "never".
    let current_at = if current == 0 { i64::MAX as i128 + 1 } else { i128::from(current) };
    // Each given condition must hold, as Redis checks them: XX with GT or LT
    // needs an expiry as well as a later or sooner one.
    let allowed = only.iter().all(|condition| match condition {
        Only::WithoutExpiry => current == 0,
        Only::WithExpiry => current != 0,
        Only::Later => current != 0 && i128::from(at) > current_at,
        Only::Sooner => i128::from(at) < current_at,
    });
    if !allowed {
        cx.out.integer(0);
        return Ok(());
    }
    let done =
        if at <= cx.db.now_ms() as i64 { cx.db.remove(&args[1])? } else { cx.db.set_expiry(&args[1], at as u64)? };
    cx.out.integer(i64::from(done));
    Ok(())
}

pub(super) fn expire(cx: &mut Cx, args: &Command) -> Reply {
    expire_with(cx, args, 1000, false, "expire")
}

pub(super) fn pexpire(cx: &mut Cx, args: &Command) -> Reply {
    expire_with(cx, args, 1, false, "pexpire")
}

pub(super) fn expireat(cx: &mut Cx, args: &Command) -> Reply {
    expire_with(cx, args, 1000, true, "expireat")
}

pub(super) fn pexpireat(cx: &mut Cx, args: &Command) -> Reply {
    expire_with(cx, args, 1, true, "pexpireat")
}

/// -2: no such key; -1: no expiry; else `shown` of the expiry in ms.
fn expiry_reply(cx: &mut Cx, key: &[u8], shown: impl Fn(u64, u64) -> i64) -> Reply {
    let reply = match cx.db.expires_ms(key)? {
        None => -2,
        Some(0) => -1,
        Some(at) => shown(at, cx.db.now_ms()),
    };
    cx.out.integer(reply);
    Ok(())
}

/// TTL: seconds left, rounded to the nearest, as Redis rounds them.
pub(super) fn ttl(cx: &mut Cx, args: &Command) -> Reply {
    expiry_reply(cx, &args[1], |at, now| (at.saturating_sub(now).saturating_add(500) / 1000) as i64)
}

pub(super) fn pttl(cx: &mut Cx, args: &Command) -> Reply {
    expiry_reply(cx, &args[1], |at, now| at.saturating_sub(now) as i64)
}

/// EXPIRETIME: the expiry as unix seconds.
pub(super) fn expiretime(cx: &mut Cx, args: &Command) -> Reply {
    expiry_reply(cx, &args[1], |at, _| (at / 1000) as i64)
}

pub(super) fn pexpiretime(cx: &mut Cx, args: &Command) -> Reply {
    expiry_reply(cx, &args[1], |at, _| at as i64)
}

/// 1 if the key had an expiry and now has none.
pub(super) fn persist(cx: &mut Cx, args: &Command) -> Reply {
    let had_expiry = matches!(cx.db.expires_ms(&args[1])?, Some(at) if at != 0);
    let cleared = had_expiry && cx.db.set_expiry(&args[1], 0)?;
    cx.out.integer(i64::from(cleared));
    Ok(())
}

/// TYPE: kvd stores strings only.
pub(super) fn type_of(cx: &mut Cx, args: &Command) -> Reply {
    let kind = if cx.db.exists(&args[1])? { "string" } else { "none" };
    cx.out.simple(kind);
    Ok(())
}

/// RENAME / RENAMENX: the value and its expiry move in one batch.
fn rename_with(cx: &mut Cx, args: &Command, only_if_free: bool) -> Reply {
    let (from, to) = (&args[1], &args[2]);
    let entry = cx.db.entry(from)?.ok_or_else(|| Failure::err("no such key"))?;
    if only_if_free && cx.db.exists(to)? {
        cx.out.integer(0);
        return Ok(());
    }
    if from != to {
        cx.db.put(to, &entry.value, entry.expires_ms)?;
        cx.db.remove(from)?;
    }
    if only_if_free {
        cx.out.integer(1)
    } else {
        cx.out.ok()
    }
    Ok(())
}

pub(super) fn rename(cx: &mut Cx, args: &Command) -> Reply {
    rename_with(cx, args, false)
}

pub(super) fn renamenx(cx: &mut Cx, args: &Command) -> Reply {
    rename_with(cx, args, true)
}

/// COPY source destination [DB 0] [REPLACE]: 1 if copied (with the expiry).
pub(super) fn copy(cx: &mut Cx, args: &Command) -> Reply {
    let mut replace = false;
    let mut options = args.iter().skip(3);
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" => {
                let db = integer_arg(options.next().ok_or_else(Failure::syntax)?)?;
                if db != 0 {
                    return Err(Failure::err("DB index is out of range"));
                }
            }
            _ => return Err(Failure::syntax()),
        }
    }
    let (from, to) = (&args[1], &args[2]);
    if from == to {
        return Err(Failure::err("source and destination objects are the same"));
    }
    let Some(entry) = cx.db.entry(from)? else {
        cx.out.integer(0);
        return Ok(());
    };
    if !replace && cx.db.exists(to)? {
        cx.out.integer(0);
        return Ok(());
    }
    cx.db.put(to, &entry.value, entry.expires_ms)?;
    cx.out.integer(1);
    Ok(())
}

pub(super) fn dbsize(cx: &mut Cx, _args: &Command) -> Reply {
    let count = cx.db.key_count();
    cx.out.integer(count as i64);
    Ok(())
}
