//! The gateway through real HTTP on loopback, with OpenAI-kind providers
//! pointed at local mock upstreams that send the exact bytes of the protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use llm_cli::gateway::Shutdown;
use llm_core::testing::{MockBody, MockReply, MockServer};
use serde_json::{json, Value};

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn error_of(r: reqwest::Response) -> Value {
    let v: Value = r.json().await.unwrap();
    let e = &v["error"];
    for key in ["message", "type", "param", "code"] {
        assert!(e.get(key).is_some(), "error body lacks `{key}`: {v}");
    }
    assert!(e["message"].is_string() && e["type"].is_string(), "{v}");
    e.clone()
}

#[tokio::test]
async fn non_streaming_completion_has_openai_shape() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.chat(hello("auto")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("application/json"));
    assert_eq!(header(&r, "x-llm-provider"), "primary");
    assert_eq!(header(&r, "x-llm-cache"), "miss");
    assert_eq!(header(&r, "x-llm-attempts"), "1");
    // The gateway's own time, upstream excluded, in milliseconds.
    let overhead: f64 = header(&r, "x-llm-overhead-ms").parse().unwrap();
    assert!(overhead >= 0.0);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() == 38, "{id}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(
        v["choices"],
        json!([{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22})
    );

    // What the upstream was sent: the system message, the limits, the sampling.
    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][0]["content"], "You are a terse assistant.");
    assert_eq!(sent["messages"][1]["content"], "Say hello.");
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["temperature"], json!(0.2));
}

#[tokio::test]
async fn streaming_sends_role_chunk_deltas_finish_and_done() {
    let up = stream_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let mut body = hello("auto");
    body["stream"] = json!(true);
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/event-stream"));
    assert!(header(&r, "x-llm-overhead-ms").parse::<f64>().is_ok());
    assert_eq!(header(&r, "x-llm-provider"), "primary");
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let events = sse_payloads(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4, "{text}");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["created"], chunks[0]["created"]);
        assert_eq!(c["model"], chunks[0]["model"]);
        assert!(c["model"].as_str().unwrap().starts_with("gpt-4o-mini"));
        assert!(
            c.get("usage").is_none(),
            "no usage key without include_usage: {c}"
        );
        assert_eq!(c["choices"][0]["index"], 0);
        assert!(c["choices"][0]["logprobs"].is_null());
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert!(chunks[0]["choices"][0]["finish_reason"].is_null());
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": "Hello"})
    );
    assert_eq!(chunks[2]["choices"][0]["delta"], json!({"content": "!"}));
    assert_eq!(chunks[3]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn include_usage_adds_a_usage_chunk_with_no_choices() {
    let up = stream_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let mut body = hello("primary/gpt-4o-mini");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = gw.chat(body).await.text().await.unwrap();
    let events = sse_payloads(&text);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks.len(), 5, "{text}");
    for c in &chunks[..4] {
        assert!(c["usage"].is_null() && c.get("usage").is_some(), "{c}");
    }
    let last = &chunks[4];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22})
    );
}

#[tokio::test]
async fn model_names_route_to_the_instance_serving_them() {
    let a = completion_upstream().await;
    let b = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}",
        openai_section("alpha", &a.url(), &["gpt-4o-mini"]),
        openai_section("beta", &b.url(), &["qwen2.5", "gpt-4o-mini"])
    ))
    .await;
    for (model, expected) in [
        ("qwen2.5", "beta"),
        ("beta/gpt-4o-mini", "beta"),
        ("alpha/gpt-4o-mini", "alpha"),
        ("gpt-4o-mini", "alpha"),
        ("beta", "beta"),
    ] {
        let r = gw.chat(hello(model)).await;
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(header(&r, "x-llm-provider"), expected, "{model}");
    }
    let sent: Vec<Value> = b
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(sent[0]["model"], "qwen2.5");

    for model in ["gpt-9", "alpha/qwen2.5", "nobody/gpt-4o-mini"] {
        let r = gw.chat(hello(model)).await;
        assert_eq!(r.status(), 404, "{model}");
        let e = error_of(r).await;
        assert_eq!(e["code"], "model_not_found");
        assert_eq!(e["param"], "model");
        assert_eq!(e["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn invalid_requests_are_400_naming_the_field() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let mut body = hello("auto");
    body["temperature"] = json!("hot");
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_of(r).await["param"], "temperature");

    let mut body = hello("auto");
    body["max_tokens"] = json!(0);
    body.as_object_mut()
        .unwrap()
        .remove("max_completion_tokens");
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_of(r).await["param"], "max_tokens");

    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    error_of(r).await;

    // Unknown fields are refused, as OpenAI does, naming the field.
    let mut body = hello("auto");
    body["some_future_field"] = json!({"x": 1});
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 400);
    let e = error_of(r).await;
    assert_eq!(e["param"], "some_future_field");
    assert_eq!(
        e["message"],
        "Unrecognized request argument supplied: some_future_field"
    );
    // An empty tool list is no tool at all.
    let mut body = hello("auto");
    body["tools"] = json!([]);
    assert_eq!(gw.chat(body).await.status(), 200);
    assert_eq!(
        up.requests().iter().filter(|r| r.method == "POST").count(),
        1
    );
}

