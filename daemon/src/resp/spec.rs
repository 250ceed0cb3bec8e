//! The RESP command table: one `static` spec per command kvd runs, found
//! once per command as it is decoded ([`Call::resolve`], by name in any
//! case, without allocating). Everything later — where it runs, whether it
//! is a plain put that shares a write, whether its record is prefetched,
//! its arity, its STATS counter, whether the connection closes after it —
//! reads the spec; no name is compared again.

use super::failure::{Failure, Reply};
use super::{keys, server, strings, unknown};
use crate::context::Context;
use crate::metrics::slot;
use crate::weight::Weight::{self, Heavy, Read, Write};
use blockkv_protocol::resp::{Command, put_array_header, put_integer};
use std::time::Instant;

/// What runs a command: its reply goes to the output.
type Run = fn(&Context, &Command, &mut Vec<u8>) -> Reply;

/// What a command's run may skip or share with its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shortcut {
    None,
    /// `GET key`: its record is fetched together with the turn's other reads.
    Prefetch,
    /// `SET key value` (no options): a plain put, which may share one write
    /// with the puts run beside it.
    SharedPut,
}

/// One RESP command.
struct Spec {
    /// Lower case, as errors and logs name it.
    name: &'static str,
    /// Arguments it takes, the name included; negative: at least that many.
    arity: i32,
    weight: Weight,
    /// The STATS counter it shares with a native command (`metrics::COMMANDS`), if any.
    metric: Option<usize>,
    shortcut: Shortcut,
    /// QUIT: kvd stops reading after it and closes once it is answered.
    closes: bool,
    run: Run,
}

impl Spec {
    const fn new(name: &'static str, arity: i32, weight: Weight, counted_as: Option<&str>, run: Run) -> Spec {
        let metric = match counted_as {
            Some(native) => Some(slot(native)),
            None => None,
        };
        Spec { name, arity, weight, metric, shortcut: Shortcut::None, closes: false, run }
    }

    const fn with(self, shortcut: Shortcut) -> Spec {
        Spec { shortcut, ..self }
    }

    const fn closing(self) -> Spec {
        Spec { closes: true, ..self }
    }

    /// Whether `argc` arguments (the name included) match the arity.
    fn fits(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 { argc == arity } else { argc >= -arity }
    }
}

/// Every command kvd runs; the most frequent first, since lookup walks it.
static SPECS: [Spec; 30] = [
    Spec::new("get", 2, Read, Some("get"), strings::get).with(Shortcut::Prefetch),
    Spec::new("set", -3, Write, Some("put"), strings::set).with(Shortcut::SharedPut),
    Spec::new("setex", 4, Write, Some("put"), strings::setex),
    Spec::new("psetex", 4, Write, Some("put"), strings::psetex),
    Spec::new("setnx", 3, Write, Some("put"), strings::setnx),
    Spec::new("mget", -2, Read, Some("get"), strings::mget),
    Spec::new("mset", -3, Write, Some("batch"), strings::mset),
    Spec::new("incr", 2, Write, Some("put"), strings::incr),
    Spec::new("decr", 2, Write, Some("put"), strings::decr),
    Spec::new("incrby", 3, Write, Some("put"), strings::incrby),
    Spec::new("decrby", 3, Write, Some("put"), strings::decrby),
    Spec::new("del", -2, Write, Some("delete"), strings::del),
    Spec::new("exists", -2, Read, Some("exists"), strings::exists),
    Spec::new("expire", 3, Write, Some("expire"), keys::expire),
    Spec::new("pexpire", 3, Write, Some("expire"), keys::pexpire),
    Spec::new("ttl", 2, Read, Some("ttl"), keys::ttl),
    Spec::new("pttl", 2, Read, Some("ttl"), keys::pttl),
    Spec::new("persist", 2, Write, Some("expire"), keys::persist),
    Spec::new("scan", -2, Heavy, Some("scan"), keys::scan),
    Spec::new("dbsize", 1, Read, None, keys::dbsize),
    Spec::new("ping", -1, Read, Some("ping"), server::ping),
    Spec::new("echo", 2, Read, None, server::echo),
    Spec::new("info", -1, Heavy, Some("stats"), server::info),
    Spec::new("command", -1, Read, None, command),
    Spec::new("config", -2, Read, None, server::config),
    Spec::new("client", -2, Read, None, server::client),
    Spec::new("select", 2, Read, None, server::select),
    Spec::new("auth", -2, Read, None, server::auth),
    Spec::new("time", 1, Read, None, server::time),
    Spec::new("quit", -1, Read, None, server::quit).closing(),
];

