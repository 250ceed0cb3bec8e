//! The command line, as clap derive types: every command and flag of
//! the kvctl section of docs/OPERATIONS.md, plus `persist` and `completions`.
//!
//! Keys, values and prefixes are taken as `OsString` and sent as their raw
//! bytes, so a key that is not UTF-8 works too. A key or value that starts
//! with `-` goes after `--`: `kvctl put -- -k -v`.

use crate::client::REPLY_TIMEOUT_S_DEFAULT;
use blockkv_protocol::paths::{SOCKET_ENV, default_socket_path};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Largest TTL in seconds: its milliseconds must fit the protocol's `u64`.
pub const TTL_SECS_MAX: u64 = u64::MAX / 1000;
/// Largest `--timeout`: one hour.
pub const TIMEOUT_S_MAX: u64 = 3600;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done / found
  1  key not found (get, delete, exists, ttl, expire, persist)
  2  usage error, or kvctl cannot read its input or write its output
  3  cannot reach the daemon (no socket, refused, handshake failed, no answer)
  4  the daemon refused the request (too large, no space, poisoned ...); message on stderr

--json prints one JSON object on stdout for every outcome but a usage error.";

/// kvctl: talk to kvd, the blockkv daemon, over its Unix socket.
#[derive(Debug, Parser)]
#[command(name = "kvctl", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The socket kvd listens on [default: $KV_SOCKET, else
    /// $XDG_RUNTIME_DIR/blockkv/kvd.sock, else /tmp/blockkv-UID/kvd.sock]
    #[arg(long, global = true, value_name = "PATH", env = SOCKET_ENV, hide_env = true)]
    pub socket: Option<OsString>,

    /// Print one JSON object instead of plain text
    #[arg(long, global = true)]
    pub json: bool,

    /// Give up on a daemon that sends nothing for this many seconds
    #[arg(long, global = true, value_name = "SECS", default_value_t = REPLY_TIMEOUT_S_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..=TIMEOUT_S_MAX))]
    pub timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The socket to connect to: `--socket`, else $KV_SOCKET, else the
    /// per-user default (an empty value counts as not given).
    pub fn socket_path(&self) -> PathBuf {
        match &self.socket {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => default_socket_path(),
        }
    }
}

/// One kvctl command.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Store a value under KEY: VALUE, else the contents of --file, else stdin (binary-safe)
    Put {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
        /// The value; omit it (and --file) to read the value from stdin
        #[arg(conflicts_with = "file")]
        value: Option<OsString>,
        /// Expire the key after SECS seconds
        #[arg(long, value_name = "SECS", value_parser = ttl_secs())]
        ttl: Option<u64>,
        /// Read the value from this file ("-" is stdin)
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Print KEY's value to stdout, unchanged (exit 1 if absent)
    Get {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
    },
    /// Delete KEY (exit 1 if it held no value)
    Delete {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
    },
    /// Tell whether KEY holds a value (exit 1 if not)
    Exists {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
    },
    /// List keys in byte order, one per line (KEY<TAB>VALUE with --values)
    Scan {
        /// Only keys that start with P
        #[arg(long, value_name = "P")]
        prefix: Option<OsString>,
        /// At most N keys
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Print each key's value after a tab
        #[arg(long)]
        values: bool,
    },
    /// Print KEY's time to live in seconds, or "persistent" (exit 1 if absent)
    Ttl {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
    },
    /// Make KEY expire SECS seconds from now (exit 1 if absent)
    Expire {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
        /// Seconds from now
        #[arg(value_name = "SECS", value_parser = ttl_secs())]
        secs: u64,
    },
    /// Remove KEY's time to live (exit 1 if absent)
    Persist {
        /// The key, as bytes (one that starts with "-" goes after "--")
        key: OsString,
    },
    /// Print counters, latencies, space and the recovery report
    Stats,
    /// Check that kvd answers
    Ping,
    /// Make kvd write a checkpoint now
    Checkpoint,
    /// Make kvd run a compaction pass now
    Compact,
    /// Print a shell completion script: `kvctl completions bash > ~/.local/share/bash-completion/completions/kvctl`
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's name as typed, for messages and the `command` field of `--json`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Put { .. } => "put",
            Command::Get { .. } => "get",
            Command::Delete { .. } => "delete",
            Command::Exists { .. } => "exists",
            Command::Scan { .. } => "scan",
            Command::Ttl { .. } => "ttl",
            Command::Expire { .. } => "expire",
            Command::Persist { .. } => "persist",
            Command::Stats => "stats",
            Command::Ping => "ping",
            Command::Checkpoint => "checkpoint",
            Command::Compact => "compact",
            Command::Completions { .. } => "completions",
        }
    }
}

