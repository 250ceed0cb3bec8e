//! One kvctl invocation, from parsed arguments to exit code: read the
//! value if there is one ([`plan`]), connect, send the request (a scan
//! pages through as many as it needs), print the answer ([`perform`]), and
//! on failure print the message and return its exit code ([`run`]).

use crate::args::{Cli, Command};
use crate::client::{Call, Client};
use crate::error::CliError;
use crate::input::{ValueSource, read_value};
use crate::render::{error_json, json_head, render_response, scan_item_json, write_json, write_scan_item};
use crate::{exit::EXIT_OK, json::bytes_value};
use blockkv_protocol::{Request, Response};
use clap::CommandFactory;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// Keys asked for per scan request; a scan of more pages through.
pub const SCAN_PAGE_KEYS: u32 = 1000;

/// The process's standard streams, as [`run`] uses them.
#[derive(Debug)]
pub struct Streams<'a, R: Read, W: Write, E: Write> {
    pub stdin: &'a mut R,
    /// True when stdin is a terminal: `put` without a value then says it is
    /// waiting for the value (end with Ctrl-D).
    pub stdin_is_terminal: bool,
    pub stdout: &'a mut W,
    pub stderr: &'a mut E,
}

/// What one command sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One request, one response.
    One(Request),
    /// Scan requests, paging with `start_after` until `limit` keys (all
    /// when None) or the last page.
    Scan { prefix: Vec<u8>, limit: Option<u64>, values: bool },
    /// No request: print a completion script.
    Completions(clap_complete::Shell),
}

