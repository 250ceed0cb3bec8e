//! A small blocking RESP2/RESP3 connection for comparing servers: it sends a
//! command as an array of bulk strings and reads one reply as a [`Reply`]
//! that keeps the wire type (a simple string is not a bulk string, a RESP3
//! null is not a RESP2 null bulk), so two servers' answers compare exactly.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long a reply may take before the connection gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Nesting a reply may have (an array in a map in an array …) before it is
/// refused as garbage.
const DEPTH_MAX: usize = 16;

/// Elements an aggregate or bytes a bulk may announce before it is refused:
/// the tests never ask for more.
const ELEMENTS_MAX: i64 = 1 << 20;
const BULK_BYTES_MAX: i64 = 64 << 20;

/// One reply, with its RESP type.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n` bytes; `$-1` is `NilBulk`.
    Bulk(Vec<u8>),
    /// RESP2's `$-1`.
    NilBulk,
    /// `*n`; `*-1` is `NilArray`.
    Array(Vec<Reply>),
    /// RESP2's `*-1`.
    NilArray,
    /// RESP3 `_`.
    Null,
    /// RESP3 `,` as its text (`1.5`, `inf`), compared as written.
    Double(String),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `(` as its digits.
    BigNumber(String),
    /// RESP3 `=` : the three-letter format and the text.
    Verbatim(String, Vec<u8>),
    /// RESP3 `%`: key and value pairs, in the server's order.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~`.
    Set(Vec<Reply>),
    /// RESP3 `>`.
    Push(Vec<Reply>),
    /// RESP3 `|` attributes, then the reply they annotate.
    Attribute(Vec<(Reply, Reply)>, Box<Reply>),
    /// RESP3 `!` blob error.
    BlobError(Vec<u8>),
}

impl Reply {
    /// The error's text, if this is an error reply.
    pub fn error_text(&self) -> Option<&str> {
        match self {
            Reply::Error(text) => Some(text),
            _ => None,
        }
    }

    /// A short, printable form for failure messages.
    pub fn show(&self) -> String {
        match self {
            Reply::Simple(text) => format!("+{text}"),
            Reply::Error(text) => format!("-{text}"),
            Reply::Integer(n) => format!(":{n}"),
            Reply::Bulk(bytes) => format!("${:?}", String::from_utf8_lossy(bytes)),
            Reply::NilBulk => "$-1".to_string(),
            Reply::NilArray => "*-1".to_string(),
            Reply::Null => "_".to_string(),
            Reply::Double(text) => format!(",{text}"),
            Reply::Boolean(b) => format!("#{}", if *b { 't' } else { 'f' }),
            Reply::BigNumber(text) => format!("({text}"),
            Reply::Verbatim(format, text) => format!("={format}:{:?}", String::from_utf8_lossy(text)),
            Reply::BlobError(text) => format!("!{:?}", String::from_utf8_lossy(text)),
            Reply::Array(items) => format!("*[{}]", join(items)),
            Reply::Set(items) => format!("~[{}]", join(items)),
            Reply::Push(items) => format!(">[{}]", join(items)),
            Reply::Map(pairs) => format!("%{{{}}}", join_pairs(pairs)),
            Reply::Attribute(pairs, inner) => format!("|{{{}}} {}", join_pairs(pairs), inner.show()),
        }
    }
}

fn join(items: &[Reply]) -> String {
    items.iter().map(Reply::show).collect::<Vec<_>>().join(", ")
}

fn join_pairs(pairs: &[(Reply, Reply)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}: {}", k.show(), v.show())).collect::<Vec<_>>().join(", ")
}

/// One connection to a server's Unix socket.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Connection {
    pub fn connect(socket: &Path) -> io::Result<Connection> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Connection { reader: BufReader::new(stream), writer })
    }

    /// Sends `args` as one command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends `args` as one command without reading the reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.writer.write_all(&encode(args))
    }

    /// The next reply on the connection.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader, 0)
    }
}

/// `args` as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad(format!("a line not ended by CRLF: {:?}", String::from_utf8_lossy(&line))));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|err| bad(format!("a header line that is not UTF-8: {err}")))
}

fn read_bytes(reader: &mut impl BufRead, len: i64) -> io::Result<Vec<u8>> {
    if !(0..=BULK_BYTES_MAX).contains(&len) {
        return Err(bad(format!("a bulk of {len} bytes")));
    }
    let mut bytes = vec![0u8; len as usize + 2];
    reader.read_exact(&mut bytes)?;
    if !bytes.ends_with(b"\r\n") {
        return Err(bad("a bulk not followed by CRLF".to_string()));
    }
    bytes.truncate(len as usize);
    Ok(bytes)
}

