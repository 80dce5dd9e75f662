//! The [`Provider`] implementation and the request body (the conversation
//! and tools are mapped in `request`).

use std::fmt;
use std::time::{Duration, Instant};

use llm_core::http::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use llm_core::http::{self, reqwest};
use llm_core::{
    async_trait, Capability, ConfigError, FinishReason, LlmRequest, LlmResponse, Provider,
    ProviderError, ProviderErrorKind, ProviderProfile, ProviderSpec, ResponseStream, Thinking,
};

use crate::config::AnthropicConfig;
use crate::stream::{self, Decoder};
use crate::wire::{self, MessageResponse, MessagesRequest, Metadata, ModelPage, WireToolChoice};
use crate::{error, request, KIND};

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size of `GET /v1/models` (the API's maximum).
const MODELS_PAGE: &str = "1000";
/// Upper bound on model-list pages followed.
const MAX_MODEL_PAGES: usize = 100;
/// Anthropic's temperature range ends at 1.
const MAX_TEMPERATURE: f32 = 1.0;
/// Lowest `top_p` Anthropic accepts with thinking on.
const MIN_THINKING_TOP_P: f32 = 0.95;
/// `max_tokens` sent when neither the request nor the instance's `max_tokens`
/// sets one (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A provider instance talking to the Anthropic Messages API.
pub struct AnthropicProvider {
    name: String,
    profile: ProviderProfile,
    /// The API root requests go to (may carry `user:password@`, sent by
    /// reqwest as basic authentication; never shown).
    base_url: http::BaseUrl,
    version: String,
    has_key: bool,
    /// Every header sent: `x-api-key` (sensitive), `anthropic-version`,
    /// `anthropic-beta`, configured extras.
    headers: HeaderMap,
    client: http::HttpClient,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("name", &self.name)
            .field("base_url", &self.base_url.display())
            .field("version", &self.version)
            .field("api_key", &if self.has_key { "[set]" } else { "[missing]" })
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// Builds an instance from its configuration section.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let config = AnthropicConfig::from_spec(spec)?;
        Self::new(spec, config)
    }

    /// Builds an instance from a spec (name and common keys) and a typed config.
    pub fn new(spec: &ProviderSpec, config: AnthropicConfig) -> Result<Self, ConfigError> {
        let base_url = http::BaseUrl::parse(spec, "base_url", &config.base_url)?;
        let mut headers = HeaderMap::new();
        let key = config
            .api_key
            .as_ref()
            .filter(|k| !llm_core::ExposeSecret::expose_secret(*k).trim().is_empty());
        if let Some(key) = key {
            let value = http::secret_header("", key)
                .map_err(|e| spec.error_at(Some("api_key"), e.message))?;
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        let version = HeaderValue::from_str(&config.version)
            .map_err(|_| spec.error_at(Some("version"), "not a valid header value"))?;
        headers.insert(HeaderName::from_static("anthropic-version"), version);
        if !config.beta.is_empty() {
            let beta = HeaderValue::from_str(&config.beta.join(","))
                .map_err(|_| spec.error_at(Some("beta"), "not a valid header value"))?;
            headers.insert(HeaderName::from_static("anthropic-beta"), beta);
        }
        let extra = http::header_map(&config.headers)
            .map_err(|e| spec.error_at(Some("headers"), e.message))?;
        for (name, value) in &extra {
            headers.insert(name.clone(), value.clone());
        }
        let client = http::client(spec.profile.timeout.min(CONNECT_TIMEOUT))
            .map_err(|e| spec.error_at(None, e.message))?;
        Ok(Self {
            name: spec.name.clone(),
            profile: spec.profile.clone(),
            base_url,
            version: config.version,
            has_key: key.is_some(),
            headers,
            client,
        })
    }

    fn url(&self, path: &str) -> String {
        self.base_url.join(path)
    }

    fn require_key(&self) -> Result<(), ProviderError> {
        if self.has_key {
            Ok(())
        } else {
            Err(ProviderError::new(
                &self.name,
                ProviderErrorKind::Unsupported,
                "no API key configured (`api_key` is missing or empty); request not sent",
            ))
        }
    }

    /// The request body for `req` on `model`, and the name of the tool that
    /// carries a structured answer (`response_format`), if any.
    pub(crate) fn body<'a>(
        &self,
        req: &'a LlmRequest,
        model: &'a str,
        stream: bool,
    ) -> Result<(MessagesRequest<'a>, Option<String>), ProviderError> {
        let (system, messages) =
            request::map_messages(req).map_err(|e| ProviderError::unsupported(&self.name, e))?;
        if messages.is_empty() {
            return Err(ProviderError::unsupported(
                &self.name,
                "Anthropic needs at least one user or assistant message with content",
            ));
        }
        // Anthropic requires a limit: the request's (already within the
        // instance's limit when it comes through the client), else the
        // instance's configured output limit, else the documented default.
        let max_tokens = req
            .max_tokens
            .or(self.profile.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS);
        let tools =
            request::map_tools(req).map_err(|e| ProviderError::unsupported(&self.name, e))?;
        if let Some(thinking) = req.thinking.filter(|t| t.is_on()) {
            check_thinking(req, thinking, max_tokens, &tools)
                .map_err(|e| ProviderError::unsupported(&self.name, e))?;
        }
        let temperature = req.temperature.map(|t| t.clamp(0.0, MAX_TEMPERATURE));
        // Current Claude models refuse `temperature` and `top_p` together
        // (400 "temperature and top_p cannot both be specified for this
        // model"): with both set, `temperature` is sent.
        let top_p = match (temperature, req.top_p) {
            (Some(_), Some(top_p)) => {
                tracing::debug!(
                    provider = %self.name,
                    top_p,
                    "both temperature and top_p set: sending temperature only"
                );
                None
            }
            (_, top_p) => top_p,
        };
        let format = tools.format.as_ref().map(|f| f.to_string());
        Ok((
            MessagesRequest {
                model,
                max_tokens,
                thinking: req.thinking,
                system,
                messages,
                temperature,
                top_p,
                stop_sequences: &req.stop,
                stream,
                tools: tools.tools,
                tool_choice: tools.choice,
                metadata: req
                    .user
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .map(|user_id| Metadata { user_id }),
            },
            format,
        ))
    }

    async fn post(&self, body: &MessagesRequest<'_>) -> Result<reqwest::Response, ProviderError> {
        let request = self
            .client
            .post(self.url("/v1/messages"))
            .headers(self.headers.clone())
            .json(body);
        error::send(&self.name, request, self.profile.timeout).await
    }
}

