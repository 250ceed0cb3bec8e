//! Helpers shared by kvd's end-to-end tests: the real binary on a temp dir.
#![allow(dead_code)]

use blockkv_protocol::client_handshake;
use rustix::process::{Pid, Signal, kill_process};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A kvd process; `stop` ends it with SIGTERM, dropping it kills it.
pub struct Kvd {
    pub child: Child,
    pub socket: PathBuf,
}

impl Kvd {
    pub fn start(dir: &Path, extra: &[&str]) -> Kvd {
        let socket = dir.join("kvd.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_kvd"))
            .arg("--data")
            .arg(dir.join("data.kvdata"))
            .arg("--socket")
            .arg(&socket)
            .args(["--size", "8MiB", "--foreground"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kvd");
        let kvd = Kvd { child, socket };
        kvd.wait_ready();
        kvd
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "kvd did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> UnixStream {
        let mut stream = UnixStream::connect(&self.socket).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        client_handshake(&mut stream).expect("handshake");
        stream
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).expect("pid");
        kill_process(pid, signal).expect("kill");
    }

    /// SIGTERM, then the exit status and everything kvd wrote to stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal(Signal::TERM);
        let status = self.child.wait().expect("wait");
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status, stderr)
    }
}

impl Drop for Kvd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
