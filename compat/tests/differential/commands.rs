//! The differential test's table: the pools arguments are drawn from, and
//! one entry per command (or per option kvd may lack) with its generator and
//! its probe.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// The keys every command draws from; small, so that commands collide.
pub const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

/// Values: integers (in range, at the edges, past them), floats, empty, binary, text.
pub const VALUES: [&[u8]; 14] = [
    b"0",
    b"1",
    b"-7",
    b"42",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"1.5",
    b"-0.25",
    b"3e2",
    b"",
    b"\x00\xff\r\n",
    b"hello",
    b"  12",
    b"99999999999999999999",
];

/// Integer arguments, with bad ones on purpose.
pub const INTEGERS: [&str; 10] = ["0", "1", "-1", "5", "100", "-100", "9223372036854775807", "abc", "1.5", ""];

/// Increments for INCRBYFLOAT.
pub const FLOATS: [&str; 8] = ["1", "0.5", "-2.25", "1e3", "abc", "inf", "3.0e-2", "-0"];

/// Patterns for KEYS and SCAN MATCH: literal, prefix, glob, classes, escapes.
pub const PATTERNS: [&str; 9] = ["*", "k*", "k?", "k[0-3]", "k[^0]", "*1", "k\\1", "nope*", "[k]5"];

/// Relative TTLs in seconds: past and zero (the key goes at once), long,
/// past Redis's range, bad.
pub const TTLS: [&str; 8] =
    ["-5", "0", "1000", "100000", "3153600000", "9223372036854775807", "x", "-9223372036854775808"];

/// How one command's arguments are drawn.
pub type Generate = fn(&mut Gen) -> Vec<Vec<u8>>;

/// One entry of the table: a command (or a command with an option that kvd
/// may lack, gated on its own), its argument generator, how often it is
/// drawn, and the probe that tells whether kvd serves it.
pub struct Entry {
    /// A name for the output: the command, or the command and the option.
    pub name: &'static str,
    /// How often it is drawn, against the other entries' weights.
    pub weight: u32,
    pub generate: Generate,
    /// Commands sent to both servers on a fresh connection; kvd serves the
    /// entry when its replies match redis-server's (errors by text, the rest
    /// by type).
    pub probe: &'static [&'static [&'static str]],
}

pub const fn entry(
    name: &'static str,
    weight: u32,
    generate: Generate,
    probe: &'static [&'static [&'static str]],
) -> Entry {
    Entry { name, weight, generate, probe }
}

/// The state a generator draws from.
pub struct Gen {
    pub rng: StdRng,
    pub now_s: u64,
}

impl Gen {
    fn key(&mut self) -> Vec<u8> {
        KEYS.choose(&mut self.rng).expect("keys").as_bytes().to_vec()
    }
    fn keys(&mut self, max: usize) -> Vec<Vec<u8>> {
        let n = self.rng.random_range(1..=max);
        (0..n).map(|_| self.key()).collect()
    }
    fn value(&mut self) -> Vec<u8> {
        VALUES.choose(&mut self.rng).expect("values").to_vec()
    }
    fn int(&mut self) -> Vec<u8> {
        INTEGERS.choose(&mut self.rng).expect("integers").as_bytes().to_vec()
    }
    fn small(&mut self, max: i64) -> Vec<u8> {
        self.rng.random_range(-3..=max).to_string().into_bytes()
    }
    fn ttl(&mut self) -> Vec<u8> {
        TTLS.choose(&mut self.rng).expect("ttls").as_bytes().to_vec()
    }
    /// A TTL in ms: a second TTL's value times 1000, plus 7 ms so that it
    /// never equals one given in seconds (EXPIRE … GT/LT of two equal times
    /// would race the two servers' millisecond clocks).
    fn ttl_ms(&mut self) -> Vec<u8> {
        let ttl = self.ttl();
        match std::str::from_utf8(&ttl).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(s) if (1..10_000_000).contains(&s) => (s * 1000 + 7).to_string().into_bytes(),
            Some(0) => b"0".to_vec(),
            _ => ttl,
        }
    }
    /// An absolute time in seconds: past, long ahead, or bad.
    fn unix_s(&mut self) -> Vec<u8> {
        let now = self.now_s as i64;
        let choices = [1, now - 100, now + 100_000, now + 3_000_000_000];
        if self.rng.random_bool(0.1) {
            return b"soon".to_vec();
        }
        choices.choose(&mut self.rng).expect("times").to_string().into_bytes()
    }
    fn unix_ms(&mut self) -> Vec<u8> {
        let s = self.unix_s();
        match std::str::from_utf8(&s).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(s) => (s * 1000 + 123).to_string().into_bytes(),
            None => s,
        }
    }
    fn pattern(&mut self) -> Vec<u8> {
        PATTERNS.choose(&mut self.rng).expect("patterns").as_bytes().to_vec()
    }
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words.choose(&mut self.rng).expect("words")
    }
}

