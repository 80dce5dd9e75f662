//! Every provider crate enabled by a cargo feature is linked and registered,
//! and no other: `registry::kinds()` equals exactly the enabled set.
//!
//! CI runs this file under the default features, `--no-default-features
//! --features openai`, and all features.

#[test]
fn kinds_equal_the_enabled_features() {
    let mut expected: Vec<&str> = Vec::new();
    if cfg!(feature = "anthropic") {
        expected.push("anthropic");
    }
    if cfg!(feature = "custom") {
        expected.push("custom");
    }
    if cfg!(feature = "ollama") {
        expected.push("ollama");
    }
    if cfg!(feature = "openai") {
        expected.push("openai");
    }
    assert_eq!(llm_router::registry::kinds(), expected);
}

#[test]
fn redis_cache_is_registered_exactly_with_its_feature() {
    assert_eq!(
        llm_router::registry::cache_plugin("redis").is_some(),
        cfg!(feature = "redis")
    );
}
