//! The harness can fail: after a real kill -9 of kvd, crash-check passes
//! the recovered store, then reports a write removed behind its back and a
//! deleted key given a value again.

use blockkv_protocol::{Request, Response};
use blockkv_recovery_tests::check::Model;
use blockkv_recovery_tests::client::Client;
use blockkv_recovery_tests::keyspace::KeyRef;
use blockkv_recovery_tests::oplog::read_logs;
use blockkv_recovery_tests::state::State;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const THREADS: &str = "4";
const KEYS_PER_THREAD: &str = "16";

/// target/release, with kvd and the helpers built (cargo build from inside
/// the test, as crash-test.sh does; quick when `make test` built them).
fn release_bins() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "blockkv-daemon", "-p", "blockkv-recovery-tests"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    root.join(target).join("release")
}

/// kvd, SIGKILLed when dropped (also when an assertion fails).
struct Kvd(Child);

impl Drop for Kvd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_kvd(bins: &Path, dir: &Path) -> Kvd {
    let socket = dir.join("kvd.sock");
    let kvd = Kvd(Command::new(bins.join("kvd"))
        .arg("--data")
        .arg(dir.join("data.kvdata"))
        .arg("--socket")
        .arg(&socket)
        .args(["--size", "32MiB", "--sync", "always", "--foreground"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kvd"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "kvd did not start listening");
        std::thread::sleep(Duration::from_millis(10));
    }
    kvd
}

fn crash_check(bins: &Path, dir: &Path) -> Output {
    Command::new(bins.join("crash-check"))
        .arg("--socket")
        .arg(dir.join("kvd.sock"))
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--state-in")
        .arg(dir.join("no-state"))
        .arg("--state-out")
        .arg(dir.join("state"))
        .args(["--threads", THREADS, "--keys-per-thread", KEYS_PER_THREAD])
        .output()
        .expect("run crash-check")
}

#[test]
fn a_lost_write_and_a_returned_delete_are_reported() {
    // A real crash passes; then one acknowledged put is deleted and one deleted key is given a value: both reported.
    let bins = release_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let kvd = start_kvd(&bins, dir.path());
    let writer = Command::new(bins.join("crash-writer"))
        .arg("--socket")
        .arg(dir.path().join("kvd.sock"))
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .args(["--cycle", "1", "--seed", "7", "--threads", THREADS, "--keys-per-thread", KEYS_PER_THREAD])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn crash-writer");
    std::thread::sleep(Duration::from_millis(300));
    drop(kvd); // SIGKILL
    let writer = writer.wait_with_output().expect("wait crash-writer");
    assert!(writer.status.success(), "crash-writer: {}", String::from_utf8_lossy(&writer.stdout));

    let _kvd = start_kvd(&bins, dir.path());
    let passed = crash_check(&bins, dir.path());
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "a real crash should pass:\n{stdout}");

    // Pick a key that must hold its acknowledged put and one whose last acknowledged op was a delete.
    let logs = read_logs(&dir.path().join("logs")).expect("logs");
    let model = Model::build(&State::default(), &logs, 4, 16).expect("model");
    let settled = |key: &&KeyRef| model.keys[*key].in_flight.is_none();
    let put_key =
        model.keys.iter().find(|(k, e)| e.acked.is_some() && settled(k)).map(|(k, _)| *k).expect("an acked put");
    let deleted_key = model
        .keys
        .iter()
        .find(|(k, e)| e.acked_by.as_deref().is_some_and(|by| by.contains("delete")) && settled(k))
        .map(|(k, _)| *k)
        .expect("an acked delete");
    let mut client = Client::connect(&dir.path().join("kvd.sock")).expect("connect");
    let deleted = client.call(&Request::Delete { key: put_key.name() }).expect("delete");
    assert_eq!(deleted, Response::Deleted(true));
    let stale = Request::Put { key: deleted_key.name(), value: b"back from the dead".to_vec(), ttl_ms: None };
    assert_eq!(client.call(&stale).expect("put"), Response::Done);

    let failed = crash_check(&bins, dir.path());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("VIOLATION {put_key}: lost an acknowledged write")), "{stdout}");
    assert!(
        stdout.contains(&format!("VIOLATION {deleted_key}: a deleted (or never written) key holds a value")),
        "{stdout}"
    );
}
