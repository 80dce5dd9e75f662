//! [`LlmClient`]: the request's whole path, top to bottom.
//!
//! validate → cache lookup → (coalesce) → route → execute with fallback →
//! cache store → record metrics and trace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;

use crate::cache::{CacheKey, CachedResponse, MemoryCache, ResponseCache};
use crate::config::{
    CacheBackend, CacheMode, CachingConfig, Config, RoutingConfig, Secs, Strategy,
};
use crate::cost::cost_usd;
use crate::embed::{EmbeddingRequest, EmbeddingResponse};
use crate::error::{ConfigError, LlmError, ProviderError};
use crate::exec::{self, HealthReport, Instance, OpenedStream, ProviderHealth};
use crate::metrics::Telemetry;
use crate::provider::Provider;
use crate::router::{self, InstanceView, RoutePlan};
use crate::tokens;
use crate::types::{
    CacheDirective, LlmRequest, LlmResponse, ResponseStream, StreamEvent, ToolCallAssembler, Usage,
};
use crate::validate::validate;

type CallFuture = BoxFuture<'static, Result<LlmResponse, LlmError>>;
type SharedCall = Shared<CallFuture>;

/// How responses are cached.
struct CacheLayer {
    backend: Arc<dyn ResponseCache>,
    ttl: Duration,
    mode: CacheMode,
    max_temperature: Option<f32>,
}

struct Inner {
    instances: Vec<Instance>,
    prepare: bool,
    routing: RoutingConfig,
    cache: Option<CacheLayer>,
    telemetry: Telemetry,
    rng: Mutex<fastrand::Rng>,
    inflight: Mutex<HashMap<CacheKey, WeakShared<CallFuture>>>,
    cache_writes: Arc<tokio::sync::Semaphore>,
}

/// Most cache writes to a remote backend in flight at once.
pub const MAX_BACKGROUND_WRITES: usize = 256;

/// One client for many LLM providers: routing, fallback, retries, circuit
/// breaking, caching and metrics. Cheap to clone; clones share everything.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llm_core::client::LlmClient;
/// use llm_core::testing::{Reply, ScriptedProvider};
/// use llm_core::{LlmRequest, ProviderError};
///
/// let openai = ScriptedProvider::new("openai").kind("openai")
///     .otherwise(Reply::Error(ProviderError::http("openai", 401, "bad key")));
/// let ollama = ScriptedProvider::new("ollama").kind("ollama").local(true)
///     .otherwise(Reply::text("你好"));
/// let client = LlmClient::builder()
///     .provider(Arc::new(openai))
///     .provider(Arc::new(ollama))
///     .build()
///     .unwrap();
///
/// let resp = client.generate(LlmRequest::new("Hello").provider("openai")).await.unwrap();
/// assert_eq!(resp.content, "你好");
/// assert_eq!(resp.provider, "ollama");
/// assert_eq!(resp.attempts.len(), 2); // openai failed (401, no retry), then ollama
/// # });
/// ```
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field(
                "providers",
                &self
                    .inner
                    .instances
                    .iter()
                    .map(|i| i.provider.name())
                    .collect::<Vec<_>>(),
            )
            .field("strategy", &self.inner.routing.strategy)
            .field(
                "cache",
                &self.inner.cache.as_ref().map(|c| c.backend.name()),
            )
            .finish()
    }
}

/// Builds an [`LlmClient`] in code.
pub struct LlmClientBuilder {
    providers: Vec<Arc<dyn Provider>>,
    routing: RoutingConfig,
    caching: CachingConfig,
    cache: Option<Arc<dyn ResponseCache>>,
    telemetry: Telemetry,
    seed: Option<u64>,
    prepare: bool,
}

impl Default for LlmClientBuilder {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            routing: RoutingConfig::default(),
            caching: CachingConfig::default(),
            cache: None,
            telemetry: Telemetry::disabled(),
            seed: None,
            prepare: false,
        }
    }
}

impl LlmClientBuilder {
    /// Adds a provider instance (routing order ties follow the order added).
    pub fn provider(mut self, p: Arc<dyn Provider>) -> Self {
        self.providers.push(p);
        self
    }

    /// Adds several provider instances.
    pub fn providers(mut self, ps: impl IntoIterator<Item = Arc<dyn Provider>>) -> Self {
        self.providers.extend(ps);
        self
    }

    /// Replaces the routing configuration.
    pub fn routing(mut self, routing: RoutingConfig) -> Self {
        self.routing = routing;
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, s: Strategy) -> Self {
        self.routing.strategy = s;
        self
    }

    /// Replaces the caching configuration (the backend is built from it unless
    /// [`cache`](Self::cache) gives one).
    pub fn caching(mut self, caching: CachingConfig) -> Self {
        self.caching = caching;
        self
    }

    /// Uses this cache backend.
    pub fn cache(mut self, cache: Arc<dyn ResponseCache>) -> Self {
        self.cache = Some(cache);
        self.caching.enabled = true;
        self
    }

    /// Turns caching off.
    pub fn no_cache(mut self) -> Self {
        self.caching.enabled = false;
        self.cache = None;
        self
    }

    /// Records metrics with this recorder.
    pub fn telemetry(mut self, t: Telemetry) -> Self {
        self.telemetry = t;
        self
    }

