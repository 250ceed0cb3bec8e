//! Write groups: many writers, one leader, one `pwrite` and one `fdatasync`.
//!
//! A writer that finds no leader leads at once. Writers that arrive while a
//! group is being written queue a copy of their ops and sleep; when the
//! leader is done it hands the lead to the first of them, who takes every
//! queued request, places all of them in the log under one hold of the log
//! lock, writes them with one flush, publishes them to the index in LSN
//! order, syncs once (sync=always), and hands each writer its outcome. No
//! thread leads for ever. (The figures: docs/BENCHMARKS.md.)

use super::log::Op;
use crate::error::Result;
use crate::space::Purpose;
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;

/// One operation, owned: the leader works on other writers' requests.
#[derive(Debug, Clone)]
pub struct OwnedOp {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub tombstone: bool,
    pub expires_ms: u64,
}

impl OwnedOp {
    pub fn from_op(op: &Op<'_>) -> Self {
        OwnedOp { key: op.key.to_vec(), value: op.value.to_vec(), tombstone: op.tombstone, expires_ms: op.expires_ms }
    }

    pub fn as_op(&self) -> Op<'_> {
        Op { key: &self.key, value: &self.value, tombstone: self.tombstone, expires_ms: self.expires_ms }
    }
}

#[derive(Debug)]
enum Slot {
    Waiting,
    /// The previous leader handed this writer the lead.
    Lead,
    /// The last LSN of the request, or why it failed.
    Done(Result<u64>),
}

/// A queued write (one put, or one atomic batch).
#[derive(Debug)]
pub struct Request {
    pub ops: Vec<OwnedOp>,
    pub purpose: Purpose,
    slot: Mutex<Slot>,
    ready: Condvar,
}

impl Request {
    pub fn new(ops: Vec<OwnedOp>, purpose: Purpose) -> Arc<Self> {
        Arc::new(Request { ops, purpose, slot: Mutex::new(Slot::Waiting), ready: Condvar::new() })
    }

    /// Sets the outcome and wakes the writer.
    pub fn finish(&self, outcome: Result<u64>) {
        *self.slot.lock() = Slot::Done(outcome);
        self.ready.notify_one();
    }

    fn lead(&self) {
        *self.slot.lock() = Slot::Lead;
        self.ready.notify_one();
    }

    /// Waits for an outcome (Some) or for the lead (None).
    fn wait(&self) -> Option<Result<u64>> {
        let mut slot = self.slot.lock();
        loop {
            match std::mem::replace(&mut *slot, Slot::Waiting) {
                Slot::Waiting => self.ready.wait(&mut slot),
                Slot::Lead => return None,
                Slot::Done(outcome) => return Some(outcome),
            }
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Arc<Request>>,
    leading: bool,
}

/// The queue writers join.
#[derive(Debug, Default)]
pub struct WriteGroup {
    queue: Mutex<Queue>,
}

/// One request as the leader sees it: its ops and their purpose.
pub type GroupInput<'a, 'b> = (&'a [Op<'b>], Purpose);

impl WriteGroup {
    /// Writes `ops` and returns the last LSN, or why not. `run` writes a
    /// whole group and returns one outcome per request, in order.
    ///
    /// A writer that finds no leader leads at once with its own ops (no
    /// copy: the uncontended path costs nothing extra). Otherwise it queues
    /// an owned copy and sleeps until its outcome, or the lead, arrives.
    pub fn submit(
        &self,
        ops: &[Op<'_>],
        purpose: Purpose,
        run: impl Fn(&[GroupInput<'_, '_>]) -> Vec<Result<u64>>,
    ) -> Result<u64> {
        let request = {
            let mut queue = self.queue.lock();
            if !queue.leading {
                queue.leading = true;
                drop(queue);
                let outcome = run(&[(ops, purpose)]).pop().expect("one outcome per request");
                self.hand_over();
                return outcome;
            }
            let request = Request::new(ops.iter().map(OwnedOp::from_op).collect(), purpose);
            queue.waiting.push(request.clone());
            request
        };
        if let Some(outcome) = request.wait() {
            return outcome;
        }
        // Handed the lead: run everything queued (this request included).
        let group = std::mem::take(&mut self.queue.lock().waiting);
        let ops: Vec<Vec<Op<'_>>> = group.iter().map(|r| r.ops.iter().map(OwnedOp::as_op).collect()).collect();
        let input: Vec<GroupInput<'_, '_>> =
            group.iter().zip(&ops).map(|(r, ops)| (ops.as_slice(), r.purpose)).collect();
        for (request, outcome) in group.iter().zip(run(&input)) {
            request.finish(outcome);
        }
        self.hand_over();
        request.wait().expect("the leader finished its own request")
    }

    /// Passes the lead to the first queued writer, or leaves it free.
    fn hand_over(&self) {
        let mut queue = self.queue.lock();
        match queue.waiting.first() {
            Some(next) => next.lead(),
            None => queue.leading = false,
        }
    }
}
