//! `POST /v1/embeddings`, against an Ollama upstream's `POST /api/embed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llm_core::testing::{MockReply, MockServer};
use serde_json::{json, Value};

use crate::common::*;

const SKY: &str = "Why is the sky blue?";
const GRASS: &str = "Why is the grass green?";

async fn upstream() -> MockServer {
    let up = MockServer::start().await.unwrap();
    up.on(
        "GET",
        "/api/tags",
        MockReply::new(200, OLLAMA_JSON, OLLAMA_TAGS),
    );
    up.on(
        "POST",
        "/api/embed",
        MockReply::new(200, OLLAMA_JSON, OLLAMA_TWO_VECTORS),
    );
    up
}

fn vectors() -> Vec<Vec<f32>> {
    let v: Value = serde_json::from_str(OLLAMA_TWO_VECTORS).unwrap();
    v["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Standard base64 → bytes.
fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = A.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[tokio::test]
async fn floats_in_openai_shape() {
    let up = upstream().await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": [SKY, GRASS]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = received(&up, "/api/embed");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        String::from_utf8(sent[0].body.clone()).unwrap(),
        format!(r#"{{"model":"all-minilm","input":["{SKY}","{GRASS}"]}}"#)
    );
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "all-minilm");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 8, "total_tokens": 8})
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let want = vectors();
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        let got: Vec<f32> = d["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, want[i]);
    }
}

#[tokio::test]
async fn base64_is_little_endian_f32_bytes_that_round_trip_exactly() {
    let up = upstream().await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": [SKY, GRASS], "encoding_format": "base64",
                    "user": "u-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let want = vectors();
    for (i, d) in body["data"].as_array().unwrap().iter().enumerate() {
        let text = d["embedding"].as_str().expect("a base64 string");
        assert_eq!(floats(&unbase64(text)), want[i]);
    }
}

#[tokio::test]
async fn a_single_string_and_dimensions_reach_the_upstream() {
    let up = MockServer::start().await.unwrap();
    up.on(
        "POST",
        "/api/embed",
        MockReply::new(
            200,
            OLLAMA_JSON,
            r#"{"model":"all-minilm","embeddings":[[0.5,-0.25]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":6}"#,
        ),
    );
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": SKY, "dimensions": 2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = received(&up, "/api/embed");
    assert_eq!(
        sent[0].json(),
        json!({"model": "all-minilm", "input": [SKY], "dimensions": 2})
    );
    assert_eq!(
        body["data"],
        json!([{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}])
    );
}

#[tokio::test]
async fn cached_inputs_are_not_sent_again() {
    let up = upstream().await;
    let gw = gateway(&format!(
        "{}[routing.retry]\nmax_retries = 0\n\n[caching]\nenabled = true\n\n",
        ollama_section(&up.url())
    ))
    .await;
    let (status, _) = gw
        .post_json(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": [SKY, GRASS]}),
        )
        .await;
    assert_eq!(status, 200);
    let r = gw
        .post(
            "/v1/embeddings",
            &json!({"model": "all-minilm", "input": [GRASS, SKY], "encoding_format": "float"}),
        )
        .await;
    assert_eq!(r.headers()["x-llm-cache"], "hit");
    assert_eq!(r.headers()["x-llm-cached-inputs"], "2");
    let body: Value = r.json().await.unwrap();
    let want = vectors();
    let first: Vec<f32> = body["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(first, want[1], "answers keep the order of the request");
    assert_eq!(body["usage"]["prompt_tokens"], 0);
    assert_eq!(received(&up, "/api/embed").len(), 1);
}

#[tokio::test]
async fn an_unknown_model_is_a_404_naming_it() {
    let up = upstream().await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    let (status, body) = gw
        .post_json(
            "/v1/embeddings",
            &json!({"model": "text-embedding-3-small", "input": "x"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("text-embedding-3-small") && msg.contains("all-minilm"),
        "{msg}"
    );
    assert!(received(&up, "/api/embed").is_empty());
}

#[tokio::test]
async fn bad_inputs_are_400s_naming_the_field() {
    let up = upstream().await;
    let gw = gateway(&format!("{}{ROUTING}", ollama_section(&up.url()))).await;
    for (body, param) in [
        (json!({"model": "all-minilm", "input": [1, 2, 3]}), "input"),
        (
            json!({"model": "all-minilm", "input": [[1, 2], [3]]}),
            "input",
        ),
        (json!({"model": "all-minilm", "input": []}), "input"),
        (json!({"model": "all-minilm", "input": ""}), "input"),
        (
            json!({"model": "all-minilm", "input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (
            json!({"model": "all-minilm", "input": "x", "dimensions": 0}),
            "dimensions",
        ),
        (
            json!({"model": "all-minilm", "input": "x", "extra": 1}),
            "extra",
        ),
        (json!({"input": "x"}), "model"),
    ] {
        let (status, err) = gw.post_json("/v1/embeddings", &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"]["param"], param, "{body}");
    }
    assert!(received(&up, "/api/embed").is_empty());
}
