//! The harness can fail: after a real kill -9 of kvd, crash-check passes
//! the recovered store, then reports a write removed behind its back and a
//! deleted key given a value again.

use blockkv_protocol::{Request, Response};
use blockkv_recovery_tests::check::Model;
use blockkv_recovery_tests::keyspace::KeyRef;
use blockkv_recovery_tests::oplog::read_logs;
use blockkv_recovery_tests::state::State;
use blockkv_testkit::{Kvd, Launch, temp_dir};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const THREADS: &str = "4";
const KEYS_PER_THREAD: &str = "16";

/// kvd as crash-test.sh runs it: every write synced, a 32 MiB file.
fn start_kvd(dir: &Path) -> Kvd {
    Launch::new().file_size("32MiB").args(["--sync", "always"]).start(dir)
}

fn crash_check(kvd: &Kvd, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crash-check"))
        .arg("--socket")
        .arg(kvd.socket())
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
    let dir = temp_dir();
    let kvd = start_kvd(dir.path());
    let writer = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg("--socket")
        .arg(kvd.socket())
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .args(["--cycle", "1", "--seed", "7", "--threads", THREADS, "--keys-per-thread", KEYS_PER_THREAD])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn crash-writer");
    std::thread::sleep(Duration::from_millis(300));
    kvd.kill();
    let writer = writer.wait_with_output().expect("wait crash-writer");
    assert!(writer.status.success(), "crash-writer: {}", String::from_utf8_lossy(&writer.stdout));

    let kvd = start_kvd(dir.path());
    let passed = crash_check(&kvd, dir.path());
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
    let mut client = kvd.client();
    let deleted = client.call(&Request::Delete { key: put_key.name() }).expect("delete");
    assert_eq!(deleted, Response::Deleted(true));
    let stale = Request::Put { key: deleted_key.name(), value: b"back from the dead".to_vec(), ttl_ms: None };
    assert_eq!(client.call(&stale).expect("put"), Response::Done);

    let failed = crash_check(&kvd, dir.path());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("VIOLATION {put_key}: lost an acknowledged write")), "{stdout}");
    assert!(
        stdout.contains(&format!("VIOLATION {deleted_key}: a deleted (or never written) key holds a value")),
        "{stdout}"
    );
}
