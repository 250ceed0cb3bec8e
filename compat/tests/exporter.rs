//! Debian's prometheus-redis-exporter scraping redis-server, then kvd, over
//! the Unix socket: its /metrics (on a free localhost port) must say the
//! server is up, count db0's keys as DBSIZE does, show memory in use and
//! commands processed, and its log must hold no error line.
//!
//! Against kvd the checks of [`PENDING_ON_KVD`] are not asserted (and are
//! named on the output) unless `BLOCKKV_COMPAT_STRICT=1`.

use blockkv_compat::tools::{not_run_against_kvd, runs, skipped, strict};
use blockkv_compat::{Connection, RedisServer, Reply};
use blockkv_testkit::{Kvd, temp_dir};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXPORTER: &str = "prometheus-redis-exporter";

/// How long the exporter may take to serve its first /metrics.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys written before the scrape.
const KEY_COUNT: usize = 5;

/// Checks kvd does not pass yet, with what it lacks.
const PENDING_ON_KVD: &[(&str, &str)] = &[];

/// The exporter, killed when dropped.
struct Exporter {
    child: Child,
    port: u16,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn start_exporter(socket: &Path, log: &Path) -> Exporter {
    let port = free_port();
    let log_file = std::fs::File::create(log).expect("the exporter's log");
    let child = Command::new(EXPORTER)
        .arg("-redis.addr")
        .arg(format!("unix://{}", socket.display()))
        .arg("-web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {EXPORTER}: {err}"));
    Exporter { child, port }
}

/// GET /metrics, as `name{labels}` to value.
fn scrape(port: u16) -> Result<HashMap<String, f64>, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|err| format!("connect: {err}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).map_err(|err| err.to_string())?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|err| format!("send: {err}"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|err| format!("read: {err}"))?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {head}"));
    }
    Ok(body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect())
}

fn scrape_when_ready(exporter: &Exporter) -> HashMap<String, f64> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match scrape(exporter.port) {
            Ok(metrics) => return metrics,
            Err(why) => assert!(Instant::now() < deadline, "{EXPORTER} did not serve /metrics in time: {why}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every check against `socket`'s server not in `skip`; returns the failures.
fn check_server(server: &str, socket: &Path, dir: &Path, skip: &[&str]) -> Vec<String> {
    let mut con = Connection::connect(socket).expect("connect");
    for i in 0..KEY_COUNT {
        assert_eq!(con.call(&["SET", &format!("key:{i}"), "v"]).expect("set"), Reply::Simple("OK".into()));
    }
    let dbsize = match con.call(&["DBSIZE"]).expect("dbsize") {
        Reply::Integer(n) => n as f64,
        other => panic!("DBSIZE answered {}", other.show()),
    };
    let log = dir.join("exporter.log");
    let exporter = start_exporter(socket, &log);
    let metrics = scrape_when_ready(&exporter);
    drop(exporter);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let get = |name: &str| metrics.get(name).copied();
    let checks: [(&str, bool, String); 5] = [
        ("up", get("redis_up") == Some(1.0), format!("redis_up is {:?}, want 1", get("redis_up"))),
        (
            "db_keys",
            get("redis_db_keys{db=\"db0\"}") == Some(dbsize),
            format!("redis_db_keys{{db=\"db0\"}} is {:?}, DBSIZE {dbsize}", get("redis_db_keys{db=\"db0\"}")),
        ),
        (
            "memory",
            get("redis_memory_used_bytes").is_some_and(|n| n > 0.0),
            format!("redis_memory_used_bytes is {:?}, want > 0", get("redis_memory_used_bytes")),
        ),
        (
            "commands",
            get("redis_commands_processed_total").is_some_and(|n| n > 0.0),
            format!("redis_commands_processed_total is {:?}, want > 0", get("redis_commands_processed_total")),
        ),
        ("log", !log_text.contains("level=error"), format!("error lines in its log:\n{log_text}")),
    ];
    let mut failures = Vec::new();
    for (name, passed, why) in checks {
        if skip.contains(&name) {
            continue;
        }
        if passed {
            println!("ok {name} against {server}");
        } else {
            failures.push(format!("{name} against {server}: {why}"));
        }
    }
    failures
}

#[test]
fn prometheus_redis_exporter_reads_kvd_as_it_reads_redis_server() {
    // The exporter's up, keys, memory and command metrics are right, with no error logged.
    for program in [EXPORTER, "redis-server"] {
        if let Err(why) = runs(program, if program == EXPORTER { "-version" } else { "--version" }) {
            return skipped("prometheus_redis_exporter", &why);
        }
    }
    let dir = temp_dir();
    let server = RedisServer::start(dir.path());
    let failures = check_server("redis-server", server.socket(), dir.path(), &[]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let dir = temp_dir();
    let kvd = Kvd::start(dir.path(), &[]);
    let skip: Vec<&str> = if strict() { Vec::new() } else { PENDING_ON_KVD.iter().map(|(check, _)| *check).collect() };
    let failures = check_server("kvd", kvd.socket(), dir.path(), &skip);
    not_run_against_kvd("prometheus_redis_exporter", &skip);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
