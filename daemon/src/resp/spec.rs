//! The RESP command table: one `static` spec per command kvd runs, found
//! once per command as it is decoded ([`Call::resolve`], by name in any
//! case, without allocating). Everything later — where it runs, whether it
//! is a plain put that shares a write, whether its record is prefetched,
//! its arity, its STATS counter, whether the connection closes after it —
//! reads the spec; no name is compared again.

use super::failure::{Failure, Reply};
use super::keyspace::{Direct, Keyspace, Tx};
use super::reply::Out;
use super::session::{MULTI_BYTES_MAX, MULTI_COMMANDS_MAX, Multi, Replies, Session};
use super::{bits, connection, info, inspect, keys, server, strings, transaction, unknown, walk};
use crate::context::Context;
use crate::metrics::slot;
use crate::slowlog::{SlowEntry, kept_args};
use crate::weight::Weight::{self, Heavy, Read, Write};
use blockkv_protocol::resp::Command;
use std::time::Instant;

/// What a command runs with: the server's context, the connection's
/// session, where its reply goes, and the keyspace it reads and writes
/// (the store, or a transaction's view of it).
pub struct Cx<'a, 'o> {
    pub ctx: &'a Context,
    pub session: &'a mut Session,
    pub out: &'a mut Out<'o>,
    pub db: &'a mut dyn Keyspace,
    /// Run by EXEC, as one of a transaction's commands.
    pub in_exec: bool,
}

/// What runs a command: its reply goes to `cx.out`.
type Run = fn(&mut Cx, &Command) -> Reply;

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

/// How a command is kept apart from other clients' commands.
#[derive(Clone, Copy)]
enum Isolation {
    /// One engine operation, atomic by itself: runs beside any other.
    Shared,
    /// Reads and then writes, or touches several keys: runs alone (the
    /// exclusive side of `Context::isolation`) through a `Tx`, so it sees
    /// one state and its writes land as one atomic batch.
    Alone,
    /// `Alone` when it names more than one key (MGET, MSET, DEL, EXISTS).
    AloneIfSeveral,
    /// `Alone` when its arguments say so (SET … GET, EXPIRE … NX).
    AloneIf(fn(&Command) -> bool),
    /// Runs alone and makes its own `Tx` (EXEC).
    AloneOwnTx,
}

/// One RESP command.
pub(super) struct Spec {
    /// Lower case, as errors and logs name it.
    pub(super) name: &'static str,
    /// Arguments it takes, the name included; negative: at least that many.
    pub(super) arity: i32,
    weight: Weight,
    /// The STATS counter it shares with a native command (`metrics::COMMANDS`), if any.
    metric: Option<usize>,
    shortcut: Shortcut,
    isolation: Isolation,
    /// Inside MULTI it runs at once instead of being queued (EXEC, DISCARD,
    /// MULTI, WATCH, QUIT, RESET, as in Redis).
    immediate: bool,
    /// QUIT: kvd stops reading after it and closes once it is answered.
    closes: bool,
    /// Heavy (run on a worker) when its arguments ask for much work.
    heavy_if: Option<fn(&Command) -> bool>,
    /// Not streamed to MONITOR (MONITOR itself, and AUTH and HELLO, which may carry a password).
    unmonitored: bool,
    run: Run,
}

impl Spec {
    const fn new(name: &'static str, arity: i32, weight: Weight, counted_as: Option<&str>, run: Run) -> Spec {
        let metric = match counted_as {
            Some(native) => Some(slot(native)),
            None => None,
        };
        Spec {
            name,
            arity,
            weight,
            metric,
            shortcut: Shortcut::None,
            isolation: Isolation::Shared,
            immediate: false,
            closes: false,
            unmonitored: false,
            heavy_if: None,
            run,
        }
    }

    const fn with(self, shortcut: Shortcut) -> Spec {
        Spec { shortcut, ..self }
    }

    const fn isolated(self, isolation: Isolation) -> Spec {
        Spec { isolation, ..self }
    }

    const fn immediate(self) -> Spec {
        Spec { immediate: true, ..self }
    }

