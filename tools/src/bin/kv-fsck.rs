//! kv-fsck: check a blockkv data file offline, and repair it on request.
//!
//! ```text
//! kv-fsck [--json] [--repair] [--force] PATH
//! ```
//! Read-only unless `--repair`. Refuses (exit 8) while kvd holds the file,
//! unless `--force` (read-only, no lock). Exit codes follow e2fsck: 0 clean,
//! 1 errors corrected, 4 errors left uncorrected, 8 operational error.
#![deny(unsafe_code)]

use anyhow::Context;
use blockkv_engine::fsck::{FsckReport, Severity};
use blockkv_engine::storage::{LockMode, OpenFileError};
use blockkv_engine::{FileStorage, Options, RecoveryMode, Store};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const EXIT_CLEAN: u8 = 0;
const EXIT_CORRECTED: u8 = 1;
const EXIT_UNCORRECTED: u8 = 4;
const EXIT_OPERATIONAL: u8 = 8;

/// Check a blockkv data file (and repair it with --repair).
#[derive(Debug, Parser)]
#[command(name = "kv-fsck", version)]
struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Rebuild a valid checkpoint from a scan of every block, move damaged
    /// records aside (PATH.quarantine/) and list the keys that were lost.
    #[arg(long, conflicts_with = "force")]
    repair: bool,
    /// Check a file a running kvd holds (read-only, no lock; the daemon may
    /// be writing while we read, so expect noise).
    #[arg(long)]
    force: bool,
    /// The data file.
    path: PathBuf,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(EXIT_OPERATIONAL);
        }
    };
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if args.json {
                println!(
                    "{}",
                    json!({ "path": args.path.display().to_string(), "exit": EXIT_OPERATIONAL, "error": format!("{err:#}") })
                );
            }
            eprintln!("kv-fsck: {err:#}");
            ExitCode::from(EXIT_OPERATIONAL)
        }
    }
}

/// Opens `path` for checking: read-only, under the exclusive lock unless
/// forced (the lock is how we know kvd is not running).
fn open_for_check(path: &Path, force: bool) -> anyhow::Result<Store> {
    let lock = if force { LockMode::None } else { LockMode::Exclusive };
    let storage = FileStorage::open(path, false, lock).map_err(|err| match err {
        OpenFileError::Locked { pid } => anyhow::anyhow!(
            "{} is in use by {} — stop kvd first, or pass --force for a read-only look",
            path.display(),
            pid.map_or("another process".to_string(), |pid| format!("process {pid} (kvd?)"))
        ),
        OpenFileError::Io(err) => anyhow::Error::new(err).context(format!("cannot open {}", path.display())),
    })?;
    let opts = Options { read_only: true, background: false, ..Options::default() };
    Ok(Store::open_storage(Arc::new(storage), path, opts)?)
}

fn check(path: &Path, force: bool, show_progress: bool) -> anyhow::Result<FsckReport> {
    let store = match open_for_check(path, force) {
        Ok(store) => store,
        Err(err) => match err.downcast_ref::<blockkv_engine::Error>() {
            // Damage recovery will not accept is a finding, not an operational error.
            Some(
                engine_err @ (blockkv_engine::Error::NotBlockkv { .. } | blockkv_engine::Error::RecoveryRefused { .. }),
            ) => {
                let mut report = FsckReport::default();
                report.problems.push(blockkv_engine::fsck::Problem {
                    severity: Severity::Error,
                    block: None,
                    offset: None,
                    what: format!("the store does not open: {engine_err}"),
                    key: None,
                });
                return Ok(report);
            }
            _ => return Err(err),
        },
    };
    let bar = show_progress.then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("checking {bar:40} {pos}/{len} blocks {per_sec}")
                .unwrap_or(ProgressStyle::default_bar()),
        );
        bar
    });
    let report = store.fsck(&|done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(report)
}

fn run(args: &Args) -> anyhow::Result<u8> {
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let report = check(&args.path, args.force, show_progress)?;
    if !args.repair || report.problems.is_empty() {
        let code = if report.errors() == 0 { EXIT_CLEAN } else { EXIT_UNCORRECTED };
        print(args, &report, code, &Repair::default());
        return Ok(code);
    }
    let repair = repair(&args.path, &report)?;
    let after = check(&args.path, false, show_progress)?;
    let code = if after.errors() == 0 { EXIT_CORRECTED } else { EXIT_UNCORRECTED };
    print(args, &after, code, &repair);
    Ok(code)
}

/// What --repair did.
#[derive(Debug, Default)]
struct Repair {
    done: bool,
    quarantined: Vec<PathBuf>,
    keys_lost: Vec<Vec<u8>>,
    found_before: usize,
}

