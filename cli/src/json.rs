//! Byte strings in `--json` output. Keys and values are bytes, JSON strings
//! are Unicode, so each byte string is written as:
//!
//! - a JSON string when its bytes are valid UTF-8: `"value": "hello"`;
//! - otherwise an object holding its standard, padded base64 (RFC 4648,
//!   section 4): `"value": {"base64": "/w=="}`.
//!
//! A reader tells the two apart by the JSON type alone, and the common case
//! (text) stays readable. Base64 is written here (about 20 lines) rather
//! than pulled in as a dependency.

use serde_json::{Value, json};

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as JSON: a string if it is UTF-8, else `{"base64": "..."}`.
pub fn bytes_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "base64": base64(bytes) }),
    }
}

/// Standard base64 with `=` padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [b0 >> 2, (b0 & 0x03) << 4 | b1 >> 4, (b1 & 0x0F) << 2 | b2 >> 6, b2 & 0x3F];
        // A chunk of n bytes yields n + 1 characters, then padding.
        for (index, sextet) in sextets.iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(BASE64_ALPHABET[usize::from(*sextet)]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `bytes` for a one-line message: UTF-8 text with control characters
/// escaped, else every byte that is not printable ASCII as `\xNN`.
pub fn display_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // The test vectors of RFC 4648 section 10.
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xFF, 0xFE, 0x00]), "//4A");
    }

    #[test]
    fn utf8_is_a_string_and_binary_is_base64() {
        // Valid UTF-8 (NUL included) stays a string; anything else becomes {"base64": ...}.
        assert_eq!(bytes_value(b"hello"), json!("hello"));
        assert_eq!(bytes_value("héllo".as_bytes()), json!("héllo"));
        assert_eq!(bytes_value(b"a\0b"), json!("a\u{0}b"));
        assert_eq!(bytes_value(b""), json!(""));
        assert_eq!(bytes_value(b"\xff"), json!({ "base64": "/w==" }));
        assert_eq!(bytes_value(b"\xc3\x28"), json!({ "base64": "wyg=" }));
    }

    #[test]
    fn display_escapes_what_a_terminal_should_not_see() {
        // Messages never carry raw control bytes or invalid UTF-8.
        assert_eq!(display_bytes(b"user:42"), "user:42");
        assert_eq!(display_bytes("clé".as_bytes()), "clé");
        assert_eq!(display_bytes(b"a\nb"), "a\\nb");
        assert_eq!(display_bytes(b"k\xff"), "k\\xff");
    }
}
