//! The documented default configuration loads with no environment variable set,
//! and builds a working client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use llm_router::config::Config;
use llm_router::LlmClient;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/llm_providers.toml")
}

#[tokio::test]
async fn loads_without_any_environment_variable() {
    let text = std::fs::read_to_string(path()).unwrap();
    let cfg = Config::from_toml_str_with_env(&text, Some(path()), &|_| None).unwrap();
    let enabled: Vec<&str> = cfg
        .providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(enabled, ["openai", "ollama"]);
    let client = LlmClient::from_config(&cfg).unwrap();
    // Without a key, the hosted OpenAI instance reports itself unavailable
    // (no request is sent), never crashes.
    let openai = client.provider("openai").unwrap();
    assert!(!openai.is_available().await);
    let plan = client.explain(&llm_router::LlmRequest::new("Hello").max_tokens(100));
    assert_eq!(plan.primary(), Some("ollama"), "{plan}");
}
