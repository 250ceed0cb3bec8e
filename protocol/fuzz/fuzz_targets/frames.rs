//! Byte streams as kvd reads them: the 6-byte hello, then frames fed to the
//! decoder in arbitrary pieces, each payload decoded as a request (what kvd
//! does) and as a response (what kvctl does). Nothing may panic; a length
//! over FRAME_BYTES_MAX must fail before allocating; a message that decodes
//! must re-encode to something that decodes to the same message.
//!
//! Input: `piece:u8` (the read size, as a socket may split a stream) then
//! the stream.
#![no_main]

use blockkv_protocol::codec::{decode, encode};
use blockkv_protocol::frame::{FRAME_BYTES_MAX, FrameDecoder};
use blockkv_protocol::handshake::{HELLO_BYTES, Hello};
use blockkv_protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fn round_trip<M>(payload: &[u8])
where
    M: blockkv_protocol::codec::Message + PartialEq + std::fmt::Debug,
{
    if let Ok(message) = decode::<M>(payload) {
        let again = encode(&message).expect("a decoded message encodes");
        assert_eq!(decode::<M>(&again).expect("re-encoded message decodes"), message);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&piece, mut stream)) = input.split_first() else { return };
    let piece = usize::from(piece).max(1);
    if let Some(hello) = stream.get(..HELLO_BYTES) {
        let _ = Hello::decode(hello.try_into().expect("hello length"));
    }
    let mut decoder = FrameDecoder::new();
    while !stream.is_empty() {
        let mut chunk = &stream[..piece.min(stream.len())];
        stream = &stream[chunk.len()..];
        loop {
            match decoder.next_frame(&mut chunk) {
                Ok(Some(payload)) => {
                    assert!(payload.len() <= FRAME_BYTES_MAX);
                    round_trip::<Request>(&payload);
                    round_trip::<Response>(&payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
            assert!(decoder.buffered_bytes() <= FRAME_BYTES_MAX + 4);
        }
    }
    let _ = decoder.finish();
});
