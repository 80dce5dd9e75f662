//! Fuzz target `cache_entry`: `llm_chaos::decode::cache_entry` (see chaos/src/decode.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = llm_chaos::decode::cache_entry(data) {
        panic!("cache_entry: {e}");
    }
});
