//! kvctl against the real kvd on a temp dir: the commands users type, their
//! output and every exit code of docs/OPERATIONS.md.

use blockkv_testkit::{Kvd, temp_dir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kvctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kvctl")
}

/// kvd on `dir` as these tests want it: every write synced.
fn start(dir: &Path) -> Kvd {
    Kvd::start(dir, &["--sync", "always"])
}

fn kvctl(kvd: &Kvd, args: &[&str]) -> Output {
    kvctl_stdin(kvd, args, None)
}

fn kvctl_stdin(kvd: &Kvd, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(kvctl_bin())
        .arg("--socket")
        .arg(kvd.socket())
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvctl");
    if let Some(bytes) = stdin {
        child.stdin.take().expect("stdin").write_all(bytes).expect("write stdin");
    }
    child.wait_with_output().expect("kvctl output")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

#[test]
fn crud_binary_values_and_persistence_through_kvctl() {
    // put/get/exists/delete/scan as a user types them, a 1 MiB binary value
    // through stdin, and the data still there after a restart.
    let dir = temp_dir();
    let kvd = start(dir.path());
    assert_eq!(code(&kvctl(&kvd, &["ping"])), 0);
    assert_eq!(code(&kvctl(&kvd, &["put", "user:1", "alice"])), 0);
    assert_eq!(code(&kvctl(&kvd, &["put", "user:2", "bob"])), 0);
    let got = kvctl(&kvd, &["get", "user:1"]);
    assert_eq!((code(&got), got.stdout.as_slice()), (0, &b"alice"[..]));
    assert_eq!(code(&kvctl(&kvd, &["exists", "user:2"])), 0);
    let scan = kvctl(&kvd, &["scan", "--prefix", "user:"]);
    assert_eq!(String::from_utf8_lossy(&scan.stdout), "user:1\nuser:2\n");
    let binary: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    assert_eq!(code(&kvctl_stdin(&kvd, &["put", "blob"], Some(&binary))), 0);
    let got = kvctl(&kvd, &["get", "blob"]);
    assert_eq!(code(&got), 0);
    assert!(got.stdout == binary, "1 MiB binary value comes back unchanged");
    assert_eq!(code(&kvctl(&kvd, &["delete", "user:2"])), 0);
    kvd.stop_cleanly();
    let kvd = start(dir.path());
    assert_eq!(kvctl(&kvd, &["get", "user:1"]).stdout, b"alice");
    assert!(kvctl(&kvd, &["get", "blob"]).stdout == binary);
    assert_eq!(code(&kvctl(&kvd, &["exists", "user:2"])), 1, "the delete survived the restart");
    kvd.stop_cleanly();
}

#[test]
fn ttl_and_expire_through_kvctl() {
    // --ttl and expire: the key answers, then is gone.
    let dir = temp_dir();
    let kvd = start(dir.path());
    assert_eq!(code(&kvctl(&kvd, &["put", "session", "x", "--ttl", "1"])), 0);
    let ttl = kvctl(&kvd, &["ttl", "session"]);
    assert_eq!(code(&ttl), 0);
    assert_eq!(String::from_utf8_lossy(&ttl.stdout).trim(), "1");
    assert_eq!(code(&kvctl(&kvd, &["put", "cfg", "y"])), 0);
    assert_eq!(String::from_utf8_lossy(&kvctl(&kvd, &["ttl", "cfg"]).stdout).trim(), "persistent");
    assert_eq!(code(&kvctl(&kvd, &["expire", "cfg", "1"])), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while code(&kvctl(&kvd, &["exists", "session"])) == 0 || code(&kvctl(&kvd, &["exists", "cfg"])) == 0 {
        assert!(Instant::now() < deadline, "keys did not expire");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code(&kvctl(&kvd, &["get", "session"])), 1);
    kvd.stop_cleanly();
}

#[test]
fn every_exit_code() {
    // 0 done, 1 not found, 2 usage, 3 no daemon, 4 refused by the daemon.
    let dir = temp_dir();
    let kvd = start(dir.path());
    assert_eq!(code(&kvctl(&kvd, &["put", "k", "v"])), 0);
    for missing in [&["get", "nope"][..], &["delete", "nope"], &["exists", "nope"]] {
        assert_eq!(code(&kvctl(&kvd, missing)), 1, "{missing:?}");
    }
    assert_eq!(code(&kvctl(&kvd, &["frobnicate"])), 2);
    assert_eq!(code(&kvctl(&kvd, &["get"])), 2);
    let long_key = "k".repeat(2000);
    let refused = kvctl(&kvd, &["put", &long_key, "v"]);
    assert_eq!(code(&refused), 4);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("too_large"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let socket = kvd.socket().to_path_buf();
    kvd.stop_cleanly();
    let unreachable = Command::new(kvctl_bin()).arg("--socket").arg(&socket).arg("ping").output().expect("kvctl");
    assert_eq!(code(&unreachable), 3);
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("cannot reach kvd at") && stderr.contains("start it with `kvd`"), "{stderr}");
}

#[test]
fn json_output_is_one_object() {
    // --json: one parseable object per invocation, errors included.
    let dir = temp_dir();
    let kvd = start(dir.path());
    assert_eq!(code(&kvctl(&kvd, &["put", "k", "v"])), 0);
    let stats = kvctl(&kvd, &["--json", "stats"]);
    assert_eq!(code(&stats), 0);
    let value: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats is JSON");
    assert_eq!(value["ok"], serde_json::Value::Bool(true));
    let missing = kvctl(&kvd, &["--json", "get", "nope"]);
    assert_eq!(code(&missing), 1);
    let value: serde_json::Value = serde_json::from_slice(&missing.stdout).expect("a miss is JSON too");
    assert!(value.is_object());
    kvd.stop_cleanly();
}
