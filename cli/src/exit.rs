//! kvctl's exit codes (docs/OPERATIONS.md) and the mapping from a request and the
//! daemon's response to one of them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done / found |
//! | 1 | key not found: `get`, `delete`, `exists`, `ttl`, `expire`, `persist` |
//! | 2 | usage error (clap's own), or kvctl cannot read its input (`--file`, stdin) or write its output |
//! | 3 | cannot reach the daemon: no socket, connect refused, handshake failed, no answer in time, or an answer that is not the protocol |
//! | 4 | the daemon refused: any `Response::Error`, message on stderr; also a value over the protocol's limit, refused by kvctl before sending |

use blockkv_protocol::{Request, Response, TtlReply};

/// Done, or found.
pub const EXIT_OK: u8 = 0;
/// The key was not found (or had expired).
pub const EXIT_NOT_FOUND: u8 = 1;
/// Usage error: clap exits with this code on a bad command line.
pub const EXIT_USAGE: u8 = 2;
/// kvctl cannot reach the daemon, or cannot make sense of its answer.
pub const EXIT_UNREACHABLE: u8 = 3;
/// The daemon refused the request (`Response::Error` of any kind).
pub const EXIT_REFUSED: u8 = 4;

// clap's usage errors must keep meaning "usage error" here.
const _: () = assert!(EXIT_USAGE == 2);

/// The exit code for `response` as the answer to `request`.
///
/// An answer of the wrong kind (a `Pong` to a `Get`) is a protocol
/// mismatch and maps to [`EXIT_UNREACHABLE`], the same as an answer that
/// does not decode: kvctl could not talk to a kvd it understands.
pub fn exit_code_for(request: &Request, response: &Response) -> u8 {
    if let Response::Error { .. } = response {
        return EXIT_REFUSED;
    }
    if !request.is_answered_by(response) {
        return EXIT_UNREACHABLE;
    }
    match response {
        Response::Value(None)
        | Response::Deleted(false)
        | Response::Exists(false)
        | Response::Ttl(TtlReply::Missing)
        | Response::TtlSet(false) => EXIT_NOT_FOUND,
        _ => EXIT_OK,
    }
}

/// The response's name, for messages about an unexpected answer.
pub fn response_name(response: &Response) -> &'static str {
    match response {
        Response::Pong => "Pong",
        Response::Value(_) => "Value",
        Response::Done => "Done",
        Response::Deleted(_) => "Deleted",
        Response::Exists(_) => "Exists",
        Response::Keys { .. } => "Keys",
        Response::Ttl(_) => "Ttl",
        Response::TtlSet(_) => "TtlSet",
        Response::Stats(_) => "Stats",
        Response::Checkpointed { .. } => "Checkpointed",
        Response::Error { .. } => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockkv_protocol::{ErrorKind, ScanItem};

    fn key() -> Vec<u8> {
        b"k".to_vec()
    }

    /// One request of every kind.
    fn every_request() -> Vec<Request> {
        vec![
            Request::Ping,
            Request::Get { key: key() },
            Request::Put { key: key(), value: b"v".to_vec(), ttl_ms: None },
            Request::Delete { key: key() },
            Request::Exists { key: key() },
            Request::Scan { prefix: Vec::new(), start_after: None, limit: 10, values: false },
            Request::Ttl { key: key() },
            Request::Expire { key: key(), ttl_ms: Some(1000) },
            Request::Batch(Vec::new()),
            Request::Stats,
            Request::Checkpoint,
            Request::Compact,
        ]
    }

    const EVERY_KIND: [ErrorKind; 11] = ErrorKind::ALL;

    #[test]
    fn every_error_kind_exits_refused_for_every_request() {
        // Each of the 11 ErrorKinds, answering any request, is exit 4.
        for request in every_request() {
            for kind in EVERY_KIND {
                let response = Response::error(kind, "no");
                assert_eq!(exit_code_for(&request, &response), EXIT_REFUSED, "{request:?} {kind}");
            }
        }
    }

    #[test]
    fn each_answer_maps_to_its_documented_code() {
        // Found/done is 0, every "key not found" answer is 1.
        let checkpointed = Response::Checkpointed { id: 1, covered_lsn: 2, keys: 3, snapshot_blocks: 4, elapsed_us: 5 };
        let item = ScanItem { key: key(), value: None };
        let cases: Vec<(Request, Response, u8)> = vec![
            (Request::Ping, Response::Pong, EXIT_OK),
            (Request::Get { key: key() }, Response::Value(Some(b"v".to_vec())), EXIT_OK),
            (Request::Get { key: key() }, Response::Value(Some(Vec::new())), EXIT_OK),
            (Request::Get { key: key() }, Response::Value(None), EXIT_NOT_FOUND),
            (Request::Put { key: key(), value: Vec::new(), ttl_ms: None }, Response::Done, EXIT_OK),
            (Request::Delete { key: key() }, Response::Deleted(true), EXIT_OK),
            (Request::Delete { key: key() }, Response::Deleted(false), EXIT_NOT_FOUND),
            (Request::Exists { key: key() }, Response::Exists(true), EXIT_OK),
            (Request::Exists { key: key() }, Response::Exists(false), EXIT_NOT_FOUND),
            (every_request()[5].clone(), Response::Keys { items: vec![item], more: true }, EXIT_OK),
            (every_request()[5].clone(), Response::Keys { items: Vec::new(), more: false }, EXIT_OK),
            (Request::Ttl { key: key() }, Response::Ttl(TtlReply::Persistent), EXIT_OK),
            (Request::Ttl { key: key() }, Response::Ttl(TtlReply::ExpiresInMs(5)), EXIT_OK),
            (Request::Ttl { key: key() }, Response::Ttl(TtlReply::Missing), EXIT_NOT_FOUND),
            (Request::Expire { key: key(), ttl_ms: None }, Response::TtlSet(true), EXIT_OK),
            (Request::Expire { key: key(), ttl_ms: None }, Response::TtlSet(false), EXIT_NOT_FOUND),
            (Request::Batch(Vec::new()), Response::Done, EXIT_OK),
            (Request::Stats, Response::Stats(Box::default()), EXIT_OK),
            (Request::Checkpoint, checkpointed, EXIT_OK),
            (Request::Compact, Response::Done, EXIT_OK),
        ];
        for (request, response, code) in cases {
            assert_eq!(exit_code_for(&request, &response), code, "{request:?} answered by {response:?}");
        }
    }

    #[test]
    fn wrong_kind_of_answer_is_unreachable() {
        // A response that does not answer the request is a protocol mismatch: exit 3.
        let wrong = [
            (Request::Ping, Response::Done),
            (Request::Get { key: key() }, Response::Pong),
            (Request::Delete { key: key() }, Response::Exists(true)),
            (Request::Exists { key: key() }, Response::Deleted(false)),
            (Request::Ttl { key: key() }, Response::TtlSet(false)),
            (Request::Checkpoint, Response::Done),
        ];
        for (request, response) in wrong {
            assert!(!request.is_answered_by(&response));
            assert_eq!(exit_code_for(&request, &response), EXIT_UNREACHABLE, "{request:?} {response:?}");
        }
    }

    #[test]
    fn codes_are_the_documented_numbers() {
        // The documented numbers, pinned: scripts rely on them.
        assert_eq!([EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED], [0, 1, 2, 3, 4]);
    }
}