    /// Takes the providers, routing, caching and metrics settings of a loaded
    /// configuration.
    pub fn config(self, config: &Config) -> Result<Self, LlmError> {
        let providers = config.build_providers()?;
        let telemetry = if config.monitoring.enabled {
            Telemetry::global().with_models(known_models(&providers))
        } else {
            Telemetry::disabled()
        };
        Ok(self
            .providers(providers)
            .routing(config.routing.clone())
            .caching(config.caching.clone())
            .telemetry(telemetry))
    }

    /// Calls each provider's [`Provider::prepare`] once, before its first
    /// attempt (e.g. starts a local Ollama server). Off by default: a library
    /// should not start processes unless asked to.
    pub fn prepare_providers(mut self, on: bool) -> Self {
        self.prepare = on;
        self
    }

    /// Seeds the client's randomness (jitter, weighted order) for reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<LlmClient, LlmError> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.providers {
            if !seen.insert(p.name().to_string()) {
                return Err(ConfigError::new(format!(
                    "provider instance `{}` is configured twice",
                    p.name()
                ))
                .into());
            }
        }
        let cache = if self.caching.enabled {
            let backend = match self.cache {
                Some(c) => c,
                None => build_cache(&self.caching)?,
            };
            Some(CacheLayer {
                backend,
                ttl: self.caching.ttl.0,
                mode: self.caching.mode,
                max_temperature: self.caching.max_temperature,
            })
        } else {
            None
        };
        let instances = self
            .providers
            .into_iter()
            .map(|provider| {
                // A half-open trial abandoned by its caller frees up after one timeout.
                let ttl = provider.profile().timeout.max(Duration::from_secs(1));
                Instance {
                    health: Arc::new(ProviderHealth::new(&self.routing.health, ttl)),
                    provider,
                }
            })
            .collect();
        let rng = self
            .seed
            .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        let instances: Vec<Instance> = instances;
        for i in &instances {
            self.telemetry
                .circuit(i.provider.name(), exec::CircuitState::Closed);
        }
        self.telemetry.active_providers(instances.len());
        Ok(LlmClient {
            inner: Arc::new(Inner {
                instances,
                prepare: self.prepare,
                routing: self.routing,
                cache,
                telemetry: self.telemetry,
                rng: Mutex::new(rng),
                inflight: Mutex::new(HashMap::new()),
                cache_writes: Arc::new(tokio::sync::Semaphore::new(MAX_BACKGROUND_WRITES)),
            }),
        })
    }
}

fn build_cache(cfg: &CachingConfig) -> Result<Arc<dyn ResponseCache>, LlmError> {
    match cfg.backend {
        CacheBackend::Memory => Ok(Arc::new(MemoryCache::new(cfg.max_bytes))),
        CacheBackend::Redis => match crate::registry::cache_plugin("redis") {
            Some(plugin) => Ok((plugin.build)(cfg)?),
            None => Err(ConfigError::new(
                "cache backend `redis` is not compiled in; enable the `redis` cargo feature of `llm-router`",
            )
            .with_key("caching.backend")
            .into()),
        },
    }
}

