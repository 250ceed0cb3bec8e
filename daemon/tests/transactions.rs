//! MULTI/EXEC/WATCH and the RESP3 handshake, end to end on a real kvd,
//! through the `redis` crate and as raw bytes where the exact reply
//! matters. Each expected reply was checked against redis-server 7.0.

mod common;

use blockkv_testkit::{Kvd, temp_dir};
use common::start;
use redis::{Commands, Connection, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(kvd: &Kvd) -> Connection {
    let client = redis::Client::open(format!("redis+unix://{}", kvd.socket().display())).expect("client");
    client.get_connection().expect("connect")
}

/// A raw connection: send commands (inline form), read what comes back.
struct Raw(UnixStream);

impl Raw {
    fn open(kvd: &Kvd) -> Raw {
        let stream = UnixStream::connect(kvd.socket()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        Raw(stream)
    }

    /// Sends `line` and returns every byte answered until the socket is quiet.
    fn ask(&mut self, line: &str) -> String {
        self.0.write_all(format!("{line}\r\n").as_bytes()).expect("send");
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.0.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&chunk[..n]);
                    if reply.ends_with(b"\r\n") {
                        self.0.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
                    }
                }
                Err(_) => break,
            }
        }
        self.0.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        String::from_utf8_lossy(&reply).into_owned()
    }
}

#[test]
fn exec_runs_queued_commands_in_order_and_a_runtime_error_undoes_nothing() {
    // INCR of a non-number fails inside EXEC; the commands around it apply.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("INCR a"), "+QUEUED\r\n");
    assert_eq!(raw.ask("SET s abc"), "+QUEUED\r\n");
    assert_eq!(raw.ask("INCR s"), "+QUEUED\r\n");
    assert_eq!(raw.ask("GET s"), "+QUEUED\r\n");
    assert_eq!(raw.ask("INCR a"), "+QUEUED\r\n");
    assert_eq!(
        raw.ask("EXEC"),
        "*5\r\n:1\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$3\r\nabc\r\n:2\r\n"
    );
    assert_eq!(raw.ask("GET a"), "$1\r\n2\r\n");
    assert_eq!(raw.ask("EXEC"), "-ERR EXEC without MULTI\r\n");
    assert_eq!(raw.ask("DISCARD"), "-ERR DISCARD without MULTI\r\n");
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("MULTI"), "-ERR MULTI calls can not be nested\r\n");
    assert_eq!(raw.ask("WATCH a"), "-ERR WATCH inside MULTI is not allowed\r\n");
    assert_eq!(raw.ask("SET a 10"), "+QUEUED\r\n");
    assert_eq!(raw.ask("DISCARD"), "+OK\r\n");
    assert_eq!(raw.ask("GET a"), "$1\r\n2\r\n");
    // A command that cannot run inside a transaction says so in EXEC's array.
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("MONITOR"), "+QUEUED\r\n");
    assert_eq!(raw.ask("EXEC"), "*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n");
}

