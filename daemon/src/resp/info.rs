//! INFO [section ...], in Redis's format — `# Section` then `field:value`
//! lines — with the fields monitoring tools read (prometheus-redis-exporter,
//! `redis-cli --stat`), each from what kvd really measures; fields Redis
//! has and kvd has no counterpart for are left out rather than faked. A
//! `blockkv` section carries kvd's own figures. docs/PROTOCOL.md, "INFO".

use super::connection::REDIS_VERSION_COMPATIBLE;
use super::failure::Reply;
use super::spec::{Cx, name_at};
use crate::context::Context;
use blockkv_protocol::resp::Command;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// Sections in INFO's order; the second field: shown by INFO without
/// arguments (and `default`); all are shown by `all` and `everything`.
const SECTIONS: [(&str, bool); 12] = [
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("commandstats", false),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    ("blockkv", true),
];

pub(super) fn info(cx: &mut Cx, args: &Command) -> Reply {
    let asked: Vec<String> = args.iter().skip(1).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect();
    let every = asked.iter().any(|a| a == "all" || a == "everything");
    let defaults = asked.is_empty() || asked.iter().any(|a| a == "default");
    let mut text = String::new();
    for (section, by_default) in SECTIONS {
        if every || (defaults && by_default) || asked.iter().any(|a| a == section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            section_text(cx.ctx, section, &mut text);
        }
    }
    cx.out.verbatim(&text);
    Ok(())
}

/// `/proc/self/status`'s field `name` (in kB there), in bytes.
fn proc_status_bytes(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// User and system CPU seconds from `/proc/self/stat` (clock ticks of 1/100 s,
/// the Linux USER_HZ).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // utime and stime are the 14th and 15th fields; `rest` starts at the 3rd.
    (ticks(11), ticks(12))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes}B") } else { format!("{value:.2}{}", UNITS[unit]) }
}