fn ttl_secs() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..=TTL_SECS_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::EXIT_USAGE;
    use clap::CommandFactory;

    fn parse(line: &[&str]) -> Cli {
        let argv = std::iter::once("kvctl").chain(line.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(err) => panic!("{line:?} should parse: {err}"),
        }
    }

    fn refuses(line: &[&str]) -> bool {
        let argv = std::iter::once("kvctl").chain(line.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(_) => false,
            Err(err) => err.exit_code() == i32::from(EXIT_USAGE),
        }
    }

    fn os(text: &str) -> OsString {
        OsString::from(text)
    }

    #[test]
    fn clap_model_is_consistent() {
        // clap's own checks of the derive model (conflicts, names, globals).
        Cli::command().debug_assert();
    }

    #[test]
    fn put_parses_value_ttl_and_file() {
        // put KEY [VALUE] [--ttl SECS] [--file PATH], in every combination docs/OPERATIONS.md allows.
        let put = |key: &str, value: Option<&str>, ttl, file: Option<&str>| Command::Put {
            key: os(key),
            value: value.map(os),
            ttl,
            file: file.map(PathBuf::from),
        };
        assert_eq!(parse(&["put", "k", "v"]).command, put("k", Some("v"), None, None));
        assert_eq!(parse(&["put", "k"]).command, put("k", None, None, None));
        assert_eq!(parse(&["put", "k", "v", "--ttl", "60"]).command, put("k", Some("v"), Some(60), None));
        assert_eq!(parse(&["put", "--ttl", "5", "k", "--file", "/x"]).command, put("k", None, Some(5), Some("/x")));
        assert_eq!(parse(&["put", "--", "-k", "-v"]).command, put("-k", Some("-v"), None, None));
    }

    #[test]
    fn put_refuses_bad_lines() {
        // No key, VALUE with --file, a zero, negative or non-numeric TTL: usage errors (exit 2).
        assert!(refuses(&["put"]));
        assert!(refuses(&["put", "k", "v", "--file", "/x"]));
        assert!(refuses(&["put", "k", "v", "--ttl", "0"]));
        assert!(refuses(&["put", "k", "v", "--ttl", "-1"]));
        assert!(refuses(&["put", "k", "v", "--ttl", "soon"]));
        assert!(refuses(&["put", "k", "v", "extra"]));
    }

    #[test]
    fn key_commands_parse() {
        // get, delete, exists, ttl, persist take exactly one KEY; expire takes KEY SECS.
        assert_eq!(parse(&["get", "k"]).command, Command::Get { key: os("k") });
        assert_eq!(parse(&["delete", "k"]).command, Command::Delete { key: os("k") });
        assert_eq!(parse(&["exists", "k"]).command, Command::Exists { key: os("k") });
        assert_eq!(parse(&["ttl", "k"]).command, Command::Ttl { key: os("k") });
        assert_eq!(parse(&["persist", "k"]).command, Command::Persist { key: os("k") });
        assert_eq!(parse(&["expire", "k", "30"]).command, Command::Expire { key: os("k"), secs: 30 });
        for name in ["get", "delete", "exists", "ttl", "persist", "expire"] {
            assert!(refuses(&[name]), "{name} without a key");
        }
        assert!(refuses(&["get", "a", "b"]));
        assert!(refuses(&["expire", "k"]));
        assert!(refuses(&["expire", "k", "0"]));
    }

    #[test]
    fn scan_parses_prefix_limit_values() {
        // scan [--prefix P] [--limit N] [--values]; --limit 0 is refused.
        let scan = |prefix: Option<&str>, limit, values| Command::Scan { prefix: prefix.map(os), limit, values };
        assert_eq!(parse(&["scan"]).command, scan(None, None, false));
        assert_eq!(
            parse(&["scan", "--prefix", "user:", "--limit", "10"]).command,
            scan(Some("user:"), Some(10), false)
        );
        assert_eq!(parse(&["scan", "--values"]).command, scan(None, None, true));
        assert!(refuses(&["scan", "--limit", "0"]));
        assert!(refuses(&["scan", "p"]));
    }

    #[test]
    fn argumentless_commands_parse() {
        // stats, ping, checkpoint, compact take nothing.
        assert_eq!(parse(&["stats"]).command, Command::Stats);
        assert_eq!(parse(&["ping"]).command, Command::Ping);
        assert_eq!(parse(&["checkpoint"]).command, Command::Checkpoint);
        assert_eq!(parse(&["compact"]).command, Command::Compact);
        assert!(refuses(&["ping", "x"]));
        assert!(refuses(&[]));
        assert!(refuses(&["frobnicate"]));
    }

    #[test]
    fn completions_parse_each_shell() {
        // completions SHELL for bash, zsh and fish; an unknown shell is a usage error.
        for (name, shell) in [
            ("bash", clap_complete::Shell::Bash),
            ("zsh", clap_complete::Shell::Zsh),
            ("fish", clap_complete::Shell::Fish),
        ] {
            assert_eq!(parse(&["completions", name]).command, Command::Completions { shell });
        }
        assert!(refuses(&["completions", "tcsh"]));
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        // --socket, --json and --timeout are global: either side of the command works.
        let before = parse(&["--socket", "/s", "--json", "--timeout", "3", "get", "k"]);
        let after = parse(&["get", "k", "--socket", "/s", "--json", "--timeout", "3"]);
        for cli in [before, after] {
            assert_eq!(cli.socket_path(), PathBuf::from("/s"));
            assert!(cli.json);
            assert_eq!(cli.timeout, 3);
        }
        assert_eq!(parse(&["ping"]).timeout, REPLY_TIMEOUT_S_DEFAULT);
        assert!(refuses(&["--timeout", "0", "ping"]));
    }

    #[test]
    fn empty_socket_flag_falls_back_to_the_default() {
        // An empty --socket (or $KV_SOCKET) means "not given", as in paths::default_socket_path.
        let cli = parse(&["--socket", "", "ping"]);
        assert_eq!(cli.socket_path(), default_socket_path());
    }

    #[test]
    fn non_utf8_key_is_accepted() {
        // A key that is not UTF-8 reaches the command as its bytes.
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let key = OsString::from_vec(vec![b'k', 0xFF, 0xFE]);
        let cli = Cli::try_parse_from([os("kvctl"), os("get"), key.clone()]).expect("parse");
        match cli.command {
            Command::Get { key: parsed } => assert_eq!(parsed.as_bytes(), key.as_bytes()),
            other => panic!("parsed as {other:?}"),
        }
    }
}
