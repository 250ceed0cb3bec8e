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
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const THREADS: &str = "4";
const KEYS_PER_THREAD: &str = "16";

/// How long the writer may take to get its first acknowledged puts and
/// deletes logged (a debug build on a loaded machine included).
const WRITES_TIMEOUT: Duration = Duration::from_secs(30);

/// Keys of each kind (last acknowledged op a put; a delete; nothing in
/// flight) the log must show before kvd is killed. The assertions need one
/// of each after the kill; a few leave room for the writer, which goes on
/// until the kill lands, to overwrite a key or have it in flight.
const SETTLED_BEFORE_KILL: usize = 4;

/// kvd with crash-test.sh's write settings: every write synced, a 32 MiB
/// file (not its 1 s checkpoint interval). The binary is `kvd_bin()`'s,
/// this test profile's `target/<profile>/kvd` (or `$BLOCKKV_KVD`), while
/// crash-test.sh builds and runs the release one.
fn start_kvd(dir: &Path) -> Kvd {
    Launch::new().file_size("32MiB").args(["--sync", "always"]).start(dir)
}

/// Keys whose last acknowledged op is a put, and a delete, with no request
/// in flight on them, as the assertions pick them.
fn settled_puts_and_deletes(model: &Model) -> (usize, usize) {
    let settled = model.keys.values().filter(|e| e.in_flight.is_none());
    let puts = settled.clone().filter(|e| e.acked.is_some()).count();
    let deletes = settled.filter(|e| e.acked_by.as_deref().is_some_and(|by| by.contains("delete"))).count();
    (puts, deletes)
}

/// Polls the writer's op log until it shows `SETTLED_BEFORE_KILL` settled
/// puts and deletes; panics after `WRITES_TIMEOUT` or if the writer exits.
fn wait_for_acked_writes(kvd: &Kvd, writer: &mut Child, log_dir: &Path) {
    let deadline = Instant::now() + WRITES_TIMEOUT;
    loop {
        // The writer may be mid-way through creating a log: an unreadable
        // or half-written one counts as "not yet".
        let seen = match read_logs(log_dir).and_then(|logs| Model::build(&State::default(), &logs, 4, 16)) {
            Ok(model) => {
                let (puts, deletes) = settled_puts_and_deletes(&model);
                if puts >= SETTLED_BEFORE_KILL && deletes >= SETTLED_BEFORE_KILL {
                    return;
                }
                format!("{} acked ops; settled keys: {puts} put, {deletes} deleted", model.ops_acked)
            }
            Err(err) => err,
        };
        if let Some(status) = writer.try_wait().expect("poll crash-writer") {
            panic!("crash-writer exited ({status}) before kvd was killed; log: {seen}\nkvd:\n{}", kvd.stderr());
        }
        assert!(
            Instant::now() < deadline,
            "after {WRITES_TIMEOUT:?}, not {SETTLED_BEFORE_KILL} settled puts and deletes in the log: {seen}\nkvd:\n{}",
            kvd.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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
    let mut writer = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg("--socket")
        .arg(kvd.socket())
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .args(["--cycle", "1", "--seed", "7", "--threads", THREADS, "--keys-per-thread", KEYS_PER_THREAD])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn crash-writer");
    wait_for_acked_writes(&kvd, &mut writer, &dir.path().join("logs"));
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
