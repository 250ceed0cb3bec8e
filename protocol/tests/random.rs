//! Property tests: arbitrary messages round-trip through frames cut at
//! arbitrary read boundaries, and arbitrary bytes (pure soup, or valid
//! frames with bytes flipped or cut) never make the decoder panic.
//!
//! PROPTEST_CASES is the long-run knob, e.g.
//! `PROPTEST_CASES=100000 cargo test --release -p blockkv-protocol --test random`.

use blockkv_protocol::codec::decode;
use blockkv_protocol::{
    BatchOp, ErrorKind, FrameDecoder, Request, Response, ScanItem, StatsReply, TtlReply, frame_message, read_frame,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `default_cases` cases, or PROPTEST_CASES when set.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|text| text.parse().ok()).unwrap_or(default_cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max_len)
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        (bytes(16), bytes(64), any::<Option<u64>>()).prop_map(|(key, value, ttl_ms)| BatchOp::Put {
            key,
            value,
            ttl_ms
        }),
        bytes(16).prop_map(|key| BatchOp::Delete { key }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        bytes(32).prop_map(|key| Request::Get { key }),
        (bytes(32), bytes(512), any::<Option<u64>>()).prop_map(|(key, value, ttl_ms)| Request::Put {
            key,
            value,
            ttl_ms
        }),
        bytes(32).prop_map(|key| Request::Delete { key }),
        bytes(32).prop_map(|key| Request::Exists { key }),
        (bytes(8), proptest::option::of(bytes(16)), any::<u32>(), any::<bool>())
            .prop_map(|(prefix, start_after, limit, values)| Request::Scan { prefix, start_after, limit, values }),
        bytes(32).prop_map(|key| Request::Ttl { key }),
        (bytes(32), any::<Option<u64>>()).prop_map(|(key, ttl_ms)| Request::Expire { key, ttl_ms }),
        prop::collection::vec(batch_op(), 0..8).prop_map(Request::Batch),
        Just(Request::Stats),
        Just(Request::Checkpoint),
        Just(Request::Compact),
    ]
}

fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(ErrorKind::ALL.to_vec())
}

fn response() -> impl Strategy<Value = Response> {
    let item = (bytes(16), proptest::option::of(bytes(64))).prop_map(|(key, value)| ScanItem { key, value });
    let ttl =
        prop_oneof![Just(TtlReply::Missing), Just(TtlReply::Persistent), any::<u64>().prop_map(TtlReply::ExpiresInMs)];
    prop_oneof![
        Just(Response::Pong),
        proptest::option::of(bytes(512)).prop_map(Response::Value),
        Just(Response::Done),
        any::<bool>().prop_map(Response::Deleted),
        any::<bool>().prop_map(Response::Exists),
        (prop::collection::vec(item, 0..8), any::<bool>()).prop_map(|(items, more)| Response::Keys { items, more }),
        ttl.prop_map(Response::Ttl),
        any::<bool>().prop_map(Response::TtlSet),
        (any::<u64>(), ".{0,40}").prop_map(|(keys, text)| {
            let mut stats = StatsReply::default();
            stats.store.keys = keys;
            stats.recovery.text = text;
            Response::Stats(Box::new(stats))
        }),
        any::<[u64; 5]>().prop_map(|[id, covered_lsn, keys, snapshot_blocks, elapsed_us]| {
            Response::Checkpointed { id, covered_lsn, keys, snapshot_blocks, elapsed_us }
        }),
        (error_kind(), ".{0,40}").prop_map(|(kind, message)| Response::Error { kind, message }),
    ]
}

/// Feeds `stream` to a FrameDecoder in chunks of the given sizes (cycled)
/// and returns every complete payload, or the first error.
fn decode_in_chunks(stream: &[u8], chunk_sizes: &[usize]) -> Result<Vec<Vec<u8>>, String> {
    let mut decoder = FrameDecoder::new();
    let mut payloads = Vec::new();
    let mut rest = stream;
    for &size in chunk_sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (mut chunk, after) = rest.split_at(size.clamp(1, rest.len()));
        while let Some(payload) = decoder.next_frame(&mut chunk).map_err(|err| err.to_string())? {
            payloads.push(payload);
        }
        assert!(chunk.is_empty(), "next_frame takes every byte before returning None");
        rest = after;
    }
    decoder.finish().map_err(|err| err.to_string())?;
    Ok(payloads)
}

/// Byte soup: random bytes, with now and then a well-formed small frame
/// around random bytes so that decode sees many plausible payloads.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        bytes(64),
        bytes(64).prop_map(|payload| {
            let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
            frame.extend(payload);
            frame
        }),
        // A real message's tag with random bytes after it.
        (0u32..16, bytes(48)).prop_map(|(tag, tail)| {
            let mut payload = tag.to_le_bytes().to_vec();
            payload.extend(tail);
            let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
            frame.extend(payload);
            frame
        }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn arbitrary_requests_round_trip_through_chunked_frames(
        requests in prop::collection::vec(request(), 1..6),
        chunk_sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        // Pipelined requests cut at random read boundaries decode to themselves, in order.
        let mut stream = Vec::new();
        for request in &requests {
            frame_message(request, &mut stream).expect("frames");
        }
        let payloads = decode_in_chunks(&stream, &chunk_sizes).expect("valid stream");
        let decoded: Vec<Request> = payloads.iter().map(|p| decode(p).expect("valid payload")).collect();
        prop_assert_eq!(decoded, requests);
    }

    #[test]
    fn arbitrary_responses_round_trip(response in response()) {
        // Every response decodes to itself through a blocking frame read.
        let mut stream = Vec::new();
        frame_message(&response, &mut stream).expect("frames");
        let payload = read_frame(&mut &stream[..]).expect("reads").expect("a frame");
        prop_assert_eq!(decode::<Response>(&payload).expect("decodes"), response);
    }

    #[test]
    fn byte_soup_never_panics(soup in soup(), chunk_sizes in prop::collection::vec(1usize..64, 1..6)) {
        // Any bytes: frames or errors, decodes or errors, never a panic; and
        // the blocking reader agrees with the incremental one.
        let incremental = decode_in_chunks(&soup, &chunk_sizes);
        if let Ok(payloads) = &incremental {
            for payload in payloads {
                let _ = decode::<Request>(payload);
                let _ = decode::<Response>(payload);
            }
        }
        let mut reader = &soup[..];
        let mut blocking = Vec::new();
        let blocking = loop {
            match read_frame(&mut reader) {
                Ok(Some(payload)) => blocking.push(payload),
                Ok(None) => break Ok(blocking),
                Err(err) => break Err(err.to_string()),
            }
        };
        prop_assert_eq!(incremental.is_ok(), blocking.is_ok());
        if let (Ok(a), Ok(b)) = (&incremental, &blocking) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn damaged_requests_decode_or_fail_cleanly(
        request in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        cut_it in any::<bool>(),
    ) {
        // A valid payload with bytes overwritten, or cut short, never panics.
        let mut stream = Vec::new();
        frame_message(&request, &mut stream).expect("frames");
        let mut payload = stream.split_off(4);
        for (at, byte) in flips {
            let at = at.index(payload.len());
            payload[at] = byte;
        }
        if cut_it {
            payload.truncate(cut.index(payload.len() + 1));
        }
        let _ = decode::<Request>(&payload);
        let _ = decode::<Response>(&payload);
    }
}
