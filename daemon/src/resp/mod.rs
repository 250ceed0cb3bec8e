//! kvd's RESP2 commands: what `redis-cli`, `redis-benchmark` and Redis
//! client libraries send, run against the engine. The wire format is in
//! blockkv_protocol::resp; this module turns one decoded command into its
//! reply bytes.
//!
//! Where things live: `strings.rs` (GET, SET…, MGET, MSET, INCR…, DEL,
//! EXISTS), `keys.rs` (EXPIRE…, TTL…, PERSIST, SCAN, DBSIZE), `server.rs`
//! (PING, ECHO, INFO, and what clients send when they connect: COMMAND,
//! CONFIG GET, CLIENT, SELECT, QUIT).
//!
//! Errors read as Redis's do (`-ERR wrong number of arguments for 'get'
//! command`, `-ERR value is not an integer or out of range`). kvd stores
//! strings only: a list, hash, set or sorted-set command on an existing key
//! is `-WRONGTYPE`, as Redis answers a command of the wrong type; on a
//! missing key it says the type is not supported. Any other unknown command
//! is `-ERR unknown command`.

mod keys;
mod server;
mod strings;

pub use keys::ScanCursors;

use crate::handler::Context;
use blockkv_engine::Error;
use blockkv_protocol::resp::{Command, put_error};
use std::time::Instant;

/// What the connection does after a command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Continue,
    /// QUIT: close once the reply is sent.
    Close,
}

/// A command's failure, written as `-CODE message`.
pub(crate) struct Failure(String);

impl Failure {
    pub(crate) fn err(message: impl std::fmt::Display) -> Failure {
        Failure(format!("ERR {message}"))
    }

    fn arity(name: &str) -> Failure {
        Failure::err(format_args!("wrong number of arguments for '{name}' command"))
    }

    pub(crate) fn syntax() -> Failure {
        Failure::err("syntax error")
    }

    pub(crate) fn not_an_integer() -> Failure {
        Failure::err("value is not an integer or out of range")
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::engine(&err)
    }
}

impl Failure {
    /// An engine error: `-READONLY …` for a read-only store, else `-ERR …`.
    fn engine(err: &Error) -> Failure {
        match err {
            Error::ReadOnly => Failure(format!("READONLY {err}")),
            other => Failure::err(other),
        }
    }
}

pub(crate) type Reply = Result<(), Failure>;

/// An engine error as a RESP error line (`-ERR …`, `-READONLY …`).
pub fn put_engine_error(out: &mut Vec<u8>, err: &Error) {
    put_error(out, &Failure::engine(err).0);
}

