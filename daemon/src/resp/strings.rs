//! The string commands: GET, SET (EX, PX, EXAT, PXAT, KEEPTTL, NX, XX,
//! GET), SETEX, PSETEX, SETNX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX,
//! INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND, STRLEN, GETRANGE
//! (SUBSTR), SETRANGE, DEL, UNLINK, EXISTS, TOUCH. The bit commands are in
//! `bits.rs`.

use super::failure::{Failure, Reply, expire_ms, integer_arg};
use super::long_double::{self, LongDouble, Parsed};
use super::spec::Cx;
use blockkv_engine::PutCondition;
use blockkv_engine::limits::VALUE_BYTES_MAX;
use blockkv_protocol::resp::Command;

pub(super) fn get(cx: &mut Cx, args: &Command) -> Reply {
    let value = cx.db.get(&args[1])?;
    cx.ctx.metrics.lookup(value.is_some());
    cx.out.bulk_or_null(value.as_deref());
    Ok(())
}

/// When a write leaves the key's expiry: as given, kept, or none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    None,
    Keep,
    /// Absolute, in ms since the epoch.
    At(u64),
}

impl Expiry {
    /// The absolute expiry to store, given the key's current one.
    fn resolve(self, current: Option<u64>) -> u64 {
        match self {
            Expiry::None => 0,
            Expiry::Keep => current.unwrap_or(0),
            Expiry::At(at) => at,
        }
    }
}

/// EX seconds | PX milliseconds | EXAT unix-seconds | PXAT unix-ms: the
/// absolute expiry, checked as Redis checks it.
pub(super) fn expiry_option(option: &[u8], amount: &[u8], name: &str, now_ms: u64) -> Result<u64, Failure> {
    let amount = integer_arg(amount)?;
    Ok(match option {
        b"EX" => now_ms + expire_ms(amount, 1000, name)?.as_millis() as u64,
        b"PX" => now_ms + expire_ms(amount, 1, name)?.as_millis() as u64,
        b"EXAT" | b"PXAT" => {
            let unit_ms = if option == b"EXAT" { 1000 } else { 1 };
            u64::try_from(amount)
                .ok()
                .filter(|&at| at > 0)
                .and_then(|at| at.checked_mul(unit_ms))
                .filter(|&at| at <= i64::MAX as u64)
                .ok_or_else(|| Failure::err(format_args!("invalid expire time in '{name}' command")))?
        }
        _ => return Err(Failure::syntax()),
    })
}

/// SET's options, parsed.
struct SetOptions {
    expiry: Expiry,
    condition: Option<PutCondition>,
    get: bool,
}

fn set_options(args: &Command, now_ms: u64) -> Result<SetOptions, Failure> {
    let mut options = SetOptions { expiry: Expiry::None, condition: None, get: false };
    let mut expiry_given = false;
    let mut rest = args.iter().skip(3);
    while let Some(option) = rest.next() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_given => {
                let amount = rest.next().ok_or_else(Failure::syntax)?;
                options.expiry = Expiry::At(expiry_option(&option, amount, "set", now_ms)?);
                expiry_given = true;
            }
            b"KEEPTTL" if !expiry_given => {
                options.expiry = Expiry::Keep;
                expiry_given = true;
            }
            b"NX" if options.condition.is_none() => options.condition = Some(PutCondition::IfAbsent),
            b"XX" if options.condition.is_none() => options.condition = Some(PutCondition::IfPresent),
            b"GET" => options.get = true,
            _ => return Err(Failure::syntax()),
        }
    }
    Ok(options)
}