/// Runs `cli` and returns the process exit code. Every failure is printed
/// here: "kvctl: MESSAGE" on stderr, and with `--json` also as the
/// invocation's one JSON object on stdout.
pub fn run<R: Read, W: Write, E: Write>(cli: &Cli, streams: Streams<'_, R, W, E>) -> u8 {
    let Streams { stdin, stdin_is_terminal, stdout, stderr } = streams;
    let result = plan(&cli.command, stdin, stdin_is_terminal, stderr).and_then(|plan| match plan {
        Plan::Completions(shell) => write_completions(shell, stdout),
        plan => {
            let mut client = Client::connect(&cli.socket_path(), Duration::from_secs(cli.timeout))?;
            perform(cli.command.name(), &plan, &mut client, cli.json, stdout, stderr)
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            report(cli, &error, stdout, stderr);
            error.exit_code()
        }
    }
}

/// Prints a failure: nothing more when stdout's reader is gone, else the
/// message on stderr and, with `--json`, the error object on stdout.
fn report(cli: &Cli, error: &CliError, stdout: &mut dyn Write, stderr: &mut dyn Write) {
    if error.is_broken_pipe() {
        return;
    }
    if cli.json && !matches!(error, CliError::Output(_)) {
        // Best effort: if stdout fails now, stderr still says why.
        let _ = write_json(stdout, error_json(cli.command.name(), error));
    }
    let _ = writeln!(stderr, "kvctl: {error}");
}

/// What `command` sends; reads `put`'s value from its argument,
/// `--file` or stdin first, so that a slow stdin cannot eat into a timeout.
pub fn plan(
    command: &Command,
    stdin: &mut dyn Read,
    stdin_is_terminal: bool,
    stderr: &mut dyn Write,
) -> Result<Plan, CliError> {
    let key = |key: &std::ffi::OsString| key.as_bytes().to_vec();
    let request = match command {
        Command::Put { key: k, value, ttl, file } => {
            let source = match (value, file) {
                (Some(value), _) => ValueSource::Argument(value),
                (None, Some(path)) => ValueSource::File(path),
                (None, None) => ValueSource::Stdin,
            };
            if matches!(source, ValueSource::Stdin) && stdin_is_terminal {
                let _ = writeln!(stderr, "kvctl: reading the value from stdin; end it with Ctrl-D");
            }
            let value = read_value(source, stdin)?;
            // The parser caps --ttl at TTL_SECS_MAX, so the milliseconds fit.
            Request::Put { key: key(k), value, ttl_ms: ttl.map(|secs| secs.saturating_mul(1000)) }
        }
        Command::Get { key: k } => Request::Get { key: key(k) },
        Command::Delete { key: k } => Request::Delete { key: key(k) },
        Command::Exists { key: k } => Request::Exists { key: key(k) },
        Command::Ttl { key: k } => Request::Ttl { key: key(k) },
        Command::Expire { key: k, secs } => Request::Expire { key: key(k), ttl_ms: Some(secs.saturating_mul(1000)) },
        Command::Persist { key: k } => Request::Expire { key: key(k), ttl_ms: None },
        Command::Stats => Request::Stats,
        Command::Ping => Request::Ping,
        Command::Checkpoint => Request::Checkpoint,
        Command::Compact => Request::Compact,
        Command::Scan { prefix, limit, values } => {
            let prefix = prefix.as_ref().map(key).unwrap_or_default();
            return Ok(Plan::Scan { prefix, limit: *limit, values: *values });
        }
        Command::Completions { shell } => return Ok(Plan::Completions(*shell)),
    };
    Ok(Plan::One(request))
}

/// Sends `plan` through `caller`, prints the answer, returns the exit code.
pub fn perform(
    command: &'static str,
    plan: &Plan,
    caller: &mut dyn Call,
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, CliError> {
    match plan {
        Plan::One(request) => {
            let response = caller.call(request)?;
            render_response(command, request, response, as_json, out, err)
        }
        Plan::Scan { prefix, limit, values } => scan(prefix, *limit, *values, caller, as_json, out),
        Plan::Completions(shell) => write_completions(*shell, out),
    }
}

/// Pages through a scan. Plain output is written page by page; JSON is
/// collected into the one object printed at the end.
fn scan(
    prefix: &[u8],
    limit: Option<u64>,
    values: bool,
    caller: &mut dyn Call,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let mut start_after: Option<Vec<u8>> = None;
    let mut items_json = Vec::new();
    let mut count: u64 = 0;
    let more = loop {
        let remaining = limit.map_or(u64::MAX, |limit| limit - count);
        let page_keys = u32::try_from(remaining).unwrap_or(u32::MAX).min(SCAN_PAGE_KEYS);
        let request =
            Request::Scan { prefix: prefix.to_vec(), start_after: start_after.take(), limit: page_keys, values };
        let (items, more) = match caller.call(&request)? {
            Response::Keys { items, more } => (items, more),
            Response::Error { kind, message } => return Err(CliError::Refused { command: "scan", kind, message }),
            other => {
                let response = crate::exit::response_name(&other);
                return Err(CliError::UnexpectedResponse { command: "scan", response });
            }
        };
        for item in &items {
            match as_json {
                true => items_json.push(scan_item_json(item)),
                false => write_scan_item(item, out)?,
            }
        }
        count += items.len() as u64;
        let limit_reached = limit.is_some_and(|limit| count >= limit);
        if !more || limit_reached {
            break more;
        }
        // A page that says `more` holds at least one key (PROTOCOL.md §7); without one, paging cannot go on.
        start_after = Some(items.last().ok_or(CliError::EmptyScanPage)?.key.clone());
    };
    if as_json {
        let mut object = json_head(true, "scan");
        object.insert("prefix".into(), bytes_value(prefix));
        object.insert("limit".into(), limit.map_or(Value::Null, Value::from));
        object.insert("count".into(), Value::from(count));
        object.insert("more".into(), Value::Bool(more));
        object.insert("items".into(), Value::Array(items_json));
        write_json(out, object)?;
    }
    Ok(EXIT_OK)
}

/// `kvctl completions SHELL`: the script for SHELL, from the same clap model.
fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<u8, CliError> {
    // Generated into memory first: clap_complete panics on a failed write.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kvctl", &mut script);
    out.write_all(&script).map_err(CliError::Output)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientError;
    use crate::exit::{EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE};
    use crate::input::VALUE_BYTES_MAX;
    use blockkv_protocol::{ErrorKind, ScanItem};
    use clap::Parser;
    use std::collections::VecDeque;
    use std::io;

    /// A daemon stand-in: answers from a script and records what it was asked.
    struct Scripted {
        answers: VecDeque<Response>,
        asked: Vec<Request>,
    }

    impl Scripted {
        fn new(answers: impl IntoIterator<Item = Response>) -> Scripted {
            Scripted { answers: answers.into_iter().collect(), asked: Vec::new() }
        }
    }

    impl Call for Scripted {
        fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
            self.asked.push(request.clone());
            Ok(self.answers.pop_front().expect("the script has an answer for every request"))
        }
    }

    fn cli(line: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("kvctl").chain(line.iter().copied())).expect("parse")
    }

    fn plan_of(line: &[&str], stdin: &[u8]) -> Result<Plan, CliError> {
        plan(&cli(line).command, &mut &stdin[..], false, &mut io::sink())
    }

    /// Runs `line` against `daemon`: (exit code, stdout, stderr).
    fn perform_line(line: &[&str], stdin: &[u8], daemon: &mut Scripted) -> (u8, Vec<u8>, String) {
        let cli = cli(line);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = plan(&cli.command, &mut &stdin[..], false, &mut err)
            .and_then(|plan| perform(cli.command.name(), &plan, daemon, cli.json, &mut out, &mut err));
        let code = match result {
            Ok(code) => code,
            Err(error) => {
                report(&cli, &error, &mut out, &mut err);
                error.exit_code()
            }
        };
        (code, out, String::from_utf8(err).expect("stderr is text"))
    }

    /// Runs `line` through [`run`] with the real client.
    fn run_line(line: &[&str]) -> (u8, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let streams = Streams { stdin: &mut io::empty(), stdin_is_terminal: false, stdout: &mut out, stderr: &mut err };
        let code = run(&cli(line), streams);
        (code, out, String::from_utf8(err).expect("stderr is text"))
    }

    fn parse_json(out: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "one JSON object on one line: {text}");
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn stdin_bytes_reach_the_put_request_unchanged() {
        // NUL, 0xFF and invalid UTF-8 on stdin arrive in Request::Put byte for byte, and on to the daemon.
        let bytes: Vec<u8> = (0..=255u8).rev().chain(*b"\0\xc3\x28\n").collect();
        let mut daemon = Scripted::new([Response::Done]);
        let (code, out, _) = perform_line(&["put", "k", "--ttl", "2"], &bytes, &mut daemon);
        assert_eq!((code, out.as_slice()), (EXIT_OK, &b"OK\n"[..]));
        assert_eq!(daemon.asked, vec![Request::Put { key: b"k".to_vec(), value: bytes, ttl_ms: Some(2000) }]);
    }

    #[test]
    fn value_argument_wins_over_stdin() {
        // put KEY VALUE sends VALUE and leaves stdin unread.
        let planned = plan_of(&["put", "k", "v"], b"stdin").expect("plan");
        assert_eq!(planned, Plan::One(Request::Put { key: b"k".to_vec(), value: b"v".to_vec(), ttl_ms: None }));
    }

    #[test]
    fn too_large_stdin_is_refused_before_connecting() {
        // A value over VALUE_BYTES_MAX on stdin: exit 4, kind too_large, and no request is sent.
        let big = vec![7u8; VALUE_BYTES_MAX + 1];
        let mut daemon = Scripted::new([]);
        let (code, out, err) = perform_line(&["--json", "put", "k"], &big, &mut daemon);
        assert_eq!(code, EXIT_REFUSED);
        assert!(daemon.asked.is_empty());
        assert!(err.contains("over the limit of 16777216 bytes; nothing was sent"), "{err}");
        assert_eq!(parse_json(&out)["error"]["kind"], "too_large");
    }

    #[test]
    fn unreadable_file_is_a_usage_error() {
        // put --file with a missing file: exit 2, the message names the file and says to check the path.
        let mut daemon = Scripted::new([]);
        let (code, _, err) = perform_line(&["put", "k", "--file", "/nonexistent/blockkv"], b"", &mut daemon);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("--file /nonexistent/blockkv") && err.contains("check the path"), "{err}");
    }

    #[test]
    fn every_command_plans_its_request() {
        // Each command sends the request PROTOCOL.md's table gives it.
        let k = || b"k".to_vec();
        let cases: Vec<(&[&str], Request)> = vec![
            (&["get", "k"], Request::Get { key: k() }),
            (&["delete", "k"], Request::Delete { key: k() }),
            (&["exists", "k"], Request::Exists { key: k() }),
            (&["ttl", "k"], Request::Ttl { key: k() }),
            (&["expire", "k", "90"], Request::Expire { key: k(), ttl_ms: Some(90_000) }),
            (&["persist", "k"], Request::Expire { key: k(), ttl_ms: None }),
            (&["stats"], Request::Stats),
            (&["ping"], Request::Ping),
            (&["checkpoint"], Request::Checkpoint),
            (&["compact"], Request::Compact),
        ];
        for (line, request) in cases {
            assert_eq!(plan_of(line, b"").expect("plan"), Plan::One(request), "{line:?}");
        }
        let scan = Plan::Scan { prefix: b"u:".to_vec(), limit: Some(5), values: true };
        assert_eq!(plan_of(&["scan", "--prefix", "u:", "--limit", "5", "--values"], b"").expect("plan"), scan);
    }

    #[test]
    fn get_prints_value_bytes_unchanged() {
        // get writes the value's bytes as they are, with no newline added; absent is exit 1 and a stderr note.
        let value = b"\0\xff line\n".to_vec();
        let mut daemon = Scripted::new([Response::Value(Some(value.clone())), Response::Value(None)]);
        assert_eq!(perform_line(&["get", "k"], b"", &mut daemon), (EXIT_OK, value, String::new()));
        let (code, out, err) = perform_line(&["get", "k"], b"", &mut daemon);
        assert_eq!((code, out.len(), err.as_str()), (EXIT_NOT_FOUND, 0, "key not found: k\n"));
    }

    #[test]
    fn refusal_exits_4_with_the_daemons_message() {
        // Response::Error: exit 4, "kvctl: kvd refused …" with the daemon's message on stderr.
        let mut daemon = Scripted::new([Response::error(ErrorKind::NoSpace, "data file is full")]);
        let (code, out, err) = perform_line(&["put", "k", "v"], b"", &mut daemon);
        assert_eq!(code, EXIT_REFUSED);
        assert!(out.is_empty());
        assert!(err.starts_with("kvctl: kvd refused put (no_space): data file is full — "), "{err}");
    }

    #[test]
    fn json_error_is_one_object_with_kind_and_message() {
        // --json and a refusal: one object, ok false, error.kind is the ErrorKind's stable name.
        let mut daemon = Scripted::new([Response::error(ErrorKind::Busy, "queue full")]);
        let (code, out, err) = perform_line(&["get", "k", "--json"], b"", &mut daemon);
        assert_eq!(code, EXIT_REFUSED);
        let object = parse_json(&out);
        assert_eq!(object["ok"], false);
        assert_eq!(object["command"], "get");
        assert_eq!(object["error"]["kind"], "busy");
        assert!(object["error"]["message"].as_str().expect("message").contains("queue full"));
        assert!(err.contains("queue full"), "the message is on stderr too: {err}");
    }

    #[test]
    fn scan_pages_until_the_last_page() {
        // Pages are chained with start_after = last key; plain output is one key per line, KEY\tVALUE with --values.
        let item = |key: &[u8], value: &[u8]| ScanItem { key: key.to_vec(), value: Some(value.to_vec()) };
        let mut daemon = Scripted::new([
            Response::Keys { items: vec![item(b"a", b"1"), item(b"b\xff", b"2\t")], more: true },
            Response::Keys { items: vec![item(b"c", b"3")], more: false },
        ]);
        let (code, out, _) = perform_line(&["scan", "--values"], b"", &mut daemon);
        assert_eq!((code, out), (EXIT_OK, b"a\t1\nb\xff\t2\t\nc\t3\n".to_vec()));
        let starts: Vec<_> = daemon
            .asked
            .iter()
            .map(|request| match request {
                Request::Scan { start_after, limit, values: true, .. } => (start_after.clone(), *limit),
                other => panic!("asked {other:?}"),
            })
            .collect();
        assert_eq!(starts, vec![(None, SCAN_PAGE_KEYS), (Some(b"b\xff".to_vec()), SCAN_PAGE_KEYS)]);
    }

    #[test]
    fn scan_limit_stops_and_json_says_more() {
        // --limit 2 asks for at most 2, prints 2, and --json reports count, more and base64 for a binary key.
        let item = |key: &[u8]| ScanItem { key: key.to_vec(), value: None };
        let mut daemon = Scripted::new([Response::Keys { items: vec![item(b"a"), item(b"\xff")], more: true }]);
        let (code, out, _) = perform_line(&["--json", "scan", "--limit", "2"], b"", &mut daemon);
        assert_eq!(code, EXIT_OK);
        assert!(matches!(daemon.asked[..], [Request::Scan { limit: 2, .. }]));
        let object = parse_json(&out);
        assert_eq!(
            object,
            serde_json::json!({
                "ok": true, "command": "scan", "prefix": "", "limit": 2, "count": 2, "more": true,
                "items": [{ "key": "a" }, { "key": { "base64": "/w==" } }],
            })
        );
    }

    #[test]
    fn scan_page_with_more_but_no_keys_is_a_protocol_error() {
        // An empty page that claims more would loop forever: exit 3 instead.
        let mut daemon = Scripted::new([Response::Keys { items: Vec::new(), more: true }]);
        let (code, _, err) = perform_line(&["scan"], b"", &mut daemon);
        assert_eq!(code, EXIT_UNREACHABLE);
        assert!(err.contains("empty page"), "{err}");
    }

    #[test]
    fn wrong_answer_is_a_protocol_error() {
        // A Pong to a get: exit 3 and a message that names both.
        let mut daemon = Scripted::new([Response::Pong]);
        let (code, _, err) = perform_line(&["get", "k"], b"", &mut daemon);
        assert_eq!(code, EXIT_UNREACHABLE);
        assert!(err.contains("kvd answered get with Pong"), "{err}");
    }

    #[test]
    fn no_daemon_at_socket_exits_3_with_the_message() {
        // --socket at a path with no daemon: exit 3, "cannot reach kvd at PATH — is it running? …" and the OS error.
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("kvd.sock");
        let socket_text = socket.to_str().expect("utf-8 path");
        let (code, out, err) = run_line(&["--socket", socket_text, "get", "k"]);
        assert_eq!(code, EXIT_UNREACHABLE);
        assert!(out.is_empty());
        let expected = format!("kvctl: cannot reach kvd at {socket_text} — is it running? start it with `kvd` (");
        assert!(err.starts_with(&expected), "{err}");
        assert!(err.contains("No such file or directory"), "{err}");
        let (code, out, _) = run_line(&["--socket", socket_text, "--json", "ping"]);
        assert_eq!(code, EXIT_UNREACHABLE);
        assert_eq!(parse_json(&out)["error"]["kind"], "unreachable");
    }

    #[test]
    fn run_gets_a_value_from_a_stub_server() {
        // The whole path over a real socket: connect, handshake, Get, raw bytes on stdout, exit 0.
        use blockkv_protocol::{read_message, server_handshake, write_message};
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("kvd.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            server_handshake(&mut stream).expect("handshake");
            let request: Option<Request> = read_message(&mut stream).expect("read");
            assert_eq!(request, Some(Request::Get { key: b"k".to_vec() }));
            write_message(&mut stream, &Response::Value(Some(b"\0v\xff".to_vec()))).expect("write");
        });
        let (code, out, err) = run_line(&["--socket", socket.to_str().expect("utf-8 path"), "get", "k"]);
        assert_eq!((code, out, err), (EXIT_OK, b"\0v\xff".to_vec(), String::new()));
        server.join().expect("server");
    }

    #[test]
    fn completions_need_no_daemon() {
        // completions SHELL prints a script naming kvctl and its commands, for bash, zsh and fish.
        for shell in ["bash", "zsh", "fish"] {
            let (code, out, _) = run_line(&["--socket", "/nonexistent/kvd.sock", "completions", shell]);
            let script = String::from_utf8(out).expect("script is text");
            assert_eq!(code, EXIT_OK, "{shell}");
            assert!(script.contains("kvctl") && script.contains("checkpoint"), "{shell}: {script}");
        }
    }

    #[test]
    fn broken_stdout_is_quiet() {
        // A reader that went away (EPIPE) ends kvctl with nothing on stderr.
        struct ClosedPipe;
        impl Write for ClosedPipe {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut daemon = Scripted::new([Response::Value(Some(b"v".to_vec()))]);
        let cli = cli(&["get", "k"]);
        let planned = plan(&cli.command, &mut io::empty(), false, &mut io::sink()).expect("plan");
        let mut err = Vec::new();
        let error = perform("get", &planned, &mut daemon, false, &mut ClosedPipe, &mut err).expect_err("EPIPE");
        report(&cli, &error, &mut ClosedPipe, &mut err);
        assert_eq!((error.exit_code(), err.len()), (EXIT_OK, 0));
    }
}
