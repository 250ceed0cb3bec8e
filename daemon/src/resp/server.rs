//! Server commands: INFO, CONFIG, COMMAND, TIME.

use super::connection::REDIS_VERSION_COMPATIBLE;
use super::failure::{Failure, Reply};
use super::spec::{Cx, SPECS};
use crate::context::Context;
use blockkv_engine::SyncPolicy;
use blockkv_protocol::resp::Command;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// INFO [section ...]: server, clients, stats, persistence, keyspace.
pub(super) fn info(cx: &mut Cx, args: &Command) -> Reply {
    let ctx = cx.ctx;
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
    cx.out.verbatim(&text);
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
pub(super) fn config(cx: &mut Cx, args: &Command) -> Reply {
    let ctx = cx.ctx;
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
    cx.out.map(pairs.len());
    for (name, value) in pairs {
        cx.out.bulk(name.as_bytes());
        cx.out.bulk(value.as_bytes());
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

/// COMMAND, COMMAND COUNT | LIST | INFO | DOCS: about the command table.
pub(super) fn command(cx: &mut Cx, args: &Command) -> Reply {
    match args.get(1).map(|a| a.to_ascii_uppercase()).as_deref() {
        None | Some(b"DOCS") | Some(b"INFO") => cx.out.array(0),
        Some(b"COUNT") => cx.out.integer(SPECS.len() as i64),
        Some(b"LIST") => {
            cx.out.array(SPECS.len());
            for spec in &SPECS {
                cx.out.bulk(spec.name.as_bytes());
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
