//! What the store held after a cycle's check, for the next cycle.
//!
//! The data file lives across cycles (so recovery after recovery is tested),
//! and so must the expectation: after a check, every key's outcome is
//! settled (an in-flight request either took effect or did not, and the
//! check saw which), and that settled state is where the next cycle starts.
//!
//! The file lists the keys that hold a value, one per line, as
//! `thread index cycle seq value_bytes` (the put that wrote it is
//! `cycle`/`thread`/`seq`); every other key of the run must be absent.

use crate::keyspace::{KeyRef, OpId, Written};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The settled contents of the store: the keys that hold a value and which
/// put wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub present: BTreeMap<KeyRef, Written>,
}

impl State {
    /// Loads a state file; a missing file is the empty store (a new data file).
    pub fn load(path: &Path) -> Result<State, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let mut state = State::default();
        for (line_index, line) in text.lines().enumerate() {
            let fields: Result<Vec<u32>, _> = line.split(' ').map(str::parse).collect();
            let [thread, index, cycle, seq, value_bytes] = fields.as_deref().unwrap_or_default()[..] else {
                return Err(format!("{} line {}: not a state line: {line:?}", path.display(), line_index + 1));
            };
            let written = Written { op: OpId { cycle, thread, seq }, value_bytes };
            state.present.insert(KeyRef { thread, index }, written);
        }
        Ok(state)
    }

    /// Writes the state to `path` (through a temporary file and a rename, so
    /// a reader never sees half of it).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut text = String::new();
        for (key, written) in &self.present {
            let OpId { cycle, seq, .. } = written.op;
            let _ = writeln!(text, "{} {} {cycle} {seq} {}", key.thread, key.index, written.value_bytes);
        }
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_a_missing_one_is_empty() {
        // Round trip through the file; no file means a new, empty store.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state");
        assert_eq!(State::load(&path).expect("missing"), State::default());
        let mut state = State::default();
        let key = KeyRef { thread: 1, index: 9 };
        state.present.insert(key, Written { op: OpId { cycle: 3, thread: 1, seq: 44 }, value_bytes: 300 });
        state.save(&path).expect("save");
        assert_eq!(State::load(&path).expect("load"), state);
        std::fs::write(&path, "1 2 3\n").expect("write");
        assert!(State::load(&path).is_err());
    }
}
