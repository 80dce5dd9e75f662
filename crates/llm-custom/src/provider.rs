//! The [`Provider`] implementation: request mapping and answer reading.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use llm_core::http::reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use llm_core::http::{self, reqwest};
use llm_core::{
    async_trait, Capability, ConfigError, FinishReason, LlmRequest, LlmResponse, Provider,
    ProviderError, ProviderProfile, ProviderSpec, ResponseStream,
};
use serde_json::Value;

use crate::config::{strip_userinfo, CustomConfig, StreamMode};
use crate::error::{from_response, in_body};
use crate::stream::{decode, ndjson_frames, sse_frames, Decoder, Estimate};
use crate::template::{Template, Var, Vars};
use crate::wire::Pointers;
use crate::KIND;

/// Longest wait of an `is_available` probe.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Model name reported when neither the configuration nor the answer names one.
const UNNAMED_MODEL: &str = "default";

/// A configurable HTTP JSON model API.
pub struct CustomProvider {
    name: String,
    profile: ProviderProfile,
    config: CustomConfig,
    client: reqwest::Client,
    headers: HeaderMap,
    template: Template,
    pointers: Arc<Pointers>,
    generate_url: String,
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
        let mut headers = http::header_map(&config.headers)
            .map_err(|e| spec.error_at(Some("headers"), e.message))?;
        if let Some(key) = config.key() {
            let value = http::secret_header("Bearer ", key)
                .map_err(|e| spec.error_at(Some("api_key"), e.message))?;
            headers.insert(AUTHORIZATION, value);
        }
        let client = http::client(CONNECT_TIMEOUT.min(spec.profile.timeout))?;
        let base = config.base_url.trim_end_matches('/');
        let url = |path: &str| format!("{base}{path}");
        Ok(Self {
            name: spec.name.clone(),
            profile: spec.profile.clone(),
            client,
            headers,
            template,
            pointers: Arc::new(Pointers::from_config(&config)),
            generate_url: url(&config.generate_path),
            stream_url: url(config.stream_path()),
            health_url: url(&config.health_path),
            models_url: config.models_path.as_deref().map(url),
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
        req.model
            .clone()
            .or_else(|| self.profile.resolve_model(None))
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
        let started = Instant::now();
        let resp = match tokio::time::timeout(timeout, request.send()).await {
            Err(_) => {
                return Err(ProviderError::timeout(
                    &self.name,
                    format!("no response within {:.1} s", timeout.as_secs_f64()),
                ))
            }
            Ok(Err(e)) => return Err(http::map_reqwest_error(&self.name, e)),
            Ok(Ok(resp)) => resp,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let left = timeout.saturating_sub(started.elapsed());
        Err(from_response(&self.name, resp, left, &self.config.error_pointer).await)
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
        })
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
    /// them; nothing else (tools, images, logprobs and pass-through fields
    /// have no placeholder).
    fn supports(&self, capability: Capability, _model: &str) -> bool {
        let uses = |var| self.template.uses(var);
        match capability {
            Capability::JsonObject => uses(Var::ResponseFormat),
            Capability::JsonSchema => uses(Var::ResponseFormat) || uses(Var::JsonSchema),
            Capability::Penalties => uses(Var::FrequencyPenalty) && uses(Var::PresencePenalty),
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

    async fn is_available(&self) -> bool {
        let timeout = HEALTH_TIMEOUT.min(self.profile.timeout);
        let request = self
            .client
            .get(&self.health_url)
            .headers(self.headers.clone());
        matches!(
            tokio::time::timeout(timeout, request.send()).await,
            Ok(Ok(resp)) if resp.status().is_success()
        )
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
            .field("generate_url", &strip_userinfo(&self.generate_url))
            .field("stream", &self.config.stream)
            .field("api_key", &self.config.key().map(|_| "<redacted>"))
            .field("headers", &self.config.headers.keys().collect::<Vec<_>>())
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The plugin factory.
pub(crate) fn build(spec: &ProviderSpec) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(Arc::new(CustomProvider::from_spec(spec)?))
}
