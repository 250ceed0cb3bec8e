//! A RESP command's failure and how it is written: `-CODE message`, as
//! Redis words it (`-ERR wrong number of arguments for 'get' command`,
//! `-ERR value is not an integer or out of range`, `-READONLY …`).

use blockkv_engine::Error;
use blockkv_protocol::resp::put_error;

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

    /// Appends the error line to `out`.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        put_error(out, &self.0);
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::engine(&err)
    }
}

/// An engine error as a RESP error line (`-ERR …`, `-READONLY …`).
pub fn put_engine_error(out: &mut Vec<u8>, err: &Error) {
    Failure::engine(err).put(out);
}

/// An argument as an i64, or the Redis error for one that is not.
pub(crate) fn integer_arg(arg: &[u8]) -> Result<i64, Failure> {
    blockkv_engine::parse_integer(arg).ok_or_else(Failure::not_an_integer)
}
