//! The version handshake that opens every native connection.
//!
//! ```text
//! hello, client -> server, 6 bytes       reply, server -> client, 7 bytes
//! 0    1    2    3    4        6         0    1    2    3    4       5        7
//! +----+----+----+----+--------+         +----+----+----+----+-------+--------+
//! | B1 | 4B | 56 | 50 | ver LE |         | B1 | 4B | 56 | 50 | status| ver LE |
//! +----+----+----+----+--------+         +----+----+----+----+-------+--------+
//!   0xB1 'K'  'V'  'P'   u16                                  u8      u16
//! ```
//!
//! Status 0 = accepted (`ver` = the version both now speak), 1 = version
//! refused (`ver` = the server's version), 2 = busy (`CONNECTIONS_MAX`;
//! `ver` = the server's version). After a refusal the server closes.
//!
//! The first-byte rule: RESP2 is served on the same socket and told apart
//! by the first byte a client sends. Every RESP2 message starts with an
//! ASCII byte (`*`, `$`, `+`, `-`, `:`, or a printable letter or space of
//! an inline command), so the magic starts with 0xB1, which is not ASCII.
//! A first byte of 0xB1 means native; anything else means RESP.

use crate::error::ProtocolError;
use std::io::{Read, Write};

/// The four bytes both sides send first.
pub const MAGIC: [u8; 4] = [0xB1, b'K', b'V', b'P'];
/// The protocol version this crate speaks. Bumped on any change to the
/// handshake, the framing or any message (docs/PROTOCOL.md, "Version log").
pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes of the client's hello.
pub const HELLO_BYTES: usize = 6;
/// Bytes of the server's reply.
pub const REPLY_BYTES: usize = 7;

// The first-byte rule: the magic never starts with a byte RESP can start with.
const _: () = assert!(!MAGIC[0].is_ascii());

/// True if a connection whose first byte is `first_byte` speaks the native
/// protocol; false means RESP.
pub fn is_native_first_byte(first_byte: u8) -> bool {
    first_byte == MAGIC[0]
}

/// The client's opening message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u16,
}

impl Hello {
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4..6].copy_from_slice(&self.version.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; HELLO_BYTES]) -> Result<Hello, ProtocolError> {
        check_magic(bytes)?;
        Ok(Hello { version: u16::from_le_bytes([bytes[4], bytes[5]]) })
    }
}

/// What the server says to a hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeReply {
    /// Go ahead: both sides speak `version`.
    Accepted { version: u16 },
    /// The server does not speak the client's version; it speaks `server_version`.
    VersionRefused { server_version: u16 },
    /// The server is at its connection limit.
    Busy { server_version: u16 },
}

const STATUS_ACCEPTED: u8 = 0;
const STATUS_VERSION_REFUSED: u8 = 1;
const STATUS_BUSY: u8 = 2;

impl HandshakeReply {
    /// The server's answer to `hello`: accepted if it speaks this crate's
    /// version, refused otherwise. (Busy is the server's own decision.)
    pub fn answer(hello: &Hello) -> HandshakeReply {
        if hello.version == PROTOCOL_VERSION {
            HandshakeReply::Accepted { version: PROTOCOL_VERSION }
        } else {
            HandshakeReply::VersionRefused { server_version: PROTOCOL_VERSION }
        }
    }

