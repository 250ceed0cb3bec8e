//! redis-cli's modes beyond plain commands, against redis-server first and
//! then kvd: `--scan --pattern`, `--bigkeys`, `--memkeys`, `--stat`, `-3`
//! (RESP3), `help`, and `monitor` seeing another client's command.
//!
//! Against kvd the modes of [`PENDING_ON_KVD`] are not run (and are named
//! on the output) unless `BLOCKKV_COMPAT_STRICT=1`.

use blockkv_compat::tools::{not_run_against_kvd, runs, skipped, strict};
use blockkv_compat::{Connection, RedisServer, Reply};
use blockkv_testkit::{Kvd, temp_dir};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The size of the biggest value the keyspace holds.
const BIG_BYTES: usize = 1000;

/// Modes kvd does not pass yet, with what it lacks.
const PENDING_ON_KVD: &[(&str, &str)] = &[];

type Check = fn(&Path) -> Result<(), String>;

const MODES: [(&str, Check); 7] = [
    ("scan_pattern", scan_pattern),
    ("bigkeys", bigkeys),
    ("memkeys", memkeys),
    ("stat", stat),
    ("resp3", resp3),
    ("help", help),
    ("monitor", monitor),
];

/// `redis-cli -s SOCKET ARGS…`: its stdout when it exits 0.
fn cli(socket: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .map_err(|err| format!("run redis-cli: {err}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "redis-cli {args:?} exited {}: {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

fn contains(what: &str, output: &str, needle: &str) -> Result<(), String> {
    if output.contains(needle) { Ok(()) } else { Err(format!("{what}: no {needle:?} in:\n{output}")) }
}

/// Four string keys, `big` the largest.
fn fill(socket: &Path) {
    let mut con = Connection::connect(socket).expect("connect");
    let big = "v".repeat(BIG_BYTES);
    for (key, value) in [("a1", "x"), ("b1", "yy"), ("c2", "zzz"), ("big", big.as_str())] {
        assert_eq!(con.call(&["SET", key, value]).expect("set"), Reply::Simple("OK".into()));
    }
}

fn scan_pattern(socket: &Path) -> Result<(), String> {
    let out = cli(socket, &["--scan", "--pattern", "*1"])?;
    let mut keys: Vec<&str> = out.lines().collect();
    keys.sort();
    if keys == ["a1", "b1"] { Ok(()) } else { Err(format!("--scan --pattern '*1': got {keys:?}, want [a1, b1]")) }
}

fn bigkeys(socket: &Path) -> Result<(), String> {
    let out = cli(socket, &["--bigkeys"])?;
    contains("--bigkeys", &out, &format!("Biggest string found '\"big\"' has {BIG_BYTES} bytes"))?;
    contains("--bigkeys", &out, &format!("4 strings with {} bytes", BIG_BYTES + 6))
}

fn memkeys(socket: &Path) -> Result<(), String> {
    let out = cli(socket, &["--memkeys"])?;
    let line = out
        .lines()
        .find(|line| line.starts_with("Biggest string found '\"big\"' has "))
        .ok_or_else(|| format!("--memkeys: no line on the biggest string in:\n{out}"))?;
    let bytes: Option<usize> = line.split_whitespace().nth(5).and_then(|n| n.parse().ok());
    if bytes.is_none_or(|n| n < BIG_BYTES) {
        return Err(format!("--memkeys: the biggest string's bytes should be at least its value's: {line}"));
    }
    contains("--memkeys", &out, "4 strings with")
}

/// `--stat -i 0.1` for about a second: every row has 4 keys, a memory figure
/// such as `1.56M` or `870.00K` (not negative, not garbage) and counts that
/// are not negative.
fn stat(socket: &Path) -> Result<(), String> {
    // stdbuf: redis-cli buffers its rows when stdout is a pipe, and a kill loses them.
    let mut child = Command::new("stdbuf")
        .args(["-o0", "redis-cli", "-s"])
        .arg(socket)
        .args(["--stat", "-i", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("run stdbuf redis-cli: {err}"))?;
    std::thread::sleep(Duration::from_millis(1000));
    let _ = child.kill();
    let output = child.wait_with_output().map_err(|err| format!("wait for redis-cli: {err}"))?;
    let out = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.first().is_some_and(|c| c.parse::<u64>().is_ok()))
        .collect();
    if rows.len() < 3 {
        return Err(format!("--stat: fewer than 3 rows in a second:\n{out}"));
    }
    for row in &rows {
        let mem_ok = row.get(1).is_some_and(|mem| {
            let digits = mem.trim_end_matches(['B', 'K', 'M', 'G']);
            digits.len() < mem.len() && digits.parse::<f64>().is_ok_and(|n| n >= 0.0)
        });
        let counts_ok = row.get(2..4).is_some_and(|cols| cols.iter().all(|c| c.parse::<u64>().is_ok()));
        if row[0] != "4" || !mem_ok || !counts_ok {
            return Err(format!(
                "--stat: a row with 4 keys, a memory figure and counts wanted, got {row:?} in:\n{out}"
            ));
        }
    }
    Ok(())
}

fn resp3(socket: &Path) -> Result<(), String> {
    let set = cli(socket, &["-3", "set", "k3", "v3"])?;
    let get = cli(socket, &["-3", "get", "k3"])?;
    if set.trim_end() != "OK" || get.trim_end() != "v3" {
        return Err(format!("-3 set/get: got {set:?} and {get:?}"));
    }
    let hello = cli(socket, &["-3", "hello", "3"])?;
    contains("-3 hello 3", &hello, "\nproto 3\n")
}

fn help(socket: &Path) -> Result<(), String> {
    let out = cli(socket, &["help", "get"])?;
    contains("help get", &out, "Get the value of a key")
}

/// A `redis-cli monitor` sees a SET that another client sends.
fn monitor(socket: &Path) -> Result<(), String> {
    let mut child = Command::new("stdbuf")
        .args(["-oL", "redis-cli", "-s"])
        .arg(socket)
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("run redis-cli monitor: {err}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait = |want: &dyn Fn(&str) -> bool, what: &str| -> Result<(), String> {
        let mut seen = Vec::new();
        loop {
            match received.recv_timeout(Duration::from_secs(5)) {
                Ok(line) if want(&line) => return Ok(()),
                Ok(line) => seen.push(line),
                Err(_) => return Err(format!("monitor: no {what} within 5 s; it printed {seen:?}")),
            }
        }
    };
    let result = wait(&|line| line == "OK", "OK").and_then(|()| {
        let mut con = Connection::connect(socket).map_err(|err| format!("connect: {err}"))?;
        con.call(&["SET", "monitored", "1"]).map_err(|err| format!("set: {err}"))?;
        wait(&|line| line.contains("\"SET\" \"monitored\" \"1\""), "line for SET monitored 1")
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    result
}

/// Runs every mode in `modes` on a fresh keyspace of `socket`'s server;
/// returns the failures.
fn run_modes(server: &str, socket: &Path, skip: &[&str]) -> Vec<String> {
    fill(socket);
    let mut failures = Vec::new();
    for (name, check) in MODES {
        if skip.contains(&name) {
            continue;
        }
        match check(socket) {
            Ok(()) => println!("ok {name} against {server}"),
            Err(why) => failures.push(format!("{name} against {server}: {why}")),
        }
    }
    failures
}

#[test]
fn redis_cli_modes_work_against_redis_server_and_kvd() {
    // Each redis-cli mode gives redis-server's result on kvd too.
    for (program, arg) in [("redis-cli", "--version"), ("redis-server", "--version"), ("stdbuf", "--version")] {
        if let Err(why) = runs(program, arg) {
            return skipped("redis_cli_modes", &why);
        }
    }
    let dir = temp_dir();
    let server = RedisServer::start(dir.path());
    let failures = run_modes("redis-server", server.socket(), &[]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let dir = temp_dir();
    let kvd = Kvd::start(dir.path(), &[]);
    let skip: Vec<&str> = if strict() { Vec::new() } else { PENDING_ON_KVD.iter().map(|(mode, _)| *mode).collect() };
    let failures = run_modes("kvd", kvd.socket(), &skip);
    not_run_against_kvd("redis_cli_modes", &skip);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
