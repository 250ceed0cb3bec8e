//! What a connection's bytes are read as. Its first byte says what it
//! speaks: the native protocol's magic (then the 6-byte hello, then
//! frames), or else RESP, from that byte on. docs/PROTOCOL.md, "Handshake,
//! and the first-byte rule versus RESP".
//!
//! Bad input (a bad frame, a RESP protocol error) gets an error reply in
//! the connection's protocol, sent after every earlier answer, then the
//! connection closes.

use crate::metrics::Metrics;
use crate::pipeline::{Queued, frame_response};
use crate::resp::Call;
use blockkv_protocol::handshake::{HELLO_BYTES, is_native_first_byte};
use blockkv_protocol::resp::{Decoded, RespDecoder, put_error};
use blockkv_protocol::{ErrorKind, FrameDecoder, HandshakeReply, Hello, PROTOCOL_VERSION, Request, Response, codec};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

enum Phase {
    /// Waiting for the 6-byte hello.
    Hello(Vec<u8>),
    /// Native frames, after the handshake.
    Open,
    /// RESP, from the first byte on (there is no handshake).
    Resp(RespDecoder),
}

/// What `Inbound::ingest` tells the connection.
pub(super) enum Ingested {
    /// Keep reading.
    More,
    /// Stop reading: answer what is queued, then send `final_error` (if
    /// any, already encoded), then close.
    Close { final_error: Option<Vec<u8>> },
}

/// One connection's decoding state: its phase and its frame decoder.
pub(super) struct Inbound {
    phase: Phase,
    frames: FrameDecoder,
}

impl Inbound {
    pub(super) fn new() -> Inbound {
        Inbound { phase: Phase::Hello(Vec::with_capacity(HELLO_BYTES)), frames: FrameDecoder::new() }
    }

    /// Holding a partial hello, frame or RESP command.
    pub(super) fn partial(&self) -> bool {
        match &self.phase {
            Phase::Hello(got) => !got.is_empty(),
            Phase::Open => self.frames.buffered_bytes() > 0,
            Phase::Resp(decoder) => decoder.buffered_bytes() > 0,
        }
    }

    /// Feeds received bytes through the handshake and the decoder: decoded
    /// requests go to `queued`, the handshake's reply to `out`.
    pub(super) fn ingest(
        &mut self,
        mut input: &[u8],
        queued: &mut VecDeque<Queued>,
        out: &mut Vec<u8>,
        metrics: &Metrics,
    ) -> Ingested {
        if let Phase::Hello(got) = &self.phase
            && got.is_empty()
            && !input.is_empty()
            && !is_native_first_byte(input[0])
        {
            self.phase = Phase::Resp(RespDecoder::new());
        }
        if let Phase::Resp(decoder) = &mut self.phase {
            return ingest_resp(decoder, input, queued, metrics);
        }
        if let Phase::Hello(got) = &mut self.phase {
            let take = (HELLO_BYTES - got.len()).min(input.len());
            got.extend_from_slice(&input[..take]);
            input = &input[take..];
            if got.len() < HELLO_BYTES {
                return Ingested::More;
            }
            let mut hello = [0u8; HELLO_BYTES];
            hello.copy_from_slice(got);
            let reply = match Hello::decode(&hello) {
                Ok(hello) => HandshakeReply::answer(&hello),
                Err(_) => HandshakeReply::VersionRefused { server_version: PROTOCOL_VERSION },
            };
            out.extend_from_slice(&reply.encode());
            if !matches!(reply, HandshakeReply::Accepted { .. }) {
                return Ingested::Close { final_error: None };
            }
            self.phase = Phase::Open;
        }
        loop {
            match self.frames.next_frame(&mut input) {
                Ok(Some(payload)) => match codec::decode::<Request>(&payload) {
                    Ok(request) => queued.push_back(Queued::Native(request)),
                    Err(err) => return refuse_frame(metrics, format!("request does not decode: {err}")),
                },
                Ok(None) => return Ingested::More,
                Err(err) => return refuse_frame(metrics, format!("bad frame: {err}")),
            }
        }
    }
}

/// RESP commands, each resolved to its spec as it is decoded.
fn ingest_resp(decoder: &mut RespDecoder, input: &[u8], queued: &mut VecDeque<Queued>, metrics: &Metrics) -> Ingested {
    decoder.feed(input);
    loop {
        match decoder.next_decoded() {
            Ok(Some(Decoded::Refused(message))) => queued.push_back(Queued::Resp(Call::refused(&message))),
            Ok(Some(Decoded::Command(command))) => {
                let call = Call::resolve(command);
                let closes = call.closes_connection();
                queued.push_back(Queued::Resp(call));
                if closes {
                    return Ingested::Close { final_error: None };
                }
            }
            Ok(None) => return Ingested::More,
            Err(err) => {
                let mut reply = Vec::new();
                put_error(&mut reply, &format!("ERR {err}"));
                return refuse(metrics, err.to_string(), reply);
            }
        }
    }
}

/// A bad native frame, answered with a BadRequest error response.
fn refuse_frame(metrics: &Metrics, message: String) -> Ingested {
    let mut reply = Vec::new();
    frame_response(&Response::error(ErrorKind::BadRequest, message.clone()), &mut reply);
    refuse(metrics, message, reply)
}

/// Bad input: the requests decoded before it are still answered, in
/// order, then `reply` (the error in the connection's protocol), then the
/// connection closes.
fn refuse(metrics: &Metrics, message: String, reply: Vec<u8>) -> Ingested {
    metrics.bad_frames.fetch_add(1, Ordering::Relaxed);
    tracing::info!("closing a connection: {message}");
    Ingested::Close { final_error: Some(reply) }
}