#[tokio::test]
async fn bearer_keys_are_required_when_configured() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}[gateway]\napi_keys = [\"sk-gw-right\", \"sk-gw-other\"]\n",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let send = |key: Option<&'static str>| {
        let mut b = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .json(&hello("auto"));
        if let Some(k) = key {
            b = b.bearer_auth(k);
        }
        b.send()
    };
    let r = send(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let e = error_of(r).await;
    assert!(e["code"].is_null());
    assert!(e["message"].as_str().unwrap().contains("Missing bearer"));

    let r = send(Some("sk-gw-wrong")).await.unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(!text.contains("sk-gw-wrong"), "the key is echoed: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");

    assert_eq!(send(Some("sk-gw-right")).await.unwrap().status(), 200);
    assert_eq!(send(Some("sk-gw-other")).await.unwrap().status(), 200);
    let r = gw.http.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Probes and scrapes stay open.
    let r = gw.http.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}[gateway]\nmax_body_bytes = 1024\n",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let mut body = hello("auto");
    body["messages"][1]["content"] = json!("x".repeat(4096));
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 413);
    error_of(r).await;
    assert!(up.requests().iter().all(|r| r.method != "POST"));
    // A small body still passes.
    assert_eq!(gw.chat(hello("auto")).await.status(), 200);
}

#[tokio::test]
async fn requests_over_max_concurrency_get_429_with_retry_after() {
    let up = GatedUpstream::start().await;
    let gw = gateway(&format!(
        "{}{ROUTING}[gateway]\nmax_concurrency = 1\n",
        openai_section("primary", &up.url, &["gpt-4o-mini"])
    ))
    .await;
    let first = tokio::spawn({
        let http = gw.http.clone();
        let url = gw.url("/v1/chat/completions");
        async move { http.post(url).json(&hello("auto")).send().await.unwrap() }
    });
    up.arrived().await;
    let r = gw.chat(hello("auto")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "1");
    let e = error_of(r).await;
    assert_eq!(e["code"], "rate_limit_exceeded");
    up.release(1);
    let r = first.await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    // The permit is back once the first response has been sent.
    up.release(1);
    assert_eq!(gw.chat(hello("auto")).await.status(), 200);
}

#[tokio::test]
async fn a_failure_mid_stream_sends_an_error_event_and_no_done() {
    let up = cut_stream_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let mut body = hello("auto");
    body["stream"] = json!(true);
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let events = sse_payloads(&text);
    let first: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    let e = &last["error"];
    assert!(e["message"].as_str().unwrap().contains("primary"), "{last}");
    assert_eq!(e["type"], "server_error");
    assert!(e.get("param").is_some() && e.get("code").is_some());
}