    const fn heavy_if(self, heavy: fn(&Command) -> bool) -> Spec {
        Spec { heavy_if: Some(heavy), ..self }
    }

    const fn unmonitored(self) -> Spec {
        Spec { unmonitored: true, ..self }
    }

    const fn closing(self) -> Spec {
        Spec { closes: true, immediate: true, ..self }
    }

    pub(super) fn weight(&self) -> Weight {
        self.weight
    }

    /// Whether it may change keys (COMMAND INFO's `write` flag).
    pub(super) fn writes(&self) -> bool {
        self.weight == Write || self.name.starts_with("flush")
    }

    /// Whether `argc` arguments (the name included) match the arity.
    fn fits(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 { argc == arity } else { argc >= -arity }
    }

    /// Whether `args` runs alone, through a `Tx`.
    fn alone(&self, args: &Command) -> bool {
        match self.isolation {
            Isolation::Shared => false,
            Isolation::Alone | Isolation::AloneOwnTx => true,
            Isolation::AloneIfSeveral => args.len() > 2,
            Isolation::AloneIf(decide) => decide(args),
        }
    }
}

use Isolation::{Alone, AloneIf, AloneIfSeveral, AloneOwnTx};

/// Every command kvd runs; the most frequent first, since lookup walks it.
pub(super) static SPECS: [Spec; 69] = [
    Spec::new("get", 2, Read, Some("get"), strings::get).with(Shortcut::Prefetch),
    Spec::new("set", -3, Write, Some("put"), strings::set)
        .with(Shortcut::SharedPut)
        .isolated(AloneIf(strings::set_reads)),
    Spec::new("setex", 4, Write, Some("put"), strings::setex),
    Spec::new("psetex", 4, Write, Some("put"), strings::psetex),
    Spec::new("setnx", 3, Write, Some("put"), strings::setnx),
    Spec::new("mget", -2, Read, Some("get"), strings::mget).isolated(AloneIfSeveral),
    Spec::new("mset", -3, Write, Some("batch"), strings::mset).isolated(AloneIf(strings::mset_several)),
    Spec::new("incr", 2, Write, Some("put"), strings::incr),
    Spec::new("decr", 2, Write, Some("put"), strings::decr),
    Spec::new("incrby", 3, Write, Some("put"), strings::incrby),
    Spec::new("decrby", 3, Write, Some("put"), strings::decrby),
    Spec::new("del", -2, Write, Some("delete"), strings::del).isolated(AloneIfSeveral),
    Spec::new("exists", -2, Read, Some("exists"), strings::exists).isolated(AloneIfSeveral),
    Spec::new("expire", -3, Write, Some("expire"), keys::expire).isolated(AloneIf(keys::expire_conditional)),
    Spec::new("pexpire", -3, Write, Some("expire"), keys::pexpire).isolated(AloneIf(keys::expire_conditional)),
    Spec::new("ttl", 2, Read, Some("ttl"), keys::ttl),
    Spec::new("pttl", 2, Read, Some("ttl"), keys::pttl),
    Spec::new("persist", 2, Write, Some("expire"), keys::persist).isolated(Alone),
    Spec::new("expireat", -3, Write, Some("expire"), keys::expireat).isolated(AloneIf(keys::expire_conditional)),
    Spec::new("pexpireat", -3, Write, Some("expire"), keys::pexpireat).isolated(AloneIf(keys::expire_conditional)),
    Spec::new("expiretime", 2, Read, Some("ttl"), keys::expiretime),
    Spec::new("pexpiretime", 2, Read, Some("ttl"), keys::pexpiretime),
    Spec::new("getset", 3, Write, Some("put"), strings::getset).isolated(Alone),
    Spec::new("getdel", 2, Write, Some("delete"), strings::getdel).isolated(Alone),
    Spec::new("getex", -2, Write, Some("get"), strings::getex).isolated(Alone),
    Spec::new("msetnx", -3, Write, Some("batch"), strings::msetnx).isolated(Alone),
    Spec::new("incrbyfloat", 3, Write, Some("put"), strings::incrbyfloat).isolated(Alone),
    Spec::new("append", 3, Write, Some("put"), strings::append).isolated(Alone),
    Spec::new("strlen", 2, Read, Some("get"), strings::strlen),
    Spec::new("getrange", 4, Read, Some("get"), strings::getrange),
    Spec::new("substr", 4, Read, Some("get"), strings::getrange),
    Spec::new("setrange", 4, Write, Some("put"), strings::setrange).isolated(Alone),
    Spec::new("setbit", 4, Write, Some("put"), bits::setbit).isolated(Alone),
    Spec::new("getbit", 3, Read, Some("get"), bits::getbit),
    Spec::new("bitcount", -2, Read, Some("get"), bits::bitcount),
    Spec::new("unlink", -2, Write, Some("delete"), strings::del).isolated(AloneIfSeveral),
    Spec::new("touch", -2, Read, Some("exists"), strings::exists).isolated(AloneIfSeveral),
    Spec::new("type", 2, Read, Some("exists"), keys::type_of),
    Spec::new("rename", 3, Write, Some("batch"), keys::rename).isolated(Alone),
    Spec::new("renamenx", 3, Write, Some("batch"), keys::renamenx).isolated(Alone),
    Spec::new("copy", -3, Write, Some("put"), keys::copy).isolated(Alone),
    Spec::new("scan", -2, Read, Some("scan"), walk::scan).heavy_if(walk::scan_is_large),
    Spec::new("keys", 2, Heavy, Some("scan"), walk::keys),
    Spec::new("randomkey", 1, Heavy, Some("scan"), walk::randomkey),
    Spec::new("flushdb", -1, Heavy, None, walk::flush).isolated(Alone),
    Spec::new("flushall", -1, Heavy, None, walk::flush).isolated(Alone),
    Spec::new("dbsize", 1, Read, None, keys::dbsize),
    Spec::new("ping", -1, Read, Some("ping"), connection::ping),
    Spec::new("echo", 2, Read, None, connection::echo),
    Spec::new("info", -1, Heavy, Some("stats"), info::info),
    Spec::new("command", -1, Read, None, server::command),
    Spec::new("config", -2, Read, None, server::config),
    Spec::new("client", -2, Read, None, connection::client),
    Spec::new("hello", -1, Read, None, connection::hello).unmonitored(),
    Spec::new("select", 2, Read, None, connection::select),
    Spec::new("auth", -2, Read, None, connection::auth).unmonitored(),
    Spec::new("time", 1, Read, None, server::time),
    Spec::new("multi", 1, Read, None, transaction::multi).immediate(),
    Spec::new("exec", 1, Heavy, None, transaction::exec).immediate().isolated(AloneOwnTx),
    Spec::new("discard", 1, Read, None, transaction::discard).immediate(),
    Spec::new("watch", -2, Read, None, transaction::watch).immediate(),
    Spec::new("unwatch", 1, Read, None, transaction::unwatch),
    Spec::new("reset", 1, Read, None, connection::reset).immediate(),
    Spec::new("quit", -1, Read, None, connection::quit).closing(),
    Spec::new("monitor", 1, Read, None, server::monitor).unmonitored(),
    Spec::new("slowlog", -2, Read, None, server::slowlog),
    Spec::new("object", -2, Read, None, inspect::object),
    Spec::new("memory", -2, Read, None, inspect::memory),
    Spec::new("latency", -2, Read, None, inspect::latency),
];

