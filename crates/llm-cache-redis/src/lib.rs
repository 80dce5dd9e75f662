//! Redis response cache for llm-router.
