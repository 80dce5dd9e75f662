//! Tool calling through the gateway: OpenAI's request and response shapes
//! in, the OpenAI provider's upstream bytes out, and back again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use llm_core::testing::MockReply;
use llm_openai::fixtures::{TOOL_CALL_COMPLETION, TOOL_CALL_STREAM};
use serde_json::{json, Value};

fn weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }
        }
    })
}

fn ask_weather() -> Value {
    json!({
        "model": "auto",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [weather_tool()],
        "tool_choice": "auto",
        "max_completion_tokens": 100
    })
}

async fn tool_gateway(reply: MockReply) -> (llm_core::testing::MockServer, TestGateway) {
    let up = openai_upstream(reply).await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    (up, gw)
}

fn upstream_body(up: &llm_core::testing::MockServer) -> Value {
    up.requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a chat completion reached the upstream")
        .json()
}

#[tokio::test]
async fn a_tool_call_comes_back_in_openai_shape() {
    let (up, gw) = tool_gateway(MockReply::json(200, TOOL_CALL_COMPLETION)).await;
    let mut ask = ask_weather();
    ask["parallel_tool_calls"] = json!(false);
    let r = gw.chat(ask).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert!(message["content"].is_null(), "{message}");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");

    // The upstream got the tools and the choice in OpenAI's shape.
    let sent = upstream_body(&up);
    assert_eq!(sent["tools"], json!([weather_tool()]));
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["parallel_tool_calls"], false);
}

#[tokio::test]
async fn a_streamed_tool_call_arrives_as_fragments_per_index() {
    let pieces = TOOL_CALL_STREAM
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let (_up, gw) = tool_gateway(MockReply::chunked(200, "text/event-stream", pieces)).await;
    let mut body = ask_weather();
    body["stream"] = json!(true);
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let payloads = sse_payloads(&text);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let (mut id, mut name, mut arguments) = (None, None, String::new());
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], 0);
            if let Some(i) = call["id"].as_str() {
                assert!(id.is_none(), "the id comes once");
                assert_eq!(call["type"], "function");
                id = Some(i.to_string());
                name = call["function"]["name"].as_str().map(str::to_string);
            }
            arguments.push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert!(id.unwrap().starts_with("call_"));
    assert_eq!(name.as_deref(), Some("get_weather"));
    let args: Value = serde_json::from_str(&arguments).unwrap();
    assert!(args["city"].is_string(), "{arguments}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn tool_results_go_upstream_with_the_call_they_answer() {
    let (up, gw) = tool_gateway(MockReply::json(200, COMPLETION)).await;
    let call = json!({"id": "call_abc123", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
    let r = gw
        .chat(json!({
            "model": "auto",
            "messages": [
                {"role": "user", "content": "What's the weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [call.clone()]},
                {"role": "tool", "tool_call_id": "call_abc123", "content": "18°C, cloudy"}
            ],
            "tools": [weather_tool()]
        }))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());

    let sent = upstream_body(&up);
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["tool_calls"], json!([call]));
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_abc123", "content": "18°C, cloudy"})
    );
}

#[tokio::test]
async fn tools_with_no_provider_that_supports_them_are_a_400() {
    // A custom HTTP API provider does not map tools.
    let gw = gateway(&format!(
        "[llm_providers.private]\nkind = \"custom\"\nbase_url = \"http://127.0.0.1:9\"\n\n{ROUTING}"
    ))
    .await;
    let r = gw.chat(ask_weather()).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "tools_not_supported");
    assert_eq!(v["error"]["param"], "tools");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("(private)") && message.contains("supports tools"),
        "{message}"
    );

    // Tool history without tools: the conversation is what cannot be served.
    let r = gw
        .chat(json!({
            "model": "auto",
            "messages": [
                {"role": "user", "content": "What's the weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                    "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}
            ]
        }))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "tools_not_supported");
    assert_eq!(v["error"]["param"], "messages");
}
