//! The server-side commands operators and tools use, end to end on a real
//! kvd: CONFIG GET/SET, SLOWLOG, MONITOR, CLIENT LIST/KILL, INFO's fields,
//! and a value over the limit answered instead of cut off.

mod common;

use blockkv_testkit::{Kvd, temp_dir};
use common::start;
use redis::{Commands, Connection, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(kvd: &Kvd) -> Connection {
    let client = redis::Client::open(format!("redis+unix://{}", kvd.socket().display())).expect("client");
    client.get_connection().expect("connect")
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .trim()
        .to_string()
}

#[test]
fn config_set_changes_what_it_names_and_refuses_the_rest() {
    // maxclients takes effect for the next connection; loglevel and the sync interval read
    // back; a fixed parameter names the flag to use; an unknown one is Redis's error.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("loglevel")
        .arg("debug")
        .arg("sync-interval-ms")
        .arg(250)
        .query(&mut con)
        .expect("config set");
    let got: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("loglevel").arg("sync-interval-ms").query(&mut con).expect("get");
    assert_eq!(got, ["loglevel", "debug", "sync-interval-ms", "250"]);
    let err = redis::cmd("CONFIG").arg("SET").arg("port").arg(1).query::<()>(&mut con).expect_err("fixed");
    assert!(err.to_string().contains("--socket"), "{err}");
    // All or none: a refused value puts back the ones set before it.
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(7)
        .arg("maxclients")
        .arg(0)
        .query::<()>(&mut con)
        .expect_err("maxclients 0");
    assert!(err.to_string().contains("'maxclients'"), "{err}");
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("slowlog-max-len").query(&mut con).expect("get");
    assert_eq!(got, ["slowlog-max-len", "128"]);
    let err = redis::cmd("CONFIG").arg("SET").arg("nosuch").arg(1).query::<()>(&mut con).expect_err("unknown");
    assert!(err.to_string().contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"), "{err}");
    // With the limit at one connection (this one), a second is refused.
    let () = redis::cmd("CONFIG").arg("SET").arg("maxclients").arg(1).query(&mut con).expect("maxclients");
    let second = redis::Client::open(format!("redis+unix://{}", kvd.socket().display()))
        .expect("client")
        .get_connection()
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    assert!(second.is_err(), "over maxclients: {second:?}");
    let () = redis::cmd("CONFIG").arg("SET").arg("maxclients").arg(100).query(&mut con).expect("maxclients");
    assert_eq!(connect(&kvd).get::<_, Option<String>>("k").expect("a new connection works again"), None);
}

#[test]
fn slowlog_keeps_commands_over_the_threshold_in_a_bounded_ring() {
    // Threshold 0 logs every command; the ring keeps the newest slowlog-max-len; RESET empties it.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let () = redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(0).query(&mut con).expect("set");
    let () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg(3).query(&mut con).expect("set");
    for i in 0..5 {
        let () = con.set(format!("k{i}"), i).expect("set");
    }
    assert_eq!(redis::cmd("SLOWLOG").arg("LEN").query::<i64>(&mut con).expect("len"), 3);
    let entries: Vec<Value> = redis::cmd("SLOWLOG").arg("GET").arg(1).query(&mut con).expect("get");
    let Value::Array(entry) = &entries[0] else { panic!("{entries:?}") };
    assert_eq!(entry.len(), 6, "id, time, duration, args, addr, name");
    let args: Vec<String> = redis::from_redis_value(&entry[3]).expect("args");
    assert_eq!(args, ["SLOWLOG", "LEN"], "the newest first");
    let () = redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(-1).query(&mut con).expect("off");
    let () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).expect("reset");
    assert_eq!(redis::cmd("SLOWLOG").arg("LEN").query::<i64>(&mut con).expect("len"), 0);
}

#[test]
fn monitor_streams_other_clients_commands() {
    // A MONITOR connection sees a SET sent on another connection, quoted as Redis quotes it.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut monitor = UnixStream::connect(kvd.socket()).expect("connect");
    monitor.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    monitor.write_all(b"MONITOR\r\n").expect("send");
    let mut lines = BufReader::new(monitor.try_clone().expect("clone"));
    let mut line = String::new();
    lines.read_line(&mut line).expect("+OK");
    assert_eq!(line, "+OK\r\n");
    let mut con = connect(&kvd);
    let () = con.set("watched key", "a\"b").expect("set");
    // The client library's own handshake (CLIENT SETINFO) comes first.
    loop {
        line.clear();
        lines.read_line(&mut line).expect("a monitored line");
        assert!(line.starts_with('+') && line.contains(" [0 unix:"), "{line}");
        if line.contains("\"SET\"") {
            break;
        }
    }
    assert!(line.ends_with("\"SET\" \"watched key\" \"a\\\"b\"\r\n"), "{line}");
}

#[test]
fn client_list_shows_names_and_client_kill_closes_the_named_connection() {
    // CLIENT LIST has one line per connection with its name; CLIENT KILL ID closes that one.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let mut victim = connect(&kvd);
    let () = redis::cmd("CLIENT").arg("SETNAME").arg("victim").query(&mut victim).expect("setname");
    let victim_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut victim).expect("id");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).expect("list");
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.lines().any(|l| l.contains(&format!("id={victim_id} ")) && l.contains(" name=victim ")), "{list}");
    // Every filter given must match: the right ID with another address kills nothing.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(victim_id)
        .arg("ADDR")
        .arg("1.2.3.4:5")
        .query(&mut con)
        .expect("kill");
    assert_eq!(killed, 0);
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(victim_id).query(&mut con).expect("kill");
    assert_eq!(killed, 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(redis::cmd("PING").query::<String>(&mut victim).is_err(), "the killed connection is closed");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).expect("list");
    assert_eq!(list.lines().count(), 1, "{list}");
}

