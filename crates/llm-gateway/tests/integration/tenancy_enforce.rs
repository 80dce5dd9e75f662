//! Virtual keys on every door: the admin API's key lifecycle, each refusal
//! (401, 403, 429 for the request rate, 429 for the budget) in each
//! protocol's error shape, streams charged (a cut stream settles what it
//! produced), 1,000 concurrent requests against a small budget, and
//! configuration-file keys working as before.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::join_all;
use llm_core::testing::{MockReply, MockServer};
use llm_gateway::tenancy::types::{GroupBy, UsageQuery};
use llm_gateway::tenancy::Tenancy;
use llm_gateway::Gateway;
use llm_router::config::Config;
use llm_router::LlmClient;
use serde_json::{json, Value};

use crate::common::*;

const MASTER: &str = "mk-test-master-0123456789";
const STATIC_KEY: &str = "gw-static-key-0123456789";

/// A gateway with virtual keys on a fresh SQLite file.
struct Tenant {
    gw: TestGateway,
    tenancy: Arc<Tenancy>,
    db: PathBuf,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `openai` (priced at $0.001 per token, in and out) and `local` (Ollama)
/// instances, keys on, `extra` appended to `[gateway]`.
fn config_text(openai_url: &str, ollama_url: &str, db: &std::path::Path, extra: &str) -> String {
    format!(
        "{}[llm_providers.openai.pricing.\"gpt-4o-mini\"]\ninput_per_1m = 1000.0\noutput_per_1m = 1000.0\n\n\
         {}{ROUTING}[gateway]\napi_keys = [\"{STATIC_KEY}\"]\nmaster_key = \"{MASTER}\"\n\
         max_concurrency = 4096\n{extra}\n[gateway.store]\nurl = \"sqlite://{}\"\nspend_flush_interval = 0.05\n",
        openai_section(openai_url),
        ollama_section(ollama_url),
        db.display()
    )
}

async fn tenant(openai_url: &str, ollama_url: &str, extra: &str) -> Tenant {
    let db = std::env::temp_dir().join(format!(
        "llm-tenancy-{}-{}.db",
        std::process::id(),
        fastrand_name()
    ));
    let config = Config::from_toml_str(&config_text(openai_url, ollama_url, &db, extra)).unwrap();
    let tenancy = Tenancy::from_config(&config.gateway).await.unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let handle = Gateway::from_config(client, &config)
        .tenancy(tenancy.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let base = format!("http://{}", handle.local_addr());
    Tenant {
        gw: TestGateway {
            handle,
            base,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        },
        tenancy,
        db,
    }
}

fn fastrand_name() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{n:x}")
}

/// Upstreams: OpenAI (chat, completions, responses through chat, embeddings)
/// and Ollama.
async fn upstreams() -> (MockServer, MockServer) {
    let openai = openai(MockReply::json(200, OPENAI_COMPLETION)).await;
    let ollama = ollama(MockReply::new(200, OLLAMA_JSON, OLLAMA_COMPLETION)).await;
    ollama.on(
        "POST",
        "/api/embed",
        MockReply::new(200, OLLAMA_JSON, OLLAMA_TWO_VECTORS),
    );
    (openai, ollama)
}

impl Tenant {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .gw
            .http
            .request(method, format!("{}{path}", self.gw.base))
            .bearer_auth(MASTER);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a key; returns (id, secret).
    async fn key(&self, body: Value) -> (String, String) {
        let (status, v) = self
            .admin(reqwest::Method::POST, "/admin/keys", Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }

    /// POSTs with a key (bearer) and returns the raw response.
    async fn call(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.gw
            .http
            .post(format!("{}{path}", self.gw.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn call_json(
        &self,
        key: &str,
        path: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.call(key, path, body).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
        )
    }

    /// The usage rows once `ready` holds for them (or after a bound, for
    /// the assertion to report): a stream's spend row is queued when the
    /// gateway drops its body, which can be just after the client read it.
    async fn usage_when(
        &self,
        group_by: GroupBy,
        ready: impl Fn(&[llm_gateway::tenancy::types::UsageRow]) -> bool,
    ) -> Vec<llm_gateway::tenancy::types::UsageRow> {
        let waited = std::time::Instant::now();
        loop {
            let rows = self.usage(group_by).await;
            if ready(&rows) || waited.elapsed() > std::time::Duration::from_secs(60) {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The key's budget balance once nothing is reserved (or after a
    /// bound, for the assertion to report): a stream's reservation is
    /// settled by a task the gateway starts when it drops the body.
    async fn settled_balance(&self, id: &str) -> llm_gateway::tenancy::budgets::Balance {
        let record = self.tenancy.store().key(id).await.unwrap().unwrap();
        let waited = std::time::Instant::now();
        loop {
            let balance = self
                .tenancy
                .ledger()
                .balance(&record, llm_gateway::tenancy::now_ms())
                .await
                .unwrap();
            if balance.reserved_usd.abs() < 1e-9
                || waited.elapsed() > std::time::Duration::from_secs(60)
            {
                return balance;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn usage(&self, group_by: GroupBy) -> Vec<llm_gateway::tenancy::types::UsageRow> {
        self.tenancy.flush().await;
        self.tenancy
            .store()
            .usage(&UsageQuery {
                group_by,
                from_ms: None,
                to_ms: None,
                key_id: None,
            })
            .await
            .unwrap()
    }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 2})
}

/// One request per door, by door name: (path, body).
fn doors() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("chat", "/v1/chat/completions", chat("gpt-4o-mini")),
        (
            "responses",
            "/v1/responses",
            json!({"model": "gpt-4o-mini", "input": "Say hello.", "max_output_tokens": 16}),
        ),
        (
            "completions",
            "/v1/completions",
            json!({"model": "gpt-4o-mini", "prompt": "Say hello.", "max_tokens": 2}),
        ),
        (
            "embeddings",
            "/v1/embeddings",
            json!({"model": "all-minilm", "input": ["a", "b"]}),
        ),
        (
            "messages",
            "/v1/messages",
            json!({"model": "gpt-4o-mini", "max_tokens": 2,
                   "messages": [{"role": "user", "content": "Say hello."}]}),
        ),
        (
            "ollama",
            "/api/chat",
            json!({"model": "llama3.2", "stream": false,
                   "messages": [{"role": "user", "content": "Say hello."}]}),
        ),
    ]
}

/// The error kind a door's error body carries, and that it is in the
/// door's shape.
fn error_kind(door: &str, body: &Value) -> String {
    match door {
        "messages" => {
            assert_eq!(body["type"], "error", "{body}");
            body["error"]["type"].as_str().unwrap().to_string()
        }
        "ollama" => {
            assert!(body["error"].is_string(), "{body}");
            body["error"].as_str().unwrap().to_string()
        }
        _ => {
            assert!(body["error"]["message"].is_string(), "{body}");
            body["error"]["type"].as_str().unwrap().to_string()
        }
    }
}

#[tokio::test]
async fn key_lifecycle_through_the_admin_api() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;

    // The admin API needs the master key.
    let r =
        t.gw.http
            .get(format!("{}/admin/keys", t.gw.base))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r =
        t.gw.http
            .get(format!("{}/admin/keys", t.gw.base))
            .bearer_auth(STATIC_KEY)
            .send()
            .await
            .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "a client key is not the master key"
    );

    // Create: the secret is shown once; no hash anywhere.
    let (status, created) = t
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({"name": "billing", "team": "payments", "rpm": 100,
                        "budget_usd": 5.0, "budget_period": "monthly",
                        "models": ["openai/*"], "metadata": {"env": "test"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("sk-llm-") && secret.len() >= 50,
        "{secret}"
    );
    assert!(id.starts_with("key_"));
    assert_eq!(created["prefix"], secret[..12]);
    assert_eq!(created["budget_period"], "monthly");
    assert!(created.get("hash").is_none());

    let (status, list) = t.admin(reqwest::Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&secret), "the list never shows a secret");
    assert!(!text.contains("hash"));
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Use it.
    let (status, _, body) = t
        .call_json(&secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 200, "{body}");

    // Show: spend of the period.
    let (status, shown) = t
        .admin(reqwest::Method::GET, &format!("/admin/keys/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(shown.get("key").is_none());
    assert!(shown["budget_resets_at"].is_i64(), "{shown}");

    // Patch: the change applies at once on this replica.
    let (status, patched) = t
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/keys/{id}"),
            Some(json!({"models": ["claude-*"], "rpm": null})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["models"], json!(["claude-*"]));
    assert!(patched["rpm"].is_null());
    let (status, _, _) = t
        .call_json(&secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = t
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/keys/{id}"),
            Some(json!({"models": []})),
        )
        .await;
    assert_eq!(status, 200);

    // Rotate: the old secret stops working, the new one works.
    let (status, rotated) = t
        .admin(
            reqwest::Method::POST,
            &format!("/admin/keys/{id}/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new_secret = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let (status, _, body) = t
        .call_json(&secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = t
        .call_json(&new_secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 200);

    // Disable, enable, revoke.
    let (status, _) = t
        .admin(
            reqwest::Method::PATCH,
            &format!("/admin/keys/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = t
        .call_json(&new_secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "This API key is disabled.");
    t.admin(
        reqwest::Method::PATCH,
        &format!("/admin/keys/{id}"),
        Some(json!({"enabled": true})),
    )
    .await;
    let (status, revoked) = t
        .admin(reqwest::Method::DELETE, &format!("/admin/keys/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_i64());
    let (status, _, body) = t
        .call_json(&new_secret, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "This API key has been revoked.");

    // An expired key.
    let (_, expired) = t.key(json!({"name": "old", "expires_at": 1_000})).await;
    let (status, _, body) = t
        .call_json(&expired, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "This API key has expired.");

    // Unknown ids and bad bodies.
    let (status, _) = t
        .admin(
            reqwest::Method::GET,
            "/admin/keys/key_0000000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = t
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({"name": "x", "rpm": 0})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = t
        .admin(
            reqwest::Method::POST,
            "/admin/keys",
            Some(json!({"name": "x", "bogus": 1})),
        )
        .await;
    assert_eq!(status, 400);

    // Usage by key: both successful calls of the key, named.
    let (status, usage) = t
        .admin(reqwest::Method::GET, "/admin/usage?group_by=key", None)
        .await;
    assert_eq!(status, 200, "{usage}");
    let line = usage["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["group"] == id.as_str())
        .unwrap_or_else(|| panic!("{usage}"))
        .clone();
    assert_eq!(line["name"], "billing");
    // Two answered calls and the 403 (refused keys never reach a model).
    assert_eq!(line["requests"], 3, "{line}");
    assert_eq!(line["errors"], 1, "the 403 counts as an error: {line}");
    // The answered calls at 22 tokens × $0.001.
    assert!(
        (line["cost_usd"].as_f64().unwrap() - 0.044).abs() < 1e-9,
        "{line}"
    );
    let (status, _) = t
        .admin(reqwest::Method::GET, "/admin/usage?group_by=week", None)
        .await;
    assert_eq!(status, 400);
    let (status, by_day) = t
        .admin(
            reqwest::Method::GET,
            "/admin/usage?group_by=day&from=2020-01-01&to=2099-12-31",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_day["data"].as_array().unwrap().len(), 1, "{by_day}");
}

#[tokio::test]
async fn every_door_refuses_in_its_own_shape() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let unknown = format!("sk-llm-{}", "A".repeat(43));
    let (_, forbidden) = t
        .key(json!({"name": "none", "models": ["nothing-*"]}))
        .await;
    let (_, broke) = t.key(json!({"name": "broke", "budget_usd": 0.0})).await;
    for (door, path, body) in doors() {
        // 401: unknown key.
        let (status, _, v) = t.call_json(&unknown, path, &body).await;
        assert_eq!(status, 401, "{door}: {v}");
        let kind = error_kind(door, &v);
        match door {
            "messages" => assert_eq!(kind, "authentication_error"),
            "ollama" => assert!(kind.contains("API key"), "{kind}"),
            _ => assert_eq!(v["error"]["code"], "invalid_api_key"),
        }

        // 403: a model the key may not use.
        let (status, _, v) = t.call_json(&forbidden, path, &body).await;
        assert_eq!(status, 403, "{door}: {v}");
        let kind = error_kind(door, &v);
        match door {
            "messages" => assert_eq!(kind, "permission_error"),
            "ollama" => assert!(kind.contains("not allowed"), "{kind}"),
            _ => assert_eq!(v["error"]["code"], "model_not_allowed"),
        }

        // 429: the budget.
        let (status, headers, v) = t.call_json(&broke, path, &body).await;
        assert_eq!(status, 429, "{door}: {v}");
        let kind = error_kind(door, &v);
        match door {
            "messages" => assert_eq!(kind, "rate_limit_error"),
            "ollama" => assert!(kind.contains("budget"), "{kind}"),
            _ => {
                assert_eq!(kind, "insufficient_quota");
                assert_eq!(v["error"]["code"], "insufficient_quota");
            }
        }
        // A total budget never resets: no Retry-After.
        assert!(headers.get("retry-after").is_none());

        // 429: the request rate (a fresh key per door).
        let (_, limited) = t.key(json!({"name": door, "rpm": 1})).await;
        let (status, headers, v) = t.call_json(&limited, path, &body).await;
        assert_eq!(status, 200, "{door}: {v}");
        assert_eq!(headers["x-ratelimit-limit-requests"], "1");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
        assert!(headers.contains_key("x-ratelimit-reset-requests"));
        let (status, headers, v) = t.call_json(&limited, path, &body).await;
        assert_eq!(status, 429, "{door}: {v}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
        let kind = error_kind(door, &v);
        match door {
            "messages" => assert_eq!(kind, "rate_limit_error"),
            "ollama" => assert!(kind.contains("Rate limit"), "{kind}"),
            _ => {
                assert_eq!(kind, "requests");
                assert_eq!(v["error"]["code"], "rate_limit_exceeded");
            }
        }
    }
    // Nothing refused reached an upstream: one call per door went through.
    assert_eq!(received(&openai, "/v1/chat/completions").len(), 4);
    assert_eq!(received(&ollama, "/api/chat").len(), 1);
    assert_eq!(received(&ollama, "/api/embed").len(), 1);
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_errors_with_x_api_key() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, limited) = t.key(json!({"name": "tokens", "tpm": 10})).await;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "Say hello."}]});
    let send = || {
        t.gw.http
            .post(format!("{}/v1/messages", t.gw.base))
            .header("x-api-key", &limited)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
    };
    // The first request of a window is admitted even above the limit; the
    // next is refused on tokens.
    let r = send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["x-ratelimit-limit-tokens"], "10");
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn streams_are_charged_and_a_cut_stream_pays_for_what_it_produced() {
    let openai = MockServer::start().await.unwrap();
    openai.on("GET", "/v1/models", MockReply::json(200, OPENAI_MODELS));
    openai.on_times("POST", "/v1/chat/completions", sse(OPENAI_STREAM), 1);
    // Cut after the role chunk and "Hello": no usage arrives.
    openai.on("POST", "/v1/chat/completions", sse_cut(&OPENAI_STREAM[..2]));
    let ollama = ollama(MockReply::new(200, OLLAMA_JSON, OLLAMA_COMPLETION)).await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (id, key) = t.key(json!({"name": "streamer", "budget_usd": 10.0})).await;
    let body = json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 50,
                      "messages": [{"role": "user", "content": "Say hello."}]});

    // A whole stream: charged the usage the provider reported (22 tokens).
    let r = t.call(&key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");

    // A stream cut mid-way: charged the prompt estimate and "Hello".
    let r = t.call(&key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("Hello") && !text.contains("[DONE]"), "{text}");

    let rows = t
        .usage_when(GroupBy::Key, |rows| {
            rows.iter().any(|r| r.group == id && r.requests == 2)
        })
        .await;
    let row = rows.iter().find(|r| r.group == id).unwrap();
    assert_eq!(row.requests, 2, "{row:?}");
    let prompt = llm_router::tokens::estimate_usage(
        &llm_router::LlmRequest::new("Say hello.").model("gpt-4o-mini"),
        "",
    )
    .prompt_tokens;
    let hello = llm_router::tokens::count_tokens("gpt-4o-mini", "Hello");
    assert_eq!(row.tokens_in, 20 + prompt, "{row:?}");
    assert_eq!(row.tokens_out, 2 + hello, "{row:?}");
    let expected = (22 + prompt + hello) as f64 * 0.001;
    assert!(
        (row.cost_usd - expected).abs() < 1e-9,
        "{row:?} vs {expected}"
    );

    // The ledger settled both: nothing stays reserved.
    let balance = t.settled_balance(&id).await;
    assert!((balance.spent_usd - expected).abs() < 1e-6, "{balance:?}");
    assert!(balance.reserved_usd.abs() < 1e-9, "{balance:?}");
}

#[tokio::test]
async fn a_limited_key_without_max_tokens_is_capped_at_its_reservation() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, budgeted) = t.key(json!({"name": "capped", "budget_usd": 10.0})).await;
    let (_, free) = t.key(json!({"name": "free"})).await;
    let body = json!({"model": "gpt-4o-mini",
                      "messages": [{"role": "user", "content": "Write a long story."}]});

    // A budget: the answer may not outgrow the reservation (1,024 tokens).
    let r = t.call(&budgeted, "/v1/chat/completions", &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let sent = received(&openai, "/v1/chat/completions");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].json()["max_tokens"], 1024, "{}", sent[0].json());

    // No budget and no token rate: nothing is added to the request.
    let r = t.call(&free, "/v1/chat/completions", &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let sent = received(&openai, "/v1/chat/completions");
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1].json().get("max_tokens").is_none(),
        "{}",
        sent[1].json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_never_overspend_a_small_budget() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let budget = 1.0;
    let (id, key) = t
        .key(json!({"name": "crowd", "budget_usd": budget, "budget_period": "daily"}))
        .await;
    // A prompt the estimator counts above the 20 tokens the upstream
    // reports, and max_tokens equal to its 2 output tokens: every
    // reservation covers its call, so the bound is the budget itself.
    let long =
        "Please answer with a short friendly greeting for the reader of this message today. "
            .repeat(2);
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 2,
                      "messages": [{"role": "user", "content": long}]});
    let t = Arc::new(t);
    let calls = (0..1000).map(|_| {
        let t = t.clone();
        let key = key.clone();
        let body = body.clone();
        async move {
            t.call(&key, "/v1/chat/completions", &body)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(calls).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        ok + refused,
        1000,
        "every request answered or refused: {statuses:?}"
    );
    let estimate = llm_router::tokens::estimate_usage(
        &llm_router::LlmRequest::new(long.as_str()).model("gpt-4o-mini"),
        "",
    )
    .prompt_tokens
        + 2;
    assert!(estimate >= 22, "the estimate covers the call: {estimate}");
    let per_call_reserved = estimate as f64 * 0.001;
    // Admission lets reservations fill the budget at least this far.
    assert!(
        ok as f64 >= (budget / per_call_reserved).floor(),
        "{ok} answered"
    );
    assert_eq!(received(&openai, "/v1/chat/completions").len(), ok);

    let rows = t
        .usage_when(GroupBy::Key, |rows| {
            rows.iter().any(|r| r.group == id && r.requests == 1000)
        })
        .await;
    let row = rows.iter().find(|r| r.group == id).unwrap();
    assert_eq!(row.requests, 1000, "one spend row per request: {row:?}");
    assert_eq!(row.errors as usize, refused);
    let spent = row.cost_usd;
    assert!((spent - ok as f64 * 0.022).abs() < 1e-6, "{spent} for {ok}");
    assert!(
        spent <= budget + 1e-9,
        "spent {spent} over the budget {budget}"
    );
    let balance = t.settled_balance(&id).await;
    assert!(balance.reserved_usd.abs() < 1e-9, "{balance:?}");
    assert!((balance.spent_usd - spent).abs() < 1e-6, "{balance:?}");
}

#[tokio::test]
async fn configuration_file_keys_keep_working_without_limits() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    for _ in 0..3 {
        let (status, headers, v) = t
            .call_json(STATIC_KEY, "/v1/chat/completions", &chat("gpt-4o-mini"))
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(!headers.contains_key("x-ratelimit-limit-requests"));
    }
    // A missing key is refused once virtual keys are on.
    let r =
        t.gw.http
            .post(format!("{}/v1/chat/completions", t.gw.base))
            .json(&chat("gpt-4o-mini"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The master key is not a client key.
    let (status, _, _) = t
        .call_json(MASTER, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 401);
    // Their requests are logged without a key.
    let rows = t
        .usage_when(GroupBy::Key, |rows| {
            rows.iter().any(|r| r.group.is_empty() && r.requests == 3)
        })
        .await;
    let row = rows.iter().find(|r| r.group.is_empty()).unwrap();
    assert_eq!(row.requests, 3);
    assert!((row.cost_usd - 0.066).abs() < 1e-9, "{row:?}");
    // Open routes stay open.
    let r =
        t.gw.http
            .get(format!("{}/health", t.gw.base))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn one_tenancy_survives_a_rebuilt_gateway() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, key) = t.key(json!({"name": "kept", "rpm": 1})).await;
    let (status, _, _) = t
        .call_json(&key, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 200);
    // A second gateway over the same tenancy (what a reload builds) shares
    // the counters: the key's one request of the minute is used.
    let config =
        Config::from_toml_str(&config_text(&openai.url(), &ollama.url(), &t.db, "")).unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let second = Gateway::from_config(client, &config)
        .tenancy(t.tenancy.clone())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let r =
        t.gw.http
            .post(format!(
                "http://{}/v1/chat/completions",
                second.local_addr()
            ))
            .bearer_auth(&key)
            .json(&chat("gpt-4o-mini"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    second.shutdown().await;
}

/// Not a test: prints the time a request takes with a configured key on a
/// gateway without virtual keys, with a configured key on one with them,
/// and with a virtual key that has every limit and a budget
/// (`cargo test --release -p llm-gateway --test integration
/// measure_key_overhead -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_key_overhead() {
    use std::time::{Duration, Instant};
    let (openai, ollama) = upstreams().await;
    let plain = gateway(&format!(
        "{}{ROUTING}[gateway]\napi_keys = [\"{STATIC_KEY}\"]\n",
        openai_section(&openai.url())
    ))
    .await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, key) = t
        .key(
            json!({"name": "bench", "rpm": 1_000_000, "tpm": 1_000_000_000,
                    "max_concurrency": 100, "budget_usd": 1_000_000.0,
                    "models": ["openai/*"]}),
        )
        .await;
    let body = chat("gpt-4o-mini");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let runs: [(&str, &str, &str); 3] = [
        ("configured key, no tenancy", &plain.base, STATIC_KEY),
        ("configured key, tenancy on", &t.gw.base, STATIC_KEY),
        ("virtual key, all limits", &t.gw.base, &key),
    ];
    for round in 0..2 {
        for (name, base, k) in runs {
            let mut times: Vec<Duration> = Vec::with_capacity(2000);
            for _ in 0..2000 {
                let started = Instant::now();
                let r = http
                    .post(format!("{base}/v1/chat/completions"))
                    .bearer_auth(k)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.unwrap();
                times.push(started.elapsed());
            }
            times.sort();
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            if round == 1 {
                println!(
                    "{name:<28} mean {:>7.1} µs  p50 {:>7.1} µs  p99 {:>7.1} µs",
                    mean.as_secs_f64() * 1e6,
                    times[times.len() / 2].as_secs_f64() * 1e6,
                    times[times.len() * 99 / 100].as_secs_f64() * 1e6
                );
            }
        }
    }
}

/// A `redis-server` on a free loopback port, killed when dropped.
struct OwnRedis(std::process::Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `LLM_TEST_REDIS_URL`, else a `redis-server` of this test's own; `None`
/// (the test is skipped) only outside CI.
async fn shared_redis(test: &str) -> Option<(String, Option<OwnRedis>)> {
    if let Some(url) = std::env::var("LLM_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some((url, None));
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => OwnRedis(c),
        Err(e) => {
            assert!(!in_ci, "{test}: no Redis in CI: {e}");
            eprintln!("SKIPPED {test}: no redis-server and no LLM_TEST_REDIS_URL");
            return None;
        }
    };
    // Poll until it answers PING.
    for _ in 0..2000 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let mut buf = [0u8; 8];
            if s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut buf), Ok(n) if n > 0) {
                return Some((format!("redis://127.0.0.1:{port}/0"), Some(child)));
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{test}: redis-server did not answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_and_the_store_enforce_one_limit_and_one_budget() {
    let Some((redis_url, _server)) = shared_redis("two_replicas").await else {
        return;
    };
    let (openai, ollama) = upstreams().await;
    let db = std::env::temp_dir().join(format!(
        "llm-tenancy-replicas-{}-{}.db",
        std::process::id(),
        fastrand_name()
    ));
    let prefix = format!("llm-test-{}:", fastrand_name());
    let text = config_text(&openai.url(), &ollama.url(), &db, "").replace(
        "[gateway.store]\n",
        &format!("[gateway.store]\nredis_url = \"{redis_url}\"\nredis_prefix = \"{prefix}\"\n"),
    );
    let config = Config::from_toml_str(&text).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // Each replica has its own Tenancy (its own Redis connection,
        // cache and spend writer), as two processes would.
        let tenancy = Tenancy::from_config(&config.gateway).await.unwrap();
        let client = LlmClient::from_config(&config).unwrap();
        let handle = Gateway::from_config(client, &config)
            .tenancy(tenancy.clone())
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        replicas.push((tenancy, handle));
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = |i: usize| format!("http://{}", replicas[i].1.local_addr());
    let create = |body: Value| {
        let req = http
            .post(format!("{}/admin/keys", base(0)))
            .bearer_auth(MASTER)
            .json(&body);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["key"].as_str().unwrap().to_string()
        }
    };
    let call = |i: usize, key: String| {
        let req = http
            .post(format!("{}/v1/chat/completions", base(i)))
            .bearer_auth(key)
            .json(&chat("gpt-4o-mini"));
        async move { req.send().await.unwrap().status().as_u16() }
    };

    // One RPM limit across both replicas: 4 requests per minute in all.
    let limited = create(json!({"name": "rpm", "rpm": 4})).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(call(i % 2, limited.clone()).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );

    // One budget across both: $0.05 at 22 tokens × $0.001 a call, with
    // reservations of about 6 prompt + 2 output tokens (below the actual
    // cost, so calls in flight may overshoot by their difference).
    let budget =
        create(json!({"name": "budget", "budget_usd": 0.05, "budget_period": "daily"})).await;
    let mut answered = 0;
    for i in 0..10 {
        if call(i % 2, budget.clone()).await == 200 {
            answered += 1;
        }
    }
    // Sequential calls: each admitted only if spent + its estimate fit.
    assert_eq!(
        answered, 3,
        "0.000, 0.022, 0.044 spent before each admitted call"
    );
    for (t, h) in replicas {
        t.flush().await;
        h.shutdown().await;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// A key's allowed models bound the router's fallback too: with the
/// allowed instance failing, the call fails rather than being served by a
/// model the key may not use; a glob that covers the other instance, or
/// `auto`, lets the fallback through.
#[tokio::test]
async fn fallback_stays_within_a_keys_allowed_models() {
    let openai = openai(MockReply::json(
        500,
        r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#,
    ))
    .await;
    let ollama = ollama(MockReply::new(200, OLLAMA_JSON, OLLAMA_COMPLETION)).await;
    // Healthy, so it is a fallback and not only a last resort.
    ollama.on(
        "GET",
        "/api/version",
        MockReply::json(200, r#"{"version":"0.5.1"}"#),
    );
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, narrow) = t
        .key(json!({"name": "narrow", "models": ["gpt-4o-mini"]}))
        .await;
    let (_, wide) = t
        .key(json!({"name": "wide", "models": ["gpt-4o-mini", "local/*"]}))
        .await;
    let (_, auto) = t.key(json!({"name": "auto", "models": ["auto"]})).await;
    let mut streamed = chat("gpt-4o-mini");
    streamed["stream"] = json!(true);

    for body in [chat("gpt-4o-mini"), streamed.clone()] {
        let r = t.call(&narrow, "/v1/chat/completions", &body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(status >= 500, "{status}: {text}");
        assert!(
            !text.contains("local"),
            "the other instance is not named: {text}"
        );
    }
    assert_eq!(received(&openai, "/v1/chat/completions").len(), 2);
    assert!(
        received(&ollama, "/api/chat").is_empty(),
        "the key's request reached a model it may not use"
    );

    let (status, headers, v) = t
        .call_json(&wide, "/v1/chat/completions", &chat("gpt-4o-mini"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["x-llm-provider"], "local");
    let (status, headers, v) = t
        .call_json(&auto, "/v1/chat/completions", &chat("auto"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["x-llm-provider"], "local");
    assert_eq!(received(&ollama, "/api/chat").len(), 2);
}

/// Model listings (`GET /v1/models`, one model, Ollama's `/api/tags` and
/// `/api/show`) show a virtual key only the models it may use; other
/// callers see every model.
#[tokio::test]
async fn model_lists_show_a_key_only_its_allowed_models() {
    let (openai, ollama) = upstreams().await;
    let t = tenant(&openai.url(), &ollama.url(), "").await;
    let (_, narrow) = t
        .key(json!({"name": "narrow", "models": ["gpt-4o-mini"]}))
        .await;
    let (_, local) = t.key(json!({"name": "local", "models": ["local"]})).await;
    let get = |key: String, path: &'static str| {
        let req =
            t.gw.http
                .get(format!("{}{path}", t.gw.base))
                .bearer_auth(key);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let ids = |v: &Value, list: &str, field: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[field].as_str().unwrap().to_string())
            .collect()
    };
    let (status, all) = get(STATIC_KEY.into(), "/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&all, "data", "id"),
        ["openai/gpt-4o-mini", "local/llama3.2"]
    );
    let (_, v) = get(narrow.clone(), "/v1/models").await;
    assert_eq!(ids(&v, "data", "id"), ["openai/gpt-4o-mini"]);
    let (status, _) = get(narrow.clone(), "/v1/models/local/llama3.2").await;
    assert_eq!(status, 404);
    let (status, v) = get(STATIC_KEY.into(), "/v1/models/local/llama3.2").await;
    assert_eq!((status, &v["id"]), (200, &json!("local/llama3.2")));
    let (_, v) = get(narrow.clone(), "/api/tags").await;
    assert_eq!(ids(&v, "models", "name"), ["openai/gpt-4o-mini"]);
    // An instance's name: its default model (not its embedding model).
    let (_, v) = get(local.clone(), "/api/tags").await;
    assert_eq!(ids(&v, "models", "name"), ["local/llama3.2"]);
    let (_, v) = get(STATIC_KEY.into(), "/api/tags").await;
    assert_eq!(
        ids(&v, "models", "name"),
        ["openai/gpt-4o-mini", "local/llama3.2", "local/all-minilm"]
    );
    let r = t
        .call(&narrow, "/api/show", &json!({"model": "local/llama3.2"}))
        .await;
    assert_eq!(r.status().as_u16(), 404);
    // What a key is shown, it may use.
    for (key, id) in [(&narrow, "openai/gpt-4o-mini"), (&local, "local/llama3.2")] {
        let (status, _, v) = t.call_json(key, "/v1/chat/completions", &chat(id)).await;
        assert_eq!(status, 200, "{id}: {v}");
    }
}
