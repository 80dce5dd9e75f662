//! Extended thinking through the client: planned only onto providers with
//! thinking, validated, thinking blocks assembled from streams, cached and
//! replayed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures::StreamExt;
use llm_core::config::CachingConfig;
use llm_core::testing::{Reply, ScriptedProvider};
use llm_core::{
    Capability, FinishReason, LlmClient, LlmError, LlmRequest, Message, StreamEvent, Thinking,
    ThinkingBlock, Usage,
};

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

fn thinking_request() -> LlmRequest {
    let mut req = LlmRequest::new("Is 1009 prime?")
        .max_tokens(4000)
        .thinking(Thinking::Enabled {
            budget_tokens: 2048,
        });
    req.temperature = None;
    req
}

/// The events of an answer with one thinking block, one redacted block and text.
fn thinking_events() -> Vec<Result<StreamEvent, llm_core::ProviderError>> {
    vec![
        Ok(StreamEvent::Thinking {
            index: 0,
            text: "Check divisors ".into(),
        }),
        Ok(StreamEvent::Thinking {
            index: 0,
            text: "up to 31.".into(),
        }),
        Ok(StreamEvent::ThinkingSignature {
            index: 0,
            signature: "EqQBCgIYAhIM".into(),
        }),
        Ok(StreamEvent::RedactedThinking {
            index: 1,
            data: "EmwKAhgBEgy3".into(),
        }),
        Ok(StreamEvent::delta("Yes, 1009 is prime.")),
        Ok(StreamEvent::Usage {
            usage: Usage::new(12, 40),
        }),
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop,
        }),
    ]
}

fn expected_blocks() -> Vec<ThinkingBlock> {
    vec![
        ThinkingBlock::Thinking {
            thinking: "Check divisors up to 31.".into(),
            signature: "EqQBCgIYAhIM".into(),
        },
        ThinkingBlock::RedactedThinking {
            data: "EmwKAhgBEgy3".into(),
        },
    ]
}

#[tokio::test]
async fn thinking_with_only_providers_without_it_is_unsupported_naming_the_field() {
    let a = Arc::new(ScriptedProvider::new("openai").tools(true));
    let b = Arc::new(ScriptedProvider::new("ollama").local(true));
    let c = client(&[a.clone(), b.clone()], None);
    for thinking in [
        Thinking::Enabled {
            budget_tokens: 2048,
        },
        Thinking::Adaptive,
    ] {
        let mut req = thinking_request();
        req.thinking = Some(thinking);
        let err = c.generate(req.clone()).await.unwrap_err();
        let LlmError::Unsupported { field, capability } = &err else {
            panic!("expected Unsupported, got {err:?}");
        };
        assert_eq!(field, "thinking");
        assert_eq!(*capability, Capability::Thinking);
        assert!(c.stream(req).await.is_err());
    }
    assert_eq!(a.calls() + b.calls(), 0);
    // Disabled thinking needs nothing.
    let mut req = thinking_request();
    req.thinking = Some(Thinking::Disabled);
    assert!(req.needs().is_empty());
    c.generate(req).await.unwrap();
}

#[tokio::test]
async fn thinking_is_planned_only_onto_providers_with_it() {
    let plain = Arc::new(ScriptedProvider::new("ollama").local(true));
    let thinker = Arc::new(
        ScriptedProvider::new("anthropic")
            .capability(Capability::Thinking)
            .then(Reply::Stream(thinking_events())),
    );
    let c = client(&[plain.clone(), thinker.clone()], None);
    let plan = c.explain(&thinking_request());
    assert!(
        plan.skipped
            .iter()
            .any(|s| s.provider == "ollama" && s.reason.contains("extended thinking")),
        "{plan}"
    );
    let resp = c.generate(thinking_request()).await.unwrap();
    assert_eq!(resp.provider, "anthropic");
    assert_eq!(resp.content, "Yes, 1009 is prime.");
    assert_eq!(resp.thinking, expected_blocks());
    assert_eq!(plain.calls(), 0);
    assert_eq!(
        thinker.requests()[0].thinking,
        Some(Thinking::Enabled {
            budget_tokens: 2048
        })
    );
}

#[tokio::test]
async fn an_instance_cap_below_the_budget_shrinks_the_budget_instead_of_refusing() {
    let profile = llm_core::ProviderProfile {
        max_tokens: Some(3000),
        ..Default::default()
    };
    let thinker = Arc::new(
        ScriptedProvider::new("anthropic")
            .capability(Capability::Thinking)
            .profile(profile)
            .then(Reply::Stream(thinking_events())),
    );
    let c = client(std::slice::from_ref(&thinker), None);
    let mut req = thinking_request().max_tokens(16_000);
    req.thinking = Some(Thinking::Enabled {
        budget_tokens: 10_000,
    });
    c.generate(req).await.unwrap();
    let sent = &thinker.requests()[0];
    assert_eq!(sent.max_tokens, Some(3000));
    assert_eq!(
        sent.thinking,
        Some(Thinking::Enabled {
            budget_tokens: 2999
        })
    );
}

