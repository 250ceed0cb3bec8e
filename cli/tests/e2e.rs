//! kvctl against the real kvd on a temp dir: the commands users type, their
//! output and every exit code of INTERFACE.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn kvctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kvctl")
}

/// kvd is built beside kvctl by a workspace test run; when this crate's
/// tests run alone, build it.
fn kvd_bin() -> PathBuf {
    let path = Path::new(kvctl_bin()).with_file_name("kvd");
    if !path.exists() {
        let release = path.components().any(|c| c.as_os_str() == "release");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "blockkv-daemon", "--bin", "kvd"]);
        if release {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo build kvd").success(), "building kvd");
    }
    path
}

struct Kvd {
    child: Child,
    socket: PathBuf,
}

impl Kvd {
    fn start(dir: &Path) -> Kvd {
        let socket = dir.join("kvd.sock");
        let child = Command::new(kvd_bin())
            .arg("--data")
            .arg(dir.join("data.kvdata"))
            .arg("--socket")
            .arg(&socket)
            .args(["--size", "8MiB", "--sync", "always"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kvd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "kvd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Kvd { child, socket }
    }

    fn kvctl(&self, args: &[&str]) -> Output {
        self.kvctl_stdin(args, None)
    }

    fn kvctl_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(kvctl_bin())
            .arg("--socket")
            .arg(&self.socket)
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

    fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        assert!(self.child.wait().expect("wait").success(), "kvd exits 0 on SIGTERM");
    }
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

#[test]
fn crud_binary_values_and_persistence_through_kvctl() {
    // put/get/exists/delete/scan as a user types them, a 1 MiB binary value
    // through stdin, and the data still there after a restart.
    let dir = tempfile::tempdir().expect("tempdir");
    let kvd = Kvd::start(dir.path());
    assert_eq!(code(&kvd.kvctl(&["ping"])), 0);
    assert_eq!(code(&kvd.kvctl(&["put", "user:1", "alice"])), 0);
    assert_eq!(code(&kvd.kvctl(&["put", "user:2", "bob"])), 0);
    let got = kvd.kvctl(&["get", "user:1"]);
    assert_eq!((code(&got), got.stdout.as_slice()), (0, &b"alice"[..]));
    assert_eq!(code(&kvd.kvctl(&["exists", "user:2"])), 0);
    let scan = kvd.kvctl(&["scan", "--prefix", "user:"]);
    assert_eq!(String::from_utf8_lossy(&scan.stdout), "user:1\nuser:2\n");
    let binary: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    assert_eq!(code(&kvd.kvctl_stdin(&["put", "blob"], Some(&binary))), 0);
    let got = kvd.kvctl(&["get", "blob"]);
    assert_eq!(code(&got), 0);
    assert!(got.stdout == binary, "1 MiB binary value comes back unchanged");
    assert_eq!(code(&kvd.kvctl(&["delete", "user:2"])), 0);
    kvd.stop();
    let kvd = Kvd::start(dir.path());
    assert_eq!(kvd.kvctl(&["get", "user:1"]).stdout, b"alice");
    assert!(kvd.kvctl(&["get", "blob"]).stdout == binary);
    assert_eq!(code(&kvd.kvctl(&["exists", "user:2"])), 1, "the delete survived the restart");
    kvd.stop();
}

#[test]
fn ttl_and_expire_through_kvctl() {
    // --ttl and expire: the key answers, then is gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let kvd = Kvd::start(dir.path());
    assert_eq!(code(&kvd.kvctl(&["put", "session", "x", "--ttl", "1"])), 0);
    let ttl = kvd.kvctl(&["ttl", "session"]);
    assert_eq!(code(&ttl), 0);
    assert_eq!(String::from_utf8_lossy(&ttl.stdout).trim(), "1");
    assert_eq!(code(&kvd.kvctl(&["put", "cfg", "y"])), 0);
    assert_eq!(String::from_utf8_lossy(&kvd.kvctl(&["ttl", "cfg"]).stdout).trim(), "persistent");
    assert_eq!(code(&kvd.kvctl(&["expire", "cfg", "1"])), 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while code(&kvd.kvctl(&["exists", "session"])) == 0 || code(&kvd.kvctl(&["exists", "cfg"])) == 0 {
        assert!(Instant::now() < deadline, "keys did not expire");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code(&kvd.kvctl(&["get", "session"])), 1);
    kvd.stop();
}

#[test]
fn every_exit_code() {
    // 0 done, 1 not found, 2 usage, 3 no daemon, 4 refused by the daemon.
    let dir = tempfile::tempdir().expect("tempdir");
    let kvd = Kvd::start(dir.path());
    assert_eq!(code(&kvd.kvctl(&["put", "k", "v"])), 0);
    for missing in [&["get", "nope"][..], &["delete", "nope"], &["exists", "nope"]] {
        assert_eq!(code(&kvd.kvctl(missing)), 1, "{missing:?}");
    }
    assert_eq!(code(&kvd.kvctl(&["frobnicate"])), 2);
    assert_eq!(code(&kvd.kvctl(&["get"])), 2);
    let long_key = "k".repeat(2000);
    let refused = kvd.kvctl(&["put", &long_key, "v"]);
    assert_eq!(code(&refused), 4);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("too_large"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let socket = kvd.socket.clone();
    kvd.stop();
    let unreachable = Command::new(kvctl_bin()).arg("--socket").arg(&socket).arg("ping").output().expect("kvctl");
    assert_eq!(code(&unreachable), 3);
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("cannot reach kvd at") && stderr.contains("start it with `kvd`"), "{stderr}");
}

#[test]
fn json_output_is_one_object() {
    // --json: one parseable object per invocation, errors included.
    let dir = tempfile::tempdir().expect("tempdir");
    let kvd = Kvd::start(dir.path());
    assert_eq!(code(&kvd.kvctl(&["put", "k", "v"])), 0);
    let stats = kvd.kvctl(&["--json", "stats"]);
    assert_eq!(code(&stats), 0);
    let value: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats is JSON");
    assert_eq!(value["ok"], serde_json::Value::Bool(true));
    let missing = kvd.kvctl(&["--json", "get", "nope"]);
    assert_eq!(code(&missing), 1);
    let value: serde_json::Value = serde_json::from_slice(&missing.stdout).expect("a miss is JSON too");
    assert!(value.is_object());
    kvd.stop();
}
