//! kvd's end-to-end tests start the kvd cargo built for this crate
//! (`CARGO_BIN_EXE_kvd`), so a change to the daemon is always the one tested.

use blockkv_testkit::{Kvd, Launch};
use std::path::Path;

/// The test kit's kvd on `dir`, with `args` after the kit's own.
pub fn start(dir: &Path, args: &[&str]) -> Kvd {
    Launch::new().bin(env!("CARGO_BIN_EXE_kvd")).args(args).start(dir)
}
