//! Everything that makes a kvctl invocation fail, with its exit code, the
//! stable name `--json` reports, and a message that says what to do next.
//! (A key that is not found is not an error: it is an answer, exit 1.)

use crate::client::ClientError;
use crate::exit::{EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE};
use crate::input::InputError;
use blockkv_protocol::ErrorKind;
use std::io;

/// Why kvctl failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// kvd could not be reached or did not answer.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// kvd answered `Response::Error`.
    #[error("kvd refused {command} ({kind}): {message}{}", refusal_hint(*.kind))]
    Refused { command: &'static str, kind: ErrorKind, message: String },
    /// The value of `put` could not be read, or is over the limit.
    #[error("{error}{hint}", error = .0, hint = input_hint(.0))]
    Input(#[from] InputError),
    /// stdout could not be written.
    #[error("cannot write kvctl's output: {0}")]
    Output(io::Error),
    /// kvd answered with a response that does not answer the request.
    #[error(
        "kvd answered {command} with {response} — kvctl and kvd disagree about the protocol; \
         use both from the same release (`kvctl --version`)"
    )]
    UnexpectedResponse { command: &'static str, response: &'static str },
    /// A scan page said `more` but held no key, so paging could not go on.
    #[error("kvd answered scan with an empty page that says more keys follow — a kvd bug; please report it")]
    EmptyScanPage,
}

impl CliError {
    /// The exit code docs/OPERATIONS.md documents for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(ClientError::RequestTooLarge { .. }) => EXIT_REFUSED,
            CliError::Client(_) => EXIT_UNREACHABLE,
            CliError::Refused { .. } => EXIT_REFUSED,
            // The daemon would refuse it too: same code, and nothing is sent.
            CliError::Input(InputError::TooLarge { .. }) => EXIT_REFUSED,
            CliError::Input(_) => EXIT_USAGE,
            // Whoever read our output went away (`kvctl scan | head`): not a failure.
            CliError::Output(_) if self.is_broken_pipe() => EXIT_OK,
            CliError::Output(_) => EXIT_USAGE,
            CliError::UnexpectedResponse { .. } | CliError::EmptyScanPage => EXIT_UNREACHABLE,
        }
    }

    /// The `error.kind` of `--json` output: the daemon's `ErrorKind` name
    /// for a refusal, else one of kvctl's own names.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CliError::Client(ClientError::RequestTooLarge { .. }) => "too_large",
            CliError::Client(ClientError::HandshakeTimeout { .. } | ClientError::Timeout { .. }) => "timeout",
            CliError::Client(ClientError::Connect { .. } | ClientError::Handshake { .. }) => "unreachable",
            CliError::Client(_) => "protocol",
            CliError::Refused { kind, .. } => kind.as_str(),
            CliError::Input(InputError::TooLarge { .. }) => "too_large",
            CliError::Input(_) => "input",
            CliError::Output(_) => "output",
            CliError::UnexpectedResponse { .. } | CliError::EmptyScanPage => "protocol",
        }
    }

    /// True when stdout's reader has gone away; nothing more is printed.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(error) if error.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// What to do about a refusal of this kind.
pub fn refusal_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => {
            " — kvd could not read the request; use kvctl and kvd from the same release (`kvctl --version`)"
        }
        ErrorKind::TooLarge => " — make the key or value smaller (keys up to 1 KiB, values up to 16 MiB)",
        ErrorKind::NoSpace => {
            " — the data file is full: delete keys and run `kvctl compact`, or move the data to a larger file \
             (kvd --size applies when the file is created)"
        }
        ErrorKind::Poisoned => {
            " — a sync failed and kvd refuses writes until it restarts: check the disk and kvd's log, then restart kvd"
        }
        ErrorKind::ReadOnly => " — this kvd opened the store read-only; writes need one that opened it read-write",
        ErrorKind::InvalidArgument => " — check the command's arguments (`kvctl help`)",
        ErrorKind::Busy => " — kvd is at a limit; try again shortly",
        ErrorKind::Unsupported => " — this kvd does not do that yet; upgrade kvd",
        ErrorKind::Corrupt => {
            " — the data on disk failed its checksum: stop kvd and run `kv-fsck PATH` on the data file to see the damage"
        }
        ErrorKind::Io => " — the operating system refused kvd an I/O call; check the disk and kvd's log",
        ErrorKind::Internal => " — this is a bug in kvd; please report it with kvd's log",
        _ => "",
    }
}

fn input_hint(error: &InputError) -> &'static str {
    match error {
        InputError::TooLarge { .. } => "; nothing was sent — split the value across several keys",
        InputError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => " — check the path",
        InputError::Io { error, .. } if error.kind() == io::ErrorKind::PermissionDenied => {
            " — check the file's permissions"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::EXIT_USAGE;
    use std::path::PathBuf;

    #[test]
    fn each_failure_has_its_documented_code() {
        // Connect/handshake/protocol failures are 3, refusals and too-large values are 4, input is 2.
        let connect = ClientError::Connect {
            socket_path: PathBuf::from("/s"),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let closed = ClientError::Closed { socket_path: PathBuf::from("/s"), request: "get" };
        let cases: Vec<(CliError, u8, &str)> = vec![
            (CliError::Client(connect), EXIT_UNREACHABLE, "unreachable"),
            (CliError::Client(closed), EXIT_UNREACHABLE, "protocol"),
            (
                CliError::Client(ClientError::RequestTooLarge { request: "put", len: 9, limit: 8 }),
                EXIT_REFUSED,
                "too_large",
            ),
            (
                CliError::Refused { command: "put", kind: ErrorKind::NoSpace, message: "full".into() },
                EXIT_REFUSED,
                "no_space",
            ),
            (
                CliError::Input(InputError::TooLarge { source_name: "stdin".into(), limit: 1, read_bytes: 2 }),
                EXIT_REFUSED,
                "too_large",
            ),
            (
                CliError::Input(InputError::Io { source_name: "stdin".into(), error: io::ErrorKind::Other.into() }),
                EXIT_USAGE,
                "input",
            ),
            (CliError::Output(io::ErrorKind::BrokenPipe.into()), EXIT_OK, "output"),
            (CliError::Output(io::ErrorKind::StorageFull.into()), EXIT_USAGE, "output"),
            (CliError::UnexpectedResponse { command: "get", response: "Pong" }, EXIT_UNREACHABLE, "protocol"),
            (CliError::EmptyScanPage, EXIT_UNREACHABLE, "protocol"),
        ];
        for (error, code, kind) in cases {
            assert_eq!((error.exit_code(), error.kind_name()), (code, kind), "{error}");
        }
    }

    #[test]
    fn refusal_message_carries_kind_message_and_hint() {
        // The daemon's message is shown as sent, with the kind and what to do.
        let error = CliError::Refused { command: "put", kind: ErrorKind::Poisoned, message: "sync failed: EIO".into() };
        let text = error.to_string();
        assert!(text.starts_with("kvd refused put (poisoned): sync failed: EIO — "), "{text}");
        assert!(text.contains("restart kvd"), "{text}");
    }

    #[test]
    fn too_large_value_message_says_nothing_was_sent() {
        // The local size check names the source and the limit and tells what to do.
        let error = CliError::Input(InputError::TooLarge { source_name: "stdin".into(), limit: 16, read_bytes: 17 });
        assert_eq!(
            error.to_string(),
            "the value from stdin is over the limit of 16 bytes; nothing was sent — split the value across several keys"
        );
    }
}
