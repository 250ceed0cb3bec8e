//! The per-thread operation log: one text line before a request is sent,
//! one after its answer. Each line is a single `write` on an unbuffered
//! file: only kvd is killed, never the writer, so the log is complete.
//!
//! ```text
//! cycle 12 thread 3            header
//! S 1 put 17 2048              sent: seq 1, put to key index 17, 2048 bytes
//! A 1                          acknowledged (a put: Done)
//! S 2 delete 4                 sent: seq 2, delete of key index 4
//! A 2 deleted true             acknowledged; the key held a value
//! S 3 put 9 64
//! R 3 no_space                 refused: definitely not applied
//! S 4 put 2 100
//! E 4 io: fdatasync failed     an error answer: outcome unknown, the thread stopped
//! S 5 delete 8                 (no answer line: in flight when kvd died)
//! ```
//!
//! A thread sends one request at a time, so every answer line follows its
//! sent line, and only the last request can lack a definite answer.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a request asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Put { index: u32, value_bytes: u32 },
    Delete { index: u32 },
}

impl OpKind {
    pub fn index(&self) -> u32 {
        match *self {
            OpKind::Put { index, .. } | OpKind::Delete { index } => index,
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with success; `deleted` is a delete's answer (did the key hold a value).
    Acked { deleted: Option<bool> },
    /// Answered with an error that means "not applied" (no space, too large).
    Refused { kind: String },
    /// Answered with an error that leaves the outcome open; the thread stopped.
    Unknown { error: String },
    /// Sent, never answered: kvd died first.
    InFlight,
}

/// One request and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOp {
    pub seq: u32,
    pub kind: OpKind,
    pub outcome: Outcome,
}

/// One writer thread's log for one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLog {
    pub cycle: u32,
    pub thread: u32,
    pub ops: Vec<LoggedOp>,
}

/// Where thread `thread` logs inside a cycle's log directory.
pub fn log_path(dir: &Path, thread: u32) -> PathBuf {
    dir.join(format!("thread-{thread:03}.log"))
}

/// The writing side: one line, one `write` call, no buffer.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn create(path: &Path, cycle: u32, thread: u32) -> std::io::Result<LogWriter> {
        let mut writer = LogWriter { file: File::create(path)? };
        writer.line(&format!("cycle {cycle} thread {thread}"))?;
        Ok(writer)
    }

    /// Before the request leaves: from here on it may have been applied.
    pub fn sent(&mut self, seq: u32, kind: OpKind) -> std::io::Result<()> {
        match kind {
            OpKind::Put { index, value_bytes } => self.line(&format!("S {seq} put {index} {value_bytes}")),
            OpKind::Delete { index } => self.line(&format!("S {seq} delete {index}")),
        }
    }

    pub fn acked(&mut self, seq: u32, deleted: Option<bool>) -> std::io::Result<()> {
        match deleted {
            None => self.line(&format!("A {seq}")),
            Some(deleted) => self.line(&format!("A {seq} deleted {deleted}")),
        }
    }

    pub fn refused(&mut self, seq: u32, kind: &str) -> std::io::Result<()> {
        self.line(&format!("R {seq} {kind}"))
    }

    pub fn unknown(&mut self, seq: u32, error: &str) -> std::io::Result<()> {
        self.line(&format!("E {seq} {}", error.replace(['\n', '\r'], " ")))
    }

    fn line(&mut self, text: &str) -> std::io::Result<()> {
        self.file.write_all(format!("{text}\n").as_bytes())
    }
}

