//! Every message survives encode + decode, the wire tags are the ones
//! docs/PROTOCOL.md lists, and its worked example is the real bytes.

use blockkv_protocol::codec::{decode, encode};
use blockkv_protocol::frame::{FRAME_HEADROOM_BYTES, FRAME_VALUE_BYTES_MAX};
use blockkv_protocol::{
    BatchOp, CommandStats, ErrorKind, FRAME_BYTES_MAX, FrameDecoder, HandshakeReply, Hello, Message, PROTOCOL_VERSION,
    RecoveryStats, Request, Response, ScanItem, ServerStats, SpaceStats, StatsReply, StoreStats, TtlReply,
    frame_message, read_message,
};
use std::fmt::Debug;

fn round_trip<M: Message + PartialEq + Debug>(message: &M) {
    let payload = encode(message).expect("encodes");
    let back: M = decode(&payload).expect("decodes");
    assert_eq!(&back, message);
}

/// One of every request variant, in wire-tag order.
fn every_request() -> Vec<Request> {
    vec![
        Request::Ping,
        Request::Get { key: b"k".to_vec() },
        Request::Put { key: b"k".to_vec(), value: b"v".to_vec(), ttl_ms: Some(1500) },
        Request::Delete { key: Vec::new() },
        Request::Exists { key: vec![0xFF; 3] },
        Request::Scan { prefix: b"user:".to_vec(), start_after: Some(b"user:9".to_vec()), limit: 100, values: true },
        Request::Ttl { key: b"k".to_vec() },
        Request::Expire { key: b"k".to_vec(), ttl_ms: None },
        Request::Batch(vec![
            BatchOp::Put { key: b"a".to_vec(), value: vec![1, 2, 3], ttl_ms: None },
            BatchOp::Delete { key: b"b".to_vec() },
        ]),
        Request::Stats,
        Request::Checkpoint,
        Request::Compact,
    ]
}

fn sample_stats() -> StatsReply {
    StatsReply {
        server: ServerStats {
            version: "0.1.0".into(),
            protocol_version: 1,
            uptime_ms: 12_345,
            data_path: "/tmp/blockkv.kvdata".into(),
            sync_policy: "periodic 1000 ms".into(),
            connections_open: 2,
            connections_total: 9,
            connections_refused: 1,
            bad_frames: 3,
        },
        commands: vec![CommandStats {
            name: "get".into(),
            calls: 1000,
            errors: 1,
            p50_us: 12,
            p99_us: 80,
            p999_us: 400,
            max_us: 900,
        }],
        space: SpaceStats { block_bytes: 4096, block_count: 16_384, blocks_free: 16_000, ..SpaceStats::default() },
        store: StoreStats { keys: 1002, poisoned: Some("fdatasync failed".into()), ..StoreStats::default() },
        compaction: blockkv_protocol::CompactionStats {
            passes: 3,
            blocks_reclaimed: 40,
            write_amplification_milli: 1_450,
            ..Default::default()
        },
        recovery: RecoveryStats {
            text: "from checkpoint 4 (lsn 1002) …".into(),
            mode: "tolerate-tail".into(),
            checkpoint_id: Some(4),
            tail_cut: true,
            ..RecoveryStats::default()
        },
    }
}

/// One of every response variant, in wire-tag order.
fn every_response() -> Vec<Response> {
    vec![
        Response::Pong,
        Response::Value(Some(b"v".to_vec())),
        Response::Done,
        Response::Deleted(true),
        Response::Exists(false),
        Response::Keys {
            items: vec![
                ScanItem { key: b"a".to_vec(), value: None },
                ScanItem { key: b"b".to_vec(), value: Some(Vec::new()) },
            ],
            more: true,
        },
        Response::Ttl(TtlReply::ExpiresInMs(59_000)),
        Response::TtlSet(true),
        Response::Stats(Box::new(sample_stats())),
        Response::Checkpointed { id: 3, covered_lsn: 1002, keys: 1002, snapshot_blocks: 5, elapsed_us: 400 },
        Response::error(ErrorKind::NoSpace, "no space: need 2 free blocks"),
    ]
}

const EVERY_ERROR_KIND: [ErrorKind; 11] = ErrorKind::ALL;

#[test]
fn every_request_round_trips() {
    // Each request variant decodes to itself.
    for request in every_request() {
        round_trip(&request);
    }
}

