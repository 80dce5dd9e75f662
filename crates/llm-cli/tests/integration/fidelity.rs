//! Chat Completions fidelity through real HTTP: every request field is mapped,
//! passed through or refused with a 400 naming it; log probabilities and
//! prompt-cache usage come back; client-class upstream errors keep their
//! status; upstream error text never carries keys; CORS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use crate::common::*;
use llm_core::testing::{MockReply, MockServer, Reply, ScriptedProvider};
use llm_core::{
    Capability, FinishReason, ImageInput, ResponseFormat, StreamEvent, TokenLogprob, TopLogprob,
};
use llm_openai::fixtures::{
    CACHED_COMPLETION, CACHED_STREAM, LOGPROBS_COMPLETION, LOGPROBS_STREAM, UNAUTHORIZED,
};
use serde_json::{json, Value};

/// A 1x1 PNG as a data URL.
const PNG_URL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// OpenAI's context-length error (protocols.md 2.5).
const CONTEXT_LENGTH: &str = r#"{
  "error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded"
  }
}"#;

/// OpenAI's unknown-model error (protocols.md 2.5).
const MODEL_NOT_FOUND: &str = r#"{"error":{"message":"The model `gpt-4o` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn posts(up: &MockServer) -> Vec<Value> {
    up.requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect()
}

async fn one_openai(reply: MockReply) -> (MockServer, TestGateway) {
    let up = openai_upstream(reply).await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    (up, gw)
}

async fn error_of(r: reqwest::Response) -> Value {
    let v: Value = r.json().await.unwrap();
    for key in ["message", "type", "param", "code"] {
        assert!(
            v["error"].get(key).is_some(),
            "error body lacks `{key}`: {v}"
        );
    }
    v["error"].clone()
}