/// Every model a set of providers serves, for bounded metric labels.
pub fn known_models(providers: &[Arc<dyn Provider>]) -> Vec<String> {
    let mut out = Vec::new();
    for p in providers {
        let profile = p.profile();
        out.extend(profile.models.iter().cloned());
        out.extend(profile.default_model.iter().cloned());
        out.extend(profile.embedding_models.iter().cloned());
    }
    out.sort();
    out.dedup();
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LlmClient {
    /// A builder for programmatic set-up.
    pub fn builder() -> LlmClientBuilder {
        LlmClientBuilder::default()
    }

    /// A client for a loaded configuration: its enabled providers, routing,
    /// caching and metrics settings.
    pub fn from_config(config: &Config) -> Result<Self, LlmError> {
        Self::builder().config(config)?.build()
    }

    /// The configured provider instances, in order.
    pub fn providers(&self) -> Vec<Arc<dyn Provider>> {
        self.inner
            .instances
            .iter()
            .map(|i| i.provider.clone())
            .collect()
    }

    /// The instance called `name`.
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.inner
            .instances
            .iter()
            .find(|i| i.provider.name() == name)
            .map(|i| i.provider.clone())
    }

    /// The metrics recorder in use.
    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// Each instance's health, from cached state (no probes).
    pub fn health(&self) -> Vec<HealthReport> {
        let now = Instant::now();
        self.inner
            .instances
            .iter()
            .map(|i| i.health.report(i.provider.as_ref(), now))
            .collect()
    }

    /// Probes every instance now (concurrently) and returns the fresh health.
    pub async fn refresh_health(&self) -> Vec<HealthReport> {
        let probes = self
            .inner
            .instances
            .iter()
            .map(|i| async move { i.health.probe(i.provider.as_ref()).await });
        futures::future::join_all(probes).await;
        self.inner
            .telemetry
            .active_providers(exec::active_count(&self.inner.instances));
        self.health()
    }

    /// How `req` would be routed now: classification, primary, fallback
    /// sequence and skipped providers. Makes no upstream call.
    pub fn explain(&self, req: &LlmRequest) -> RoutePlan {
        self.plan(req, false)
    }

    /// The route plan; `refresh` (a request on its way) also starts stale
    /// probes and leaves out the reasons nobody reads unless the plan is
    /// logged (at `debug`).
    fn plan(&self, req: &LlmRequest, refresh: bool) -> RoutePlan {
        let views = self.views(refresh);
        let explain = !refresh || tracing::enabled!(tracing::Level::DEBUG);
        let mut rng = lock(&self.inner.rng);
        router::plan(&self.inner.routing, req, &views, &mut rng, explain)
    }

    /// What the router sees of every instance now; with `refresh`, stale
    /// availability probes are started in the background (chat and
    /// embeddings alike, so an instance that comes back is seen again).
    fn views(&self, refresh: bool) -> Vec<InstanceView<'_>> {
        let now = Instant::now();
        self.inner
            .instances
            .iter()
            .map(|i| {
                if refresh {
                    let client = Arc::downgrade(&self.inner);
                    i.health.refresh_in_background(i.provider.clone(), move || {
                        // Background probes change availability: keep the gauge true.
                        if let Some(inner) = client.upgrade() {
                            inner
                                .telemetry
                                .active_providers(exec::active_count(&inner.instances));
                        }
                    });
                }
                InstanceView {
                    provider: &i.provider,
                    skip: i.health.skip_reason(now),
                    latency: i.health.latency(),
                }
            })
            .collect()
    }

    fn check(&self, req: &LlmRequest) -> Result<(), LlmError> {
        validate(req)?;
        let cfg = &self.inner.routing;
        // Only the instances the request may use count below (all of them
        // unless it has allowed models).
        let allowed = || {
            self.inner
                .instances
                .iter()
                .map(|i| i.provider.as_ref())
                .filter(|p| router::allowed(cfg, *p, req))
        };
        if let Some(filter) = &req.allowed_models {
            if allowed().next().is_none() {
                return Err(LlmError::NotAllowed {
                    globs: filter.globs().to_vec(),
                });
            }
        }
        // A field no configured instance can honour is refused before routing,
        // naming the field, rather than silently dropped or sent nowhere.
        // One instance must have every capability the request needs; when
        // none does, the error names what the closest one lacks.
        let needs = req.needs();
        if !needs.is_empty() {
            let mut closest: Option<(usize, crate::types::Capability)> = None;
            for p in allowed() {
                let Some(first_missing) = router::missing_capability(cfg, p, req, &needs) else {
                    closest = None;
                    break;
                };
                let missing = needs
                    .iter()
                    .filter(|n| {
                        router::missing_capability(cfg, p, req, std::slice::from_ref(n)).is_some()
                    })
                    .count();
                if closest.is_none_or(|(m, _)| missing < m) {
                    closest = Some((missing, first_missing));
                }
            }
            let served = closest.is_none() && allowed().next().is_some();
            if !served {
                let need = closest.map_or(needs[0], |(_, c)| c);
                return Err(LlmError::Unsupported {
                    field: unsupported_field(need, req),
                    capability: need,
                });
            }
        }
        if let Some(name) = &req.provider {
            if self.provider(name).is_none() {
                return Err(LlmError::UnknownProvider {
                    name: name.clone(),
                    known: self
                        .inner
                        .instances
                        .iter()
                        .map(|i| i.provider.name().to_string())
                        .collect(),
                });
            }
        }
        Ok(())
    }

    fn cache_key(&self, req: &LlmRequest) -> Option<CacheKey> {
        let layer = self.inner.cache.as_ref()?;
        if req.cache == CacheDirective::Bypass {
            return None;
        }
        // An unset temperature is the provider's default: counted as 1.0.
        if layer
            .max_temperature
            .is_some_and(|t| req.temperature.unwrap_or(1.0) > t)
        {
            return None;
        }
        Some(CacheKey::for_request(req))
    }

    async fn lookup(&self, key: Option<&CacheKey>, req: &LlmRequest) -> Option<CachedResponse> {
        let layer = self.inner.cache.as_ref()?;
        let key = key?;
        if req.cache != CacheDirective::Use || layer.mode == CacheMode::WriteOnly {
            return None;
        }
        match layer.backend.get(key).await {
            Ok(Some(hit)) => {
                self.inner.telemetry.cache("hit");
                Some(hit)
            }
            Ok(None) => {
                self.inner.telemetry.cache("miss");
                None
            }
            Err(e) => {
                self.inner.telemetry.cache("error");
                tracing::debug!(error = %e, "cache lookup failed; treated as a miss");
                None
            }
        }
    }

    /// Stores an answer: inline in an in-process cache (sub-microsecond),
    /// in the background for any other backend, at most
    /// [`MAX_BACKGROUND_WRITES`] at a time; a write beyond that is skipped and
    /// counted (`llm_cache_requests_total{result="write_skipped"}`), a failed
    /// one is counted as `error`. Never delays the answer.
    async fn store(&self, key: Option<&CacheKey>, value: CachedResponse) {
        let (Some(layer), Some(key)) = (self.inner.cache.as_ref(), key) else {
            return;
        };
        if layer.mode == CacheMode::ReadOnly {
            return;
        }
        let telemetry = self.inner.telemetry.clone();
        if layer.backend.is_local() {
            if let Err(e) = layer.backend.set(key, &value, layer.ttl).await {
                telemetry.cache("error");
                tracing::debug!(error = %e, "cache store failed");
            }
            return;
        }
        let (Ok(permit), Ok(handle)) = (
            self.inner.cache_writes.clone().try_acquire_owned(),
            tokio::runtime::Handle::try_current(),
        ) else {
            telemetry.cache("write_skipped");
            tracing::debug!("cache store skipped: too many writes in flight");
            return;
        };
        let backend = layer.backend.clone();
        let ttl = layer.ttl;
        let key = *key;
        handle.spawn(async move {
            if let Err(e) = backend.set(&key, &value, ttl).await {
                telemetry.cache(if e.too_large { "too_large" } else { "error" });
                tracing::debug!(error = %e, "cache store failed");
            }
            drop(permit);
        });
    }

    /// Generates an answer, routing, falling back and caching as configured.
    pub async fn generate(&self, req: LlmRequest) -> Result<LlmResponse, LlmError> {
        let span = client_span("generate", &req);
        async move {
            let started = Instant::now();
            self.check(&req)?;
            let key = self.cache_key(&req);
            if let Some(hit) = self.lookup(key.as_ref(), &req).await {
                tracing::Span::current().record("llm.cache", "hit");
                return Ok(self.hit_response(hit, started));
            }
            tracing::Span::current()
                .record("llm.cache", if key.is_some() { "miss" } else { "off" });
            let resp = match key {
                Some(key) => self.coalesced(key, req).await?,
                None => self.execute(Arc::new(req), None).await?,
            };
            record_response(&resp);
            Ok(resp)
        }
        .instrument(span)
        .await
    }

    fn hit_response(&self, hit: CachedResponse, started: Instant) -> LlmResponse {
        // The same label as the call that stored it: the configured model.
        let label = hit.route_model.as_deref().unwrap_or(&hit.model);
        self.inner
            .telemetry
            .request("chat", &hit.provider, label, "cache_hit");
        LlmResponse {
            content: hit.content,
            provider: hit.provider,
            provider_kind: hit.provider_kind,
            model: hit.model,
            usage: hit.usage,
            cost: 0.0,
            response_time: started.elapsed(),
            finish_reason: hit.finish_reason,
            cached: true,
            attempts: Vec::new(),
            tool_calls: hit.tool_calls,
            logprobs: hit.logprobs,
            thinking: hit.thinking,
        }
    }

    /// Identical requests in flight share one upstream call.
    async fn coalesced(&self, key: CacheKey, req: LlmRequest) -> Result<LlmResponse, LlmError> {
        // Declared before `call`, so it drops after it: when the last waiter
        // goes away (finished or cancelled), the entry goes too.
        let _entry = InflightEntry {
            inner: &self.inner,
            key,
        };
        let call: SharedCall = {
            let mut map = lock(&self.inner.inflight);
            match map.get(&key).and_then(WeakShared::upgrade) {
                Some(existing) => existing,
                None => {
                    let this = self.clone();
                    let fut: CallFuture =
                        async move { this.execute(Arc::new(req), Some(&key)).await }.boxed();
                    let shared = fut.shared();
                    if let Some(weak) = shared.downgrade() {
                        map.insert(key, weak);
                    }
                    shared
                }
            }
        };
        call.await
    }

    /// How many distinct requests are in flight in the coalescing map (for
    /// monitoring; entries leave when their last waiter finishes or is dropped).
    pub fn inflight_requests(&self) -> usize {
        lock(&self.inner.inflight).len()
    }

    async fn execute(
        &self,
        req: Arc<LlmRequest>,
        key: Option<&CacheKey>,
    ) -> Result<LlmResponse, LlmError> {
        let started = Instant::now();
        let plan = self.plan(&req, true);
        tracing::debug!(plan = %plan, "routing");
        let out = self
            .executor()
            .run(&plan, &req, |p, r| async move { p.generate(&r).await })
            .await?;
        let mut resp = out.value;
        resp.attempts = out.attempts;
        Ok(self
            .complete(resp, &out.instance, &out.request, key, started)
            .await)
    }

    fn executor(&self) -> exec::Executor<'_> {
        let inner = &self.inner;
        exec::Executor {
            cfg: &inner.routing,
            prepare: inner.prepare,
            instances: &inner.instances,
            telemetry: &inner.telemetry,
            rng: &inner.rng,
        }
    }

    /// The one place where a successful answer ends, whole or streamed:
    /// usage (estimated only when the provider reported none), cost, metrics
    /// and the cache entry, all under the model the request resolved to.
    async fn complete(
        &self,
        mut resp: LlmResponse,
        inst: &Instance,
        request: &LlmRequest,
        key: Option<&CacheKey>,
        started: Instant,
    ) -> LlmResponse {
        let route_model = request.model.clone().unwrap_or_default();
        if resp.usage.total_tokens == 0 {
            let answer = answer_text(&resp.content, &resp.tool_calls);
            resp.usage = if resp.thinking.is_empty() {
                tokens::estimate_usage(request, &answer)
            } else {
                // Reasoning is generated (and billed) output too.
                tokens::estimate_usage(request, &with_thinking(answer, &resp.thinking))
            };
        }
        resp.cost = price(
            inst.provider.as_ref(),
            &route_model,
            &resp.model,
            &resp.usage,
        );
        resp.response_time = started.elapsed();
        self.record_success(&resp, &route_model);
        if key.is_some() {
            let mut entry = CachedResponse::from_response(&resp);
            entry.route_model = Some(route_model);
            self.store(key, entry).await;
        }
        resp
    }

    fn record_success(&self, resp: &LlmResponse, model: &str) {
        let t = &self.inner.telemetry;
        t.request("chat", &resp.provider, model, "success");
        t.latency(
            "chat",
            &resp.provider,
            model,
            resp.response_time.as_secs_f64(),
        );
        t.tokens("chat", &resp.provider, model, &resp.usage);
        t.cost("chat", &resp.provider, model, resp.cost);
    }

    /// Streams an answer. Fallback and retries apply until the first event has
    /// been received; after that an upstream failure ends the stream with an
    /// error item, never a silent end. A completed stream is cached; a cache
    /// hit is replayed as a stream.
    pub async fn stream(&self, req: LlmRequest) -> Result<ResponseStream, LlmError> {
        let span = client_span("stream", &req);
        let started = Instant::now();
        self.check(&req)?;
        let key = self.cache_key(&req);
        if let Some(hit) = self.lookup(key.as_ref(), &req).await {
            span.record("llm.cache", "hit");
            return Ok(ResponseStream::replay(self.hit_response(hit, started)));
        }
        let plan = self.plan(&req, true);
        let req = Arc::new(req);
        let inner = &self.inner;
        let out = self
            .executor()
            .run(&plan, &req, exec::open_stream)
            .instrument(span.clone())
            .await?;
        let model = out.request.model.clone().unwrap_or_default();
        let OpenedStream {
            first,
            rest,
            first_event_after,
        } = out.value;
        inner.telemetry.ttft(
            out.instance.provider.name(),
            &model,
            first_event_after.as_secs_f64(),
        );
        let (name, kind, reported_model) = (
            rest.provider.clone(),
            rest.provider_kind.clone(),
            rest.model.clone(),
        );
        let state = StreamState {
            client: self.clone(),
            instance: out.instance,
            request: out.request,
            key,
            first: Some(first),
            inner: rest.into_inner(),
            text: String::new(),
            calls: ToolCallAssembler::default(),
            logprobs: Vec::new(),
            thinking: crate::types::ThinkingAssembler::default(),
            usage: None,
            started,
            reported_model: reported_model.clone(),
            finished: false,
            span,
            deadline: started
                .checked_add(inner.routing.deadline.0)
                .unwrap_or_else(|| started + Duration::from_secs(Secs::MAX_SECS)),
        };
        let events = futures::stream::unfold(state, StreamState::next);
        let mut s = ResponseStream::new(name, kind, reported_model, events);
        s.attempts = out.attempts;
        Ok(s)
    }
}