/// One RESP command: how many arguments it takes (the name included;
/// negative: at least that many) and what runs it.
struct Spec {
    name: &'static str,
    arity: i32,
    run: fn(&Context<'_>, &Command, &mut Vec<u8>) -> Reply,
    /// The native command whose STATS counters it shares, if any.
    counted_as: Option<&'static str>,
}

const SPECS: &[Spec] = &[
    Spec { name: "get", arity: 2, run: strings::get, counted_as: Some("get") },
    Spec { name: "set", arity: -3, run: strings::set, counted_as: Some("put") },
    Spec { name: "setex", arity: 4, run: strings::setex, counted_as: Some("put") },
    Spec { name: "psetex", arity: 4, run: strings::psetex, counted_as: Some("put") },
    Spec { name: "setnx", arity: 3, run: strings::setnx, counted_as: Some("put") },
    Spec { name: "mget", arity: -2, run: strings::mget, counted_as: Some("get") },
    Spec { name: "mset", arity: -3, run: strings::mset, counted_as: Some("batch") },
    Spec { name: "incr", arity: 2, run: strings::incr, counted_as: Some("put") },
    Spec { name: "decr", arity: 2, run: strings::decr, counted_as: Some("put") },
    Spec { name: "incrby", arity: 3, run: strings::incrby, counted_as: Some("put") },
    Spec { name: "decrby", arity: 3, run: strings::decrby, counted_as: Some("put") },
    Spec { name: "del", arity: -2, run: strings::del, counted_as: Some("delete") },
    Spec { name: "exists", arity: -2, run: strings::exists, counted_as: Some("exists") },
    Spec { name: "expire", arity: 3, run: keys::expire, counted_as: Some("expire") },
    Spec { name: "pexpire", arity: 3, run: keys::pexpire, counted_as: Some("expire") },
    Spec { name: "ttl", arity: 2, run: keys::ttl, counted_as: Some("ttl") },
    Spec { name: "pttl", arity: 2, run: keys::pttl, counted_as: Some("ttl") },
    Spec { name: "persist", arity: 2, run: keys::persist, counted_as: Some("expire") },
    Spec { name: "scan", arity: -2, run: keys::scan, counted_as: Some("scan") },
    Spec { name: "dbsize", arity: 1, run: keys::dbsize, counted_as: None },
    Spec { name: "ping", arity: -1, run: server::ping, counted_as: Some("ping") },
    Spec { name: "echo", arity: 2, run: server::echo, counted_as: None },
    Spec { name: "info", arity: -1, run: server::info, counted_as: Some("stats") },
    Spec { name: "command", arity: -1, run: server::command, counted_as: None },
    Spec { name: "config", arity: -2, run: server::config, counted_as: None },
    Spec { name: "client", arity: -2, run: server::client, counted_as: None },
    Spec { name: "select", arity: 2, run: server::select, counted_as: None },
    Spec { name: "quit", arity: -1, run: server::quit, counted_as: None },
];

/// Commands of Redis's other data types: `-WRONGTYPE` on a string key.
const OTHER_TYPE_COMMANDS: &[&str] = &[
    "lpush",
    "rpush",
    "lpop",
    "rpop",
    "lrange",
    "llen",
    "lindex",
    "lset",
    "lrem",
    "ltrim",
    "hset",
    "hget",
    "hdel",
    "hgetall",
    "hmset",
    "hmget",
    "hincrby",
    "hlen",
    "hexists",
    "hkeys",
    "hvals",
    "sadd",
    "srem",
    "smembers",
    "sismember",
    "scard",
    "spop",
    "zadd",
    "zrem",
    "zrange",
    "zscore",
    "zcard",
    "zincrby",
    "zrank",
];

/// True if `name` (any case) is QUIT: the server stops reading after it.
pub fn is_quit(command: &Command) -> bool {
    command.get(0).is_some_and(|name| name.eq_ignore_ascii_case(b"quit"))
}

/// Runs one command, appending its reply to `out`.
pub fn execute(ctx: &Context<'_>, command: &Command, out: &mut Vec<u8>) -> After {
    let started = Instant::now();
    let Some(name) = command.get(0) else { return After::Continue };
    let Some(spec) = SPECS.iter().find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes())) else {
        put_error(out, &unknown(ctx, command, &name.to_ascii_lowercase()).0);
        return After::Continue;
    };
    let argc = command.len() as i32;
    let fits = if spec.arity >= 0 { argc == spec.arity } else { argc >= -spec.arity };
    let result = if fits { (spec.run)(ctx, command, out) } else { Err(Failure::arity(spec.name)) };
    if let Err(failure) = &result {
        put_error(out, &failure.0);
        tracing::debug!(command = spec.name, "RESP command refused: {}", failure.0);
    }
    if let Some(index) = spec.counted_as.and_then(|name| crate::metrics::COMMANDS.iter().position(|c| *c == name)) {
        ctx.metrics.record(index, started.elapsed().as_micros() as u64, result.is_ok());
    }
    if spec.name == "quit" { After::Close } else { After::Continue }
}

/// An unknown command, or one of a type kvd does not store.
fn unknown(ctx: &Context<'_>, command: &Command, lower: &[u8]) -> Failure {
    let name = String::from_utf8_lossy(lower);
    if OTHER_TYPE_COMMANDS.iter().any(|other| other.as_bytes() == lower) {
        let key_exists = command.get(1).is_some_and(|key| ctx.store.exists(key).unwrap_or(false));
        if key_exists {
            return Failure("WRONGTYPE Operation against a key holding the wrong kind of value".into());
        }
        return Failure::err(format_args!("unsupported command '{name}': kvd stores strings only"));
    }
    let shown: String = command
        .iter()
        .skip(1)
        .take(3)
        .map(|arg| format!("'{}' ", String::from_utf8_lossy(&arg[..arg.len().min(64)])))
        .collect();
    Failure::err(format_args!(
        "unknown command '{}', with args beginning with: {shown}",
        String::from_utf8_lossy(&command[0])
    ))
}

/// An argument as an i64, or the Redis error for one that is not.
pub(crate) fn integer_arg(arg: &[u8]) -> Result<i64, Failure> {
    blockkv_engine::parse_integer(arg).ok_or_else(Failure::not_an_integer)
}
