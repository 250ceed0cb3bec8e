//! A blocking client of kvd over its Unix socket: connect, handshake, then
//! one request and one response at a time ([`Call::call`]).
//!
//! Timeouts: a hung daemon must not hang kvctl (or a script) forever. The
//! handshake gets [`HANDSHAKE_TIMEOUT_MS`]: a live kvd answers a hello at
//! once. Every later read and write gets the reply timeout (`--timeout`,
//! default [`REPLY_TIMEOUT_S_DEFAULT`]), generous because a checkpoint or a
//! compaction pass answers only when it is done. A timeout applies to each
//! read or write call, so it bounds how long the daemon may send nothing.
//! The connect itself has no timeout: a Unix socket connect either succeeds
//! or fails at once (a full listen backlog is the rare exception).

use blockkv_protocol::{ProtocolError, Request, Response, client_handshake, read_message, write_message};
use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long kvctl waits for kvd's handshake reply.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// How long kvctl waits, by default, while kvd sends nothing during a request.
pub const REPLY_TIMEOUT_S_DEFAULT: u64 = 30;

/// Sends one request and returns its response. [`Client`] does it over the
/// socket; tests do it with a scripted fake.
pub trait Call {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError>;
}

/// A connection to kvd that has passed the handshake.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    socket_path: PathBuf,
    reply_timeout: Duration,
}

impl Client {
    /// Connects to kvd at `socket_path` and shakes hands, with the
    /// handshake timeout of [`HANDSHAKE_TIMEOUT_MS`].
    pub fn connect(socket_path: &Path, reply_timeout: Duration) -> Result<Client, ClientError> {
        Client::connect_with(socket_path, Duration::from_millis(HANDSHAKE_TIMEOUT_MS), reply_timeout)
    }

    /// [`Client::connect`] with both timeouts given (tests use short ones).
    pub fn connect_with(
        socket_path: &Path,
        handshake_timeout: Duration,
        reply_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let socket_path = socket_path.to_path_buf();
        let mut stream = match UnixStream::connect(&socket_path) {
            Ok(stream) => stream,
            Err(error) => return Err(ClientError::Connect { socket_path, error }),
        };
        if let Err(error) = set_timeouts(&stream, handshake_timeout) {
            return Err(ClientError::Connect { socket_path, error });
        }
        if let Err(error) = client_handshake(&mut stream) {
            return Err(match is_timeout(&error) {
                true => ClientError::HandshakeTimeout { socket_path, timeout: handshake_timeout },
                false => ClientError::Handshake { socket_path, error },
            });
        }
        if let Err(error) = set_timeouts(&stream, reply_timeout) {
            return Err(ClientError::Connect { socket_path, error });
        }
        Ok(Client { stream, socket_path, reply_timeout })
    }

    /// The error for a failed send (`sending`) or a failed read of the answer.
    fn failed(&self, request: &Request, error: ProtocolError, sending: bool) -> ClientError {
        let socket_path = self.socket_path.clone();
        let request = request.name();
        match error {
            ProtocolError::FrameTooLarge { len, limit } if sending => {
                ClientError::RequestTooLarge { request, len, limit }
            }
            error if is_timeout(&error) => ClientError::Timeout { socket_path, request, timeout: self.reply_timeout },
            error => ClientError::Protocol { socket_path, request, error },
        }
    }
}

impl Call for Client {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        // write_message refuses a request over FRAME_BYTES_MAX before sending a byte.
        write_message(&mut self.stream, request).map_err(|error| self.failed(request, error, true))?;
        match read_message(&mut self.stream) {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(ClientError::Closed { socket_path: self.socket_path.clone(), request: request.name() }),
            Err(error) => Err(self.failed(request, error, false)),
        }
    }
}

fn set_timeouts(stream: &UnixStream, timeout: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}