impl LlmClient {
    /// Embeds a batch of texts: one vector per input, in order.
    ///
    /// Routed by model, never by task class: only instances listing the
    /// model in `embedding_models` are tried (retries, breakers and the
    /// deadline as for chat), and a fallback never changes the model, since
    /// vectors of different models are not comparable. With the cache on,
    /// each input is cached on its own (keyed by model, dimensions and text):
    /// only the inputs not seen before are sent upstream, and the answer is
    /// reassembled in order.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use llm_core::testing::ScriptedProvider;
    /// use llm_core::{EmbeddingRequest, LlmClient, ProviderProfile};
    ///
    /// let p = ScriptedProvider::new("ollama").profile(ProviderProfile {
    ///     embedding_models: vec!["nomic-embed-text".into()],
    ///     ..Default::default()
    /// });
    /// let client = LlmClient::builder().provider(Arc::new(p)).build().unwrap();
    /// let req = EmbeddingRequest::new(["a", "b"]).model("nomic-embed-text");
    /// let resp = client.embed(req.clone()).await.unwrap();
    /// assert_eq!(resp.vectors.len(), 2);
    /// let again = client.embed(req).await.unwrap();
    /// assert_eq!((again.cached_inputs, again.vectors), (2, resp.vectors));
    /// # });
    /// ```
    pub async fn embed(&self, req: EmbeddingRequest) -> Result<EmbeddingResponse, LlmError> {
        let started = Instant::now();
        let model = self.embedding_model(&req)?;
        let span = tracing::info_span!(
            "llm.client",
            otel.name = "embed",
            gen_ai.operation.name = "embeddings",
            gen_ai.request.model = model.as_str(),
            llm.inputs = req.inputs.len(),
            gen_ai.system = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            llm.provider = tracing::field::Empty,
            llm.cached_inputs = tracing::field::Empty,
        );
        async move {
            let mut req = req;
            req.model = Some(model.clone());
            let resp = self.embed_resolved(req, &model, started).await?;
            let span = tracing::Span::current();
            span.record("gen_ai.system", resp.provider_kind.as_str());
            span.record("gen_ai.usage.input_tokens", resp.usage.prompt_tokens);
            span.record("llm.provider", resp.provider.as_str());
            span.record("llm.cached_inputs", resp.cached_inputs);
            Ok(resp)
        }
        .instrument(span)
        .await
    }

