//! Commands kvd does not run. kvd stores strings only: a list, hash, set or
//! sorted-set command on an existing key is `-WRONGTYPE`, as Redis answers
//! a command of the wrong type; on a missing key it says the type is not
//! supported. Any other name is `-ERR unknown command …`, worded as Redis
//! words it.

use super::failure::{Failure, Reply};
use super::spec::Cx;
use blockkv_protocol::resp::Command;

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

/// The reply to a command no spec names. Its error is its reply, not the
/// refusal of a command kvd runs: it is neither counted nor logged as one.
pub(super) fn run(cx: &mut Cx, command: &Command) -> Reply {
    let Some(name) = command.get(0) else { return Ok(()) };
    let lower = name.to_ascii_lowercase();
    let failure = if OTHER_TYPE_COMMANDS.iter().any(|other| other.as_bytes() == lower) {
        let key_exists = command.get(1).is_some_and(|key| cx.db.exists(key).unwrap_or(false));
        if key_exists {
            Failure::coded("WRONGTYPE Operation against a key holding the wrong kind of value")
        } else {
            Failure::err(format_args!(
                "unsupported command '{}': kvd stores strings only",
                String::from_utf8_lossy(&lower)
            ))
        }
    } else {
        refusal_text(command)
    };
    failure.put(cx.out);
    Ok(())
}

/// A command the decoder refused for its size: the error it carries.
pub(super) fn refused(_cx: &mut Cx, command: &Command) -> Reply {
    Err(Failure::coded(String::from_utf8_lossy(&command[0]).into_owned()))
}

/// `unknown command …`, worded as Redis words it.
pub(super) fn refusal_text(command: &Command) -> Failure {
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
