//! RESP input as a connection would send it, run against a fresh store on
//! two sessions (blockkv_daemon::fuzzing): no input may panic or hang kvd.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = blockkv_daemon::fuzzing::resp_stream(data);
});
