//! RESP2, the Redis serialization protocol, as kvd speaks it on the same
//! socket as the native protocol (told apart by the first byte: see
//! [`crate::handshake::is_native_first_byte`]). docs/PROTOCOL.md, "RESP".
//!
//! Requests are what Redis clients send: an array of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), or an inline command (`PING\r\n`,
//! words split on spaces) as typed into telnet and sent by
//! `redis-benchmark`'s inline tests. [`RespDecoder`] takes bytes as they
//! arrive and yields whole commands; every length is checked against its
//! limit before anything is allocated for it, so a peer cannot make kvd
//! reserve memory by announcing a huge array or bulk string.
//!
//! Replies are written by the `put_*` functions straight into an output
//! buffer.

use std::fmt;

/// Arguments in one command (the command name included). MSET of this
/// many keys is far beyond any real use; the bound keeps a peer from
/// announcing billions of elements.
pub const RESP_ARGS_MAX: usize = 1024 * 1024;
/// Bytes in one bulk string: the largest value kvd stores (16 MiB), plus
/// room for a key or a command name.
pub const RESP_BULK_BYTES_MAX: usize = crate::frame::FRAME_BYTES_MAX;
/// Bytes of one array command, headers included (an MSET of many values):
/// the engine's batch limit.
pub const RESP_COMMAND_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes in an inline command line.
pub const RESP_INLINE_BYTES_MAX: usize = 64 * 1024;
/// The longest bulk string kvd reads past (and answers with an error)
/// rather than treating as a protocol error: Redis's `proto-max-bulk-len`.
/// A client sending a value over kvd's limit then reads why, where closing
/// at once would leave it writing into a closed socket (SIGPIPE).
pub const RESP_DISCARD_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Bytes in a `*N` or `$N` header line: room for a sign and 20 digits.
pub const RESP_HEADER_BYTES_MAX: usize = 32;
/// Arguments whose space is reserved up front; a longer array grows as its
/// elements actually arrive.
const ARGS_PREALLOCATED_MAX: usize = 1024;
/// Consumed input is dropped from the front of the buffer once it is this
/// large (and more than half the buffer), not after every command.
const COMPACT_BYTES_MIN: usize = 64 * 1024;

/// A request that is not RESP. Redis answers these with
/// `-ERR Protocol error: …` and closes the connection; so does kvd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespError(pub String);

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

impl std::error::Error for RespError {}

fn protocol_error<T>(what: impl Into<String>) -> Result<T, RespError> {
    Err(RespError(what.into()))
}

pub use crate::resp_command::Command;

/// Incremental request decoder: [`RespDecoder::feed`] bytes, then take
/// commands with [`RespDecoder::next_command`] until it returns `None`.
#[derive(Debug, Default)]
pub struct RespDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already decoded into commands.
    at: usize,
    /// How far into the array at `at` the complete arguments reach, kept
    /// across calls so bytes arriving in pieces are each looked at once.
    partial: Option<PartialArray>,
    /// Reading past a command over a limit, to answer it with an error.
    discard: Option<Discard>,
}

/// An array command being skipped: bytes left of the current bulk string
/// (its CRLF included), bulk strings after it, and the error to answer.
#[derive(Debug)]
struct Discard {
    skip: usize,
    args_left: usize,
    message: String,
}

/// What the decoder yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Command(Command),
    /// A command over a size limit, read past and dropped: answer
    /// `message` (an error line, code first) and go on.
    Refused(String),
}

/// An array command not complete yet. Offsets are from `RespDecoder::at`
/// (compacting the buffer drops only bytes before it).
#[derive(Debug)]
struct PartialArray {
    count: usize,
    /// (offset, length) of each complete argument.
    args: Vec<(usize, usize)>,
    /// Where the next argument's `$` line starts.
    next: usize,
}

/// Where a partial parse stands: `Ok(None)` means "wait for more bytes".
type Step<T> = Result<Option<T>, RespError>;

impl RespDecoder {
    pub fn new() -> RespDecoder {
        RespDecoder::default()
    }

    pub fn feed(&mut self, input: &[u8]) {
        if self.at >= COMPACT_BYTES_MIN && self.at * 2 >= self.buf.len() {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(input);
    }

    /// Bytes received but not yet decoded (a partial command).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.at
    }

