//! blockkv's native wire protocol, shared by `kvd`, `kvctl` and the tools:
//! a version handshake, then length-prefixed frames, each carrying one
//! bincode-encoded [`Request`] (client to server) or [`Response`] (back).
//! docs/PROTOCOL.md draws every byte.
//!
//! Where things live:
//! - [`handshake`]: the magic, [`PROTOCOL_VERSION`], hello and reply, and
//!   the first-byte rule that tells native clients from RESP ones.
//! - [`frame`]: the u32 length prefix, [`FRAME_BYTES_MAX`], blocking
//!   [`read_frame`] / [`write_frame`] and the incremental [`FrameDecoder`].
//! - [`message`]: [`Request`], [`Response`] and their parts; [`stats`]: the
//!   `Stats` answer.
//! - [`codec`]: messages to payload bytes and back; the only file that
//!   names bincode.
//! - [`wire`]: frame + codec together: [`read_message`], [`write_message`],
//!   [`frame_message`].
//! - `error`: [`ProtocolError`].
//! - [`paths`]: the default socket and data paths kvd and kvctl share.
//! - [`resp`]: RESP2 (what Redis clients speak on the same socket): the
//!   incremental [`resp::RespDecoder`] and the reply writers.
#![deny(unsafe_code)]

pub mod codec;
mod error;
pub mod frame;
pub mod handshake;
pub mod message;
pub mod paths;
pub mod resp;
mod resp_command;
pub mod stats;
pub mod wire;

pub use codec::Message;
pub use error::ProtocolError;
pub use frame::{FRAME_BYTES_MAX, FrameDecoder, read_frame, write_frame};
pub use handshake::{HandshakeReply, Hello, MAGIC, PROTOCOL_VERSION, client_handshake, server_handshake};
pub use message::{BatchOp, ErrorKind, Request, Response, ScanItem, TtlReply};
pub use stats::{CommandStats, CompactionStats, RecoveryStats, ServerStats, SpaceStats, StatsReply, StoreStats};
pub use wire::{frame_message, read_message, write_message};