/// Any name not in `SPECS`, with any arguments.
pub(super) static UNKNOWN: Spec = Spec::new("unknown", -1, Heavy, None, unknown::run);

/// A command the decoder read past because it was over a size limit; its
/// one argument is the error to answer.
static REFUSED: Spec = Spec::new("refused", 1, Read, None, unknown::refused).unmonitored();

/// Where `spec` is in `SPECS` (`SPECS.len()` for UNKNOWN): what CLIENT
/// LIST's `cmd=` is kept as.
fn spec_index(spec: &'static Spec) -> usize {
    let offset = (spec as *const Spec as usize).wrapping_sub(SPECS.as_ptr() as usize) / std::mem::size_of::<Spec>();
    if offset < SPECS.len() {
        offset
    } else if std::ptr::eq(spec, &UNKNOWN) {
        SPECS.len()
    } else {
        usize::MAX
    }
}

/// The native STATS kind each RESP command is counted as, by `spec_index`
/// (UNKNOWN last): what `Metrics::new` takes.
pub fn counted_as() -> Vec<Option<usize>> {
    SPECS.iter().chain(std::iter::once(&UNKNOWN)).map(|spec| spec.metric).collect()
}

/// The `spec_index` of SET, for the puts that share a write.
pub fn set_index() -> usize {
    spec_index(lookup(b"set"))
}