/// SET … GET reads before it writes: it runs alone (spec.rs).
pub(super) fn set_reads(args: &Command) -> bool {
    args.iter().skip(3).any(|option| option.eq_ignore_ascii_case(b"GET") || option.eq_ignore_ascii_case(b"KEEPTTL"))
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
pub(super) fn set(cx: &mut Cx, args: &Command) -> Reply {
    let options = set_options(args, cx.db.now_ms())?;
    let (key, value) = (&args[1], &args[2]);
    if options.get || options.expiry == Expiry::Keep {
        let old = cx.db.entry(key)?;
        let allowed = match options.condition {
            None => true,
            Some(PutCondition::IfAbsent) => old.is_none(),
            Some(PutCondition::IfPresent) => old.is_some(),
        };
        if allowed {
            let expires_ms = options.expiry.resolve(old.as_ref().map(|e| e.expires_ms));
            cx.db.put(key, value, expires_ms)?;
        }
        match (options.get, allowed) {
            (true, _) => cx.out.bulk_or_null(old.as_ref().map(|e| e.value.as_slice())),
            (false, true) => cx.out.ok(),
            (false, false) => cx.out.null(),
        }
        return Ok(());
    }
    let expires_ms = options.expiry.resolve(None);
    let done = match options.condition {
        None => {
            cx.db.put(key, value, expires_ms)?;
            true
        }
        Some(condition) => cx.db.put_if(key, value, expires_ms, condition)?,
    };
    if done {
        cx.out.ok()
    } else {
        cx.out.null()
    }
    Ok(())
}

/// SETEX key seconds value / PSETEX key milliseconds value.
fn set_expiring(cx: &mut Cx, args: &Command, unit: &[u8], name: &str) -> Reply {
    let expires_ms = expiry_option(unit, &args[2], name, cx.db.now_ms())?;
    cx.db.put(&args[1], &args[3], expires_ms)?;
    cx.out.ok();
    Ok(())
}

pub(super) fn setex(cx: &mut Cx, args: &Command) -> Reply {
    set_expiring(cx, args, b"EX", "setex")
}

pub(super) fn psetex(cx: &mut Cx, args: &Command) -> Reply {
    set_expiring(cx, args, b"PX", "psetex")
}

/// SETNX key value: 1 if it was set.
pub(super) fn setnx(cx: &mut Cx, args: &Command) -> Reply {
    let set = cx.db.put_if(&args[1], &args[2], 0, PutCondition::IfAbsent)?;
    cx.out.integer(i64::from(set));
    Ok(())
}

/// GETSET key value: the old value; the key loses its expiry.
pub(super) fn getset(cx: &mut Cx, args: &Command) -> Reply {
    let old = cx.db.get(&args[1])?;
    cx.db.put(&args[1], &args[2], 0)?;
    cx.out.bulk_or_null(old.as_deref());
    Ok(())
}

pub(super) fn getdel(cx: &mut Cx, args: &Command) -> Reply {
    let old = cx.db.get(&args[1])?;
    if old.is_some() {
        cx.db.remove(&args[1])?;
    }
    cx.out.bulk_or_null(old.as_deref());
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]. As in Redis, the
/// options' syntax is checked first, then the key is read, and only then
/// the time (a missing key is nil whatever the time says).
pub(super) fn getex(cx: &mut Cx, args: &Command) -> Reply {
    let mut change: Option<(Vec<u8>, Option<&[u8]>)> = None;
    let mut rest = args.iter().skip(2);
    while let Some(option) = rest.next() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if change.is_none() => {
                let amount = rest.next().ok_or_else(Failure::syntax)?;
                change = Some((option, Some(amount)));
            }
            b"PERSIST" if change.is_none() => change = Some((option, None)),
            _ => return Err(Failure::syntax()),
        }
    }
    let Some(entry) = cx.db.entry(&args[1])? else {
        cx.out.null();
        return Ok(());
    };
    let expires_ms = match &change {
        None => None,
        Some((_, None)) => Some(0),
        Some((option, Some(amount))) => Some(expiry_option(option, amount, "getex", cx.db.now_ms())?),
    };
    if let Some(expires_ms) = expires_ms
        && entry.expires_ms != expires_ms
    {
        cx.db.set_expiry(&args[1], expires_ms)?;
    }
    cx.out.bulk(&entry.value);
    Ok(())
}

