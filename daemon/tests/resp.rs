//! RESP2 on kvd's socket, driven by a real Redis client library (the
//! `redis` crate) and, where the system has it, by `redis-cli` itself.

mod common;

use blockkv_testkit::{Kvd, temp_dir};
use common::start;
use redis::{Commands, Connection, RedisResult, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

fn connect(kvd: &Kvd) -> Connection {
    let url = format!("redis+unix://{}", kvd.socket().display());
    let client = redis::Client::open(url).expect("client");
    client.get_connection().expect("connect")
}

fn raw(kvd: &Kvd, request: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(kvd.socket()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream.write_all(request).expect("send");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("reply, then closed");
    reply
}

fn error_text<T: std::fmt::Debug>(result: RedisResult<T>) -> String {
    match result {
        Err(err) => format!("{} {}", err.code().unwrap_or("?"), err.detail().unwrap_or("")),
        Ok(value) => panic!("expected an error, got {value:?}"),
    }
}

#[test]
fn strings_round_trip_through_a_redis_client() {
    // GET/SET with every option, MGET/MSET, DEL, EXISTS, binary values.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let pong: String = redis::cmd("PING").query(&mut con).expect("ping");
    assert_eq!(pong, "PONG");
    let echoed: Vec<u8> = redis::cmd("ECHO").arg(b"a\r\nb\x00").query(&mut con).expect("echo");
    assert_eq!(echoed, b"a\r\nb\x00");

    let () = con.set("k", b"v\x00\xff".as_slice()).expect("set");
    assert!(!con.set_nx::<_, _, bool>("k", "x").expect("setnx on a key"));
    assert!(con.set_nx::<_, _, bool>("k2", "x").expect("setnx on no key"));
    let () = redis::cmd("PSETEX").arg("k2").arg(100_000).arg("y").query(&mut con).expect("psetex");
    assert!((99_000..=100_000).contains(&con.pttl::<_, i64>("k2").expect("pttl")));
    let _: i64 = con.del("k2").expect("del");
    let got: Vec<u8> = con.get("k").expect("get");
    assert_eq!(got, b"v\x00\xff");
    let missing: Option<Vec<u8>> = con.get("nope").expect("get missing");
    assert_eq!(missing, None);

    // NX on an existing key and XX on a missing one do nothing (a nil reply).
    let nx: Option<String> = redis::cmd("SET").arg("k").arg("other").arg("NX").query(&mut con).expect("nx");
    assert_eq!(nx, None);
    let xx: Option<String> = redis::cmd("SET").arg("fresh").arg("x").arg("XX").query(&mut con).expect("xx");
    assert_eq!(xx, None);
    assert!(!con.exists::<_, bool>("fresh").expect("exists"));
    let nx: Option<String> = redis::cmd("SET").arg("fresh").arg("x").arg("NX").query(&mut con).expect("nx");
    assert_eq!(nx.as_deref(), Some("OK"));
    let xx: Option<String> =
        redis::cmd("SET").arg("k").arg("v2").arg("XX").arg("EX").arg(100).query(&mut con).expect("xx");
    assert_eq!(xx.as_deref(), Some("OK"));
    assert_eq!(con.get::<_, String>("k").expect("get"), "v2");
    let ttl: i64 = con.ttl("k").expect("ttl");
    assert!((99..=100).contains(&ttl), "{ttl}");

    let () = redis::cmd("MSET").arg("a").arg("1").arg("b").arg("2").query(&mut con).expect("mset");
    let values: Vec<Option<String>> = con.mget(&["a", "nope", "b"]).expect("mget");
    assert_eq!(values, vec![Some("1".into()), None, Some("2".into())]);
    let present: i64 = redis::cmd("EXISTS").arg("a").arg("b").arg("nope").arg("a").query(&mut con).expect("exists");
    assert_eq!(present, 3);
    let deleted: i64 = con.del(&["a", "nope", "b"]).expect("del");
    assert_eq!(deleted, 2);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).expect("dbsize");
    assert_eq!(size, 2, "k and fresh");
}

#[test]
fn incr_is_atomic_across_concurrent_clients() {
    // 8 clients each INCR one key 500 times: no increment is lost; the
    // errors and the TTL behave as Redis's do.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let mut con = connect(&kvd);
                for _ in 0..500 {
                    let _: i64 = con.incr("counter", 1).expect("incr");
                }
            });
        }
    });
    let mut con = connect(&kvd);
    assert_eq!(con.get::<_, i64>("counter").expect("get"), 4000);
    assert_eq!(redis::cmd("DECRBY").arg("counter").arg(4001).query::<i64>(&mut con).expect("decrby"), -1);
    assert_eq!(redis::cmd("DECR").arg("counter").query::<i64>(&mut con).expect("decr"), -2);
    assert_eq!(redis::cmd("INCRBY").arg("new").arg(-7).query::<i64>(&mut con).expect("incrby"), -7);

    let () = con.set("text", "abc").expect("set");
    assert_eq!(error_text(con.incr::<_, _, i64>("text", 1)), "ERR value is not an integer or out of range");
    let () = con.set("big", i64::MAX).expect("set");
    assert_eq!(error_text(con.incr::<_, _, i64>("big", 1)), "ERR increment or decrement would overflow");
    assert_eq!(con.get::<_, i64>("big").expect("unchanged"), i64::MAX);

    // INCR keeps the key's TTL.
    let () = con.set_ex("ticking", 5, 100).expect("setex");
    let _: i64 = con.incr("ticking", 1).expect("incr");
    let pttl: i64 = con.pttl("ticking").expect("pttl");
    assert!(pttl > 90_000, "{pttl}");
}