#[test]
fn a_command_refused_while_queuing_makes_exec_apply_nothing() {
    // An unknown command or a wrong arity inside MULTI: EXECABORT, and the queued SET is not applied.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    for bad in ["FROBNICATE x", "INCR x y"] {
        assert_eq!(raw.ask("MULTI"), "+OK\r\n");
        assert_eq!(raw.ask("SET k v"), "+QUEUED\r\n");
        assert!(raw.ask(bad).starts_with("-ERR "), "{bad}");
        assert_eq!(raw.ask("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
        assert_eq!(raw.ask("EXISTS k"), ":0\r\n");
    }
}

#[test]
fn a_watched_key_that_anyone_changed_makes_exec_apply_nothing() {
    // Set, deleted, renamed, flushed or expired by another client after WATCH: EXEC is a null
    // array and its SET is not applied; untouched, the same transaction applies.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut other = connect(&kvd);
    let mut raw = Raw::open(&kvd);
    let changes: [(&str, &[&str]); 6] = [
        ("set", &["SET", "w", "2"]),
        ("delete", &["DEL", "w"]),
        ("rename", &["RENAME", "w", "w2"]),
        ("flush", &["FLUSHALL"]),
        ("same value", &["SET", "w", "1"]),
        ("expire", &["PEXPIRE", "w", "1"]),
    ];
    for (what, change) in changes {
        let () = other.set("w", "1").expect("set");
        assert_eq!(raw.ask("WATCH w"), "+OK\r\n", "{what}");
        let mut cmd = redis::cmd(change[0]);
        change[1..].iter().for_each(|arg| {
            cmd.arg(*arg);
        });
        let _: Value = cmd.query(&mut other).expect(what);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(raw.ask("MULTI"), "+OK\r\n");
        assert_eq!(raw.ask("SET marker x"), "+QUEUED\r\n");
        assert_eq!(raw.ask("EXEC"), "*-1\r\n", "{what}");
        assert_eq!(raw.ask("EXISTS marker"), ":0\r\n", "{what}");
    }
    // Watched, then untouched (and a watch on a missing key that stays missing): it applies.
    let () = other.set("w", "1").expect("set");
    assert_eq!(raw.ask("WATCH w missing"), "+OK\r\n");
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("SET marker x"), "+QUEUED\r\n");
    assert_eq!(raw.ask("EXEC"), "*1\r\n+OK\r\n");
    // UNWATCH forgets: a later change does not abort.
    assert_eq!(raw.ask("WATCH w"), "+OK\r\n");
    assert_eq!(raw.ask("UNWATCH"), "+OK\r\n");
    let () = other.set("w", "3").expect("set");
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("GET w"), "+QUEUED\r\n");
    assert_eq!(raw.ask("EXEC"), "*1\r\n$1\r\n3\r\n");
}

#[test]
fn the_redis_crate_runs_an_optimistic_transaction_with_a_conflict() {
    // The WATCH / MULTI / EXEC retry loop a client library writes: a conflicting write from a
    // second connection makes the first attempt return nil, the retry applies once.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let mut other = connect(&kvd);
    let () = con.set("balance", 100).expect("set");
    let mut attempts = 0;
    let balance: i64 = loop {
        attempts += 1;
        let _: () = redis::cmd("WATCH").arg("balance").query(&mut con).expect("watch");
        let current: i64 = con.get("balance").expect("get");
        if attempts == 1 {
            let () = other.set("balance", 50).expect("conflicting write");
        }
        let result: Option<(i64,)> =
            redis::pipe().atomic().set("balance", current - 10).ignore().get("balance").query(&mut con).expect("exec");
        if let Some((balance,)) = result {
            break balance;
        }
    };
    assert_eq!((attempts, balance), (2, 40));
}

#[test]
fn a_transaction_over_the_batch_limit_is_refused_and_applies_nothing() {
    // 5,000 distinct keys written in one EXEC is over BATCH_OPS_MAX (4,096): an error, no key set.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    let mut lines = vec!["MULTI".to_string()];
    lines.extend((0..5000).map(|i| format!("SET k{i} {i}")));
    lines.push("EXEC".to_string());
    let replies = raw.ask(&lines.join("\r\n"));
    let last = replies.lines().last().expect("a reply");
    assert!(last.starts_with("-ERR EXEC applied nothing: ") && last.contains("4096"), "{last}");
    assert_eq!(raw.ask("DBSIZE"), ":0\r\n");
}