#[test]
fn every_response_round_trips() {
    // Each response variant, every TTL answer and every error kind decode to themselves.
    for response in every_response() {
        round_trip(&response);
    }
    for ttl in [TtlReply::Missing, TtlReply::Persistent, TtlReply::ExpiresInMs(0)] {
        round_trip(&Response::Ttl(ttl));
    }
    for kind in EVERY_ERROR_KIND {
        round_trip(&Response::error(kind, kind.as_str()));
    }
    round_trip(&Response::Value(None));
    round_trip(&Response::Stats(Box::default()));
}

#[test]
fn wire_tags_are_the_documented_variant_positions() {
    // Reordering a variant would change the wire; PROTOCOL.md lists these tags.
    for (tag, request) in every_request().iter().enumerate() {
        assert_eq!(encode(request).expect("encodes")[..4], (tag as u32).to_le_bytes(), "{request:?}");
    }
    for (tag, response) in every_response().iter().enumerate() {
        assert_eq!(encode(response).expect("encodes")[..4], (tag as u32).to_le_bytes(), "{response:?}");
    }
    for (tag, kind) in EVERY_ERROR_KIND.iter().enumerate() {
        let payload = encode(&Response::error(*kind, "")).expect("encodes");
        assert_eq!(payload[4..8], (tag as u32).to_le_bytes(), "{kind:?}");
    }
}

/// The worked example in docs/PROTOCOL.md, section "Worked example".
const WORKED_EXAMPLE_HEX: &str = "29000000 02000000 0700000000000000 757365723a3432 \
                                  0500000000000000 68656c6c6f 01 60ea000000000000";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn worked_example_matches_protocol_md() {
    // The documented session (hello, reply, Put frame, Done frame) is byte
    // for byte what the code writes; update PROTOCOL.md if it changes on purpose.
    assert_eq!(hex(&Hello { version: PROTOCOL_VERSION }.encode()), "b14b56500100");
    assert_eq!(hex(&HandshakeReply::Accepted { version: PROTOCOL_VERSION }.encode()), "b14b5650000100");
    let put = Request::Put { key: b"user:42".to_vec(), value: b"hello".to_vec(), ttl_ms: Some(60_000) };
    let mut frame = Vec::new();
    frame_message(&put, &mut frame).expect("frames");
    assert_eq!(hex(&frame), WORKED_EXAMPLE_HEX.replace(' ', ""));
    let mut done = Vec::new();
    frame_message(&Response::Done, &mut done).expect("frames");
    assert_eq!(hex(&done), "0400000002000000");
}

#[test]
fn largest_put_fits_one_frame_and_round_trips() {
    // A 1 KiB key with a 16 MiB value and a TTL is within FRAME_BYTES_MAX.
    let put = Request::Put { key: vec![b'k'; 1024], value: vec![7; FRAME_VALUE_BYTES_MAX], ttl_ms: Some(1) };
    let mut frame = Vec::new();
    frame_message(&put, &mut frame).expect("fits");
    assert!(frame.len() - 4 <= FRAME_BYTES_MAX);
    assert!(frame.len() - 4 > FRAME_BYTES_MAX - FRAME_HEADROOM_BYTES);
    let mut decoder = FrameDecoder::new();
    let mut input = &frame[..];
    let payload = decoder.next_frame(&mut input).expect("decodes").expect("complete");
    assert_eq!(decode::<Request>(&payload).expect("message"), put);
}

#[test]
fn pipelined_requests_come_out_in_order() {
    // Several frames in one buffer decode one by one, in the order sent.
    let mut stream = Vec::new();
    for request in every_request() {
        frame_message(&request, &mut stream).expect("frames");
    }
    let mut reader = &stream[..];
    let mut got = Vec::new();
    while let Some(request) = read_message::<_, Request>(&mut reader).expect("reads") {
        got.push(request);
    }
    assert_eq!(got, every_request());
}

#[test]
fn error_kind_names_are_distinct_snake_case() {
    // `--json` and RESP use these names; they must not collide.
    let names: std::collections::BTreeSet<_> = EVERY_ERROR_KIND.iter().map(|kind| kind.to_string()).collect();
    assert_eq!(names.len(), EVERY_ERROR_KIND.len());
    assert!(names.iter().all(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
}
