//! The [`Provider`] implementation and the request mapping.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use futures::StreamExt;
use llm_core::http;
use llm_core::{
    async_trait, Capability, ConfigError, EmbeddingRequest, EmbeddingResponse, ImageInput,
    LlmRequest, LlmResponse, Provider, ProviderError, ProviderErrorKind, ProviderProfile,
    ProviderSpec, ResponseFormat, ResponseStream, Role, Usage,
};

use crate::api::{Api, MAX_IMAGE_BYTES};
use crate::config::{ApiMode, OllamaConfig};
use crate::error::{parse_error, refine_generation_error, ImageError};
use crate::pull::PullProgress;
use crate::service::OllamaService;
use crate::stream;
use crate::tools;
use crate::wire::{
    self, ChatMessage, ChatRequest, EmbedRequest, Format, GenerateRequest, LegacyEmbedRequest,
    Options,
};
use crate::KIND;

/// Longest NDJSON line accepted from a generation stream (the deprecated
/// `context` array of `/api/generate` can be large).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// The batch embeddings endpoint (Ollama 0.3.0 and later).
const EMBED_PATH: &str = "/api/embed";
/// The superseded one-text embeddings endpoint of older servers.
const LEGACY_EMBED_PATH: &str = "/api/embeddings";
/// Gin's body for a route the server does not know.
const UNKNOWN_ROUTE: &str = "404 page not found";

/// An Ollama server reached through its native API.
pub struct OllamaProvider {
    name: String,
    profile: ProviderProfile,
    config: OllamaConfig,
    api: Api,
    /// The service manager `prepare` uses (kept, so it can stop what it started).
    manager: std::sync::OnceLock<OllamaService>,
    /// Set once the server answered `/api/embed` with an unknown-route 404:
    /// later batches go straight to `/api/embeddings`.
    legacy_embed: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for OllamaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaProvider")
            .field("name", &self.name)
            .field("profile", &self.profile)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OllamaProvider {
    /// Builds an instance from its configuration section.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, ConfigError> {
        let config = OllamaConfig::from_spec(spec)?;
        Self::new(&spec.name, spec.profile.clone(), config)
            .map_err(|e| spec.error_at(e.key.as_deref(), e.message))
    }

