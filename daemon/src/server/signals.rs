//! The signals kvd answers, read on the event loop: SIGTERM and SIGINT
//! stop it (no new connections, finish what is in flight), SIGHUP reopens
//! the log file. docs/OPERATIONS.md, "Signals".

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io;

/// The signal handlers' pipe, registered with the event loop's poll.
pub(super) struct Signals {
    pending: signal_hook_mio::v1_0::Signals,
    on_sighup: Box<dyn Fn() + Send>,
}

impl Signals {
    /// Installs the handlers and registers their pipe under `token`.
    pub(super) fn register(registry: &Registry, token: Token, on_sighup: Box<dyn Fn() + Send>) -> io::Result<Signals> {
        let mut pending = signal_hook_mio::v1_0::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        registry.register(&mut pending, token, Interest::READABLE)?;
        Ok(Signals { pending, on_sighup })
    }

    /// Handles every signal received since the last call, in order: SIGHUP
    /// here, and each SIGTERM or SIGINT by `on_stop` with its name.
    pub(super) fn dispatch(&mut self, mut on_stop: impl FnMut(&'static str) -> io::Result<()>) -> io::Result<()> {
        for signal in self.pending.pending() {
            match signal {
                SIGHUP => {
                    tracing::info!("SIGHUP: reopening the log file");
                    (self.on_sighup)();
                }
                SIGTERM => on_stop("SIGTERM")?,
                _ => on_stop("SIGINT")?,
            }
        }
        Ok(())
    }
}
