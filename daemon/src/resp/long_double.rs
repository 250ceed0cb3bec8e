//! INCRBYFLOAT's arithmetic as Redis does it: in the x87 80-bit long double
//! (a 64-bit significand), parsed as `strtold` parses, printed as `%.17Lf`
//! with trailing zeros cut. A 64-bit double would print `0.1 + 0.2` as
//! `0.30000000000000004` where Redis prints `0.3`, and lose digits Redis
//! keeps past 2^53. Each step here is exact big-integer arithmetic with one
//! rounding to 64 significant bits, half to even, as the x87 rounds.

use num_bigint::BigUint;
use std::cmp::Ordering;

/// Bits of the significand, the leading one included.
const SIGNIFICAND_BITS: u64 = 64;
/// The exponent of the least significant bit of the smallest subnormal.
const EXPONENT_MIN: i64 = -16445;
/// The exponent past which a value's leading bit would overflow (2^16384).
const EXPONENT_MAX: i64 = 16384 - 64;
/// Longest text Redis reads as a long double (MAX_LONG_DOUBLE_CHARS).
pub const LONG_DOUBLE_TEXT_BYTES_MAX: usize = 5 * 1024;
/// A decimal exponent past which a value is certainly infinite or zero.
const DECIMAL_EXPONENT_LIMIT: i64 = 6000;
/// Digits after the point that `%.17Lf` prints.
const FRACTION_DIGITS: u32 = 17;

/// A finite long double: (-1)^negative × significand × 2^exponent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LongDouble {
    negative: bool,
    significand: u64,
    exponent: i64,
}

/// A parsed value: finite, or an infinity (which INCRBYFLOAT refuses as a result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Finite(LongDouble),
    Infinite,
}

/// `numerator / denominator` rounded to the nearest long double, half to
/// even; None when it overflows.
fn round(negative: bool, numerator: BigUint, denominator: BigUint) -> Option<LongDouble> {
    if numerator.bits() == 0 {
        return Some(LongDouble { negative, significand: 0, exponent: 0 });
    }
    // The exponent that puts the quotient in [2^63, 2^64), or the floor.
    let mut exponent = numerator.bits() as i64 - denominator.bits() as i64 - SIGNIFICAND_BITS as i64;
    loop {
        let exponent_used = exponent.max(EXPONENT_MIN);
        let (num, den) = scaled(&numerator, &denominator, exponent_used);
        let quotient = &num / &den;
        if quotient.bits() > SIGNIFICAND_BITS && exponent_used == exponent {
            exponent += 1;
            continue;
        }
        if quotient.bits() < SIGNIFICAND_BITS && exponent_used == exponent && exponent > EXPONENT_MIN {
            exponent -= 1;
            continue;
        }
        let remainder = &num - &quotient * &den;
        let mut significand: u64 = quotient.try_into().unwrap_or(u64::MAX);
        let twice = remainder << 1u32;
        let round_up = match twice.cmp(&den) {
            Ordering::Greater => true,
            Ordering::Equal => significand & 1 == 1,
            Ordering::Less => false,
        };
        let mut exponent = exponent_used;
        if round_up {
            match significand.checked_add(1) {
                Some(next) => significand = next,
                None => {
                    significand = 1 << 63;
                    exponent += 1;
                }
            }
        }
        if exponent > EXPONENT_MAX {
            return None;
        }
        return Some(LongDouble { negative, significand, exponent });
    }
}

/// (numerator, denominator) of `numerator / denominator / 2^exponent`, both integers.
fn scaled(numerator: &BigUint, denominator: &BigUint, exponent: i64) -> (BigUint, BigUint) {
    if exponent >= 0 {
        (numerator.clone(), denominator << exponent as u64)
    } else {
        (numerator << exponent.unsigned_abs(), denominator.clone())
    }
}

