//! Tool calling through the client: routing to providers that support tools,
//! assembling streamed calls, caching and replaying them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::StreamExt;
use llm_core::config::CachingConfig;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{
    FinishReason, LlmClient, LlmError, LlmRequest, Message, StreamEvent, Tool, ToolCall,
    ToolCallAssembler,
};
use serde_json::json;

fn weather() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

fn call() -> ToolCall {
    ToolCall {
        id: "call_abc123".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }
}

fn client(providers: &[Arc<ScriptedProvider>], caching: Option<CachingConfig>) -> LlmClient {
    let mut b = LlmClient::builder().seed(1);
    for p in providers {
        b = b.provider(p.clone());
    }
    match caching {
        Some(c) => b.caching(c),
        None => b.no_cache(),
    }
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_request_with_tools_goes_only_to_providers_that_support_them() {
    let local = Arc::new(ScriptedProvider::new("ollama").kind("ollama").local(true));
    let tools = Arc::new(ScriptedProvider::new("openai").kind("openai").tools(true));
    tools.push(Reply::ToolCalls(vec![call()]));
    let c = client(&[local.clone(), tools.clone()], None);

    let req = LlmRequest::new("Weather in Paris?")
        .max_tokens(100)
        .tool(weather());
    // A short prompt is a simple task, which prefers the local provider; it
    // cannot take tools, so the plan says so and skips it.
    let plan = c.explain(&req);
    assert_eq!(plan.sequence.len(), 1, "{plan}");
    assert_eq!(plan.sequence[0].provider, "openai");
    assert!(
        plan.to_string().contains("does not support tools"),
        "{plan}"
    );

    let resp = c.generate(req).await.unwrap();
    assert_eq!(resp.provider, "openai");
    assert_eq!(resp.tool_calls, vec![call()]);
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    assert_eq!(local.calls(), 0);
    assert_eq!(tools.requests()[0].tools, vec![weather()]);

    // Without tools the local provider serves as before.
    let plain = c
        .generate(LlmRequest::new("hello").max_tokens(100))
        .await
        .unwrap();
    assert_eq!(plain.provider, "ollama");
}

#[tokio::test]
async fn a_conversation_carrying_tool_results_also_needs_tool_support() {
    let local = Arc::new(ScriptedProvider::new("ollama").local(true));
    let tools = Arc::new(ScriptedProvider::new("openai").tools(true));
    tools.push(Reply::text("18°C and cloudy in Paris."));
    let c = client(&[local.clone(), tools.clone()], None);
    let req = LlmRequest::from_messages(vec![
        Message::user("Weather in Paris?"),
        Message::assistant_tool_calls("", vec![call()]),
        Message::tool_result("call_abc123", "18°C, cloudy"),
    ]);
    let resp = c.generate(req).await.unwrap();
    assert_eq!(resp.provider, "openai");
    assert_eq!(local.calls(), 0);
    let sent = &tools.requests()[0];
    assert_eq!(sent.messages[1].tool_calls, vec![call()]);
    assert_eq!(
        sent.messages[2].tool_call_id.as_deref(),
        Some("call_abc123")
    );
}

#[tokio::test]
async fn without_a_provider_that_supports_tools_the_error_says_so() {
    let a = Arc::new(ScriptedProvider::new("ollama").local(true));
    let b = Arc::new(ScriptedProvider::new("custom"));
    // Unhealthy-but-capable providers get a last-resort call; incapable ones never.
    let c = client(&[a.clone(), b.clone()], None);
    let err = c
        .generate(LlmRequest::new("q").tool(weather()))
        .await
        .unwrap_err();
    let LlmError::Unsupported { field, .. } = &err else {
        panic!("expected Unsupported, got {err:?}");
    };
    assert_eq!(field, "tools");
    assert!(err.to_string().contains("none supports tools"), "{err}");
    // With one capable instance the others are skipped, with the reason.
    let capable = Arc::new(ScriptedProvider::new("openai").tools(true));
    capable.set_available(false);
    let c = client(&[a.clone(), b.clone(), capable.clone()], None);
    let plan = c.explain(&LlmRequest::new("q").tool(weather()));
    for name in ["ollama", "custom"] {
        assert!(
            plan.skipped
                .iter()
                .any(|s| s.provider == name && s.reason == "does not support tools"),
            "{plan}"
        );
    }
    assert_eq!(a.calls() + b.calls(), 0);
}

#[tokio::test]
async fn invalid_tools_are_rejected_before_any_call() {
    let p = Arc::new(ScriptedProvider::new("openai").tools(true));
    let c = client(std::slice::from_ref(&p), None);
    let err = c
        .generate(LlmRequest::new("q").tool(Tool::function("bad name", "d", json!({}))))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Validation(ref v) if v.field == "tools"),
        "{err:?}"
    );
    assert_eq!(p.calls(), 0);
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_fragments_and_are_cached_whole() {
    let p = Arc::new(ScriptedProvider::new("openai").tools(true));
    p.push(Reply::ToolCalls(vec![call()]));
    let c = client(std::slice::from_ref(&p), Some(CachingConfig::default()));
    let req = LlmRequest::new("Weather in Paris?").tool(weather());

    let mut s = c.stream(req.clone()).await.unwrap();
    let mut assembler = ToolCallAssembler::default();
    let mut fragments = 0;
    let mut finish = None;
    while let Some(ev) = s.next().await {
        let ev = ev.unwrap();
        if assembler.push_event(&ev) {
            fragments += 1;
        }
        if let StreamEvent::Done { finish_reason } = ev {
            finish = Some(finish_reason);
        }
    }
    assert_eq!(fragments, 2);
    assert_eq!(assembler.finish(), vec![call()]);
    assert_eq!(finish, Some(FinishReason::ToolCalls));

    // The same request is a hit, with the calls, whether generated or streamed.
    let hit = c.generate(req.clone()).await.unwrap();
    assert!(hit.cached);
    assert_eq!(hit.tool_calls, vec![call()]);
    assert_eq!(hit.finish_reason, FinishReason::ToolCalls);
    let replay = c
        .stream(req)
        .await
        .unwrap()
        .collect_response()
        .await
        .unwrap();
    assert!(replay.cached);
    assert_eq!(replay.tool_calls, vec![call()]);
    assert_eq!(p.calls(), 1);
}
