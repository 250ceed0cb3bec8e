//! `make test`'s share of the kill -9 test: crash-test.sh against real kvd
//! processes, 30 cycles (BLOCKKV_CRASH_TEST_CYCLES to change), with the seed
//! from BLOCKKV_CRASH_TEST_SEED when set (a random one, printed, otherwise).
//! `make crash-test` runs 1,000 cycles.

use std::path::Path;
use std::process::Command;

/// Cycles when BLOCKKV_CRASH_TEST_CYCLES is not set.
const CYCLES_DEFAULT: &str = "30";

#[test]
fn killed_kvd_keeps_every_acknowledged_write_and_no_deleted_key() {
    // Runs crash-test.sh: SIGKILL mid-write, in a checkpoint and in recovery; kv-fsck; check every key.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("crash-test.sh");
    let cycles = std::env::var("BLOCKKV_CRASH_TEST_CYCLES").unwrap_or_else(|_| CYCLES_DEFAULT.to_string());
    let mut command = Command::new("bash");
    command.arg(&script).args(["--cycles", &cycles]);
    if let Ok(seed) = std::env::var("BLOCKKV_CRASH_TEST_SEED") {
        command.args(["--seed", &seed]);
    }
    let output = command.output().expect("run crash-test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown by cargo test on failure, or with --nocapture.
    println!("{stdout}");
    assert!(output.status.success(), "crash-test.sh --cycles {cycles} failed ({}):\n{stdout}\n{stderr}", output.status);
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{cycles} passed, 0 failed"), "{stdout}\n{stderr}");
}
