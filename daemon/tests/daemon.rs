//! kvd end to end: the real binary on a temp dir, driven over its socket
//! with the protocol crate (kvctl's own tests drive it through kvctl).

mod common;

use blockkv_protocol::handshake::REPLY_BYTES;
use blockkv_protocol::{ErrorKind, HandshakeReply, Request, Response, TtlReply, read_message};
use blockkv_testkit::{Client, temp_dir};
use common::start;
use rustix::process::{Pid, Signal, kill_process};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn call(client: &mut Client, request: Request) -> Response {
    client.call(&request).unwrap_or_else(|err| panic!("{}: {err}", request.name()))
}

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put { key: key.to_vec(), value: value.to_vec(), ttl_ms: None }
}

fn get(key: &[u8]) -> Request {
    Request::Get { key: key.to_vec() }
}

#[test]
fn crud_and_a_one_mib_binary_value_round_trip() {
    // The basic commands over the socket, and a value of every byte value.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    assert_eq!(call(&mut c, Request::Ping), Response::Pong);
    assert_eq!(call(&mut c, put(b"k", b"v")), Response::Done);
    assert_eq!(call(&mut c, get(b"k")), Response::Value(Some(b"v".to_vec())));
    assert_eq!(call(&mut c, Request::Exists { key: b"k".to_vec() }), Response::Exists(true));
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(call(&mut c, put(b"big", &big)), Response::Done);
    assert_eq!(call(&mut c, get(b"big")), Response::Value(Some(big)));
    assert_eq!(call(&mut c, Request::Delete { key: b"k".to_vec() }), Response::Deleted(true));
    assert_eq!(call(&mut c, get(b"k")), Response::Value(None));
    match call(&mut c, Request::Scan { prefix: b"b".to_vec(), start_after: None, limit: 10, values: false }) {
        Response::Keys { items, more } => {
            assert_eq!(items.len(), 1);
            assert!(!more);
        }
        other => panic!("scan: {other:?}"),
    }
    match call(&mut c, Request::Stats) {
        Response::Stats(stats) => {
            assert!(stats.commands.iter().any(|c| c.name == "put" && c.calls == 2), "{:?}", stats.commands);
            assert_eq!(stats.store.keys, 1);
        }
        other => panic!("stats: {other:?}"),
    }
    let (status, _) = kvd.stop();
    assert!(status.success());
}

#[test]
fn data_survives_a_restart_and_sigterm_is_a_clean_exit() {
    // SIGTERM: exit 0, socket removed, the next start serves the same data.
    let dir = temp_dir();
    let kvd = start(dir.path(), &["--sync", "always"]);
    let mode = std::fs::metadata(kvd.socket()).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let mut c = kvd.client();
    for i in 0..100 {
        assert_eq!(call(&mut c, put(format!("k{i}").as_bytes(), b"value")), Response::Done);
    }
    drop(c);
    let socket = kvd.socket().to_path_buf();
    let (status, stderr) = kvd.stop();
    assert!(status.success(), "exit status {status:?}\n{stderr}");
    assert!(stderr.contains("clean shutdown"), "{stderr}");
    assert!(!socket.exists(), "socket removed on exit");
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    assert_eq!(call(&mut c, get(b"k99")), Response::Value(Some(b"value".to_vec())));
    kvd.stop_cleanly();
}

#[test]
fn ttl_expires_on_the_real_clock() {
    // A key with a TTL answers until it expires, then is gone.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    let request = Request::Put { key: b"s".to_vec(), value: b"v".to_vec(), ttl_ms: Some(300) };
    assert_eq!(call(&mut c, request), Response::Done);
    assert!(matches!(call(&mut c, Request::Ttl { key: b"s".to_vec() }), Response::Ttl(TtlReply::ExpiresInMs(_))));
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&mut c, get(b"s")) != Response::Value(None) {
        assert!(Instant::now() < deadline, "key did not expire");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(call(&mut c, Request::Ttl { key: b"s".to_vec() }), Response::Ttl(TtlReply::Missing));
    kvd.stop_cleanly();
}

#[test]
fn a_second_kvd_on_the_same_file_is_refused_with_file_and_pid() {
    // The data file's lock: the second daemon names the file and the holder.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_kvd"))
        .arg("--data")
        .arg(dir.path().join("data.kvdata"))
        .arg("--socket")
        .arg(dir.path().join("other.sock"))
        .output()
        .expect("run second kvd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("data.kvdata"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", kvd.pid())), "{stderr}");
    // The first one is untouched.
    assert_eq!(call(&mut kvd.client(), Request::Ping), Response::Pong);
    kvd.stop_cleanly();
}