fn chunks_of(text: &str) -> Vec<Value> {
    let events = sse_payloads(text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{text}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// A scripted provider claiming every capability.
fn capable(name: &str) -> ScriptedProvider {
    let mut p = ScriptedProvider::new(name)
        .kind("openai")
        .tools(true)
        .models(["m"]);
    for c in [
        Capability::JsonObject,
        Capability::JsonSchema,
        Capability::Images,
        Capability::Logprobs,
        Capability::Penalties,
        Capability::Passthrough,
    ] {
        p = p.capability(c);
    }
    p
}

#[tokio::test]
async fn every_request_field_reaches_the_core_request() {
    let p = Arc::new(capable("p").otherwise(Reply::text("ok")));
    let gw = scripted_gateway(vec![p.clone()], "").await;
    let r = gw
        .chat(json!({
            "model": "auto",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "name": "ann", "content": [
                    {"type": "text", "text": "What is "},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
                    {"type": "text", "text": "in these?"},
                    {"type": "image_url", "image_url": {"url": PNG_URL}}
                ]}
            ],
            "max_completion_tokens": 64,
            "temperature": 0.3,
            "top_p": 0.9,
            "stop": ["END"],
            "seed": -7,
            "n": 1,
            "modalities": ["text"],
            "frequency_penalty": 0.5,
            "presence_penalty": -0.25,
            "logprobs": true,
            "top_logprobs": 2,
            "user": "user-1234",
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "City", "description": "A city", "strict": true,
                "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                           "required": ["name"], "additionalProperties": false}}},
            "logit_bias": {"50256": -100},
            "service_tier": "flex",
            "metadata": {"team": "search"},
            "store": true,
            "reasoning_effort": "low",
            "prediction": {"type": "content", "content": "Paris"},
            "web_search_options": {"search_context_size": "low"},
            "verbosity": "low",
            "prompt_cache_key": "k1",
            "prompt_cache_retention": "24h",
            "safety_identifier": "sid-1",
            "audio": null,
            "functions": null,
            "function_call": null
        }))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let reqs = p.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.system_prompt.as_deref(), Some("Be brief."));
    assert_eq!(q.messages.len(), 1);
    assert_eq!(q.messages[0].content, "What is in these?");
    assert_eq!(
        q.messages[0].images,
        vec![
            ImageInput {
                url: "https://example.com/cat.png".into(),
                detail: Some("high".into())
            },
            ImageInput::url(PNG_URL)
        ]
    );
    assert_eq!(q.max_tokens, Some(64));
    assert_eq!(q.temperature, Some(0.3));
    assert_eq!(q.top_p, Some(0.9));
    assert_eq!(q.stop, ["END"]);
    assert_eq!(q.seed, Some(-7));
    assert_eq!(q.frequency_penalty, Some(0.5));
    assert_eq!(q.presence_penalty, Some(-0.25));
    assert!(q.logprobs);
    assert_eq!(q.top_logprobs, Some(2));
    assert_eq!(q.user.as_deref(), Some("user-1234"));
    assert_eq!(
        q.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "City".into(),
            schema: json!({"type": "object", "properties": {"name": {"type": "string"}},
                           "required": ["name"], "additionalProperties": false}),
            strict: Some(true),
            description: Some("A city".into()),
        })
    );
    assert_eq!(
        Value::Object(q.extra.clone()),
        json!({
            "logit_bias": {"50256": -100},
            "service_tier": "flex",
            "metadata": {"team": "search"},
            "store": true,
            "reasoning_effort": "low",
            "prediction": {"type": "content", "content": "Paris"},
            "web_search_options": {"search_context_size": "low"},
            "verbosity": "low",
            "prompt_cache_key": "k1",
            "prompt_cache_retention": "24h",
            "safety_identifier": "sid-1"
        })
    );

    // A minimal request sets nothing the client did not send.
    let r = gw
        .chat(json!({"model": "auto", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 200);
    let q = &p.requests()[1];
    assert_eq!(q, &{
        let mut plain = llm_core::LlmRequest::plain(vec![llm_core::Message::user("hi")]);
        plain.cache = q.cache;
        plain.model = q.model.clone();
        plain.provider = q.provider.clone();
        plain
    });
}

#[tokio::test]
async fn fields_the_gateway_cannot_honour_are_400_naming_them() {
    let (up, gw) = one_openai(MockReply::json(200, COMPLETION)).await;
    let cases = [
        (json!({"some_future_field": {"x": 1}}), "some_future_field"),
        (json!({"top_k": 40}), "top_k"),
        (json!({"n": 2}), "n"),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}}),
            "audio",
        ),
        (
            json!({"audio": {"voice": "alloy", "format": "wav"}, "modalities": ["text", "audio"]}),
            "modalities",
        ),
        (
            json!({"functions": [{"name": "f", "parameters": {}}]}),
            "functions",
        ),
        (json!({"function_call": "auto"}), "function_call"),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": "file-abc"}}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "strict": true,
                "parameters": {"type": "object", "properties": {}}}}]}),
            "tools[0].function.strict",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
            "response_format.json_schema.schema",
        ),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"frequency_penalty": 3.0}), "frequency_penalty"),
    ];
    for (extra, param) in cases {
        let mut body = json!({"model": "auto", "messages": user("hi")});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = gw.chat(body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let e = error_of(r).await;
        assert_eq!(e["param"], param, "{body}: {e}");
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"].as_str().unwrap().contains(param),
            "the message names the field: {e}"
        );
    }
    assert!(
        posts(&up).is_empty(),
        "a refused request reached the upstream"
    );

    // What the SDKs send by default is accepted.
    let r = gw
        .chat(
            json!({"model": "auto", "messages": user("hi"), "stream": false,
            "n": 1, "modalities": ["text"], "logit_bias": null, "tools": []}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_field_no_provider_can_honour_is_a_400_naming_it() {
    let p = Arc::new(
        ScriptedProvider::new("plain")
            .models(["m"])
            .otherwise(Reply::text("ok")),
    );
    let gw = scripted_gateway(vec![p.clone()], "").await;
    for (extra, param) in [
        (json!({"logit_bias": {"1": 5}}), "logit_bias"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"presence_penalty": 1.0}), "presence_penalty"),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": PNG_URL}}]}]}),
            "image_url",
        ),
    ] {
        let mut body = json!({"model": "auto", "messages": user("hi")});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = gw.chat(body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let e = error_of(r).await;
        assert_eq!(e["param"], param, "{body}: {e}");
        assert_eq!(e["code"], "unsupported_parameter");
    }
    assert_eq!(p.calls(), 0);
}

