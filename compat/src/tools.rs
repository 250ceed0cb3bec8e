//! Where the outside tools the tests drive are, and what a test does when one
//! is missing: it prints `skipped: <why>` and passes, so that `make test`
//! stays green on a machine where `make test-deps` could not install them
//! (offline), while saying so loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Names the folder holding `venv/` and `node/` (what
/// `compat/clients/install.sh` builds), instead of `target/clients`.
pub const CLIENTS_DIR_ENV: &str = "BLOCKKV_CLIENTS_DIR";

/// Runs every scenario against kvd, also those kvd is not expected to pass
/// yet (see each test's pending table).
pub const STRICT_ENV: &str = "BLOCKKV_COMPAT_STRICT";

/// Whether `BLOCKKV_COMPAT_STRICT` is set to something other than `0` or empty.
pub fn strict() -> bool {
    std::env::var(STRICT_ENV).is_ok_and(|value| !value.is_empty() && value != "0")
}

/// The scripts' folder, `compat/clients/`.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// `$BLOCKKV_CLIENTS_DIR`, else `clients/` beside the running test's
/// profile folder (`target/clients` for `target/release/deps/<test>`).
pub fn clients_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CLIENTS_DIR_ENV).filter(|value| !value.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test>-<hash>
    let target = exe.ancestors().nth(3).expect("the test binary is in target/<profile>/deps");
    target.join("clients")
}

/// Whether `program` runs (`program ARG` exits 0); the reason when not.
pub fn runs(program: &str, arg: &str) -> Result<(), String> {
    match Command::new(program).arg(arg).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("`{program} {arg}` failed: {}", String::from_utf8_lossy(&output.stderr).trim())),
        Err(err) => Err(format!("{program} is not installed ({err}); `make test-deps` installs it")),
    }
}

/// Prints the loud skip line for a test whose tool is missing.
pub fn skipped(test: &str, why: &str) {
    println!("skipped: {test}: {why}");
    eprintln!("skipped: {test}: {why}");
}

/// Prints which parts of a test were not run against kvd because kvd does not
/// serve them yet, and how to run them.
pub fn not_run_against_kvd(test: &str, parts: &[&str]) {
    if parts.is_empty() {
        return;
    }
    let line =
        format!("not run against kvd (pending features; {STRICT_ENV}=1 runs them): {test}: {}", parts.join(", "));
    println!("{line}");
    eprintln!("{line}");
}
