//! Replies in the connection's protocol: RESP2 until the client says
//! `HELLO 3`, RESP3 after. The two differ in a few types only — a null is
//! `$-1` (or `*-1` for a null array) in RESP2 and `_` in RESP3; a map is a
//! flat array of pairs in RESP2 and `%` in RESP3; a set is an array or
//! `~`; INFO's text is a bulk string or a verbatim `=` string; — so every command writes through `Out` and names
//! the type it means, as redis-server 7.0 does.

use blockkv_protocol::resp::{put_array_header, put_bulk, put_error, put_integer, put_null, put_simple};

/// A command's reply, written into the connection's answer buffer.
pub struct Out<'a> {
    buf: &'a mut Vec<u8>,
    resp3: bool,
}

impl<'a> Out<'a> {
    pub fn new(buf: &'a mut Vec<u8>, resp3: bool) -> Out<'a> {
        Out { buf, resp3 }
    }

    /// Bytes written so far (a reply may be cut back to a mark: `truncate`).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Raw bytes already in this protocol's encoding.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn simple(&mut self, text: &str) {
        put_simple(self.buf, text);
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `message` starts with its code (`ERR …`).
    pub fn error(&mut self, message: &str) {
        put_error(self.buf, message);
    }

    pub fn integer(&mut self, value: i64) {
        put_integer(self.buf, value);
    }

    pub fn bulk(&mut self, bytes: &[u8]) {
        put_bulk(self.buf, bytes);
    }

    /// A missing value: `$-1` or `_`.
    pub fn null(&mut self) {
        if self.resp3 { self.buf.extend_from_slice(b"_\r\n") } else { put_null(self.buf) }
    }

    /// A missing array (an aborted EXEC): `*-1` or `_`.
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    pub fn bulk_or_null(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => self.bulk(value),
            None => self.null(),
        }
    }

    pub fn array(&mut self, count: usize) {
        put_array_header(self.buf, count);
    }

    /// A map of `pairs` entries; each is a key then a value.
    pub fn map(&mut self, pairs: usize) {
        if self.resp3 {
            self.header(b'%', pairs);
        } else {
            put_array_header(self.buf, pairs * 2);
        }
    }

    pub fn set(&mut self, count: usize) {
        if self.resp3 { self.header(b'~', count) } else { put_array_header(self.buf, count) }
    }

    /// Text meant for people (INFO, CLIENT LIST): a verbatim string of
    /// format `txt` in RESP3.
    pub fn verbatim(&mut self, text: &str) {
        if self.resp3 {
            self.header(b'=', text.len() + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            put_bulk(self.buf, text.as_bytes());
        }
    }

    fn header(&mut self, kind: u8, count: usize) {
        self.buf.push(kind);
        self.buf.extend_from_slice(count.to_string().as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(write: impl Fn(&mut Out)) -> (String, String) {
        let (mut two, mut three) = (Vec::new(), Vec::new());
        write(&mut Out::new(&mut two, false));
        write(&mut Out::new(&mut three, true));
        (String::from_utf8(two).expect("ascii"), String::from_utf8(three).expect("ascii"))
    }

    #[test]
    fn types_that_differ_are_written_as_each_protocol_writes_them() {
        // The bytes redis-server 7.0 sends for each type in RESP2 and in RESP3.
        assert_eq!(both(|o| o.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|o| o.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|o| o.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|o| o.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(
            both(|o| o.verbatim("# Keyspace\r\n")),
            ("$12\r\n# Keyspace\r\n\r\n".into(), "=16\r\ntxt:# Keyspace\r\n\r\n".into())
        );
        assert_eq!(both(|o| o.integer(-2)), (":-2\r\n".into(), ":-2\r\n".into()));
    }
}