#[tokio::test]
async fn logprobs_come_back_on_the_completion() {
    let (up, gw) = one_openai(MockReply::json(200, LOGPROBS_COMPLETION)).await;
    let r = gw
        .chat(json!({"model": "auto", "messages": user("Say hello."),
            "logprobs": true, "top_logprobs": 2}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let fixture: Value = serde_json::from_str(LOGPROBS_COMPLETION).unwrap();
    assert_eq!(
        v["choices"][0]["logprobs"],
        fixture["choices"][0]["logprobs"]
    );
    let sent = &posts(&up)[0];
    assert_eq!(sent["logprobs"], true);
    assert_eq!(sent["top_logprobs"], 2);

    // Not asked for: null.
    let (_up, gw) = one_openai(MockReply::json(200, COMPLETION)).await;
    let v: Value = gw
        .chat(json!({"model": "auto", "messages": user("Say hello.")}))
        .await
        .json()
        .await
        .unwrap();
    assert!(v["choices"][0]["logprobs"].is_null(), "{v}");
}

#[tokio::test]
async fn streamed_logprobs_ride_on_the_chunk_of_their_text() {
    let pieces = LOGPROBS_STREAM
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let (_up, gw) = one_openai(MockReply::chunked(200, "text/event-stream", pieces)).await;
    let text = gw
        .chat(
            json!({"model": "auto", "messages": user("Say hello."), "stream": true,
            "logprobs": true, "top_logprobs": 2}),
        )
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&text);
    let fixture: Vec<Value> = LOGPROBS_STREAM[..LOGPROBS_STREAM.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.trim().strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4, "{text}");
    assert_eq!(
        chunks[0]["choices"][0]["logprobs"],
        json!({"content": [], "refusal": null})
    );
    for i in 1..=2 {
        assert_eq!(
            chunks[i]["choices"][0]["delta"],
            fixture[i]["choices"][0]["delta"]
        );
        assert_eq!(
            chunks[i]["choices"][0]["logprobs"], fixture[i]["choices"][0]["logprobs"],
            "{text}"
        );
    }
    assert!(chunks[3]["choices"][0]["logprobs"].is_null());
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
}

fn token(t: &str, logprob: f64) -> TokenLogprob {
    TokenLogprob {
        token: t.into(),
        logprob,
        bytes: Some(t.as_bytes().to_vec()),
        top_logprobs: vec![TopLogprob {
            token: t.into(),
            logprob,
            bytes: None,
        }],
    }
}

#[tokio::test]
async fn log_probabilities_without_pending_text_get_their_own_chunk() {
    let events = vec![
        Ok(StreamEvent::Delta { text: "Hel".into() }),
        Ok(StreamEvent::Delta { text: "lo".into() }),
        Ok(StreamEvent::Logprobs {
            logprobs: vec![token("Hello", -0.5)],
        }),
        Ok(StreamEvent::Logprobs {
            logprobs: vec![token("!", -0.25)],
        }),
        Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop,
        }),
    ];
    let p = Arc::new(capable("p").otherwise(Reply::Stream(events)));
    let gw = scripted_gateway(vec![p], "").await;
    let text = gw
        .chat(json!({"model": "auto", "messages": user("hi"), "stream": true, "logprobs": true}))
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&text);
    let summary: Vec<(Value, Value)> = chunks
        .iter()
        .map(|c| {
            (
                c["choices"][0]["delta"].clone(),
                c["choices"][0]["logprobs"].clone(),
            )
        })
        .collect();
    let entry = |t: &str, lp: f64| {
        json!({"content": [{"token": t, "logprob": lp, "bytes": t.as_bytes(),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": null}]}], "refusal": null})
    };
    assert_eq!(
        summary,
        vec![
            (
                json!({"role": "assistant", "content": "", "refusal": null}),
                json!({"content": [], "refusal": null})
            ),
            // A delta followed by another delta goes out without log probabilities.
            (json!({"content": "Hel"}), Value::Null),
            (json!({"content": "lo"}), entry("Hello", -0.5)),
            (json!({}), entry("!", -0.25)),
            (json!({}), Value::Null),
        ],
        "{text}"
    );
}

#[tokio::test]
async fn cached_prompt_tokens_are_reported() {
    let (_up, gw) = one_openai(MockReply::json(200, CACHED_COMPLETION)).await;
    let v: Value = gw
        .chat(json!({"model": "auto", "messages": user("Say hello.")}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 1850, "completion_tokens": 2, "total_tokens": 1852,
            "prompt_tokens_details": {"cached_tokens": 1792}})
    );
    let pieces = CACHED_STREAM
        .iter()
        .map(|e| e.as_bytes().to_vec())
        .collect();
    let (_up, gw) = one_openai(MockReply::chunked(200, "text/event-stream", pieces)).await;
    let text = gw
        .chat(
            json!({"model": "auto", "messages": user("Say hello."), "stream": true,
            "stream_options": {"include_usage": true, "include_obfuscation": false}}),
        )
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks_of(&text);
    assert_eq!(
        chunks.last().unwrap()["usage"]["prompt_tokens_details"],
        json!({"cached_tokens": 1792})
    );
}

async fn two_openai(a: MockReply, b: MockReply) -> (MockServer, MockServer, TestGateway) {
    let one = openai_upstream(a).await;
    let two = openai_upstream(b).await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}[gateway]\napi_keys = [\"gw-secret-key-7f3a9c\"]\n",
        openai_section("one", &one.url(), &["gpt-4o-mini"]),
        openai_section("two", &two.url(), &["gpt-4o-mini"])
    ))
    .await;
    (one, two, gw)
}