pub(super) fn mget(cx: &mut Cx, args: &Command) -> Reply {
    // Read every value before writing the reply: an error then replaces
    // the whole reply instead of cutting an array short.
    let values = args.iter().skip(1).map(|key| cx.db.get(key)).collect::<Result<Vec<_>, _>>()?;
    values.iter().for_each(|value| cx.ctx.metrics.lookup(value.is_some()));
    cx.out.array(values.len());
    for value in values {
        cx.out.bulk_or_null(value.as_deref());
    }
    Ok(())
}

/// Key-value pairs, borrowed from a command.
type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

fn pairs<'a>(args: &'a Command, name: &str) -> Result<Pairs<'a>, Failure> {
    if args.len().is_multiple_of(2) {
        return Err(Failure::arity(name));
    }
    let words: Vec<&[u8]> = args.iter().skip(1).collect();
    Ok(words.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect())
}

/// MSET of more than one pair runs alone (its keys change together).
pub(super) fn mset_several(args: &Command) -> bool {
    args.len() > 3
}

/// MSET key value [key value ...]: one batch, so all or none, even across a crash.
pub(super) fn mset(cx: &mut Cx, args: &Command) -> Reply {
    let pairs = pairs(args, "mset")?;
    cx.db.put_all(&pairs)?;
    cx.out.ok();
    Ok(())
}

/// MSETNX: all the keys are set, only if none exists; 1 if they were.
pub(super) fn msetnx(cx: &mut Cx, args: &Command) -> Reply {
    let pairs = pairs(args, "msetnx")?;
    for (key, _) in &pairs {
        if cx.db.exists(key)? {
            cx.out.integer(0);
            return Ok(());
        }
    }
    cx.db.put_all(&pairs)?;
    cx.out.integer(1);
    Ok(())
}

fn add(cx: &mut Cx, key: &[u8], delta: i64) -> Reply {
    let sum = cx.db.incr_by(key, delta)?;
    cx.out.integer(sum);
    Ok(())
}

pub(super) fn incr(cx: &mut Cx, args: &Command) -> Reply {
    add(cx, &args[1], 1)
}

pub(super) fn decr(cx: &mut Cx, args: &Command) -> Reply {
    add(cx, &args[1], -1)
}

pub(super) fn incrby(cx: &mut Cx, args: &Command) -> Reply {
    add(cx, &args[1], integer_arg(&args[2])?)
}

pub(super) fn decrby(cx: &mut Cx, args: &Command) -> Reply {
    let delta = integer_arg(&args[2])?.checked_neg().ok_or_else(|| Failure::err("decrement would overflow"))?;
    add(cx, &args[1], delta)
}

/// INCRBYFLOAT key increment: the sum as text (the key keeps its expiry),
/// computed in a long double as Redis computes it (`long_double.rs`).
pub(super) fn incrbyfloat(cx: &mut Cx, args: &Command) -> Reply {
    let not_float = || Failure::err("value is not a valid float");
    let delta = long_double::parse(&args[2]).ok_or_else(not_float)?;
    let entry = cx.db.entry(&args[1])?;
    let current = match &entry {
        Some(entry) => long_double::parse(&entry.value).ok_or_else(not_float)?,
        None => Parsed::Finite(LongDouble::default()),
    };
    let infinite = || Failure::err("increment would produce NaN or Infinity");
    let (Parsed::Finite(current), Parsed::Finite(delta)) = (current, delta) else { return Err(infinite()) };
    let text = current.add(&delta).ok_or_else(infinite)?.to_text();
    cx.db.put(&args[1], text.as_bytes(), entry.map_or(0, |e| e.expires_ms))?;
    cx.out.bulk(text.as_bytes());
    Ok(())
}

