//! `POST /v1/responses` served by OpenAI, Anthropic and Ollama upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llm_core::testing::MockReply;
use serde_json::{json, Value};

use crate::common::*;

fn event_types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// Every event names its type twice (the `event:` line and `type`) and
/// `sequence_number` counts from 0.
fn check_sequence(events: &[(String, Value)]) {
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "{data}");
        assert_eq!(data["sequence_number"], i, "{data}");
    }
}

#[tokio::test]
async fn a_string_input_is_answered_by_an_openai_upstream() {
    let up = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "Say hello.", "instructions": "Be terse.",
                    "max_output_tokens": 50, "temperature": 0.2, "metadata": {"trace": "t1"},
                    "store": true, "user": "u-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        only_body(&up, "/v1/chat/completions"),
        json!({"model": "gpt-4o-mini",
               "messages": [{"role": "system", "content": "Be terse."},
                            {"role": "user", "content": "Say hello."}],
               "max_tokens": 50, "temperature": 0.2, "user": "u-1"})
    );
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("resp_") && id.len() == 53, "{id}");
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert!(body["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(body["instructions"], "Be terse.");
    assert_eq!(body["metadata"], json!({"trace": "t1"}));
    assert_eq!(body["store"], false);
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["incomplete_details"], Value::Null);
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let msg = &output[0];
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["type"], "message");
    assert_eq!(msg["status"], "completed");
    assert_eq!(msg["role"], "assistant");
    assert_eq!(
        msg["content"],
        json!([{"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}])
    );
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 20, "input_tokens_details": {"cached_tokens": 0},
               "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 22})
    );
}

#[tokio::test]
async fn a_length_finish_is_an_incomplete_response() {
    let cut = OPENAI_COMPLETION.replace(
        "\"finish_reason\": \"stop\"",
        "\"finish_reason\": \"length\"",
    );
    assert_ne!(cut, OPENAI_COMPLETION);
    let up = openai(MockReply::json(200, cut)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": 2}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "incomplete");
    assert_eq!(
        body["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(body["output"][0]["status"], "incomplete");
    assert_eq!(body["max_output_tokens"], 2);
}

#[tokio::test]
async fn structured_output_reaches_an_openai_upstream_as_a_json_schema() {
    let up = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let schema = json!({"type": "object", "properties": {"greeting": {"type": "string"}},
                        "required": ["greeting"], "additionalProperties": false});
    let text = json!({"format": {"type": "json_schema", "name": "greeting", "schema": schema, "strict": true}});
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "Greet.", "text": text}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], text);
    let sent = only_body(&up, "/v1/chat/completions");
    assert_eq!(
        sent["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "greeting", "schema": schema, "strict": true}})
    );
}

#[tokio::test]
async fn a_function_tool_round_trip_through_an_anthropic_upstream() {
    let up = anthropic(MockReply::json(200, ANTHROPIC_TOOL_COMPLETION)).await;
    let gw = gateway(&format!("{}{ROUTING}", anthropic_section(&up.url()))).await;
    let tool = json!({"type": "function", "name": "get_stock_price", "description": "Price of a ticker.",
                      "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}},
                                     "required": ["ticker"]}, "strict": false});
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "claude-sonnet-4-5-20250929", "input": "What is the S&P 500 at?",
                    "tools": [tool], "tool_choice": "auto", "max_output_tokens": 300}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = only_body(&up, "/v1/messages");
    assert_eq!(
        sent["tools"],
        json!([{"name": "get_stock_price", "description": "Price of a ticker.",
        "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}, "required": ["ticker"]}}])
    );
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "What is the S&P 500 at?"}])
    );
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "claude-sonnet-4-5-20250929");
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 2, "{body}");
    assert_eq!(output[0]["content"][0]["text"], "Checking the index.");
    let call = &output[1];
    assert_eq!(call["type"], "function_call");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(call["call_id"], "toolu_01D7FLrfh4GYq7yT1ULFeyMV");
    assert_eq!(call["name"], "get_stock_price");
    assert_eq!(call["arguments"], r#"{"ticker":"^GSPC"}"#);
    assert_eq!(call["status"], "completed");
    assert_eq!(body["usage"]["input_tokens"], 380);
    assert_eq!(body["usage"]["output_tokens"], 54);

    // The client runs the tool and sends the call and its output back.
    up.reset();
    up.on(
        "POST",
        "/v1/messages",
        MockReply::json(200, ANTHROPIC_COMPLETION),
    );
    let mut input = vec![json!({"role": "user", "content": "What is the S&P 500 at?"})];
    input.extend(output.iter().cloned());
    input.push(
        json!({"type": "function_call_output", "call_id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV",
                      "output": "5000.12"}),
    );
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "claude-sonnet-4-5-20250929", "input": input, "tools": [tool]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"][0]["content"][0]["text"], "Hello!");
    let all = received(&up, "/v1/messages");
    assert_eq!(all.len(), 2);
    let sent = all[1].json();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "What is the S&P 500 at?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking the index."},
                {"type": "tool_use", "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "name": "get_stock_price",
                 "input": {"ticker": "^GSPC"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV", "content": "5000.12"}]}
        ])
    );
}