    /// The embedding model [`embed`](Self::embed) would use for `req` (its
    /// `model`, else `routing.default_embedding_model`, else the only one
    /// configured), checked against the configuration: what a gateway
    /// prices and checks a caller's allowed models against.
    pub fn embedding_model(&self, req: &EmbeddingRequest) -> Result<String, LlmError> {
        let invalid = |field: &'static str, message: &str| {
            LlmError::from(crate::error::ValidationError {
                field,
                message: message.to_string(),
            })
        };
        if req.inputs.is_empty() {
            return Err(invalid("input", "must contain at least one text"));
        }
        if req.dimensions == Some(0) {
            return Err(invalid("dimensions", "must be at least 1"));
        }
        if let Some(name) = &req.provider {
            if self.provider(name).is_none() {
                return Err(LlmError::UnknownProvider {
                    name: name.clone(),
                    known: self
                        .inner
                        .instances
                        .iter()
                        .map(|i| i.provider.name().to_string())
                        .collect(),
                });
            }
        }
        let mut known: Vec<String> = self
            .inner
            .instances
            .iter()
            .filter(|i| {
                req.provider
                    .as_deref()
                    .is_none_or(|n| i.provider.name() == n)
            })
            .flat_map(|i| i.provider.profile().embedding_models.iter().cloned())
            .collect();
        known.sort();
        known.dedup();
        let model = req
            .model
            .clone()
            .or_else(|| self.inner.routing.default_embedding_model.clone())
            .or_else(|| (known.len() == 1).then(|| known[0].clone()));
        match model {
            Some(m) if known.contains(&m) => {
                if let Some(filter) = &req.allowed_models {
                    let served_here = self.inner.instances.iter().any(|i| {
                        let p = i.provider.as_ref();
                        req.provider.as_deref().is_none_or(|n| p.name() == n)
                            && p.profile().embedding_models.contains(&m)
                            && router::embedding_allowed(p, &m, Some(filter))
                    });
                    if !served_here {
                        return Err(LlmError::NotAllowed {
                            globs: filter.globs().to_vec(),
                        });
                    }
                }
                Ok(m)
            }
            m => Err(LlmError::UnknownEmbeddingModel {
                model: m.unwrap_or_default(),
                known,
            }),
        }
    }

    async fn embed_resolved(
        &self,
        req: EmbeddingRequest,
        model: &str,
        started: Instant,
    ) -> Result<EmbeddingResponse, LlmError> {
        let layer = self
            .inner
            .cache
            .as_ref()
            .filter(|_| req.cache != CacheDirective::Bypass);
        let keys: Vec<CacheKey> = match layer {
            Some(_) => CacheKey::for_embeddings(
                model,
                req.dimensions,
                req.inputs.iter().map(String::as_str),
            ),
            None => Vec::new(),
        };
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; req.inputs.len()];
        let mut looked_up = false;
        if let Some(layer) = layer {
            if req.cache == CacheDirective::Use && layer.mode != CacheMode::WriteOnly {
                looked_up = true;
                match layer.backend.get_vectors(&keys).await {
                    Ok(found) if found.len() == vectors.len() => vectors = found,
                    Ok(_) => self.inner.telemetry.cache("error"),
                    Err(e) => {
                        self.inner.telemetry.cache("error");
                        tracing::debug!(error = %e, "embedding cache lookup failed; misses");
                    }
                }
            }
        }
        let cached_inputs = vectors.iter().filter(|v| v.is_some()).count();
        if looked_up {
            let t = &self.inner.telemetry;
            t.cache_n("hit", cached_inputs);
            t.cache_n("miss", vectors.len() - cached_inputs);
        }
        // The texts to send: each distinct missing text once.
        let mut send: Vec<String> = Vec::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        let mut wanted: Vec<(usize, usize)> = Vec::new(); // (input index, sent index)
        for (i, text) in req.inputs.iter().enumerate() {
            if vectors[i].is_some() {
                continue;
            }
            let slot = *slot_of.entry(text.as_str()).or_insert_with(|| {
                send.push(text.clone());
                send.len() - 1
            });
            wanted.push((i, slot));
        }
        if send.is_empty() {
            self.inner
                .telemetry
                .request("embeddings", "cache", model, "cache_hit");
            return Ok(EmbeddingResponse {
                vectors: vectors.into_iter().flatten().collect(),
                model: model.to_string(),
                provider: String::new(),
                provider_kind: String::new(),
                usage: Usage::default(),
                cost: 0.0,
                cached_inputs,
                attempts: Vec::new(),
                response_time: started.elapsed(),
            });
        }
        // The misses only (the whole batch is not copied for that).
        let upstream = Arc::new(EmbeddingRequest {
            inputs: send,
            model: req.model.clone(),
            provider: req.provider.clone(),
            dimensions: req.dimensions,
            user: req.user.clone(),
            cache: req.cache,
            allowed_models: req.allowed_models.clone(),
        });
        let cached_len = vectors.iter().flatten().map(Vec::len).next();
        let plan = {
            let views = self.views(true);
            let mut rng = lock(&self.inner.rng);
            router::plan_embeddings(
                &self.inner.routing,
                model,
                req.provider.as_deref(),
                req.allowed_models.as_ref(),
                &views,
                &mut rng,
            )
        };
        let out = self
            .executor()
            .run(&plan, &upstream, |p, r| async move {
                let resp = p.embed(&r).await?;
                // A provider that answers with another count of vectors
                // cannot be reassembled: the next one is tried.
                if resp.vectors.len() != r.inputs.len() {
                    return Err(ProviderError::decode(
                        p.name(),
                        format!(
                            "{} vectors for {} inputs",
                            resp.vectors.len(),
                            r.inputs.len()
                        ),
                    ));
                }
                // Vectors of one model have one length (the asked one, when
                // dimensions were given, and that of any cached vector): a
                // provider that answers otherwise is not mixed in.
                let want = r.dimensions.map(|d| d as usize).or(cached_len);
                let first = resp.vectors.first().map_or(0, Vec::len);
                let bad = resp.vectors.iter().find(|v| {
                    v.is_empty() || v.len() != first || want.is_some_and(|w| v.len() != w)
                });
                if let Some(v) = bad {
                    return Err(ProviderError::decode(
                        p.name(),
                        format!(
                            "a vector of {} values where {} were expected",
                            v.len(),
                            want.unwrap_or(first)
                        ),
                    ));
                }
                Ok(resp)
            })
            .await?;
        let mut fresh = out.value;
        if fresh.usage.prompt_tokens == 0 {
            let tokens: u64 = upstream
                .inputs
                .iter()
                .map(|t| tokens::estimate_tokens(t))
                .fold(0u64, u64::saturating_add);
            fresh.usage = Usage::new(tokens, 0);
        }
        let provider = out.instance.provider.clone();
        // Embeddings are priced only by the model's own input price; the
        // instance's chat fallback price (`cost_per_1k_tokens`) does not apply.
        let cost = provider
            .profile()
            .pricing
            .get(model)
            .filter(|_| !provider.profile().local)
            .map_or(0.0, |price| {
                crate::cost::pico_to_usd(
                    (price.input_per_1m.max(0.0) * 1e6).round() as u128
                        * u128::from(fresh.usage.prompt_tokens),
                )
            });
        let elapsed = started.elapsed();
        let t = &self.inner.telemetry;
        t.request("embeddings", provider.name(), model, "success");
        t.latency("embeddings", provider.name(), model, elapsed.as_secs_f64());
        t.tokens("embeddings", provider.name(), model, &fresh.usage);
        t.cost("embeddings", provider.name(), model, cost);
        if let (Some(layer), false) = (layer, keys.is_empty()) {
            if layer.mode != CacheMode::ReadOnly {
                let items: Vec<(CacheKey, Vec<f32>)> = wanted
                    .iter()
                    .map(|&(i, slot)| (keys[i], fresh.vectors[slot].clone()))
                    .collect();
                self.store_vectors(layer, items).await;
            }
        }
        for &(i, slot) in &wanted {
            vectors[i] = Some(fresh.vectors[slot].clone());
        }
        Ok(EmbeddingResponse {
            vectors: vectors.into_iter().flatten().collect(),
            model: model.to_string(),
            provider: provider.name().to_string(),
            provider_kind: provider.kind().to_string(),
            usage: fresh.usage,
            cost,
            cached_inputs,
            attempts: out.attempts,
            response_time: elapsed,
        })
    }

    /// Stores vectors: inline in an in-process cache, else in the background.
    async fn store_vectors(&self, layer: &CacheLayer, items: Vec<(CacheKey, Vec<f32>)>) {
        let telemetry = self.inner.telemetry.clone();
        if layer.backend.is_local() {
            if let Err(e) = layer.backend.set_vectors(&items, layer.ttl).await {
                telemetry.cache("error");
                tracing::debug!(error = %e, "embedding cache store failed");
            }
            return;
        }
        let (Ok(permit), Ok(handle)) = (
            self.inner.cache_writes.clone().try_acquire_owned(),
            tokio::runtime::Handle::try_current(),
        ) else {
            telemetry.cache("write_skipped");
            return;
        };
        let backend = layer.backend.clone();
        let ttl = layer.ttl;
        handle.spawn(async move {
            if let Err(e) = backend.set_vectors(&items, ttl).await {
                telemetry.cache(if e.too_large { "too_large" } else { "error" });
                tracing::debug!(error = %e, "embedding cache store failed");
            }
            drop(permit);
        });
    }
}