#[test]
fn a_live_socket_is_never_stolen_and_a_stale_one_is_replaced() {
    // Same socket, other data file: refused while the first kvd lives.
    let dir = temp_dir();
    let other = temp_dir();
    let kvd = start(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_kvd"))
        .arg("--data")
        .arg(other.path().join("data.kvdata"))
        .arg("--socket")
        .arg(kvd.socket())
        .output()
        .expect("run second kvd");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("in use by a running kvd"));
    assert_eq!(call(&mut kvd.client(), Request::Ping), Response::Pong, "the first kvd still serves");
    kvd.stop_cleanly();
    // A socket file nobody listens on (a crashed kvd's) is replaced.
    let stale = other.path().join("kvd.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    let kvd = start(other.path(), &[]);
    assert_eq!(call(&mut kvd.client(), Request::Ping), Response::Pong);
    kvd.stop_cleanly();
}

#[test]
fn sighup_reopens_the_log_file() {
    // logrotate: move the log away, SIGHUP, and new lines go to a new file.
    let dir = temp_dir();
    let log = dir.path().join("kvd.log");
    let kvd = start(dir.path(), &["--log-file", log.to_str().expect("utf-8 path")]);
    std::fs::rename(&log, dir.path().join("kvd.log.1")).expect("rotate");
    kvd.signal(Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("log file reopened")) {
        assert!(Instant::now() < deadline, "no new log file after SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::fs::read_to_string(dir.path().join("kvd.log.1")).expect("old log").contains("listening"));
    let (status, _) = kvd.stop();
    assert!(status.success());
    assert!(std::fs::read_to_string(&log).expect("log").contains("clean shutdown"));
}

#[test]
fn hostile_clients_are_cut_off_without_hurting_others() {
    // Garbage, a huge length prefix, half a frame then silence, a client
    // killed mid-request: each is dealt with; a well-behaved client is served.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut good = kvd.client();
    assert_eq!(call(&mut good, put(b"k", b"v")), Response::Done);

    // Garbage before any hello (read as RESP, since it is not the native
    // magic): one short protocol error, then the connection closes.
    let mut garbage = UnixStream::connect(kvd.socket()).expect("connect");
    garbage.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    garbage.write_all(b"*\xff\xfe garbage that is no hello at all\r\n").expect("send");
    let mut reply = Vec::new();
    garbage.read_to_end(&mut reply).expect("closed, not hung");
    assert!(reply.starts_with(b"-ERR"), "{:?}", String::from_utf8_lossy(&reply));
    // The native magic with a version we do not speak: a version refusal.
    let mut wrong = UnixStream::connect(kvd.socket()).expect("connect");
    wrong.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut hello = blockkv_protocol::MAGIC.to_vec();
    hello.extend_from_slice(&999u16.to_le_bytes());
    wrong.write_all(&hello).expect("send");
    let mut reply = Vec::new();
    wrong.read_to_end(&mut reply).expect("closed, not hung");
    assert_eq!(reply.len(), REPLY_BYTES);
    let mut fixed = [0u8; REPLY_BYTES];
    fixed.copy_from_slice(&reply);
    assert!(matches!(HandshakeReply::decode(&fixed), Ok(HandshakeReply::VersionRefused { .. })));

    // A 4 GiB length prefix: a BadRequest answer, then closed.
    let mut huge = kvd.client();
    huge.stream().write_all(&u32::MAX.to_le_bytes()).expect("send");
    match read_message::<_, Response>(huge.stream()).expect("answer") {
        Some(Response::Error { kind: ErrorKind::BadRequest, .. }) => {}
        other => panic!("expected BadRequest, got {other:?}"),
    }
    assert!(read_message::<_, Response>(huge.stream()).expect("closed cleanly").is_none());

    // Half a frame, then silence: held, and nobody else waits for it.
    let mut half = kvd.client();
    half.stream().write_all(&[200, 0, 0, 0, 1, 2, 3]).expect("send");

    // Killed mid-request: a put frame cut in the middle, then gone.
    let mut killed = kvd.client();
    let mut frame = Vec::new();
    blockkv_protocol::frame_message(&put(b"x", &[7u8; 10_000]), &mut frame).expect("frame");
    killed.stream().write_all(&frame[..frame.len() / 2]).expect("send");
    drop(killed);

    assert_eq!(call(&mut good, get(b"k")), Response::Value(Some(b"v".to_vec())));
    assert_eq!(call(&mut good, get(b"x")), Response::Value(None), "the cut put never happened");
    drop(half);
    let (status, _) = kvd.stop();
    assert!(status.success());
}

#[test]
fn over_the_connection_limit_is_a_clear_busy() {
    // CONNECTIONS_MAX: the next client is told Busy, not left hanging.
    let dir = temp_dir();
    let kvd = start(dir.path(), &["--max-connections", "3"]);
    let held: Vec<Client> = (0..3).map(|_| kvd.client()).collect();
    let mut extra = UnixStream::connect(kvd.socket()).expect("connect");
    extra.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut reply = [0u8; REPLY_BYTES];
    extra.read_exact(&mut reply).expect("a reply");
    assert!(matches!(HandshakeReply::decode(&reply), Ok(HandshakeReply::Busy { .. })));
    drop(held);
    kvd.stop_cleanly();
}

#[test]
fn a_thousand_concurrent_connections_are_served() {
    // 1,000 clients connected at once, each doing a put and a get.
    let dir = temp_dir();
    let kvd = start(dir.path(), &["--max-connections", "1100"]);
    let mut clients: Vec<Client> = (0..1000).map(|_| kvd.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&put(format!("c{i}").as_bytes(), b"v")).expect("send");
    }
    for c in clients.iter_mut() {
        assert_eq!(c.receive().expect("receive"), Response::Done);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(call(c, get(format!("c{i}").as_bytes())), Response::Value(Some(b"v".to_vec())));
    }
    match call(&mut clients[0], Request::Stats) {
        Response::Stats(stats) => assert!(stats.server.connections_open >= 1000, "{:?}", stats.server),
        other => panic!("stats: {other:?}"),
    }
    drop(clients);
    let (status, _) = kvd.stop();
    assert!(status.success());
}

/// Field `index` (1-based, as in proc(5)) of /proc/PID/stat.
fn proc_stat_field(pid: u32, index: usize) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(index - 3)?.parse().ok()
}

/// The state letter of /proc/PID/stat (R, S, Z, ...), None if gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[test]
fn daemonize_detaches_for_real_and_writes_the_pidfile() {
    // --daemonize: the command returns once the daemon serves; the daemon
    // has its own session, no terminal, cwd /, stdio on /dev/null.
    let dir = temp_dir();
    let pidfile = dir.path().join("kvd.pid");
    let socket = dir.path().join("kvd.sock");
    let data = dir.path().join("data.kvdata");
    let started = Command::new(env!("CARGO_BIN_EXE_kvd"))
        .arg("--daemonize")
        .arg("--data")
        .arg(&data)
        .arg("--socket")
        .arg(&socket)
        .arg("--pidfile")
        .arg(&pidfile)
        .args(["--size", "8MiB"])
        .output()
        .expect("run kvd --daemonize");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    // Ready means ready: the pidfile exists and the socket answers now.
    let pid: u32 = std::fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("a pid");
    let mut c = Client::connect(&socket).expect("connect right after the command returned");
    assert_eq!(call(&mut c, Request::Ping), Response::Pong);
    let our_session = proc_stat_field(std::process::id(), 6).expect("our session");
    assert_ne!(proc_stat_field(pid, 6), Some(our_session), "a new session");
    assert_eq!(proc_stat_field(pid, 7), Some(0), "no controlling terminal");
    assert_ne!(proc_stat_field(pid, 6), Some(i64::from(pid)), "not a session leader (second fork)");
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/cwd")).expect("cwd"), Path::new("/"));
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("stdin"), Path::new("/dev/null"));
    assert!(data.with_extension("log").exists(), "logs go to a file when daemonized");

    // A second daemon on the same data file: refused, with file and pid.
    let second = Command::new(env!("CARGO_BIN_EXE_kvd"))
        .arg("--daemonize")
        .arg("--data")
        .arg(&data)
        .arg("--socket")
        .arg(dir.path().join("second.sock"))
        .output()
        .expect("run a second kvd");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("data.kvdata") && stderr.contains(&format!("pid {pid}")), "{stderr}");

    drop(c);
    kill_process(Pid::from_raw(pid as i32).expect("pid"), Signal::TERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    // Gone, or a zombie nobody has reaped yet: either way it has exited.
    while proc_state(pid).is_some_and(|state| state != 'Z') {
        assert!(Instant::now() < deadline, "daemon did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pidfile.exists(), "pidfile removed at exit");
    assert!(!socket.exists(), "socket removed at exit");
}

#[test]
fn half_a_frame_then_silence_is_closed_after_the_timeout() {
    // A slow-loris client: four bytes of a 200-byte frame, then nothing.
    let dir = temp_dir();
    let kvd = start(dir.path(), &["--partial-timeout-ms", "300"]);
    let mut slow = kvd.client();
    slow.stream().write_all(&[200, 0, 0, 0, 1, 2, 3, 4]).expect("send");
    let mut idle = kvd.client(); // idle, but holding nothing partial: kept
    let mut rest = Vec::new();
    slow.stream().read_to_end(&mut rest).expect("closed by kvd, not hung");
    assert!(rest.is_empty(), "no answer to half a frame");
    assert_eq!(call(&mut idle, Request::Ping), Response::Pong, "an idle client is not cut off");
    kvd.stop_cleanly();
}

#[test]
fn kvd_never_serves_a_damaged_value() {
    // One flipped bit inside a stored value, between two runs of kvd: the
    // GET is a `corrupt` error, never the damaged bytes; other keys still read.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    let value_of = |i: u32| format!("value-of-key-{i:02}-").repeat(8).into_bytes();
    for i in 0..40u32 {
        assert_eq!(call(&mut c, put(format!("key-{i:02}").as_bytes(), &value_of(i))), Response::Done);
    }
    drop(c);
    assert!(kvd.stop().0.success());

    let data = dir.path().join("data.kvdata");
    let mut bytes = std::fs::read(&data).expect("read data file");
    let victim = value_of(17);
    let at = bytes.windows(victim.len()).position(|w| w == victim.as_slice()).expect("the value is on disk");
    bytes[at + 50] ^= 0x04;
    std::fs::write(&data, &bytes).expect("write damaged file");

    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    match call(&mut c, get(b"key-17")) {
        Response::Error { kind: ErrorKind::Corrupt, .. } => {}
        other => panic!("a damaged value must be an error, got {other:?}"),
    }
    for i in (0..40u32).filter(|&i| i != 17) {
        assert_eq!(call(&mut c, get(format!("key-{i:02}").as_bytes())), Response::Value(Some(value_of(i))), "key {i}");
    }
    assert!(kvd.stop().0.success());
}

#[test]
fn compact_reclaims_space_and_keeps_every_value() {
    // COMPACT over the socket after heavy overwrites: blocks come back, STATS
    // says so, and every value reads the same before and after a restart.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    let value_of = |i: u32, round: u32| format!("{i}-{round}-").repeat(40).into_bytes();
    for round in 0..6u32 {
        for i in 0..500u32 {
            assert_eq!(call(&mut c, put(format!("k{i}").as_bytes(), &value_of(i, round))), Response::Done);
        }
    }
    let free_before = match call(&mut c, Request::Stats) {
        Response::Stats(stats) => stats.space.blocks_free,
        other => panic!("stats: {other:?}"),
    };
    assert_eq!(call(&mut c, Request::Compact), Response::Done);
    match call(&mut c, Request::Stats) {
        Response::Stats(stats) => {
            assert!(stats.compaction.blocks_reclaimed > 0, "{:?}", stats.compaction);
            assert!(stats.space.blocks_free > free_before, "free {free_before} -> {}", stats.space.blocks_free);
            assert!(stats.compaction.write_amplification_milli > 0);
        }
        other => panic!("stats: {other:?}"),
    }
    for i in 0..500u32 {
        assert_eq!(call(&mut c, get(format!("k{i}").as_bytes())), Response::Value(Some(value_of(i, 5))));
    }
    drop(c);
    assert!(kvd.stop().0.success());
    let kvd = start(dir.path(), &[]);
    let mut c = kvd.client();
    for i in 0..500u32 {
        assert_eq!(call(&mut c, get(format!("k{i}").as_bytes())), Response::Value(Some(value_of(i, 5))));
    }
    assert!(kvd.stop().0.success());
}

#[test]
fn kvd_runs_with_its_malloc_tunables_under_its_own_pid() {
    // kvd executes itself again once at start with glibc malloc tunables
    // (daemon/src/malloc.rs): the process the parent started carries them.
    let dir = temp_dir();
    let kvd = start(dir.path(), &[]);
    let environ = std::fs::read(format!("/proc/{}/environ", kvd.pid())).expect("environ");
    let vars: Vec<String> = environ.split(|&b| b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    assert!(vars.iter().any(|v| v == "BLOCKKV_MALLOC_TUNED=1"), "{vars:?}");
    assert!(
        vars.iter().any(|v| v.starts_with("GLIBC_TUNABLES=") && v.contains("glibc.malloc.mmap_threshold")),
        "{vars:?}"
    );
    let (status, stderr) = kvd.stop();
    assert!(status.success(), "{stderr}");
}
