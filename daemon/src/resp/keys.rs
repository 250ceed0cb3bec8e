//! Key commands: EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, SCAN, DBSIZE. SCAN's
//! cursors are kept in `scan_cursors.rs`.

use super::failure::{Failure, Reply, expire_ms, integer_arg};
use crate::context::Context;
use blockkv_engine::KeyTtl;
use blockkv_protocol::resp::{Command, put_array_header, put_bulk, put_integer};

/// Keys one SCAN returns when COUNT is not given (Redis's default).
const SCAN_COUNT_DEFAULT: usize = 10;
/// The most keys one SCAN returns, whatever COUNT asks.
pub const SCAN_COUNT_MAX: usize = 100_000;

fn expire_with(ctx: &Context, key: &[u8], amount: i64, unit_ms: u64, name: &str, out: &mut Vec<u8>) -> Reply {
    if amount <= 0 {
        // Redis: a time in the past deletes the key.
        put_integer(out, i64::from(ctx.store.delete(key)?));
        return Ok(());
    }
    let ttl = expire_ms(amount, unit_ms, name)?;
    put_integer(out, i64::from(ctx.store.expire(key, Some(ttl))?));
    Ok(())
}

pub(super) fn expire(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    expire_with(ctx, &args[1], integer_arg(&args[2])?, 1000, "expire", out)
}

pub(super) fn pexpire(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    expire_with(ctx, &args[1], integer_arg(&args[2])?, 1, "pexpire", out)
}

/// -2: no such key; -1: no expiry; else the time left.
fn ttl_in(ctx: &Context, key: &[u8], millis: bool, out: &mut Vec<u8>) -> Reply {
    let reply = match ctx.store.ttl(key)? {
        KeyTtl::Missing => -2,
        KeyTtl::Persistent => -1,
        // Seconds are rounded to the nearest, as Redis does.
        KeyTtl::ExpiresInMs(ms) => {
            i64::try_from(if millis { ms } else { ms.saturating_add(500) / 1000 }).unwrap_or(i64::MAX)
        }
    };
    put_integer(out, reply);
    Ok(())
}

pub(super) fn ttl(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    ttl_in(ctx, &args[1], false, out)
}

pub(super) fn pttl(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    ttl_in(ctx, &args[1], true, out)
}

/// 1 if the key had an expiry and now has none.
pub(super) fn persist(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let had_expiry = matches!(ctx.store.ttl(&args[1])?, KeyTtl::ExpiresInMs(_));
    let cleared = had_expiry && ctx.store.expire(&args[1], None)?;
    put_integer(out, i64::from(cleared));
    Ok(())
}

pub(super) fn dbsize(ctx: &Context, _args: &Command, out: &mut Vec<u8>) -> Reply {
    // As in Redis, keys whose TTL has passed count until they are removed.
    put_integer(out, ctx.store.key_count() as i64);
    Ok(())
}

/// What MATCH may be: a literal key, or a literal prefix and one trailing `*`.
enum Pattern {
    Prefix(Vec<u8>),
    Exact(Vec<u8>),
}

fn pattern(text: &[u8]) -> Result<Pattern, Failure> {
    let (literal, prefix) = match text.strip_suffix(b"*") {
        Some(literal) => (literal, true),
        None => (text, false),
    };
    if literal.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')) {
        return Err(Failure::err("kvd's SCAN MATCH takes a literal prefix and one trailing '*' (such as 'user:*')"));
    }
    Ok(if prefix { Pattern::Prefix(literal.to_vec()) } else { Pattern::Exact(literal.to_vec()) })
}

/// SCAN cursor [MATCH pattern] [COUNT count]
pub(super) fn scan(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let cursor: u64 = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Failure::err("invalid cursor"))?;
    let (mut matching, mut count) = (Pattern::Prefix(Vec::new()), SCAN_COUNT_DEFAULT);
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        let value = options.next().ok_or_else(Failure::syntax)?;
        match option.to_ascii_uppercase().as_slice() {
            b"MATCH" => matching = pattern(value)?,
            b"COUNT" => {
                let asked = integer_arg(value)?;
                if asked < 1 {
                    return Err(Failure::syntax());
                }
                count = (asked as usize).min(SCAN_COUNT_MAX);
            }
            _ => return Err(Failure::syntax()),
        }
    }
    let start_after = match cursor {
        0 => None,
        cursor => Some(ctx.cursors.resume(cursor).ok_or_else(|| {
            Failure::err(format_args!(
                "invalid cursor: SCAN cursor {cursor} is unknown or was forgotten; start again at 0"
            ))
        })?),
    };
    let keys = match &matching {
        Pattern::Prefix(prefix) => ctx.store.scan(prefix, start_after.as_deref(), count + 1)?,
        Pattern::Exact(key) if start_after.is_none() && ctx.store.exists(key)? => vec![key.clone()],
        Pattern::Exact(_) => Vec::new(),
    };
    let more = keys.len() > count;
    let shown = &keys[..keys.len().min(count)];
    let next = match shown.last() {
        Some(last) if more => ctx.cursors.remember(last.clone()),
        _ => 0,
    };
    put_array_header(out, 2);
    put_bulk(out, next.to_string().as_bytes());
    put_array_header(out, shown.len());
    for key in shown {
        put_bulk(out, key);
    }
    Ok(())
}
