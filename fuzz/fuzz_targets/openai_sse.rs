//! Fuzz target `openai_sse`: through the real provider
//! (`llm_chaos::decode::Harness::openai_sse`, an in-process server on 127.0.0.1).
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
    if let Err(e) = harness().openai_sse(data) {
        panic!("openai_sse: {e}");
    }
});
