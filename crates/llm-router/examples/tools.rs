//! Tool calling, offline: the model asks for a tool, the application runs it
//! and sends the result back, the model answers.
//!
//! ```sh
//! cargo run -p llm-router --example tools
//! ```
//!
//! Two scripted providers (llm-core's test kit) stand in for a local model
//! without tool support and OpenAI: a request offering tools skips the local
//! one (`explain` says why) and goes to the one that supports tools.

use std::sync::Arc;

use llm_core::testing::{Reply, ScriptedProvider};
use llm_router::{FinishReason, LlmClient, LlmRequest, Message, Tool, ToolCall, ToolChoice};
use serde_json::{json, Value};

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

/// The application's own tool.
fn get_weather(arguments: &Value) -> String {
    match arguments["city"].as_str() {
        Some("Paris") => "18°C, cloudy".to_string(),
        Some(city) => format!("no data for {city}"),
        None => "error: `city` is missing".to_string(),
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let local = ScriptedProvider::new("ollama").kind("ollama").local(true);
    let openai = ScriptedProvider::new("openai")
        .kind("openai")
        .models(["gpt-4o-mini"])
        .tools(true)
        .then(Reply::ToolCalls(vec![ToolCall {
            id: "call_abc123".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        }]))
        .then(Reply::text("It is 18°C and cloudy in Paris."));
    let client = LlmClient::builder()
        .provider(Arc::new(local))
        .provider(Arc::new(openai))
        .build()?;

    let weather = Tool::function(
        "get_weather",
        "Current weather in a city",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }),
    );
    let mut conversation = vec![Message::user("What's the weather in Paris?")];
    let ask = |messages: Vec<Message>| {
        LlmRequest::from_messages(messages)
            .max_tokens(200)
            .tool(weather.clone())
            .tool_choice(ToolChoice::Auto)
    };
    println!("route: {}", client.explain(&ask(conversation.clone())));

    loop {
        let resp = client.generate(ask(conversation.clone())).await?;
        if resp.finish_reason != FinishReason::ToolCalls {
            println!("answer from {}: {}", resp.provider, resp.content);
            return Ok(());
        }
        conversation.push(Message::assistant_tool_calls(
            resp.content.clone(),
            resp.tool_calls.clone(),
        ));
        for call in &resp.tool_calls {
            let arguments: Value = serde_json::from_str(&call.arguments)?;
            let result = get_weather(&arguments);
            println!(
                "tool call {} {}({}) → {result}",
                call.id, call.name, call.arguments
            );
            conversation.push(Message::tool_result(&call.id, result));
        }
    }
}