/// The `spec_index` of the command named `name` (lower case).
pub(super) fn spec_named(name: &str) -> Option<usize> {
    SPECS.iter().position(|spec| spec.name == name)
}

/// The name of the command at `index` (from `spec_index`).
pub fn name_at(index: usize) -> &'static str {
    SPECS.get(index).map_or("NULL", |spec| spec.name)
}

/// The spec named `name`, in any case.
pub(super) fn lookup(name: &[u8]) -> &'static Spec {
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

    /// A command over a size limit, answered with `message` (code first).
    pub fn refused(message: &str) -> Call {
        Call { spec: &REFUSED, command: Command::from_args([message.as_bytes()]) }
    }

    /// Where it runs. A command that runs alone goes to a worker: taking
    /// the exclusive side of the isolation lock on the event loop would stall
    /// every connection behind a worker's long KEYS or INFO.
    pub fn weight(&self) -> Weight {
        match self.spec.heavy_if {
            Some(heavy) if heavy(&self.command) => Heavy,
            _ if self.spec.fits(self.command.len()) && self.spec.alone(&self.command) => Heavy,
            _ => self.spec.weight,
        }
    }

    /// Bytes of all its arguments.
    fn arg_bytes(&self) -> usize {
        self.command.iter().map(<[u8]>::len).sum()
    }

    /// The byte length of the command's name (what the fuzz target splits sessions by).
    pub fn first_arg_len(&self) -> usize {
        self.command.get(0).map_or(0, <[u8]>::len)
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

    /// A plain `SET key value`.
    pub fn is_plain_put(&self) -> bool {
        self.spec.shortcut == Shortcut::SharedPut && self.command.len() == 3
    }

    /// Key and value of a plain `SET key value`, unless the session is
    /// queuing a transaction (the put then waits for EXEC).
    pub fn plain_put(&self, session: &Session) -> Option<(&[u8], &[u8])> {
        // Shared puts answer +OK each: not for a session whose replies are off or skipped.
        (self.is_plain_put() && session.multi.is_none() && session.replies == Replies::On)
            .then(|| (&self.command[1], &self.command[2]))
    }

    /// Runs the command — or, inside MULTI, queues it — appending its reply
    /// (or its error) to `buf`, and counts it.
    pub fn execute(self, ctx: &Context, session: &mut Session, buf: &mut Vec<u8>) {
        let mark = buf.len();
        // CLIENT REPLY SKIP, armed by the command before: this reply is dropped.
        let skipped = session.replies == Replies::Skip;
        if skipped {
            session.replies = Replies::On;
        }
        let mut out = Out::new(buf, session.resp3);
        // Inside MULTI a wrong arity dooms the transaction even for the
        // commands that run at once (EXEC, WATCH …), as in Redis.
        if session.multi.is_some() && (!self.spec.immediate || !self.spec.fits(self.command.len())) {
            queue(session, self, &mut out);
        } else {
            self.run(ctx, session, &mut out);
        }
        // CLIENT REPLY OFF / SKIP: the command ran; its reply is dropped.
        let dropped = match session.reply_now.take() {
            Some(send) => !send,
            None => skipped || session.replies == Replies::Off,
        };
        if dropped {
            buf.truncate(mark);
        }
    }

    fn run(&self, ctx: &Context, session: &mut Session, out: &mut Out) {
        let started = Instant::now();
        let spec = self.spec;
        session.client.ran(spec_index(spec));
        if ctx.monitors.any() && !spec.unmonitored && spec.fits(self.command.len()) {
            ctx.monitors.publish(&ctx.socket_path, self.command.iter());
        }
        let result = if !spec.fits(self.command.len()) {
            Err(Failure::arity(spec.name))
        } else if spec.alone(&self.command) {
            let _alone = ctx.isolation.write();
            if matches!(spec.isolation, AloneOwnTx) {
                let mut db = Direct { store: &ctx.store, watches: &ctx.watches };
                (spec.run)(&mut Cx { ctx, session, out, db: &mut db, in_exec: false }, &self.command)
            } else {
                run_in_tx(self, ctx, session, out)
            }
        } else {
            let _shared = ctx.isolation.read();
            let mut db = Direct { store: &ctx.store, watches: &ctx.watches };
            (spec.run)(&mut Cx { ctx, session, out, db: &mut db, in_exec: false }, &self.command)
        };
        if let Err(failure) = &result {
            failure.put(out);
            tracing::debug!(command = spec.name, "RESP command refused: {}", failure.text());
        }
        let elapsed_us = started.elapsed().as_micros() as u64;
        ctx.metrics.record_resp(spec_index(spec), elapsed_us, result.is_ok());
        let threshold = ctx.settings.slowlog_slower_than_us();
        if threshold >= 0 && elapsed_us >= threshold as u64 {
            self.log_slow(ctx, session, elapsed_us);
        }
    }

    fn log_slow(&self, ctx: &Context, session: &Session, duration_us: u64) {
        let unix_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let entry = SlowEntry {
            id: 0,
            unix_s,
            duration_us,
            args: kept_args(&self.command.iter().collect::<Vec<_>>()),
            client_addr: format!("{}:0", ctx.socket_path),
            client_name: session.client.name(),
        };
        ctx.slowlog.push(entry, ctx.settings.slowlog_len());
    }

    /// Runs a queued command inside EXEC, against the transaction's view.
    pub(super) fn run_queued(&self, cx: &mut Cx) {
        let result = (self.spec.run)(cx, &self.command);
        if let Err(failure) = result {
            failure.put(cx.out);
        }
    }
}

