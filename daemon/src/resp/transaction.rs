//! MULTI, EXEC, DISCARD, WATCH, UNWATCH, with Redis's semantics:
//!
//! - Between MULTI and EXEC each command answers QUEUED; one that cannot
//!   run (unknown, wrong arity) is refused at once and makes EXEC answer
//!   EXECABORT and apply nothing.
//! - EXEC runs the queued commands in order, alone (no other client's
//!   command runs between them: the exclusive side of
//!   `Context::isolation`), each seeing the writes of those before it (a
//!   `Tx`). A command's runtime error (INCR of a non-number) is its reply
//!   inside EXEC's array and undoes nothing. The writes land together as
//!   one atomic batch — all or none, even across a crash; a batch the
//!   engine refuses (over `BATCH_OPS_MAX` keys or `BATCH_BYTES_MAX` bytes,
//!   no space) makes EXEC an error that applied nothing.
//! - A watched key that changed after WATCH — written or removed by any
//!   connection (`Watches::touch`), or present at WATCH and gone now
//!   (expired, flushed) — makes EXEC answer a null array and apply nothing.

use super::failure::{Failure, Reply};
use super::keyspace::Tx;
use super::reply::Out;
use super::session::{Multi, Watch};
use super::spec::Cx;
use crate::watches::{Dirty, WATCHED_KEYS_MAX};
use blockkv_protocol::resp::Command;
use std::sync::Arc;

pub(super) fn multi(cx: &mut Cx, _args: &Command) -> Reply {
    if cx.session.multi.is_some() {
        return Err(Failure::err("MULTI calls can not be nested"));
    }
    cx.session.multi = Some(Multi::default());
    cx.session.client.set_multi(Some(0));
    cx.out.ok();
    Ok(())
}

pub(super) fn discard(cx: &mut Cx, _args: &Command) -> Reply {
    if cx.session.multi.is_none() {
        return Err(Failure::err("DISCARD without MULTI"));
    }
    cx.session.end_multi();
    cx.session.unwatch(&cx.ctx.watches);
    cx.out.ok();
    Ok(())
}

pub(super) fn exec(cx: &mut Cx, _args: &Command) -> Reply {
    let Some(mut multi) = cx.session.multi.take() else {
        return Err(Failure::err("EXEC without MULTI"));
    };
    cx.session.end_multi();
    let changed = watched_changed(cx);
    cx.session.unwatch(&cx.ctx.watches);
    if multi.aborted {
        return Err(Failure::coded("EXECABORT Transaction discarded because of previous errors."));
    }
    if changed? {
        cx.out.null_array();
        return Ok(());
    }
    let calls = multi.take();
    let mut replies = Vec::new();
    let mut tx = Tx::new(&cx.ctx.store);
    for call in &calls {
        // Each reply in the protocol in force when it runs: a HELLO inside
        // the transaction switches the replies after it, as in Redis.
        let mut out = Out::new(&mut replies, cx.session.resp3);
        let mut inner = Cx { ctx: cx.ctx, session: &mut *cx.session, out: &mut out, db: &mut tx, in_exec: true };
        call.run_queued(&mut inner);
    }
    tx.commit(&cx.ctx.watches).map_err(|err| Failure::err(format_args!("EXEC applied nothing: {err}")))?;
    cx.out.array(calls.len());
    cx.out.raw(&replies);
    Ok(())
}

/// Whether any watched key changed since WATCH (touched, or there then and gone now).
fn watched_changed(cx: &mut Cx) -> Result<bool, Failure> {
    let Some(watch) = &cx.session.watch else { return Ok(false) };
    if watch.dirty.is_set() {
        return Ok(true);
    }
    for (key, existed) in &watch.keys {
        if *existed && !cx.ctx.store.exists(key)? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn watch(cx: &mut Cx, args: &Command) -> Reply {
    if cx.session.multi.is_some() {
        return Err(Failure::err("WATCH inside MULTI is not allowed"));
    }
    let watch = cx.session.watch.get_or_insert_with(|| Watch { dirty: Arc::new(Dirty::default()), keys: Vec::new() });
    for key in args.iter().skip(1) {
        if watch.keys.iter().any(|(watched, _)| watched == key) {
            continue;
        }
        if watch.keys.len() >= WATCHED_KEYS_MAX {
            return Err(Failure::err(format_args!("a connection watches at most {WATCHED_KEYS_MAX} keys")));
        }
        // Registered before the existence check: a write between the two is
        // then seen as a touch, never missed.
        cx.ctx.watches.watch(key, &watch.dirty);
        // Kept before the read, so an error here still leaves it to unwatch.
        watch.keys.push((key.to_vec(), true));
        let existed = cx.ctx.store.exists(key)?;
        if let Some(last) = watch.keys.last_mut() {
            last.1 = existed;
        }
    }
    cx.out.ok();
    Ok(())
}

pub(super) fn unwatch(cx: &mut Cx, _args: &Command) -> Reply {
    cx.session.unwatch(&cx.ctx.watches);
    cx.out.ok();
    Ok(())
}