/// Any name not in `SPECS`, with any arguments.
static UNKNOWN: Spec = Spec::new("unknown", -1, Heavy, None, unknown::run);

/// The spec named `name`, in any case.
fn lookup(name: &[u8]) -> &'static Spec {
    SPECS.iter().find(|spec| name.eq_ignore_ascii_case(spec.name.as_bytes())).unwrap_or(&UNKNOWN)
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A decoded command and its spec.
#[derive(Debug)]
pub struct Call {
    spec: &'static Spec,
    command: Command,
}

impl Call {
    /// Finds the command's spec: the one lookup of its name. The decoder
    /// yields no empty command.
    pub fn resolve(command: Command) -> Call {
        debug_assert!(!command.is_empty());
        let spec = lookup(command.get(0).unwrap_or_default());
        Call { spec, command }
    }

    pub fn weight(&self) -> Weight {
        self.spec.weight
    }

    /// The connection stops reading after this command (QUIT).
    pub fn closes_connection(&self) -> bool {
        self.spec.closes
    }

    /// The key of a plain `GET key`.
    pub fn read_key(&self) -> Option<&[u8]> {
        match self.spec.shortcut {
            Shortcut::Prefetch if self.command.len() == 2 => self.command.get(1),
            _ => None,
        }
    }

    /// Key and value of a plain `SET key value`.
    pub fn plain_put(&self) -> Option<(&[u8], &[u8])> {
        match self.spec.shortcut {
            Shortcut::SharedPut if self.command.len() == 3 => Some((&self.command[1], &self.command[2])),
            _ => None,
        }
    }

    /// Runs the command, appending its reply (or its error) to `out`, and
    /// counts it.
    pub fn execute(&self, ctx: &Context, out: &mut Vec<u8>) {
        let started = Instant::now();
        let spec = self.spec;
        let result = if spec.fits(self.command.len()) {
            (spec.run)(ctx, &self.command, out)
        } else {
            Err(Failure::arity(spec.name))
        };
        if let Err(failure) = &result {
            failure.put(out);
            tracing::debug!(command = spec.name, "RESP command refused: {}", failure.text());
        }
        if let Some(slot) = spec.metric {
            ctx.metrics.record(slot, started.elapsed().as_micros() as u64, result.is_ok());
        }
    }
}

