//! A RESP command's failure and how it is written: `-CODE message`, as
//! Redis words it (`-ERR wrong number of arguments for 'get' command`,
//! `-ERR value is not an integer or out of range`, `-READONLY …`).

use blockkv_engine::Error;
use blockkv_protocol::resp::put_error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A command's failure, written as `-CODE message`.
pub(crate) struct Failure(String);

/// What a command's `run` returns: its reply is in the output already, or
/// it failed and the caller writes the failure.
pub(crate) type Reply = Result<(), Failure>;

impl Failure {
    pub(crate) fn err(message: impl std::fmt::Display) -> Failure {
        Failure(format!("ERR {message}"))
    }

    /// A failure with its own code (`WRONGTYPE …`).
    pub(crate) fn coded(line: impl Into<String>) -> Failure {
        Failure(line.into())
    }

    pub(crate) fn arity(name: &str) -> Failure {
        Failure::err(format_args!("wrong number of arguments for '{name}' command"))
    }

    pub(crate) fn syntax() -> Failure {
        Failure::err("syntax error")
    }

    pub(crate) fn not_an_integer() -> Failure {
        Failure::err("value is not an integer or out of range")
    }

    /// An engine error: `-READONLY …` for a read-only store, else `-ERR …`.
    fn engine(err: &Error) -> Failure {
        match err {
            Error::ReadOnly => Failure(format!("READONLY {err}")),
            other => Failure::err(other),
        }
    }

    /// The line without its `-`, as logs show it.
    pub(crate) fn text(&self) -> &str {
        &self.0
    }

    /// Appends the error line to `out` (errors are the same in RESP2 and RESP3).
    pub(crate) fn put(&self, out: &mut super::reply::Out) {
        out.error(&self.0);
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::engine(&err)
    }
}

/// An engine error as a RESP error line (`-ERR …`, `-READONLY …`).
pub fn put_engine_error(out: &mut Vec<u8>, err: &Error) {
    put_error(out, &Failure::engine(err).0);
}

/// An argument as an i64, or the Redis error for one that is not.
pub(crate) fn integer_arg(arg: &[u8]) -> Result<i64, Failure> {
    blockkv_engine::parse_integer(arg).ok_or_else(Failure::not_an_integer)
}

/// A positive `amount` of `unit_ms` milliseconds as a time to live, checked
/// as Redis checks it: the absolute time it makes (now plus the time to
/// live) must fit a signed 64-bit count of milliseconds, else `invalid
/// expire time in 'NAME' command`.
pub(crate) fn expire_ms(amount: i64, unit_ms: u64, name: &str) -> Result<Duration, Failure> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
    u64::try_from(amount)
        .ok()
        .filter(|&amount| amount > 0)
        .and_then(|amount| amount.checked_mul(unit_ms))
        .filter(|&ms| ms.checked_add(now_ms).is_some_and(|at| at <= i64::MAX as u64))
        .map(Duration::from_millis)
        .ok_or_else(|| Failure::err(format_args!("invalid expire time in '{name}' command")))
}