    /// Builds an instance from typed settings.
    pub fn new(
        name: &str,
        profile: ProviderProfile,
        config: OllamaConfig,
    ) -> Result<Self, ConfigError> {
        let api = Api::new(name, &config, profile.timeout)?;
        Ok(Self {
            name: name.to_string(),
            profile,
            config,
            api,
            manager: std::sync::OnceLock::new(),
            legacy_embed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The kind-specific settings.
    pub fn config(&self) -> &OllamaConfig {
        &self.config
    }

    /// A service manager for this instance's server (start it, pull its
    /// required models).
    pub fn service(&self) -> Result<OllamaService, ConfigError> {
        OllamaService::new(&self.name, self.config.clone(), self.profile.timeout)
    }

    /// The service manager [`Provider::prepare`] used, if it ran.
    pub fn prepared_service(&self) -> Option<&OllamaService> {
        self.manager.get()
    }

    fn manager(&self) -> Result<&OllamaService, ProviderError> {
        if let Some(m) = self.manager.get() {
            return Ok(m);
        }
        let m = self
            .service()
            .map_err(|e| ProviderError::unsupported(&self.name, e.to_string()))?;
        Ok(self.manager.get_or_init(|| m))
    }

    /// Downloads `model` through `POST /api/pull`, calling `progress` for every
    /// progress line; see [`OllamaService::pull`].
    pub async fn pull<F>(&self, model: &str, mut progress: F) -> Result<(), ProviderError>
    where
        F: FnMut(&PullProgress) + Send,
    {
        self.api.pull(model, &mut progress).await
    }

    /// Refuses, before anything is sent, a request that needs a capability
    /// this instance does not have for `model` (the client never plans such
    /// a request here; this guards direct calls), naming the field.
    fn check_capabilities(&self, req: &LlmRequest, model: &str) -> Result<(), ProviderError> {
        for need in req.needs() {
            if self.supports(need, model) {
                continue;
            }
            let message = match need {
                Capability::Tools => "tools: tool calling needs `api = \"chat\"`: \
                                      `/api/generate` cannot carry tools, tool calls or \
                                      tool results"
                    .to_string(),
                Capability::Images => format!(
                    "image_url: model `{model}` is not among this instance's `vision_models`"
                ),
                other => format!(
                    "{}: Ollama does not support {}",
                    other.field(),
                    other.describe()
                ),
            };
            return Err(ProviderError::unsupported(&self.name, message)
                .with_code(format!("unsupported_{}", need_code(need))));
        }
        Ok(())
    }

    /// The images of every message as base64 (aligned with `req.messages`):
    /// `data:` URLs give their base64 part, `http(s)` URLs are fetched (at
    /// most [`MAX_IMAGE_BYTES`] each, all within the provider's timeout).
    async fn images<'r>(
        &self,
        req: &'r LlmRequest,
    ) -> Result<Vec<Vec<Cow<'r, str>>>, ProviderError> {
        let deadline = Instant::now() + self.profile.timeout;
        let mut out = Vec::with_capacity(req.messages.len());
        for (i, m) in req.messages.iter().enumerate() {
            let mut images = Vec::with_capacity(m.images.len());
            for (j, image) in m.images.iter().enumerate() {
                let left = deadline.saturating_duration_since(Instant::now());
                let data = self
                    .image(image, left)
                    .await
                    .map_err(|e| e.into_provider_error(&self.name, i, j))?;
                images.push(data);
            }
            out.push(images);
        }
        Ok(out)
    }

    async fn image<'r>(
        &self,
        image: &'r ImageInput,
        left: Duration,
    ) -> Result<Cow<'r, str>, ImageError> {
        if let Some(data) = image.data() {
            return Ok(Cow::Borrowed(data.base64));
        }
        if image.is_remote() {
            if !self.config.fetch_image_urls {
                return Err(ImageError::NotFetched);
            }
            return self
                .api
                .fetch_image(&image.url, left, MAX_IMAGE_BYTES)
                .await
                .map(Cow::Owned);
        }
        Err(ImageError::UnsupportedUrl {
            url: http::truncate_text(&image.url, 40),
        })
    }

    /// `POST /api/embed` with the whole batch; `Ok(None)` when the server
    /// has no such route (an old server).
    async fn embed_batch(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        deadline: Instant,
    ) -> Result<Option<(Vec<Vec<f32>>, Usage)>, ProviderError> {
        let body = EmbedRequest {
            model,
            input: &req.inputs,
            keep_alive: self.config.keep_alive.as_ref(),
            dimensions: req.dimensions,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let resp = match http::send(
            &self.name,
            self.api.post(EMBED_PATH, &body),
            left,
            parse_error,
        )
        .await
        {
            Ok(resp) => resp,
            Err(e) if is_unknown_route(&e) => return Ok(None),
            Err(e) => return Err(refine_generation_error(e, model, EMBED_PATH)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let answer: wire::EmbedResponse = http::read_json(&self.name, resp, left).await?;
        if let Some(e) = &answer.error {
            return Err(ProviderError::new(
                &self.name,
                ProviderErrorKind::Http,
                e.message(),
            ));
        }
        let vectors = answer.embeddings.unwrap_or_default();
        if vectors.len() != req.inputs.len() {
            return Err(ProviderError::decode(
                &self.name,
                format!(
                    "`embeddings` holds {} vectors for {} inputs",
                    vectors.len(),
                    req.inputs.len()
                ),
            ));
        }
        let usage = Usage::new(answer.prompt_eval_count.unwrap_or(0), 0);
        Ok(Some((vectors, usage)))
    }

    /// `POST /api/embeddings`, one request per input, in order (servers
    /// before `/api/embed`). They report no token counts and cannot shorten
    /// vectors.
    async fn embed_legacy(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        deadline: Instant,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        if req.dimensions.is_some() {
            return Err(ProviderError::unsupported(
                &self.name,
                "dimensions: this Ollama server has no `/api/embed` endpoint, and \
                 `/api/embeddings` cannot shorten vectors; upgrade Ollama",
            )
            .with_code("unsupported_dimensions"));
        }
        let mut vectors = Vec::with_capacity(req.inputs.len());
        for input in &req.inputs {
            let body = LegacyEmbedRequest {
                model,
                prompt: input,
                keep_alive: self.config.keep_alive.as_ref(),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let resp = http::send(
                &self.name,
                self.api.post(LEGACY_EMBED_PATH, &body),
                left,
                parse_error,
            )
            .await
            .map_err(|mut e| {
                if is_unknown_route(&e) {
                    e.message = format!(
                        "{UNKNOWN_ROUTE}: this server has neither `{EMBED_PATH}` nor \
                         `{LEGACY_EMBED_PATH}`; it cannot embed text"
                    );
                    e
                } else {
                    refine_generation_error(e, model, LEGACY_EMBED_PATH)
                }
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            let answer: wire::LegacyEmbedResponse = http::read_json(&self.name, resp, left).await?;
            if let Some(e) = &answer.error {
                return Err(ProviderError::new(
                    &self.name,
                    ProviderErrorKind::Http,
                    e.message(),
                ));
            }
            let vector = answer.embedding.ok_or_else(|| {
                ProviderError::decode(&self.name, "the answer has no `embedding`")
            })?;
            vectors.push(vector);
        }
        Ok(vectors)
    }

    /// Sends the generation request for `model` and returns the response head.
    async fn send(
        &self,
        req: &LlmRequest,
        model: &str,
        stream: bool,
    ) -> Result<http::reqwest::Response, ProviderError> {
        self.check_capabilities(req, model)?;
        let images = self.images(req).await?;
        let path = self.config.api.path();
        let options = options(req, &self.config);
        let format = format(req);
        let keep_alive = self.config.keep_alive.as_ref();
        let builder = match self.config.api {
            ApiMode::Chat => self.api.post(
                path,
                &ChatRequest {
                    model,
                    messages: chat_messages(&self.name, req, &images)?,
                    stream,
                    format,
                    keep_alive,
                    tools: tools::tool_defs(req),
                    options,
                },
            ),
            ApiMode::Generate => {
                let (system, prompt) = generate_prompt(req);
                self.api.post(
                    path,
                    &GenerateRequest {
                        model,
                        prompt,
                        system,
                        stream,
                        format,
                        keep_alive,
                        images: images.iter().flatten().map(|i| i.as_ref()).collect(),
                        options,
                    },
                )
            }
        };
        http::send(&self.name, builder, self.profile.timeout, parse_error)
            .await
            .map_err(|e| refine_generation_error(e, model, path))
    }
}

/// Whether `err` is a 404 for a route the server does not know (rather than
/// for a model it does not have, which is a JSON `{"error":…}`).
fn is_unknown_route(err: &ProviderError) -> bool {
    err.status == Some(404) && err.message.trim() == UNKNOWN_ROUTE
}

/// The snake_case name of a capability, for error codes.
fn need_code(capability: Capability) -> &'static str {
    match capability {
        Capability::Tools => "tools",
        Capability::ForcedToolChoice => "tool_choice",
        Capability::SerialToolCalls => "parallel_tool_calls",
        Capability::JsonObject | Capability::JsonSchema => "response_format",
        Capability::Images => "image_url",
        Capability::Logprobs => "logprobs",
        Capability::Penalties => "penalties",
        Capability::Passthrough => "extra",
        _ => "unsupported",
    }
}

/// `format` of a request: `"json"` for JSON mode, the schema itself for a
/// JSON Schema (Ollama has no place for its `name`, `description` or
/// `strict`: the schema is always enforced by a grammar), none for text.
pub(crate) fn format(req: &LlmRequest) -> Option<Format<'_>> {
    match req.response_format.as_ref()? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(Format::Json("json")),
        ResponseFormat::JsonSchema { schema, .. } => Some(Format::Schema(schema)),
    }
}

/// Model parameters of a request: only what the caller (or `num_ctx` in the
/// configuration) set.
pub(crate) fn options<'a>(req: &'a LlmRequest, config: &OllamaConfig) -> Options<'a> {
    Options {
        temperature: req.temperature,
        top_p: req.top_p,
        stop: &req.stop,
        seed: req.seed,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        num_predict: req.max_tokens,
        num_ctx: config.num_ctx,
    }
}