/// Removes a coalescing entry once no waiter holds its call any more.
struct InflightEntry<'a> {
    inner: &'a Inner,
    key: CacheKey,
}

impl Drop for InflightEntry<'_> {
    fn drop(&mut self) {
        let mut map = lock(&self.inner.inflight);
        // Another request may have put a fresh call under the same key: only
        // a call that is gone (every waiter dropped) or finished is removed.
        if map
            .get(&self.key)
            .is_some_and(|w| w.upgrade().is_none_or(|s| s.peek().is_some()))
        {
            map.remove(&self.key);
        }
    }
}

/// A stream in progress: forwards events, accumulates what it needs to account
/// and cache the answer once `Done` arrives.
struct StreamState {
    client: LlmClient,
    instance: Instance,
    request: Arc<LlmRequest>,
    key: Option<CacheKey>,
    first: Option<StreamEvent>,
    inner: crate::types::EventStream,
    text: String,
    calls: ToolCallAssembler,
    logprobs: Vec<crate::types::TokenLogprob>,
    thinking: crate::types::ThinkingAssembler,
    usage: Option<Usage>,
    started: Instant,
    reported_model: String,
    finished: bool,
    span: tracing::Span,
    deadline: Instant,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<StreamEvent, ProviderError>, Self)> {
        if self.finished {
            return None;
        }
        let item = match self.first.take() {
            Some(ev) => Some(Ok(ev)),
            // The overall deadline bounds the whole stream, not only its start.
            None => match tokio::time::timeout_at(self.deadline, self.inner.next()).await {
                Ok(item) => item,
                Err(_) => Some(Err(ProviderError::timeout(
                    self.instance.provider.name(),
                    "overall deadline reached while streaming",
                ))),
            },
        };
        let provider = self.instance.provider.clone();
        match item {
            Some(Ok(
                ev @ (StreamEvent::Thinking { .. }
                | StreamEvent::ThinkingSignature { .. }
                | StreamEvent::RedactedThinking { .. }),
            )) => {
                self.thinking.push_event(&ev);
                Some((Ok(ev), self))
            }
            Some(Ok(StreamEvent::Delta { text })) => {
                self.text.push_str(&text);
                Some((Ok(StreamEvent::Delta { text }), self))
            }
            Some(Ok(StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            })) => {
                self.calls.push(index, id.clone(), name.clone(), &arguments);
                Some((
                    Ok(StreamEvent::ToolCall {
                        index,
                        id,
                        name,
                        arguments,
                    }),
                    self,
                ))
            }
            Some(Ok(StreamEvent::Usage { usage })) => {
                self.usage = Some(usage);
                Some((Ok(StreamEvent::Usage { usage }), self))
            }
            Some(Ok(StreamEvent::Logprobs { logprobs })) => {
                self.logprobs.extend(logprobs.iter().cloned());
                Some((Ok(StreamEvent::Logprobs { logprobs }), self))
            }
            Some(Ok(StreamEvent::Done { finish_reason })) => {
                self.finished = true;
                let resp = LlmResponse {
                    content: std::mem::take(&mut self.text),
                    provider: provider.name().to_string(),
                    provider_kind: provider.kind().to_string(),
                    model: self.reported_model.clone(),
                    usage: self.usage.unwrap_or_default(),
                    cost: 0.0,
                    response_time: std::time::Duration::ZERO,
                    finish_reason: finish_reason.clone(),
                    cached: false,
                    attempts: Vec::new(),
                    tool_calls: std::mem::take(&mut self.calls).finish(),
                    logprobs: std::mem::take(&mut self.logprobs),
                    thinking: std::mem::take(&mut self.thinking).finish(),
                };
                let key = self.key.take();
                let resp = self
                    .client
                    .complete(
                        resp,
                        &self.instance,
                        &self.request,
                        key.as_ref(),
                        self.started,
                    )
                    .await;
                self.span.in_scope(|| record_response(&resp));
                Some((Ok(StreamEvent::Done { finish_reason }), self))
            }
            Some(Err(e)) => {
                self.finished = true;
                self.fail(&e);
                Some((Err(e), self))
            }
            None => {
                self.finished = true;
                let e = ProviderError::incomplete(
                    provider.name(),
                    "stream ended before it was complete",
                );
                self.fail(&e);
                Some((Err(e), self))
            }
        }
    }

    fn fail(&self, e: &ProviderError) {
        let model = self.request.model.clone().unwrap_or_default();
        if self.instance.health.on_failure(e, Instant::now()) {
            let t = &self.client.inner.telemetry;
            t.circuit(self.instance.provider.name(), exec::CircuitState::Open);
            t.active_providers(exec::active_count(&self.client.inner.instances));
        }
        self.client
            .inner
            .telemetry
            .request("chat", self.instance.provider.name(), &model, "error");
    }
}

