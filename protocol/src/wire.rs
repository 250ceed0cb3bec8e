//! Messages over a stream: a frame around each encoded message. Blocking
//! [`read_message`] and [`write_message`] for clients (kvctl, kv-bench,
//! tests) and [`frame_message`] for a non-blocking server that fills an
//! output buffer.

use crate::codec::{self, Message};
use crate::error::ProtocolError;
use crate::frame::{FRAME_PREFIX_BYTES, frame_prefix, read_frame};
use std::io::{Read, Write};

/// Appends one complete frame holding `message` to `out`. On error (the
/// message is over [`crate::FRAME_BYTES_MAX`]) `out` is left as it was.
pub fn frame_message<M: Message>(message: &M, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_BYTES]);
    let prefix = codec::encode_into(message, out).and_then(frame_prefix);
    match prefix {
        Ok(prefix) => {
            out[start..start + FRAME_PREFIX_BYTES].copy_from_slice(&prefix);
            Ok(())
        }
        Err(err) => {
            out.truncate(start);
            Err(err)
        }
    }
}

/// Writes `message` as one frame, in one write call.
pub fn write_message<W: Write + ?Sized, M: Message>(writer: &mut W, message: &M) -> Result<(), ProtocolError> {
    let mut frame = Vec::new();
    frame_message(message, &mut frame)?;
    writer.write_all(&frame)?;
    Ok(())
}

/// Reads one frame and decodes it. `Ok(None)` is a clean end of stream at a
/// frame boundary.
pub fn read_message<R: Read + ?Sized, M: Message>(reader: &mut R) -> Result<Option<M>, ProtocolError> {
    match read_frame(reader)? {
        Some(payload) => codec::decode(&payload).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FRAME_BYTES_MAX;
    use crate::message::{Request, Response};

    #[test]
    fn oversized_message_leaves_the_buffer_unchanged() {
        // A response too big for a frame is refused and nothing half-written stays.
        let mut out = b"earlier".to_vec();
        let huge = Response::Value(Some(vec![0; FRAME_BYTES_MAX]));
        assert!(matches!(frame_message(&huge, &mut out), Err(ProtocolError::FrameTooLarge { .. })));
        assert_eq!(out, b"earlier");
    }

    #[test]
    fn framed_message_reads_back() {
        // write_message then read_message returns the same request, then a clean end.
        let mut stream = Vec::new();
        let put = Request::Put { key: b"k".to_vec(), value: b"v".to_vec(), ttl_ms: None };
        write_message(&mut stream, &put).expect("write");
        let mut reader = &stream[..];
        assert_eq!(read_message::<_, Request>(&mut reader).expect("read"), Some(put));
        assert_eq!(read_message::<_, Request>(&mut reader).expect("end"), None);
    }
}
