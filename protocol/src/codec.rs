//! Messages to payload bytes and back. The only file that names bincode
//! (pinned to 2.0.1), so that swapping the encoding touches this file alone.
//!
//! One fixed configuration, drawn in docs/PROTOCOL.md: little-endian,
//! fixed-width integers (an enum's variant index is a u32, a length a u64,
//! an `Option` or `bool` one byte), and a decode limit of
//! [`FRAME_BYTES_MAX`]: bincode checks the length of every byte string and
//! string against what is left of that limit before allocating for it, and
//! a list preallocates at most 1 MiB (serde's cautious size hint), so even a
//! short lying payload cannot make decode allocate much more than one
//! frame's worth. A payload must decode to exactly one message: bytes left
//! over are an error.

use crate::error::ProtocolError;
use crate::frame::{FRAME_BYTES_MAX, FRAME_VALUE_BYTES_MAX};
use crate::message::{Request, Response};
use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

type WireConfig = Configuration<LittleEndian, Fixint, Limit<FRAME_BYTES_MAX>>;

const fn wire_config() -> WireConfig {
    config::standard().with_little_endian().with_fixed_int_encoding().with_limit::<FRAME_BYTES_MAX>()
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::message::Request {}
    impl Sealed for crate::message::Response {}
}

/// A type that travels in a frame: [`Request`] or [`Response`].
pub trait Message: Serialize + DeserializeOwned + sealed::Sealed {}
impl Message for Request {}
impl Message for Response {}

/// The payload bytes of `message`.
pub fn encode<M: Message>(message: &M) -> Result<Vec<u8>, ProtocolError> {
    let mut payload = Vec::new();
    encode_into(message, &mut payload)?;
    Ok(payload)
}

/// Appends the payload bytes of `message` to `out`; returns how many.
pub fn encode_into<M: Message>(message: &M, out: &mut Vec<u8>) -> Result<usize, ProtocolError> {
    bincode::serde::encode_into_std_write(message, out, wire_config())
        .map_err(|err| ProtocolError::Encode(err.to_string()))
}

/// The message in `payload`, which must be exactly one message.
pub fn decode<M: Message>(payload: &[u8]) -> Result<M, ProtocolError> {
    let (message, used) = bincode::serde::decode_from_slice::<M, _>(payload, wire_config())
        .map_err(|err| ProtocolError::Decode(err.to_string()))?;
    if used != payload.len() {
        return Err(ProtocolError::Decode(format!(
            "{} bytes left over after a {used}-byte message",
            payload.len() - used
        )));
    }
    Ok(message)
}

// Encoded sizes, for servers and clients that budget a frame. Each one
// follows from the configuration above and is checked against real
// encodings by the tests.

/// Bytes of a variant index.
const TAG_BYTES: usize = 4;
/// Bytes of a length (of a byte string or a list).
const LEN_BYTES: usize = 8;
/// Bytes of an `Option`'s or a `bool`'s marker.
const MARKER_BYTES: usize = 1;

/// Payload bytes of `Request::Put` with a TTL (the largest Put).
pub const fn put_request_bytes(key_bytes: usize, value_bytes: usize) -> usize {
    TAG_BYTES + LEN_BYTES + key_bytes + LEN_BYTES + value_bytes + MARKER_BYTES + 8
}

/// Payload bytes of `Response::Value(Some(..))`.
pub const fn value_response_bytes(value_bytes: usize) -> usize {
    TAG_BYTES + MARKER_BYTES + LEN_BYTES + value_bytes
}

/// Payload bytes of `Response::Keys` with no items; each item adds
/// [`scan_item_bytes`].
pub const KEYS_RESPONSE_BASE_BYTES: usize = TAG_BYTES + LEN_BYTES + MARKER_BYTES;

/// Bytes one `ScanItem` adds to `Response::Keys`.
pub const fn scan_item_bytes(key_bytes: usize, value_bytes: Option<usize>) -> usize {
    let value = match value_bytes {
        Some(bytes) => LEN_BYTES + bytes,
        None => 0,
    };
    LEN_BYTES + key_bytes + MARKER_BYTES + value
}

/// The key length [`crate::frame::FRAME_HEADROOM_BYTES`] is sized for (the
/// engine's `KEY_BYTES_MAX`); the daemon asserts that the engine agrees.
const KEY_BYTES_PLANNED: usize = 1024;

// The largest Put, Get answer and one-item scan page fit one frame.
const _: () = assert!(put_request_bytes(KEY_BYTES_PLANNED, FRAME_VALUE_BYTES_MAX) <= FRAME_BYTES_MAX);
const _: () = assert!(value_response_bytes(FRAME_VALUE_BYTES_MAX) <= FRAME_BYTES_MAX);
const _: () = assert!(
    KEYS_RESPONSE_BASE_BYTES + scan_item_bytes(KEY_BYTES_PLANNED, Some(FRAME_VALUE_BYTES_MAX)) <= FRAME_BYTES_MAX
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ScanItem;

    #[test]
    fn size_budgets_match_real_encodings() {
        // The size budgets agree with what bincode actually writes.
        let put = Request::Put { key: vec![1; 10], value: vec![2; 300], ttl_ms: Some(5) };
        assert_eq!(encode(&put).expect("put").len(), put_request_bytes(10, 300));
        let value = Response::Value(Some(vec![3; 77]));
        assert_eq!(encode(&value).expect("value").len(), value_response_bytes(77));
        let items =
            vec![ScanItem { key: vec![4; 3], value: None }, ScanItem { key: vec![5; 6], value: Some(vec![6; 40]) }];
        let keys = Response::Keys { items, more: true };
        let expected = KEYS_RESPONSE_BASE_BYTES + scan_item_bytes(3, None) + scan_item_bytes(6, Some(40));
        assert_eq!(encode(&keys).expect("keys").len(), expected);
    }

    #[test]
    fn largest_messages_have_the_sizes_protocol_md_gives() {
        // docs/PROTOCOL.md, section 8, quotes these numbers.
        assert_eq!(FRAME_BYTES_MAX, 16_842_752);
        assert_eq!(put_request_bytes(KEY_BYTES_PLANNED, FRAME_VALUE_BYTES_MAX), 16_778_269);
        assert_eq!(value_response_bytes(FRAME_VALUE_BYTES_MAX), 16_777_229);
        let one_item = KEYS_RESPONSE_BASE_BYTES + scan_item_bytes(KEY_BYTES_PLANNED, Some(FRAME_VALUE_BYTES_MAX));
        assert_eq!(one_item, 16_778_270);
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        // A payload is exactly one message; a valid message plus junk is refused.
        let mut payload = encode(&Request::Ping).expect("ping");
        payload.push(0);
        let err = decode::<Request>(&payload).expect_err("trailing byte");
        assert!(matches!(err, ProtocolError::Decode(text) if text.contains("left over")));
    }

    #[test]
    fn huge_claimed_length_is_refused_without_allocating_it() {
        // A Get whose key claims u64::MAX bytes fails on the decode limit.
        let mut payload = 1u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode::<Request>(&payload), Err(ProtocolError::Decode(_))));
    }
}
