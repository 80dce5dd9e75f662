//! Hostile input to the gateway: oversized bodies, deep nesting, invalid
//! JSON and UTF-8, absurd numbers, wrong types. Each gets a 4xx with an
//! OpenAI error body (never a 5xx or a dropped connection), and the gateway
//! stays healthy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use llm_chaos::suite::{config_toml, Limits};
use llm_chaos::upstream::{ApiKind, ChaosOptions, Ledger, Upstream};
use llm_core::config::{Config, GatewayConfig};
use llm_core::LlmClient;

const LIMIT: usize = 256 * 1024;

struct Gw {
    base: String,
    http: reqwest::Client,
    _upstream: Upstream,
    _handle: llm_cli::gateway::GatewayHandle,
}

async fn gateway() -> Gw {
    let upstream = Upstream::start(
        "openai-a",
        ApiKind::OpenAi,
        ChaosOptions::default(),
        Arc::new(Ledger::default()),
    )
    .await
    .unwrap();
    let cfg = Config::from_toml_str(&config_toml(
        std::slice::from_ref(&upstream),
        &Limits::default(),
    ))
    .unwrap();
    let client = LlmClient::from_config(&cfg).unwrap();
    let gw_cfg = GatewayConfig {
        max_body_bytes: LIMIT,
        ..GatewayConfig::default()
    };
    let handle = llm_cli::gateway::Gateway::new(client, &gw_cfg)
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    Gw {
        base: format!("http://{}", handle.local_addr()),
        http: reqwest::Client::new(),
        _upstream: upstream,
        _handle: handle,
    }
}