#[test]
fn turning_thinking_on_clears_the_default_temperature() {
    let req = LlmRequest::new("hi").thinking(Thinking::Adaptive);
    assert_eq!(req.temperature, None);
    let req = LlmRequest::new("hi").thinking(Thinking::Disabled);
    assert!(req.temperature.is_some());
}

#[tokio::test]
async fn budgets_outside_the_documented_range_are_validation_errors() {
    let thinker = Arc::new(ScriptedProvider::new("anthropic").capability(Capability::Thinking));
    let c = client(std::slice::from_ref(&thinker), None);
    for (budget, max) in [(1023, 4000), (4000, 4000), (5000, 4000)] {
        let mut req = thinking_request().max_tokens(max);
        req.thinking = Some(Thinking::Enabled {
            budget_tokens: budget,
        });
        let err = c.generate(req).await.unwrap_err();
        let LlmError::Validation(v) = &err else {
            panic!("expected a validation error, got {err:?}");
        };
        assert_eq!(v.field, "thinking", "{v}");
        assert!(v.to_string().contains("budget_tokens"), "{v}");
    }
    // Thinking blocks belong to assistant messages.
    let mut user = Message::user("hi");
    user.thinking = expected_blocks();
    let err = c
        .generate(LlmRequest::from_messages(vec![user]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Validation(ref v) if v.field == "messages"),
        "{err:?}"
    );
    assert_eq!(thinker.calls(), 0);
}

#[tokio::test]
async fn streamed_thinking_is_forwarded_cached_and_replayed() {
    let thinker = Arc::new(
        ScriptedProvider::new("anthropic")
            .capability(Capability::Thinking)
            .then(Reply::Stream(thinking_events())),
    );
    let c = client(
        std::slice::from_ref(&thinker),
        Some(CachingConfig::default()),
    );
    let events: Vec<StreamEvent> = c
        .stream(thinking_request())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let expected: Vec<StreamEvent> = thinking_events().into_iter().map(Result::unwrap).collect();
    assert_eq!(events, expected);

    // The cached answer carries the blocks, whole and streamed.
    let hit = c.generate(thinking_request()).await.unwrap();
    assert!(hit.cached);
    assert_eq!(hit.thinking, expected_blocks());
    let replay = c.stream(thinking_request()).await.unwrap();
    assert!(replay.cached);
    let resp = replay.collect_response().await.unwrap();
    assert_eq!(resp.thinking, expected_blocks());
    assert_eq!(resp.content, "Yes, 1009 is prime.");
    assert_eq!(thinker.calls(), 1);

    // Another budget is another question.
    let mut other = thinking_request();
    other.thinking = Some(Thinking::Enabled {
        budget_tokens: 3000,
    });
    thinker.push(Reply::text("Yes."));
    assert!(!c.generate(other).await.unwrap().cached);
    assert_eq!(thinker.calls(), 2);
}

#[tokio::test]
async fn assistant_thinking_blocks_reach_the_provider_and_change_the_cache_key() {
    let thinker = Arc::new(
        ScriptedProvider::new("anthropic")
            .capability(Capability::Thinking)
            .otherwise(Reply::text("ok")),
    );
    let c = client(
        std::slice::from_ref(&thinker),
        Some(CachingConfig::default()),
    );
    let turn = |blocks: Vec<ThinkingBlock>| {
        let mut req = thinking_request()
            .message(Message::assistant_turn(blocks, "Yes.", Vec::new()))
            .message(Message::user("And 1013?"));
        req.temperature = None;
        req
    };
    c.generate(turn(expected_blocks())).await.unwrap();
    assert_eq!(
        thinker.requests()[0].messages[1].thinking,
        expected_blocks()
    );
    let mut changed = expected_blocks();
    changed.pop();
    let resp = c.generate(turn(changed)).await.unwrap();
    assert!(!resp.cached);
    assert!(c.generate(turn(expected_blocks())).await.unwrap().cached);
    assert_eq!(thinker.calls(), 2);
}

#[tokio::test]
async fn an_estimated_usage_counts_the_thinking_text() {
    let events = |thinking: &str| {
        Reply::Stream(vec![
            Ok(StreamEvent::Thinking {
                index: 0,
                text: thinking.into(),
            }),
            Ok(StreamEvent::ThinkingSignature {
                index: 0,
                signature: "sig".into(),
            }),
            Ok(StreamEvent::delta("Yes.")),
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Stop,
            }),
        ])
    };
    let long = "Check every divisor up to the square root, one by one. ".repeat(20);
    let thinker = Arc::new(
        ScriptedProvider::new("anthropic")
            .capability(Capability::Thinking)
            .then(events(""))
            .then(events(&long)),
    );
    let c = client(std::slice::from_ref(&thinker), None);
    let short = c.generate(thinking_request()).await.unwrap();
    let thought = c.generate(thinking_request()).await.unwrap();
    assert!(
        thought.usage.completion_tokens > short.usage.completion_tokens + 100,
        "{:?} vs {:?}",
        thought.usage,
        short.usage
    );
}
