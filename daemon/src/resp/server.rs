//! Server commands: CONFIG, COMMAND, TIME, MONITOR, SLOWLOG. INFO is in `info.rs`.

use super::docs;
use super::failure::{Failure, Reply, integer_arg};
use super::glob;
use super::spec::{Cx, SPECS, Spec};
use crate::context::Context;
use crate::weight::Weight;
use blockkv_engine::SyncPolicy;
use blockkv_protocol::resp::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One CONFIG parameter: its name, how to read it, and whether and how
/// CONFIG SET changes it (None: it is fixed; the message names the flag).
struct Parameter {
    name: &'static str,
    get: fn(&Context) -> String,
    set: Result<Setter, &'static str>,
}

/// Sets a parameter from its text, or says why not.
type Setter = fn(&Context, &str) -> Result<(), String>;

const fn fixed(name: &'static str, get: fn(&Context) -> String, flag: &'static str) -> Parameter {
    Parameter { name, get, set: Err(flag) }
}

fn parse<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

/// Every parameter CONFIG GET answers: Redis's names for what Redis
/// clients ask about (persistence, limits), kvd's own for its settings.
static PARAMETERS: [Parameter; 16] = [
    fixed("save", |_| String::new(), "kvd takes no snapshots: every write goes to its log"),
    fixed("appendonly", |_| "yes".into(), "kvd always writes its log"),
    fixed(
        "appendfsync",
        |ctx| {
            match ctx.sync_policy {
                SyncPolicy::Always => "always",
                SyncPolicy::Periodic(_) => "everysec",
                SyncPolicy::None => "no",
            }
            .into()
        },
        "--sync",
    ),
    Parameter {
        name: "maxclients",
        get: |ctx| ctx.settings.max_connections().to_string(),
        set: Ok(|ctx, value| {
            let limit: usize = parse(value)?;
            if limit == 0 {
                return Err("argument must be between 1 and 4294967295 inclusive".into());
            }
            ctx.settings.set_max_connections(limit);
            Ok(())
        }),
    },
    Parameter {
        name: "loglevel",
        get: |ctx| ctx.settings.log_level(),
        set: Ok(|ctx, value| {
            // Redis's level names, or any tracing filter kvd's --log-level takes.
            let level = match value.to_ascii_lowercase().as_str() {
                "debug" => "debug".to_string(),
                "verbose" | "notice" => "info".to_string(),
                "warning" => "warn".to_string(),
                other => other.to_string(),
            };
            ctx.settings.set_log_level(&level)
        }),
    },
    Parameter {
        name: "sync-interval-ms",
        get: |ctx| match ctx.store.sync_policy() {
            SyncPolicy::Periodic(every) => every.as_millis().to_string(),
            _ => "0".into(),
        },
        set: Ok(|ctx, value| {
            let ms: u64 = parse(value)?;
            ctx.store.set_sync_interval(Duration::from_millis(ms)).map_err(|err| err.to_string())
        }),
    },
    Parameter {
        name: "checkpoint-interval-s",
        get: |ctx| ctx.store.checkpoint_interval().map_or(0, |every| every.as_secs()).to_string(),
        set: Ok(|ctx, value| {
            let seconds: u64 = parse(value)?;
            let every = (seconds > 0).then(|| Duration::from_secs(seconds));
            ctx.store.set_checkpoint_interval(every);
            Ok(())
        }),
    },
    Parameter {
        name: "slowlog-log-slower-than",
        get: |ctx| ctx.settings.slowlog_slower_than_us().to_string(),
        set: Ok(|ctx, value| {
            ctx.settings.set_slowlog_slower_than_us(parse(value)?);
            Ok(())
        }),
    },
    Parameter {
        name: "slowlog-max-len",
        get: |ctx| ctx.settings.slowlog_len().to_string(),
        set: Ok(|ctx, value| {
            ctx.settings.set_slowlog_len(parse(value)?);
            Ok(())
        }),
    },
    fixed("databases", |_| "1".into(), "kvd has one database"),
    fixed("maxmemory", |_| "0".into(), "kvd keeps values in its data file, not in memory"),
    fixed("maxmemory-policy", |_| "noeviction".into(), "kvd never evicts"),
    fixed("port", |_| "0".into(), "--socket (kvd listens on a Unix socket)"),
    fixed("unixsocket", |ctx| ctx.socket_path.to_string(), "--socket"),
    fixed("dbfilename", |ctx| ctx.data_path.to_string(), "--data"),
    fixed("proto-max-bulk-len", |_| blockkv_protocol::resp::RESP_BULK_BYTES_MAX.to_string(), "the value limit"),
];

