//! Frames: a 4-byte little-endian payload length, then the payload.
//!
//! ```text
//! 0               4                         4 + len
//! +---------------+-------------------------+
//! | len: u32 LE   | payload: len bytes      |   len <= FRAME_BYTES_MAX
//! +---------------+-------------------------+
//! ```
//!
//! The length is checked against [`FRAME_BYTES_MAX`] as soon as its four
//! bytes are in, before any buffer is allocated for the payload; the payload
//! buffer then grows only with the bytes that actually arrive, so a peer that
//! announces a large frame and sends nothing costs nothing. Two readers:
//! [`read_frame`] for blocking streams, [`FrameDecoder`] for a non-blocking
//! server that is handed bytes as they come.

use crate::error::ProtocolError;
use std::io::{ErrorKind as IoErrorKind, Read, Write};

/// Bytes of the length prefix.
pub const FRAME_PREFIX_BYTES: usize = 4;
/// The largest value a frame is sized to carry: the engine's
/// `VALUE_BYTES_MAX`. The daemon asserts at compile time that the engine's
/// limits fit (see [`crate::codec::put_request_bytes`]).
pub const FRAME_VALUE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Room beside the largest value for the key (the engine's `KEY_BYTES_MAX`
/// is 1 KiB) and the message encoding.
pub const FRAME_HEADROOM_BYTES: usize = 64 * 1024;
/// Largest payload of one frame, either direction.
pub const FRAME_BYTES_MAX: usize = FRAME_VALUE_BYTES_MAX + FRAME_HEADROOM_BYTES;
/// First allocation for a payload read by [`read_frame`]; it grows from
/// there with the bytes that arrive.
const READ_CHUNK_BYTES: usize = 64 * 1024;

const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);

/// The payload length a prefix announces, if it is within the limit.
fn checked_len(prefix: [u8; FRAME_PREFIX_BYTES]) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(prefix);
    if len as usize > FRAME_BYTES_MAX {
        return Err(ProtocolError::FrameTooLarge { len: u64::from(len), limit: FRAME_BYTES_MAX as u64 });
    }
    Ok(len as usize)
}

/// The prefix for a payload of `len` bytes; refuses what the peer would refuse.
pub fn frame_prefix(len: usize) -> Result<[u8; FRAME_PREFIX_BYTES], ProtocolError> {
    if len > FRAME_BYTES_MAX {
        return Err(ProtocolError::FrameTooLarge { len: len as u64, limit: FRAME_BYTES_MAX as u64 });
    }
    Ok((len as u32).to_le_bytes())
}