#[test]
fn info_has_the_fields_monitoring_tools_read() {
    // Keyspace with expires, memory, hits and misses, per-command stats and latencies.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut con = connect(&kvd);
    let () = con.set("a", 1).expect("set");
    let () = redis::cmd("SET").arg("b").arg(2).arg("EX").arg(100).query(&mut con).expect("set ex");
    let _: Option<String> = con.get("a").expect("hit");
    let _: Option<String> = con.get("nope").expect("miss");
    let info: String = redis::cmd("INFO").arg("everything").query(&mut con).expect("info");
    let keyspace = info_field(&info, "db0");
    assert!(keyspace.starts_with("keys=2,expires=1,avg_ttl="), "{keyspace}");
    assert!(info_field(&info, "used_memory").parse::<u64>().expect("number") > 0);
    assert!(info_field(&info, "used_memory_rss").parse::<u64>().expect("number") > 0);
    assert_eq!(info_field(&info, "keyspace_hits"), "1");
    assert_eq!(info_field(&info, "keyspace_misses"), "1");
    assert_eq!(info_field(&info, "process_id"), kvd.pid().to_string());
    assert!(info_field(&info, "cmdstat_set").starts_with("calls=2,"), "{info}");
    assert!(info_field(&info, "latency_percentiles_usec_get").starts_with("p50="), "{info}");
    assert!(info_field(&info, "total_commands_processed").parse::<u64>().expect("number") >= 4);
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let saved_s: u64 = info_field(&info, "rdb_last_save_time").parse().expect("number");
    assert!(saved_s <= now_s && now_s - saved_s < 120, "the last checkpoint, at open: {saved_s} vs now {now_s}");
}

#[test]
fn a_value_over_the_limit_is_answered_and_the_connection_goes_on() {
    // SET of a 20 MiB value: kvd reads past it, answers an error the client can read, then PING.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut stream = UnixStream::connect(kvd.socket()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let len = 20 * 1024 * 1024;
    let mut request = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${len}\r\n").into_bytes();
    request.extend(std::iter::repeat_n(b'x', len));
    request.extend_from_slice(b"\r\nPING\r\n");
    stream.write_all(&request).expect("kvd reads the whole value: no broken pipe");
    let mut reply = vec![0u8; 256];
    let mut got = 0;
    while !String::from_utf8_lossy(&reply[..got]).contains("+PONG") {
        let n = stream.read(&mut reply[got..]).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&reply[..got]));
        got += n;
    }
    let reply = String::from_utf8_lossy(&reply[..got]);
    assert!(reply.starts_with("-ERR bulk string of 20971520 bytes is over kvd's limit"), "{reply}");
    assert!(reply.ends_with("+PONG\r\n"), "{reply}");
}
