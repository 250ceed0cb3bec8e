//! Connection commands: PING, ECHO, HELLO, CLIENT, SELECT, AUTH, RESET, QUIT.

use super::failure::{Failure, Reply, integer_arg};
use super::spec::{Cx, name_at};
use crate::clients::CLIENT_NAME_BYTES_MAX;
use blockkv_protocol::resp::Command;

/// What HELLO's `version` says: the Redis release whose commands and
/// replies kvd's RESP follows (INFO's `redis_version` says the same).
pub(super) const REDIS_VERSION_COMPATIBLE: &str = "7.0.0";

pub(super) fn ping(cx: &mut Cx, args: &Command) -> Reply {
    match args.len() {
        1 => cx.out.simple("PONG"),
        2 => cx.out.bulk(&args[1]),
        _ => return Err(Failure::arity("ping")),
    }
    Ok(())
}

pub(super) fn echo(cx: &mut Cx, args: &Command) -> Reply {
    cx.out.bulk(&args[1]);
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]: switches
/// the protocol and answers with the server's description, a map.
pub(super) fn hello(cx: &mut Cx, args: &Command) -> Reply {
    let mut resp3 = cx.session.resp3;
    if let Some(version) = args.get(1) {
        let version =
            integer_arg(version).map_err(|_| Failure::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&version) {
            return Err(Failure::coded("NOPROTO unsupported protocol version"));
        }
        resp3 = version == 3;
    }
    let mut name = None;
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        let upper = option.to_ascii_uppercase();
        let syntax =
            || Failure::err(format_args!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(option)));
        match upper.as_slice() {
            b"AUTH" => {
                let (Some(user), Some(_password)) = (options.next(), options.next()) else { return Err(syntax()) };
                if user != b"default" {
                    return Err(Failure::coded("WRONGPASS invalid username-password pair or user is disabled."));
                }
            }
            b"SETNAME" => name = Some(options.next().ok_or_else(syntax)?),
            _ => return Err(syntax()),
        }
    }
    if let Some(name) = name {
        check_name(name)?;
        cx.session.client.set_name(name);
    }
    cx.session.resp3 = resp3;
    cx.session.client.set_resp(if resp3 { 3 } else { 2 });
    // The reply is written in the protocol just chosen.
    let mut reply = Vec::new();
    let mut out = super::reply::Out::new(&mut reply, resp3);
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_VERSION_COMPATIBLE.as_bytes());
    out.bulk(b"proto");
    out.integer(if resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.integer(cx.session.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    cx.out.raw(&reply);
    Ok(())
}

/// A client name is printable ASCII without spaces, as Redis requires.
fn check_name(name: &[u8]) -> Result<(), Failure> {
    if name.len() > CLIENT_NAME_BYTES_MAX || name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Failure::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// CLIENT ID | GETNAME | SETNAME | SETINFO | INFO | LIST | KILL | NO-EVICT | REPLY.
pub(super) fn client(cx: &mut Cx, args: &Command) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    let arity = |expected: usize| {
        if args.len() == expected {
            Ok(())
        } else {
            Err(Failure::err(format_args!(
                "wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(&sub).to_ascii_lowercase()
            )))
        }
    };
    let now_ms = cx.ctx.clients.since_start_ms();
    match sub.as_slice() {
        b"ID" => {
            arity(2)?;
            cx.out.integer(cx.session.client.id as i64);
        }
        b"GETNAME" => {
            arity(2)?;
            let name = cx.session.client.name();
            cx.out.bulk_or_null((!name.is_empty()).then_some(name.as_slice()));
        }
        b"SETNAME" => {
            arity(3)?;
            check_name(&args[2])?;
            cx.session.client.set_name(&args[2]);
            cx.out.ok();
        }
        b"SETINFO" => {
            arity(4)?;
            let value = String::from_utf8_lossy(&args[3]);
            if value.len() > CLIENT_NAME_BYTES_MAX || value.chars().any(|c| !('!'..='~').contains(&c)) {
                return Err(Failure::err(format_args!(
                    "{} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[2]).to_ascii_lowercase()
                )));
            }
            match args[2].to_ascii_uppercase().as_slice() {
                b"LIB-NAME" => cx.session.client.set_library(Some(&value), None),
                b"LIB-VER" => cx.session.client.set_library(None, Some(&value)),
                _ => {
                    return Err(Failure::err(format_args!(
                        "Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[2])
                    )));
                }
            }
            cx.out.ok();
        }
        b"INFO" => {
            arity(2)?;
            let line = cx.session.client.line(now_ms, name_at(cx.session.client.last_command()));
            cx.out.verbatim(&format!("{line}\n"));
        }
        b"LIST" => client_list(cx, args, now_ms)?,
        b"KILL" => client_kill(cx, args)?,
        b"NO-EVICT" | b"NO-TOUCH" => {
            arity(3)?;
            if !matches!(args[2].to_ascii_uppercase().as_slice(), b"ON" | b"OFF") {
                return Err(Failure::syntax());
            }
            cx.out.ok();
        }
        b"REPLY" => {
            arity(3)?;
            use super::session::Replies;
            // As Redis: ON answers OK; OFF and SKIP answer nothing; SKIP
            // while OFF changes nothing.
            let (mode, send) = match args[2].to_ascii_uppercase().as_slice() {
                b"ON" => (Replies::On, true),
                b"OFF" => (Replies::Off, false),
                b"SKIP" if cx.session.replies == Replies::Off => (Replies::Off, false),
                b"SKIP" => (Replies::Skip, false),
                _ => return Err(Failure::syntax()),
            };
            cx.session.replies = mode;
            cx.session.reply_now = Some(send);
            cx.out.ok();
        }
        _ => {
            return Err(Failure::err(format_args!(
                "unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    }
    Ok(())
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
fn client_list(cx: &mut Cx, args: &Command, now_ms: u64) -> Reply {
    let mut ids: Option<Vec<u64>> = None;
    let mut normal_only = true;
    let mut options = args.iter().skip(2);
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"TYPE" => {
                let kind = options.next().ok_or_else(Failure::syntax)?;
                normal_only = match kind.to_ascii_lowercase().as_slice() {
                    b"normal" => true,
                    b"master" | b"replica" | b"slave" | b"pubsub" => false,
                    _ => {
                        return Err(Failure::err(format_args!(
                            "Unknown client type '{}'",
                            String::from_utf8_lossy(kind)
                        )));
                    }
                };
            }
            b"ID" => {
                let mut list = Vec::new();
                for id in options.by_ref() {
                    let id =
                        integer_arg(id).ok().filter(|&id| id > 0).ok_or_else(|| Failure::err("Invalid client ID"))?;
                    list.push(id as u64);
                }
                if list.is_empty() {
                    return Err(Failure::syntax());
                }
                ids = Some(list);
            }
            _ => return Err(Failure::syntax()),
        }
    }
    let mut text = String::new();
    if normal_only {
        for client in cx.ctx.clients.all() {
            if ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
                text.push_str(&client.line(now_ms, name_at(client.last_command())));
                text.push('\n');
            }
        }
    }
    cx.out.verbatim(&text);
    Ok(())
}

/// CLIENT KILL addr:port (the old form), or CLIENT KILL with filters (ID,
/// TYPE, USER, ADDR, LADDR, MAXAGE, SKIPME), every given one to match, as
/// Redis reads them. A kvd client's address is `<socket>:0`.
fn client_kill(cx: &mut Cx, args: &Command) -> Reply {
    let me = cx.session.client.id;
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        let found = cx.ctx.clients.all().into_iter().find(|c| c.address() == addr && c.id != me);
        let Some(client) = found else { return Err(Failure::err("No such client")) };
        client.kill();
        cx.out.ok();
        return Ok(());
    }
    if args.len() < 3 || !args.len().is_multiple_of(2) {
        return Err(Failure::syntax());
    }
    let (mut id, mut skip_me, mut none, mut addr, mut max_age) = (None, true, false, None, None);
    for pair in args.iter().skip(2).collect::<Vec<_>>().chunks(2) {
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        match pair[0].to_ascii_uppercase().as_slice() {
            b"ID" => {
                let asked = integer_arg(pair[1]).ok().filter(|&id| id > 0);
                id = Some(asked.ok_or_else(|| Failure::err("client-id should be greater than 0"))? as u64);
            }
            b"SKIPME" => {
                skip_me = match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(Failure::syntax()),
                }
            }
            b"TYPE" => match value.to_ascii_lowercase().as_str() {
                "normal" => {}
                "master" | "replica" | "slave" | "pubsub" => none = true,
                _ => return Err(Failure::err(format_args!("Unknown client type '{value}'"))),
            },
            b"USER" if value == "default" => {}
            b"USER" => return Err(Failure::err(format_args!("No such user '{value}'"))),
            b"ADDR" | b"LADDR" => addr = Some(value),
            b"MAXAGE" => max_age = Some(integer_arg(pair[1])?),
            _ => return Err(Failure::syntax()),
        }
    }
    let mut killed = 0;
    for client in cx.ctx.clients.all() {
        let matches = !none
            && id.is_none_or(|id| client.id == id)
            && addr.as_ref().is_none_or(|addr| client.address() == *addr)
            && max_age.is_none_or(|age| client.age_s() as i64 > age)
            && !(skip_me && client.id == me);
        if matches {
            client.kill();
            killed += 1;
        }
    }
    cx.out.integer(killed);
    Ok(())
}

/// kvd has one keyspace: database 0.
pub(super) fn select(cx: &mut Cx, args: &Command) -> Reply {
    let index = integer_arg(&args[1])?;
    if index != 0 {
        return Err(Failure::err("DB index is out of range"));
    }
    cx.out.ok();
    Ok(())
}

/// AUTH [username] password, answered as Redis answers it while the default
/// user has no password (kvd has none to set): the default user's name with
/// any password is accepted, a password alone is refused, another user is
/// not known.
pub(super) fn auth(cx: &mut Cx, args: &Command) -> Reply {
    match args.len() {
        2 => Err(Failure::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
        3 if &args[1] == b"default" => {
            cx.out.ok();
            Ok(())
        }
        3 => Err(Failure::coded("WRONGPASS invalid username-password pair or user is disabled.")),
        _ => Err(Failure::syntax()),
    }
}

/// RESET: the connection as it was when it connected — out of MULTI, no
/// watched keys, RESP2, no name, replies on.
pub(super) fn reset(cx: &mut Cx, _args: &Command) -> Reply {
    cx.session.end_multi();
    cx.session.unwatch(&cx.ctx.watches);
    cx.session.resp3 = false;
    cx.session.replies = super::session::Replies::On;
    if cx.session.monitor.take().is_some() {
        cx.ctx.monitors.remove(cx.session.client.id);
    }
    cx.session.client.set_resp(2);
    cx.session.client.set_name(b"");
    cx.out.simple("RESET");
    Ok(())
}

pub(super) fn quit(cx: &mut Cx, _args: &Command) -> Reply {
    cx.out.ok();
    Ok(())
}
