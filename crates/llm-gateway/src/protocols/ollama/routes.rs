//! The handlers of the `/api/*` routes.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router::{Capability, LlmClient, Provider};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::convert::{self, Parsed};
use super::error::OllamaError;
use super::stream::{self, Kind, Meta, NDJSON};
use super::wire::{
    rfc3339, Details, EmbedResponse, LegacyEmbedResponse, Show, Stats, TagModel, Tags, WireToolCall,
};
use super::OLLAMA_VERSION;
use crate::error::ApiError;
use crate::protocols::openai_chat::{completion_id, llm_headers, overhead_header, own_time};
use crate::AppState;

/// `application/json; charset=utf-8`, as Ollama labels its JSON answers.
const JSON: &str = "application/json; charset=utf-8";

/// The body, or a 413/400 in Ollama's shape.
fn read(st: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, OllamaError> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(st.settings.max_body_bytes).into()
        } else {
            OllamaError::bad_request(rej.body_text())
        }
    })
}

/// The answer, or the error with key-like text removed.
fn answer(st: &AppState, what: &str, r: Result<Response, OllamaError>) -> Response {
    match r {
        Ok(r) => r,
        Err(mut e) => {
            e.message = st.scrubber.scrub(&crate::scrub::scrub_patterns(&e.message));
            if e.status.is_server_error() {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "ollama {what} failed");
            }
            e.into_response()
        }
    }
}

/// A JSON answer with Ollama's content type.
fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            r
        }
        Err(e) => OllamaError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the response: {e}"),
        )
        .into_response(),
    }
}

/// Handles `POST /api/chat`.
pub(crate) async fn chat(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = async {
        let body = read(&st, body)?;
        let parsed = convert::chat(&body, &st.client)?;
        complete(&st, parsed, Kind::Chat).await
    }
    .await;
    answer(&st, "chat", r)
}

/// Handles `POST /api/generate`.
pub(crate) async fn generate(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = async {
        let body = read(&st, body)?;
        let parsed = convert::generate(&body, &st.client)?;
        complete(&st, parsed, Kind::Generate).await
    }
    .await;
    answer(&st, "generate", r)
}

/// Answers a chat or generate request: NDJSON or one object.
async fn complete(st: &AppState, parsed: Parsed, kind: Kind) -> Result<Response, OllamaError> {
    let entered = Instant::now();
    let Parsed {
        request,
        model,
        stream,
    } = parsed;
    let Some(request) = request else {
        // Nothing to generate: Ollama only loads the model.
        let line = stream::object(
            kind,
            &model,
            "",
            Vec::new(),
            Some(Stats::load(entered.elapsed())),
        );
        return Ok(with_type(Response::new(Body::from(line)), stream));
    };
    let timeout = st.settings.request_timeout;
    let deadline = Instant::now() + timeout;
    let id = completion_id();
    let telemetry = st.client.telemetry();
    if !stream {
        let resp = tokio::time::timeout_at(deadline, st.generate(request))
            .await
            .map_err(|_| OllamaError::from(ApiError::timeout(timeout)))??;
        let calls: Vec<WireToolCall> = resp
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| WireToolCall::new(i, c))
            .collect();
        // The upstream's own time stands for the prompt and generation time.
        let total = entered.elapsed();
        let stats = Stats::new(&resp.finish_reason, resp.usage, total, Duration::ZERO);
        let mut body = stream::object(kind, &model, &resp.content, calls, Some(stats)).to_vec();
        // One object, not a line.
        body.pop();
        let mut out = with_type(Response::new(Body::from(body)), false);
        llm_headers(
            out.headers_mut(),
            &resp.provider,
            resp.cached,
            resp.attempts.len(),
            &id,
        );
        let own = own_time(entered, &resp.attempts);
        telemetry.gateway_overhead("ollama", own.as_secs_f64());
        overhead_header(&mut out, own);
        return Ok(out);
    }
    let estimate_from = request.clone();
    let opened = tokio::time::timeout_at(deadline, st.stream(request))
        .await
        .map_err(|_| OllamaError::from(ApiError::timeout(timeout)))??;
    let own = own_time(entered, &opened.attempts);
    telemetry.gateway_overhead("ollama", own.as_secs_f64());
    let mut headers = HeaderMap::new();
    llm_headers(
        &mut headers,
        &opened.provider,
        opened.cached,
        opened.attempts.len(),
        &id,
    );
    let body = stream::body(
        opened,
        Meta {
            kind,
            model,
            entered,
            request: estimate_from,
            deadline,
            timeout,
            scrubber: st.scrubber.clone(),
        },
    );
    let mut out = Response::new(body);
    *out.headers_mut() = headers;
    let mut out = with_type(out, true);
    overhead_header(&mut out, own);
    Ok(out)
}

/// Sets the content type: NDJSON for streams, JSON otherwise.
fn with_type(mut r: Response, ndjson: bool) -> Response {
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if ndjson { NDJSON } else { JSON }),
    );
    r
}

/// Handles `POST /api/embed`.
pub(crate) async fn embed(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = embed_any(&st, body, false).await;
    answer(&st, "embed", r)
}

/// Handles `POST /api/embeddings` (the legacy endpoint: one `prompt`, one `embedding`).
pub(crate) async fn embeddings(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = embed_any(&st, body, true).await;
    answer(&st, "embeddings", r)
}