#[test]
fn expiry_commands_follow_redis() {
    // EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, and a key that really expires.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    assert_eq!(con.ttl::<_, i64>("missing").expect("ttl"), -2);
    let () = con.set("k", "v").expect("set");
    assert_eq!(con.ttl::<_, i64>("k").expect("ttl"), -1);
    assert!(con.expire::<_, bool>("k", 100).expect("expire"));
    assert!(!con.expire::<_, bool>("missing", 100).expect("expire missing"));
    assert!(con.persist::<_, bool>("k").expect("persist"));
    assert!(!con.persist::<_, bool>("k").expect("persist again"));
    assert_eq!(con.ttl::<_, i64>("k").expect("ttl"), -1);
    assert!(con.pexpire::<_, bool>("k", 150).expect("pexpire"));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(con.get::<_, Option<String>>("k").expect("get"), None);
    // A time in the past deletes the key.
    let () = con.set("gone", "v").expect("set");
    assert!(con.expire::<_, bool>("gone", -1).expect("expire"));
    assert!(!con.exists::<_, bool>("gone").expect("exists"));
}

#[test]
fn auth_without_a_password_and_time_answer_as_redis_does() {
    // With no password set, Redis accepts the default user with any password, refuses a
    // password alone and knows no other user; TIME is [seconds, microseconds] as bulk strings.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    assert_eq!(
        error_text(redis::cmd("AUTH").arg("secret").query::<Value>(&mut con)),
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    );
    let () = redis::cmd("AUTH").arg("default").arg("anything").query(&mut con).expect("auth default");
    assert_eq!(
        error_text(redis::cmd("AUTH").arg("bob").arg("x").query::<Value>(&mut con)),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(error_text(redis::cmd("AUTH").arg("a").arg("b").arg("c").query::<Value>(&mut con)), "ERR syntax error");
    let (seconds, micros): (u64, u32) = redis::cmd("TIME").query(&mut con).expect("time");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    assert!(seconds.abs_diff(now) <= 5 && micros < 1_000_000, "{seconds} {micros} against {now}");
    assert_eq!(
        error_text(redis::cmd("TIME").arg("x").query::<Value>(&mut con)),
        "ERR wrong number of arguments for 'time' command"
    );
}

#[test]
fn expire_times_past_redis_s_range_are_refused_and_write_nothing() {
    // Redis refuses a time to live whose absolute time (now + ttl) does not fit a
    // signed 64-bit count of milliseconds; kvd answers the same error and keeps the key.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let () = con.set("k", "before").expect("set");
    let refused = [
        ("set", redis::cmd("SET").arg("k").arg("v").arg("EX").arg(10_000_000_000_000_000_i64).clone()),
        ("set", redis::cmd("SET").arg("k").arg("v").arg("PX").arg(i64::MAX).clone()),
        ("setex", redis::cmd("SETEX").arg("k").arg(i64::MAX / 1000).arg("v").clone()),
        ("psetex", redis::cmd("PSETEX").arg("k").arg(i64::MAX - 1).arg("v").clone()),
        ("expire", redis::cmd("EXPIRE").arg("k").arg(i64::MAX / 1000).clone()),
        ("pexpire", redis::cmd("PEXPIRE").arg("k").arg(i64::MAX).clone()),
    ];
    for (name, command) in refused {
        let error = error_text(command.query::<Value>(&mut con));
        assert_eq!(error, format!("ERR invalid expire time in '{name}' command"));
    }
    assert_eq!(con.get::<_, String>("k").expect("get"), "before");
    assert_eq!(con.ttl::<_, i64>("k").expect("ttl"), -1);
    // A hundred years is in range.
    let () = redis::cmd("SET").arg("k").arg("v").arg("EX").arg(3_153_600_000_i64).query(&mut con).expect("set ex");
    assert!(con.ttl::<_, i64>("k").expect("ttl") > 3_153_599_000);
}