pub fn words(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|w| w.as_bytes().to_vec()).collect()
}

pub fn with(mut head: Vec<Vec<u8>>, tail: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    head.extend(tail);
    head
}

/// Every command kvd serves today and every one it is to serve; each gated
/// on its probe.
pub static COMMANDS: &[Entry] = &[
    entry("get", 10, |g| vec![b"GET".to_vec(), g.key()], &[&["GET", "probe"]]),
    entry(
        "set",
        10,
        |g| {
            let mut args = vec![b"SET".to_vec(), g.key(), g.value()];
            match g.rng.random_range(0..6) {
                0 => args.extend([b"EX".to_vec(), g.ttl()]),
                1 => args.extend([b"PX".to_vec(), g.ttl_ms()]),
                2 => args.push(b"NX".to_vec()),
                3 => args.push(b"XX".to_vec()),
                _ => {}
            }
            args
        },
        &[&["SET", "probe", "v", "EX", "100", "NX"]],
    ),
    entry(
        "set GET",
        3,
        |g| with(words(&["SET"]), [g.key(), g.value(), b"GET".to_vec()]),
        &[&["SET", "probe", "v", "GET"]],
    ),
    entry(
        "set KEEPTTL",
        2,
        |g| with(words(&["SET"]), [g.key(), g.value(), b"KEEPTTL".to_vec()]),
        &[&["SET", "probe", "v", "KEEPTTL"]],
    ),
    entry(
        "set EXAT/PXAT",
        2,
        |g| {
            if g.rng.random_bool(0.5) {
                with(words(&["SET"]), [g.key(), g.value(), b"EXAT".to_vec(), g.unix_s()])
            } else {
                with(words(&["SET"]), [g.key(), g.value(), b"PXAT".to_vec(), g.unix_ms()])
            }
        },
        &[&["SET", "probe", "v", "EXAT", "4000000000"]],
    ),
    entry("setex", 2, |g| with(words(&["SETEX"]), [g.key(), g.ttl(), g.value()]), &[&["SETEX", "probe", "100", "v"]]),
    entry(
        "psetex",
        2,
        |g| with(words(&["PSETEX"]), [g.key(), g.ttl_ms(), g.value()]),
        &[&["PSETEX", "probe", "100000", "v"]],
    ),
    entry("setnx", 2, |g| with(words(&["SETNX"]), [g.key(), g.value()]), &[&["SETNX", "probe", "v"]]),
    entry("mget", 3, |g| with(words(&["MGET"]), g.keys(4)), &[&["MGET", "probe", "probe2"]]),
    entry(
        "mset",
        3,
        |g| {
            let n = g.rng.random_range(1..=3);
            let pairs: Vec<Vec<u8>> = (0..n).flat_map(|_| [g.key(), g.value()]).collect();
            with(words(&["MSET"]), pairs)
        },
        &[&["MSET", "probe", "v"]],
    ),
    entry(
        "msetnx",
        2,
        |g| {
            let n = g.rng.random_range(1..=3);
            let pairs: Vec<Vec<u8>> = (0..n).flat_map(|_| [g.key(), g.value()]).collect();
            with(words(&["MSETNX"]), pairs)
        },
        &[&["MSETNX", "probe:msetnx", "v"]],
    ),
    entry("incr", 4, |g| vec![b"INCR".to_vec(), g.key()], &[&["INCR", "probe:n"]]),
    entry("decr", 2, |g| vec![b"DECR".to_vec(), g.key()], &[&["DECR", "probe:n"]]),
    entry("incrby", 3, |g| with(words(&["INCRBY"]), [g.key(), g.int()]), &[&["INCRBY", "probe:n", "5"]]),
    entry("decrby", 2, |g| with(words(&["DECRBY"]), [g.key(), g.int()]), &[&["DECRBY", "probe:n", "5"]]),
    entry(
        "incrbyfloat",
        3,
        |g| {
            let by = g.pick(&FLOATS).as_bytes().to_vec();
            with(words(&["INCRBYFLOAT"]), [g.key(), by])
        },
        &[&["INCRBYFLOAT", "probe:f", "1.5"]],
    ),
    entry("del", 4, |g| with(words(&["DEL"]), g.keys(3)), &[&["DEL", "probe", "probe2"]]),
    entry("unlink", 2, |g| with(words(&["UNLINK"]), g.keys(3)), &[&["UNLINK", "probe:none"]]),
    entry("exists", 3, |g| with(words(&["EXISTS"]), g.keys(4)), &[&["EXISTS", "probe", "probe"]]),
    entry("touch", 1, |g| with(words(&["TOUCH"]), g.keys(3)), &[&["TOUCH", "probe:none"]]),
    entry("expire", 3, |g| with(words(&["EXPIRE"]), [g.key(), g.ttl()]), &[&["EXPIRE", "probe:none", "100"]]),
    entry(
        "expire NX/XX/GT/LT",
        2,
        |g| {
            let flag = g.pick(&["NX", "XX", "GT", "LT", "nx", "BAD"]).as_bytes().to_vec();
            with(words(&["EXPIRE"]), [g.key(), g.ttl(), flag])
        },
        &[&["EXPIRE", "probe:none", "100", "NX"]],
    ),
    entry("pexpire", 2, |g| with(words(&["PEXPIRE"]), [g.key(), g.ttl_ms()]), &[&["PEXPIRE", "probe:none", "100000"]]),
    entry("expireat", 2, |g| with(words(&["EXPIREAT"]), [g.key(), g.unix_s()]), &[&["EXPIREAT", "probe:none", "1"]]),
    entry(
        "pexpireat",
        2,
        |g| with(words(&["PEXPIREAT"]), [g.key(), g.unix_ms()]),
        &[&["PEXPIREAT", "probe:none", "1000"]],
    ),
    entry("ttl", 3, |g| vec![b"TTL".to_vec(), g.key()], &[&["TTL", "probe:none"]]),
    entry("pttl", 2, |g| vec![b"PTTL".to_vec(), g.key()], &[&["PTTL", "probe:none"]]),
    entry("expiretime", 2, |g| vec![b"EXPIRETIME".to_vec(), g.key()], &[&["EXPIRETIME", "probe:none"]]),
    entry("pexpiretime", 1, |g| vec![b"PEXPIRETIME".to_vec(), g.key()], &[&["PEXPIRETIME", "probe:none"]]),
    entry("persist", 2, |g| vec![b"PERSIST".to_vec(), g.key()], &[&["PERSIST", "probe:none"]]),
    entry("getset", 2, |g| with(words(&["GETSET"]), [g.key(), g.value()]), &[&["GETSET", "probe:gs", "v"]]),
    entry("getdel", 2, |g| vec![b"GETDEL".to_vec(), g.key()], &[&["GETDEL", "probe:none"]]),
    entry(
        "getex",
        2,
        |g| {
            let mut args = vec![b"GETEX".to_vec(), g.key()];
            match g.rng.random_range(0..5) {
                0 => args.extend([b"EX".to_vec(), g.ttl()]),
                1 => args.extend([b"PXAT".to_vec(), g.unix_ms()]),
                2 => args.push(b"PERSIST".to_vec()),
                _ => {}
            }
            args
        },
        &[&["GETEX", "probe:none", "PERSIST"]],
    ),
    entry("append", 3, |g| with(words(&["APPEND"]), [g.key(), g.value()]), &[&["APPEND", "probe:ap", "v"]]),
    entry("strlen", 2, |g| vec![b"STRLEN".to_vec(), g.key()], &[&["STRLEN", "probe:none"]]),
    entry(
        "getrange",
        2,
        |g| with(words(&["GETRANGE"]), [g.key(), g.small(6), g.small(8)]),
        &[&["GETRANGE", "probe:none", "0", "-1"]],
    ),
    entry(
        "setrange",
        2,
        |g| with(words(&["SETRANGE"]), [g.key(), g.small(12), g.value()]),
        &[&["SETRANGE", "probe:sr", "2", "v"]],
    ),
    entry("type", 2, |g| vec![b"TYPE".to_vec(), g.key()], &[&["TYPE", "probe:none"]]),
    entry("rename", 2, |g| with(words(&["RENAME"]), [g.key(), g.key()]), &[&["RENAME", "probe:none", "probe:x"]]),
    entry("renamenx", 1, |g| with(words(&["RENAMENX"]), [g.key(), g.key()]), &[&["RENAMENX", "probe:none", "probe:x"]]),
    entry(
        "copy",
        2,
        |g| {
            let mut args = with(words(&["COPY"]), [g.key(), g.key()]);
            if g.rng.random_bool(0.5) {
                args.push(b"REPLACE".to_vec());
            }
            args
        },
        &[&["COPY", "probe:none", "probe:x"]],
    ),
    entry("keys", 1, |g| vec![b"KEYS".to_vec(), g.pattern()], &[&["KEYS", "probe:none*"]]),
    entry(
        "scan",
        1,
        |_| with(words(&["SCAN", "0"]), [b"MATCH".to_vec(), b"k*".to_vec(), b"COUNT".to_vec(), b"1000".to_vec()]),
        &[&["SCAN", "0", "MATCH", "probe:*", "COUNT", "1000"]],
    ),
    entry(
        "scan glob/TYPE",
        1,
        |g| {
            let mut args = with(words(&["SCAN", "0", "MATCH"]), [g.pattern(), b"COUNT".to_vec(), b"1000".to_vec()]);
            if g.rng.random_bool(0.5) {
                args.extend(words(&["TYPE", g.pick(&["string", "list"])]));
            }
            args
        },
        &[&["SCAN", "0", "MATCH", "probe:?", "COUNT", "1000", "TYPE", "string"]],
    ),
    entry("randomkey", 1, |_| words(&["RANDOMKEY"]), &[&["RANDOMKEY"]]),
    entry("dbsize", 2, |_| words(&["DBSIZE"]), &[&["DBSIZE"]]),
    entry("flushdb", 1, |_| words(&["FLUSHDB"]), &[&["FLUSHDB"]]),
    entry("flushall", 1, |_| words(&["FLUSHALL"]), &[&["FLUSHALL"]]),
    entry(
        "object encoding",
        1,
        |g| with(words(&["OBJECT", "ENCODING"]), [g.key()]),
        &[&["SET", "probe:o", "v"], &["OBJECT", "ENCODING", "probe:o"]],
    ),
    entry(
        "memory usage",
        1,
        |g| with(words(&["MEMORY", "USAGE"]), [g.key()]),
        &[&["SET", "probe:m", "v"], &["MEMORY", "USAGE", "probe:m"]],
    ),
    entry("ping", 1, |_| words(&["PING"]), &[&["PING"]]),
    entry("echo", 1, |g| vec![b"ECHO".to_vec(), g.value()], &[&["ECHO", "x"]]),
    entry("multi", 4, |_| words(&["MULTI"]), &[&["MULTI"]]),
    entry("exec", 4, |_| words(&["EXEC"]), &[&["MULTI"], &["EXEC"]]),
    entry("discard", 1, |_| words(&["DISCARD"]), &[&["MULTI"], &["DISCARD"]]),
    entry("watch", 3, |g| with(words(&["WATCH"]), g.keys(2)), &[&["WATCH", "probe"]]),
    entry("unwatch", 1, |_| words(&["UNWATCH"]), &[&["UNWATCH"]]),
    entry(
        "client setname/getname",
        1,
        |g| match g.rng.random_range(0..3) {
            0 => words(&["CLIENT", "SETNAME", g.pick(&["a", "b-c", "has space", ""])]),
            _ => words(&["CLIENT", "GETNAME"]),
        },
        &[&["CLIENT", "SETNAME", "p"], &["CLIENT", "GETNAME"]],
    ),
    entry("client id", 1, |_| words(&["CLIENT", "ID"]), &[&["CLIENT", "ID"]]),
    entry("hello", 1, |g| words(&["HELLO", g.pick(&["2", "3", "4", "x"])]), &[&["HELLO", "3"], &["HELLO", "2"]]),
    entry(
        "other types' reads",
        2,
        |g| {
            let key = g.key();
            match g.rng.random_range(0..7) {
                0 => vec![b"LLEN".to_vec(), key],
                1 => with(words(&["LRANGE"]), [key, b"0".to_vec(), b"-1".to_vec()]),
                2 => with(words(&["HGET"]), [key, b"f".to_vec()]),
                3 => vec![b"HGETALL".to_vec(), key],
                4 => vec![b"SCARD".to_vec(), key],
                5 => vec![b"SMEMBERS".to_vec(), key],
                _ => vec![b"ZCARD".to_vec(), key],
            }
        },
        &[&["SET", "probe:wt", "v"], &["LLEN", "probe:wt"], &["HGET", "probe:wt", "f"]],
    ),
    entry(
        "unknown command",
        1,
        |g| with(words(&[g.pick(&["FROBNICATE", "GETT", "NOSUCH"])]), [g.key()]),
        &[&["FROBNICATE", "k"]],
    ),
];
