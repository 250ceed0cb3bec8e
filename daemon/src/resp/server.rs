//! Server commands: PING, ECHO, INFO, and what clients send when they
//! connect — CONFIG GET (redis-benchmark asks for `save` and
//! `appendonly`), CLIENT SETNAME / SETINFO, SELECT 0 — and QUIT. COMMAND,
//! which answers about the command table, is in `spec.rs`.

use super::failure::{Failure, Reply};
use crate::context::Context;
use blockkv_engine::SyncPolicy;
use blockkv_protocol::resp::{Command, put_array_header, put_bulk, put_null, put_simple};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// What INFO's `redis_version` says: the Redis release whose commands and
/// replies kvd's RESP follows, for clients that check it before using a
/// command. `blockkv_version` says what is really answering.
const REDIS_VERSION_COMPATIBLE: &str = "7.0.0";

pub(super) fn ping(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    match args.len() {
        1 => put_simple(out, "PONG"),
        2 => put_bulk(out, &args[1]),
        _ => return Err(Failure::err("wrong number of arguments for 'ping' command")),
    }
    Ok(())
}

pub(super) fn echo(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    put_bulk(out, &args[1]);
    Ok(())
}

/// INFO [section ...]: server, clients, stats, persistence, keyspace.
pub(super) fn info(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    const SECTIONS: [&str; 5] = ["server", "clients", "stats", "persistence", "keyspace"];
    let asked: Vec<String> = args.iter().skip(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let all = asked.is_empty() || asked.iter().any(|a| matches!(a.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for section in SECTIONS.iter().filter(|s| all || asked.iter().any(|a| a == *s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        info_section(ctx, section, &mut text);
    }
    put_bulk(out, text.as_bytes());
    Ok(())
}

fn info_section(ctx: &Context, section: &str, text: &mut String) {
    let metrics = &ctx.metrics;
    let title = section[..1].to_ascii_uppercase() + &section[1..];
    let _ = write!(text, "# {title}\r\n");
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(text, "{name}:{value}\r\n");
    };
    match section {
        "server" => {
            let uptime_s = metrics.started.elapsed().as_secs();
            line("redis_version", &REDIS_VERSION_COMPATIBLE);
            line("blockkv_version", &env!("CARGO_PKG_VERSION"));
            line("redis_mode", &"standalone");
            line("os", &std::env::consts::OS);
            line("arch_bits", &(usize::BITS));
            line("process_id", &std::process::id());
            line("uptime_in_seconds", &uptime_s);
            line("uptime_in_days", &(uptime_s / 86_400));
            line("data_file", &ctx.data_path);
        }
        "clients" => line("connected_clients", &metrics.connections_open.load(Ordering::Relaxed)),
        "stats" => {
            let calls: u64 = metrics.commands().iter().map(|c| c.calls).sum();
            line("total_connections_received", &metrics.connections_total.load(Ordering::Relaxed));
            line("total_commands_processed", &calls);
            line("rejected_connections", &metrics.connections_refused.load(Ordering::Relaxed));
        }
        "persistence" => {
            let stats = ctx.store.stats();
            line("loading", &0);
            line("blockkv_sync_policy", &ctx.sync_policy_text());
            line("blockkv_checkpoints", &stats.checkpoints);
            line("blockkv_last_lsn", &stats.last_lsn);
            line("blockkv_synced_lsn", &stats.synced_lsn);
            line("blockkv_live_bytes", &stats.live_bytes);
            line("blockkv_capacity_bytes", &stats.capacity_bytes);
        }
        "keyspace" => line("db0", &format_args!("keys={}", ctx.store.key_count())),
        _ => {}
    }
}

/// CONFIG GET answers what a Redis client asks about persistence in
/// kvd's terms — `save` is empty (no snapshots), `appendonly` yes (every
/// write goes to the log), `appendfsync` the sync policy — and an empty
/// list for any other parameter (as Redis does for an unknown one); CONFIG
/// SET and the rest are refused: kvd's settings are its flags.
pub(super) fn config(ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    if !args[1].eq_ignore_ascii_case(b"GET") {
        return Err(Failure::err("kvd supports only CONFIG GET; its settings are kvd's flags"));
    }
    let appendfsync = match ctx.sync_policy {
        SyncPolicy::Always => "always",
        SyncPolicy::Periodic(_) => "everysec",
        SyncPolicy::None => "no",
    };
    let known = [("save", ""), ("appendonly", "yes"), ("appendfsync", appendfsync)];
    let mut pairs = Vec::new();
    for asked in args.iter().skip(2) {
        let asked = String::from_utf8_lossy(asked).to_ascii_lowercase();
        pairs.extend(known.iter().filter(|(name, _)| asked == "*" || asked == *name));
    }
    put_array_header(out, pairs.len() * 2);
    for (name, value) in pairs {
        put_bulk(out, name.as_bytes());
        put_bulk(out, value.as_bytes());
    }
    Ok(())
}

/// CLIENT SETNAME / SETINFO are accepted (and not kept), GETNAME is nil.
pub(super) fn client(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    match args[1].to_ascii_uppercase().as_slice() {
        b"SETNAME" | b"SETINFO" => put_simple(out, "OK"),
        b"GETNAME" => put_null(out),
        _ => return Err(Failure::err("kvd supports only CLIENT SETNAME, SETINFO and GETNAME")),
    }
    Ok(())
}

/// kvd has one keyspace: database 0.
pub(super) fn select(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    if &args[1] != b"0" {
        return Err(Failure::err("DB index is out of range"));
    }
    put_simple(out, "OK");
    Ok(())
}

/// AUTH [username] password, answered as Redis answers it while the default
/// user has no password (kvd has none to set): the default user's name with
/// any password is accepted, a password alone is refused, another user is
/// not known.
pub(super) fn auth(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    match args.len() {
        2 => Err(Failure::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
        3 if &args[1] == b"default" => {
            put_simple(out, "OK");
            Ok(())
        }
        3 => Err(Failure::coded("WRONGPASS invalid username-password pair or user is disabled.")),
        _ => Err(Failure::syntax()),
    }
}

/// TIME: the server's clock as [unix seconds, microseconds within the second].
pub(super) fn time(_ctx: &Context, _args: &Command, out: &mut Vec<u8>) -> Reply {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    put_array_header(out, 2);
    put_bulk(out, since.as_secs().to_string().as_bytes());
    put_bulk(out, since.subsec_micros().to_string().as_bytes());
    Ok(())
}

pub(super) fn quit(_ctx: &Context, _args: &Command, out: &mut Vec<u8>) -> Reply {
    put_simple(out, "OK");
    Ok(())
}