#[test]
fn scan_pages_through_every_key_once() {
    // SCAN with MATCH and COUNT returns every matching key, and only those; a glob
    // anywhere in the pattern works as in Redis.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    for i in 0..250 {
        let () = con.set(format!("user:{i:03}"), i).expect("set");
        let () = con.set(format!("other:{i:03}"), i).expect("set");
    }
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(40)
            .query(&mut con)
            .expect("scan");
        assert!(keys.len() <= 40);
        seen.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    seen.sort();
    seen.dedup();
    let want: Vec<String> = (0..250).map(|i| format!("user:{i:03}")).collect();
    assert_eq!(seen, want);
    let all: std::collections::BTreeSet<String> = con.scan().expect("scan iter").collect();
    assert_eq!(all.len(), 500);
    let mut ending_in_7: Vec<String> = con.scan_match("u*r:?[0-9]7").expect("scan match").collect();
    ending_in_7.sort();
    let want: Vec<String> = (0..250).filter(|i| i % 10 == 7).map(|i| format!("user:{i:03}")).collect();
    assert_eq!(ending_in_7, want);
    assert!(error_text(redis::cmd("SCAN").arg("x").query::<Value>(&mut con)).contains("invalid cursor"));
}

#[test]
fn errors_read_as_redis_errors_and_never_hang() {
    // Unknown commands, wrong arity, syntax, other data types, INFO and
    // what clients send on connect.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    assert!(error_text(redis::cmd("FROBNICATE").arg("x").query::<Value>(&mut con)).starts_with("ERR unknown command"));
    assert_eq!(
        error_text(redis::cmd("GET").query::<Value>(&mut con)),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        error_text(redis::cmd("SET").arg("k").arg("v").arg("BOGUS").query::<Value>(&mut con)),
        "ERR syntax error"
    );
    assert_eq!(
        error_text(redis::cmd("SET").arg("k").arg("v").arg("EX").arg(0).query::<Value>(&mut con)),
        "ERR invalid expire time in 'set' command"
    );
    let () = con.set("s", "v").expect("set");
    assert!(error_text(redis::cmd("LPUSH").arg("s").arg("x").query::<Value>(&mut con)).starts_with("WRONGTYPE"));
    assert!(error_text(redis::cmd("LPUSH").arg("fresh").arg("x").query::<Value>(&mut con)).contains("strings only"));
    let too_long = vec![b'k'; 2000];
    assert!(error_text(con.set::<_, _, ()>(too_long.as_slice(), "v")).contains("key is 2000 bytes"));
    // The connection still works after every error.
    assert_eq!(con.get::<_, String>("s").expect("get"), "v");

    let info: String = redis::cmd("INFO").query(&mut con).expect("info");
    for needle in ["# Server", "redis_version:", "# Stats", "# Persistence", "# Keyspace", "db0:keys=1"] {
        assert!(info.contains(needle), "{needle} in {info}");
    }
    let keyspace: String = redis::cmd("INFO").arg("keyspace").query(&mut con).expect("info keyspace");
    assert!(!keyspace.contains("# Server"), "{keyspace}");
    let config: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("save").arg("appendonly").query(&mut con).expect("config get");
    assert_eq!(config, ["save", "", "appendonly", "yes"]);
    let fsync: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("appendfsync").query(&mut con).expect("config get");
    assert_eq!(fsync, ["appendfsync", "everysec"], "kvd's default --sync periodic");
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut con).expect("config get");
    assert_eq!(config, ["maxmemory", "0"]);
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("no-such-*").query(&mut con).expect("config get");
    assert!(config.is_empty(), "an unknown parameter is an empty reply, as in Redis");
    let () = redis::cmd("SELECT").arg(0).query(&mut con).expect("select 0");
    assert!(error_text(redis::cmd("SELECT").arg(1).query::<Value>(&mut con)).contains("out of range"));
}

