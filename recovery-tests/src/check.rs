//! The rule the restarted kvd is held to.
//!
//! For every key of the run: start from the state the previous check
//! settled, apply this cycle's acknowledged operations in order. The key
//! must then hold the value of its last acknowledged put, or be absent if
//! its last acknowledged operation was a delete (or it was never written);
//! the only other outcome allowed is that of the one request in flight on
//! the key when kvd died (its put's value, or absent for a delete).
//! A refused request (no space) must have changed nothing.
//!
//! While the load runs the logs also say what each delete found: a delete
//! answered "the key held no value" for a key that must hold one (or the
//! reverse) is a violation too, seen before any crash.

use crate::keyspace::{KeyRef, OpId, Written, describe_value};
use crate::oplog::{OpKind, Outcome, ThreadLog};
use crate::state::State;
use std::collections::BTreeMap;

/// The request whose answer never came, and what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub op: OpId,
    /// The put's value, or None for a delete.
    pub put: Option<Written>,
}

/// What one key may hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyExpectation {
    /// After the last acknowledged operation: the value, or None for absent.
    pub acked: Option<Written>,
    /// The last acknowledged operation of this cycle, in words (None: the
    /// key was not acknowledged-written this cycle; `acked` is the previous state).
    pub acked_by: Option<String>,
    pub in_flight: Option<InFlight>,
}

/// Every key's expectation, and what the logs alone already show is wrong.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub keys: BTreeMap<KeyRef, KeyExpectation>,
    pub violations: Vec<String>,
    pub ops_acked: u64,
    pub in_flight: u64,
}

impl Model {
    /// Applies `logs` to `prior` for a run of `threads` x `keys_per_thread` keys.
    pub fn build(prior: &State, logs: &[ThreadLog], threads: u32, keys_per_thread: u32) -> Result<Model, String> {
        let mut model = Model::default();
        for key in KeyRef::all(threads, keys_per_thread) {
            let acked = prior.present.get(&key).copied();
            model.keys.insert(key, KeyExpectation { acked, ..KeyExpectation::default() });
        }
        if let Some(stray) = prior.present.keys().find(|key| !model.keys.contains_key(key)) {
            return Err(format!("the previous state names {stray}, outside this run's keys"));
        }
        for log in logs {
            if log.thread >= threads {
                return Err(format!("a log of thread {}, but the run has {threads} threads", log.thread));
            }
            for logged in &log.ops {
                let key = KeyRef { thread: log.thread, index: logged.kind.index() };
                let op = OpId { cycle: log.cycle, thread: log.thread, seq: logged.seq };
                let Some(expect) = model.keys.get_mut(&key) else {
                    return Err(format!("{op} names key index {}, outside the run's keys", key.index));
                };
                let put = match logged.kind {
                    OpKind::Put { value_bytes, .. } => Some(Written { op, value_bytes }),
                    OpKind::Delete { .. } => None,
                };
                match &logged.outcome {
                    Outcome::Acked { deleted } => {
                        model.ops_acked += 1;
                        if let Some(deleted) = *deleted
                            && deleted != expect.acked.is_some()
                        {
                            model.violations.push(format!(
                                "{key}: delete {op} was answered deleted={deleted}, but the key {}",
                                match expect.acked {
                                    Some(written) => format!("held {written}"),
                                    None => "held no value".to_string(),
                                }
                            ));
                        }
                        expect.acked = put;
                        expect.acked_by = Some(match put {
                            Some(written) => format!("acknowledged put {op} ({} bytes)", written.value_bytes),
                            None => format!("acknowledged delete {op}"),
                        });
                    }
                    Outcome::Refused { .. } => {}
                    Outcome::Unknown { .. } | Outcome::InFlight => {
                        model.in_flight += 1;
                        expect.in_flight = Some(InFlight { op, put });
                    }
                }
            }
        }
        Ok(model)
    }
}

