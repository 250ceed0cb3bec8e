//! Where a request may run: on the event loop or on a worker. The event
//! loop reads it for every request it dispatches (server/event_loop.rs);
//! a native request's comes from its kind (pipeline.rs), a RESP command's
//! from its spec (resp/spec.rs).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// A read of a key or two (and PING and the like): microseconds.
    Read,
    /// A plain put: it shares one write with every other put run with it.
    Put,
    /// A write of a key or a few: a `pwrite`, and with `--sync always` an
    /// `fdatasync` wait.
    Write,
    /// Anything that may take long: SCAN, STATS/INFO, CHECKPOINT, COMPACT,
    /// or a command kvd does not know.
    Heavy,
}