/// What the Messages API refuses with thinking on, refused before sending
/// (<https://platform.claude.com/docs/en/build-with-claude/extended-thinking>,
/// "Feature compatibility"): a `budget_tokens` not below `max_tokens`, a
/// `temperature` other than 1, a `top_p` below 0.95, and a forced tool call
/// (`tool_choice` `any` or a named tool, which is also how `response_format`
/// is carried).
fn check_thinking(
    req: &LlmRequest,
    thinking: Thinking,
    max_tokens: u32,
    tools: &request::ToolMapping<'_>,
) -> Result<(), String> {
    if let Thinking::Enabled { budget_tokens } = thinking {
        if budget_tokens >= max_tokens {
            return Err(format!(
                "`thinking.budget_tokens` ({budget_tokens}) must be less than `max_tokens` \
                 ({max_tokens}); raise max_tokens or lower the budget"
            ));
        }
    }
    if let Some(t) = req.temperature.filter(|t| (*t - 1.0).abs() > f32::EPSILON) {
        return Err(format!(
            "`temperature` {t} cannot be combined with `thinking`: Anthropic accepts only \
             temperature 1 (or none) when thinking is on"
        ));
    }
    if let Some(p) = req.top_p.filter(|p| *p < MIN_THINKING_TOP_P) {
        return Err(format!(
            "`top_p` {p} cannot be combined with `thinking`: Anthropic accepts top_p between \
             {MIN_THINKING_TOP_P} and 1 when thinking is on"
        ));
    }
    if tools.format.is_some() {
        return Err(
            "`response_format` cannot be combined with `thinking` on Anthropic: the format is \
             carried by a forced tool call, and thinking does not allow forced tool use"
                .to_string(),
        );
    }
    if matches!(
        tools.choice,
        Some(WireToolChoice::Any { .. } | WireToolChoice::Tool { .. })
    ) {
        return Err(
            "`tool_choice` `required` or a named tool cannot be combined with `thinking`: \
             Anthropic allows only `auto` or `none` when thinking is on"
                .to_string(),
        );
    }
    Ok(())
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }

    fn supports(&self, capability: Capability, model: &str) -> bool {
        match capability {
            Capability::Tools
            | Capability::ForcedToolChoice
            | Capability::SerialToolCalls
            | Capability::JsonObject
            | Capability::JsonSchema
            | Capability::Thinking => true,
            Capability::Images => self.profile.has_vision(model),
            // No such fields in the Messages API (logprobs, penalties,
            // OpenAI pass-through), and anything else: not claimed.
            _ => false,
        }
    }

    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        let started = Instant::now();
        self.require_key()?;
        let model = self.profile.model_for(&self.name, req)?;
        let (body, format) = self.body(req, &model, false)?;
        let resp = self.post(&body).await?;
        let header_id = http::request_id(resp.headers());
        let remaining = self.profile.timeout.saturating_sub(started.elapsed());
        let message: MessageResponse =
            http::read_json_max(&self.name, resp, remaining, self.profile.max_response_bytes)
                .await?;
        if message.kind.as_deref() == Some("error") || message.error.is_some() {
            let id = header_id.or(message.request_id);
            return Err(error::from_event(&self.name, message.error, id));
        }
        let decode_error = |e: String| {
            let id = header_id.clone().or_else(|| message.request_id.clone());
            ProviderError::decode(&self.name, e).with_request_id(id)
        };
        // A cut answer (e.g. `max_tokens`) keeps whatever tool calls it has.
        let cut = wire::is_cut(message.stop_reason.as_deref());
        let tool_calls = message
            .tool_calls(cut, format.as_deref())
            .map_err(decode_error)?;
        let mut finish_reason = wire::finish_reason(message.stop_reason.as_deref());
        // A structured answer is the format tool's input, as the content.
        let structured = match format.as_deref() {
            Some(name) => wire::format_answer(&message, name, cut)
                .transpose()
                .map_err(decode_error)?,
            None => None,
        };
        if structured.is_some() && tool_calls.is_empty() && finish_reason == FinishReason::ToolCalls
        {
            finish_reason = FinishReason::Stop;
        }
        let usage = message.usage.to_usage();
        let answered = message.model.clone().filter(|m| !m.is_empty());
        let price_model = match &answered {
            Some(m) if self.profile.pricing.contains_key(m) => m.as_str(),
            _ => model.as_str(),
        };
        let cost = llm_core::cost::cost_usd(&self.profile, price_model, &usage);
        Ok(LlmResponse {
            content: structured.unwrap_or_else(|| message.text()),
            provider: self.name.clone(),
            provider_kind: KIND.to_string(),
            model: answered.unwrap_or_else(|| model.clone()),
            usage,
            cost,
            response_time: started.elapsed(),
            finish_reason,
            cached: false,
            attempts: Vec::new(),
            tool_calls,
            logprobs: Vec::new(),
            thinking: message.thinking(),
        })
    }

    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        self.require_key()?;
        let model = self.profile.model_for(&self.name, req)?;
        let (body, format) = self.body(req, &model, true)?;
        let resp = self.post(&body).await?;
        let decoder =
            Decoder::new(&self.name, http::request_id(resp.headers())).with_format_tool(format);
        let events = Box::pin(http::sse_events(&self.name, resp, self.profile.timeout));
        Ok(ResponseStream::new(
            &self.name,
            KIND,
            model,
            stream::decode(events, decoder),
        ))
    }

    async fn is_available(&self) -> bool {
        self.check().await.is_ok()
    }

    /// `GET /v1/models?limit=1` with a short timeout: any answer but a 2xx
    /// (401 for a bad key, 529 while overloaded, …) is unavailable and the
    /// error says why; without a key nothing is sent.
    async fn check(&self) -> Result<(), ProviderError> {
        self.require_key()?;
        let request = self
            .client
            .get(self.url("/v1/models"))
            .headers(self.headers.clone())
            .query(&[("limit", "1")]);
        http::probe(&self.name, request, self.profile.timeout, &error::Errors).await
    }

    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        self.require_key()?;
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut request = self
                .client
                .get(self.url("/v1/models"))
                .headers(self.headers.clone())
                .query(&[("limit", MODELS_PAGE)]);
            if let Some(a) = &after {
                request = request.query(&[("after_id", a.as_str())]);
            }
            let resp = error::send(&self.name, request, self.profile.timeout).await?;
            let page: ModelPage = http::read_json_max(
                &self.name,
                resp,
                self.profile.timeout,
                self.profile.max_response_bytes,
            )
            .await?;
            ids.extend(page.data.into_iter().filter_map(|m| m.id));
            match page.last_id {
                Some(last) if page.has_more && after.as_ref() != Some(&last) => after = Some(last),
                _ => break,
            }
        }
        Ok(ids)
    }
}
