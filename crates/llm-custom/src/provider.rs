//! The [`Provider`] implementation: request mapping and answer reading.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use llm_core::http::reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use llm_core::http::{self, reqwest};
use llm_core::{
    async_trait, Capability, ConfigError, EmbeddingRequest, EmbeddingResponse, FinishReason,
    LlmRequest, LlmResponse, Provider, ProviderError, ProviderProfile, ProviderSpec,
    ResponseStream, Usage,
};
use serde_json::Value;

use crate::config::{CustomConfig, StreamMode};
use crate::error::{in_body, ErrorPointer};
use crate::stream::{decode, ndjson_frames, sse_frames, Decoder, Estimate};
use crate::template::{EmbedVars, Template, Var, Vars};
use crate::wire::Pointers;
use crate::KIND;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Model name reported when neither the configuration nor the answer names one.
const UNNAMED_MODEL: &str = "default";

/// A configurable HTTP JSON model API.
pub struct CustomProvider {
    name: String,
    profile: ProviderProfile,
    config: CustomConfig,
    /// `base_url`, checked (its credentials are never shown).
    base_url: http::BaseUrl,
    client: http::HttpClient,
    headers: HeaderMap,
    template: Template,
    /// The embeddings body template; `None` without `embed_path`.
    embed_template: Option<Template>,
    errors: ErrorPointer,
    pointers: Arc<Pointers>,
    generate_url: String,
    embed_url: Option<String>,
    stream_url: String,
    health_url: String,
    models_url: Option<String>,
}

impl CustomProvider {
    /// Builds an instance from its configuration; errors name the offending key.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let config = CustomConfig::from_spec(spec)?;
        let template = match &config.request_template {
            Some(t) => {
                Template::compile(t).map_err(|msg| spec.error_at(Some("request_template"), msg))?
            }
            None => Template::default_shape(),
        };
        let embed_template = match (&config.embed_path, &config.embed_template) {
            (None, _) => None,
            (Some(_), Some(t)) => Some(
                Template::compile_embed(t)
                    .map_err(|msg| spec.error_at(Some("embed_template"), msg))?,
            ),
            (Some(_), None) => Some(Template::default_embed_shape()),
        };
        let mut headers = http::header_map(&config.headers)
            .map_err(|e| spec.error_at(Some("headers"), e.message))?;
        if let Some(key) = config.key() {
            let value = http::secret_header("Bearer ", key)
                .map_err(|e| spec.error_at(Some("api_key"), e.message))?;
            headers.insert(AUTHORIZATION, value);
        }
        let client = http::client(CONNECT_TIMEOUT.min(spec.profile.timeout))?;
        let base_url = http::BaseUrl::parse(spec, "base_url", &config.base_url)?;
        let url = |path: &str| base_url.join(path);
        Ok(Self {
            name: spec.name.clone(),
            profile: spec.profile.clone(),
            client,
            headers,
            template,
            embed_template,
            errors: ErrorPointer(config.error_pointer.clone()),
            pointers: Arc::new(Pointers::from_config(&config)),
            generate_url: url(&config.generate_path),
            embed_url: config.embed_path.as_deref().map(url),
            stream_url: url(config.stream_path()),
            health_url: url(&config.health_path),
            models_url: config.models_path.as_deref().map(url),
            base_url,
            config,
        })
    }

    /// The configuration this instance was built from.
    pub fn config(&self) -> &CustomConfig {
        &self.config
    }

    /// The JSON body sent for `req` (the template filled in, plus the stream flag).
    pub fn request_body(&self, req: &LlmRequest, streaming: bool) -> Value {
        let model = self.model_for(req);
        self.body(req, model.as_deref(), streaming)
    }

    /// The model of `req` as the client resolved it; only a direct call
    /// without one gets the default (or first) configured model.
    fn model_for(&self, req: &LlmRequest) -> Option<String> {
        self.profile.model_for(&self.name, req).ok()
    }

    fn body(&self, req: &LlmRequest, model: Option<&str>, streaming: bool) -> Value {
        let mut body = self.template.render(&Vars { req, model });
        if let Some(flag) = &self.config.stream_flag {
            body.insert(flag.clone(), Value::Bool(streaming));
        }
        Value::Object(body)
    }

    fn post(&self, url: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(url)
            .headers(self.headers.clone())
            .json(body)
    }

    /// Sends `request` and waits for the response head within `timeout`; a
    /// non-2xx answer becomes an HTTP error read through `error_pointer`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, ProviderError> {
        http::send_with(&self.name, request, timeout, &self.errors).await
    }

    /// Reads a complete (non-streamed) answer.
    fn answer(
        &self,
        req: &LlmRequest,
        model: Option<String>,
        body: &Value,
        started: Instant,
    ) -> Result<LlmResponse, ProviderError> {
        if let Some((message, code)) = self.pointers.error(body) {
            return Err(in_body(&self.name, &message, code));
        }
        let content = self.pointers.content(body).ok_or_else(|| {
            ProviderError::decode(
                &self.name,
                format!(
                    "none of content_pointers ({}) holds a string in the answer",
                    self.pointers.content.join(", ")
                ),
            )
        })?;
        let usage = self
            .pointers
            .usage(body)
            .complete(|| llm_core::tokens::estimate_usage(req, content));
        let model = self
            .pointers
            .model(body)
            .map(str::to_string)
            .or(model)
            .unwrap_or_else(|| UNNAMED_MODEL.to_string());
        Ok(LlmResponse {
            content: content.to_string(),
            provider: self.name.clone(),
            provider_kind: KIND.to_string(),
            // Priced by the client from the usage.
            cost: 0.0,
            model,
            usage,
            response_time: started.elapsed(),
            finish_reason: self
                .pointers
                .finish_reason(body)
                .unwrap_or(FinishReason::Stop),
            cached: false,
            attempts: Vec::new(),
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            thinking: Vec::new(),
        })
    }

    /// Embeddings with `embed_path` set, for the models in `embedding_models`.
    fn supports_embeddings(&self, model: &str) -> bool {
        self.embed_url.is_some() && self.profile.embedding_models.iter().any(|m| m == model)
    }

    async fn replay(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        Ok(ResponseStream::replay(self.generate(req).await?))
    }
}