/// Reads one frame. `Ok(None)` is a clean end of stream at a frame boundary;
/// an end of stream anywhere inside a frame (prefix included) is
/// [`ProtocolError::TornFrame`].
pub fn read_frame<R: Read + ?Sized>(reader: &mut R) -> Result<Option<Vec<u8>>, ProtocolError> {
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    let mut have = 0;
    while have < FRAME_PREFIX_BYTES {
        match reader.read(&mut prefix[have..]) {
            Ok(0) if have == 0 => return Ok(None),
            Ok(0) => {
                return Err(ProtocolError::TornFrame { received: have as u64, expected: FRAME_PREFIX_BYTES as u64 });
            }
            Ok(n) => have += n,
            Err(err) if err.kind() == IoErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    let len = checked_len(prefix)?;
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
    reader.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        let received = (FRAME_PREFIX_BYTES + payload.len()) as u64;
        return Err(ProtocolError::TornFrame { received, expected: (FRAME_PREFIX_BYTES + len) as u64 });
    }
    Ok(Some(payload))
}

/// Writes one frame. Two writes (prefix, payload): give it a buffered writer
/// on a socket, or use [`crate::wire::write_message`], which writes once.
pub fn write_frame<W: Write + ?Sized>(writer: &mut W, payload: &[u8]) -> Result<(), ProtocolError> {
    let prefix = frame_prefix(payload.len())?;
    writer.write_all(&prefix)?;
    writer.write_all(payload)?;
    Ok(())
}

/// Incremental frame reader for a non-blocking server: hand it the bytes
/// each read returned, take complete frames out.
///
/// It never holds more than one frame plus its prefix: [`push`](Self::push)
/// takes bytes only up to the end of the frame being assembled and nothing
/// while a complete frame waits for [`pop`](Self::pop); the caller keeps the
/// rest of its read buffer for the next call. After an error the stream is
/// out of step: answer (see [`ProtocolError::reply_before_close`]) and close.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    prefix: [u8; FRAME_PREFIX_BYTES],
    prefix_have: usize,
    /// The payload length, once the whole prefix is in and checked.
    payload_len: Option<usize>,
    payload: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Takes bytes from `input` up to the end of the current frame and
    /// returns how many it took (0 while a complete frame waits to be
    /// popped). Fails as soon as a prefix announces more than
    /// [`FRAME_BYTES_MAX`], before allocating anything for it.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, ProtocolError> {
        let mut taken = 0;
        if self.payload_len.is_none() {
            let from_input = (FRAME_PREFIX_BYTES - self.prefix_have).min(input.len());
            self.prefix[self.prefix_have..self.prefix_have + from_input].copy_from_slice(&input[..from_input]);
            self.prefix_have += from_input;
            taken += from_input;
            if self.prefix_have < FRAME_PREFIX_BYTES {
                return Ok(taken);
            }
            self.payload_len = Some(checked_len(self.prefix)?);
        }
        let Some(len) = self.payload_len else { return Ok(taken) };
        let from_input = (len - self.payload.len()).min(input.len() - taken);
        let wanted = self.payload.len() + from_input;
        if wanted > self.payload.capacity() {
            // Grow by doubling, but never past the announced length.
            let target = (self.payload.capacity() * 2).max(wanted).min(len);
            self.payload.reserve_exact(target - self.payload.len());
        }
        self.payload.extend_from_slice(&input[taken..taken + from_input]);
        Ok(taken + from_input)
    }

    /// The next complete frame's payload, if one is in.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        match self.payload_len {
            Some(len) if self.payload.len() == len => {
                self.prefix_have = 0;
                self.payload_len = None;
                Some(std::mem::take(&mut self.payload))
            }
            _ => None,
        }
    }

    /// Pushes from `input`, advancing it past what was taken, and returns
    /// the next complete frame. Call until it returns `Ok(None)`; by then
    /// every byte of `input` is taken.
    pub fn next_frame(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
        if let Some(frame) = self.pop() {
            return Ok(Some(frame));
        }
        let taken = self.push(input)?;
        *input = &input[taken..];
        Ok(self.pop())
    }

    /// Bytes held for the frame being assembled (prefix included).
    pub fn buffered_bytes(&self) -> usize {
        self.prefix_have + self.payload.len()
    }

    /// At the end of the stream: Ok if it ended at a frame boundary,
    /// [`ProtocolError::TornFrame`] if inside a frame.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.buffered_bytes() == 0 {
            return Ok(());
        }
        let expected = FRAME_PREFIX_BYTES + self.payload_len.unwrap_or(0);
        Err(ProtocolError::TornFrame { received: self.buffered_bytes() as u64, expected: expected as u64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn four_gib_prefix_is_refused_from_the_prefix_alone() {
        // A 4 GiB announcement fails on its 4 bytes, with nothing allocated.
        let mut decoder = FrameDecoder::new();
        let err = decoder.push(&u32::MAX.to_le_bytes()).expect_err("over the limit");
        assert!(matches!(err, ProtocolError::FrameTooLarge { len, .. } if len == u64::from(u32::MAX)));
        assert_eq!(decoder.payload.capacity(), 0);
    }

    #[test]
    fn one_byte_over_the_limit_is_refused_and_the_limit_itself_is_not() {
        // The boundary: FRAME_BYTES_MAX passes the check, one more does not.
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&(FRAME_BYTES_MAX as u32).to_le_bytes()).expect("at the limit"), 4);
        let mut decoder = FrameDecoder::new();
        assert!(decoder.push(&(FRAME_BYTES_MAX as u32 + 1).to_le_bytes()).is_err());
    }

    #[test]
    fn payload_buffer_never_grows_past_the_announced_length() {
        // Fed in odd-sized chunks, the buffer's capacity stays within one frame.
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let bytes = frame(&payload);
        let mut decoder = FrameDecoder::new();
        let mut input = &bytes[..];
        let mut got = None;
        while got.is_none() {
            let chunk_bytes = input.len().min(7_777);
            let (mut chunk, rest) = input.split_at(chunk_bytes);
            got = decoder.next_frame(&mut chunk).expect("decodes");
            assert!(chunk.is_empty());
            assert!(decoder.payload.capacity() <= payload.len());
            input = rest;
        }
        assert_eq!(got.as_deref(), Some(&payload[..]));
    }

    #[test]
    fn push_takes_nothing_while_a_frame_waits() {
        // Two frames in one read: the decoder stops at the first frame's end.
        let mut bytes = frame(b"one");
        bytes.extend(frame(b"two"));
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&bytes).expect("push"), 7);
        assert_eq!(decoder.push(&bytes[7..]).expect("push"), 0);
        assert_eq!(decoder.pop().as_deref(), Some(&b"one"[..]));
        assert_eq!(decoder.push(&bytes[7..]).expect("push"), 7);
        assert_eq!(decoder.pop().as_deref(), Some(&b"two"[..]));
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn empty_frame_is_complete_after_its_prefix() {
        // A zero-length payload is a frame (that will not decode as a message).
        let mut decoder = FrameDecoder::new();
        let mut input = &[0u8, 0, 0, 0][..];
        assert_eq!(decoder.next_frame(&mut input).expect("frame"), Some(Vec::new()));
        assert!(decoder.finish().is_ok());
    }

    #[test]
    fn finish_tells_a_boundary_from_a_torn_frame() {
        // End of stream after a whole frame is clean; inside one it is torn.
        let bytes = frame(b"hello");
        let mut decoder = FrameDecoder::new();
        assert!(decoder.finish().is_ok());
        decoder.push(&bytes[..2]).expect("push");
        assert!(matches!(decoder.finish(), Err(ProtocolError::TornFrame { received: 2, expected: 4 })));
        decoder.push(&bytes[2..6]).expect("push");
        assert!(matches!(decoder.finish(), Err(ProtocolError::TornFrame { received: 6, expected: 9 })));
    }

    #[test]
    fn write_frame_refuses_what_the_peer_would_refuse() {
        // The sender checks the limit too, so it never sends a doomed frame.
        let payload = vec![0u8; FRAME_BYTES_MAX + 1];
        let mut out = Vec::new();
        assert!(matches!(write_frame(&mut out, &payload), Err(ProtocolError::FrameTooLarge { .. })));
        assert!(out.is_empty());
    }
}
