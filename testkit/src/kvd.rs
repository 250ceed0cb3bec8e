//! One real kvd process on a directory: `data.kvdata`, `kvd.sock` and
//! `kvd.stderr` (what kvd wrote to stderr) live in it, so a test restarts kvd
//! on the same data by starting it on the same directory again. Each start
//! appends to `kvd.stderr`, after a line naming the run, so the log of a
//! failing restart still holds every earlier run's.

use crate::client::Client;
use rustix::process::{Pid, Signal, kill_process};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long kvd may take from spawn to its first answered handshake
/// (recovery of a crashed 32 MiB file included, on a loaded machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long kvd may take to exit after SIGTERM ([`Kvd::stop`]) before it is
/// SIGKILLed and the test fails: its clean shutdown (a checkpoint of the
/// file) takes well under a second; a kvd that ignores SIGTERM must not
/// hang the test run.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The data file's size unless a test asks for another: small enough that
/// creating it is quick, big enough for a 4 MiB value.
const FILE_SIZE_DEFAULT: &str = "8MiB";

/// The data file, socket and stderr log, inside the kvd's directory.
const DATA_FILE_NAME: &str = "data.kvdata";
const SOCKET_NAME: &str = "kvd.sock";
const STDERR_NAME: &str = "kvd.stderr";

/// A fresh temporary directory for a kvd, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

/// Names the kvd binary every [`Launch`] without [`Launch::bin`] starts,
/// instead of the one [`kvd_bin`] would pick (an absolute path).
pub const KVD_ENV: &str = "BLOCKKV_KVD";

/// The kvd binary the tests start, found once per test process:
///
/// 1. `$BLOCKKV_KVD`, when set and not empty (an absolute path);
/// 2. else `target/<profile>/kvd` of the running test's profile, when it
///    exists: `cargo test --workspace` (and so `make test`) builds it before
///    any test runs. A crate tested alone (`cargo test -p blockkv-cli`)
///    does not rebuild it: after changing kvd's code, build it
///    (`cargo build --release -p blockkv-daemon`) or test the workspace;
/// 3. else, only when that file is missing, it is built with
///    `cargo build -p blockkv-daemon --bin kvd` in that profile, saying so
///    on stderr first, cargo's output visible.
///
/// A failure (a missing `$BLOCKKV_KVD`, a failed build) is remembered: every
/// later call panics with the same message and does not run cargo again.
pub fn kvd_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(find_kvd) {
        Ok(bin) => bin.clone(),
        Err(err) => panic!("blockkv-testkit: no kvd binary: {err}"),
    }
}

/// [`kvd_bin`]'s search; returns an error instead of panicking, so that
/// [`OnceLock`] keeps the outcome (a panic would leave it empty, and the next
/// test would run cargo again).
fn find_kvd() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(KVD_ENV).filter(|value| !value.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_absolute() {
            return Err(format!(
                "{KVD_ENV}={} is relative; give an absolute path (tests run in their crate's directory)",
                bin.display()
            ));
        }
        if !bin.is_file() {
            return Err(format!("{KVD_ENV}={} is not a file", bin.display()));
        }
        return Ok(bin);
    }
    let test_exe = std::env::current_exe().map_err(|err| format!("the test binary's path: {err}"))?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in target/<profile>/deps", test_exe.display()))?;
    let bin = profile_dir.join("kvd");
    if bin.exists() {
        return Ok(bin);
    }
    let target_dir = profile_dir.parent().ok_or_else(|| format!("{} has no parent", profile_dir.display()))?;
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("{} names no profile", profile_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let mut build = Command::new(&cargo);
    build.current_dir(workspace).args(["build", "-p", "blockkv-daemon", "--bin", "kvd"]);
    build.arg("--target-dir").arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr().lock(),
        "blockkv-testkit: {} is missing; building it (set {KVD_ENV} to use another kvd): {build:?}",
        bin.display()
    );
    let status = build.status().map_err(|err| format!("run {}: {err}", Path::new(&cargo).display()))?;
    if !status.success() {
        return Err(format!("building {} failed ({status}); cargo's output is above", bin.display()));
    }
    if !bin.exists() {
        return Err(format!("cargo built kvd, but not at {}", bin.display()));
    }
    Ok(bin)
}

