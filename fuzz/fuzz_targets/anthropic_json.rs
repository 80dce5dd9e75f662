//! Fuzz target `anthropic_json`: a 200 JSON body through the real provider
//! (`llm_chaos::decode::Harness::anthropic_json`, an in-process server on 127.0.0.1).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llm_chaos::decode::Harness;

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| Harness::new().expect("start the decode harness"))
}

fuzz_target!(|data: &[u8]| {
    let _ = harness().anthropic_json(data);
});
