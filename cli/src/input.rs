//! The value of `put`: from the VALUE argument, from `--file PATH`, or from
//! stdin. Read as raw bytes (binary-safe: NUL and invalid UTF-8 arrive
//! unchanged) and bounded by [`VALUE_BYTES_MAX`]: at most one byte past the
//! limit is read before a too-large value is refused, so `put k < huge`
//! costs no more than the limit in memory.

use blockkv_protocol::frame::FRAME_VALUE_BYTES_MAX;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The largest value kvctl sends: the largest value a protocol frame
/// carries, which is the engine's limit.
pub const VALUE_BYTES_MAX: usize = FRAME_VALUE_BYTES_MAX;

/// Why a value could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The value is over [`VALUE_BYTES_MAX`]; `read_bytes` is what was read
    /// before stopping (the limit plus one).
    #[error("the value from {source_name} is over the limit of {limit} bytes")]
    TooLarge { source_name: String, limit: usize, read_bytes: usize },
    /// The file or stdin could not be read.
    #[error("cannot read the value from {source_name}: {error}")]
    Io { source_name: String, error: io::Error },
}

/// Where the value of one `put` comes from.
#[derive(Debug, Clone, Copy)]
pub enum ValueSource<'a> {
    Argument(&'a OsStr),
    File(&'a Path),
    Stdin,
}

impl ValueSource<'_> {
    /// The source, as messages name it.
    pub fn describe(&self) -> String {
        match self {
            ValueSource::Argument(_) => "the VALUE argument".to_string(),
            ValueSource::File(path) => format!("--file {}", path.display()),
            ValueSource::Stdin => "stdin".to_string(),
        }
    }
}

/// Reads the value from `source`; `stdin` is used for [`ValueSource::Stdin`]
/// and for `--file -`.
pub fn read_value(source: ValueSource<'_>, stdin: &mut dyn Read) -> Result<Vec<u8>, InputError> {
    let source_name = source.describe();
    match source {
        ValueSource::Argument(value) => check_len(value.as_bytes().to_vec(), source_name),
        ValueSource::File(path) if path.as_os_str() == "-" => read_bounded(stdin, source_name),
        ValueSource::File(path) => match std::fs::File::open(path) {
            Ok(mut file) => read_bounded(&mut file, source_name),
            Err(error) => Err(InputError::Io { source_name, error }),
        },
        ValueSource::Stdin => read_bounded(stdin, source_name),
    }
}

/// Reads all of `reader`, up to [`VALUE_BYTES_MAX`] bytes; one byte more is
/// a [`InputError::TooLarge`].
pub fn read_bounded(reader: &mut dyn Read, source_name: String) -> Result<Vec<u8>, InputError> {
    let mut value = Vec::new();
    let limit_plus_one = VALUE_BYTES_MAX as u64 + 1;
    match reader.take(limit_plus_one).read_to_end(&mut value) {
        Ok(_) => check_len(value, source_name),
        Err(error) => Err(InputError::Io { source_name, error }),
    }
}

fn check_len(value: Vec<u8>, source_name: String) -> Result<Vec<u8>, InputError> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(InputError::TooLarge { source_name, limit: VALUE_BYTES_MAX, read_bytes: value.len() });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Every byte value, NUL and bytes that are never valid UTF-8 included.
    fn awkward_bytes() -> Vec<u8> {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend_from_slice(b"\0\0\xff\xfe\xc3\x28\r\n\t");
        bytes
    }

    #[test]
    fn stdin_bytes_arrive_unchanged() {
        // Arbitrary bytes on stdin, including NUL and invalid UTF-8, are read as they are.
        let bytes = awkward_bytes();
        let value = read_value(ValueSource::Stdin, &mut &bytes[..]).expect("read");
        assert_eq!(value, bytes);
    }

    #[test]
    fn empty_stdin_is_an_empty_value() {
        // Nothing on stdin is an empty value, not an error.
        let value = read_value(ValueSource::Stdin, &mut io::empty()).expect("read");
        assert!(value.is_empty());
    }

    #[test]
    fn value_at_the_limit_is_accepted() {
        // Exactly VALUE_BYTES_MAX bytes is allowed.
        let mut stdin = io::repeat(0xAB).take(VALUE_BYTES_MAX as u64);
        let value = read_value(ValueSource::Stdin, &mut stdin).expect("read");
        assert_eq!(value.len(), VALUE_BYTES_MAX);
    }

    #[test]
    fn value_over_the_limit_is_refused_after_one_extra_byte() {
        // An endless stdin is refused as TooLarge having read only the limit plus one byte.
        let err = read_value(ValueSource::Stdin, &mut io::repeat(0)).expect_err("too large");
        match err {
            InputError::TooLarge { limit, read_bytes, .. } => {
                assert_eq!(limit, VALUE_BYTES_MAX);
                assert_eq!(read_bytes, VALUE_BYTES_MAX + 1);
            }
            other => panic!("expected TooLarge, got {other}"),
        }
    }

    #[test]
    fn file_value_is_binary_safe_and_dash_means_stdin() {
        // --file PATH reads the file's bytes unchanged; --file - reads stdin.
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(&awkward_bytes()).expect("write");
        let value = read_value(ValueSource::File(file.path()), &mut io::empty()).expect("read");
        assert_eq!(value, awkward_bytes());
        let from_stdin = read_value(ValueSource::File(Path::new("-")), &mut &b"piped"[..]).expect("read");
        assert_eq!(from_stdin, b"piped");
    }

    #[test]
    fn missing_file_names_the_file() {
        // A --file that does not exist is an Io error whose message names the path.
        let err = read_value(ValueSource::File(Path::new("/nonexistent/blockkv/value")), &mut io::empty())
            .expect_err("missing");
        assert!(matches!(err, InputError::Io { .. }));
        assert!(err.to_string().contains("--file /nonexistent/blockkv/value"), "{err}");
    }

    #[test]
    fn argument_value_is_bounded_too() {
        // The VALUE argument goes through the same limit (a shell can pass a large one).
        let value = OsStr::from_bytes(b"v\xff");
        assert_eq!(read_value(ValueSource::Argument(value), &mut io::empty()).expect("read"), b"v\xff");
    }
}