/// One command alone through its own `Tx`: its writes land together or,
/// if the batch is refused, its reply is the refusal and nothing is applied.
fn run_in_tx(call: &Call, ctx: &Context, session: &mut Session, out: &mut Out) -> Reply {
    let mark = out.len();
    let mut tx = Tx::new(&ctx.store);
    (call.spec.run)(&mut Cx { ctx, session, out, db: &mut tx, in_exec: false }, &call.command)?;
    if let Err(err) = tx.commit(&ctx.watches) {
        out.truncate(mark);
        return Err(err.into());
    }
    Ok(())
}

/// Inside MULTI: a command that could not run (unknown, wrong arity) is
/// refused now and dooms the transaction; any other answers QUEUED.
fn queue(session: &mut Session, call: Call, out: &mut Out) {
    let Some(multi) = session.multi.as_mut() else { return };
    let refusal = if std::ptr::eq(call.spec, &REFUSED) {
        Some(Failure::coded(String::from_utf8_lossy(&call.command[0]).into_owned()))
    } else if std::ptr::eq(call.spec, &UNKNOWN) {
        unknown::queue_refusal(&call.command)
    } else if !call.spec.fits(call.command.len()) {
        Some(Failure::arity(call.spec.name))
    } else if multi.queued.len() >= MULTI_COMMANDS_MAX {
        Some(Failure::err(format_args!("a transaction holds at most {MULTI_COMMANDS_MAX} commands")))
    } else if multi.queued_bytes + call.arg_bytes() > MULTI_BYTES_MAX {
        Some(Failure::err(format_args!("a transaction holds at most {MULTI_BYTES_MAX} bytes of arguments")))
    } else {
        None
    };
    match refusal {
        Some(failure) => {
            multi.aborted = true;
            failure.put(out);
        }
        None => {
            multi.queued_bytes += call.arg_bytes();
            multi.queued.push(call);
            out.simple("QUEUED");
        }
    }
    let queued = multi.queued.len();
    session.client.set_multi(Some(queued));
}

