//! A real OpenAI SDK client (the `async-openai` crate) against the gateway:
//! what it parses is what OpenAI's SDKs expect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FinishReason,
};
use async_openai::Client;
use common::*;
use futures::StreamExt;

fn sdk(gw: &TestGateway, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", gw.base))
            .with_api_key(key),
    )
}

fn request(model: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .max_completion_tokens(50u32)
        .temperature(0.2)
        .messages([
            ChatCompletionRequestSystemMessageArgs::default()
                .content("You are a terse assistant.")
                .build()
                .unwrap()
                .into(),
            ChatCompletionRequestUserMessageArgs::default()
                .content("Say hello.")
                .build()
                .unwrap()
                .into(),
        ])
        .build()
        .unwrap()
}

async fn keyed_gateway(url: &str) -> TestGateway {
    gateway(&format!(
        "{}{ROUTING}[gateway]\napi_keys = [\"sk-gw\"]\n",
        openai_section("primary", url, &["gpt-4o-mini"])
    ))
    .await
}

#[tokio::test]
async fn sdk_creates_a_completion() {
    let up = completion_upstream().await;
    let gw = keyed_gateway(&up.url()).await;
    let resp = sdk(&gw, "sk-gw")
        .chat()
        .create(request("auto"))
        .await
        .unwrap();
    assert!(resp.id.starts_with("chatcmpl-"));
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.choices.len(), 1);
    assert_eq!(resp.choices[0].message.content.as_deref(), Some("Hello!"));
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = resp.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (20, 2, 22)
    );
}

#[tokio::test]
async fn sdk_streams_with_usage() {
    let up = stream_upstream().await;
    let gw = keyed_gateway(&up.url()).await;
    let mut req = request("primary/gpt-4o-mini");
    req.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let mut stream = sdk(&gw, "sk-gw").chat().create_stream(req).await.unwrap();
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.object, "chat.completion.chunk");
        for c in &chunk.choices {
            if let Some(t) = &c.delta.content {
                text.push_str(t);
            }
            if c.finish_reason.is_some() {
                finish = c.finish_reason;
            }
        }
        if let Some(u) = chunk.usage {
            assert!(chunk.choices.is_empty());
            usage = Some(u);
        }
    }
    assert_eq!(text, "Hello!");
    assert_eq!(finish, Some(FinishReason::Stop));
    assert_eq!(usage.unwrap().total_tokens, 22);
}

#[tokio::test]
async fn sdk_lists_models() {
    let up = completion_upstream().await;
    let gw = keyed_gateway(&up.url()).await;
    let list = sdk(&gw, "sk-gw").models().list().await.unwrap();
    assert_eq!(list.object, "list");
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["primary/gpt-4o-mini"]);
    assert_eq!(list.data[0].owned_by, "primary");
}

#[tokio::test]
async fn sdk_reads_gateway_errors() {
    let up = completion_upstream().await;
    let gw = keyed_gateway(&up.url()).await;
    match sdk(&gw, "sk-gw").chat().create(request("gpt-9")).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 404);
            assert_eq!(e.api_error.code.as_deref(), Some("model_not_found"));
            assert_eq!(e.api_error.param.as_deref(), Some("model"));
        }
        other => panic!("expected a 404 API error, got {other:?}"),
    }
    match sdk(&gw, "sk-wrong").chat().create(request("auto")).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 401);
            assert_eq!(e.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("expected a 401 API error, got {other:?}"),
    }
}

#[tokio::test]
async fn sdk_sees_a_mid_stream_failure_as_an_error() {
    let up = cut_stream_upstream().await;
    let gw = keyed_gateway(&up.url()).await;
    let mut stream = sdk(&gw, "sk-gw")
        .chat()
        .create_stream(request("auto"))
        .await
        .unwrap();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        if item.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "the stream ended as if it were complete");
}

fn weather_request(stream: bool) -> CreateChatCompletionRequest {
    use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObjectArgs};
    let function = FunctionObjectArgs::default()
        .name("get_weather")
        .description("Current weather in a city")
        .parameters(serde_json::json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"]
        }))
        .build()
        .unwrap();
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model("auto")
        .max_completion_tokens(100u32)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("What's the weather in Paris?")
            .build()
            .unwrap()
            .into()])
        .tools(vec![ChatCompletionTools::Function(ChatCompletionTool {
            function,
        })]);
    if stream {
        args.stream(true);
    }
    args.build().unwrap()
}

