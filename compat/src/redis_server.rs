//! A real redis-server on a Unix socket in a temp dir, no persistence, no
//! TCP: the reference every compatibility test checks itself against first.

use rustix::process::{Pid, Signal, kill_process};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long redis-server may take to answer a PING after its start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

const SOCKET_NAME: &str = "r.sock";
const LOG_NAME: &str = "redis-server.log";

/// A running redis-server; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server --port 0 --unixsocket DIR/r.sock --save ''
    /// --appendonly no` and waits until it answers; panics with its log if it
    /// does not.
    pub fn start(dir: &Path) -> RedisServer {
        let socket = dir.join(SOCKET_NAME);
        let log = dir.join(LOG_NAME);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("spawn redis-server: {err}"));
        let server = RedisServer { child, socket, log };
        server.wait_ready();
        server
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What redis-server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answered = crate::resp::Connection::connect(&self.socket)
                .and_then(|mut con| con.call(&["PING"]))
                .is_ok_and(|reply| reply == crate::resp::Reply::Simple("PONG".into()));
            if answered {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer within {READY_TIMEOUT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process(pid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}
