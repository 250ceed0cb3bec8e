//! The protocol's one error type.

use crate::message::{ErrorKind, Response};

/// Everything that can go wrong reading or writing the wire. None of these
/// is a panic; after any of them the stream is out of step and the
/// connection must be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The operating system refused a read or write (an end of stream
    /// inside the handshake arrives here as `UnexpectedEof`).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A length prefix (or a frame about to be sent) is over the limit.
    /// Raised from the 4-byte prefix alone, before any buffer is allocated.
    #[error("frame of {len} bytes is over the limit of {limit} bytes")]
    FrameTooLarge { len: u64, limit: u64 },
    /// The stream ended inside a frame: a torn frame, not a clean close.
    #[error("connection closed inside a frame: {received} of {expected} bytes received")]
    TornFrame { received: u64, expected: u64 },
    /// A frame's payload is not a valid message (bad tag, short, bad UTF-8,
    /// trailing bytes …).
    #[error("message does not decode: {0}")]
    Decode(String),
    /// A message could not be encoded (never expected for these types).
    #[error("message does not encode: {0}")]
    Encode(String),
    /// The peer's first bytes are not the blockkv handshake magic.
    #[error("not a blockkv handshake: magic is {found:02x?}, expected {expected:02x?}")]
    BadMagic { found: [u8; 4], expected: [u8; 4] },
    /// The two sides speak different protocol versions.
    #[error("protocol version mismatch: this side speaks version {ours}, the other side version {theirs}")]
    VersionMismatch { ours: u16, theirs: u16 },
    /// The server refused the connection because it is at `CONNECTIONS_MAX`.
    #[error("the server is busy (too many connections); try again later")]
    ServerBusy,
    /// The server's handshake reply has a status this side does not know.
    #[error("handshake reply has unknown status {status}")]
    BadHandshakeStatus { status: u8 },
}

impl ProtocolError {
    /// What a server sends before closing a connection that failed with this
    /// error: a `BadRequest` error response for a frame that is too large or
    /// does not decode; None when the peer cannot be answered (I/O error,
    /// torn frame, handshake failure).
    pub fn reply_before_close(&self) -> Option<Response> {
        match self {
            ProtocolError::FrameTooLarge { .. } | ProtocolError::Decode(_) => {
                Some(Response::Error { kind: ErrorKind::BadRequest, message: self.to_string() })
            }
            _ => None,
        }
    }
}