/// A value as `strtold` reads it, and as Redis accepts it: no spaces around,
/// no NaN, at most `LONG_DOUBLE_TEXT_BYTES_MAX` bytes. Decimal only (kvd
/// refuses the hexadecimal form `strtold` would also take).
pub fn parse(text: &[u8]) -> Option<Parsed> {
    if text.is_empty() || text.len() > LONG_DOUBLE_TEXT_BYTES_MAX {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let (negative, body) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Parsed::Infinite);
    }
    let (mantissa, exponent_text) = match lower.find('e') {
        Some(at) => (&lower[..at], Some(&lower[at + 1..])),
        None => (lower.as_str(), None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut exponent: i64 = match exponent_text {
        None => 0,
        Some(digits) => {
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Clamped: anything past the limit is infinite or zero either way.
            let magnitude = unsigned.parse::<i64>().unwrap_or(i64::MAX).min(DECIMAL_EXPONENT_LIMIT * 2);
            if digits.starts_with('-') { -magnitude } else { magnitude }
        }
    };
    exponent -= fraction.len() as i64;
    let digits = format!("{whole}{fraction}");
    let digits = BigUint::parse_bytes(digits.as_bytes(), 10)?;
    if digits.bits() == 0 {
        return Some(Parsed::Finite(LongDouble { negative, significand: 0, exponent: 0 }));
    }
    // Out of range either way is strtold's ERANGE, which Redis refuses:
    // text that overflows (only the words inf and infinity are infinite)
    // or that underflows to zero is not a valid float.
    if exponent > DECIMAL_EXPONENT_LIMIT || exponent < -DECIMAL_EXPONENT_LIMIT - LONG_DOUBLE_TEXT_BYTES_MAX as i64 {
        return None;
    }
    let ten = BigUint::from(10u32);
    let (numerator, denominator) = if exponent >= 0 {
        (digits * ten.pow(exponent as u32), BigUint::from(1u32))
    } else {
        (digits, ten.pow(exponent.unsigned_abs() as u32))
    };
    let value = round(negative, numerator, denominator)?;
    (value.significand != 0).then_some(Parsed::Finite(value))
}

impl LongDouble {
    /// The exact sum, rounded once; None if it overflows.
    pub fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        let low = self.exponent.min(other.exponent);
        let a = BigUint::from(self.significand) << (self.exponent - low) as u64;
        let b = BigUint::from(other.significand) << (other.exponent - low) as u64;
        let (negative, magnitude) = match (self.negative, other.negative) {
            (x, y) if x == y => (x, a + b),
            _ => match a.cmp(&b) {
                Ordering::Less => (other.negative, b - a),
                _ => (self.negative, a - b),
            },
        };
        let (numerator, denominator) = if low >= 0 {
            (magnitude << low as u64, BigUint::from(1u32))
        } else {
            (magnitude, BigUint::from(1u32) << low.unsigned_abs())
        };
        round(negative, numerator, denominator)
    }

    /// `%.17Lf` with trailing zeros (and a bare point) cut, and `-0` as `0`:
    /// Redis's "human" long double text.
    pub fn to_text(&self) -> String {
        let scale = BigUint::from(10u32).pow(FRACTION_DIGITS);
        let value = BigUint::from(self.significand) * scale;
        let (numerator, denominator) = if self.exponent >= 0 {
            (value << self.exponent as u64, BigUint::from(1u32))
        } else {
            (value, BigUint::from(1u32) << self.exponent.unsigned_abs())
        };
        let quotient = &numerator / &denominator;
        let remainder = &numerator - &quotient * &denominator;
        let twice = remainder << 1u32;
        let odd = quotient.bit(0);
        let quotient = match twice.cmp(&denominator) {
            Ordering::Greater => quotient + 1u32,
            Ordering::Equal if odd => quotient + 1u32,
            _ => quotient,
        };
        let digits = quotient.to_str_radix(10);
        let digits = format!("{digits:0>width$}", width = FRACTION_DIGITS as usize + 1);
        let (whole, fraction) = digits.split_at(digits.len() - FRACTION_DIGITS as usize);
        let fraction = fraction.trim_end_matches('0');
        let body = if fraction.is_empty() { whole.to_string() } else { format!("{whole}.{fraction}") };
        if self.negative && body != "0" { format!("-{body}") } else { body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> LongDouble {
        match parse(text.as_bytes()) {
            Some(Parsed::Finite(value)) => value,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn sum(a: &str, b: &str) -> String {
        value(a).add(&value(b)).expect("finite").to_text()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Each expected text is what redis-server 7.0 answered to INCRBYFLOAT.
        assert_eq!(sum("0.1", "0.1"), "0.2");
        assert_eq!(sum("0.2", "0.1"), "0.3");
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("5.0e3", "0"), "5000");
        assert_eq!(sum("0", "1.1"), "1.1");
        assert_eq!(sum("-9223372036854775808", "-2.25"), "-9223372036854775810");
        assert_eq!(sum("1e20", "3.3"), "100000000000000000000");
        assert_eq!(sum("3", "-3"), "0");
        assert_eq!(sum("-0", "0"), "0");
        assert_eq!(sum("0", "1e400").len(), 401);
    }

    #[test]
    fn text_is_read_as_strtold_reads_it_and_as_redis_accepts_it() {
        // Signs, points, exponents and infinities; spaces, NaN, empty and stray bytes refused.
        assert_eq!(value("+1.5").to_text(), "1.5");
        assert_eq!(value(".5").to_text(), "0.5");
        assert_eq!(value("5.").to_text(), "5");
        assert_eq!(value("3.0e-2").to_text(), "0.03");
        assert_eq!(parse(b"inf"), Some(Parsed::Infinite));
        assert_eq!(parse(b"-Infinity"), Some(Parsed::Infinite));
        for bad in [
            "",
            " 1",
            "1 ",
            "nan",
            "abc",
            "1e",
            "1.2.3",
            ".",
            "-",
            "0x10",
            "1e+",
            "1e5000",
            "3e29223372036854775807",
            "1e-5000",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(value("1e4932").add(&value("1e4932")).is_none(), "overflow is infinite");
    }
}