/// `/api/chat` messages: the system prompt first (when set, even empty),
/// then the conversation with its images (base64, aligned with the
/// messages), assistant tool calls and tool results (see [`tools`]).
pub(crate) fn chat_messages<'a>(
    provider: &str,
    req: &'a LlmRequest,
    images: &'a [Vec<Cow<'_, str>>],
) -> Result<Vec<ChatMessage<'a>>, ProviderError> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if let Some(s) = req.system_prompt.as_deref() {
        out.push(ChatMessage::text(Role::System.as_str(), s));
    }
    let mut names = tools::CallNames::default();
    for (i, m) in req.messages.iter().enumerate() {
        let mut msg = ChatMessage::text(m.role.as_str(), &m.content);
        if let Some(images) = images.get(i) {
            msg.images = images.iter().map(|i| i.as_ref()).collect();
        }
        msg.tool_calls = tools::calls_out(provider, i, m)?;
        if m.role == Role::Tool {
            if let Some(id) = m.tool_call_id.as_deref() {
                msg.tool_name = names.get(id);
                msg.tool_call_id = Some(id);
            }
        }
        names.record(m);
        out.push(msg);
    }
    Ok(out)
}

/// `/api/generate` `system` and `prompt`.
///
/// The system prompt and any system messages become `system`. A single user
/// message is the prompt as it is; a longer conversation is written out as
/// `User: …` / `Assistant: …` paragraphs ending with `Assistant:`, which the
/// model's template then wraps as one user turn.
pub(crate) fn generate_prompt(req: &LlmRequest) -> (Option<String>, String) {
    let system: Vec<&str> = req
        .system_prompt
        .as_deref()
        .into_iter()
        .chain(
            req.messages
                .iter()
                .filter(|m| m.role == Role::System)
                .map(|m| m.content.as_str()),
        )
        .collect();
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    let turns: Vec<_> = req
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .collect();
    let prompt = match turns.as_slice() {
        [only] if only.role == Role::User => only.content.clone(),
        _ => {
            let mut p = String::new();
            for m in &turns {
                let who = if m.role == Role::User {
                    "User"
                } else {
                    "Assistant"
                };
                p.push_str(who);
                p.push_str(": ");
                p.push_str(&m.content);
                p.push_str("\n\n");
            }
            p.push_str("Assistant:");
            p
        }
    };
    (system, prompt)
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    fn profile(&self) -> &ProviderProfile {
        &self.profile
    }

    /// Tools with `api = "chat"` only (`/api/generate` cannot carry them);
    /// JSON mode and JSON Schema (`format`) and penalties (`options`) on both
    /// APIs; images for the profile's vision models; embeddings for the
    /// profile's `embedding_models`. Ollama cannot force a
    /// tool call, serialize tool calls, return logprobs here or take
    /// OpenAI-specific fields.
    fn supports(&self, capability: Capability, model: &str) -> bool {
        match capability {
            Capability::Tools => self.config.api == ApiMode::Chat,
            Capability::JsonObject | Capability::JsonSchema | Capability::Penalties => true,
            Capability::Images => self.profile.has_vision(model),
            Capability::Embeddings => self.profile.embedding_models.iter().any(|m| m == model),
            Capability::ForcedToolChoice
            | Capability::SerialToolCalls
            | Capability::Logprobs
            | Capability::Passthrough => false,
            _ => false,
        }
    }

    async fn generate(&self, req: &LlmRequest) -> Result<LlmResponse, ProviderError> {
        let started = Instant::now();
        let model = self.profile.model_for(&self.name, req)?;
        let resp = self.send(req, &model, false).await?;
        let left = self.profile.timeout.saturating_sub(started.elapsed());
        let mut body: wire::GenerationLine = http::read_json(&self.name, resp, left).await?;
        if let Some(e) = &body.error {
            return Err(ProviderError::new(
                &self.name,
                ProviderErrorKind::Http,
                e.message(),
            ));
        }
        let Some(text) = body.text() else {
            return Err(ProviderError::decode(
                &self.name,
                "the answer has neither `message.content` nor `response`",
            ));
        };
        let content = text.to_string();
        let tool_calls = (0u32..)
            .zip(body.take_tool_calls())
            .map(|(index, call)| tools::call_in(&self.name, index, call))
            .collect::<Result<Vec<_>, _>>()?;
        stream::log_metrics(&self.name, &body);
        let usage = stream::usage(&body);
        Ok(LlmResponse {
            content,
            provider: self.name.clone(),
            provider_kind: KIND.to_string(),
            // Priced by the client from the usage.
            cost: 0.0,
            model: body.model.clone().unwrap_or(model),
            usage,
            response_time: started.elapsed(),
            finish_reason: stream::finish_reason(
                body.done_reason.as_deref(),
                !tool_calls.is_empty(),
            ),
            cached: false,
            attempts: vec![],
            tool_calls,
            logprobs: Vec::new(),
            thinking: Vec::new(),
        })
    }

    async fn stream(&self, req: &LlmRequest) -> Result<ResponseStream, ProviderError> {
        let model = self.profile.model_for(&self.name, req)?;
        let resp = self.send(req, &model, true).await?;
        let lines = http::ndjson_lines(&self.name, resp, self.profile.timeout, MAX_LINE).boxed();
        let events = stream::decode(&self.name, lines);
        Ok(ResponseStream::new(&self.name, KIND, model, events))
    }

    /// Starts the local server when it is down (when `binary` exists) and,
    /// with `auto_download = true`, pulls missing `required_models`. Called by
    /// clients built with `prepare_providers(true)`, such as the `llm` command.
    async fn prepare(&self) -> Result<(), ProviderError> {
        // One shared start (and pull) per instance; a failure is typed so it
        // counts against this instance's health and the breaker can open.
        self.manager()?
            .prepare()
            .await
            .map_err(|e| e.to_provider_error(&self.name))
    }

    /// `POST /api/embed` with the whole batch (`dimensions` only when set,
    /// `keep_alive` from the configuration); `prompt_eval_count` is the
    /// usage. A server without that route (an unknown-route 404) gets one
    /// `POST /api/embeddings` per input instead, from then on.
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, ProviderError> {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + self.profile.timeout;
        let model = self.profile.embedding_model_for(&self.name, req)?;
        let done = |vectors, usage| {
            Ok(EmbeddingResponse::from_provider(
                &self.name, KIND, &model, vectors, usage,
            ))
        };
        if req.inputs.is_empty() {
            return done(Vec::new(), Usage::default());
        }
        if !self.legacy_embed.load(Ordering::Relaxed) {
            if let Some((vectors, usage)) = self.embed_batch(req, &model, deadline).await? {
                return done(vectors, usage);
            }
            tracing::info!(
                provider = %self.name,
                "the server has no /api/embed; using /api/embeddings one input at a time"
            );
            self.legacy_embed.store(true, Ordering::Relaxed);
        }
        let vectors = self.embed_legacy(req, &model, deadline).await?;
        done(vectors, Usage::default())
    }

    async fn is_available(&self) -> bool {
        self.api.probe().await
    }

    /// `GET /api/version`; the error says why it failed.
    async fn check(&self) -> Result<(), ProviderError> {
        self.api.check().await
    }

    async fn models(&self) -> Result<Vec<String>, ProviderError> {
        self.api.tags().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::Message;

    #[test]
    fn system_prompt_comes_first() {
        let req = LlmRequest::new("hi").system("be brief");
        let m = chat_messages("p", &req, &[]).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].role, m[0].content), ("system", "be brief"));
        assert_eq!((m[1].role, m[1].content), ("user", "hi"));
    }

    #[test]
    fn generate_prompt_of_one_message_is_the_message() {
        let req = LlmRequest::new("写一首诗").system("你是诗人");
        assert_eq!(
            generate_prompt(&req),
            (Some("你是诗人".to_string()), "写一首诗".to_string())
        );
    }

    #[test]
    fn generate_prompt_of_a_conversation() {
        let req = LlmRequest::from_messages(vec![
            Message::system("s1"),
            Message::user("a"),
            Message::assistant("b"),
            Message::user("c"),
        ])
        .system("s0");
        let (system, prompt) = generate_prompt(&req);
        assert_eq!(system.as_deref(), Some("s0\n\ns1"));
        assert_eq!(prompt, "User: a\n\nAssistant: b\n\nUser: c\n\nAssistant:");
    }
}