fn section_text(ctx: &Context, section: &str, text: &mut String) {
    let metrics = &ctx.metrics;
    let title = section[..1].to_ascii_uppercase() + &section[1..];
    let _ = write!(text, "# {title}\r\n");
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(text, "{name}:{value}\r\n");
    };
    match section {
        "server" => {
            let uptime_s = metrics.started.elapsed().as_secs();
            let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
            line("redis_version", &REDIS_VERSION_COMPATIBLE);
            line("blockkv_version", &env!("CARGO_PKG_VERSION"));
            line("redis_mode", &"standalone");
            line("os", &std::env::consts::OS);
            line("arch_bits", &(usize::BITS));
            line("multiplexing_api", &"epoll");
            line("process_id", &std::process::id());
            // kvd listens on a Unix socket only.
            line("tcp_port", &0);
            line("server_time_usec", &now_us);
            line("uptime_in_seconds", &uptime_s);
            line("uptime_in_days", &(uptime_s / 86_400));
            let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
            line("executable", &exe);
            // kvd's settings are its flags; it reads no configuration file.
            line("config_file", &"");
            line("data_file", &ctx.data_path);
            line("unixsocket", &ctx.socket_path);
        }
        "clients" => {
            line("connected_clients", &metrics.connections_open.load(Ordering::Relaxed));
            line("maxclients", &ctx.settings.max_connections());
            line("blocked_clients", &0);
        }
        "memory" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            // kvd's allocator (glibc malloc) keeps no count of bytes in use:
            // its anonymous resident memory is the nearest measure of it.
            let used = proc_status_bytes(&status, "RssAnon");
            let rss = proc_status_bytes(&status, "VmRSS");
            let peak = metrics.used_memory_peak.fetch_max(used, Ordering::Relaxed).max(used);
            line("used_memory", &used);
            line("used_memory_human", &human_bytes(used));
            line("used_memory_rss", &rss);
            line("used_memory_rss_human", &human_bytes(rss));
            line("used_memory_peak", &peak);
            line("used_memory_peak_human", &human_bytes(peak));
            line("blockkv_index_bytes", &ctx.store.stats().index_heap_bytes);
            line("maxmemory", &0);
            line("maxmemory_human", &"0B");
            line("maxmemory_policy", &"noeviction");
            line("mem_allocator", &"libc");
        }
        "persistence" => {
            let stats = ctx.store.stats();
            line("loading", &0);
            line("async_loading", &0);
            line("rdb_changes_since_last_save", &stats.last_lsn.saturating_sub(stats.synced_lsn));
            line("rdb_bgsave_in_progress", &0);
            // A checkpoint is kvd's counterpart of a save: the index written down.
            let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let age_s = ctx.store.checkpoint_age().as_secs();
            line("rdb_last_save_time", &now_s.saturating_sub(age_s));
            line("blockkv_last_checkpoint_age_s", &age_s);
            line("rdb_last_bgsave_status", &if stats.poisoned.is_none() { "ok" } else { "err" });
            line("aof_enabled", &1);
            line("aof_rewrite_in_progress", &0);
            line("aof_last_write_status", &if stats.poisoned.is_none() { "ok" } else { "err" });
            line("blockkv_sync_policy", &ctx.sync_policy_text());
            line("blockkv_checkpoints", &stats.checkpoints);
            line("blockkv_checkpoint_id", &stats.checkpoint_id);
            line("blockkv_last_lsn", &stats.last_lsn);
            line("blockkv_synced_lsn", &stats.synced_lsn);
        }
        "stats" => {
            let stats = ctx.store.stats();
            line("total_connections_received", &metrics.connections_total.load(Ordering::Relaxed));
            line("total_commands_processed", &metrics.total_calls());
            line("instantaneous_ops_per_sec", &metrics.ops_per_sec());
            line("rejected_connections", &metrics.connections_refused.load(Ordering::Relaxed));
            line("expired_keys", &stats.expired_keys);
            line("evicted_keys", &0);
            line("keyspace_hits", &metrics.keyspace_hits.load(Ordering::Relaxed));
            line("keyspace_misses", &metrics.keyspace_misses.load(Ordering::Relaxed));
            line("pubsub_channels", &0);
            line("pubsub_patterns", &0);
            line("total_error_replies", &metrics.resp_commands().iter().map(|(_, c)| c.failed).sum::<u64>());
        }
        "replication" => {
            line("role", &"master");
            line("connected_slaves", &0);
        }
        "cpu" => {
            let (user, system) = cpu_seconds();
            line("used_cpu_sys", &format_args!("{system:.6}"));
            line("used_cpu_user", &format_args!("{user:.6}"));
        }
        "commandstats" => {
            for (index, command) in metrics.resp_commands() {
                let per_call = command.total_us as f64 / command.calls.max(1) as f64;
                line(
                    &format!("cmdstat_{}", name_at(index)),
                    &format_args!(
                        "calls={},usec={},usec_per_call={per_call:.2},rejected_calls=0,failed_calls={}",
                        command.calls, command.total_us, command.failed
                    ),
                );
            }
        }
        "latencystats" => {
            for (index, command) in metrics.resp_commands() {
                let (p50, p99, p999) = command.percentiles_us;
                line(
                    &format!("latency_percentiles_usec_{}", name_at(index)),
                    &format_args!("p50={p50}.000,p99={p99}.000,p99.9={p999}.000"),
                );
            }
        }
        "cluster" => line("cluster_enabled", &0),
        "keyspace" => {
            let keys = ctx.store.key_count();
            if keys > 0 {
                let stats = ctx.store.stats();
                line("db0", &format_args!("keys={keys},expires={},avg_ttl={}", stats.keys_with_ttl, stats.avg_ttl_ms));
            }
        }
        "blockkv" => {
            let stats = ctx.store.stats();
            line("blockkv_keys", &stats.keys);
            line("blockkv_block_count", &stats.block_count);
            line("blockkv_blocks_free", &stats.blocks_free);
            line("blockkv_live_bytes", &stats.live_bytes);
            line("blockkv_dead_bytes", &stats.dead_bytes);
            line("blockkv_capacity_bytes", &stats.capacity_bytes);
            line("blockkv_compaction_passes", &stats.compaction_passes);
            line("blockkv_blocks_reclaimed", &stats.blocks_reclaimed);
            line("blockkv_write_amplification", &format_args!("{:.2}", stats.write_amplification()));
            line("blockkv_corrupt_reads", &stats.corrupt_reads);
            line("blockkv_recovery", &ctx.store.recovery_report());
        }
        _ => {}
    }
}