/// A socket timeout shows as WouldBlock (Linux) or TimedOut.
fn is_timeout(error: &ProtocolError) -> bool {
    matches!(error, ProtocolError::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Why kvctl could not get an answer from kvd. Every message says where
/// kvctl looked and what to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// No socket, nobody listening, or no permission.
    Connect { socket_path: PathBuf, error: io::Error },
    /// The handshake failed: closed, another version, busy, or not kvd.
    Handshake { socket_path: PathBuf, error: ProtocolError },
    /// No handshake reply in time.
    HandshakeTimeout { socket_path: PathBuf, timeout: Duration },
    /// kvd sent nothing for `timeout` during a request.
    Timeout { socket_path: PathBuf, request: &'static str, timeout: Duration },
    /// kvd closed the connection instead of answering.
    Closed { socket_path: PathBuf, request: &'static str },
    /// The answer was torn, did not decode, or the socket failed mid-request.
    Protocol { socket_path: PathBuf, request: &'static str, error: ProtocolError },
    /// The request does not fit one frame; nothing was sent.
    RequestTooLarge { request: &'static str, len: u64, limit: u64 },
}

impl std::error::Error for ClientError {}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { socket_path, error } => write!(
                f,
                "cannot reach kvd at {} — is it running? start it with `kvd` ({error}); \
                 if kvd listens elsewhere, pass --socket PATH or set KV_SOCKET",
                socket_path.display()
            ),
            ClientError::Handshake { socket_path, error } => {
                write!(f, "cannot reach kvd at {}: ", socket_path.display())?;
                match error {
                    ProtocolError::Io(io) => write!(
                        f,
                        "the connection closed during the handshake ({io}) — is it running? start it with `kvd`; \
                         if it is running, its log says why it hung up"
                    ),
                    ProtocolError::VersionMismatch { .. } => {
                        write!(f, "{error} — use a kvctl from the same release as kvd")
                    }
                    ProtocolError::ServerBusy => write!(f, "{error}"),
                    _ => write!(f, "what listens there is not kvd ({error}) — check --socket or KV_SOCKET"),
                }
            }
            ClientError::HandshakeTimeout { socket_path, timeout } => write!(
                f,
                "cannot reach kvd at {}: no handshake reply within {} ms — kvd may be hung; check its log, or restart it",
                socket_path.display(),
                timeout.as_millis()
            ),
            ClientError::Timeout { socket_path, request, timeout } => write!(
                f,
                "kvd at {} sent nothing for {} s during {request} — it may be hung or overloaded; check its log, \
                 or raise --timeout (a write may or may not have been applied)",
                socket_path.display(),
                timeout.as_secs()
            ),
            ClientError::Closed { socket_path, request } => write!(
                f,
                "kvd at {} closed the connection without answering {request} — it may have stopped; check its log \
                 (a write may or may not have been applied)",
                socket_path.display()
            ),
            ClientError::Protocol { socket_path, request, error } => write!(
                f,
                "the exchange with kvd at {} broke during {request}: {error} — check kvd's log; if it persists, \
                 make sure kvctl and kvd come from the same release (`kvctl --version`)",
                socket_path.display()
            ),
            ClientError::RequestTooLarge { request, len, limit } => write!(
                f,
                "the {request} request is {len} bytes, over the protocol's limit of {limit} bytes; nothing was sent — \
                 make the key or value smaller"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockkv_protocol::server_handshake;
    use std::os::unix::net::UnixListener;
    use std::thread;

    const SHORT: Duration = Duration::from_millis(200);

    /// A listener at a fresh socket path, and the directory that holds it.
    fn listener() -> (tempfile::TempDir, PathBuf, UnixListener) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kvd.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        (dir, path, listener)
    }

    #[test]
    fn no_socket_is_a_connect_error_with_the_hint() {
        // A path where nothing exists: Connect, and the message says how to start kvd.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nobody.sock");
        let err = Client::connect(&path, SHORT).expect_err("no daemon");
        assert!(matches!(err, ClientError::Connect { .. }));
        let message = err.to_string();
        let expected = format!("cannot reach kvd at {} — is it running? start it with `kvd`", path.display());
        assert!(message.starts_with(&expected), "{message}");
        assert!(message.contains("No such file or directory"), "{message}");
    }

    #[test]
    fn stale_socket_file_is_connection_refused() {
        // A socket file left by a kvd that is gone: Connect with "Connection refused".
        let (_dir, path, listener) = listener();
        drop(listener);
        let err = Client::connect(&path, SHORT).expect_err("no daemon");
        assert!(err.to_string().contains("Connection refused"), "{err}");
    }

    #[test]
    fn silent_server_times_out_at_the_handshake() {
        // A listener that never answers the hello: HandshakeTimeout, not a hang.
        let (_dir, path, _listener) = listener();
        let err = Client::connect_with(&path, SHORT, SHORT).expect_err("silent");
        assert!(matches!(err, ClientError::HandshakeTimeout { .. }), "{err:?}");
    }

    #[test]
    fn server_that_hangs_up_fails_the_handshake() {
        // A listener that accepts and closes at once: a Handshake error naming the socket.
        let (_dir, path, listener) = listener();
        let server = thread::spawn(move || drop(listener.accept()));
        let err = Client::connect_with(&path, SHORT, SHORT).expect_err("hung up");
        assert!(matches!(err, ClientError::Handshake { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot reach kvd at {}", path.display())), "{err}");
        server.join().expect("server");
    }

    #[test]
    fn stub_server_answers_a_call() {
        // Handshake, one request, one response over a real socket, then a reply that never comes times out.
        let (_dir, path, listener) = listener();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            server_handshake(&mut stream).expect("handshake");
            let request: Option<Request> = read_message(&mut stream).expect("read");
            assert_eq!(request, Some(Request::Ping));
            write_message(&mut stream, &Response::Pong).expect("write");
            // Read the second request and say nothing until the client gives up.
            let _second: Option<Request> = read_message(&mut stream).expect("read");
            let _eof: Result<Option<Request>, _> = read_message(&mut stream);
        });
        let mut client = Client::connect_with(&path, SHORT, SHORT).expect("connect");
        assert_eq!(client.call(&Request::Ping).expect("pong"), Response::Pong);
        let err = client.call(&Request::Stats).expect_err("no answer");
        assert!(matches!(err, ClientError::Timeout { request: "stats", .. }), "{err:?}");
        drop(client);
        server.join().expect("server");
    }

    #[test]
    fn oversized_request_is_refused_before_sending() {
        // A request over FRAME_BYTES_MAX is RequestTooLarge and the server sees no frame.
        let (_dir, path, listener) = listener();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            server_handshake(&mut stream).expect("handshake");
            let next: Option<Request> = read_message(&mut stream).expect("clean end");
            assert_eq!(next, None);
        });
        let mut client = Client::connect_with(&path, SHORT, SHORT).expect("connect");
        let value = vec![0u8; blockkv_protocol::FRAME_BYTES_MAX];
        let err = client.call(&Request::Put { key: b"k".to_vec(), value, ttl_ms: None }).expect_err("too large");
        assert!(matches!(err, ClientError::RequestTooLarge { request: "put", .. }), "{err:?}");
        drop(client);
        server.join().expect("server");
    }
}
