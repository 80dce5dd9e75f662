//! Streaming: print the answer as it arrives, then its usage.
//!
//! ```sh
//! cargo run -p llm-router --example streaming                      # offline, scripted
//! cargo run -p llm-router --example streaming -- --config config/llm_providers.toml "Tell me a joke."
//! ```
//!
//! Without `--config` a scripted provider (llm-core's test kit) streams a
//! canned answer word by word, so the example runs anywhere.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_router::config::Config;
use llm_router::{LlmClient, LlmRequest, StreamEvent};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (config, prompt) = args();
    let client = match config {
        Some(path) => LlmClient::from_config(&Config::load(Some(&path))?)?,
        None => LlmClient::builder()
            .provider(Arc::new(
                ScriptedProvider::new("ollama")
                    .kind("ollama")
                    .local(true)
                    .models(["llama3:8b"])
                    .otherwise(Reply::text(
                        "Streaming sends the answer piece by piece, so the first words \
                         show up long before the last ones are written.",
                    )),
            ))
            .build()?,
    };

    let mut stream = client
        .stream(LlmRequest::new(prompt).max_tokens(300))
        .await?;
    println!("[{} / {}]", stream.provider, stream.model);
    let mut stdout = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::Delta { text } => {
                write!(stdout, "{text}")?;
                stdout.flush()?;
            }
            StreamEvent::Usage { usage } => println!(
                "\n[usage: {} prompt + {} completion tokens]",
                usage.prompt_tokens, usage.completion_tokens
            ),
            // Only requests that offer tools get tool calls (and only those
            // that ask for thinking get thinking).
            StreamEvent::ToolCall { .. }
            | StreamEvent::Logprobs { .. }
            | StreamEvent::Thinking { .. }
            | StreamEvent::ThinkingSignature { .. }
            | StreamEvent::RedactedThinking { .. } => {}
            StreamEvent::Done { finish_reason } => println!("[done: {finish_reason}]"),
        }
    }
    Ok(())
}

/// `[--config PATH] [PROMPT]`.
fn args() -> (Option<PathBuf>, String) {
    let mut config = None;
    let mut prompt = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            _ => prompt = Some(arg),
        }
    }
    (
        config,
        prompt.unwrap_or_else(|| "Explain streaming in one sentence.".into()),
    )
}