impl TestGateway {
    async fn keyed_chat(&self, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .bearer_auth("gw-secret-key-7f3a9c")
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn client_errors_from_every_upstream_keep_their_status() {
    let (one, two, gw) = two_openai(
        MockReply::json(400, CONTEXT_LENGTH),
        MockReply::json(400, CONTEXT_LENGTH),
    )
    .await;
    let r = gw
        .keyed_chat(json!({"model": "one/gpt-4o-mini", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 400);
    let e = error_of(r).await;
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "context_length_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with("This model's maximum context length is 128000 tokens."),
        "{msg}"
    );
    assert!(
        msg.contains("one HTTP 400") && msg.contains("two HTTP 400"),
        "{msg}"
    );
    // A stream request fails the same way, before any event.
    let r = gw
        .keyed_chat(json!({"model": "one/gpt-4o-mini", "messages": user("hi"), "stream": true}))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(posts(&one).len(), 2);
    assert_eq!(posts(&two).len(), 2);

    let (_one, _two, gw) = two_openai(
        MockReply::json(404, MODEL_NOT_FOUND),
        MockReply::json(404, MODEL_NOT_FOUND),
    )
    .await;
    let r = gw
        .keyed_chat(json!({"model": "auto", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 404);
    let e = error_of(r).await;
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("The model `gpt-4o` does not exist"));

    // One upstream failing for its own reasons: the gateway's failure, 502.
    let (_one, _two, gw) = two_openai(
        MockReply::json(400, CONTEXT_LENGTH),
        MockReply::json(500, SERVER_ERROR),
    )
    .await;
    let r = gw
        .keyed_chat(json!({"model": "one/gpt-4o-mini", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 502);
}

#[tokio::test]
async fn upstream_error_text_never_carries_keys() {
    // OpenAI's 401 quotes a masked key; another upstream echoes a bearer
    // token and this gateway's own key.
    let echo = r#"{"error":{"message":"unauthorized: Bearer sk-upstream-test-0123456789 (gateway key gw-secret-key-7f3a9c)","type":"invalid_request_error","param":null,"code":null}}"#;
    let (_one, _two, gw) = two_openai(
        MockReply::json(401, UNAUTHORIZED),
        MockReply::json(401, echo),
    )
    .await;
    let r = gw
        .keyed_chat(json!({"model": "one/gpt-4o-mini", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(!text.contains("sk-"), "{text}");
    assert!(!text.contains("gw-secret-key-7f3a9c"), "{text}");
    assert!(!text.contains("Bearer sk"), "{text}");
    assert!(
        text.contains("Incorrect API key provided: [redacted]."),
        "{text}"
    );
}

async fn cors_gateway(origins: &[&str]) -> (MockServer, TestGateway) {
    let up = completion_upstream().await;
    let gw = gateway_with(
        &format!(
            "{}{ROUTING}[gateway]\napi_keys = [\"gw-secret-key-7f3a9c\"]\n",
            openai_section("primary", &up.url(), &["gpt-4o-mini"])
        ),
        |g| g.cors_origins(origins).unwrap(),
    )
    .await;
    (up, gw)
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn cors_preflights_are_answered_for_allowed_origins() {
    let (_up, gw) = cors_gateway(&["http://app.example.test", "https://b.example.test"]).await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-stainless-os,x-stainless-retry-count",
            )
            .send()
    };
    // No key: a preflight carries no credentials.
    let r = preflight("http://app.example.test").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://app.example.test")
    );
    let methods = header(&r, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert_eq!(
        header(&r, "access-control-allow-headers").as_deref(),
        Some("authorization,content-type,x-stainless-os,x-stainless-retry-count")
    );
    assert!(header(&r, "access-control-max-age").is_some());

    let r = preflight("http://evil.example.test").await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), None);

    // The real request carries the origin and exposes the gateway's headers.
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("origin", "https://b.example.test")
        .bearer_auth("gw-secret-key-7f3a9c")
        .json(&json!({"model": "auto", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://b.example.test")
    );
    let exposed = header(&r, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-llm-provider"), "{exposed}");
    // Errors too, so a browser script can read them.
    let r = gw
        .http
        .get(gw.url("/v1/models"))
        .header("origin", "http://app.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("http://app.example.test")
    );
}

#[tokio::test]
async fn cors_is_off_by_default_and_star_allows_any_origin() {
    let (_up, gw) = cors_gateway(&[]).await;
    let r = gw
        .http
        .get(gw.url("/health"))
        .header("origin", "http://app.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    let r = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "http://app.example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);

    let (_up, gw) = cors_gateway(&["*"]).await;
    let r = gw
        .http
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "http://anything.example.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[test]
fn malformed_cors_origins_are_refused() {
    let config = llm_router::config::Config::from_toml_str("").unwrap();
    let client = llm_router::LlmClient::builder()
        .provider(Arc::new(ScriptedProvider::new("p")))
        .build()
        .unwrap();
    for bad in [
        "app.example.test",
        "http://",
        "http://a.test/path",
        "http://a\n.test",
    ] {
        let g = llm_cli::gateway::Gateway::new(client.clone(), &config.gateway);
        let e = g.cors_origins(&[bad]).unwrap_err();
        assert!(e.to_string().contains("invalid CORS origin"), "{bad}: {e}");
    }
}

#[tokio::test]
async fn an_openai_upstream_receives_exactly_what_the_client_sent() {
    let (up, gw) = one_openai(MockReply::json(200, COMPLETION)).await;
    let body = json!({
        "model": "primary/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}}
            ]}
        ],
        "max_completion_tokens": 64,
        "temperature": 0.5,
        "seed": -7,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.25,
        "logprobs": true,
        "top_logprobs": 2,
        "user": "user-1234",
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "City", "strict": true,
            "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                       "required": ["name"], "additionalProperties": false}}},
        "logit_bias": {"50256": -100},
        "service_tier": "flex",
        "metadata": {"team": "search"},
        "store": true,
        "reasoning_effort": "low",
        "prediction": {"type": "content", "content": "Paris"},
        "web_search_options": {},
        "verbosity": "low",
        "prompt_cache_key": "k1",
        "safety_identifier": "sid-1"
    });
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut sent = posts(&up).remove(0);
    // `"stream": false` is the default: sent or not, the answer is the same.
    if sent.get("stream") == Some(&json!(false)) {
        sent.as_object_mut().unwrap().remove("stream");
    }
    assert_eq!(
        sent,
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}}
                ]}
            ],
            "max_tokens": 64,
            "temperature": 0.5,
            "seed": -7,
            "frequency_penalty": 0.5,
            "presence_penalty": -0.25,
            "logprobs": true,
            "top_logprobs": 2,
            "user": "user-1234",
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "City", "strict": true,
                "schema": {"type": "object", "properties": {"name": {"type": "string"}},
                           "required": ["name"], "additionalProperties": false}}},
            "logit_bias": {"50256": -100},
            "service_tier": "flex",
            "metadata": {"team": "search"},
            "store": true,
            "reasoning_effort": "low",
            "prediction": {"type": "content", "content": "Paris"},
            "web_search_options": {},
            "verbosity": "low",
            "prompt_cache_key": "k1",
            "safety_identifier": "sid-1"
        })
    );
}

#[tokio::test]
async fn provider_keys_of_any_shape_are_scrubbed_from_errors() {
    let echo = r#"{"error":{"message":"key plainsecret-4411aa-zz and token hdr-tok-98765 are not valid here","type":"invalid_request_error","param":null,"code":null}}"#;
    let up = openai_upstream(MockReply::json(401, echo)).await;
    let gw = gateway(&format!(
        "[llm_providers.odd]\nkind = \"openai\"\nbase_url = \"{}/v1\"\n\
         api_key = \"plainsecret-4411aa-zz\"\nheaders = {{ \"X-Extra-Token\" = \"hdr-tok-98765\" }}\n\
         models = [\"gpt-4o-mini\"]\n\n{ROUTING}",
        up.url()
    ))
    .await;
    let r = gw
        .chat(json!({"model": "auto", "messages": user("hi")}))
        .await;
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(!text.contains("plainsecret-4411aa-zz"), "{text}");
    assert!(!text.contains("hdr-tok-98765"), "{text}");
    assert!(
        text.contains("key [redacted] and token [redacted]"),
        "{text}"
    );
}
