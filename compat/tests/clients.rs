//! One scenario per Redis client library, the same steps in each (connect
//! with the library's defaults, RESP3 and RESP2; CRUD; TTLs; a pipeline;
//! WATCH with a conflict and without; a runtime error inside MULTI; SCAN with
//! a glob MATCH; INFO; the client name; FLUSHDB), run against redis-server
//! first and then against kvd. redis-py, node-redis and ioredis run as the
//! scripts in `compat/clients/`; the Rust `redis` crate's scenario is here.
//!
//! Against kvd, the steps of [`PENDING_ON_KVD`] are skipped (and named on
//! the output) unless `BLOCKKV_COMPAT_STRICT=1`, and the steps after the
//! connect steps speak RESP2, which kvd serves today; strict runs them with
//! the library's defaults, as against redis-server.

use blockkv_compat::RedisServer;
use blockkv_compat::tools::{clients_dir, not_run_against_kvd, runs, scripts_dir, skipped, strict};
use blockkv_testkit::{Kvd, temp_dir};
use redis::{Commands, Connection, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Steps every library's scenario has, in order.
const STEPS: [&str; 13] = [
    "connect_default",
    "connect_resp3",
    "connect_resp2",
    "crud",
    "ttl",
    "pipeline",
    "watch_conflict",
    "watch_success",
    "transaction_runtime_error",
    "scan_match",
    "info",
    "client_name",
    "flushdb",
];

/// Steps kvd does not pass yet, per library, with what it lacks. A step
/// leaves this table when kvd passes it under `BLOCKKV_COMPAT_STRICT=1`.
const PENDING_ON_KVD: &[(&str, &str, &str)] = &[];

/// The steps of `library` that kvd does not pass yet.
fn pending(library: &str) -> Vec<&'static str> {
    PENDING_ON_KVD.iter().filter(|(lib, _, _)| *lib == "*" || *lib == library).map(|(_, step, _)| *step).collect()
}

/// A scenario script and what runs it.
struct Script {
    library: &'static str,
    interpreter: PathBuf,
    file: &'static str,
    node_modules: Option<PathBuf>,
}

fn python_script() -> Result<Script, String> {
    let python = clients_dir().join("venv/bin/python");
    if !python.exists() {
        return Err(format!("{} is missing; `make test-deps` builds the venv", python.display()));
    }
    Ok(Script { library: "redis-py", interpreter: python, file: "redis_py.py", node_modules: None })
}

fn node_script(library: &'static str, file: &'static str) -> Result<Script, String> {
    runs("node", "--version")?;
    let modules = clients_dir().join("node/node_modules");
    if !modules.is_dir() {
        return Err(format!("{} is missing; `make test-deps` installs it", modules.display()));
    }
    Ok(Script { library, interpreter: "node".into(), file, node_modules: Some(modules) })
}