#[tokio::test]
async fn sdk_receives_tool_calls_whole_and_streamed() {
    use async_openai::types::chat::ChatCompletionMessageToolCalls;
    use llm_core::testing::MockReply;
    use llm_openai::fixtures::{TOOL_CALL_COMPLETION, TOOL_CALL_STREAM};

    let up = openai_upstream(MockReply::json(200, TOOL_CALL_COMPLETION)).await;
    let gw = keyed_gateway(&up.url()).await;
    let resp = sdk(&gw, "sk-gw")
        .chat()
        .create(weather_request(false))
        .await
        .unwrap();
    let choice = &resp.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().unwrap();
    let ChatCompletionMessageToolCalls::Function(call) = &calls[0] else {
        panic!("a function call: {calls:?}");
    };
    assert_eq!(call.function.name, "get_weather");
    let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert!(args["city"].is_string(), "{args}");

    let pieces = TOOL_CALL_STREAM
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let up = openai_upstream(MockReply::chunked(200, "text/event-stream", pieces)).await;
    let gw = keyed_gateway(&up.url()).await;
    let mut stream = sdk(&gw, "sk-gw")
        .chat()
        .create_stream(weather_request(true))
        .await
        .unwrap();
    let (mut name, mut arguments, mut finish) = (None, String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for c in &chunk.choices {
            for t in c.delta.tool_calls.iter().flatten() {
                assert_eq!(t.index, 0);
                if let Some(f) = &t.function {
                    if let Some(n) = &f.name {
                        name = Some(n.clone());
                    }
                    arguments.push_str(f.arguments.as_deref().unwrap_or(""));
                }
            }
            if c.finish_reason.is_some() {
                finish = c.finish_reason;
            }
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&arguments).unwrap(),
        args
    );
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn sdk_structured_output_image_and_logprobs_round_trip() {
    use llm_core::testing::MockReply;
    use llm_openai::fixtures::LOGPROBS_COMPLETION;

    let up = openai_upstream(MockReply::json(200, LOGPROBS_COMPLETION)).await;
    let gw = keyed_gateway(&up.url()).await;
    let schema = serde_json::json!({"type": "object", "properties": {"name": {"type": "string"}},
        "required": ["name"], "additionalProperties": false});
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    // Built through the SDK's own types, so it is what the SDK sends.
    let req: CreateChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "auto",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Which city is this?"},
            {"type": "image_url", "image_url": {"url": png, "detail": "low"}}
        ]}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "City", "schema": schema, "strict": true}},
        "logprobs": true,
        "top_logprobs": 2,
        "user": "user-1234"
    }))
    .unwrap();
    let resp = sdk(&gw, "sk-gw").chat().create(req).await.unwrap();
    let lp = resp.choices[0].logprobs.as_ref().unwrap();
    let tokens: Vec<&str> = lp
        .content
        .iter()
        .flatten()
        .map(|t| t.token.as_str())
        .collect();
    assert_eq!(tokens, ["Hello", "!"]);
    let first = &lp.content.as_ref().unwrap()[0];
    assert_eq!(first.bytes.as_deref(), Some(&b"Hello"[..]));
    let tops: Vec<&str> = first
        .top_logprobs
        .iter()
        .map(|t| t.token.as_str())
        .collect();
    assert_eq!(tops, ["Hello", "Hi"]);

    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json();
    assert_eq!(
        sent["response_format"],
        serde_json::json!({"type": "json_schema",
            "json_schema": {"name": "City", "schema": schema, "strict": true}})
    );
    assert_eq!(
        sent["messages"][0]["content"][1],
        serde_json::json!({"type": "image_url", "image_url": {"url": png, "detail": "low"}})
    );
    assert_eq!(sent["logprobs"], true);
    assert_eq!(sent["top_logprobs"], 2);
    assert_eq!(sent["user"], "user-1234");
}

#[tokio::test]
async fn sdk_sees_an_upstream_client_error_as_that_status() {
    use llm_core::testing::MockReply;

    let body = r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let up = openai_upstream(MockReply::json(400, body)).await;
    let gw = keyed_gateway(&up.url()).await;
    match sdk(&gw, "sk-gw").chat().create(request("auto")).await {
        Err(OpenAIError::ApiError(e)) => {
            assert_eq!(e.status_code.as_u16(), 400);
            assert!(
                e.api_error.message.contains("maximum context length"),
                "{}",
                e.api_error.message
            );
        }
        other => panic!("expected a 400 API error, got {other:?}"),
    }
    // The SDK does not retry a 400: the upstream saw the request once.
    assert_eq!(
        up.requests().iter().filter(|r| r.method == "POST").count(),
        1
    );
}
