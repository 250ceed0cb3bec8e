//! kvd's end-to-end tests start the kvd cargo built for them (not the
//! kit's `kvd_bin`, which would build it a second time).

use blockkv_testkit::{Kvd, Launch};
use std::path::Path;

/// The test kit's kvd on `dir`, with `args` after the kit's own.
pub fn start(dir: &Path, args: &[&str]) -> Kvd {
    Launch::new().bin(env!("CARGO_BIN_EXE_kvd")).args(args).start(dir)
}
