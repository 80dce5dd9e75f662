//! Bounded reads of upstream bodies: whole JSON bodies, SSE events and NDJSON
//! lines larger than their limits are typed errors, never unbounded buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use llm_core::http;
use llm_core::testing::{MockReply, MockServer};
use llm_core::ProviderErrorKind;

const T: Duration = Duration::from_secs(5);

async fn get(server: &MockServer, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", server.url()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    let big = format!("{{\"text\":\"{}\"}}", "x".repeat(10_000));
    server.on("GET", "/big", MockReply::json(200, big.clone()));
    // Without a content length too: chunked.
    server.on(
        "GET",
        "/chunked",
        MockReply::chunked(200, "application/json", vec![big.as_bytes().to_vec(); 1]),
    );
    for path in ["/big", "/chunked"] {
        let err = http::read_json_max::<serde_json::Value>("p", get(&server, path).await, T, 1_000)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Decode, "{path}: {err}");
        assert!(err.message.contains("larger than 1000 bytes"), "{err}");
    }
    // Within the limit it decodes.
    let v: serde_json::Value = http::read_json_max("p", get(&server, "/big").await, T, 20_000)
        .await
        .unwrap();
    assert_eq!(v["text"].as_str().unwrap().len(), 10_000);
}

#[tokio::test]
async fn an_sse_event_over_the_limit_ends_the_stream_with_an_error() {
    let server = MockServer::start().await.unwrap();
    let small = b"data: {\"a\":1}\n\n".to_vec();
    let huge = format!("data: {}\n\n", "y".repeat(5_000)).into_bytes();
    server.on(
        "GET",
        "/sse",
        MockReply::chunked(
            200,
            "text/event-stream",
            vec![
                small.clone(),
                huge[..2_000].to_vec(),
                huge[2_000..].to_vec(),
            ],
        ),
    );
    let mut events = Box::pin(http::sse_events_max(
        "p",
        get(&server, "/sse").await,
        T,
        1_000,
    ));
    assert_eq!(events.next().await.unwrap().unwrap().data, "{\"a\":1}");
    let err = events.next().await.unwrap().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode);
    assert!(err.message.contains("larger than 1000 bytes"), "{err}");
    // Many small events add up to more than the limit without tripping it.
    let many: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("data: {i}\r\n\r\n").into_bytes())
        .collect();
    server.on(
        "GET",
        "/many",
        MockReply::chunked(200, "text/event-stream", many),
    );
    let events: Vec<_> = http::sse_events_max("p", get(&server, "/many").await, T, 64)
        .collect()
        .await;
    assert_eq!(events.len(), 100);
    assert!(events.iter().all(Result::is_ok));
}

#[tokio::test]
async fn ndjson_lines_split_on_bytes_with_a_line_limit() {
    let server = MockServer::start().await.unwrap();
    // "你好" split inside a character, CRLF endings, blank lines, no final newline.
    let text = "{\"t\":\"你好\"}\r\n\n{\"t\":2}\n{\"t\":3}"
        .as_bytes()
        .to_vec();
    let pieces = text.iter().map(|b| vec![*b]).collect();
    server.on(
        "GET",
        "/nd",
        MockReply::chunked(200, "application/x-ndjson", pieces),
    );
    let lines: Vec<_> = http::ndjson_lines("p", get(&server, "/nd").await, T, 100)
        .map(|l| String::from_utf8(l.unwrap().to_vec()).unwrap())
        .collect()
        .await;
    assert_eq!(lines, ["{\"t\":\"你好\"}", "{\"t\":2}", "{\"t\":3}"]);

    server.on(
        "GET",
        "/long",
        MockReply::new(
            200,
            "application/x-ndjson",
            format!("{{}}\n{}\n{{}}\n", "z".repeat(500)),
        ),
    );
    let items: Vec<_> = http::ndjson_lines("p", get(&server, "/long").await, T, 100)
        .collect()
        .await;
    assert_eq!(items.len(), 2, "nothing follows the error: {items:?}");
    assert!(items[0].is_ok());
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Decode);
    assert!(err.message.contains("longer than 100 bytes"), "{err}");
}
