//! A response as kvctl prints it: plain text for people and pipes, or one
//! JSON object (`--json`).
//!
//! Plain output: `get` writes the value's bytes unchanged with no newline
//! added; `scan` writes each key as-is, one per line (`KEY<TAB>VALUE` with
//! `--values`); `ttl` writes the seconds left, rounded up, or `persistent`;
//! the rest write one short line. "Key not found" goes to stderr, so stdout
//! holds only answers.
//!
//! JSON output: one object per invocation with `"ok"` (true when kvd
//! answered, even "not found") and `"command"`, then the command's fields:
//!
//! | command | fields |
//! |---|---|
//! | ping, compact | — |
//! | put | `key`, `value_bytes`, `ttl_ms` (or null) |
//! | get | `key`, `found`, `value` (or null), `value_bytes` (or null) |
//! | delete | `key`, `deleted` |
//! | exists | `key`, `exists` |
//! | ttl | `key`, `found`, `persistent`, `ttl_ms` (or null) |
//! | expire, persist | `key`, `found`, `ttl_ms` (null for persist) |
//! | scan | `prefix`, `limit` (or null), `count`, `more`, `items`: [{`key`, `value`?}] |
//! | stats | `stats`: the `StatsReply` fields as named in protocol/src/stats.rs |
//! | checkpoint | `id`, `covered_lsn`, `keys`, `snapshot_blocks`, `elapsed_us` |
//! | any failure | `"ok": false`, `error`: {`kind`, `message`} |
//!
//! Keys, values and prefixes are strings when UTF-8, else `{"base64": …}`
//! (see [`crate::json`]).

use crate::error::CliError;
use crate::exit::{exit_code_for, response_name};
use crate::json::{bytes_value, display_bytes};
use crate::stats_text;
use blockkv_protocol::{Request, Response, ScanItem, TtlReply};
use serde_json::{Map, Value, json};
use std::io::Write;

/// The start of every JSON object: `ok` and `command`.
pub fn json_head(ok: bool, command: &str) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("ok".into(), Value::Bool(ok));
    object.insert("command".into(), Value::String(command.into()));
    object
}

/// Writes `object` and a newline to `out`.
pub fn write_json(out: &mut dyn Write, object: Map<String, Value>) -> Result<(), CliError> {
    let mut text = Value::Object(object).to_string();
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(CliError::Output)
}