/// APPEND key value: the new length.
pub(super) fn append(cx: &mut Cx, args: &Command) -> Reply {
    let entry = cx.db.entry(&args[1])?;
    let (mut value, expires_ms) = entry.map_or((Vec::new(), 0), |e| (e.value, e.expires_ms));
    check_grown(value.len() + args[2].len())?;
    value.extend_from_slice(&args[2]);
    cx.db.put(&args[1], &value, expires_ms)?;
    cx.out.integer(value.len() as i64);
    Ok(())
}

/// A value a command would grow past the engine's limit.
pub(super) fn check_grown(len: usize) -> Result<(), Failure> {
    if len > VALUE_BYTES_MAX {
        return Err(Failure::err(format_args!(
            "string exceeds maximum allowed size (kvd's value limit is {VALUE_BYTES_MAX} bytes)"
        )));
    }
    Ok(())
}

pub(super) fn strlen(cx: &mut Cx, args: &Command) -> Reply {
    let len = cx.db.get(&args[1])?.map_or(0, |value| value.len());
    cx.out.integer(len as i64);
    Ok(())
}

/// The byte range [start, end] (inclusive, negative counts from the end)
/// of a `len`-byte string, clamped step by step as Redis's GETRANGE
/// clamps it; None: empty.
pub(super) fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    (len > 0 && start <= end).then_some((start as usize, end as usize))
}

/// GETRANGE key start end (SUBSTR is the same).
pub(super) fn getrange(cx: &mut Cx, args: &Command) -> Reply {
    let (start, end) = (integer_arg(&args[2])?, integer_arg(&args[3])?);
    let value = cx.db.get(&args[1])?.unwrap_or_default();
    let range = clamp_range(start, end, value.len());
    cx.out.bulk(range.map_or(&[][..], |(from, to)| &value[from..=to]));
    Ok(())
}

/// SETRANGE key offset value: overwrites from `offset` (zero-padded); the new length.
pub(super) fn setrange(cx: &mut Cx, args: &Command) -> Reply {
    let offset = integer_arg(&args[2])?;
    let offset = usize::try_from(offset).map_err(|_| Failure::err("offset is out of range"))?;
    let patch = &args[3];
    let entry = cx.db.entry(&args[1])?;
    let (mut value, expires_ms) = entry.map_or((Vec::new(), 0), |e| (e.value, e.expires_ms));
    if patch.is_empty() {
        cx.out.integer(value.len() as i64);
        return Ok(());
    }
    check_grown(offset.saturating_add(patch.len()))?;
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    cx.db.put(&args[1], &value, expires_ms)?;
    cx.out.integer(value.len() as i64);
    Ok(())
}

/// DEL key [key ...] (UNLINK is the same): how many of the keys held a live value.
pub(super) fn del(cx: &mut Cx, args: &Command) -> Reply {
    let mut deleted = 0;
    for key in args.iter().skip(1) {
        deleted += i64::from(cx.db.remove(key)?);
    }
    cx.out.integer(deleted);
    Ok(())
}

/// EXISTS key [key ...] (TOUCH is the same): how many of them exist (a key
/// named twice counts twice).
pub(super) fn exists(cx: &mut Cx, args: &Command) -> Reply {
    let mut found = 0;
    for key in args.iter().skip(1) {
        found += i64::from(cx.db.exists(key)?);
    }
    cx.out.integer(found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_as_redis_clamps_them() {
        // GETRANGE's clamping: negative from the end, end past the string cut, start past it empty.
        assert_eq!(clamp_range(0, -1, 5), Some((0, 4)));
        assert_eq!(clamp_range(-3, -1, 5), Some((2, 4)));
        assert_eq!(clamp_range(1, 100, 5), Some((1, 4)));
        assert_eq!(clamp_range(5, 10, 5), None);
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(-100, 1, 5), Some((0, 1)));
        assert_eq!(clamp_range(0, -100, 5), Some((0, 0)));
        assert_eq!(clamp_range(-1, -5, 5), None);
        assert_eq!(clamp_range(0, 0, 0), None);
    }
}