/// CONFIG GET pattern [pattern ...] | SET name value [name value ...] |
/// RESETSTAT | REWRITE.
pub(super) fn config(cx: &mut Cx, args: &Command) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            let name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
            Err(Failure::err(format_args!("wrong number of arguments for 'config|{name}' command")))
        }
    };
    match sub.as_slice() {
        b"GET" => {
            arity(args.len() >= 3)?;
            let matching: Vec<&Parameter> = PARAMETERS
                .iter()
                .filter(|p| {
                    args.iter().skip(2).any(|pattern| glob::matches(&pattern.to_ascii_lowercase(), p.name.as_bytes()))
                })
                .collect();
            cx.out.map(matching.len());
            for parameter in matching {
                cx.out.bulk(parameter.name.as_bytes());
                cx.out.bulk((parameter.get)(cx.ctx).as_bytes());
            }
        }
        b"SET" => {
            arity(args.len() >= 4 && args.len().is_multiple_of(2))?;
            // Every name is checked before any value is set, as Redis does.
            let mut changes = Vec::new();
            for pair in args.iter().skip(2).collect::<Vec<_>>().chunks(2) {
                let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
                let Some(parameter) = PARAMETERS.iter().find(|p| p.name == name) else {
                    return Err(Failure::err(format_args!(
                        "Unknown option or number of arguments for CONFIG SET - '{name}'"
                    )));
                };
                let set = parameter.set.map_err(|flag| {
                    Failure::err(format_args!("CONFIG SET '{name}' is not settable while kvd runs: {flag}"))
                })?;
                changes.push((parameter.name, set, String::from_utf8_lossy(pair[1]).into_owned()));
            }
            // All or none, as Redis: on a refused value, the ones set before it go back.
            let mut done: Vec<(Setter, String)> = Vec::new();
            for (name, set, value) in changes {
                let before = PARAMETERS.iter().find(|p| p.name == name).map(|p| (p.get)(cx.ctx)).unwrap_or_default();
                if let Err(why) = set(cx.ctx, &value) {
                    for (undo, old) in done.into_iter().rev() {
                        let _ = undo(cx.ctx, &old);
                    }
                    return Err(Failure::err(format_args!(
                        "CONFIG SET failed (possibly related to argument '{name}') - {why}"
                    )));
                }
                tracing::info!(parameter = name, value = %value, "CONFIG SET");
                done.push((set, before));
            }
            cx.out.ok();
        }
        b"RESETSTAT" => {
            arity(args.len() == 2)?;
            cx.ctx.slowlog.reset();
            cx.out.ok();
        }
        b"REWRITE" => return Err(Failure::err("The server is running without a config file")),
        _ => {
            return Err(Failure::err(format_args!(
                "unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    }
    Ok(())
}

/// MONITOR: from now on this connection receives every command run.
pub(super) fn monitor(cx: &mut Cx, _args: &Command) -> Reply {
    if cx.in_exec {
        // Redis's words: a transaction's client may not block on a stream.
        return Err(Failure::err("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    if cx.session.monitor.is_none() {
        cx.session.monitor = Some(cx.ctx.monitors.add(cx.session.client.id));
        cx.session.client.set_monitor();
    }
    cx.out.ok();
    Ok(())
}

/// SLOWLOG GET [count] | LEN | RESET.
pub(super) fn slowlog(cx: &mut Cx, args: &Command) -> Reply {
    match args[1].to_ascii_uppercase().as_slice() {
        b"GET" => {
            let count = match args.get(2) {
                None => 10,
                Some(count) => match integer_arg(count) {
                    Ok(-1) => usize::MAX,
                    Ok(count) if count >= 0 => count as usize,
                    _ => return Err(Failure::err("count should be greater than or equal to -1")),
                },
            };
            let entries = cx.ctx.slowlog.newest(count);
            cx.out.array(entries.len());
            for entry in entries {
                cx.out.array(6);
                cx.out.integer(entry.id as i64);
                cx.out.integer(entry.unix_s as i64);
                cx.out.integer(entry.duration_us as i64);
                cx.out.array(entry.args.len());
                entry.args.iter().for_each(|arg| cx.out.bulk(arg));
                cx.out.bulk(entry.client_addr.as_bytes());
                cx.out.bulk(&entry.client_name);
            }
        }
        b"LEN" => cx.out.integer(cx.ctx.slowlog.len() as i64),
        b"RESET" => {
            cx.ctx.slowlog.reset();
            cx.out.ok();
        }
        _ => {
            return Err(Failure::err(format_args!(
                "unknown subcommand '{}'. Try SLOWLOG HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    }
    Ok(())
}

/// TIME: the server's clock as [unix seconds, microseconds within the second].
pub(super) fn time(cx: &mut Cx, _args: &Command) -> Reply {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    cx.out.array(2);
    cx.out.bulk(since.as_secs().to_string().as_bytes());
    cx.out.bulk(since.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// COMMAND [COUNT | LIST | INFO [name ...] | DOCS [name ...]]: about the
/// commands kvd runs, in Redis 7.0's reply shapes.
pub(super) fn command(cx: &mut Cx, args: &Command) -> Reply {
    let named = |args: &Command| -> Vec<String> {
        args.iter().skip(2).map(|name| String::from_utf8_lossy(name).to_ascii_lowercase()).collect()
    };
    match args.get(1).map(|a| a.to_ascii_uppercase()).as_deref() {
        None => {
            cx.out.array(SPECS.len());
            SPECS.iter().for_each(|spec| command_info(cx, spec));
        }
        Some(b"COUNT") => cx.out.integer(SPECS.len() as i64),
        Some(b"LIST") => {
            cx.out.array(SPECS.len());
            for spec in &SPECS {
                cx.out.bulk(spec.name.as_bytes());
            }
        }
        Some(b"INFO") => {
            let names = named(args);
            if names.is_empty() {
                cx.out.array(SPECS.len());
                SPECS.iter().for_each(|spec| command_info(cx, spec));
            } else {
                cx.out.array(names.len());
                for name in names {
                    match SPECS.iter().find(|spec| spec.name == name) {
                        Some(spec) => command_info(cx, spec),
                        None => cx.out.null(),
                    }
                }
            }
        }
        Some(b"DOCS") => {
            let names = named(args);
            let specs: Vec<&Spec> = if names.is_empty() {
                SPECS.iter().collect()
            } else {
                names.iter().filter_map(|name| SPECS.iter().find(|spec| spec.name == *name)).collect()
            };
            let documented: Vec<(&Spec, &docs::Doc)> =
                specs.into_iter().filter_map(|spec| Some((spec, docs::doc(spec.name)?))).collect();
            cx.out.map(documented.len());
            for (spec, doc) in documented {
                cx.out.bulk(spec.name.as_bytes());
                command_doc(cx, doc);
            }
        }
        Some(_) => {
            return Err(Failure::err(format_args!(
                "unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(&args[1])
            )));
        }
    }
    Ok(())
}

/// One command's COMMAND INFO entry: name, arity, flags, first key, last
/// key, key step, ACL categories, tips, key specs, subcommands.
fn command_info(cx: &mut Cx, spec: &Spec) {
    let (group, first, last, step) = docs::doc(spec.name).map_or(("server", 0, 0, 0), |d| (d.1, d.3, d.4, d.5));
    let writes = spec.writes();
    cx.out.array(10);
    cx.out.bulk(spec.name.as_bytes());
    cx.out.integer(i64::from(spec.arity));
    let fast = !matches!(spec.weight(), Weight::Heavy);
    let flags: Vec<&str> = [
        writes.then_some("write"),
        writes.then_some("denyoom"),
        (!writes && first > 0).then_some("readonly"),
        fast.then_some("fast"),
    ]
    .into_iter()
    .flatten()
    .collect();
    cx.out.set(flags.len());
    flags.iter().for_each(|flag| cx.out.simple(flag));
    cx.out.integer(i64::from(first));
    cx.out.integer(i64::from(last));
    cx.out.integer(i64::from(step));
    let categories =
        [if writes { "@write" } else { "@read" }, &format!("@{group}"), if fast { "@fast" } else { "@slow" }]
            .map(str::to_string);
    cx.out.set(categories.len());
    categories.iter().for_each(|category| cx.out.simple(category));
    cx.out.array(0);
    cx.out.array(0);
    cx.out.array(0);
}

/// One command's COMMAND DOCS map: summary, since, group, arguments.
fn command_doc(cx: &mut Cx, doc: &docs::Doc) {
    let (_, group, since, _, _, _, synopsis, summary) = *doc;
    let parts = docs::synopsis_parts(synopsis);
    cx.out.map(if parts.is_empty() { 3 } else { 4 });
    for (field, value) in [("summary", summary), ("since", since), ("group", group)] {
        cx.out.bulk(field.as_bytes());
        cx.out.bulk(value.as_bytes());
    }
    if parts.is_empty() {
        return;
    }
    cx.out.bulk(b"arguments");
    cx.out.array(parts.len());
    for part in parts {
        let (text, optional) = match part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
            Some(inner) => (inner, true),
            None => (part, false),
        };
        let token = text.chars().all(|c| c.is_ascii_uppercase() || c == '-');
        let kind = if token {
            "pure-token"
        } else if matches!(text, "key" | "newkey" | "source" | "destination") {
            "key"
        } else {
            "string"
        };
        cx.out.map(2 + usize::from(token) + usize::from(optional));
        cx.out.bulk(b"name");
        cx.out.bulk(text.to_ascii_lowercase().as_bytes());
        cx.out.bulk(b"type");
        cx.out.bulk(kind.as_bytes());
        if token {
            cx.out.bulk(b"token");
            cx.out.bulk(text.as_bytes());
        }
        if optional {
            cx.out.bulk(b"flags");
            cx.out.set(1);
            cx.out.simple("optional");
        }
    }
}
