//! The [`Provider`] implementation and the request mapping.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llm_core::http::reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use llm_core::http::reqwest::{self, Url};
use llm_core::http::{self as core_http};
use llm_core::{
    Capability, ConfigError, EmbeddingRequest, EmbeddingResponse, EventStream, FinishReason,
    LlmRequest, LlmResponse, Provider, ProviderError, ProviderProfile, ProviderSpec,
    ResponseStream, Usage,
};
use serde::Serialize;

use crate::config::{matches_prefix, EmbeddingEncoding, OpenAiConfig};
use crate::error::{payload_error, OpenAiErrors};
use crate::wire::{
    finish_reason, tool_finish, ChatCompletion, ChatRequest, EmbeddingList, EmbeddingsRequest,
    ModelList, StreamOptions, WireContent, WireMessage, WireResponseFormat, WireTool, WireToolCall,
    WireToolChoice,
};
use crate::KIND;

/// Longest wait for a TCP/TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An OpenAI Chat Completions provider instance (OpenAI or any compatible server).
pub struct OpenAiProvider {
    name: String,
    profile: ProviderProfile,
    base_url: core_http::BaseUrl,
    /// Parsed once: a request then only clones it.
    chat_url: Url,
    embeddings_url: Url,
    models_url: Url,
    /// Every header sent; the `Authorization` value is marked sensitive.
    headers: HeaderMap,
    has_key: bool,
    keyless_allowed: bool,
    mct_models: Vec<String>,
    no_sampling_models: Vec<String>,
    stream_usage: bool,
    embedding_batch_size: usize,
    embedding_encoding: EmbeddingEncoding,
    http: core_http::HttpClient,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.has_key.then_some("[REDACTED]"))
            .field("keyless_allowed", &self.keyless_allowed)
            .field("max_completion_tokens_models", &self.mct_models)
            .field("no_sampling_params_models", &self.no_sampling_models)
            .field("stream_usage", &self.stream_usage)
            .field("embedding_batch_size", &self.embedding_batch_size)
            .field("embedding_encoding", &self.embedding_encoding)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl OpenAiProvider {
    /// Builds an instance from its configuration section.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let cfg = OpenAiConfig::from_spec(spec)?;
        let base_url = core_http::BaseUrl::parse(spec, "base_url", &cfg.base_url)?;
        let headers = build_headers(&cfg).map_err(|(key, msg)| spec.error_at(Some(key), msg))?;
        let connect = spec.profile.timeout.min(CONNECT_TIMEOUT);
        let http = core_http::client(connect).map_err(|e| spec.error_at(None, e.message))?;
        let url = |path: &str| {
            Url::parse(&base_url.join(path))
                .map_err(|e| spec.error_at(Some("base_url"), format!("not a valid URL: {e}")))
        };
        Ok(Self {
            name: spec.name.clone(),
            profile: spec.profile.clone(),
            chat_url: url("/chat/completions")?,
            embeddings_url: url("/embeddings")?,
            models_url: url("/models")?,
            base_url,
            headers,
            has_key: cfg.api_key().is_some(),
            keyless_allowed: cfg.keyless_allowed(),
            mct_models: cfg.max_completion_tokens_models,
            no_sampling_models: cfg.no_sampling_params_models,
            stream_usage: cfg.stream_usage,
            embedding_batch_size: cfg.embedding_batch_size,
            embedding_encoding: cfg.embedding_encoding,
            http,
        })
    }

    /// The base URL requests go to (without a trailing `/`).
    pub fn base_url(&self) -> &str {
        self.base_url.as_str()
    }

    /// Whether `model` gets `max_completion_tokens` instead of `max_tokens`.
    pub fn uses_max_completion_tokens(&self, model: &str) -> bool {
        matches_prefix(&self.mct_models, model)
    }

    /// Whether `model` is sent `temperature` and `top_p`.
    pub fn sends_sampling_params(&self, model: &str) -> bool {
        !matches_prefix(&self.no_sampling_models, model)
    }

    /// The request body for `req` on `model`.
    fn chat_request<'a>(
        &self,
        req: &'a LlmRequest,
        model: &'a str,
        stream: bool,
    ) -> ChatRequest<'a> {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = req.system_prompt.as_deref().filter(|s| !s.is_empty()) {
            messages.push(WireMessage {
                role: "system",
                tool_call_id: None,
                content: Some(WireContent::Text(system)),
                tool_calls: Vec::new(),
            });
        }
        messages.extend(req.messages.iter().map(|m| {
            WireMessage {
                role: m.role.as_str(),
                tool_call_id: m.tool_call_id.as_deref(),
                // An assistant message that only calls tools has `"content": null`.
                content: (!m.content.is_empty() || m.tool_calls.is_empty() || !m.images.is_empty())
                    .then(|| WireContent::new(&m.content, &m.images)),
                tool_calls: m.tool_calls.iter().map(WireToolCall::from).collect(),
            }
        }));
        // Sent as given: the client has already clamped it to the profile's limit.
        let limit = req.max_tokens;
        let completion_field = self.uses_max_completion_tokens(model);
        let sampling = self.sends_sampling_params(model);
        ChatRequest {
            model,
            messages,
            max_tokens: limit.filter(|_| !completion_field),
            max_completion_tokens: limit.filter(|_| completion_field),
            temperature: req.temperature.filter(|_| sampling),
            top_p: req.top_p.filter(|_| sampling),
            stop: &req.stop,
            seed: req.seed,
            frequency_penalty: req.frequency_penalty,
            presence_penalty: req.presence_penalty,
            // `top_logprobs` needs `logprobs: true`.
            logprobs: req.logprobs || req.top_logprobs.is_some(),
            top_logprobs: req.top_logprobs,
            response_format: req.response_format.as_ref().map(WireResponseFormat::from),
            user: req.user.as_deref(),
            stream,
            stream_options: (stream && self.stream_usage).then_some(StreamOptions {
                include_usage: true,
            }),
            tools: req.tools.iter().map(WireTool::from).collect(),
            // OpenAI rejects `tool_choice` without `tools`; with no tools
            // every choice means "no tool calls" anyway.
            tool_choice: req
                .tool_choice
                .as_ref()
                .filter(|_| !req.tools.is_empty())
                .map(WireToolChoice::from),
            // Likewise only with tools.
            parallel_tool_calls: req.parallel_tool_calls.filter(|_| !req.tools.is_empty()),
            extra: &req.extra,
        }
    }

    /// Most inputs sent in one `POST /embeddings` request (`embedding_batch_size`).
    pub fn embedding_batch_size(&self) -> usize {
        self.embedding_batch_size
    }

    /// Without a key on a server that needs one, every call is known to
    /// fail with 401: the error moves on to the next provider without a call.
    fn require_key(&self) -> Result<(), ProviderError> {
        if self.has_key || self.keyless_allowed {
            return Ok(());
        }
        Err(ProviderError::unsupported(
            &self.name,
            "no API key is configured (set `api_key`, or `allow_no_key = true` for servers that need none)",
        ))
    }

    async fn post(
        &self,
        url: &Url,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, ProviderError> {
        self.require_key()?;
        let request = self
            .http
            .post(url.clone())
            .headers(self.headers.clone())
            .json(body);
        core_http::send_with(&self.name, request, self.profile.timeout, &OpenAiErrors).await
    }

    /// Reads a whole JSON answer, at most `max_response_bytes`, within what
    /// is left of the timeout.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        started: Instant,
    ) -> Result<T, ProviderError> {
        let remaining = self.profile.timeout.saturating_sub(started.elapsed());
        core_http::read_json_max(&self.name, resp, remaining, self.profile.max_response_bytes).await
    }

    /// One `POST /embeddings` request for `inputs` (at most one batch):
    /// their vectors in order and the prompt tokens reported.
    async fn embed_part(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        inputs: &[String],
    ) -> Result<(Vec<Vec<f32>>, u64), ProviderError> {
        let started = Instant::now();
        let body = EmbeddingsRequest {
            model,
            input: inputs,
            encoding_format: match self.embedding_encoding {
                EmbeddingEncoding::Base64 => Some("base64"),
                EmbeddingEncoding::Float => None,
            },
            dimensions: req.dimensions,
            user: req.user.as_deref(),
        };
        let resp = self.post(&self.embeddings_url, &body).await?;
        let request_id = core_http::request_id(resp.headers());
        let list: EmbeddingList = self.read(resp, started).await?;
        crate::embed::vectors(&self.name, list, inputs.len())
            .map_err(|e| e.with_request_id(request_id))
    }

    /// Turns a decoded answer into a response.
    fn response(
        &self,
        completion: ChatCompletion,
        requested: String,
        started: Instant,
        request_id: Option<String>,
    ) -> Result<LlmResponse, ProviderError> {
        let ChatCompletion {
            model,
            choices,
            usage,
            error,
        } = completion;
        let Some(choice) = choices.into_iter().next() else {
            return Err(match error {
                Some(e) => payload_error(&self.name, e),
                None => ProviderError::decode(&self.name, "the answer has no `choices`"),
            }
            .with_request_id(request_id));
        };
        let logprobs = choice.logprobs.into_logprobs();
        let message = choice.message.unwrap_or_default();
        let content = message.content.map(|c| c.into_text()).unwrap_or_default();
        let tool_calls = message
            .tool_calls
            .into_iter()
            .enumerate()
            .map(|(i, call)| {
                call.into_call().ok_or_else(|| {
                    ProviderError::decode(
                        &self.name,
                        format!("tool call {i} of the answer has no `function.name`"),
                    )
                    .with_request_id(request_id.clone())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let finish = choice
            .finish_reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .map_or(FinishReason::Stop, finish_reason);
        let finish = tool_finish(finish, !tool_calls.is_empty());
        let usage: Usage = usage.map(Into::into).unwrap_or_default();
        let model = model.filter(|m| !m.is_empty()).unwrap_or(requested);
        Ok(LlmResponse {
            content,
            provider: self.name.clone(),
            provider_kind: KIND.to_string(),
            // Priced by the client, from `usage` and the instance's prices.
            cost: 0.0,
            model,
            usage,
            response_time: started.elapsed(),
            finish_reason: finish,
            cached: false,
            attempts: Vec::new(),
            tool_calls,
            logprobs,
            thinking: Vec::new(),
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }

    /// Every chat capability; images only on models with vision
    /// ([`ProviderProfile::has_vision`]: all, unless `vision_models` lists
    /// them); embeddings only for the models in `embedding_models`.
    fn supports(&self, capability: Capability, model: &str) -> bool {
        match capability {
            Capability::Images => self.profile.has_vision(model),
            Capability::Tools
            | Capability::ForcedToolChoice
            | Capability::SerialToolCalls
            | Capability::JsonObject
            | Capability::JsonSchema
            | Capability::Logprobs
            | Capability::Penalties
            | Capability::Passthrough => true,
            Capability::Embeddings => self.profile.embedding_models.iter().any(|m| m == model),
            _ => false,
        }
    }

    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        let started = Instant::now();
        let model = self.profile.model_for(&self.name, req)?;
        let resp = self
            .post(&self.chat_url, &self.chat_request(req, &model, false))
            .await?;
        let request_id = core_http::request_id(resp.headers());
        let completion: ChatCompletion = self.read(resp, started).await?;
        self.response(completion, model, started, request_id)
    }

    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        let started = Instant::now();
        let model = self.profile.model_for(&self.name, req)?;
        let resp = self
            .post(&self.chat_url, &self.chat_request(req, &model, true))
            .await?;
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        let events: EventStream = if is_json {
            // A server that ignored `"stream": true` answered in one piece.
            let request_id = core_http::request_id(resp.headers());
            let completion: ChatCompletion = self.read(resp, started).await?;
            let r = self.response(completion, model.clone(), started, request_id)?;
            Box::pin(futures::stream::iter(r.into_events().into_iter().map(Ok)))
        } else {
            let sse = core_http::sse_events(&self.name, resp, self.profile.timeout);
            Box::pin(crate::stream::decode(&self.name, sse))
        };
        Ok(ResponseStream::new(self.name.clone(), KIND, model, events))
    }

    /// Embeds `req.inputs` with `POST {base_url}/embeddings`, at most
    /// `embedding_batch_size` inputs per request: a larger batch is split,
    /// the parts are sent one after the other and reassembled in order, and
    /// their usage is summed; any part failing fails the call.
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        let model = self.profile.embedding_model_for(&self.name, req)?;
        self.require_key()?;
        let mut vectors = Vec::with_capacity(req.inputs.len());
        let mut prompt_tokens = 0u64;
        for part in req.inputs.chunks(self.embedding_batch_size.max(1)) {
            let (part_vectors, tokens) = self.embed_part(req, &model, part).await?;
            vectors.extend(part_vectors);
            prompt_tokens = prompt_tokens.saturating_add(tokens);
        }
        Ok(EmbeddingResponse::from_provider(
            self.name.clone(),
            KIND,
            model,
            vectors,
            Usage::new(prompt_tokens, 0),
        ))
    }

    async fn is_available(&self) -> bool {
        self.check().await.is_ok()
    }

    /// `GET {base_url}/models` with a short timeout: any answer but a 2xx
    /// (401 for a bad key, 5xx while the API is down, …) is unavailable and
    /// the error says why; without a key on a server that needs one, no
    /// request is sent.
    async fn check(&self) -> Result<(), ProviderError> {
        self.require_key()?;
        let request = self
            .http
            .get(self.models_url.clone())
            .headers(self.headers.clone());
        core_http::probe(&self.name, request, self.profile.timeout, &OpenAiErrors).await
    }

    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        let started = Instant::now();
        let request = self
            .http
            .get(self.models_url.clone())
            .headers(self.headers.clone());
        let resp =
            core_http::send_with(&self.name, request, self.profile.timeout, &OpenAiErrors).await?;
        let list: ModelList = self.read(resp, started).await?;
        Ok(list.data.into_iter().filter_map(|m| m.id).collect())
    }
}

/// Every header sent with each request; an error names the offending key.
fn build_headers(cfg: &OpenAiConfig) -> Result<HeaderMap, (&'static str, String)> {
    let mut map = HeaderMap::new();
    map.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(concat!("llm-router-openai/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(key) = cfg.api_key() {
        let value = core_http::secret_header("Bearer ", key).map_err(|e| ("api_key", e.message))?;
        map.insert(AUTHORIZATION, value);
    }
    for (key, header, value) in [
        ("organization", "openai-organization", &cfg.organization),
        ("project", "openai-project", &cfg.project),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            let v = HeaderValue::from_str(v)
                .map_err(|_| (key, format!("`{v}` is not a valid header value")))?;
            map.insert(HeaderName::from_static(header), v);
        }
    }
    let extra = core_http::header_map(&cfg.headers).map_err(|e| ("headers", e.message))?;
    for (name, value) in extra {
        if let Some(name) = name {
            map.insert(name, value);
        }
    }
    Ok(map)
}
