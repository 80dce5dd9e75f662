//! Secret hygiene: with every provider kind configured with a recognisable
//! fake key, a Redis URL with that password and gateway bearer keys, drive
//! successes, failures, retries, fallbacks and configuration errors with a
//! TRACE-level `tracing` capture, and check that no log line, error message,
//! `Debug` string, metric text or gateway response contains a secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use llm_core::config::Config;
use llm_core::testing::{MockReply, MockServer};
use llm_core::{LlmClient, LlmRequest};

/// The provider key (and Redis password, and Ollama header value).
const SECRET: &str = "sk-test-SECRET-0123456789";
/// The gateway's bearer key.
const GATEWAY_KEY: &str = "gw-test-SECRET-9876543210";
/// A distinctive part of both, for the checks.
const MARKERS: &[&str] = &["SECRET-0123456789", "SECRET-9876543210"];

// ---- capture of every log line, from every thread --------------------------

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Buf {
    static LOGS: OnceLock<Buf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Buf::default();
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_thread_names(true)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("install the capturing subscriber");
        buf
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

/// Where a secret shows in `text`, if it does.
fn leak(what: &str, text: &str) -> Option<String> {
    MARKERS.iter().find_map(|m| {
        let pos = text.find(m)?;
        let start = text[..pos].rfind('\n').map_or(0, |p| p + 1);
        let end = text[pos..].find('\n').map_or(text.len(), |p| pos + p);
        Some(format!(
            "a secret leaked into {what}: …{}…",
            &text[start..end]
        ))
    })
}

fn assert_clean(what: &str, text: &str) {
    if let Some(l) = leak(what, text) {
        panic!("{l}");
    }
}

// ---- upstreams --------------------------------------------------------------

const OPENAI_OK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1756300000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}}"#;
const OPENAI_401: &str = r#"{"error":{"message":"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
const OPENAI_500: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;
const ANTHROPIC_OK: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":5,"service_tier":"standard"}}"#;
const ANTHROPIC_401: &str =
    r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
const ANTHROPIC_529: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
const OLLAMA_OK: &str = r#"{"model":"llama3.2","created_at":"2025-08-27T10:15:02.160129032Z","message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop","total_duration":412345678,"load_duration":23456789,"prompt_eval_count":31,"prompt_eval_duration":98765432,"eval_count":2,"eval_duration":45678901}"#;

struct Upstreams {
    openai: MockServer,
    anthropic: MockServer,
    ollama: MockServer,
    custom: MockServer,
}

