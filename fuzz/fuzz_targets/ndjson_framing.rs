//! Fuzz target `ndjson_framing`: `llm_chaos::decode::ndjson` (llm_core::http framing; the
//! first byte chooses how the rest is cut into network chunks).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = llm_chaos::decode::ndjson(data) {
        panic!("ndjson_framing: {e}");
    }
});