async fn embed_any(
    st: &AppState,
    body: Result<Bytes, BytesRejection>,
    legacy: bool,
) -> Result<Response, OllamaError> {
    let entered = Instant::now();
    let body = read(st, body)?;
    let parsed = convert::embed(&body, &st.client, legacy)?;
    let timeout = st.settings.request_timeout;
    let resp = tokio::time::timeout(timeout, st.embed(parsed.request))
        .await
        .map_err(|_| OllamaError::from(ApiError::timeout(timeout)))??;
    let mut out = if legacy {
        json(&LegacyEmbedResponse {
            embedding: resp.vectors.first().map_or(&[][..], Vec::as_slice),
        })
    } else {
        json(&EmbedResponse {
            model: &parsed.model,
            embeddings: &resp.vectors,
            total_duration: u64::try_from(entered.elapsed().as_nanos()).unwrap_or(u64::MAX),
            load_duration: 0,
            prompt_eval_count: resp.usage.prompt_tokens,
        })
    };
    llm_headers(
        out.headers_mut(),
        &resp.provider,
        resp.cached_inputs == resp.vectors.len(),
        resp.attempts.len(),
        &completion_id(),
    );
    Ok(out)
}

/// A routable model: its listed name, the instance serving it and its kind.
struct Listed {
    name: String,
    model: String,
    provider: Arc<dyn Provider>,
    embedding: bool,
}

/// Every routable model, as `instance/model` (the ids of `GET /v1/models`,
/// and the embedding models after them).
fn listed(client: &LlmClient) -> Vec<Listed> {
    // A virtual key sees only its allowed models.
    let allowed = crate::tenancy::enforce::caller_models();
    let mut out = Vec::new();
    for p in client.providers() {
        let profile = p.profile();
        let mut chat: Vec<String> = profile.models.clone();
        if let Some(d) = &profile.default_model {
            if !chat.contains(d) {
                chat.push(d.clone());
            }
        }
        let embed: Vec<String> = profile
            .embedding_models
            .iter()
            .filter(|m| !chat.contains(m))
            .cloned()
            .collect();
        for (models, embedding) in [(chat, false), (embed, true)] {
            for m in models {
                if allowed
                    .as_ref()
                    .is_some_and(|f| !f.allows(p.name(), &m, profile.is_default_model(&m)))
                {
                    continue;
                }
                out.push(Listed {
                    name: format!("{}/{m}", p.name()),
                    model: m,
                    provider: Arc::clone(&p),
                    embedding,
                });
            }
        }
    }
    out
}

/// The static details of a model: the gateway does not know the weights
/// behind an upstream, so `format` is `gguf`, the family is the provider's
/// kind and sizes and quantization are empty.
fn details(kind: &str) -> Details {
    Details {
        parent_model: "",
        format: "gguf",
        family: kind.to_string(),
        families: vec![kind.to_string()],
        parameter_size: "",
        quantization_level: "",
    }
}

/// The gateway's start, the `modified_at` of every model.
fn started(st: &AppState) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs(st.started))
}

/// Handles `GET /api/tags`: every routable model.
pub(crate) async fn tags(State(st): State<AppState>) -> Response {
    let modified_at = started(&st);
    let models = listed(&st.client)
        .into_iter()
        .map(|l| TagModel {
            digest: hex(&Sha256::digest(l.name.as_bytes())),
            model: l.name.clone(),
            name: l.name,
            modified_at: modified_at.clone(),
            size: 0,
            details: details(l.provider.kind()),
        })
        .collect();
    json(&Tags { models })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Handles `POST /api/show` (`{"model":"…"}`, or the older `{"name":"…"}`).
pub(crate) async fn show(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let r = async {
        let body = read(&st, body)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OllamaError::bad_request(format!("invalid JSON body: {e}")))?;
        let name = v
            .get("model")
            .or_else(|| v.get("name"))
            .and_then(|m| m.as_str())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| OllamaError::bad_request("model is required"))?;
        let found = find(&st.client, name).ok_or_else(|| {
            OllamaError::new(StatusCode::NOT_FOUND, format!("model '{name}' not found"))
        })?;
        let kind = found.provider.kind();
        let mut capabilities = Vec::new();
        if found.embedding {
            capabilities.push("embedding");
        } else {
            capabilities.push("completion");
            if found.provider.supports(Capability::Tools, &found.model) {
                capabilities.push("tools");
            }
            if found.provider.supports(Capability::Images, &found.model) {
                capabilities.push("vision");
            }
        }
        let mut model_info = serde_json::Map::new();
        model_info.insert("general.architecture".into(), kind.into());
        Ok(json(&Show {
            modelfile: format!("FROM {}\n", found.name),
            parameters: "",
            template: "{{ .Prompt }}",
            details: details(kind),
            model_info,
            capabilities,
            modified_at: started(&st),
        }))
    }
    .await;
    answer(&st, "show", r)
}

/// A listed model by its `instance/model` name or its bare model name (with
/// or without `:latest`).
fn find(client: &LlmClient, name: &str) -> Option<Listed> {
    let all = listed(client);
    let bare = name.strip_suffix(":latest").unwrap_or(name);
    let same = |m: &str| m == name || m.strip_suffix(":latest").unwrap_or(m) == bare;
    all.into_iter().find(|l| same(&l.name) || same(&l.model))
}

/// Any other `/api/*` route: `404` (models are configured, not pulled,
/// created or deleted through the API).
pub(crate) async fn unknown(
    method: axum::http::Method,
    uri: axum::extract::OriginalUri,
) -> OllamaError {
    OllamaError::new(
        StatusCode::NOT_FOUND,
        format!(
            "{method} {} is not served by this gateway: its models come from its configuration",
            uri.path()
        ),
    )
}

#[derive(Serialize)]
struct Version {
    version: &'static str,
}

/// Handles `GET /api/version`.
pub(crate) async fn version() -> Response {
    json(&Version {
        version: OLLAMA_VERSION,
    })
}

#[derive(Serialize)]
struct Running {
    models: [(); 0],
}

/// Handles `GET /api/ps`: no model is loaded by the gateway itself.
pub(crate) async fn ps() -> Response {
    json(&Running { models: [] })
}
