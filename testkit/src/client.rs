//! A blocking native-protocol connection to kvd: connect, handshake, one
//! request and its answer at a time.

use blockkv_protocol::{ProtocolError, Request, Response, client_handshake, read_message, write_message};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long an answer may take before the client gives up (a hung kvd
/// would otherwise hang the test).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The connection broke or closed: for a writer, kvd died (the normal end).
    Gone(String),
    /// Anything else: bytes that do not decode, an answer that does not fit
    /// the request. A bug on one side or the other.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Gone(text) => write!(f, "connection lost: {text}"),
            CallError::Protocol(text) => write!(f, "protocol error: {text}"),
        }
    }
}

impl From<ProtocolError> for CallError {
    fn from(err: ProtocolError) -> CallError {
        match err {
            ProtocolError::Io(_) | ProtocolError::TornFrame { .. } => CallError::Gone(err.to_string()),
            other => CallError::Protocol(other.to_string()),
        }
    }
}

/// A connection that has completed the handshake.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> Result<Client, CallError> {
        let mut stream = UnixStream::connect(socket).map_err(|err| CallError::Gone(err.to_string()))?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(|err| CallError::Gone(err.to_string()))?;
        client_handshake(&mut stream)?;
        Ok(Client { stream })
    }

    /// Sends `request`, returns its answer (which may be an error response).
    pub fn call(&mut self, request: &Request) -> Result<Response, CallError> {
        self.send(request)?;
        let response = self.receive()?;
        if !request.is_answered_by(&response) {
            return Err(CallError::Protocol(format!("{} answered by {response:?}", request.name())));
        }
        Ok(response)
    }

    /// Sends `request` without waiting for its answer (pipelining: read
    /// the answers later with `receive`, in the order of the requests).
    pub fn send(&mut self, request: &Request) -> Result<(), CallError> {
        write_message(&mut self.stream, request)?;
        Ok(())
    }

    /// The next answer on the connection.
    pub fn receive(&mut self) -> Result<Response, CallError> {
        read_message::<_, Response>(&mut self.stream)?
            .ok_or_else(|| CallError::from(ProtocolError::Io(io::ErrorKind::UnexpectedEof.into())))
    }

    /// The socket itself, for a caller that sends without waiting.
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }
}
