//! One decoded RESP command in one buffer: one allocation per command,
//! not a `Vec` per argument plus one for the list (malloc and free are a
//! large share of a pipelined server's time).
//!
//! Layout of `bytes`: the end offset of each argument (a little-endian
//! `u32`, counted from the start of the argument bytes), then the
//! arguments back to back. `RESP_COMMAND_BYTES_MAX` (64 MiB) keeps every
//! offset well within a `u32`.

use std::fmt;
use std::ops::Index;

const END_BYTES: usize = 4;
// Every end offset of a decoded command fits its u32.
const _: () = assert!(crate::resp::RESP_COMMAND_BYTES_MAX <= u32::MAX as usize);

/// A command's arguments, the name first.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Command {
    count: usize,
    bytes: Vec<u8>,
}

impl Command {
    /// A command of `args`, copied into one buffer.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a [u8]> + Clone) -> Command {
        let (count, total) = args.clone().into_iter().fold((0, 0), |(n, bytes), arg| (n + 1, bytes + arg.len()));
        let mut bytes = Vec::with_capacity(count * END_BYTES + total);
        let mut end = 0usize;
        for arg in args.clone() {
            end += arg.len();
            // The decoder refuses commands over RESP_COMMAND_BYTES_MAX (asserted above).
            let end = u32::try_from(end).expect("a command is shorter than 4 GiB");
            bytes.extend_from_slice(&end.to_le_bytes());
        }
        for arg in args {
            bytes.extend_from_slice(arg);
        }
        Command { count, bytes }
    }

    /// Number of arguments, the name included.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Argument `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.count).then(|| {
            let data = &self.bytes[self.count * END_BYTES..];
            let start = if i == 0 { 0 } else { self.end(i - 1) };
            &data[start..self.end(i)]
        })
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.count).map(|i| &self[i])
    }

    fn end(&self, i: usize) -> usize {
        let at = i * END_BYTES;
        let mut end = [0u8; END_BYTES];
        end.copy_from_slice(&self.bytes[at..at + END_BYTES]);
        u32::from_le_bytes(end) as usize
    }
}

impl Index<usize> for Command {
    type Output = [u8];

    /// Argument `i`; panics past the last, as a slice index does.
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(arg) => arg,
            None => panic!("argument {i} of a command of {}", self.count),
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|arg| arg.escape_ascii().to_string())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_back_as_given() {
        // Empty arguments first, last and between, and none at all.
        let args: [&[u8]; 5] = [b"", b"SET", b"", b"k\r\n", b""];
        let command = Command::from_args(args);
        assert_eq!(command.len(), 5);
        assert_eq!(command.iter().collect::<Vec<_>>(), args.to_vec());
        assert_eq!(&command[3], b"k\r\n");
        assert_eq!(command.get(5), None);
        let none = Command::from_args(std::iter::empty::<&[u8]>());
        assert!(none.is_empty() && none.get(0).is_none());
        assert_eq!(format!("{command:?}"), r#"["", "SET", "", "k\\r\\n", ""]"#);
    }
}