/// The request field to name when `need` is served by no instance.
fn unsupported_field(need: crate::types::Capability, req: &LlmRequest) -> String {
    use crate::types::Capability;
    match need {
        Capability::Passthrough => req
            .extra
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| need.field().to_string()),
        Capability::Penalties if req.frequency_penalty.is_some() => "frequency_penalty".into(),
        Capability::Penalties => "presence_penalty".into(),
        Capability::Logprobs if !req.logprobs => "top_logprobs".into(),
        _ => need.field().to_string(),
    }
}

/// What the model wrote, for a token estimate: the text and each tool call's
/// name and arguments.
fn answer_text<'a>(text: &'a str, calls: &[crate::types::ToolCall]) -> std::borrow::Cow<'a, str> {
    if calls.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut all = text.to_string();
    for c in calls {
        all.push(' ');
        all.push_str(&c.name);
        all.push(' ');
        all.push_str(&c.arguments);
    }
    std::borrow::Cow::Owned(all)
}

/// `answer` followed by the text of the answer's thinking blocks, for a
/// token estimate (redacted blocks are opaque: not counted).
fn with_thinking(
    answer: std::borrow::Cow<'_, str>,
    blocks: &[crate::types::ThinkingBlock],
) -> String {
    let mut all = answer.into_owned();
    for block in blocks {
        if let crate::types::ThinkingBlock::Thinking { thinking, .. } = block {
            all.push(' ');
            all.push_str(thinking);
        }
    }
    all
}