#[tokio::test]
async fn a_stream_from_an_ollama_upstream_has_the_typed_events_in_order() {
    let up = ollama(ndjson(&OLLAMA_STREAM)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, ct, text) = gw
        .post_text("/v1/responses", &json!({"model": "llama3.2", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}], "stream": true}))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let sent = only_body(&up, "/api/chat");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say hello."}])
    );
    assert_eq!(sent["stream"], true);
    let events = sse_events(&text);
    check_sequence(&events);
    assert_eq!(
        event_types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let created = &events[0].1["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    let id = created["id"].as_str().unwrap();
    let added = &events[2].1;
    assert_eq!(added["output_index"], 0);
    let item_id = added["item"]["id"].as_str().unwrap();
    assert_eq!(
        added["item"],
        json!({"id": item_id, "type": "message", "status": "in_progress",
                                     "role": "assistant", "content": []})
    );
    assert_eq!(
        events[3].1["part"],
        json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
    );
    assert_eq!(events[4].1["delta"], "Hello");
    assert_eq!(events[4].1["item_id"], item_id);
    assert_eq!(events[4].1["content_index"], 0);
    assert_eq!(events[5].1["delta"], "!");
    assert_eq!(events[6].1["text"], "Hello!");
    assert_eq!(events[7].1["part"]["text"], "Hello!");
    assert_eq!(events[8].1["item"]["status"], "completed");
    let done = &events[9].1["response"];
    assert_eq!(done["id"], id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!([events[8].1["item"]]));
    assert_eq!(done["usage"]["input_tokens"], 31);
    assert_eq!(done["usage"]["output_tokens"], 2);
    assert_eq!(done["usage"]["total_tokens"], 33);
}

#[tokio::test]
async fn a_streamed_function_call_from_an_anthropic_upstream() {
    let up = anthropic(sse(ANTHROPIC_TOOL_STREAM)).await;
    let gw = gateway(&format!("{}{ROUTING}", anthropic_section(&up.url()))).await;
    let (status, _, text) = gw
        .post_text(
            "/v1/responses",
            &json!({"model": "claude-sonnet-4-5-20250929", "input": "Weather in Paris?",
            "stream": true, "tools": [{"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let events = sse_events(&text);
    check_sequence(&events);
    let types = event_types(&events);
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let added = &events[8].1;
    assert_eq!(added["output_index"], 1);
    assert_eq!(added["item"]["type"], "function_call");
    assert_eq!(added["item"]["status"], "in_progress");
    assert_eq!(added["item"]["call_id"], "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_eq!(added["item"]["name"], "get_weather");
    assert_eq!(added["item"]["arguments"], "");
    let deltas: String = events[9..13]
        .iter()
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, r#"{"location": "Paris"}"#);
    assert_eq!(events[13].1["arguments"], r#"{"location": "Paris"}"#);
    assert_eq!(events[13].1["name"], "get_weather");
    assert_eq!(events[13].1["item_id"], added["item"]["id"]);
    let done = &events[15].1["response"];
    assert_eq!(done["output"][1]["arguments"], r#"{"location": "Paris"}"#);
    assert_eq!(done["output"][1]["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Let me check.");
    assert_eq!(done["usage"]["output_tokens"], 65);
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_response_failed_never_completed() {
    let up = openai(sse_cut(&OPENAI_STREAM[..2])).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;
    let (status, _, text) = gw
        .post_text(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x", "stream": true}),
        )
        .await;
    assert_eq!(status, 200);
    let events = sse_events(&text);
    check_sequence(&events);
    let types = event_types(&events);
    assert_eq!(types.last(), Some(&"response.failed"), "{types:?}");
    assert!(!types.contains(&"response.completed"), "{types:?}");
    let failed = &events.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "upstream_error");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mid-stream"),
        "{failed}"
    );
    // The partial message is kept in the failed response, marked incomplete.
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert_eq!(failed["output"][0]["content"][0]["text"], "Hello");
}

#[tokio::test]
async fn an_ollama_error_line_mid_stream_is_response_failed() {
    let up = ollama(ndjson(&[OLLAMA_STREAM[0], OLLAMA_STREAM_ERROR_LINE])).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (_, _, text) = gw
        .post_text(
            "/v1/responses",
            &json!({"model": "llama3.2", "input": "x", "stream": true}),
        )
        .await;
    let events = sse_events(&text);
    let types = event_types(&events);
    assert_eq!(types.last(), Some(&"response.failed"), "{types:?}");
    assert!(!types.contains(&"response.completed"));
    let msg = events.last().unwrap().1["response"]["error"]["message"].to_string();
    assert!(
        msg.contains("an error was encountered while running the model"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_ollama_upstream_answers_a_function_call() {
    let up = ollama(MockReply::new(200, OLLAMA_JSON, OLLAMA_TOOL_CALL)).await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, body) = gw
        .post_json("/v1/responses", &json!({"model": "llama3.2", "input": "Weather in Tokyo?",
            "tools": [{"type": "function", "name": "get_weather",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = only_body(&up, "/api/chat");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "no empty message before the call: {body}");
    assert_eq!(output[0]["type"], "function_call");
    assert_eq!(output[0]["call_id"], "call_a1b2c3d4");
    assert_eq!(output[0]["arguments"], r#"{"city":"Tokyo"}"#);
}

#[tokio::test]
async fn errors_come_in_openai_shape() {
    let up = openai(MockReply::json(500, OPENAI_SERVER_ERROR)).await;
    let gw = gateway(&format!("{}{ROUTING}", openai_section(&up.url()))).await;

    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x", "previous_response_id": "resp_1"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stateless"));

    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x",
            "tools": [{"type": "web_search_preview"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "tools[0].type");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search_preview"));

    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "no-such-model", "input": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");

    // Nothing reached the upstream so far.
    assert!(received(&up, "/v1/chat/completions").is_empty());

    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x"}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["type"], "server_error");
}

#[tokio::test]
async fn the_gateway_key_is_required() {
    let up = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let gw = gateway(&format!(
        "[gateway]\napi_keys = [\"gw-key-1\"]\n\n{}{ROUTING}",
        openai_section(&up.url())
    ))
    .await;
    let (status, body) = gw
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-4o-mini", "input": "x"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let r = gw
        .http
        .post(format!("{}/v1/responses", gw.base))
        .bearer_auth("gw-key-1")
        .json(&json!({"model": "gpt-4o-mini", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