/// Prints the answer to a single-response command and returns its exit code.
/// `Error` answers and answers of the wrong kind come back as errors.
pub fn render_response(
    command: &'static str,
    request: &Request,
    response: Response,
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CliError> {
    if let Response::Error { kind, message } = response {
        return Err(CliError::Refused { command, kind, message });
    }
    if !request.is_answered_by(&response) {
        return Err(CliError::UnexpectedResponse { command, response: response_name(&response) });
    }
    let code = exit_code_for(request, &response);
    if as_json {
        write_json(out, response_json(command, request, &response))?;
    } else {
        write_plain(request, &response, out, err)?;
    }
    Ok(code)
}

/// The key a request is about, if it has one.
fn request_key(request: &Request) -> Option<&[u8]> {
    match request {
        Request::Get { key }
        | Request::Put { key, .. }
        | Request::Delete { key }
        | Request::Exists { key }
        | Request::Ttl { key }
        | Request::Expire { key, .. } => Some(key),
        _ => None,
    }
}

/// The JSON object for a (non-error) response to `request`.
pub fn response_json(command: &str, request: &Request, response: &Response) -> Map<String, Value> {
    let mut object = json_head(true, command);
    if let Some(key) = request_key(request) {
        object.insert("key".into(), bytes_value(key));
    }
    let fields = match (request, response) {
        (Request::Put { value, ttl_ms, .. }, _) => json!({ "value_bytes": value.len(), "ttl_ms": ttl_ms }),
        (_, Response::Value(value)) => json!({
            "found": value.is_some(),
            "value": value.as_deref().map(bytes_value),
            "value_bytes": value.as_ref().map(Vec::len),
        }),
        (_, Response::Deleted(deleted)) => json!({ "deleted": deleted }),
        (_, Response::Exists(exists)) => json!({ "exists": exists }),
        (_, Response::Ttl(ttl)) => json!({
            "found": *ttl != TtlReply::Missing,
            "persistent": *ttl == TtlReply::Persistent,
            "ttl_ms": match ttl { TtlReply::ExpiresInMs(ms) => Some(*ms), _ => None },
        }),
        (Request::Expire { ttl_ms, .. }, Response::TtlSet(found)) => json!({ "found": found, "ttl_ms": ttl_ms }),
        (_, Response::Stats(stats)) => json!({ "stats": stats }),
        (_, Response::Checkpointed { id, covered_lsn, keys, snapshot_blocks, elapsed_us }) => json!({
            "id": id, "covered_lsn": covered_lsn, "keys": keys,
            "snapshot_blocks": snapshot_blocks, "elapsed_us": elapsed_us,
        }),
        _ => json!({}),
    };
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    object
}

fn write_plain(
    request: &Request,
    response: &Response,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let not_found = || format!("key not found: {}\n", display_bytes(request_key(request).unwrap_or_default()));
    let text: Vec<u8> = match response {
        Response::Value(Some(value)) => return out.write_all(value).map_err(CliError::Output),
        Response::Value(None)
        | Response::Deleted(false)
        | Response::Ttl(TtlReply::Missing)
        | Response::TtlSet(false) => {
            // stderr is best effort: a closed stderr must not change the exit code.
            let _ = err.write_all(not_found().as_bytes());
            return Ok(());
        }
        Response::Pong => b"PONG\n".to_vec(),
        Response::Deleted(true) => b"deleted\n".to_vec(),
        Response::Exists(exists) => format!("{exists}\n").into_bytes(),
        Response::Ttl(TtlReply::Persistent) => b"persistent\n".to_vec(),
        Response::Ttl(TtlReply::ExpiresInMs(ms)) => format!("{}\n", ms.div_ceil(1000)).into_bytes(),
        Response::Stats(stats) => stats_text::render(stats).into_bytes(),
        Response::Checkpointed { id, covered_lsn, keys, snapshot_blocks, elapsed_us } => format!(
            "checkpoint {id} written: covers lsn {covered_lsn}, {keys} keys, {snapshot_blocks} snapshot blocks, \
             {}\n",
            stats_text::micros(*elapsed_us)
        )
        .into_bytes(),
        Response::Done if matches!(request, Request::Compact) => b"compaction pass done\n".to_vec(),
        Response::Done | Response::TtlSet(true) => b"OK\n".to_vec(),
        Response::Keys { .. } | Response::Error { .. } => Vec::new(),
    };
    out.write_all(&text).map_err(CliError::Output)
}

/// One scan item in plain form: the key's bytes, then a tab and the value's
/// bytes when the item carries one, then a newline. Nothing is escaped.
pub fn write_scan_item(item: &ScanItem, out: &mut dyn Write) -> Result<(), CliError> {
    let mut line = Vec::with_capacity(item.key.len() + 2 + item.value.as_ref().map_or(0, Vec::len));
    line.extend_from_slice(&item.key);
    if let Some(value) = &item.value {
        line.push(b'\t');
        line.extend_from_slice(value);
    }
    line.push(b'\n');
    out.write_all(&line).map_err(CliError::Output)
}

/// One scan item in JSON form: `{"key": …}` plus `"value"` when it has one.
pub fn scan_item_json(item: &ScanItem) -> Value {
    let mut object = Map::new();
    object.insert("key".into(), bytes_value(&item.key));
    if let Some(value) = &item.value {
        object.insert("value".into(), bytes_value(value));
    }
    Value::Object(object)
}

/// The JSON object of a failed invocation.
pub fn error_json(command: &str, error: &CliError) -> Map<String, Value> {
    let mut object = json_head(false, command);
    object.insert("error".into(), json!({ "kind": error.kind_name(), "message": error.to_string() }));
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{EXIT_NOT_FOUND, EXIT_OK};
    use blockkv_protocol::StatsReply;

    fn key() -> Vec<u8> {
        b"user:42".to_vec()
    }

    /// Renders `response` to `request` as JSON: (exit code, the one object).
    fn json_of(command: &'static str, request: Request, response: Response) -> (u8, Value) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = render_response(command, &request, response, true, &mut out, &mut err).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "one object on one line: {text}");
        assert!(err.is_empty(), "--json writes nothing to stderr for an answer");
        (code, serde_json::from_str(&text).expect("valid JSON"))
    }

    /// Renders `response` to `request` as plain text: (exit code, stdout, stderr).
    fn plain_of(request: Request, response: Response) -> (u8, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = render_response("cmd", &request, response, false, &mut out, &mut err).expect("render");
        (code, out, String::from_utf8(err).expect("utf-8"))
    }

    #[test]
    fn json_shape_of_key_commands() {
        // put, get, delete, exists, ttl, expire and persist objects have exactly the documented fields.
        let put = Request::Put { key: key(), value: b"hello".to_vec(), ttl_ms: Some(60_000) };
        let cases = vec![
            (
                json_of("put", put, Response::Done),
                json!({"ok": true, "command": "put", "key": "user:42", "value_bytes": 5, "ttl_ms": 60000}),
            ),
            (
                json_of("get", Request::Get { key: key() }, Response::Value(Some(b"hi".to_vec()))),
                json!({"ok": true, "command": "get", "key": "user:42", "found": true, "value": "hi", "value_bytes": 2}),
            ),
            (
                json_of("get", Request::Get { key: key() }, Response::Value(None)),
                json!({"ok": true, "command": "get", "key": "user:42", "found": false, "value": null, "value_bytes": null}),
            ),
            (
                json_of("delete", Request::Delete { key: key() }, Response::Deleted(false)),
                json!({"ok": true, "command": "delete", "key": "user:42", "deleted": false}),
            ),
            (
                json_of("exists", Request::Exists { key: key() }, Response::Exists(true)),
                json!({"ok": true, "command": "exists", "key": "user:42", "exists": true}),
            ),
            (
                json_of("ttl", Request::Ttl { key: key() }, Response::Ttl(TtlReply::ExpiresInMs(1500))),
                json!({"ok": true, "command": "ttl", "key": "user:42", "found": true, "persistent": false, "ttl_ms": 1500}),
            ),
            (
                json_of("ttl", Request::Ttl { key: key() }, Response::Ttl(TtlReply::Persistent)),
                json!({"ok": true, "command": "ttl", "key": "user:42", "found": true, "persistent": true, "ttl_ms": null}),
            ),
            (
                json_of("expire", Request::Expire { key: key(), ttl_ms: Some(9000) }, Response::TtlSet(true)),
                json!({"ok": true, "command": "expire", "key": "user:42", "found": true, "ttl_ms": 9000}),
            ),
            (
                json_of("persist", Request::Expire { key: key(), ttl_ms: None }, Response::TtlSet(false)),
                json!({"ok": true, "command": "persist", "key": "user:42", "found": false, "ttl_ms": null}),
            ),
        ];
        for ((_, actual), expected) in cases {
            assert_eq!(actual, expected);
        }
    }

    #[test]
    fn json_codes_match_plain_codes() {
        // --json changes the printing, not the exit code: not found is still 1.
        assert_eq!(json_of("get", Request::Get { key: key() }, Response::Value(None)).0, EXIT_NOT_FOUND);
        assert_eq!(json_of("ttl", Request::Ttl { key: key() }, Response::Ttl(TtlReply::Missing)).0, EXIT_NOT_FOUND);
        assert_eq!(json_of("ping", Request::Ping, Response::Pong).0, EXIT_OK);
    }

    #[test]
    fn json_binary_value_is_base64() {
        // A value that is not UTF-8 comes out as {"base64": ...}; so does a binary key.
        let (_, object) = json_of("get", Request::Get { key: b"\xfe".to_vec() }, Response::Value(Some(vec![0, 0xFF])));
        assert_eq!(object["key"], json!({"base64": "/g=="}));
        assert_eq!(object["value"], json!({"base64": "AP8="}));
        assert_eq!(object["value_bytes"], 2);
    }

    #[test]
    fn json_shape_of_server_commands() {
        // ping, compact, checkpoint and stats objects: stats carries every StatsReply section.
        assert_eq!(json_of("ping", Request::Ping, Response::Pong).1, json!({"ok": true, "command": "ping"}));
        assert_eq!(json_of("compact", Request::Compact, Response::Done).1, json!({"ok": true, "command": "compact"}));
        let checkpointed =
            Response::Checkpointed { id: 7, covered_lsn: 99, keys: 3, snapshot_blocks: 2, elapsed_us: 1500 };
        assert_eq!(
            json_of("checkpoint", Request::Checkpoint, checkpointed).1,
            json!({"ok": true, "command": "checkpoint", "id": 7, "covered_lsn": 99, "keys": 3,
                   "snapshot_blocks": 2, "elapsed_us": 1500})
        );
        let mut stats = StatsReply::default();
        stats.store.keys = 12;
        let (_, object) = json_of("stats", Request::Stats, Response::Stats(Box::new(stats)));
        for section in ["server", "commands", "space", "store", "recovery"] {
            assert!(object["stats"].get(section).is_some(), "stats.{section} missing: {object}");
        }
        assert_eq!(object["stats"]["store"]["keys"], 12);
        assert_eq!(object["stats"]["store"]["poisoned"], Value::Null);
    }

    #[test]
    fn plain_output_of_each_answer() {
        // One short line per answer; not-found notes go to stderr with the key escaped.
        let k = || b"a\nb".to_vec();
        let cases: Vec<(Request, Response, &[u8], &str)> = vec![
            (Request::Ping, Response::Pong, b"PONG\n", ""),
            (Request::Put { key: k(), value: Vec::new(), ttl_ms: None }, Response::Done, b"OK\n", ""),
            (Request::Delete { key: k() }, Response::Deleted(true), b"deleted\n", ""),
            (Request::Delete { key: k() }, Response::Deleted(false), b"", "key not found: a\\nb\n"),
            (Request::Exists { key: k() }, Response::Exists(true), b"true\n", ""),
            (Request::Exists { key: k() }, Response::Exists(false), b"false\n", ""),
            (Request::Ttl { key: k() }, Response::Ttl(TtlReply::ExpiresInMs(1001)), b"2\n", ""),
            (Request::Ttl { key: k() }, Response::Ttl(TtlReply::Persistent), b"persistent\n", ""),
            (Request::Expire { key: k(), ttl_ms: Some(1) }, Response::TtlSet(true), b"OK\n", ""),
            (Request::Compact, Response::Done, b"compaction pass done\n", ""),
        ];
        for (request, response, out, err) in cases {
            let (_, actual_out, actual_err) = plain_of(request.clone(), response);
            assert_eq!((actual_out.as_slice(), actual_err.as_str()), (out, err), "{request:?}");
        }
    }
}