    pub fn encode(&self) -> [u8; REPLY_BYTES] {
        let (status, version) = match *self {
            HandshakeReply::Accepted { version } => (STATUS_ACCEPTED, version),
            HandshakeReply::VersionRefused { server_version } => (STATUS_VERSION_REFUSED, server_version),
            HandshakeReply::Busy { server_version } => (STATUS_BUSY, server_version),
        };
        let mut bytes = [0u8; REPLY_BYTES];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4] = status;
        bytes[5..7].copy_from_slice(&version.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; REPLY_BYTES]) -> Result<HandshakeReply, ProtocolError> {
        check_magic(bytes)?;
        let version = u16::from_le_bytes([bytes[5], bytes[6]]);
        match bytes[4] {
            STATUS_ACCEPTED => Ok(HandshakeReply::Accepted { version }),
            STATUS_VERSION_REFUSED => Ok(HandshakeReply::VersionRefused { server_version: version }),
            STATUS_BUSY => Ok(HandshakeReply::Busy { server_version: version }),
            status => Err(ProtocolError::BadHandshakeStatus { status }),
        }
    }

    /// The client's reading of the reply: Ok with the agreed version, or
    /// the error to print.
    pub fn check(&self) -> Result<u16, ProtocolError> {
        match *self {
            HandshakeReply::Accepted { version } if version == PROTOCOL_VERSION => Ok(version),
            HandshakeReply::Accepted { version: theirs }
            | HandshakeReply::VersionRefused { server_version: theirs } => {
                Err(ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs })
            }
            HandshakeReply::Busy { .. } => Err(ProtocolError::ServerBusy),
        }
    }
}

fn check_magic(bytes: &[u8]) -> Result<(), ProtocolError> {
    let mut found = [0u8; 4];
    found.copy_from_slice(&bytes[..4]);
    if found != MAGIC {
        return Err(ProtocolError::BadMagic { found, expected: MAGIC });
    }
    Ok(())
}

/// Client side, blocking: sends the hello, reads and checks the reply.
pub fn client_handshake<S: Read + Write + ?Sized>(stream: &mut S) -> Result<u16, ProtocolError> {
    stream.write_all(&Hello { version: PROTOCOL_VERSION }.encode())?;
    stream.flush()?;
    let mut reply = [0u8; REPLY_BYTES];
    stream.read_exact(&mut reply)?;
    HandshakeReply::decode(&reply)?.check()
}

/// Server side, blocking: reads the hello and answers it. On a version
/// mismatch the refusal is sent and the error returned; the caller closes.
/// (The daemon does the same steps on its non-blocking sockets with
/// [`Hello::decode`] and [`HandshakeReply::answer`].)
pub fn server_handshake<S: Read + Write + ?Sized>(stream: &mut S) -> Result<u16, ProtocolError> {
    let mut hello = [0u8; HELLO_BYTES];
    stream.read_exact(&mut hello)?;
    let hello = Hello::decode(&hello)?;
    let reply = HandshakeReply::answer(&hello);
    stream.write_all(&reply.encode())?;
    stream.flush()?;
    match reply {
        HandshakeReply::Accepted { version } => Ok(version),
        _ => Err(ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: hello.version }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_first_byte_is_not_a_resp_first_byte() {
        // Every byte a RESP2 client can send first is ASCII; the magic's is not.
        for resp_first in [b'*', b'$', b'+', b'-', b':', b'P', b'p', b' ', b'\r'] {
            assert!(!is_native_first_byte(resp_first));
        }
        assert!(is_native_first_byte(0xB1));
        assert!((0u8..0x80).all(|byte| !is_native_first_byte(byte)));
    }

    #[test]
    fn hello_and_reply_round_trip() {
        // Every reply status survives encode + decode.
        let hello = Hello { version: 7 };
        assert_eq!(Hello::decode(&hello.encode()).expect("hello"), hello);
        for reply in [
            HandshakeReply::Accepted { version: 1 },
            HandshakeReply::VersionRefused { server_version: 2 },
            HandshakeReply::Busy { server_version: 1 },
        ] {
            assert_eq!(HandshakeReply::decode(&reply.encode()).expect("reply"), reply);
        }
    }

    #[test]
    fn unknown_reply_status_is_an_error() {
        // A status this side does not know is refused, not guessed at.
        let mut bytes = HandshakeReply::Accepted { version: 1 }.encode();
        bytes[4] = 9;
        assert!(matches!(HandshakeReply::decode(&bytes), Err(ProtocolError::BadHandshakeStatus { status: 9 })));
    }

    #[test]
    fn resp_bytes_are_bad_magic() {
        // A RESP client that reached the native path by mistake gets BadMagic.
        let err = Hello::decode(b"*1\r\n$4").expect_err("not native");
        assert!(matches!(err, ProtocolError::BadMagic { found, .. } if &found == b"*1\r\n"));
    }
}