/// How to start a kvd: which binary, the data file's size, more arguments.
#[derive(Debug, Clone)]
pub struct Launch {
    bin: Option<PathBuf>,
    file_size: String,
    args: Vec<OsString>,
}

impl Default for Launch {
    fn default() -> Self {
        Launch { bin: None, file_size: FILE_SIZE_DEFAULT.to_string(), args: Vec::new() }
    }
}

impl Launch {
    /// `kvd_bin()`, an 8 MiB data file, no other arguments.
    pub fn new() -> Launch {
        Launch::default()
    }

    /// This binary instead of `kvd_bin()` (the daemon crate's own tests pass
    /// the one cargo built for them).
    pub fn bin(mut self, path: impl Into<PathBuf>) -> Launch {
        self.bin = Some(path.into());
        self
    }

    /// `--size` of the data file when kvd creates it (`32MiB`).
    pub fn file_size(mut self, size: &str) -> Launch {
        self.file_size = size.to_string();
        self
    }

    /// More of kvd's arguments (`--sync always`), after the kit's own.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Launch {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// Spawns kvd in the foreground on `dir` and returns once it answers a
    /// handshake; panics, with its stderr, if it exits or stays silent.
    pub fn start(self, dir: &Path) -> Kvd {
        let bin = self.bin.unwrap_or_else(kvd_bin);
        let socket = dir.join(SOCKET_NAME);
        let stderr_path = dir.join(STDERR_NAME);
        // Append: a restart on the same directory keeps the earlier runs' log.
        let mut stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .unwrap_or_else(|err| panic!("open {}: {err}", stderr_path.display()));
        writeln!(stderr, "--- blockkv-testkit: starting {} {:?} ---", bin.display(), self.args)
            .unwrap_or_else(|err| panic!("write {}: {err}", stderr_path.display()));
        let child = Command::new(&bin)
            .arg("--data")
            .arg(dir.join(DATA_FILE_NAME))
            .arg("--socket")
            .arg(&socket)
            .arg("--size")
            .arg(&self.file_size)
            .arg("--foreground")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", bin.display()));
        let mut kvd = Kvd { child, socket, stderr_path };
        kvd.wait_ready();
        kvd
    }
}

/// A running kvd. `stop` ends it with SIGTERM, `kill` with SIGKILL; dropping
/// it SIGKILLs it too (also when an assertion fails first).
#[derive(Debug)]
pub struct Kvd {
    child: Child,
    socket: PathBuf,
    stderr_path: PathBuf,
}

impl Kvd {
    /// `Launch::new().args(args).start(dir)`.
    pub fn start(dir: &Path, args: &[&str]) -> Kvd {
        Launch::new().args(args).start(dir)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection, handshake done; panics if kvd does not answer.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap_or_else(|err| panic!("connect to kvd: {err}"))
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).expect("kvd's pid");
        kill_process(pid, signal).unwrap_or_else(|err| panic!("send {signal:?} to kvd: {err}"));
    }

    /// SIGTERM, then the exit status and everything kvd wrote to stderr (this
    /// run's and earlier runs' on the same directory). A kvd still running
    /// [`STOP_TIMEOUT`] later is SIGKILLed and the test panics with its stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(Signal::TERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for kvd") {
                return (status, self.stderr());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("kvd did not exit within {STOP_TIMEOUT:?} of SIGTERM; SIGKILLed it:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and kvd must exit 0 (its stderr is in the panic if not).
    pub fn stop_cleanly(self) {
        let (status, stderr) = self.stop();
        assert!(status.success(), "kvd exits 0 on SIGTERM, got {status}:\n{stderr}");
    }

    /// SIGKILL, as a crash: nothing is closed, the data file is as kvd left it.
    pub fn kill(mut self) {
        self.signal(Signal::KILL);
        let _ = self.child.wait();
    }

    /// What kvd has written to stderr so far, after what earlier runs on the
    /// same directory wrote (each run after a `--- blockkv-testkit: starting`
    /// line).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Client::connect(&self.socket).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kvd exited before it answered ({status}):\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "kvd did not answer within {READY_TIMEOUT:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Kvd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
