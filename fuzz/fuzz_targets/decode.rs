//! Arbitrary bytes from a "server" through the OVSDB client's frame splitting, JSON-RPC dispatch,
//! monitor reply and update parsing, and replica updates. See `ovsdb::fuzzing::fuzz_decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ovsdb::fuzzing::fuzz_decode(data);
});
