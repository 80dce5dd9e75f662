//! The `ollama` provider for llm-router.
