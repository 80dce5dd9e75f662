//! Fuzz target `anthropic_sse`: a 200 event stream (cut as its control byte says) through the real provider
//! (`llm_chaos::decode::Harness::anthropic_sse`, an in-process server on 127.0.0.1).
//! A stream must end with exactly one terminal item (Done or an error).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llm_chaos::decode::Harness;

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| Harness::new().expect("start the decode harness"))
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = harness().anthropic_sse(data) {
        panic!("anthropic_sse: {e}");
    }
});
