//! Commands kvd does not run. kvd stores strings only: a command of
//! Redis's other data types (lists, hashes, sets, sorted sets, streams) on
//! an existing key is `-WRONGTYPE`, as Redis answers a command of the wrong
//! type, and on a missing key says the type is not stored; Lua scripts and
//! functions, and pub/sub, each have one error saying kvd has none. Their
//! arity is Redis's, checked first, and inside MULTI they queue as in
//! Redis (their error is their reply in EXEC's array). Any other name is
//! `-ERR unknown command …`, worded as Redis words it.

use super::failure::{Failure, Reply};
use super::spec::Cx;
use blockkv_protocol::resp::Command;

/// Why kvd does not run a command Redis has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unserved {
    OtherType,
    Script,
    PubSub,
}

use Unserved::{OtherType, PubSub, Script};

/// Redis commands kvd does not run: name, Redis's arity, why.
const UNSERVED: &[(&str, i32, Unserved)] = &[
    ("lpush", -3, OtherType),
    ("rpush", -3, OtherType),
    ("lpop", -2, OtherType),
    ("rpop", -2, OtherType),
    ("lrange", 4, OtherType),
    ("llen", 2, OtherType),
    ("lindex", 3, OtherType),
    ("lset", 4, OtherType),
    ("lrem", 4, OtherType),
    ("ltrim", 4, OtherType),
    ("blpop", -3, OtherType),
    ("brpop", -3, OtherType),
    ("hset", -4, OtherType),
    ("hget", 3, OtherType),
    ("hdel", -3, OtherType),
    ("hgetall", 2, OtherType),
    ("hmset", -4, OtherType),
    ("hmget", -3, OtherType),
    ("hincrby", 4, OtherType),
    ("hlen", 2, OtherType),
    ("hexists", 3, OtherType),
    ("hkeys", 2, OtherType),
    ("hvals", 2, OtherType),
    ("hscan", -3, OtherType),
    ("sadd", -3, OtherType),
    ("srem", -3, OtherType),
    ("smembers", 2, OtherType),
    ("sismember", 3, OtherType),
    ("scard", 2, OtherType),
    ("spop", -2, OtherType),
    ("sscan", -3, OtherType),
    ("zadd", -4, OtherType),
    ("zrem", -3, OtherType),
    ("zrange", -4, OtherType),
    ("zscore", 3, OtherType),
    ("zcard", 2, OtherType),
    ("zincrby", 4, OtherType),
    ("zrank", -3, OtherType),
    ("zscan", -3, OtherType),
    ("xadd", -5, OtherType),
    ("xrange", -4, OtherType),
    ("xlen", 2, OtherType),
    ("xread", -4, OtherType),
    ("eval", -3, Script),
    ("evalsha", -3, Script),
    ("eval_ro", -3, Script),
    ("evalsha_ro", -3, Script),
    ("script", -2, Script),
    ("function", -2, Script),
    ("fcall", -3, Script),
    ("fcall_ro", -3, Script),
    ("subscribe", -2, PubSub),
    ("unsubscribe", -1, PubSub),
    ("psubscribe", -2, PubSub),
    ("punsubscribe", -1, PubSub),
    ("ssubscribe", -2, PubSub),
    ("publish", 3, PubSub),
    ("pubsub", -2, PubSub),
];

fn unserved(name: &[u8]) -> Option<(&'static str, i32, Unserved)> {
    UNSERVED.iter().copied().find(|(known, ..)| name.eq_ignore_ascii_case(known.as_bytes()))
}

fn fits(arity: i32, argc: usize) -> bool {
    if arity >= 0 { argc == arity as usize } else { argc >= arity.unsigned_abs() as usize }
}

/// Why MULTI refuses `command` at once, or None if it queues it (a Redis
/// command kvd does not run, with Redis's arity, queues as in Redis).
pub(super) fn queue_refusal(command: &Command) -> Option<Failure> {
    match command.get(0).and_then(unserved) {
        Some((_, arity, _)) if fits(arity, command.len()) => None,
        Some((known, ..)) => Some(Failure::arity(known)),
        None => Some(refusal_text(command)),
    }
}

/// The reply to a command no spec names. Its error is its reply, not the
/// refusal of a command kvd runs: it is neither counted nor logged as one.
pub(super) fn run(cx: &mut Cx, command: &Command) -> Reply {
    let Some(name) = command.get(0) else { return Ok(()) };
    let failure = match unserved(name) {
        Some((known, arity, _)) if !fits(arity, command.len()) => Failure::arity(known),
        Some((known, _, OtherType)) => {
            let key_exists = command.get(1).is_some_and(|key| cx.db.exists(key).unwrap_or(false));
            if key_exists {
                Failure::coded("WRONGTYPE Operation against a key holding the wrong kind of value")
            } else {
                Failure::err(format_args!("unsupported command '{known}': kvd stores strings only"))
            }
        }
        Some((known, _, Script)) => {
            Failure::err(format_args!("unsupported command '{known}': kvd runs no Lua scripts or functions"))
        }
        Some((known, _, PubSub)) => Failure::err(format_args!("unsupported command '{known}': kvd has no pub/sub")),
        None => refusal_text(command),
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