#[test]
fn malformed_resp_is_refused_before_allocating_and_the_connection_closed() {
    // A huge announced bulk or array is refused from its header; QUIT closes.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let reply = raw(&kvd, b"*1\r\n$99999999999\r\n");
    assert!(reply.starts_with(b"-ERR Protocol error"), "{}", String::from_utf8_lossy(&reply));
    let reply = raw(&kvd, b"*2147483647\r\n");
    assert!(reply.starts_with(b"-ERR Protocol error"), "{}", String::from_utf8_lossy(&reply));
    // Answers to what came before the bad input are still sent, in order.
    let reply = raw(&kvd, b"PING\r\n*1\r\n:1\r\n");
    assert!(reply.starts_with(b"+PONG\r\n-ERR Protocol error: expected '$'"), "{}", String::from_utf8_lossy(&reply));
    let reply = raw(&kvd, b"*1\r\n$4\r\nQUIT\r\nPING\r\n");
    assert_eq!(reply, b"+OK\r\n", "nothing after QUIT is answered");
    // Inline commands, pipelined.
    let reply = raw(&kvd, b"SET a 1\r\nINCR a\r\nGET a\r\n");
    assert_eq!(reply, b"+OK\r\n:2\r\n$1\r\n2\r\n");
    // Pipelined SETs share one write (pipeline.rs); each still gets its own
    // answer, in order, and an over-long key is refused on its own.
    let long_key = "k".repeat(2000);
    let request = format!("SET x 1\r\nSET y 2\r\nGET x\r\nSET y 3\r\nSET {long_key} v\r\nSET z 4\r\nGET y\r\n");
    let reply = String::from_utf8(raw(&kvd, request.as_bytes())).expect("text");
    let lines: Vec<&str> = reply.split("\r\n").collect();
    assert_eq!(lines[..5], ["+OK", "+OK", "$1", "1", "+OK"], "{reply}");
    assert!(lines[5].starts_with("-ERR key is 2000 bytes"), "{reply}");
    assert_eq!(lines[6..], ["+OK", "$1", "3", ""], "{reply}");
    // A native client on the same socket is unaffected.
    let mut native = kvd.client();
    let answer = native.call(&blockkv_protocol::Request::Get { key: b"a".to_vec() }).expect("an answer");
    assert_eq!(answer, blockkv_protocol::Response::Value(Some(b"2".to_vec())));
}

#[test]
fn answers_queued_behind_a_client_that_reads_late_arrive_once_each_in_order() {
    // Answers appended behind unsent bytes, in reused buffers, arrive once each, in order.
    // The client asks for a value larger than a socket buffer (212,992
    // bytes by default), then pipelines small GETs in several writes and
    // reads nothing until the end.
    const BIG_BYTES: usize = 4 << 20;
    const SMALL_BYTES: usize = 100;
    const KEYS: u8 = 8;
    const BATCHES: usize = 6;
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let () = con.set("big", vec![b'B'; BIG_BYTES]).expect("set big");
    for k in 0..KEYS {
        let () = con.set(format!("s{k}"), vec![b'a' + k; SMALL_BYTES]).expect("set");
    }
    let bulk = |fill: u8, bytes: usize| {
        let mut answer = format!("${bytes}\r\n").into_bytes();
        answer.extend(std::iter::repeat_n(fill, bytes));
        answer.extend_from_slice(b"\r\n");
        answer
    };
    let mut stream = UnixStream::connect(kvd.socket()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n").expect("send");
    let mut expected = bulk(b'B', BIG_BYTES);
    for _ in 0..BATCHES {
        std::thread::sleep(Duration::from_millis(50));
        let mut request = Vec::new();
        for k in 0..KEYS {
            request.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$2\r\ns{k}\r\n").as_bytes());
            expected.extend(bulk(b'a' + k, SMALL_BYTES));
        }
        stream.write_all(&request).expect("send");
    }
    let mut reply = vec![0u8; expected.len()];
    stream.read_exact(&mut reply).expect("every answer");
    let first_wrong = reply.iter().zip(&expected).position(|(got, want)| got != want);
    assert_eq!(first_wrong, None, "the answers differ from the requests' from this byte on");
    // The next answer on the connection is the next command's, not a stale byte.
    stream.write_all(b"PING\r\n").expect("ping");
    let mut pong = [0u8; 7];
    stream.read_exact(&mut pong).expect("pong");
    assert_eq!(&pong, b"+PONG\r\n");
}

#[test]
fn redis_cli_works_unchanged_when_installed() {
    // The real redis-cli against kvd's socket (skipped, saying so, where
    // the system has no redis-cli: `make test` installs it where it can).
    let Ok(probe) = Command::new("redis-cli").arg("--version").output() else {
        println!("redis-cli is not installed: skipped");
        return;
    };
    assert!(probe.status.success());
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let cli = |args: &[&str]| {
        let output = Command::new("redis-cli").arg("-s").arg(kvd.socket()).args(args).output().expect("redis-cli");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim_end().to_string()
    };
    assert_eq!(cli(&["ping"]), "PONG");
    assert_eq!(cli(&["set", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&["get", "greeting"]), "hello world");
    assert_eq!(cli(&["incr", "n"]), "1");
    assert_eq!(cli(&["exists", "greeting", "n", "missing"]), "2");
    assert_eq!(cli(&["--scan", "--pattern", "gr*"]), "greeting");
    assert!(cli(&["nosuchcommand"]).starts_with("ERR unknown command"));
}
