//! Commands that describe keys and the server rather than change them:
//! OBJECT, MEMORY USAGE, LATENCY.

use super::failure::{Failure, Reply, integer_arg};
use super::spec::{Cx, name_at, spec_named};
use crate::metrics::LatencyHistogram;
use blockkv_engine::format::RECORD_HEADER_BYTES;
use blockkv_engine::parse_integer;
use blockkv_protocol::resp::Command;

/// Redis keeps a string of at most this many bytes in one allocation with
/// its header ("embstr").
const EMBSTR_BYTES_MAX: usize = 44;
/// Redis shares one object for each integer below this ("int" with the
/// shared refcount).
const SHARED_INTEGERS: i64 = 10_000;
/// An index entry's bytes: what a key costs in memory besides its record.
const INDEX_ENTRY_BYTES: u64 = 16;

fn unknown_subcommand(args: &Command, name: &str) -> Failure {
    Failure::err(format_args!("unknown subcommand '{}'. Try {name} HELP.", String::from_utf8_lossy(&args[1])))
}

fn arity(args: &Command, expected: usize, command: &str) -> Result<(), Failure> {
    if args.len() == expected {
        return Ok(());
    }
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    Err(Failure::err(format_args!("wrong number of arguments for '{command}|{sub}' command")))
}

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key, as Redis answers them for
/// a string. kvd tracks neither access times nor frequencies: IDLETIME and
/// FREQ give the errors Redis gives under a policy that does not track them.
pub(super) fn object(cx: &mut Cx, args: &Command) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    if !matches!(sub.as_slice(), b"ENCODING" | b"REFCOUNT" | b"IDLETIME" | b"FREQ") {
        return Err(unknown_subcommand(args, "OBJECT"));
    }
    arity(args, 3, "object")?;
    let Some(value) = cx.db.get(&args[2])? else {
        cx.out.null();
        return Ok(());
    };
    let integer = (value.len() <= 20).then(|| parse_integer(&value)).flatten();
    match sub.as_slice() {
        b"ENCODING" => {
            let encoding = match integer {
                Some(_) => "int",
                None if value.len() <= EMBSTR_BYTES_MAX => "embstr",
                None => "raw",
            };
            cx.out.bulk(encoding.as_bytes());
        }
        b"REFCOUNT" => {
            let shared = integer.is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
            cx.out.integer(if shared { i64::from(i32::MAX) } else { 1 });
        }
        b"IDLETIME" => {
            return Err(Failure::err(
                "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching \
                 between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
        _ => {
            return Err(Failure::err(
                "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
                 switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ));
        }
    }
    Ok(())
}

/// MEMORY USAGE key [SAMPLES count]: the bytes the key takes in kvd — its
/// record in the data file and its index entry (the values live in the
/// file, not in memory; the figure is comparable in use, not in kind, to
/// Redis's).
pub(super) fn memory(cx: &mut Cx, args: &Command) -> Reply {
    if !args[1].eq_ignore_ascii_case(b"USAGE") {
        return Err(unknown_subcommand(args, "MEMORY"));
    }
    match args.len() {
        3 => {}
        5 if args[3].eq_ignore_ascii_case(b"SAMPLES") => {
            integer_arg(&args[4])?;
        }
        4 | 5 => return Err(Failure::syntax()),
        _ => return Err(Failure::err("wrong number of arguments for 'memory|usage' command")),
    }
    match cx.db.get(&args[2])? {
        Some(value) => {
            let bytes = RECORD_HEADER_BYTES as u64 + args[2].len() as u64 + value.len() as u64 + INDEX_ENTRY_BYTES;
            cx.out.integer(bytes as i64);
        }
        None => cx.out.null(),
    }
    Ok(())
}

/// LATENCY LATEST | HISTORY event | RESET [event ...] | HISTOGRAM [command
/// ...] | DOCTOR. kvd keeps per-command latency histograms (HISTOGRAM
/// reports them as Redis does, cumulative counts at powers of two µs) and
/// no latency-monitor events (LATEST and HISTORY are empty, as with Redis's
/// monitor off).
pub(super) fn latency(cx: &mut Cx, args: &Command) -> Reply {
    match args[1].to_ascii_uppercase().as_slice() {
        b"LATEST" => cx.out.array(0),
        b"HISTORY" => {
            arity(args, 3, "latency")?;
            cx.out.array(0);
        }
        b"RESET" => cx.out.integer(0),
        b"DOCTOR" => cx.out.verbatim(
            "kvd keeps no latency-monitor events; per-command latency is in LATENCY HISTOGRAM and INFO latencystats.\n",
        ),
        b"HISTOGRAM" => {
            let asked: Vec<String> =
                args.iter().skip(2).map(|name| String::from_utf8_lossy(name).to_ascii_lowercase()).collect();
            let histograms: Vec<LatencyHistogram> = cx
                .ctx
                .metrics
                .resp_histograms()
                .into_iter()
                .filter(|(index, ..)| asked.is_empty() || asked.iter().any(|name| spec_named(name) == Some(*index)))
                .collect();
            cx.out.map(histograms.len());
            for (index, calls, buckets) in histograms {
                cx.out.bulk(name_at(index).as_bytes());
                cx.out.map(2);
                cx.out.bulk(b"calls");
                cx.out.integer(calls as i64);
                cx.out.bulk(b"histogram_usec");
                cx.out.map(buckets.len());
                for (bucket_us, cumulative) in buckets {
                    cx.out.integer(bucket_us as i64);
                    cx.out.integer(cumulative as i64);
                }
            }
        }
        _ => return Err(unknown_subcommand(args, "LATENCY")),
    }
    Ok(())
}