    /// The next whole command, `None` if more bytes are needed; a command
    /// over a size limit is an error here (see `next_decoded`).
    pub fn next_command(&mut self) -> Step<Command> {
        match self.next_decoded()? {
            Some(Decoded::Command(command)) => Ok(Some(command)),
            Some(Decoded::Refused(message)) => protocol_error(message),
            None => Ok(None),
        }
    }

    /// The next whole command or refusal, `None` if more bytes are needed.
    /// An error leaves the decoder unusable: the connection is to be closed.
    pub fn next_decoded(&mut self) -> Step<Decoded> {
        if self.discard.is_some() {
            match self.skip_discarded()? {
                Some(message) => return Ok(Some(Decoded::Refused(message))),
                None => return Ok(None),
            }
        }
        loop {
            let input = &self.buf[self.at..];
            let parsed = match input.first() {
                None => return Ok(None),
                Some(b'*') => self.parse_array()?,
                Some(_) => parse_inline(input)?,
            };
            let Some((command, used)) = parsed else {
                if self.discard.is_some() {
                    return Ok(self.skip_discarded()?.map(Decoded::Refused));
                }
                return Ok(None);
            };
            self.at += used;
            if self.at == self.buf.len() {
                self.buf.clear();
                self.at = 0;
            }
            // An empty command (a bare line, `*0`, `*-1`) is skipped, as Redis does.
            if !command.is_empty() {
                return Ok(Some(Decoded::Command(command)));
            }
        }
    }

    /// Drops what arrived of a discarded command; its refusal once it is all past.
    fn skip_discarded(&mut self) -> Step<String> {
        while let Some(discard) = &mut self.discard {
            let available = self.buf.len() - self.at;
            if discard.skip > 0 {
                let take = discard.skip.min(available);
                discard.skip -= take;
                self.at += take;
                if discard.skip > 0 {
                    // Nothing of it is kept: the buffer stays small however large the value.
                    self.buf.clear();
                    self.at = 0;
                    return Ok(None);
                }
                continue;
            }
            if discard.args_left == 0 {
                let message = self.discard.take().map(|d| d.message).unwrap_or_default();
                if self.at == self.buf.len() {
                    self.buf.clear();
                    self.at = 0;
                }
                return Ok(Some(message));
            }
            let Some((header, used)) = line(&self.buf[self.at..], RESP_HEADER_BYTES_MAX)? else { return Ok(None) };
            if header.first() != Some(&b'$') {
                return protocol_error("expected '$'");
            }
            let len = length(header, "bulk", 0, RESP_DISCARD_BYTES_MAX)? as usize;
            discard.skip = len + 2;
            discard.args_left -= 1;
            self.at += used;
        }
        Ok(None)
    }

    /// `*N\r\n` then N bulk strings; each complete argument is checked once,
    /// and all are copied out once the last has arrived.
    fn parse_array(&mut self) -> Step<(Command, usize)> {
        let input = &self.buf[self.at..];
        let mut partial = match self.partial.take() {
            Some(partial) => partial,
            None => {
                let Some((header, used)) = line(input, RESP_HEADER_BYTES_MAX)? else { return Ok(None) };
                // *0 and *-1 are empty commands.
                let count = length(header, "multibulk", -1, RESP_ARGS_MAX)?.max(0) as usize;
                PartialArray { count, args: Vec::with_capacity(count.min(ARGS_PREALLOCATED_MAX)), next: used }
            }
        };
        while partial.args.len() < partial.count {
            let rest = &input[partial.next..];
            let Some((header, header_bytes)) = line(rest, RESP_HEADER_BYTES_MAX)? else {
                self.partial = Some(partial);
                return Ok(None);
            };
            if header.first() != Some(&b'$') {
                let got = header.first().map_or("end of line".to_string(), |&b| format!("'{}'", b.escape_ascii()));
                return protocol_error(format!("expected '$', got {got}"));
            }
            let len = length(header, "bulk", 0, RESP_DISCARD_BYTES_MAX)? as usize;
            let end = partial.next + header_bytes + len + 2;
            let over = if len > RESP_BULK_BYTES_MAX {
                Some(format!("ERR bulk string of {len} bytes is over kvd's limit of {RESP_BULK_BYTES_MAX} bytes"))
            } else if end > RESP_COMMAND_BYTES_MAX {
                Some(format!("ERR command of more than {RESP_COMMAND_BYTES_MAX} bytes is over kvd's limit"))
            } else {
                None
            };
            if let Some(message) = over {
                // Read past the rest of the command, then answer.
                let args_left = partial.count - partial.args.len() - 1;
                self.at += partial.next + header_bytes;
                self.discard = Some(Discard { skip: len + 2, args_left, message });
                return Ok(None);
            }
            if input.len() < end {
                self.partial = Some(partial);
                return Ok(None);
            }
            if &input[end - 2..end] != b"\r\n" {
                return protocol_error("bulk string not followed by CRLF");
            }
            partial.args.push((partial.next + header_bytes, len));
            partial.next = end;
        }
        let args = Command::from_args(partial.args.iter().map(|&(start, len)| &input[start..start + len]));
        Ok(Some((args, partial.next)))
    }
}

