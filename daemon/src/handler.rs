//! One request in, one response out: the engine call behind each command,
//! its metrics, and the mapping of engine errors to wire error kinds.

use crate::context::Context;
use crate::metrics::COMMANDS;
use blockkv_engine::format::BLOCK_BYTES;
use blockkv_engine::limits::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use blockkv_engine::{BatchOp as EngineOp, Error, KeyTtl, Store};
use blockkv_protocol::codec::{KEYS_RESPONSE_BASE_BYTES, put_request_bytes, scan_item_bytes};
use blockkv_protocol::stats::{CompactionStats, RecoveryStats, ServerStats, SpaceStats, StatsReply, StoreStats};
use blockkv_protocol::{BatchOp, ErrorKind, FRAME_BYTES_MAX, PROTOCOL_VERSION, Request, Response, ScanItem, TtlReply};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most keys one SCAN answers; the client pages with `start_after`.
pub const SCAN_KEYS_MAX: u32 = 100_000;

// The largest put the engine accepts must fit one frame.
const _: () = assert!(put_request_bytes(KEY_BYTES_MAX, VALUE_BYTES_MAX) <= FRAME_BYTES_MAX);

/// Runs one request.
pub fn handle(ctx: &Context, request: Request) -> Response {
    let started = Instant::now();
    let index = request.kind_index();
    let response = {
        // Beside other commands, never between a RESP transaction's reads and
        // writes. Only requests that touch keys take it: a checkpoint or a
        // compaction must not hold up a transaction that waits to run alone.
        let _shared = touches_keys(&request).then(|| ctx.isolation.read());
        let touched = written_keys(&request);
        let response = run(ctx, request).unwrap_or_else(|err| error_response(&err));
        touched.iter().for_each(|key| ctx.watches.touch(key));
        response
    };
    let ok = !matches!(response, Response::Error { .. });
    ctx.metrics.record(index, started.elapsed().as_micros() as u64, ok);
    if !ok {
        tracing::debug!(command = COMMANDS[index], "request refused: {response:?}");
    }
    response
}

/// Whether a native request reads or writes keys.
fn touches_keys(request: &Request) -> bool {
    !matches!(request, Request::Ping | Request::Stats | Request::Checkpoint | Request::Compact)
}

