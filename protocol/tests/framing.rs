//! Frames on blocking streams: clean end versus torn frame, the size limit
//! checked from the prefix alone, garbage payloads, and what a server sends
//! before it closes a connection over a bad frame.

use blockkv_protocol::codec::decode;
use blockkv_protocol::{
    ErrorKind, FRAME_BYTES_MAX, FrameDecoder, ProtocolError, Request, Response, read_frame, read_message, write_frame,
    write_message,
};
use std::io::{self, Read};

/// A reader that hands out one byte per call, and `Interrupted` between them.
struct Trickle<'a> {
    bytes: &'a [u8],
    interrupt_next: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if self.interrupt_next {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let Some((&first, rest)) = self.bytes.split_first() else { return Ok(0) };
        match buf.first_mut() {
            Some(slot) => *slot = first,
            None => return Ok(0),
        }
        self.bytes = rest;
        Ok(1)
    }
}

/// A reader that fails the test if more than `allowed` bytes are read.
struct Fenced<'a> {
    bytes: &'a [u8],
    allowed: usize,
}

impl Read for Fenced<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.allowed).min(self.bytes.len());
        assert!(n > 0 || self.allowed > 0, "read past the fence");
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.allowed -= n;
        Ok(n)
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut stream = Vec::new();
    write_frame(&mut stream, payload).expect("writes");
    stream
}

#[test]
fn empty_stream_is_a_clean_end() {
    // No bytes at all is the end of the stream at a frame boundary.
    assert!(read_frame(&mut &[][..]).expect("clean").is_none());
}

#[test]
fn end_after_whole_frames_is_a_clean_end() {
    // Two frames then EOF: two payloads, then None.
    let mut stream = framed(b"first");
    stream.extend(framed(b""));
    let mut reader = &stream[..];
    assert_eq!(read_frame(&mut reader).expect("frame").as_deref(), Some(&b"first"[..]));
    assert_eq!(read_frame(&mut reader).expect("frame").as_deref(), Some(&b""[..]));
    assert!(read_frame(&mut reader).expect("clean").is_none());
}

#[test]
fn end_inside_the_prefix_is_a_torn_frame() {
    // Two of the four prefix bytes, then EOF.
    let err = read_frame(&mut &[5u8, 0][..]).expect_err("torn");
    assert!(matches!(err, ProtocolError::TornFrame { received: 2, expected: 4 }), "{err}");
}

#[test]
fn end_inside_the_payload_is_a_torn_frame() {
    // The prefix promises 10 bytes; 3 arrive.
    let mut stream = 10u32.to_le_bytes().to_vec();
    stream.extend_from_slice(b"abc");
    let err = read_frame(&mut &stream[..]).expect_err("torn");
    assert!(matches!(err, ProtocolError::TornFrame { received: 7, expected: 14 }), "{err}");
}

#[test]
fn trickled_and_interrupted_reads_still_assemble_a_frame() {
    // One byte per read with EINTR in between is not an error.
    let stream = framed(b"slowly");
    let mut reader = Trickle { bytes: &stream, interrupt_next: false };
    assert_eq!(read_frame(&mut reader).expect("frame").as_deref(), Some(&b"slowly"[..]));
}

#[test]
fn oversized_prefix_is_refused_without_reading_the_payload() {
    // A 4 GiB prefix fails after exactly four bytes; the fence forbids more.
    let mut stream = u32::MAX.to_le_bytes().to_vec();
    stream.extend_from_slice(&[0; 64]);
    let mut reader = Fenced { bytes: &stream, allowed: 4 };
    let err = read_frame(&mut reader).expect_err("too large");
    assert!(matches!(err, ProtocolError::FrameTooLarge { len, limit }
        if len == u64::from(u32::MAX) && limit == FRAME_BYTES_MAX as u64));
}

#[test]
fn garbage_payload_is_a_decode_error() {
    // Unknown tags, short fields and bad UTF-8 are Decode errors, not panics.
    let cases: [&[u8]; 5] = [
        &[],
        &[99, 0, 0, 0],
        &[1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, b'x'],
        &[2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'k', 0, 0, 0, 0, 0, 0, 0, 0, 7],
        &[10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for payload in cases {
        assert!(matches!(decode::<Request>(payload), Err(ProtocolError::Decode(_))), "{payload:?}");
    }
    let bad_utf8 = [10u8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0x28];
    assert!(matches!(decode::<Response>(&bad_utf8), Err(ProtocolError::Decode(_))));
}

#[test]
fn bad_frame_gets_a_bad_request_answer_then_the_end() {
    // What a server does: answer BadRequest for a frame that does not decode
    // or is too large, then close; the client reads the answer, then EOF.
    let mut client_to_server = framed(b"\xffnot a request");
    client_to_server.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut decoder = FrameDecoder::new();
    let mut input = &client_to_server[..];
    let payload = decoder.next_frame(&mut input).expect("frame").expect("complete");
    let err = decode::<Request>(&payload).expect_err("garbage");
    let mut server_to_client = Vec::new();
    write_message(&mut server_to_client, &err.reply_before_close().expect("answerable")).expect("writes");
    let too_large = decoder.next_frame(&mut input).expect_err("too large");
    assert!(matches!(too_large.reply_before_close(), Some(Response::Error { kind: ErrorKind::BadRequest, .. })));

    let mut reader = &server_to_client[..];
    let answer = read_message::<_, Response>(&mut reader).expect("reads").expect("an answer");
    assert!(matches!(answer, Response::Error { kind: ErrorKind::BadRequest, message } if message.contains("decode")));
    assert!(read_message::<_, Response>(&mut reader).expect("clean end").is_none());
}

#[test]
fn torn_and_io_errors_get_no_answer() {
    // A peer that vanished mid-frame cannot be answered: no reply is offered.
    let torn = ProtocolError::TornFrame { received: 1, expected: 4 };
    assert!(torn.reply_before_close().is_none());
    assert!(ProtocolError::Io(io::ErrorKind::BrokenPipe.into()).reply_before_close().is_none());
}
