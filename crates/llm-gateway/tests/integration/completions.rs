//! Legacy `POST /v1/completions`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llm_core::testing::MockReply;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_prompt_is_completed_by_an_openai_upstream() {
    let up = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/completions",
            &json!({"model": "gpt-4o-mini", "prompt": ["Say hello."], "stop": "\n", "seed": 7,
                    "temperature": 0.0}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // No max_tokens was sent, so none goes upstream.
    assert_eq!(
        only_body(&up, "/v1/chat/completions"),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}],
               "stop": ["\n"], "seed": 7, "temperature": 0.0})
    );
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("cmpl-"), "{id}");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(
        body["choices"],
        json!([{"text": "Hello!", "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22})
    );
}

#[tokio::test]
async fn a_stream_from_an_ollama_upstream_ends_with_usage_and_done() {
    let up = ollama(ndjson(&OLLAMA_STREAM)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, ct, text) = gw
        .post_text(
            "/v1/completions",
            &json!({"model": "llama3.2", "prompt": "Say hello.", "max_tokens": 16, "stream": true,
                    "stream_options": {"include_usage": true}}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("text/event-stream"));
    let sent = only_body(&up, "/api/chat");
    assert_eq!(sent["options"]["num_predict"], 16);
    let events = sse_events(&text);
    let data: Vec<_> = events.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(data.len(), 5, "{text}");
    for chunk in &data[..4] {
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["id"], data[0]["id"]);
        assert_eq!(chunk["model"], "llama3.2");
    }
    assert_eq!(
        data[0]["choices"],
        json!([{"text": "Hello", "index": 0, "logprobs": null, "finish_reason": null}])
    );
    assert_eq!(data[1]["choices"][0]["text"], "!");
    assert_eq!(
        data[2]["choices"],
        json!([{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(data[3]["choices"], json!([]));
    assert_eq!(
        data[3]["usage"],
        json!({"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33})
    );
    assert_eq!(data[4], "[DONE]");
}

#[tokio::test]
async fn an_anthropic_upstream_completes_a_prompt() {
    let up = anthropic(MockReply::json(200, ANTHROPIC_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", anthropic_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/completions",
            &json!({"model": "claude-sonnet-4-5-20250929", "prompt": "Hi", "max_tokens": 5}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = only_body(&up, "/v1/messages");
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "Hi"}]));
    assert_eq!(sent["max_tokens"], 5);
    assert_eq!(body["choices"][0]["text"], "Hello!");
    assert_eq!(body["usage"]["prompt_tokens"], 16);
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_and_no_done() {
    let up = openai(sse_cut(&OPENAI_STREAM[..2])).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let (_, _, text) = gw
        .post_text(
            "/v1/completions",
            &json!({"model": "gpt-4o-mini", "prompt": "x", "stream": true}),
        )
        .await;
    let events = sse_events(&text);
    let last = &events.last().unwrap().1;
    assert_eq!(last["error"]["type"], "server_error", "{text}");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn unsupported_fields_are_refused_by_name() {
    let up = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    for (field, value) in [
        ("suffix", json!("end")),
        ("echo", json!(true)),
        ("best_of", json!(3)),
        ("logprobs", json!(5)),
        ("n", json!(2)),
    ] {
        let mut body = json!({"model": "gpt-4o-mini", "prompt": "x"});
        body[field] = value;
        let (status, err) = gw.post_json("/v1/completions", &body).await;
        assert_eq!(status, 400, "{field}");
        assert_eq!(err["error"]["param"], field);
        assert!(err["error"]["message"].as_str().unwrap().contains(field));
    }
    let (status, err) = gw
        .post_json(
            "/v1/completions",
            &json!({"model": "gpt-4o-mini", "prompt": ["a", "b"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "prompt");
    assert!(received(&up, "/v1/chat/completions").is_empty());
}