/// Cost of a response: prices of the model asked for, else of the model reported.
fn price(p: &dyn Provider, asked: &str, reported: &str, usage: &Usage) -> f64 {
    let profile = p.profile();
    let model = if profile.pricing.contains_key(asked) || !profile.pricing.contains_key(reported) {
        asked
    } else {
        reported
    };
    cost_usd(profile, model, usage)
}

fn client_span(op: &'static str, req: &LlmRequest) -> tracing::Span {
    tracing::info_span!(
        "llm.client",
        otel.name = op,
        gen_ai.operation.name = "chat",
        gen_ai.request.model = req.model.as_deref().unwrap_or("auto"),
        gen_ai.request.max_tokens = req.max_tokens,
        gen_ai.request.temperature = req.temperature.map(f64::from),
        gen_ai.system = tracing::field::Empty,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        gen_ai.response.finish_reasons = tracing::field::Empty,
        llm.provider = tracing::field::Empty,
        llm.cache = tracing::field::Empty,
        llm.cost_usd = tracing::field::Empty,
    )
}

fn record_response(resp: &LlmResponse) {
    let span = tracing::Span::current();
    span.record("gen_ai.system", resp.provider_kind.as_str());
    span.record("gen_ai.response.model", resp.model.as_str());
    span.record("gen_ai.usage.input_tokens", resp.usage.prompt_tokens);
    span.record("gen_ai.usage.output_tokens", resp.usage.completion_tokens);
    span.record(
        "gen_ai.response.finish_reasons",
        resp.finish_reason.as_str(),
    );
    span.record("llm.provider", resp.provider.as_str());
    span.record("llm.cost_usd", resp.cost);
}
