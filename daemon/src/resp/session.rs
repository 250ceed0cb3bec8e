//! One connection's RESP state: the protocol it asked for (HELLO), its
//! transaction in progress (MULTI … EXEC) and the keys it watches. It
//! travels with the connection's job to whichever thread runs it; only one
//! job of a connection runs at a time, so nothing here is shared. What
//! other connections may see of it is its `Client` entry.

use super::spec::Call;
use crate::clients::Client;
use crate::monitor::Feed;
use crate::watches::{Dirty, Watches};
use parking_lot::Mutex;
use std::sync::Arc;

/// Commands one transaction may queue.
pub const MULTI_COMMANDS_MAX: usize = 100_000;
/// Argument bytes one transaction may queue: twice what one EXEC may write
/// (`BATCH_BYTES_MAX`), so a client cannot make kvd hold gigabytes.
pub const MULTI_BYTES_MAX: usize = 2 * blockkv_engine::limits::BATCH_BYTES_MAX;

#[derive(Debug)]
pub struct Session {
    pub client: Arc<Client>,
    /// RESP3 after `HELLO 3`, until `HELLO 2` or RESET.
    pub resp3: bool,
    /// Between MULTI and EXEC or DISCARD.
    pub multi: Option<Multi>,
    /// Between WATCH and EXEC, DISCARD, UNWATCH or RESET.
    pub watch: Option<Watch>,
    /// Replies are sent (CLIENT REPLY ON), or not.
    pub replies: Replies,
    /// Set by CLIENT REPLY for its own reply: sent (ON) or not (OFF, SKIP).
    pub reply_now: Option<bool>,
    /// After MONITOR: where every client's commands are streamed for this one.
    pub monitor: Option<Arc<Mutex<Feed>>>,
}

/// CLIENT REPLY's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replies {
    On,
    Off,
    /// Not for the next command only.
    Skip,
}

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Multi {
    pub queued: Vec<Call>,
    /// Argument bytes of `queued`.
    pub queued_bytes: usize,
    /// A command failed to queue (unknown, wrong arity): EXEC applies nothing.
    pub aborted: bool,
}

/// The keys a connection watches and whether each existed when watched.
#[derive(Debug)]
pub struct Watch {
    pub dirty: Arc<Dirty>,
    pub keys: Vec<(Vec<u8>, bool)>,
}

impl Session {
    pub fn new(client: Arc<Client>) -> Session {
        Session { client, resp3: false, multi: None, watch: None, replies: Replies::On, reply_now: None, monitor: None }
    }

    /// Forgets every watched key (EXEC, DISCARD, UNWATCH, RESET, close).
    pub fn unwatch(&mut self, watches: &Watches) {
        if let Some(watch) = self.watch.take() {
            watches.unwatch(watch.keys.iter().map(|(key, _)| key.as_slice()), &watch.dirty);
        }
    }

    pub fn end_multi(&mut self) {
        self.multi = None;
        self.client.set_multi(None);
    }
}