/// The keys a native request may change, for RESP WATCH (a spurious touch
/// only costs a watcher a retry; a missed one would lose an update).
fn written_keys(request: &Request) -> Vec<Vec<u8>> {
    match request {
        Request::Put { key, .. } | Request::Delete { key } | Request::Expire { key, .. } => vec![key.clone()],
        Request::Batch(ops) => ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => key.clone(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn ttl(ttl_ms: Option<u64>) -> Option<Duration> {
    ttl_ms.map(Duration::from_millis)
}

fn run(ctx: &Context, request: Request) -> Result<Response, Error> {
    let store = &ctx.store;
    Ok(match request {
        Request::Ping => Response::Pong,
        Request::Get { key } => Response::Value(store.get(&key)?),
        Request::Put { key, value, ttl_ms } => {
            store.put_with_ttl(&key, &value, ttl(ttl_ms))?;
            Response::Done
        }
        Request::Delete { key } => Response::Deleted(store.delete(&key)?),
        Request::Exists { key } => Response::Exists(store.exists(&key)?),
        Request::Scan { prefix, start_after, limit, values } => {
            scan(store, &prefix, start_after.as_deref(), limit, values)?
        }
        Request::Ttl { key } => Response::Ttl(match store.ttl(&key)? {
            KeyTtl::Missing => TtlReply::Missing,
            KeyTtl::Persistent => TtlReply::Persistent,
            KeyTtl::ExpiresInMs(ms) => TtlReply::ExpiresInMs(ms),
        }),
        Request::Expire { key, ttl_ms } => Response::TtlSet(store.expire(&key, ttl(ttl_ms))?),
        Request::Batch(ops) => {
            let ops: Vec<EngineOp> = ops
                .into_iter()
                .map(|op| match op {
                    BatchOp::Put { key, value, ttl_ms } => EngineOp::Put { key, value, ttl: ttl(ttl_ms) },
                    BatchOp::Delete { key } => EngineOp::Delete { key },
                })
                .collect();
            store.write_batch(&ops)?;
            Response::Done
        }
        Request::Stats => Response::Stats(Box::new(stats(ctx))),
        Request::Checkpoint => {
            let info = store.checkpoint()?;
            Response::Checkpointed {
                id: info.id,
                covered_lsn: info.covered_lsn,
                keys: info.entries,
                snapshot_blocks: info.snapshot_blocks,
                elapsed_us: info.elapsed.as_micros() as u64,
            }
        }
        Request::Compact => {
            let started = Instant::now();
            let outcome = store.compact()?;
            tracing::info!(
                reclaimed = outcome.blocks_reclaimed,
                moved = outcome.records_moved,
                bytes = outcome.bytes_moved,
                ms = started.elapsed().as_millis() as u64,
                "compaction on demand"
            );
            Response::Done
        }
    })
}

/// Keys (and values) in order, stopping early (`more`) at the limit or when
/// the answer would not fit one frame. A key deleted between the scan and
/// its read is skipped.
fn scan(store: &Store, prefix: &[u8], start_after: Option<&[u8]>, limit: u32, values: bool) -> Result<Response, Error> {
    let limit = limit.clamp(1, SCAN_KEYS_MAX) as usize;
    let keys = store.scan(prefix, start_after, limit + 1)?;
    let mut more = keys.len() > limit;
    let mut bytes = KEYS_RESPONSE_BASE_BYTES;
    let mut items = Vec::with_capacity(keys.len().min(limit));
    for key in keys.into_iter().take(limit) {
        let value = if values {
            match store.get(&key)? {
                Some(value) => Some(value),
                None => continue,
            }
        } else {
            None
        };
        let item_bytes = scan_item_bytes(key.len(), value.as_ref().map(Vec::len));
        if bytes + item_bytes > FRAME_BYTES_MAX {
            more = true;
            break;
        }
        bytes += item_bytes;
        items.push(ScanItem { key, value });
    }
    Ok(Response::Keys { items, more })
}

fn stats(ctx: &Context) -> StatsReply {
    let stats = ctx.store.stats();
    let report = ctx.store.recovery_report();
    let metrics = &ctx.metrics;
    StatsReply {
        server: ServerStats {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_version: PROTOCOL_VERSION,
            uptime_ms: metrics.started.elapsed().as_millis() as u64,
            data_path: ctx.data_path.to_string(),
            sync_policy: ctx.sync_policy_text(),
            connections_open: metrics.connections_open.load(Ordering::Relaxed),
            connections_total: metrics.connections_total.load(Ordering::Relaxed),
            connections_refused: metrics.connections_refused.load(Ordering::Relaxed),
            bad_frames: metrics.bad_frames.load(Ordering::Relaxed),
        },
        commands: metrics.commands(),
        space: SpaceStats {
            block_bytes: BLOCK_BYTES as u64,
            block_count: stats.block_count,
            blocks_free: stats.blocks_free,
            blocks_pending_free: stats.blocks_pending_free,
            blocks_log: stats.blocks_log,
            blocks_snapshot: stats.blocks_snapshot,
            blocks_reserved: stats.blocks_reserved,
            live_bytes: stats.live_bytes,
            dead_bytes: stats.dead_bytes,
            capacity_bytes: stats.capacity_bytes,
        },
        store: StoreStats {
            file_id: stats.file_id,
            created_ms: stats.created_ms,
            keys: stats.keys,
            index_bytes: stats.index_heap_bytes,
            last_lsn: stats.last_lsn,
            synced_lsn: stats.synced_lsn,
            syncs: stats.syncs,
            checkpoints: stats.checkpoints,
            checkpoint_id: stats.checkpoint_id,
            corrupt_reads: stats.corrupt_reads,
            user_bytes_written: stats.user_bytes_written,
            log_bytes_written: stats.log_bytes_written,
            poisoned: stats.poisoned.clone(),
        },
        compaction: CompactionStats {
            passes: stats.compaction_passes,
            blocks_reclaimed: stats.blocks_reclaimed,
            records_moved: stats.records_moved,
            bytes_moved: stats.bytes_moved,
            tombstones_dropped: stats.tombstones_dropped,
            tombstones_kept: stats.tombstones_kept,
            expired_dropped: stats.expired_dropped,
            checkpoint_bytes_written: stats.checkpoint_bytes_written,
            write_amplification_milli: (stats.write_amplification() * 1000.0).round() as u64,
        },
        recovery: RecoveryStats {
            text: report.to_string(),
            mode: report.mode.to_string(),
            checkpoint_id: report.checkpoint_id,
            covered_lsn: report.covered_lsn,
            blocks_scanned: report.blocks_scanned,
            log_blocks_replayed: report.log_blocks_replayed,
            records_replayed: report.records_replayed,
            tail_cut: report.tail_cut.is_some(),
            records_discarded: report.tail_cut.as_ref().map_or(0, |c| c.records_discarded),
            damaged: report.damaged.len() as u64,
            keys_lost: report.keys_lost.len() as u64,
            keys: report.keys,
            elapsed_us: report.elapsed.as_micros() as u64,
        },
    }
}

/// The wire form of an engine error.
pub fn error_response(err: &Error) -> Response {
    let kind = match err {
        Error::TooLarge { .. } => ErrorKind::TooLarge,
        Error::NoSpace { .. } => ErrorKind::NoSpace,
        Error::Poisoned { .. } => ErrorKind::Poisoned,
        Error::ReadOnly => ErrorKind::ReadOnly,
        Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
        Error::Corrupt { .. } => ErrorKind::Corrupt,
        Error::Io { .. } => ErrorKind::Io,
        _ => ErrorKind::Internal,
    };
    Response::error(kind, err.to_string())
}
