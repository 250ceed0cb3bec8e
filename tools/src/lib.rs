//! blockkv's operator tools. `kv-fsck` (src/bin/kv-fsck.rs) is a thin binary
//! over `blockkv_engine::fsck`; kv-bench joins with issue 6.
#![deny(unsafe_code)]