/// Rebuilds the store from a scan of every block (salvage), after copying
/// each damaged region aside so nothing is thrown away unseen.
fn repair(path: &Path, report: &FsckReport) -> anyhow::Result<Repair> {
    let quarantine = quarantine_dir(path);
    let mut quarantined = Vec::new();
    if !report.damaged_at.is_empty() {
        std::fs::create_dir_all(&quarantine).with_context(|| format!("cannot create {}", quarantine.display()))?;
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        for &(block, offset) in &report.damaged_at {
            let start = block as usize * blockkv_engine::format::BLOCK_BYTES + offset as usize;
            let end = (block as usize + 1) * blockkv_engine::format::BLOCK_BYTES;
            let Some(region) = bytes.get(start..end) else { continue };
            let file = quarantine.join(format!("block-{block}-offset-{offset}.bin"));
            std::fs::write(&file, region).with_context(|| format!("cannot write {}", file.display()))?;
            quarantined.push(file);
        }
    }
    let opts = Options { recovery: RecoveryMode::Salvage, background: false, ..Options::default() };
    let store = Store::open(path, opts).context("salvage failed")?;
    let keys_lost = store.recovery_report().keys_lost.clone();
    store.close().context("writing the rebuilt checkpoint failed")?;
    Ok(Repair { done: true, quarantined, keys_lost, found_before: report.problems.len() })
}

fn quarantine_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".quarantine");
    path.with_file_name(name)
}

fn key_text(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

fn print(args: &Args, report: &FsckReport, code: u8, repair: &Repair) {
    let t = &report.totals;
    if args.json {
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|p| {
                json!({
                    "severity": if p.severity == Severity::Error { "error" } else { "warning" },
                    "block": p.block, "offset": p.offset, "what": p.what,
                    "key": p.key.as_deref().map(key_text),
                })
            })
            .collect();
        let out = json!({
            "path": args.path.display().to_string(),
            "exit": code,
            "errors": report.errors(),
            "warnings": report.problems.len() - report.errors(),
            "problems": problems,
            "notes": report.notes,
            "totals": {
                "blocks": t.blocks, "blocks_log": t.blocks_log, "blocks_snapshot": t.blocks_snapshot,
                "blocks_free": t.blocks_free, "blocks_pending_free": t.blocks_pending_free,
                "blocks_reclaimable": t.blocks_reclaimable,
                "records_scanned": t.records_scanned, "live_records": t.live_records, "tombstones": t.tombstones,
                "keys": t.keys, "expired_keys": t.expired_keys, "damaged_records": t.damaged_records,
            },
            "repair": repair.done.then(|| json!({
                "problems_before": repair.found_before,
                "quarantined": repair.quarantined.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "keys_lost": repair.keys_lost.iter().map(|k| key_text(k)).collect::<Vec<_>>(),
            })),
        });
        println!("{out}");
        return;
    }
    println!("kv-fsck {}", args.path.display());
    for p in &report.problems {
        let kind = if p.severity == Severity::Error { "error" } else { "warning" };
        let place = match (p.block, p.offset) {
            (Some(b), Some(o)) => format!("block {b} offset {o}: "),
            (Some(b), None) => format!("block {b}: "),
            _ => String::new(),
        };
        let key = p.key.as_deref().map(|k| format!(" [key {}]", key_text(k))).unwrap_or_default();
        println!("  {kind}: {place}{}{key}", p.what);
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    if repair.done {
        println!(
            "  repaired: {} problems found before; rebuilt the checkpoint from a scan of every block",
            repair.found_before
        );
        for file in &repair.quarantined {
            println!("  quarantined: {}", file.display());
        }
        if repair.keys_lost.is_empty() {
            println!("  keys lost: none");
        }
        for key in &repair.keys_lost {
            println!("  key lost: {}", key_text(key));
        }
    }
    println!(
        "  totals: {} blocks ({} log of which {} reclaimable, {} snapshot, {} free, {} pending-free); {} records scanned, {} live, {} tombstones, {} keys ({} expired), {} damaged",
        t.blocks,
        t.blocks_log,
        t.blocks_reclaimable,
        t.blocks_snapshot,
        t.blocks_free,
        t.blocks_pending_free,
        t.records_scanned,
        t.live_records,
        t.tombstones,
        t.keys,
        t.expired_keys,
        t.damaged_records
    );
    let warnings = report.problems.len() - report.errors();
    let verdict = match code {
        EXIT_CLEAN if report.problems.is_empty() => "clean".to_string(),
        EXIT_CLEAN => format!("clean ({warnings} warnings)"),
        EXIT_CORRECTED => "errors corrected".to_string(),
        _ => format!(
            "{} errors, {warnings} warnings left uncorrected — run kv-fsck --repair (with kvd stopped)",
            report.errors()
        ),
    };
    println!("  result: {verdict} (exit {code})");
}
