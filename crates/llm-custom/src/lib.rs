//! The `custom` provider for llm-router.
