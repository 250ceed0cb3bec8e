//! The bit commands on string values: SETBIT, GETBIT, BITCOUNT. Bit 0 is
//! the most significant bit of the first byte, as in Redis.

use super::failure::{Failure, Reply, integer_arg};
use super::spec::Cx;
use super::strings::{check_grown, clamp_range};
use blockkv_protocol::resp::Command;

/// Redis's limit on a bit offset: 2^32 bits (a 512 MiB string).
const BIT_OFFSET_LIMIT: i64 = 1 << 32;

fn bit_offset(arg: &[u8]) -> Result<usize, Failure> {
    let invalid = || Failure::err("bit offset is not an integer or out of range");
    let offset = integer_arg(arg).map_err(|_| invalid())?;
    if !(0..BIT_OFFSET_LIMIT).contains(&offset) {
        return Err(invalid());
    }
    Ok(offset as usize)
}

fn bit_at(value: &[u8], offset: usize) -> bool {
    value.get(offset / 8).is_some_and(|byte| byte & (0x80 >> (offset % 8)) != 0)
}

/// SETBIT key offset 0|1: the bit's old value.
pub(super) fn setbit(cx: &mut Cx, args: &Command) -> Reply {
    let offset = bit_offset(&args[2])?;
    let on = match &args[3][..] {
        b"0" => false,
        b"1" => true,
        _ => return Err(Failure::err("bit is not an integer or out of range")),
    };
    let entry = cx.db.entry(&args[1])?;
    let (mut value, expires_ms) = entry.map_or((Vec::new(), 0), |e| (e.value, e.expires_ms));
    let byte = offset / 8;
    check_grown(byte + 1)?;
    if value.len() <= byte {
        value.resize(byte + 1, 0);
    }
    let old = bit_at(&value, offset);
    let mask = 0x80 >> (offset % 8);
    if on {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    cx.db.put(&args[1], &value, expires_ms)?;
    cx.out.integer(i64::from(old));
    Ok(())
}

pub(super) fn getbit(cx: &mut Cx, args: &Command) -> Reply {
    let offset = bit_offset(&args[2])?;
    let value = cx.db.get(&args[1])?.unwrap_or_default();
    cx.out.integer(i64::from(bit_at(&value, offset)));
    Ok(())
}

/// BITCOUNT key [start end [BYTE | BIT]]: set bits in the range (bytes by default).
pub(super) fn bitcount(cx: &mut Cx, args: &Command) -> Reply {
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let bits = match args.get(4).map(|unit| unit.to_ascii_uppercase()).as_deref() {
                None | Some(b"BYTE") => false,
                Some(b"BIT") => true,
                Some(_) => return Err(Failure::syntax()),
            };
            Some((integer_arg(&args[2])?, integer_arg(&args[3])?, bits))
        }
        _ => return Err(Failure::syntax()),
    };
    let value = cx.db.get(&args[1])?.unwrap_or_default();
    let count = match range {
        None => value.iter().map(|b| b.count_ones() as i64).sum(),
        Some((start, end, false)) => clamp_range(start, end, value.len())
            .map_or(0, |(from, to)| value[from..=to].iter().map(|b| b.count_ones() as i64).sum()),
        Some((start, end, true)) => clamp_range(start, end, value.len() * 8)
            .map_or(0, |(from, to)| (from..=to).filter(|&bit| bit_at(&value, bit)).count() as i64),
    };
    cx.out.integer(count);
    Ok(())
}
