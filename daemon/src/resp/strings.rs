//! The string commands: GET, SET (EX, PX, NX, XX), SETEX, PSETEX, SETNX,
//! MGET, MSET, INCR, DECR, INCRBY, DECRBY, DEL, EXISTS.

use super::failure::{Failure, Reply, expire_ms, integer_arg};
use crate::context::Context;
use blockkv_engine::{BatchOp, PutCondition};
use blockkv_protocol::resp::{Command, put_array_header, put_bulk, put_integer, put_null, put_simple};

pub(super) fn get(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    match ctx.store.get(&args[1])? {
        Some(value) => put_bulk(out, &value),
        None => put_null(out),
    }
    Ok(())
}

/// SET key value [EX seconds | PX milliseconds] [NX | XX]
pub(super) fn set(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let (mut ttl, mut condition) = (None, None);
    let mut options = args.iter().skip(3);
    while let Some(option) = options.next() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"EX" | b"PX" if ttl.is_none() => {
                let amount = integer_arg(options.next().ok_or_else(Failure::syntax)?)?;
                let unit_ms = if option == b"EX" { 1000 } else { 1 };
                ttl = Some(expire_ms(amount, unit_ms, "set")?);
            }
            b"NX" if condition.is_none() => condition = Some(PutCondition::IfAbsent),
            b"XX" if condition.is_none() => condition = Some(PutCondition::IfPresent),
            _ => return Err(Failure::syntax()),
        }
    }
    let (key, value) = (&args[1], &args[2]);
    match condition {
        None => {
            ctx.store.put_with_ttl(key, value, ttl)?;
            put_simple(out, "OK");
        }
        Some(condition) if ctx.store.put_if(key, value, ttl, condition)? => put_simple(out, "OK"),
        Some(_) => put_null(out),
    }
    Ok(())
}

/// SETEX key seconds value / PSETEX key milliseconds value.
fn set_expiring(ctx: &Context, args: &Command, unit_ms: u64, name: &str, out: &mut Vec<u8>) -> Reply {
    let ttl = expire_ms(integer_arg(&args[2])?, unit_ms, name)?;
    ctx.store.put_with_ttl(&args[1], &args[3], Some(ttl))?;
    put_simple(out, "OK");
    Ok(())
}

pub(super) fn setex(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    set_expiring(ctx, args, 1000, "setex", out)
}

pub(super) fn psetex(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    set_expiring(ctx, args, 1, "psetex", out)
}

/// SETNX key value: 1 if it was set.
pub(super) fn setnx(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let set = ctx.store.put_if(&args[1], &args[2], None, PutCondition::IfAbsent)?;
    put_integer(out, i64::from(set));
    Ok(())
}

pub(super) fn mget(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    // Read every value before writing the reply: an error then replaces
    // the whole reply instead of cutting an array short.
    let values = args.iter().skip(1).map(|key| ctx.store.get(key)).collect::<Result<Vec<_>, _>>()?;
    put_array_header(out, values.len());
    for value in values {
        match value {
            Some(value) => put_bulk(out, &value),
            None => put_null(out),
        }
    }
    Ok(())
}

/// MSET key value [key value ...]: one batch, so all or none, even across a crash.
pub(super) fn mset(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    if args.len().is_multiple_of(2) {
        return Err(Failure::err("wrong number of arguments for 'mset' command"));
    }
    let pairs: Vec<&[u8]> = args.iter().skip(1).collect();
    let ops: Vec<BatchOp> = pairs
        .chunks_exact(2)
        .map(|pair| BatchOp::Put { key: pair[0].to_vec(), value: pair[1].to_vec(), ttl: None })
        .collect();
    ctx.store.write_batch(&ops)?;
    put_simple(out, "OK");
    Ok(())
}

fn add(ctx: &Context, key: &[u8], delta: i64, out: &mut Vec<u8>) -> Reply {
    put_integer(out, ctx.store.incr_by(key, delta)?);
    Ok(())
}

pub(super) fn incr(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    add(ctx, &args[1], 1, out)
}

pub(super) fn decr(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    add(ctx, &args[1], -1, out)
}

pub(super) fn incrby(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    add(ctx, &args[1], integer_arg(&args[2])?, out)
}

pub(super) fn decrby(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let delta = integer_arg(&args[2])?.checked_neg().ok_or_else(|| Failure::err("decrement would overflow"))?;
    add(ctx, &args[1], delta, out)
}

/// DEL key [key ...]: how many of the keys held a live value.
pub(super) fn del(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let mut deleted = 0;
    for key in args.iter().skip(1) {
        deleted += i64::from(ctx.store.delete(key)?);
    }
    put_integer(out, deleted);
    Ok(())
}

/// EXISTS key [key ...]: how many of them exist (a key named twice counts twice).
pub(super) fn exists(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    let mut found = 0;
    for key in args.iter().skip(1) {
        found += i64::from(ctx.store.exists(key)?);
    }
    put_integer(out, found);
    Ok(())
}
