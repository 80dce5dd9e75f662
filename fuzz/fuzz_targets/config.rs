//! Fuzz target `config`: `llm_chaos::decode::config` (see chaos/src/decode.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = llm_chaos::decode::config(data) {
        panic!("config: {e}");
    }
});