#[async_trait]
impl Provider for CustomProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }

    /// Structured output and penalties when the request template carries
    /// them; embeddings with `embed_path` set for the models in
    /// `embedding_models`; nothing else (tools, images, logprobs and pass-through fields
    /// have no placeholder).
    fn supports(&self, capability: Capability, model: &str) -> bool {
        let uses = |var| self.template.uses(var);
        match capability {
            Capability::JsonObject => uses(Var::ResponseFormat),
            Capability::JsonSchema => uses(Var::ResponseFormat) || uses(Var::JsonSchema),
            Capability::Penalties => uses(Var::FrequencyPenalty) && uses(Var::PresencePenalty),
            Capability::Embeddings => self.supports_embeddings(model),
            _ => false,
        }
    }

    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        let started = Instant::now();
        let timeout = self.profile.timeout;
        let model = self.model_for(req);
        let body = self.body(req, model.as_deref(), false);
        let request = self
            .post(&self.generate_url, &body)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let resp = self.send(request, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let answer: Value = http::read_json(&self.name, resp, left).await?;
        self.answer(req, model, &answer, started)
    }

    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        let accept = match self.config.stream {
            StreamMode::None => return self.replay(req).await,
            StreamMode::Ndjson => "application/x-ndjson",
            StreamMode::Sse => "text/event-stream",
        };
        let timeout = self.profile.timeout;
        let model = self.model_for(req);
        let body = self.body(req, model.as_deref(), true);
        let request = self
            .post(&self.stream_url, &body)
            .header(ACCEPT, HeaderValue::from_static(accept));
        let resp = self.send(request, timeout).await?;
        let decoder = Decoder::new(&self.name, self.pointers.clone(), Estimate::new(req));
        let model = model.unwrap_or_else(|| UNNAMED_MODEL.to_string());
        let events = match self.config.stream {
            StreamMode::Sse => decode(sse_frames(&self.name, resp, timeout), decoder).boxed(),
            _ => decode(ndjson_frames(&self.name, resp, timeout), decoder).boxed(),
        };
        Ok(ResponseStream::new(&self.name, KIND, model, events))
    }

    /// `POST embed_path` with the `embed_template` body; the vectors are at
    /// `embeddings_pointer` (one per input, in order, or a decode error) and
    /// the usage at `embed_tokens_pointer` (zero when not reported).
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        let (Some(url), Some(template)) = (&self.embed_url, &self.embed_template) else {
            return Err(ProviderError::unsupported(
                &self.name,
                "model: this instance has no embeddings endpoint (`embed_path`)",
            )
            .with_code("unsupported_embeddings"));
        };
        if req.dimensions.is_some() && !template.uses(Var::Dimensions) {
            return Err(ProviderError::unsupported(
                &self.name,
                "dimensions: the embeddings template has no `{{dimensions}}` placeholder",
            )
            .with_code("unsupported_dimensions"));
        }
        let model = self.profile.embedding_model_for(&self.name, req)?;
        if req.inputs.is_empty() {
            return Ok(EmbeddingResponse::from_provider(
                &self.name,
                KIND,
                model,
                Vec::new(),
                Usage::default(),
            ));
        }
        let started = Instant::now();
        let timeout = self.profile.timeout;
        let body = Value::Object(template.render(&EmbedVars { req, model: &model }));
        let request = self
            .post(url, &body)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let resp = self.send(request, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let answer: Value = http::read_json(&self.name, resp, left).await?;
        if let Some((message, code)) = self.pointers.error(&answer) {
            return Err(in_body(&self.name, &message, code));
        }
        let vectors = self
            .pointers
            .vectors(&answer)
            .map_err(|e| ProviderError::decode(&self.name, e))?;
        if vectors.len() != req.inputs.len() {
            return Err(ProviderError::decode(
                &self.name,
                format!(
                    "the answer holds {} vectors for {} inputs",
                    vectors.len(),
                    req.inputs.len()
                ),
            ));
        }
        let usage = Usage::new(self.pointers.embed_tokens(&answer).unwrap_or(0), 0);
        Ok(EmbeddingResponse::from_provider(
            &self.name, KIND, model, vectors, usage,
        ))
    }

    async fn is_available(&self) -> bool {
        self.check().await.is_ok()
    }

    /// `GET health_path` within 5 s (or the instance timeout, if shorter);
    /// any 2xx is available, and the error says why not (no connection, a
    /// timeout, or the status and message of the answer).
    async fn check(&self) -> Result<(), ProviderError> {
        let request = self
            .client
            .get(&self.health_url)
            .headers(self.headers.clone());
        http::probe(&self.name, request, self.profile.timeout, &self.errors).await
    }

    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        let Some(url) = &self.models_url else {
            return Ok(self.profile.models.clone());
        };
        let started = Instant::now();
        let timeout = self.profile.timeout;
        let request = self
            .client
            .get(url)
            .headers(self.headers.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let resp = self.send(request, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let list: Value = http::read_json(&self.name, resp, left).await?;
        self.pointers.model_ids(&list).ok_or_else(|| {
            ProviderError::decode(&self.name, "the models list holds no array of models")
        })
    }
}

impl fmt::Debug for CustomProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("generate_path", &self.config.generate_path)
            .field("stream", &self.config.stream)
            .field("api_key", &self.config.key().map(|_| "<redacted>"))
            .field("headers", &self.config.headers.keys().collect::<Vec<_>>())
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}
