//! blockkv's operator tools. `kv-fsck` (src/bin/kv-fsck.rs) is a thin binary
//! over `blockkv_engine::fsck`; `kv-bench` (src/bin/kv-bench.rs) over
//! [`bench`], the load it generates.
#![deny(unsafe_code)]

pub mod bench;
