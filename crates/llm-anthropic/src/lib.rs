//! The `anthropic` provider for llm-router.