/// Each upstream: a 401, then 500s (retries), then successes.
async fn upstreams() -> Upstreams {
    let openai = MockServer::start().await.unwrap();
    openai
        .on_times(
            "POST",
            "/v1/chat/completions",
            MockReply::json(401, OPENAI_401),
            1,
        )
        .on_times(
            "POST",
            "/v1/chat/completions",
            MockReply::json(500, OPENAI_500),
            2,
        )
        .on(
            "POST",
            "/v1/chat/completions",
            MockReply::json(200, OPENAI_OK),
        )
        .on("GET", "/v1/models", MockReply::json(401, OPENAI_401));
    let anthropic = MockServer::start().await.unwrap();
    anthropic
        .on_times(
            "POST",
            "/v1/messages",
            MockReply::json(401, ANTHROPIC_401),
            1,
        )
        .on_times(
            "POST",
            "/v1/messages",
            MockReply::json(529, ANTHROPIC_529).header("retry-after", "0"),
            2,
        )
        .on("POST", "/v1/messages", MockReply::json(200, ANTHROPIC_OK));
    let ollama = MockServer::start().await.unwrap();
    ollama
        .on_times(
            "POST",
            "/api/chat",
            MockReply::json(401, r#"{"error":"unauthorized"}"#),
            1,
        )
        .on_times(
            "POST",
            "/api/chat",
            MockReply::json(
                500,
                r#"{"error":"an error was encountered while running the model"}"#,
            ),
            2,
        )
        .on("POST", "/api/chat", MockReply::json(200, OLLAMA_OK))
        .on(
            "GET",
            "/api/version",
            MockReply::json(200, r#"{"version":"0.5.1"}"#),
        );
    let custom = MockServer::start().await.unwrap();
    custom
        .on_times("POST", "/generate", MockReply::json(401, "{}"), 1)
        .on_times(
            "POST",
            "/generate",
            MockReply::json(500, r#"{"error":"boom"}"#),
            2,
        )
        .on(
            "POST",
            "/generate",
            MockReply::json(200, r#"{"content":"Hello!"}"#),
        )
        .on("GET", "/health", MockReply::json(200, "{}"));
    Upstreams {
        openai,
        anthropic,
        ollama,
        custom,
    }
}

fn config_text(u: &Upstreams, redis_url: &str) -> String {
    format!(
        r#"
[llm_providers.openai]
api_key = "{SECRET}"
base_url = "{openai}/v1"
models = ["gpt-4o-mini"]
default_model = "gpt-4o-mini"
timeout = 2

[llm_providers.anthropic]
api_key = "${{ANTHROPIC_API_KEY}}"
base_url = "{anthropic}"
models = ["claude-sonnet-4-5-20250929"]
default_model = "claude-sonnet-4-5-20250929"
timeout = 2

[llm_providers.ollama]
base_url = "{ollama}"
headers = {{ Authorization = "Bearer {SECRET}" }}
models = ["llama3.2"]
default_model = "llama3.2"
timeout = 2

[llm_providers.custom]
base_url = "{custom}"
api_key = "{SECRET}"
models = ["private-model"]
default_model = "private-model"
timeout = 2

[routing]
deadline = 10

[routing.retry]
max_retries = 2
backoff_base = 0.01
backoff_max = 0.02

[routing.health]
failure_threshold = 100

[caching]
backend = "redis"
redis_url = "{redis_url}"
redis_timeout = 0.5

[gateway]
api_keys = ["${{GATEWAY_KEY}}"]
"#,
        openai = u.openai.url(),
        anthropic = u.anthropic.url(),
        ollama = u.ollama.url(),
        custom = u.custom.url(),
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "ANTHROPIC_API_KEY" => Some(SECRET.to_string()),
        "GATEWAY_KEY" => Some(GATEWAY_KEY.to_string()),
        _ => None,
    }
}

/// A Redis whose password is the secret (own server), else a refused port.
fn redis() -> (Option<llm_chaos::redis::RedisServer>, String) {
    if llm_chaos::redis::available() {
        let server = llm_chaos::redis::RedisServer::start(Some(SECRET)).unwrap();
        let url = server.url();
        (Some(server), url)
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: no redis-server: the Redis URL with the password points at a refused port"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (None, format!("redis://:{SECRET}@127.0.0.1:{port}/0"))
    }
}

/// Everything a caller can see: successes, errors, streams, Debug strings.
async fn drive(client: &LlmClient, seen: &mut Vec<(String, String)>) {
    for name in ["openai", "anthropic", "ollama", "custom"] {
        let p = client.provider(name).unwrap();
        // Direct calls: the raw provider errors (401, then 500s).
        for i in 0..3 {
            match p.generate(&LlmRequest::new(format!("direct {i}"))).await {
                Ok(r) => seen.push((format!("{name} response"), format!("{r:?}"))),
                Err(e) => {
                    seen.push((format!("{name} error"), e.to_string()));
                    seen.push((format!("{name} error Debug"), format!("{e:?}")));
                }
            }
        }
        let _ = p.is_available().await;
        if let Err(e) = p.models().await {
            seen.push((format!("{name} models error"), format!("{e} / {e:?}")));
        }
        // Through the client: retries, fallbacks, caching.
        for i in 0..3 {
            let req = LlmRequest::new(format!("via client {name} {i}")).provider(name);
            match client.generate(req).await {
                Ok(r) => seen.push((format!("{name} client response"), format!("{r:?}"))),
                Err(e) => seen.push((format!("{name} client error"), format!("{e} / {e:?}"))),
            }
        }
        match client
            .stream(LlmRequest::new(format!("stream {name}")).provider(name))
            .await
        {
            Ok(mut s) => {
                seen.push((format!("{name} stream Debug"), format!("{s:?}")));
                while let Some(item) = s.next().await {
                    seen.push((format!("{name} stream item"), format!("{item:?}")));
                }
            }
            Err(e) => seen.push((format!("{name} stream error"), format!("{e} / {e:?}"))),
        }
    }
    seen.push(("client Debug".into(), format!("{client:?}")));
    seen.push(("health".into(), format!("{:?}", client.health())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_debug_metrics_or_gateway_answers() {
    logs();
    let u = upstreams().await;
    let (_redis, redis_url) = redis();
    let text = config_text(&u, &redis_url);
    let config = Config::from_toml_str_with_env(&text, None, &env).unwrap();
    // Keep the Redis crate linked so its registration is present.
    let _ = std::any::type_name::<llm_router::cache_redis::RedisCache>();
    let client = LlmClient::from_config(&config).unwrap();
    let mut seen: Vec<(String, String)> = Vec::new();
    for entry in &config.providers {
        seen.push((
            format!("ProviderEntry {}", entry.name),
            format!("{entry:?}"),
        ));
        let spec = entry.spec.as_ref().unwrap();
        seen.push((format!("ProviderSpec {}", entry.name), format!("{spec:?}")));
        // The concrete providers and their typed sections.
        let debug = match entry.kind.as_str() {
            "openai" => format!(
                "{:?} {:?}",
                llm_router::openai::OpenAiProvider::from_spec(spec).unwrap(),
                llm_router::openai::OpenAiConfig::from_spec(spec).unwrap()
            ),
            "anthropic" => format!(
                "{:?} {:?}",
                llm_router::anthropic::AnthropicProvider::from_spec(spec).unwrap(),
                llm_router::anthropic::AnthropicConfig::from_spec(spec).unwrap()
            ),
            "ollama" => format!(
                "{:?} {:?}",
                llm_router::ollama::OllamaProvider::from_spec(spec).unwrap(),
                llm_router::ollama::OllamaConfig::from_spec(spec).unwrap()
            ),
            _ => format!(
                "{:?} {:?}",
                llm_router::custom::CustomProvider::from_spec(spec).unwrap(),
                llm_router::custom::CustomConfig::from_spec(spec).unwrap()
            ),
        };
        seen.push((format!("Debug of provider {}", entry.name), debug));
    }
    seen.push((
        "GatewayConfig Debug".into(),
        format!("{:?}", config.gateway),
    ));
    seen.push((
        "RoutingConfig Debug".into(),
        format!("{:?}", config.routing),
    ));

    drive(&client, &mut seen).await;

    // The gateway, with a bearer key.
    let gw = llm_cli::gateway::Gateway::new(client.clone(), &config.gateway);
    seen.push(("Gateway Debug".into(), format!("{gw:?}")));
    let handle = gw.bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", handle.local_addr());
    let http = reqwest::Client::new();
    let body = serde_json::json!({"model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "gateway hello"}]});
    let wrong = format!("{GATEWAY_KEY}x");
    let attempts: [(Option<&str>, bool); 4] = [
        (None, false),
        (Some(wrong.as_str()), false),
        (Some(SECRET), false),
        (Some(GATEWAY_KEY), false),
    ];
    let mut statuses = Vec::new();
    for (key, stream) in attempts.iter().chain([(Some(GATEWAY_KEY), true)].iter()) {
        let mut b = body.clone();
        b["stream"] = serde_json::Value::Bool(*stream);
        let mut req = http.post(format!("{base}/v1/chat/completions")).json(&b);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.unwrap();
        statuses.push(resp.status().as_u16());
        seen.push(("gateway headers".into(), format!("{:?}", resp.headers())));
        seen.push(("gateway body".into(), resp.text().await.unwrap()));
    }
    for path in ["/health", "/metrics", "/v1/models"] {
        let resp = http
            .get(format!("{base}{path}"))
            .bearer_auth(GATEWAY_KEY)
            .send()
            .await
            .unwrap();
        seen.push((format!("gateway {path}"), resp.text().await.unwrap()));
    }
    handle.shutdown().await;
    assert_eq!(&statuses[..3], &[401, 401, 401], "wrong keys are refused");
    assert_eq!(statuses[3], 200, "the right key is accepted");

    // Metrics of the process-wide registry (what /metrics serves).
    seen.push((
        "prometheus_text".into(),
        llm_core::metrics::prometheus_text(),
    ));

    // The secrets really were in play: the upstreams received them.
    let got = |m: &MockServer, header: &str| {
        m.requests()
            .iter()
            .any(|r| r.header(header).is_some_and(|v| v.contains(SECRET)))
    };
    assert!(got(&u.openai, "authorization"));
    assert!(got(&u.anthropic, "x-api-key"));
    assert!(got(&u.ollama, "authorization"));
    assert!(got(&u.custom, "authorization"));

    for (what, text) in &seen {
        assert_clean(what, text);
    }
    let logs = log_text();
    if let Some(path) = std::env::var_os("LLM_CHAOS_DUMP_LOG") {
        std::fs::write(path, &logs).unwrap();
    }
    assert!(
        logs.contains("llm.attempt") && logs.contains("TRACE"),
        "the capture saw the client's spans and TRACE events"
    );
    assert_clean("the TRACE log", &logs);
}

#[tokio::test]
async fn configuration_errors_never_echo_a_secret() {
    logs();
    let cases = [
        // Wrong types and unknown keys next to a key.
        format!("[llm_providers.openai]\napi_key = [\"{SECRET}\"]\n"),
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\"\napi_kee = \"{SECRET}\"\n"),
        format!("[llm_providers.anthropic]\napi_key = {{ value = \"{SECRET}\" }}\n"),
        format!("[llm_providers.custom]\nbase_url = \"http://127.0.0.1:1\"\napi_key = \"{SECRET}\\n\"\n"),
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\"\nbase_url = \"not a url\"\n"),
        format!("[llm_providers.ollama]\nheaders = {{ \"Bad Header\" = \"Bearer {SECRET}\" }}\n"),
        format!("[llm_providers.ollama]\nheaders = {{ Authorization = \"Bearer {SECRET}\\u0001\" }}\n"),
        format!("[llm_providers.ollama]\nheaders = [\"Authorization: Bearer {SECRET}\"]\n"),
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\"\ntimeout = -1\n"),
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\"\n[caching]\nredis_url = \"${{NOPE}}{SECRET}\"\n"),
        format!("[caching]\nredis_url = [\"redis://:{SECRET}@127.0.0.1:6379\"]\n"),
        format!("[gateway]\napi_keys = [\"{GATEWAY_KEY}\", 7]\n"),
        // A syntax error on the line of a key.
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\" x\n"),
        format!("[llm_providers.openai]\napi_key = \"{SECRET}\n"),
    ];
    let mut leaks = Vec::new();
    for (i, text) in cases.iter().enumerate() {
        match Config::from_toml_str_with_env(text, None, &env) {
            Err(e) => {
                leaks.extend(leak(&format!("config error {i}"), &e.to_string()));
                leaks.extend(leak(&format!("config error {i} Debug"), &format!("{e:?}")));
            }
            Ok(cfg) => {
                for p in &cfg.providers {
                    leaks.extend(leak(&format!("config {i} entry"), &format!("{p:?}")));
                }
            }
        }
    }
    // A Redis URL that does not parse, and one that cannot connect.
    for url in [
        format!("redis://:{SECRET}@[::1"),
        format!("redis://user:{SECRET}@127.0.0.1:1/0"),
    ] {
        let text =
            format!("[caching]\nbackend = \"redis\"\nredis_url = \"{url}\"\nredis_timeout = 0.2\n");
        let cfg = Config::from_toml_str_with_env(&text, None, &env).unwrap();
        // Keep the Redis crate linked so its registration is present.
        let _ = std::any::type_name::<llm_router::cache_redis::RedisCache>();
        match LlmClient::from_config(&cfg) {
            Err(e) => leaks.extend(leak("client build error", &format!("{e} / {e:?}"))),
            Ok(client) => {
                let r = client.generate(LlmRequest::new("no provider")).await;
                leaks.extend(leak("client error", &format!("{r:?}")));
                leaks.extend(leak("client Debug", &format!("{client:?}")));
            }
        }
        let cache = llm_router::cache_redis::RedisCache::builder(url.clone())
            .timeout(Duration::from_millis(200))
            .build();
        match cache {
            Err(e) => leaks.extend(leak("cache build error", &format!("{e} / {e:?}"))),
            Ok(c) => {
                use llm_core::cache::{CacheKey, ResponseCache};
                let key = CacheKey::for_request(&LlmRequest::new("k"));
                let r = c.get(&key).await;
                leaks.extend(leak("cache error", &format!("{r:?}")));
                leaks.extend(leak("cache Debug", &format!("{c:?}")));
            }
        }
    }
    // Let the Redis cache's background reconnection log its failures.
    tokio::time::sleep(Duration::from_millis(300)).await;
    leaks.extend(leak("the TRACE log", &log_text()));
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// `Config`'s `Debug` never shows the password of `[caching] redis_url`.
#[test]
fn config_debug_never_shows_the_redis_password() {
    let text = format!(
        "[caching]\nbackend = \"redis\"\nredis_url = \"redis://:{SECRET}@127.0.0.1:6379/0\"\n"
    );
    let cfg = Config::from_toml_str_with_env(&text, None, &env).unwrap();
    assert_clean("CachingConfig Debug", &format!("{:?}", cfg.caching));
    assert_clean("Config Debug", &format!("{cfg:?}"));
}

/// `api_keys = "key"` (one string) is one key; a list with a wrong type next
/// to a key is an error that never quotes the key.
#[test]
fn a_mistyped_gateway_key_is_not_quoted_in_the_error() {
    let text = format!("[gateway]\napi_keys = \"{GATEWAY_KEY}\"\n");
    let cfg = Config::from_toml_str_with_env(&text, None, &env).unwrap();
    assert_eq!(cfg.gateway.api_keys.len(), 1);
    let text = format!("[gateway]\napi_keys = [\"{GATEWAY_KEY}\", 7]\n");
    let e = Config::from_toml_str_with_env(&text, None, &env).unwrap_err();
    assert_clean("config error", &e.to_string());
    assert_clean("config error", &format!("{e:?}"));
}

/// The admin API's master key.
const MASTER_KEY: &str = "mk-test-SECRET-1357924680";

/// Virtual keys and the master key: the gateway answers (refusals of every
/// kind included), its `Debug` strings, its metrics and the TRACE log never
/// show them; a virtual key appears only in the one answer that created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_keys_and_the_master_key_never_leak() {
    logs();
    let openai = MockServer::start().await.unwrap();
    openai
        .on_times(
            "POST",
            "/v1/chat/completions",
            MockReply::json(500, OPENAI_500),
            1,
        )
        .on(
            "POST",
            "/v1/chat/completions",
            MockReply::json(200, OPENAI_OK),
        );
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[llm_providers.openai]\napi_key = \"{SECRET}\"\nbase_url = \"{}/v1\"\n\
         models = [\"gpt-4o-mini\"]\ndefault_model = \"gpt-4o-mini\"\ntimeout = 2\n\
         [routing.retry]\nmax_retries = 0\n[caching]\nenabled = false\n\
         [gateway]\nmaster_key = \"${{MASTER}}\"\n[gateway.store]\nurl = \"sqlite://{}\"\n",
        openai.url(),
        dir.path().join("keys.db").display()
    );
    let lookup = |name: &str| (name == "MASTER").then(|| MASTER_KEY.to_string());
    let config = Config::from_toml_str_with_env(&text, None, &lookup).unwrap();
    let tenancy = llm_cli::gateway::tenancy::Tenancy::from_config(&config.gateway)
        .await
        .unwrap();
    let client = LlmClient::from_config(&config).unwrap();
    let gw = llm_cli::gateway::Gateway::from_config(client, &config).tenancy(tenancy.clone());
    let mut seen: Vec<(String, String)> = vec![
        (
            "GatewayConfig Debug".into(),
            format!("{:?}", config.gateway),
        ),
        ("Tenancy Debug".into(), format!("{tenancy:?}")),
        ("Gateway Debug".into(), format!("{gw:?}")),
    ];
    let handle = gw.bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", handle.local_addr());
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, key: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(key)
    };
    let create = |body: serde_json::Value| {
        let req = admin(reqwest::Method::POST, "/admin/keys", MASTER_KEY).json(&body);
        async move {
            let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                v["key"].as_str().unwrap().to_string(),
            )
        }
    };
    let (id, key) = create(serde_json::json!({"name": "app", "rpm": 3})).await;
    let (_, broke) = create(serde_json::json!({"name": "broke", "budget_usd": 0.0})).await;
    let (_, narrow) = create(serde_json::json!({"name": "narrow", "models": ["x-*"]})).await;
    let body = serde_json::json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hello"}]});
    let mut statuses = Vec::new();
    let wrong_virtual = format!("{}A", &key[..key.len() - 1]);
    for k in [
        key.as_str(),
        key.as_str(),
        key.as_str(),
        key.as_str(),
        broke.as_str(),
        narrow.as_str(),
        wrong_virtual.as_str(),
        MASTER_KEY,
    ] {
        for path in ["/v1/chat/completions", "/v1/messages", "/api/chat"] {
            let resp = http
                .post(format!("{base}{path}"))
                .bearer_auth(k)
                .json(&body)
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
            seen.push(("gateway headers".into(), format!("{:?}", resp.headers())));
            seen.push(("gateway body".into(), resp.text().await.unwrap()));
        }
    }
    for (method, path, k) in [
        (reqwest::Method::GET, "/admin/keys".to_string(), MASTER_KEY),
        (
            reqwest::Method::GET,
            format!("/admin/keys/{id}"),
            MASTER_KEY,
        ),
        (reqwest::Method::GET, "/admin/usage".to_string(), MASTER_KEY),
        (
            reqwest::Method::GET,
            "/admin/keys".to_string(),
            key.as_str(),
        ),
        (
            reqwest::Method::GET,
            "/admin/keys".to_string(),
            &format!("{MASTER_KEY}x"),
        ),
        (
            reqwest::Method::POST,
            format!("/admin/keys/{id}/revoke"),
            MASTER_KEY,
        ),
    ] {
        let resp = admin(method, &path, k).send().await.unwrap();
        seen.push((format!("admin {path}"), resp.text().await.unwrap()));
    }
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "revoked");
    seen.push(("revoked answer".into(), resp.text().await.unwrap()));
    for path in ["/metrics", "/health"] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        seen.push((format!("gateway {path}"), resp.text().await.unwrap()));
    }
    handle.shutdown().await;
    tenancy.flush().await;
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&403) && statuses.contains(&401),
        "{statuses:?}"
    );
    seen.push((
        "prometheus_text".into(),
        llm_core::metrics::prometheus_text(),
    ));
    seen.push(("store rows Debug".into(), {
        let keys = tenancy.store().list_keys().await.unwrap();
        format!("{keys:?}")
    }));
    let secrets = [key.as_str(), broke.as_str(), narrow.as_str(), MASTER_KEY];
    let log = log_text();
    for (what, text) in seen
        .iter()
        .chain([("the TRACE log".to_string(), log)].iter())
    {
        for s in secrets {
            assert!(
                !text.contains(s) && !text.contains(&s[7..]),
                "a key leaked into {what}"
            );
        }
        assert_clean(what, text);
    }
}