/// A line ending in CRLF (or a bare LF for inline commands), without it,
/// and the bytes it took; `None` if the line is not complete yet.
fn line(input: &[u8], limit: usize) -> Step<(&[u8], usize)> {
    let window = &input[..input.len().min(limit + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => {
            let text = &input[..end];
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            Ok(Some((text, end + 1)))
        }
        None if input.len() > limit + 1 => protocol_error(format!("line longer than {limit} bytes")),
        None => Ok(None),
    }
}

/// A decimal length after its type byte (`*3`, `$5`), in `min..=max`.
fn length(text: &[u8], what: &str, min: i64, max: usize) -> Result<i64, RespError> {
    let digits = std::str::from_utf8(&text[1..]).ok();
    match digits.and_then(|d| d.parse::<i64>().ok()) {
        Some(n) if n >= min && n <= max as i64 => Ok(n),
        Some(n) if n > max as i64 => protocol_error(format!("{what} length {n} is over the limit of {max}")),
        _ => protocol_error(format!("invalid {what} length")),
    }
}

/// One line of words separated by spaces (no quoting: what redis-benchmark
/// and a person at telnet send).
fn parse_inline(input: &[u8]) -> Step<(Command, usize)> {
    let Some((text, used)) = line(input, RESP_INLINE_BYTES_MAX)? else { return Ok(None) };
    let args = Command::from_args(text.split(|b| b.is_ascii_whitespace()).filter(|word| !word.is_empty()));
    Ok(Some((args, used)))
}

// ---------------------------------------------------------------------------
// Replies

/// `+OK` and other status lines (`text` must not hold CR or LF).
pub fn put_simple(out: &mut Vec<u8>, text: &str) {
    debug_assert!(!text.contains(['\r', '\n']));
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-ERR …`, `-WRONGTYPE …`: `message` starts with the error code. Line
/// breaks in it become spaces (an error is one line).
pub fn put_error(out: &mut Vec<u8>, message: &str) {
    out.push(b'-');
    out.extend(message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

pub fn put_integer(out: &mut Vec<u8>, value: i64) {
    out.push(b':');
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

pub fn put_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// The null bulk string: a missing key.
pub fn put_null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// An array header; the `count` elements follow.
pub fn put_array_header(out: &mut Vec<u8>, count: usize) {
    out.push(b'*');
    out.extend_from_slice(count.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Command>, RespError> {
        let mut decoder = RespDecoder::new();
        decoder.feed(input);
        let mut commands = Vec::new();
        while let Some(command) = decoder.next_command()? {
            commands.push(command);
        }
        assert_eq!(decoder.buffered_bytes(), 0, "left over");
        Ok(commands)
    }

    fn args(words: &[&str]) -> Command {
        Command::from_args(words.iter().map(|w| w.as_bytes()))
    }

    #[test]
    fn arrays_and_inline_commands_decode() {
        // Both request forms, pipelined, with binary bytes and an empty bulk string.
        let input =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\nPING\r\n\r\n  ECHO  hi \n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
        let got = decode_all(input).expect("decodes");
        let want = vec![
            Command::from_args([&b"SET"[..], b"k", b"a\r\nb"]),
            args(&["PING"]),
            args(&["ECHO", "hi"]),
            args(&["GET", ""]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_command_split_at_every_byte_decodes_once_whole() {
        // Bytes arriving one at a time: nothing is yielded until the command is complete.
        let input = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        for split in 0..input.len() {
            let mut decoder = RespDecoder::new();
            decoder.feed(&input[..split]);
            assert_eq!(decoder.next_command(), Ok(None), "split at {split}");
            decoder.feed(&input[split..]);
            assert_eq!(decoder.next_command(), Ok(Some(args(&["ECHO", "hello"]))), "split at {split}");
            assert_eq!(decoder.next_command(), Ok(None));
        }
    }

    #[test]
    fn announced_lengths_over_the_limits_are_refused_before_the_bytes_arrive() {
        // A huge array header, or a bulk past Redis's own bound, is an error at once: nothing
        // waits for (or reserves) its bytes.
        let huge_array = format!("*{}\r\n", RESP_ARGS_MAX + 1);
        let huge_bulk = format!("*1\r\n${}\r\n", RESP_DISCARD_BYTES_MAX + 1);
        for input in [huge_array.as_bytes(), huge_bulk.as_bytes()] {
            let err = decode_all(input).expect_err("over the limit");
            assert!(err.0.contains("over the limit"), "{err}");
        }
        let mut decoder = RespDecoder::new();
        decoder.feed(format!("*1\r\n${RESP_BULK_BYTES_MAX}\r\n").as_bytes());
        assert_eq!(decoder.next_command(), Ok(None), "at the limit: waits for the bytes");
    }

    #[test]
    fn a_value_over_the_limit_is_read_past_and_refused_and_the_next_command_decodes() {
        // SET k <limit + 10 bytes> arriving in 64 KiB pieces, then PING: the decoder never holds
        // more than a piece, yields one refusal, then PING.
        let len = RESP_BULK_BYTES_MAX + 10;
        let mut input = format!("*3\r\n$3\r\nSET\r\n${len}\r\n").into_bytes();
        input.extend(std::iter::repeat_n(b'v', len));
        input.extend_from_slice(b"\r\n$1\r\nk\r\nPING\r\n");
        let mut decoder = RespDecoder::new();
        let mut got = Vec::new();
        for piece in input.chunks(64 * 1024) {
            decoder.feed(piece);
            assert!(decoder.buffered_bytes() <= 2 * 64 * 1024, "{} bytes held", decoder.buffered_bytes());
            while let Some(item) = decoder.next_decoded().expect("no protocol error") {
                got.push(item);
            }
        }
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[0], Decoded::Refused(message) if message.starts_with("ERR bulk string of")));
        assert_eq!(got[1], Decoded::Command(args(&["PING"])));
    }

    #[test]
    fn malformed_requests_are_protocol_errors() {
        // Each of these is an error, never a hang or a panic.
        for input in
            [&b"*x\r\n"[..], b"*1\r\n:5\r\n", b"*1\r\n$-5\r\n", b"*1\r\n$3\r\nabcde\r\n", b"*-7\r\n", b"*1\r\n$\r\n"]
        {
            assert!(decode_all(input).is_err(), "{:?}", input.escape_ascii().to_string());
        }
        let long_line = vec![b'a'; RESP_INLINE_BYTES_MAX + 10];
        assert!(decode_all(&long_line).is_err(), "an endless inline line");
    }

    #[test]
    fn a_flood_of_empty_lines_is_skipped_without_recursion() {
        // Empty commands are skipped in a loop: one stack frame per line
        // would put the stack at risk from a 64 KiB read of newlines.
        let mut input = vec![b'\n'; 200_000];
        input.extend_from_slice(b"*0\r\n*-1\r\nPING\r\n");
        assert_eq!(decode_all(&input), Ok(vec![args(&["PING"])]));
    }

    #[test]
    fn header_lines_are_short() {
        // A `$` header padded with zeros is refused from its first 34 bytes.
        let mut input = b"*1\r\n$".to_vec();
        input.extend_from_slice(&[b'0'; 100]);
        assert!(decode_all(&input).is_err_and(|err| err.0.contains("line longer")));
    }

    #[test]
    fn replies_encode_as_redis_writes_them() {
        // The exact bytes of each reply type.
        let mut out = Vec::new();
        put_simple(&mut out, "OK");
        put_error(&mut out, "ERR bad\nthing");
        put_integer(&mut out, -42);
        put_bulk(&mut out, b"v\r\n");
        put_null(&mut out);
        put_array_header(&mut out, 2);
        assert_eq!(out, b"+OK\r\n-ERR bad thing\r\n:-42\r\n$3\r\nv\r\n\r\n$-1\r\n*2\r\n".to_vec());
    }
}
