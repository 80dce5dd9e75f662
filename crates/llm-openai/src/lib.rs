//! The `openai` provider for llm-router.