#[test]
fn hello_3_switches_replies_to_resp3_and_reset_back() {
    // Null, map and verbatim replies as redis-server 7.0 sends them after HELLO 3; RESET is RESP2.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    assert_eq!(raw.ask("GET nope"), "$-1\r\n");
    let hello = raw.ask("HELLO 3 SETNAME app");
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    assert_eq!(raw.ask("GET nope"), "_\r\n");
    assert_eq!(raw.ask("CONFIG GET appendonly"), "%1\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
    assert!(raw.ask("INFO keyspace").starts_with("="), "INFO is a verbatim string");
    assert_eq!(raw.ask("CLIENT GETNAME"), "$3\r\napp\r\n");
    assert_eq!(raw.ask("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(raw.ask("HELLO 3 AUTH bob pw"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask("RESET"), "+RESET\r\n");
    assert_eq!(raw.ask("EXEC"), "-ERR EXEC without MULTI\r\n");
    assert_eq!(raw.ask("GET nope"), "$-1\r\n");
    assert_eq!(raw.ask("CLIENT GETNAME"), "$-1\r\n");
    // The redis crate with RESP3 asked for in its URL.
    let url = format!("redis+unix://{}?protocol=resp3", kvd.socket().display());
    let mut con = redis::Client::open(url).expect("client").get_connection().expect("resp3 connect");
    let () = con.set("k", "v").expect("set over resp3");
    assert_eq!(con.get::<_, Option<String>>("nope").expect("get nil over resp3"), None);
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).expect("client id");
    assert!(id > 0);
}

#[test]
fn a_refused_exec_applies_nothing_even_with_flushall_or_a_bad_pair_in_it() {
    // FLUSHALL then more keys than one batch holds: refused before the flush commits; an MSET
    // with an over-limit key inside MULTI stages none of its pairs.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    assert_eq!(raw.ask("SET keep 1"), "+OK\r\n");
    let mut lines = vec!["MULTI".to_string(), "FLUSHALL".to_string()];
    lines.extend((0..5000).map(|i| format!("SET k{i} {i}")));
    lines.push("EXEC".to_string());
    let replies = raw.ask(&lines.join("\r\n"));
    assert!(replies.lines().last().expect("a reply").starts_with("-ERR EXEC applied nothing: "), "{replies}");
    assert_eq!(raw.ask("GET keep"), "$1\r\n1\r\n", "the flush was not applied");
    let long_key = "k".repeat(1025);
    assert_eq!(raw.ask("MULTI"), "+OK\r\n");
    assert_eq!(raw.ask(&format!("MSET a 1 {long_key} 2")), "+QUEUED\r\n");
    assert!(raw.ask("EXEC").starts_with("*1\r\n-ERR key is 1025 bytes"));
    assert_eq!(raw.ask("EXISTS a"), ":0\r\n", "no pair of the refused MSET applied");
}

#[test]
fn expire_conditions_all_hold_together() {
    // XX with LT on a key without a TTL: XX fails, so nothing is set (Redis replies 0).
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    assert_eq!(raw.ask("SET k v"), "+OK\r\n");
    assert_eq!(raw.ask("EXPIRE k 100 XX LT"), ":0\r\n");
    assert_eq!(raw.ask("TTL k"), ":-1\r\n");
    assert_eq!(raw.ask("EXPIRE k 100 LT"), ":1\r\n");
    assert_eq!(raw.ask("EXPIRE k 50 XX LT"), ":1\r\n");
    assert_eq!(raw.ask("EXPIRE k 80 XX GT"), ":1\r\n");
    assert_eq!(raw.ask("TTL k"), ":80\r\n");
}

#[test]
fn client_reply_off_on_and_skip_as_redis() {
    // OFF silences every reply (pipelined SETs too) and itself; ON answers OK; SKIP silences
    // itself and the next command; SKIP while OFF leaves replies off.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut raw = Raw::open(&kvd);
    assert_eq!(raw.ask("CLIENT REPLY OFF\r\nSET a 1\r\nSET b 2\r\nGET a"), "");
    assert_eq!(raw.ask("CLIENT REPLY SKIP\r\nGET a"), "", "SKIP while OFF");
    assert_eq!(raw.ask("CLIENT REPLY ON"), "+OK\r\n");
    assert_eq!(raw.ask("CLIENT REPLY SKIP\r\nSET c 3\r\nSET d 4\r\nGET a"), "+OK\r\n$1\r\n1\r\n");
    assert_eq!(raw.ask("MGET b c d"), "*3\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n");
}