impl Multi {
    pub(super) fn take(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.queued)
    }
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
            assert!(call.read_key().is_none() && !call.is_plain_put() && !call.closes_connection());
        }
    }

    #[test]
    fn only_plain_get_and_set_take_shortcuts_and_only_quit_closes() {
        // GET key is prefetched and SET key value shares a write; with other argument counts neither.
        assert_eq!(resolve(&["GET", "k"]).read_key(), Some(&b"k"[..]));
        assert_eq!(resolve(&["get", "k", "x"]).read_key(), None);
        let mut session = Session::new(crate::clients::Clients::default().register("test".into()));
        assert_eq!(resolve(&["Set", "k", "v"]).plain_put(&session), Some((&b"k"[..], &b"v"[..])));
        assert_eq!(resolve(&["set", "k", "v", "EX", "5"]).plain_put(&session), None);
        // Inside MULTI a plain SET is queued, never shared with other puts.
        session.multi = Some(Multi::default());
        assert_eq!(resolve(&["set", "k", "v"]).plain_put(&session), None);
        assert_eq!(resolve(&["mget", "k"]).read_key(), None);
        assert!(!resolve(&["setnx", "k", "v"]).is_plain_put());
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
        let expected: [(&str, i32, Weight, Option<&str>); 69] = [
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
            ("expire", -3, Write, Some("expire")),
            ("pexpire", -3, Write, Some("expire")),
            ("ttl", 2, Read, Some("ttl")),
            ("pttl", 2, Read, Some("ttl")),
            ("persist", 2, Write, Some("expire")),
            ("expireat", -3, Write, Some("expire")),
            ("pexpireat", -3, Write, Some("expire")),
            ("expiretime", 2, Read, Some("ttl")),
            ("pexpiretime", 2, Read, Some("ttl")),
            ("getset", 3, Write, Some("put")),
            ("getdel", 2, Write, Some("delete")),
            ("getex", -2, Write, Some("get")),
            ("msetnx", -3, Write, Some("batch")),
            ("incrbyfloat", 3, Write, Some("put")),
            ("append", 3, Write, Some("put")),
            ("strlen", 2, Read, Some("get")),
            ("getrange", 4, Read, Some("get")),
            ("substr", 4, Read, Some("get")),
            ("setrange", 4, Write, Some("put")),
            ("setbit", 4, Write, Some("put")),
            ("getbit", 3, Read, Some("get")),
            ("bitcount", -2, Read, Some("get")),
            ("unlink", -2, Write, Some("delete")),
            ("touch", -2, Read, Some("exists")),
            ("type", 2, Read, Some("exists")),
            ("rename", 3, Write, Some("batch")),
            ("renamenx", 3, Write, Some("batch")),
            ("copy", -3, Write, Some("put")),
            ("scan", -2, Read, Some("scan")),
            ("keys", 2, Heavy, Some("scan")),
            ("randomkey", 1, Heavy, Some("scan")),
            ("flushdb", -1, Heavy, None),
            ("flushall", -1, Heavy, None),
            ("dbsize", 1, Read, None),
            ("ping", -1, Read, Some("ping")),
            ("echo", 2, Read, None),
            ("info", -1, Heavy, Some("stats")),
            ("command", -1, Read, None),
            ("config", -2, Read, None),
            ("client", -2, Read, None),
            ("hello", -1, Read, None),
            ("select", 2, Read, None),
            ("auth", -2, Read, None),
            ("time", 1, Read, None),
            ("multi", 1, Read, None),
            ("exec", 1, Heavy, None),
            ("discard", 1, Read, None),
            ("watch", -2, Read, None),
            ("unwatch", 1, Read, None),
            ("reset", 1, Read, None),
            ("quit", -1, Read, None),
            ("monitor", 1, Read, None),
            ("slowlog", -2, Read, None),
            ("object", -2, Read, None),
            ("memory", -2, Read, None),
            ("latency", -2, Read, None),
        ];
        assert_eq!(SPECS.len(), expected.len());
        for (spec, (name, arity, weight, counter)) in SPECS.iter().zip(expected) {
            assert_eq!((spec.name, spec.arity, spec.weight), (name, arity, weight), "{name}");
            assert_eq!(spec.metric, counter.map(slot), "{name}: counter");
        }
    }
}