/// Reads every `thread-*.log` in `dir`, in thread order.
pub fn read_logs(dir: &Path) -> Result<Vec<ThreadLog>, String> {
    let entries = std::fs::read_dir(dir).map_err(|err| format!("cannot list {}: {err}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("thread-")))
        .collect();
    paths.sort();
    let mut logs = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        logs.push(parse(&text).map_err(|err| format!("{}: {err}", path.display()))?);
    }
    logs.sort_by_key(|log| log.thread);
    Ok(logs)
}

/// Parses one thread's log, holding it to the one-request-at-a-time shape.
pub fn parse(text: &str) -> Result<ThreadLog, String> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or("empty log")?;
    let (cycle, thread) = match header.split(' ').collect::<Vec<_>>()[..] {
        ["cycle", cycle, "thread", thread] => (number(cycle)?, number(thread)?),
        _ => return Err(format!("line 1: not a header: {header:?}")),
    };
    let mut ops: Vec<LoggedOp> = Vec::new();
    for (line_index, line) in lines {
        let at = |what: String| format!("line {}: {what}: {line:?}", line_index + 1);
        let fields: Vec<&str> = line.splitn(3, ' ').collect();
        let open = ops.last().filter(|op| op.outcome == Outcome::InFlight);
        if fields[0] == "S" {
            if open.is_some() || ops.last().is_some_and(|op| matches!(op.outcome, Outcome::Unknown { .. })) {
                return Err(at("a request sent while the previous one had no definite answer".into()));
            }
            let seq = number(fields.get(1).ok_or_else(|| at("no seq".into()))?).map_err(at)?;
            if seq != ops.last().map_or(1, |op| op.seq + 1) {
                return Err(at(format!("seq {seq} out of order")));
            }
            let kind = parse_kind(fields.get(2).copied().unwrap_or("")).map_err(at)?;
            ops.push(LoggedOp { seq, kind, outcome: Outcome::InFlight });
            continue;
        }
        let seq = number(fields.get(1).copied().unwrap_or("")).map_err(at)?;
        let Some(op) = ops.last_mut().filter(|op| op.seq == seq && op.outcome == Outcome::InFlight) else {
            return Err(at(format!("an answer to seq {seq}, which is not the request in flight")));
        };
        let rest = fields.get(2).copied();
        op.outcome = match (fields[0], op.kind, rest) {
            ("A", OpKind::Put { .. }, None) => Outcome::Acked { deleted: None },
            ("A", OpKind::Delete { .. }, Some("deleted true")) => Outcome::Acked { deleted: Some(true) },
            ("A", OpKind::Delete { .. }, Some("deleted false")) => Outcome::Acked { deleted: Some(false) },
            ("R", _, Some(kind)) => Outcome::Refused { kind: kind.to_string() },
            ("E", _, Some(error)) => Outcome::Unknown { error: error.to_string() },
            _ => return Err(at("not a log line".into())),
        };
    }
    Ok(ThreadLog { cycle, thread, ops })
}

fn parse_kind(text: &str) -> Result<OpKind, String> {
    match text.split(' ').collect::<Vec<_>>()[..] {
        ["put", index, value_bytes] => Ok(OpKind::Put { index: number(index)?, value_bytes: number(value_bytes)? }),
        ["delete", index] => Ok(OpKind::Delete { index: number(index)? }),
        _ => Err(format!("not an operation: {text:?}")),
    }
}

fn number(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_log_reads_back() {
        // Every kind of line the writer produces parses to the same operations.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = log_path(dir.path(), 3);
        let mut log = LogWriter::create(&path, 12, 3).expect("create");
        log.sent(1, OpKind::Put { index: 17, value_bytes: 2048 }).expect("write");
        log.acked(1, None).expect("write");
        log.sent(2, OpKind::Delete { index: 4 }).expect("write");
        log.acked(2, Some(true)).expect("write");
        log.sent(3, OpKind::Put { index: 9, value_bytes: 64 }).expect("write");
        log.refused(3, "no_space").expect("write");
        log.sent(4, OpKind::Delete { index: 8 }).expect("write");
        let logs = read_logs(dir.path()).expect("read");
        assert_eq!(logs.len(), 1);
        assert_eq!((logs[0].cycle, logs[0].thread), (12, 3));
        let outcomes: Vec<&Outcome> = logs[0].ops.iter().map(|op| &op.outcome).collect();
        assert_eq!(
            outcomes,
            [
                &Outcome::Acked { deleted: None },
                &Outcome::Acked { deleted: Some(true) },
                &Outcome::Refused { kind: "no_space".into() },
                &Outcome::InFlight
            ]
        );
        assert_eq!(logs[0].ops[3].kind, OpKind::Delete { index: 8 });
    }

    #[test]
    fn logs_of_another_shape_are_refused() {
        // Two requests open at once, answers out of order and gaps in seq are errors, not guesses.
        let header = "cycle 1 thread 0\n";
        for body in [
            "S 1 put 0 8\nS 2 put 0 8\n",
            "S 1 put 0 8\nA 2\n",
            "S 2 put 0 8\n",
            "S 1 put 0 8\nE 1 io: x\nS 2 put 0 8\n",
            "S 1 delete 0\nA 1\n",
            "S 1 put 0\n",
            "A 1\n",
        ] {
            assert!(parse(&format!("{header}{body}")).is_err(), "{body:?}");
        }
        assert!(parse("").is_err());
        assert!(parse("cycle x thread 0\n").is_err());
    }
}