/// The verdict on one key: the settled value (None = absent) if `observed`
/// is allowed, else the violation in words.
pub fn judge(
    key: KeyRef,
    expect: &KeyExpectation,
    observed: Option<&[u8]>,
    keys_per_thread: u32,
) -> Result<Option<Written>, String> {
    let matches = |allowed: Option<Written>| match (allowed, observed) {
        (None, None) => true,
        (Some(written), Some(bytes)) => written.value(key) == bytes,
        _ => false,
    };
    if matches(expect.acked) {
        return Ok(expect.acked);
    }
    if let Some(in_flight) = expect.in_flight
        && matches(in_flight.put)
    {
        return Ok(in_flight.put);
    }
    let found = match observed {
        Some(bytes) => describe_value(key, bytes, keys_per_thread),
        None => "absent".to_string(),
    };
    let last = expect.acked_by.clone().unwrap_or_else(|| "the state the previous check settled".to_string());
    let wanted = match expect.acked {
        Some(written) => written.to_string(),
        None => "absent".to_string(),
    };
    let what = match (expect.acked, observed) {
        (Some(_), None) => "lost an acknowledged write",
        (None, Some(_)) => "a deleted (or never written) key holds a value",
        _ => "wrong value",
    };
    let mut text = format!("{key}: {what}: found {found}; expected {wanted} (after {last})");
    if let Some(in_flight) = expect.in_flight {
        let outcome = in_flight.put.map_or_else(|| "absent".to_string(), |written| written.to_string());
        text.push_str(&format!(", or {outcome} (request in flight: {})", in_flight.op));
    }
    Err(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::LoggedOp;

    const KEY: KeyRef = KeyRef { thread: 0, index: 0 };

    fn op(seq: u32, kind: OpKind, outcome: Outcome) -> LoggedOp {
        LoggedOp { seq, kind, outcome }
    }

    fn put(seq: u32, outcome: Outcome) -> LoggedOp {
        op(seq, OpKind::Put { index: 0, value_bytes: 100 + seq }, outcome)
    }

    fn written(seq: u32) -> Written {
        Written { op: OpId { cycle: 1, thread: 0, seq }, value_bytes: 100 + seq }
    }

    fn model(ops: Vec<LoggedOp>) -> Model {
        let logs = [ThreadLog { cycle: 1, thread: 0, ops }];
        Model::build(&State::default(), &logs, 1, 1).expect("model")
    }

    fn acked() -> Outcome {
        Outcome::Acked { deleted: None }
    }

    #[test]
    fn the_last_acknowledged_put_or_the_in_flight_one_is_accepted() {
        // Acked put 1, put 2 in flight: either value passes, absence and older values fail.
        let model = model(vec![put(1, acked()), put(2, Outcome::InFlight)]);
        let expect = &model.keys[&KEY];
        assert_eq!(judge(KEY, expect, Some(&written(1).value(KEY)), 1), Ok(Some(written(1))));
        assert_eq!(judge(KEY, expect, Some(&written(2).value(KEY)), 1), Ok(Some(written(2))));
        let lost = judge(KEY, expect, None, 1).expect_err("absent");
        assert!(lost.contains("lost an acknowledged write"), "{lost}");
        assert!(lost.contains("request in flight: cycle 1 thread 0 #2"), "{lost}");
    }

    #[test]
    fn a_deleted_key_must_stay_absent() {
        // Put, then an acknowledged delete: the old value coming back is named as such.
        let delete = op(2, OpKind::Delete { index: 0 }, Outcome::Acked { deleted: Some(true) });
        let model = model(vec![put(1, acked()), delete]);
        let expect = &model.keys[&KEY];
        assert!(model.violations.is_empty(), "{:?}", model.violations);
        assert_eq!(judge(KEY, expect, None, 1), Ok(None));
        let back = judge(KEY, expect, Some(&written(1).value(KEY)), 1).expect_err("resurrected");
        assert!(back.contains("deleted") && back.contains("the value of put cycle 1 thread 0 #1"), "{back}");
    }

    #[test]
    fn an_in_flight_delete_allows_absence_and_a_refused_put_changes_nothing() {
        // Refused put 2 never counts; delete 3 in flight allows absent or put 1's value.
        let refused = Outcome::Refused { kind: "no_space".into() };
        let model =
            model(vec![put(1, acked()), put(2, refused), op(3, OpKind::Delete { index: 0 }, Outcome::InFlight)]);
        let expect = &model.keys[&KEY];
        assert_eq!(judge(KEY, expect, None, 1), Ok(None));
        assert_eq!(judge(KEY, expect, Some(&written(1).value(KEY)), 1), Ok(Some(written(1))));
        assert!(judge(KEY, expect, Some(&written(2).value(KEY)), 1).is_err());
    }

    #[test]
    fn a_delete_answer_that_contradicts_the_log_is_a_violation() {
        // A delete of a never-written key answered "deleted" means the store held something it should not.
        let model = model(vec![op(1, OpKind::Delete { index: 0 }, Outcome::Acked { deleted: Some(true) })]);
        assert_eq!(model.violations.len(), 1, "{:?}", model.violations);
    }

    #[test]
    fn the_previous_state_carries_over() {
        // A key settled by the previous check and untouched now must still hold that value.
        let mut prior = State::default();
        prior.present.insert(KEY, written(7));
        let model = Model::build(&prior, &[], 1, 1).expect("model");
        let expect = &model.keys[&KEY];
        assert_eq!(judge(KEY, expect, Some(&written(7).value(KEY)), 1), Ok(Some(written(7))));
        assert!(judge(KEY, expect, None, 1).expect_err("lost").contains("previous check"));
    }

    #[test]
    fn logs_outside_the_key_space_are_refused() {
        // A log naming a thread or key the run does not have is an operational error.
        let logs = [ThreadLog { cycle: 1, thread: 3, ops: vec![] }];
        assert!(Model::build(&State::default(), &logs, 2, 1).is_err());
        let logs = [ThreadLog { cycle: 1, thread: 0, ops: vec![op(1, OpKind::Delete { index: 5 }, acked())] }];
        assert!(Model::build(&State::default(), &logs, 1, 1).is_err());
    }
}
