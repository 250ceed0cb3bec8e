//! glibc malloc tunables for kvd, set by executing kvd again once at start.
//!
//! Why: a checkpoint copies the index (16 bytes a key) and encodes it (16
//! bytes more). After the first such buffer is freed, glibc's malloc
//! raises its mmap threshold to that size and from then on serves and keeps
//! them on its heap, mapped: kvd's resident memory stays far above what it
//! uses (figures: docs/BENCHMARKS.md). A fixed mmap threshold and trim
//! threshold (128 KiB) make it hand such memory back. glibc reads its tunables once, when
//! a process starts, so kvd puts them in its environment and executes
//! itself again — same pid, same arguments — before doing anything else.
//! Other C libraries ignore `GLIBC_TUNABLES`.

use std::os::unix::process::CommandExt;

const TUNABLES: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";
/// Set in the environment of the second execution, so there is no third.
const TUNED_ENV: &str = "BLOCKKV_MALLOC_TUNED";

/// Returns only if kvd already runs with the tunables, or could not be
/// executed again (then it goes on with the defaults, saying so).
pub fn tune() {
    if std::env::var_os(TUNED_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(existing) if !existing.is_empty() => format!("{existing}:{TUNABLES}"),
        _ => TUNABLES.to_string(),
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let err = command.args(args).env("GLIBC_TUNABLES", tunables).env(TUNED_ENV, "1").exec();
    eprintln!("kvd: note: could not execute itself again with malloc tunables ({err}); going on without them");
}