fn ok_body(extra: &str) -> String {
    format!(r#"{{"model":"auto","messages":[{{"role":"user","content":"q1 hi"}}]{extra}}}"#)
}

impl Gw {
    async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value, String) {
        let resp = self
            .http
            .post(format!("{}/v1/chat/completions", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("an HTTP answer, not a dropped connection");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_default();
        (status, json, text)
    }

    async fn healthy(&self) {
        let resp = self
            .http
            .get(format!("{}/health", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/health after hostile input");
        let (status, json, text) = self.post(ok_body("")).await;
        assert_eq!(status, 200, "a valid request after hostile input: {text}");
        assert!(json["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("q1")));
    }
}

/// A 4xx with `{"error":{"message":…,"type":…}}`.
fn assert_client_error(
    case: &str,
    status: u16,
    json: &serde_json::Value,
    text: &str,
    want: Option<u16>,
) {
    assert!(
        (400..500).contains(&status),
        "{case}: expected a 4xx, got {status}: {}",
        &text[..text.len().min(300)]
    );
    if let Some(w) = want {
        assert_eq!(status, w, "{case}");
    }
    let msg = json["error"]["message"].as_str().unwrap_or_default();
    assert!(!msg.is_empty(), "{case}: no error.message in {text:.300}");
    assert!(json["error"]["type"].is_string(), "{case}: no error.type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_clear_client_errors() {
    let gw = gateway().await;
    gw.healthy().await;

    let big = "x".repeat(LIMIT + 1);
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(20_000), "}".repeat(20_000));
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        (
            "prompt over max_body_bytes",
            ok_body("").replace("q1 hi", &big).into_bytes(),
            Some(413),
        ),
        (
            "deeply nested array",
            deep_array.clone().into_bytes(),
            Some(400),
        ),
        (
            "deeply nested array in a field",
            ok_body(&format!(r#","metadata":{deep_array}"#)).into_bytes(),
            Some(400),
        ),
        (
            "deeply nested object in messages",
            format!(r#"{{"model":"auto","messages":[{{"role":"user","content":{deep_object}}}]}}"#)
                .into_bytes(),
            Some(400),
        ),
        ("empty body", Vec::new(), Some(400)),
        (
            "invalid JSON",
            br#"{"model": "auto", "messages": ["#.to_vec(),
            Some(400),
        ),
        (
            "trailing garbage",
            format!("{} x", ok_body("")).into_bytes(),
            Some(400),
        ),
        ("JSON null", b"null".to_vec(), Some(400)),
        ("JSON array", b"[]".to_vec(), Some(400)),
        (
            "invalid UTF-8 in a string",
            {
                let mut b = ok_body("").into_bytes();
                let at = b.windows(5).position(|w| w == b"q1 hi").unwrap();
                b[at + 3] = 0xff;
                b[at + 4] = 0xfe;
                b
            },
            Some(400),
        ),
        (
            "lone surrogate escape",
            ok_body("").replace("q1 hi", r"q1 \ud800").into_bytes(),
            Some(400),
        ),
        (
            "max_tokens -1",
            ok_body(r#","max_tokens":-1"#).into_bytes(),
            Some(400),
        ),
        (
            "max_tokens 0",
            ok_body(r#","max_tokens":0"#).into_bytes(),
            Some(400),
        ),
        (
            "max_tokens 2^32",
            ok_body(r#","max_tokens":4294967296"#).into_bytes(),
            Some(400),
        ),
        (
            "max_tokens 1e400 digits",
            ok_body(&format!(r#","max_tokens":1{}"#, "0".repeat(400))).into_bytes(),
            Some(400),
        ),
        (
            "max_tokens 1.5",
            ok_body(r#","max_tokens":1.5"#).into_bytes(),
            Some(400),
        ),
        (
            "temperature 1e309",
            ok_body(r#","temperature":1e309"#).into_bytes(),
            Some(400),
        ),
        (
            "temperature 1e39 (f32 infinity)",
            ok_body(r#","temperature":1e39"#).into_bytes(),
            Some(400),
        ),
        (
            "temperature -0.5",
            ok_body(r#","temperature":-0.5"#).into_bytes(),
            Some(400),
        ),
        ("top_p 7", ok_body(r#","top_p":7"#).into_bytes(), Some(400)),
        (
            "n huge",
            ok_body(r#","n":18446744073709551616"#).into_bytes(),
            Some(400),
        ),
        ("n 128", ok_body(r#","n":128"#).into_bytes(), Some(400)),
        (
            "seed 1e30",
            ok_body(r#","seed":1e30"#).into_bytes(),
            Some(400),
        ),
        (
            "five stop sequences",
            ok_body(r#","stop":["a","b","c","d","e"]"#).into_bytes(),
            Some(400),
        ),
        (
            "stop of numbers",
            ok_body(r#","stop":[1,2]"#).into_bytes(),
            Some(400),
        ),
        (
            "messages a string",
            br#"{"model":"auto","messages":"hi"}"#.to_vec(),
            Some(400),
        ),
        (
            "messages empty",
            br#"{"model":"auto","messages":[]}"#.to_vec(),
            Some(400),
        ),
        ("no messages", br#"{"model":"auto"}"#.to_vec(), Some(400)),
        (
            "no model",
            br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            Some(400),
        ),
        (
            "model a number",
            br#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            Some(400),
        ),
        (
            "unknown model",
            br#"{"model":"nope-9","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            Some(404),
        ),
        (
            "role a number",
            br#"{"model":"auto","messages":[{"role":1,"content":"hi"}]}"#.to_vec(),
            Some(400),
        ),
        (
            "unknown role",
            br#"{"model":"auto","messages":[{"role":"wizard","content":"hi"}]}"#.to_vec(),
            Some(400),
        ),
        (
            "content an object",
            br#"{"model":"auto","messages":[{"role":"user","content":{"a":1}}]}"#.to_vec(),
            Some(400),
        ),
        (
            "stream a string",
            ok_body(r#","stream":"yes""#).into_bytes(),
            Some(400),
        ),
        (
            "stream_options without stream",
            ok_body(r#","stream_options":{"include_usage":true}"#).into_bytes(),
            Some(400),
        ),
    ];
    for (case, body, want) in &cases {
        let (status, json, text) = gw.post(body.clone()).await;
        assert_client_error(case, status, &json, &text, *want);
    }
    gw.healthy().await;

    // A chunked body (no content-length) over the limit.
    let pieces = (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 8192])));
    let (status, json, text) = gw
        .post(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .await;
    assert_client_error(
        "chunked body over the limit",
        status,
        &json,
        &text,
        Some(413),
    );

    // An unknown field is refused naming it, never silently dropped.
    let (status, json, text) = gw.post(ok_body(r#","frobnicate":{"x":[1,2,3]}"#)).await;
    assert_eq!(status, 400, "unknown fields: {text}");
    assert_eq!(json["error"]["param"], "frobnicate", "{text}");

    // The same hostile bodies all at once.
    let all =
        futures::future::join_all(cases.iter().map(|(_, body, _)| gw.post(body.clone()))).await;
    for ((case, _, want), (status, json, text)) in cases.iter().zip(all) {
        assert_client_error(case, status, &json, &text, *want);
    }
    gw.healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_routes_and_methods_get_error_bodies() {
    let gw = gateway().await;
    for (method, path, want) in [
        (reqwest::Method::GET, "/v1/chat/completions", 405),
        (reqwest::Method::DELETE, "/health", 405),
        (reqwest::Method::GET, "/v1/nope", 404),
        (reqwest::Method::POST, "/v1/models", 405),
        (reqwest::Method::GET, "/v1/models/no-such-model", 404),
    ] {
        let resp = gw
            .http
            .request(method.clone(), format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_client_error(
            &format!("{method} {path}"),
            status,
            &json,
            &text,
            Some(want),
        );
    }
    gw.healthy().await;
}