fn number(text: &str) -> io::Result<i64> {
    text.parse().map_err(|_| bad(format!("not a number: {text:?}")))
}

fn count(text: &str) -> io::Result<usize> {
    let n = number(text)?;
    if !(0..=ELEMENTS_MAX).contains(&n) {
        return Err(bad(format!("an aggregate of {n} elements")));
    }
    Ok(n as usize)
}

fn read_items(reader: &mut impl BufRead, n: usize, depth: usize) -> io::Result<Vec<Reply>> {
    (0..n).map(|_| read_reply(reader, depth + 1)).collect()
}

fn read_pairs(reader: &mut impl BufRead, n: usize, depth: usize) -> io::Result<Vec<(Reply, Reply)>> {
    (0..n).map(|_| Ok((read_reply(reader, depth + 1)?, read_reply(reader, depth + 1)?))).collect()
}

fn read_reply(reader: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > DEPTH_MAX {
        return Err(bad(format!("a reply nested deeper than {DEPTH_MAX}")));
    }
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("an empty line".to_string()))?;
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Integer(number(rest)?),
        "$" if rest == "-1" => Reply::NilBulk,
        "$" => Reply::Bulk(read_bytes(reader, number(rest)?)?),
        "*" if rest == "-1" => Reply::NilArray,
        "*" => Reply::Array(read_items(reader, count(rest)?, depth)?),
        "_" => Reply::Null,
        "," => Reply::Double(rest.to_string()),
        "#" => match rest {
            "t" => Reply::Boolean(true),
            "f" => Reply::Boolean(false),
            other => return Err(bad(format!("a boolean {other:?}"))),
        },
        "(" => Reply::BigNumber(rest.to_string()),
        "!" => Reply::BlobError(read_bytes(reader, number(rest)?)?),
        "=" => {
            let bytes = read_bytes(reader, number(rest)?)?;
            if bytes.len() < 4 || bytes[3] != b':' {
                return Err(bad("a verbatim string without its format".to_string()));
            }
            Reply::Verbatim(String::from_utf8_lossy(&bytes[..3]).into_owned(), bytes[4..].to_vec())
        }
        "%" => Reply::Map(read_pairs(reader, count(rest)?, depth)?),
        "~" => Reply::Set(read_items(reader, count(rest)?, depth)?),
        ">" => Reply::Push(read_items(reader, count(rest)?, depth)?),
        "|" => {
            let pairs = read_pairs(reader, count(rest)?, depth)?;
            Reply::Attribute(pairs, Box::new(read_reply(reader, depth + 1)?))
        }
        other => return Err(bad(format!("an unknown reply type {other:?} in {line:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Reply {
        read_reply(&mut BufReader::new(bytes), 0).expect("a reply")
    }

    #[test]
    fn every_resp3_type_reads_as_its_own_variant() {
        // Each wire type maps to one variant; nil bulk, nil array and null stay apart.
        assert_eq!(parse(b"$-1\r\n"), Reply::NilBulk);
        assert_eq!(parse(b"*-1\r\n"), Reply::NilArray);
        assert_eq!(parse(b"_\r\n"), Reply::Null);
        assert_eq!(parse(b"$3\r\na\r\n\r\n"), Reply::Bulk(b"a\r\n".to_vec()));
        assert_eq!(parse(b",1.5\r\n"), Reply::Double("1.5".into()));
        assert_eq!(parse(b"#t\r\n"), Reply::Boolean(true));
        assert_eq!(parse(b"=7\r\ntxt:abc\r\n"), Reply::Verbatim("txt".into(), b"abc".to_vec()));
        assert_eq!(
            parse(b"%1\r\n+a\r\n*2\r\n:1\r\n-ERR x\r\n"),
            Reply::Map(vec![(
                Reply::Simple("a".into()),
                Reply::Array(vec![Reply::Integer(1), Reply::Error("ERR x".into())])
            )])
        );
    }

    #[test]
    fn a_lying_header_is_refused_before_allocating() {
        // A huge announced bulk or aggregate, or a missing CRLF, is an error, not an allocation.
        let mut reader = BufReader::new(&b"$99999999999\r\n"[..]);
        assert!(read_reply(&mut reader, 0).is_err());
        let mut reader = BufReader::new(&b"*99999999999\r\n"[..]);
        assert!(read_reply(&mut reader, 0).is_err());
        let mut reader = BufReader::new(&b"+OK\n"[..]);
        assert!(read_reply(&mut reader, 0).is_err());
    }
}