/// How long one scenario script may run (it takes about a second) before it
/// is killed and the test fails: a client that waits forever on a server
/// must not hang the suite.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` with its output in files (no pipe to fill); its exit
/// status (None when killed at [`SCRIPT_TIMEOUT`]), stdout and stderr.
fn run_bounded(mut command: Command, what: &str) -> (Option<std::process::ExitStatus>, String, String) {
    let dir = temp_dir();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut child = command.stdout(out).stderr(err).spawn().unwrap_or_else(|err| panic!("run {what}: {err}"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    (status, read(&out_path), read(&err_path))
}

/// Runs the script against `socket`; panics, with its output, if a step fails.
fn run_script(script: &Script, server: &str, socket: &Path, protocol: &str, skip: &[&str]) {
    let mut command = Command::new(&script.interpreter);
    command.arg(scripts_dir().join(script.file)).arg(socket).args(["--protocol", protocol]);
    if !skip.is_empty() {
        command.args(["--skip", &skip.join(",")]);
    }
    if let Some(modules) = &script.node_modules {
        command.env("BLOCKKV_NODE_MODULES", modules);
    }
    let (status, stdout, stderr) = run_bounded(command, script.file);
    println!("--- {} against {server}, protocol {protocol}:\n{stdout}", script.library);
    assert!(
        status.is_some_and(|status| status.success()),
        "{} against {server} (protocol {protocol}) failed ({}):\n{stdout}\n{stderr}",
        script.library,
        status.map_or_else(|| format!("killed after {SCRIPT_TIMEOUT:?}"), |status| status.to_string()),
    );
    let ran = stdout.lines().filter(|line| line.starts_with("ok ")).count();
    assert_eq!(ran, STEPS.len() - skip.len(), "every step not skipped says ok:\n{stdout}");
}

/// The scenario against a fresh redis-server (library defaults and RESP2),
/// then against a fresh kvd.
fn scenario(test: &str, script: Result<Script, String>) {
    let script = match (script, runs("redis-server", "--version")) {
        (Ok(script), Ok(())) => script,
        (Err(why), _) | (_, Err(why)) => return skipped(test, &why),
    };
    for protocol in ["default", "2"] {
        let dir = temp_dir();
        let server = RedisServer::start(dir.path());
        run_script(&script, "redis-server", server.socket(), protocol, &[]);
    }
    let dir = temp_dir();
    let kvd = Kvd::start(dir.path(), &[]);
    if strict() {
        run_script(&script, "kvd", kvd.socket(), "default", &[]);
    } else {
        let skip = pending(script.library);
        run_script(&script, "kvd", kvd.socket(), "2", &skip);
        not_run_against_kvd(&format!("{test} ({})", script.library), &skip);
    }
}

#[test]
fn redis_py_scenario_passes_on_redis_server_and_kvd() {
    // redis-py (the venv `make test-deps` builds) runs every step against both servers.
    scenario("redis_py_scenario", python_script());
}

#[test]
fn node_redis_scenario_passes_on_redis_server_and_kvd() {
    // node-redis (target/clients/node) runs every step against both servers.
    scenario("node_redis_scenario", node_script("node-redis", "node_redis.mjs"));
}

#[test]
fn ioredis_scenario_passes_on_redis_server_and_kvd() {
    // ioredis (target/clients/node) runs every step against both servers.
    scenario("ioredis_scenario", node_script("ioredis", "ioredis.mjs"));
}

// The Rust `redis` crate's scenario: the same steps, in the same order, with
// the same keys as the scripts.

type StepResult = Result<(), String>;

fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> StepResult {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, want {want:?}")) }
}

fn fail<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// A connection: `protocol` "default" is the crate's own default (RESP2),
/// "3" and "2" ask for that protocol in the URL.
fn connect(socket: &Path, protocol: &str) -> Result<Connection, String> {
    let query = match protocol {
        "default" => "",
        "3" => "?protocol=resp3",
        _ => "?protocol=resp2",
    };
    let client = redis::Client::open(format!("redis+unix://{}{query}", socket.display())).map_err(fail("client"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(10)).map_err(fail("connect"))?;
    Ok(con)
}

fn connect_with(socket: &Path, protocol: &str) -> StepResult {
    let mut con = connect(socket, protocol)?;
    let key = format!("connect:{protocol}");
    check("ping", redis::cmd("PING").query::<String>(&mut con).map_err(fail("ping"))?, "PONG".into())?;
    let () = con.set(&key, "v").map_err(fail("set"))?;
    check("get", con.get::<_, String>(&key).map_err(fail("get"))?, "v".into())?;
    check("del", con.del::<_, i64>(&key).map_err(fail("del"))?, 1)?;
    if protocol == "3" {
        let hello: Value = redis::cmd("HELLO").arg(3).query(&mut con).map_err(fail("hello 3"))?;
        let proto = match &hello {
            Value::Map(pairs) => pairs.iter().find(|(k, _)| *k == Value::BulkString(b"proto".to_vec())).map(|(_, v)| v),
            _ => None,
        };
        check("HELLO 3's proto", proto, Some(&Value::Int(3)))?;
    }
    Ok(())
}

fn crud(r: &mut Connection) -> StepResult {
    let () = r.set("a", "1").map_err(fail("set"))?;
    check("get", r.get::<_, String>("a").map_err(fail("get"))?, "1".into())?;
    let () = r.mset(&[("b", "2"), ("c", "3")]).map_err(fail("mset"))?;
    let values: Vec<Option<String>> = r.mget(&["a", "b", "nope", "c"]).map_err(fail("mget"))?;
    check("mget", values, vec![Some("1".into()), Some("2".into()), None, Some("3".into())])?;
    check("exists", r.exists::<_, i64>(&["a", "b", "nope"]).map_err(fail("exists"))?, 2)?;
    check("incr", r.incr::<_, _, i64>("n", 1).map_err(fail("incr"))?, 1)?;
    check("incrby", r.incr::<_, _, i64>("n", 5).map_err(fail("incrby"))?, 6)?;
    check("del", r.del::<_, i64>(&["a", "b", "c", "n", "nope"]).map_err(fail("del"))?, 4)?;
    check("get after del", r.get::<_, Option<String>>("a").map_err(fail("get"))?, None)
}

fn ttls(r: &mut Connection) -> StepResult {
    let () = r.set_ex("t", "v", 100).map_err(fail("set ex"))?;
    let ttl: i64 = r.ttl("t").map_err(fail("ttl"))?;
    check("ttl in 99..=100", (99..=100).contains(&ttl), true).map_err(|err| format!("{err} ({ttl})"))?;
    check("pexpire", r.pexpire::<_, bool>("t", 50_000).map_err(fail("pexpire"))?, true)?;
    let pttl: i64 = r.pttl("t").map_err(fail("pttl"))?;
    check("pttl in 49000..=50000", (49_000..=50_000).contains(&pttl), true).map_err(|err| format!("{err} ({pttl})"))?;
    check("persist", r.persist::<_, bool>("t").map_err(fail("persist"))?, true)?;
    check("ttl after persist", r.ttl::<_, i64>("t").map_err(fail("ttl"))?, -1)?;
    check("ttl of a missing key", r.ttl::<_, i64>("nope").map_err(fail("ttl"))?, -2)?;
    check("del", r.del::<_, i64>("t").map_err(fail("del"))?, 1)
}

fn pipeline(r: &mut Connection) -> StepResult {
    let replies: (String, i64, String, i64) =
        redis::pipe().set("p", "1").incr("p", 1).get("p").del("p").query(r).map_err(fail("pipeline"))?;
    check("pipeline replies", replies, ("OK".into(), 2, "2".into(), 1))
}

fn watch_conflict(r: &mut Connection, other: &mut Connection) -> StepResult {
    let () = r.set("w", "start").map_err(fail("set"))?;
    let () = redis::cmd("WATCH").arg("w").query(r).map_err(fail("watch"))?;
    check("watched value", r.get::<_, String>("w").map_err(fail("get"))?, "start".into())?;
    let () = other.set("w", "changed").map_err(fail("the other client's set"))?;
    let replies: Option<(String, String)> =
        redis::pipe().atomic().set("w", "mine").set("w2", "x").query(r).map_err(fail("exec"))?;
    check("exec after a conflict", replies, None)?;
    check("the other client's write stays", r.get::<_, String>("w").map_err(fail("get"))?, "changed".into())?;
    check("nothing of the transaction applied", r.exists::<_, i64>("w2").map_err(fail("exists"))?, 0)
}

fn watch_success(r: &mut Connection) -> StepResult {
    let () = redis::cmd("WATCH").arg("w").query(r).map_err(fail("watch"))?;
    let replies: Option<(String, i64)> =
        redis::pipe().atomic().set("w", "mine").incr("wcount", 1).query(r).map_err(fail("exec"))?;
    check("exec", replies, Some(("OK".into(), 1)))?;
    check("get", r.get::<_, String>("w").map_err(fail("get"))?, "mine".into())?;
    check("del", r.del::<_, i64>(&["w", "wcount"]).map_err(fail("del"))?, 2)
}

fn transaction_runtime_error(r: &mut Connection) -> StepResult {
    let () = r.set("s", "text").map_err(fail("set"))?;
    // The crate reports the first failed command of an EXEC as the query's error.
    let result: redis::RedisResult<Vec<Value>> =
        redis::pipe().atomic().set("r1", "1").incr("s", 1).set("r2", "2").query(r);
    match result {
        Err(err) if err.detail().is_some_and(|text| text.contains("not an integer")) => {}
        other => return Err(format!("exec: got {other:?}, want the INCR's 'not an integer' error")),
    }
    check("r1 applied", r.get::<_, String>("r1").map_err(fail("get"))?, "1".into())?;
    check("r2 applied", r.get::<_, String>("r2").map_err(fail("get"))?, "2".into())?;
    check("s unchanged", r.get::<_, String>("s").map_err(fail("get"))?, "text".into())?;
    check("del", r.del::<_, i64>(&["s", "r1", "r2"]).map_err(fail("del"))?, 3)
}

const SCAN_KEYS: [&str; 7] =
    ["user:1:10", "user:1:11", "user:2:12", "user:5:1a", "user:3:1", "user:4:100", "member:1:10"];
const SCAN_MATCHES: [&str; 4] = ["user:1:10", "user:1:11", "user:2:12", "user:5:1a"];

fn scan_match(r: &mut Connection) -> StepResult {
    for key in SCAN_KEYS {
        let () = r.set(key, "x").map_err(fail("set"))?;
    }
    let mut seen: Vec<String> = r.scan_match("user:*:1?").map_err(fail("scan"))?.collect();
    seen.sort();
    check("scan_match user:*:1?", seen, SCAN_MATCHES.map(String::from).to_vec())
}

fn info(r: &mut Connection) -> StepResult {
    let server: redis::InfoDict = redis::cmd("INFO").arg("server").query(r).map_err(fail("info server"))?;
    if server.get::<String>("redis_version").is_none_or(|version| version.is_empty()) {
        return Err(format!("server.redis_version missing from {server:?}"));
    }
    let keyspace: redis::InfoDict = redis::cmd("INFO").arg("keyspace").query(r).map_err(fail("info keyspace"))?;
    let db0: String = keyspace.get("db0").ok_or_else(|| format!("no db0 in {keyspace:?}"))?;
    let keys = db0.split(',').find_map(|pair| pair.strip_prefix("keys=")).and_then(|n| n.parse::<i64>().ok());
    let dbsize: i64 = redis::cmd("DBSIZE").query(r).map_err(fail("dbsize"))?;
    check("keyspace db0 keys", keys, Some(dbsize))
}

fn client_name(r: &mut Connection) -> StepResult {
    let () = redis::cmd("CLIENT").arg("SETNAME").arg("compat-rust").query(r).map_err(fail("setname"))?;
    let name: Option<String> = redis::cmd("CLIENT").arg("GETNAME").query(r).map_err(fail("getname"))?;
    check("getname", name, Some("compat-rust".into()))
}

fn flushdb(r: &mut Connection) -> StepResult {
    let () = redis::cmd("FLUSHDB").query(r).map_err(fail("flushdb"))?;
    check("dbsize", redis::cmd("DBSIZE").query::<i64>(r).map_err(fail("dbsize"))?, 0)
}

/// `step` on the connection, or the connection's own failure.
fn on(con: &mut Result<Connection, String>, step: fn(&mut Connection) -> StepResult) -> StepResult {
    match con {
        Ok(con) => step(con),
        Err(err) => Err(err.clone()),
    }
}

/// Runs every step not in `skip` against `socket`, the body in `protocol`;
/// panics naming the failed steps.
fn rust_scenario(server: &str, socket: &Path, protocol: &str, skip: &[&str]) {
    // A connection that fails fails every step that needs it, not the test at once.
    let mut r = connect(socket, protocol);
    let mut other = connect(socket, protocol);
    let mut failed = Vec::new();
    println!("--- rust-redis against {server}, protocol {protocol}");
    for step in STEPS {
        if skip.contains(&step) {
            println!("skipped {step}");
            continue;
        }
        let result = match step {
            "connect_default" => connect_with(socket, "default"),
            "connect_resp3" => connect_with(socket, "3"),
            "connect_resp2" => connect_with(socket, "2"),
            "crud" => on(&mut r, crud),
            "ttl" => on(&mut r, ttls),
            "pipeline" => on(&mut r, pipeline),
            "watch_conflict" => match (&mut r, &mut other) {
                (Ok(r), Ok(other)) => watch_conflict(r, other),
                (Err(err), _) | (_, Err(err)) => Err(err.clone()),
            },
            "watch_success" => on(&mut r, watch_success),
            "transaction_runtime_error" => on(&mut r, transaction_runtime_error),
            "scan_match" => on(&mut r, scan_match),
            "info" => on(&mut r, info),
            "client_name" => on(&mut r, client_name),
            "flushdb" => on(&mut r, flushdb),
            other => unreachable!("a step without code: {other}"),
        };
        match result {
            Ok(()) => println!("ok {step}"),
            Err(why) => {
                println!("FAIL {step}: {why}");
                failed.push(step);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "rust-redis against {server} (protocol {protocol}): failed steps: {}",
        failed.join(", ")
    );
}

#[test]
fn rust_redis_crate_scenario_passes_on_redis_server_and_kvd() {
    // The workspace's `redis` crate runs every step, RESP2 and RESP3, against both servers.
    if let Err(why) = runs("redis-server", "--version") {
        return skipped("rust_redis_scenario", &why);
    }
    for protocol in ["default", "3"] {
        let dir = temp_dir();
        let server = RedisServer::start(dir.path());
        rust_scenario("redis-server", server.socket(), protocol, &[]);
    }
    let dir = temp_dir();
    let kvd = Kvd::start(dir.path(), &[]);
    if strict() {
        rust_scenario("kvd", kvd.socket(), "3", &[]);
    } else {
        let skip = pending("rust-redis");
        rust_scenario("kvd", kvd.socket(), "2", &skip);
        not_run_against_kvd("rust_redis_scenario (rust-redis)", &skip);
    }
}
