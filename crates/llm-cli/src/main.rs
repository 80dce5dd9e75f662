//! `llm`: generate, route, list providers and models, pull Ollama models,
//! set up, check configuration, and serve an OpenAI-compatible gateway.

fn main() -> std::process::ExitCode {
    llm_cli::cli::main()
}