#[tokio::test]
async fn falls_back_from_a_failing_upstream_to_a_healthy_one() {
    let broken = failing_upstream().await;
    let healthy = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}",
        openai_section("broken", &broken.url(), &["gpt-4o-mini"]),
        openai_section("healthy", &healthy.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.chat(hello("broken/gpt-4o-mini")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llm-provider"), "healthy");
    assert_eq!(header(&r, "x-llm-attempts"), "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(
        broken
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1
    );

    // Streaming falls back the same way before the first event.
    let mut body = hello("broken/gpt-4o-mini");
    body["stream"] = json!(true);
    let r = gw.chat(body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llm-provider"), "healthy");
}

#[tokio::test]
async fn when_every_upstream_fails_the_error_lists_the_attempts() {
    let a = failing_upstream().await;
    let b = failing_upstream().await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}",
        openai_section("one", &a.url(), &["gpt-4o-mini"]),
        openai_section("two", &b.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.chat(hello("one/gpt-4o-mini")).await;
    assert_eq!(r.status(), 502);
    let e = error_of(r).await;
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("one") && msg.contains("two") && msg.contains("500"),
        "{msg}"
    );
    assert_eq!(e["type"], "server_error");
    assert!(!msg.contains("sk-upstream-test"));
}

#[tokio::test]
async fn the_request_timeout_is_a_504() {
    let up = openai_upstream(MockReply::json(200, "").with_body(MockBody::Hang)).await;
    let gw = gateway(&format!(
        "{}{ROUTING}[gateway]\nrequest_timeout = 0.2\n",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.chat(hello("auto")).await;
    assert_eq!(r.status(), 504);
    assert_eq!(error_of(r).await["code"], "timeout");
}

#[tokio::test]
async fn models_lists_every_configured_instance_model() {
    let a = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{}{ROUTING}",
        openai_section("alpha", &a.url(), &["gpt-4o-mini", "gpt-4o"]),
        openai_section("beta", &a.url(), &["qwen2.5"])
    ))
    .await;
    let r = gw.http.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha/gpt-4o-mini", "alpha/gpt-4o", "beta/qwen2.5"]);
    for m in v["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert!(m["created"].is_u64());
        let owner = m["owned_by"].as_str().unwrap();
        assert!(m["id"].as_str().unwrap().starts_with(&format!("{owner}/")));
    }
    let r = gw
        .http
        .get(gw.url("/v1/models/beta/qwen2.5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["owned_by"], "beta");
    let r = gw
        .http
        .get(gw.url("/v1/models/beta/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn health_reports_each_provider() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.http.get(gw.url("/health?probe=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["providers"][0]["provider"], "primary");
    assert_eq!(v["providers"][0]["available"], true);
    assert_eq!(v["providers"][0]["circuit"], "closed");
    assert_eq!(v["providers"][0]["healthy"], true);

    let down = MockServer::refused_url().await.unwrap();
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("gone", &down, &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.http.get(gw.url("/health?probe=1")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "unavailable");
    assert_eq!(v["providers"][0]["available"], false);
}

#[tokio::test]
async fn metrics_is_prometheus_text() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    assert_eq!(gw.chat(hello("auto")).await.status(), 200);
    let r = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    assert!(text.contains("llm_requests_total"), "{text}");
    assert!(text.contains("llm_gateway_overhead_seconds"), "{text}");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_get_openai_errors() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw
        .http
        .post(gw.url("/v1/audio/speech"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e = error_of(r).await;
    assert_eq!(e["message"], "Invalid URL (POST /v1/audio/speech)");
    let r = gw
        .http
        .get(gw.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    error_of(r).await;
    let r = gw.http.delete(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn a_cached_answer_is_marked_as_a_hit() {
    let up = completion_upstream().await;
    let gw = gateway(&format!(
        "{}[routing.retry]\nmax_retries = 0\n",
        openai_section("primary", &up.url(), &["gpt-4o-mini"])
    ))
    .await;
    let r = gw.chat(hello("auto")).await;
    assert_eq!(header(&r, "x-llm-cache"), "miss");
    let r = gw.chat(hello("auto")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-llm-cache"), "hit");
    assert_eq!(header(&r, "x-llm-provider"), "primary");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(
        up.requests().iter().filter(|r| r.method == "POST").count(),
        1
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let up = GatedUpstream::start().await;
    let gw = gateway(&format!(
        "{}{ROUTING}",
        openai_section("primary", &up.url, &["gpt-4o-mini"])
    ))
    .await;
    let in_flight = tokio::spawn({
        let http = gw.http.clone();
        let url = gw.url("/v1/chat/completions");
        async move { http.post(url).json(&hello("auto")).send().await.unwrap() }
    });
    up.arrived().await;
    let TestGateway { handle, base, http } = gw;
    let shutdown = tokio::spawn(handle.shutdown());
    up.release(1);
    let r = in_flight.await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(shutdown.await.unwrap(), Shutdown::Graceful);
    // Nothing listens any more.
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}

#[tokio::test]
async fn shutdown_cuts_requests_that_outlive_the_grace_period() {
    let up = GatedUpstream::start().await;
    let gw = gateway(&format!(
        "{}{ROUTING}[gateway]\nshutdown_grace = 0.1\n",
        openai_section("primary", &up.url, &["gpt-4o-mini"])
    ))
    .await;
    let in_flight = tokio::spawn({
        let http = gw.http.clone();
        let url = gw.url("/v1/chat/completions");
        async move { http.post(url).json(&hello("auto")).send().await }
    });
    up.arrived().await;
    assert_eq!(gw.handle.shutdown().await, Shutdown::Forced);
    assert!(in_flight.await.unwrap().is_err());
}