/// COMMAND, COMMAND DOCS, COMMAND COUNT: kvd publishes no command table
/// (clients fall back to their defaults), only its size.
fn command(_ctx: &Context, args: &Command, out: &mut Vec<u8>) -> Reply {
    match args.get(1).map(|a| a.to_ascii_uppercase()).as_deref() {
        None | Some(b"DOCS") | Some(b"INFO") => put_array_header(out, 0),
        Some(b"COUNT") => put_integer(out, SPECS.len() as i64),
        Some(_) => return Err(Failure::err("unknown subcommand for 'command'")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(words: &[&str]) -> Call {
        Call::resolve(Command::from_args(words.iter().map(|w| w.as_bytes())))
    }

    #[test]
    fn every_command_resolves_in_any_case_to_its_own_spec() {
        // Lower, upper and mixed case find the same static spec; names are lower case and unique.
        for spec in &SPECS {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_eq!(SPECS.iter().filter(|other| other.name == spec.name).count(), 1, "{}", spec.name);
            let mixed: String = spec
                .name
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
                .collect();
            for name in [spec.name.to_string(), spec.name.to_ascii_uppercase(), mixed] {
                assert!(std::ptr::eq(resolve(&[&name]).spec, spec), "{name}");
            }
        }
    }

    #[test]
    fn names_no_spec_has_resolve_to_unknown() {
        // Near misses, other types' commands and the empty name all run as unknown, on a worker.
        for name in ["gett", "ge", "", "lpush", "hget", "unknown"] {
            assert!(UNKNOWN.fits(2) && UNKNOWN.fits(1));
            let call = resolve(&[name, "k"]);
            assert!(std::ptr::eq(call.spec, &UNKNOWN), "{name}");
            assert_eq!(call.weight(), Weight::Heavy);
            assert!(call.read_key().is_none() && call.plain_put().is_none() && !call.closes_connection());
        }
    }

    #[test]
    fn only_plain_get_and_set_take_shortcuts_and_only_quit_closes() {
        // GET key is prefetched and SET key value shares a write; with other argument counts neither.
        assert_eq!(resolve(&["GET", "k"]).read_key(), Some(&b"k"[..]));
        assert_eq!(resolve(&["get", "k", "x"]).read_key(), None);
        assert_eq!(resolve(&["Set", "k", "v"]).plain_put(), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(resolve(&["set", "k", "v", "EX", "5"]).plain_put(), None);
        assert_eq!(resolve(&["mget", "k"]).read_key(), None);
        assert_eq!(resolve(&["setnx", "k", "v"]).plain_put(), None);
        for spec in &SPECS {
            assert_eq!(spec.closes, spec.name == "quit", "{}", spec.name);
        }
    }

    #[test]
    fn arity_is_exact_or_a_minimum() {
        // GET takes exactly two arguments; SET at least three; PING any number from one.
        let get = lookup(b"get");
        assert!(!get.fits(1) && get.fits(2) && !get.fits(3));
        let set = lookup(b"set");
        assert!(!set.fits(2) && set.fits(3) && set.fits(7));
        assert!(lookup(b"ping").fits(1) && lookup(b"ping").fits(5));
    }

    #[test]
    fn the_command_table_is_pinned_row_by_row() {
        // Each command's arity (Redis's convention), where it runs and the STATS counter it
        // shares: an edit to one row that changes any of them fails here, not in production.
        let expected: [(&str, i32, Weight, Option<&str>); 30] = [
            ("get", 2, Read, Some("get")),
            ("set", -3, Write, Some("put")),
            ("setex", 4, Write, Some("put")),
            ("psetex", 4, Write, Some("put")),
            ("setnx", 3, Write, Some("put")),
            ("mget", -2, Read, Some("get")),
            ("mset", -3, Write, Some("batch")),
            ("incr", 2, Write, Some("put")),
            ("decr", 2, Write, Some("put")),
            ("incrby", 3, Write, Some("put")),
            ("decrby", 3, Write, Some("put")),
            ("del", -2, Write, Some("delete")),
            ("exists", -2, Read, Some("exists")),
            ("expire", 3, Write, Some("expire")),
            ("pexpire", 3, Write, Some("expire")),
            ("ttl", 2, Read, Some("ttl")),
            ("pttl", 2, Read, Some("ttl")),
            ("persist", 2, Write, Some("expire")),
            ("scan", -2, Heavy, Some("scan")),
            ("dbsize", 1, Read, None),
            ("ping", -1, Read, Some("ping")),
            ("echo", 2, Read, None),
            ("info", -1, Heavy, Some("stats")),
            ("command", -1, Read, None),
            ("config", -2, Read, None),
            ("client", -2, Read, None),
            ("select", 2, Read, None),
            ("auth", -2, Read, None),
            ("time", 1, Read, None),
            ("quit", -1, Read, None),
        ];
        assert_eq!(SPECS.len(), expected.len());
        for (spec, (name, arity, weight, counter)) in SPECS.iter().zip(expected) {
            assert_eq!((spec.name, spec.arity, spec.weight), (name, arity, weight), "{name}");
            assert_eq!(spec.metric, counter.map(slot), "{name}: counter");
        }
    }
}
