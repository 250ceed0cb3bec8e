//! The readable `kvctl stats` summary: the daemon, a latency table of every
//! command, space, the store's counters and the last recovery report.
//! (`kvctl stats --json` prints every field as the protocol names it.)

use blockkv_protocol::{CommandStats, CompactionStats, RecoveryStats, ServerStats, SpaceStats, StatsReply, StoreStats};
use std::fmt::Write;

/// Column where the values start, after the section name.
const LABEL_WIDTH: usize = 10;

/// The whole summary, lines ending in a newline.
pub fn render(stats: &StatsReply) -> String {
    let mut text = String::new();
    server(&mut text, &stats.server);
    commands(&mut text, &stats.commands);
    space(&mut text, &stats.space);
    store(&mut text, &stats.store);
    compaction(&mut text, &stats.compaction);
    recovery(&mut text, &stats.recovery);
    text
}

/// Appends one line: the label (or blanks) in the first column, then `line`.
fn line(text: &mut String, label: &str, line: &str) {
    let _ = writeln!(text, "{label:<LABEL_WIDTH$}{line}");
}

fn server(text: &mut String, server: &ServerStats) {
    let head =
        format!("kvd {} (protocol {}), up {}", server.version, server.protocol_version, uptime(server.uptime_ms));
    line(text, "server", &head);
    line(text, "", &format!("data {}, sync {}", server.data_path, server.sync_policy));
    line(
        text,
        "",
        &format!(
            "connections {} open, {} total, {} refused; bad frames {}",
            server.connections_open, server.connections_total, server.connections_refused, server.bad_frames
        ),
    );
}

fn commands(text: &mut String, commands: &[CommandStats]) {
    if commands.is_empty() {
        line(text, "commands", "none counted yet");
        return;
    }
    let header =
        format!("{:<12}{:>10}{:>8}{:>10}{:>10}{:>10}{:>10}", "", "calls", "errors", "p50", "p99", "p999", "max");
    line(text, "commands", &header);
    for command in commands {
        let row = format!(
            "{:<12}{:>10}{:>8}{:>10}{:>10}{:>10}{:>10}",
            command.name,
            command.calls,
            command.errors,
            micros(command.p50_us),
            micros(command.p99_us),
            micros(command.p999_us),
            micros(command.max_us)
        );
        line(text, "", &row);
    }
}

fn space(text: &mut String, space: &SpaceStats) {
    let head = format!(
        "{} blocks of {} = {} capacity",
        space.block_count,
        bytes(space.block_bytes),
        bytes(space.capacity_bytes)
    );
    line(text, "space", &head);
    line(
        text,
        "",
        &format!(
            "free {}, pending-free {}, reserved {}; log {}, snapshot {}",
            space.blocks_free,
            space.blocks_pending_free,
            space.blocks_reserved,
            space.blocks_log,
            space.blocks_snapshot
        ),
    );
    line(text, "", &format!("live {}, dead {}", bytes(space.live_bytes), bytes(space.dead_bytes)));
}

fn store(text: &mut String, store: &StoreStats) {
    line(
        text,
        "store",
        &format!("{} keys, index {}, file id {:#x}", store.keys, bytes(store.index_bytes), store.file_id),
    );
    line(
        text,
        "",
        &format!(
            "lsn {} (synced {}), {} syncs, {} checkpoints (last id {}), {} corrupt reads",
            store.last_lsn, store.synced_lsn, store.syncs, store.checkpoints, store.checkpoint_id, store.corrupt_reads
        ),
    );
    let written = format!(
        "written {} by clients, {} to the log",
        bytes(store.user_bytes_written),
        bytes(store.log_bytes_written)
    );
    line(text, "", &written);
    if let Some(reason) = &store.poisoned {
        let poisoned =
            format!("POISONED: {reason} — writes are refused; check the disk and kvd's log, then restart kvd");
        line(text, "", &poisoned);
    }
}

fn compaction(text: &mut String, c: &CompactionStats) {
    let passes = format!(
        "{} passes, {} blocks reclaimed, {} records moved ({}), tombstones {} dropped / {} kept, {} expired dropped",
        c.passes,
        c.blocks_reclaimed,
        c.records_moved,
        bytes(c.bytes_moved),
        c.tombstones_dropped,
        c.tombstones_kept,
        c.expired_dropped
    );
    line(text, "compaction", &passes);
    let amplification = format!(
        "write amplification {:.2} (log + {} of checkpoints, per byte written by clients)",
        c.write_amplification_milli as f64 / 1000.0,
        bytes(c.checkpoint_bytes_written)
    );
    line(text, "", &amplification);
}

fn recovery(text: &mut String, recovery: &RecoveryStats) {
    line(text, "recovery", &recovery.text);
    let start = match recovery.checkpoint_id {
        Some(id) => format!("from checkpoint {id} (lsn {})", recovery.covered_lsn),
        None => "by a full scan".to_string(),
    };
    line(
        text,
        "",
        &format!(
            "mode {}, {start}: {} blocks scanned, {} log blocks and {} records replayed",
            recovery.mode, recovery.blocks_scanned, recovery.log_blocks_replayed, recovery.records_replayed
        ),
    );
    line(
        text,
        "",
        &format!(
            "tail cut {}, {} records discarded, {} damaged, {} keys lost; {} keys, {}",
            if recovery.tail_cut { "yes" } else { "no" },
            recovery.records_discarded,
            recovery.damaged,
            recovery.keys_lost,
            recovery.keys,
            micros(recovery.elapsed_us)
        ),
    );
}

/// Microseconds as "850 us", "1.2 ms" or "3.40 s".
pub fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} us"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// Bytes as "512 B", "4.0 KiB", "64.0 MiB", "1.5 GiB".
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut scaled = count as f64 / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

/// Milliseconds of uptime as "5.2 s", "2m 05s" or "3h 02m 05s".
pub fn uptime(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..60 => format!("{:.1} s", ms as f64 / 1e3),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        // Latencies, sizes and uptimes pick the unit a person reads at a glance.
        assert_eq!(micros(850), "850 us");
        assert_eq!(micros(1_234), "1.2 ms");
        assert_eq!(micros(3_400_000), "3.40 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(uptime(5_200), "5.2 s");
        assert_eq!(uptime(125_000), "2m 05s");
        assert_eq!(uptime(10_925_000), "3h 02m 05s");
    }

    #[test]
    fn summary_shows_every_section() {
        // The summary has counters, a latency row per command, space, store and the recovery report.
        let mut stats = StatsReply::default();
        stats.server.version = "0.1.0".into();
        stats.commands.push(CommandStats {
            name: "get".into(),
            calls: 1200,
            errors: 1,
            p50_us: 12,
            p99_us: 80,
            p999_us: 1_200,
            max_us: 3_400,
        });
        stats.space.capacity_bytes = 64 * 1024 * 1024;
        stats.store.keys = 1000;
        stats.store.poisoned = Some("sync failed: EIO".into());
        stats.recovery.text = "recovered 1000 keys from checkpoint 3".into();
        stats.recovery.checkpoint_id = Some(3);
        let text = render(&stats);
        for expected in [
            "server    kvd 0.1.0",
            "calls",
            "p999",
            "get",
            "1.2 ms",
            "64.0 MiB capacity",
            "1000 keys",
            "POISONED: sync failed: EIO",
            "recovery  recovered 1000 keys from checkpoint 3",
            "from checkpoint 3",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }
}
