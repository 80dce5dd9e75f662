//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) and every
//! recorded crash (`fuzz/regressions/<target>/`) through the same functions the
//! cargo-fuzz targets call, on the stable toolchain, so CI exercises the
//! targets without cargo-fuzz.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use llm_chaos::decode::{self, Harness};

/// Every fuzz target (a directory name under `fuzz/corpus`).
const TARGETS: &[&str] = &[
    "config",
    "cache_entry",
    "sse_framing",
    "ndjson_framing",
    "openai_json",
    "openai_sse",
    "openai_error",
    "ollama_json",
    "ollama_ndjson",
    "anthropic_json",
    "anthropic_sse",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs one input through `target`'s function, exactly as its fuzz target does.
fn replay(h: &Harness, target: &str, data: &[u8]) -> Result<(), String> {
    match target {
        "config" => decode::config(data),
        "cache_entry" => decode::cache_entry(data),
        "sse_framing" => decode::sse(data).map(drop),
        "ndjson_framing" => decode::ndjson(data).map(drop),
        "openai_json" => {
            h.openai_json(data);
            Ok(())
        }
        "openai_sse" => h.openai_sse(data).map(drop),
        "openai_error" => h.openai_error(data).map(drop),
        "ollama_json" => {
            h.ollama_json(data);
            Ok(())
        }
        "ollama_ndjson" => h.ollama_ndjson(data).map(drop),
        "anthropic_json" => {
            h.anthropic_json(data);
            Ok(())
        }
        "anthropic_sse" => h.anthropic_sse(data).map(drop),
        other => Err(format!("unknown target {other}")),
    }
}

#[test]
fn every_corpus_file_and_regression_replays_cleanly() {
    let h = Harness::new().unwrap();
    let mut failures = Vec::new();
    for target in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(!seeds.is_empty(), "no seed corpus for {target}");
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                replay(&h, target, &data)
            }));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("{}: {e}", path.display())),
                Err(_) => failures.push(format!("{}: panicked", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The seeds answer as the protocol says (a sanity check of the harness: a
/// correct stream decodes to its text, a stream without its terminator is an error).
#[test]
fn seeds_decode_to_what_the_protocol_says() {
    let h = Harness::new().unwrap();
    let read = |t: &str, f: &str| std::fs::read(fuzz_dir().join("corpus").join(t).join(f)).unwrap();
    assert_eq!(
        h.openai_sse(&read("openai_sse", "doc-2.6-stream-usage.sse"))
            .unwrap(),
        decode::Decoded::Answer("Hello!".into())
    );
    assert_eq!(
        h.ollama_ndjson(&read("ollama_ndjson", "doc-3.10-stream.ndjson"))
            .unwrap(),
        decode::Decoded::Answer("Hello!".into())
    );
    assert_eq!(
        h.openai_json(&read("openai_json", "doc-2.6-completion.json")),
        decode::Decoded::Answer("Hello!".into())
    );
    assert_eq!(
        h.ollama_json(&read("ollama_json", "doc-3.10-chat.json")),
        decode::Decoded::Answer("Hello!".into())
    );
    assert_eq!(
        h.anthropic_sse(&read("anthropic_sse", "doc-4.6-stream.sse"))
            .unwrap(),
        decode::Decoded::Answer("Hello!".into())
    );
    assert_eq!(
        h.anthropic_json(&read("anthropic_json", "doc-4.6-message.json")),
        decode::Decoded::Answer("Hello!".into())
    );
    assert!(matches!(
        h.anthropic_sse(&read("anthropic_sse", "fixture-error-event.sse"))
            .unwrap(),
        decode::Decoded::Error(e) if e.contains("Overloaded")
    ));
    let mut cut = read("openai_sse", "doc-2.6-stream-usage.sse");
    cut.truncate(cut.len() - "data: [DONE]\n\n".len());
    assert!(matches!(
        h.openai_sse(&cut).unwrap(),
        decode::Decoded::Error(_)
    ));
}

/// Writes the seeds derived from `llm_chaos::protocol` (run once with
/// `cargo test -p llm-chaos --test integration corpus_replay -- --ignored`); the seeds
/// copied from `shared/protocols.md` are committed as they are.
#[test]
#[ignore = "writes fuzz/corpus; run by hand when the protocol module changes"]
fn write_generated_seeds() {
    use llm_chaos::protocol::{answer_for, ollama, openai};
    use llm_core::cache::CachedResponse;
    use llm_core::{FinishReason, Usage};

    let put = |t: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(t);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    let text = answer_for("q000001 poem");
    let stream = |include_usage: bool| openai::stream_events(&text, include_usage).concat();
    put(
        "openai_sse",
        "gen-stream-no-usage.sse",
        &[&[0x01][..], &stream(false)].concat(),
    );
    put(
        "openai_sse",
        "gen-stream-error.sse",
        &[
            &[0x04][..],
            &openai::role_event(false),
            &openai::error_event(),
        ]
        .concat(),
    );
    put(
        "openai_json",
        "gen-completion.json",
        openai::completion(&text).as_bytes(),
    );
    put(
        "ollama_json",
        "gen-chat.json",
        ollama::chat(&text).as_bytes(),
    );
    let lines = ollama::stream_lines(&text).concat();
    put(
        "ollama_ndjson",
        "gen-stream.ndjson",
        &[&[0x02][..], &lines].concat(),
    );
    let mut with_error = ollama::stream_lines(&text);
    with_error.pop();
    with_error.push(ollama::ERROR_LINE.to_vec());
    put(
        "ollama_ndjson",
        "gen-stream-error.ndjson",
        &[&[0x0f][..], &with_error.concat()].concat(),
    );
    let entry = CachedResponse {
        content: text.clone(),
        provider: "openai-a".into(),
        provider_kind: "openai".into(),
        model: "gpt-4o-mini".into(),
        usage: Usage::new(20, 2),
        finish_reason: FinishReason::Other("eos".into()),
        tool_calls: Vec::new(),
        logprobs: Vec::new(),
        thinking: Vec::new(),
        route_model: None,
    };
    put("cache_entry", "gen-entry.bin", &entry.encode());
    put("cache_entry", "gen-version-2.bin", b"\x02{}");
    let config = "[llm_providers.openai-a]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
        api_key = \"${OPENAI_API_KEY:-}\"\nmodels = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 1.5\n\n\
        [llm_providers.ollama]\nbase_url = \"http://127.0.0.1:9\"\nheaders = { Authorization = \"Bearer ${TOKEN}\" }\n\n\
        [llm_providers.custom]\nenabled = false\napi_key = \"${UNSET}\"\n\n\
        [routing]\nstrategy = \"weighted\"\ndeadline = 10\nfallback = {}\n[routing.retry]\nmax_retries = 2\n\
        [routing.health]\ncooldown = 0.2\n\n[caching]\nbackend = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6379/0\"\n\n\
        [gateway]\napi_keys = [\"${GW_KEY:-}\"]\nmax_body_bytes = 1024\n";
    put("config", "gen-chaos.toml", config.as_bytes());
}
