//! Enforcement on every door: who is calling (a configured key, a virtual
//! key, or nobody on an open gateway), their request rate and concurrency
//! (in the authentication layer), then, around every upstream call, the
//! allowed models, the token rate and the budget (reserve an estimate,
//! settle the actual cost), and one spend row per request.
//!
//! The authentication layer runs each request inside a task-local
//! [`RequestCtx`]; the doors call `generate`, `stream` and `embed`
//! instead of the client's methods, and those read the context. A stream is
//! charged for what it produced when it ends or is dropped (a client that
//! disconnects mid-way pays for the tokens generated until then).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures::Stream;
use http_body::{Body as HttpBody, Frame, SizeHint};
use llm_router::cost::cost_usd;
use llm_router::{
    EmbeddingRequest, EmbeddingResponse, LlmClient, LlmError, LlmRequest, LlmResponse, ModelFilter,
    ProviderError, ResponseStream, StreamEvent, Usage,
};

use super::budgets::{OverBudget, Reservation};
use super::keys;
use super::limits::{ConcurrencyGuard, LimitKind, Limited, RateDecision};
use super::types::{KeyRecord, SpendRow};
use super::{now_ms, Tenancy};
use crate::error::ApiError;
use crate::protocols::anthropic_messages::AnthropicError;
use crate::protocols::ollama::OllamaError;
use crate::AppState;

tokio::task_local! {
    static CTX: Arc<RequestCtx>;
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An open gateway (no keys configured): no limits.
    Open,
    /// A key of `[gateway] api_keys`: no limits.
    Static,
    /// A virtual key, with its limits and budget.
    Virtual(Arc<KeyRecord>),
}

/// What a request did upstream, for its spend row.
#[derive(Debug, Default)]
struct Outcome {
    /// A door called upstream (or a limit refused it): the request gets a row.
    counted: bool,
    model: String,
    provider: Option<String>,
    usage: Usage,
    cost_usd: f64,
    cache_hit: bool,
    attempts: u32,
    /// Status decided before the HTTP status is known (a refusal).
    status: Option<u16>,
}

#[derive(Debug, Default)]
struct CtxState {
    status: u16,
    requests: Option<RateDecision>,
    tokens: Option<RateDecision>,
    outcome: Outcome,
}

/// One request's caller, protocol and outcome. Its spend row is recorded
/// when the last holder (the response body, a running stream) lets it go.
pub struct RequestCtx {
    caller: Caller,
    api: &'static str,
    tenancy: Arc<Tenancy>,
    started: Instant,
    state: Mutex<CtxState>,
}

impl RequestCtx {
    fn state(&self) -> std::sync::MutexGuard<'_, CtxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self) -> Option<&Arc<KeyRecord>> {
        match &self.caller {
            Caller::Virtual(k) => Some(k),
            _ => None,
        }
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut().unwrap_or_else(PoisonError::into_inner));
        if !state.outcome.counted {
            return;
        }
        let o = state.outcome;
        let key = self.key();
        let latency = u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX);
        self.tenancy.spend_log().record(SpendRow {
            ts_ms: now_ms(),
            key_id: key.map(|k| k.id.clone()),
            key_name: key.map(|k| k.name.clone()),
            team: key.and_then(|k| k.team.clone()),
            model: o.model,
            provider: o.provider,
            api: self.api.to_string(),
            tokens_in: o.usage.prompt_tokens,
            tokens_out: o.usage.completion_tokens,
            tokens_cached: o.usage.cache_read_tokens,
            cost_usd: o.cost_usd,
            latency_ms: latency,
            status: o.status.unwrap_or(state.status),
            cache_hit: o.cache_hit,
            attempts: o.attempts,
        });
    }
}

/// The protocol door a path belongs to (the spend log's `api`).
fn api_of(path: &str) -> &'static str {
    if path.starts_with("/api/") {
        "ollama"
    } else if path.starts_with("/v1/chat") {
        "chat"
    } else if path.starts_with("/v1/responses") {
        "responses"
    } else if path.starts_with("/v1/completions") {
        "completions"
    } else if path.starts_with("/v1/embeddings") {
        "embeddings"
    } else if path.starts_with("/v1/messages") {
        "messages"
    } else {
        "other"
    }
}

/// Why a request was refused before or instead of its upstream call.
#[derive(Debug)]
pub enum CallError {
    /// The upstream call failed.
    Llm(LlmError),
    /// The gateway refused it (403 model, 429 tokens or budget).
    Refused(ApiError),
}

impl From<LlmError> for CallError {
    fn from(e: LlmError) -> Self {
        Self::Llm(e)
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Llm(e) => e.into(),
            CallError::Refused(e) => e,
        }
    }
}

impl From<CallError> for OllamaError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Llm(e) => e.into(),
            CallError::Refused(e) => e.into(),
        }
    }
}

impl From<CallError> for AnthropicError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Llm(e) => AnthropicError::from_llm(e),
            CallError::Refused(e) => e.into(),
        }
    }
}

/// A limit refusal as an API error (429, `Retry-After`).
pub(crate) fn limited_error(l: &Limited) -> ApiError {
    let (what, unit) = match l.kind {
        LimitKind::Requests => ("requests", "requests per minute"),
        LimitKind::Tokens => ("tokens", "tokens per minute"),
        LimitKind::Concurrency => ("requests", "concurrent requests"),
    };
    ApiError::rate_limited(
        what,
        format!(
            "Rate limit reached for this key on {unit}: limit {}, remaining {}. \
             Please try again in {} s.",
            l.decision.limit,
            l.decision.remaining,
            l.decision.retry_after_secs.unwrap_or(1)
        ),
        l.decision.retry_after_secs.unwrap_or(1),
    )
}

fn over_budget_error(o: &OverBudget) -> ApiError {
    let resets = match o.resets_at {
        Some(at) => format!(
            " It resets at {} UTC.",
            super::types::day_string(at.div_euclid(super::types::DAY_MS))
        ),
        None => String::new(),
    };
    let retry = o
        .resets_at
        .map(|at| u64::try_from((at - now_ms()).max(1000) / 1000).unwrap_or(1));
    ApiError::insufficient_quota(
        format!(
            "You exceeded this key's budget of ${:.2} (spent ${:.4}, with requests in flight).{resets}",
            o.budget_usd, o.spent_usd
        ),
        retry,
    )
}

/// `x-ratelimit-reset-*`: a duration as OpenAI writes it (`120ms`, `12s`, `1m30s`).
fn reset_text(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = (ms + 999) / 1000;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

fn put_limit_headers(h: &mut HeaderMap, which: &str, d: &RateDecision) {
    let mut put = |name: String, v: String| {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(name),
            HeaderValue::from_str(&v),
        ) {
            h.insert(n, v);
        }
    };
    put(format!("x-ratelimit-limit-{which}"), d.limit.to_string());
    put(
        format!("x-ratelimit-remaining-{which}"),
        d.remaining.to_string(),
    );
    put(format!("x-ratelimit-reset-{which}"), reset_text(d.reset_ms));
}

/// The presented key: `Authorization: Bearer …` or `x-api-key`.
pub(crate) fn presented_keys(headers: &HeaderMap) -> (Option<&str>, Option<&str>) {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    (bearer, api_key)
}

/// Authentication with virtual keys on: a configured key is an unlimited
/// caller; a virtual key is looked up (401 unknown, revoked, expired or
/// disabled), then its request rate and concurrency are checked (429). The
/// rest of the request runs with its [`RequestCtx`].
pub(crate) async fn authenticate(
    st: &AppState,
    tenancy: Arc<Tenancy>,
    req: Request,
    next: Next,
) -> Response {
    let (bearer, api_key) = presented_keys(req.headers());
    let api = api_of(req.uri().path());
    let caller = if bearer.is_none() && api_key.is_none() {
        return crate::middleware::layer_error(&req, ApiError::missing_key());
    } else if bearer
        .into_iter()
        .chain(api_key)
        .any(|t| st.keys.accepts(t))
    {
        Caller::Static
    } else {
        let Some(presented) = bearer
            .into_iter()
            .chain(api_key)
            .find(|t| keys::looks_virtual(t))
        else {
            return crate::middleware::layer_error(&req, ApiError::wrong_key());
        };
        let now = now_ms();
        match tenancy.lookup(presented).await {
            Ok(Some(k)) => {
                let refused = if k.revoked_at.is_some() {
                    Some("This API key has been revoked.")
                } else if !k.enabled {
                    Some("This API key is disabled.")
                } else if k.expires_at.is_some_and(|at| at <= now) {
                    Some("This API key has expired.")
                } else {
                    None
                };
                if let Some(why) = refused {
                    return crate::middleware::layer_error(&req, ApiError::key_refused(why));
                }
                Caller::Virtual(k)
            }
            Ok(None) => return crate::middleware::layer_error(&req, ApiError::wrong_key()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the key store");
                return crate::middleware::layer_error(
                    &req,
                    ApiError::unavailable("The key store cannot be read now; please retry."),
                );
            }
        }
    };
    let ctx = Arc::new(RequestCtx {
        caller,
        api,
        tenancy: tenancy.clone(),
        started: Instant::now(),
        state: Mutex::new(CtxState::default()),
    });
    let mut guard: Option<ConcurrencyGuard> = None;
    if let Some(k) = ctx.key().cloned() {
        let refused = admit(&tenancy, &k, &ctx, &mut guard).await;
        if let Err(e) = refused {
            {
                let mut s = ctx.state();
                s.outcome.counted = is_generation(api, req.method());
                s.outcome.status = Some(e.status.as_u16());
            }
            let mut resp = crate::middleware::layer_error(&req, e);
            add_headers(&ctx, resp.headers_mut());
            return resp;
        }
    }
    let mut resp = CTX.scope(ctx.clone(), next.run(req)).await;
    add_headers(&ctx, resp.headers_mut());
    ctx.state().status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        Body::new(Held {
            inner: body,
            held: Some((ctx, guard)),
        }),
    )
}

/// Whether a request asks a model for something (gets a spend row when a
/// limit refuses it).
fn is_generation(api: &str, method: &axum::http::Method) -> bool {
    method == axum::http::Method::POST && api != "other"
}

/// The request-rate and concurrency limits of key `k`.
async fn admit(
    tenancy: &Tenancy,
    k: &KeyRecord,
    ctx: &RequestCtx,
    guard: &mut Option<ConcurrencyGuard>,
) -> Result<(), ApiError> {
    if let Some(rpm) = k.rpm {
        match tenancy.limiter().check_request(&k.id, rpm).await {
            Ok(d) => ctx.state().requests = Some(d),
            Err(l) => {
                ctx.state().requests = Some(l.decision);
                return Err(limited_error(&l));
            }
        }
    }
    if let Some(max) = k.max_concurrency {
        match tenancy.limiter().acquire(&k.id, max).await {
            Ok(g) => *guard = Some(g),
            Err(l) => return Err(limited_error(&l)),
        }
    }
    Ok(())
}

fn add_headers(ctx: &RequestCtx, h: &mut HeaderMap) {
    let s = ctx.state();
    if let Some(d) = &s.requests {
        put_limit_headers(h, "requests", d);
    }
    if let Some(d) = &s.tokens {
        put_limit_headers(h, "tokens", d);
    }
}

/// A response body that holds the request's context and concurrency slot
/// until its last frame has been produced (or it is dropped).
struct Held {
    inner: Body,
    held: Option<(Arc<RequestCtx>, Option<ConcurrencyGuard>)>,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(_) => true,
            Poll::Pending => false,
        };
        if ended {
            self.held = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The current request's context, when virtual keys are on.
fn current() -> Option<Arc<RequestCtx>> {
    CTX.try_with(Arc::clone).ok()
}

/// The current caller's allowed models: `None` without a virtual key, or
/// when its key allows every model. Model listings show the caller only
/// what it may use.
pub(crate) fn caller_models() -> Option<ModelFilter> {
    let ctx = current()?;
    key_models(&ctx)
}

/// The allowed models of `ctx`'s virtual key (`None`: no key, or every model).
fn key_models(ctx: &RequestCtx) -> Option<ModelFilter> {
    let key = ctx.key()?;
    (!key.models.is_empty()).then(|| ModelFilter::new(key.models.iter().cloned()))
}

/// The names a chat request goes by, for the allowed-model globs.
fn request_names(client: &LlmClient, req: &LlmRequest) -> Vec<String> {
    // An instance's bare name stands for its default model, as the router
    // and the model lists count it.
    match (&req.provider, &req.model) {
        (Some(p), Some(m)) => {
            let mut names = vec![m.clone(), format!("{p}/{m}")];
            if client
                .provider(p)
                .is_some_and(|i| i.profile().is_default_model(m))
            {
                names.push(p.clone());
            }
            names
        }
        (None, Some(m)) => vec![m.clone()],
        (Some(p), None) => {
            let mut names = vec![p.clone()];
            if let Some(d) = client
                .provider(p)
                .and_then(|i| i.profile().resolve_model(None))
            {
                names.push(format!("{p}/{d}"));
                names.push(d);
            }
            names
        }
        (None, None) => vec!["auto".to_string()],
    }
}

/// The model a spend row names for a request.
fn requested_model(req: &LlmRequest) -> String {
    match (&req.provider, &req.model) {
        (_, Some(m)) => m.clone(),
        (Some(p), None) => p.clone(),
        (None, None) => "auto".to_string(),
    }
}

/// Highest price of `usage` among the instances the request may be sent to
/// (the route plan: primary and fallbacks).
fn estimate_cost(client: &LlmClient, req: &LlmRequest, usage: &Usage) -> f64 {
    let plan = client.explain(req);
    plan.sequence
        .iter()
        .filter_map(|p| {
            let instance = client.provider(&p.provider)?;
            Some(cost_usd(instance.profile(), &p.model, usage))
        })
        .fold(0.0, f64::max)
}

/// What a call holds between its checks and its settlement.
struct Admitted {
    ctx: Arc<RequestCtx>,
    key: Arc<KeyRecord>,
    reservation: Option<Reservation>,
    /// Tokens counted against TPM before the call.
    estimated_tokens: u64,
}

/// The model, token-rate and budget checks of a call by a virtual key.
/// Nothing is computed for a caller without a virtual key; the estimate
/// only for a key with a token rate or a budget.
async fn admit_call(
    ctx: &Arc<RequestCtx>,
    names: impl FnOnce() -> Vec<String>,
    estimate: impl FnOnce() -> Usage,
    cost: impl Fn(&Usage) -> f64,
) -> Result<Option<Admitted>, ApiError> {
    let Some(key) = ctx.key().cloned() else {
        return Ok(None);
    };
    let tenancy = &ctx.tenancy;
    if !key.models.is_empty() {
        let names = names();
        if !keys::model_allowed(&key.models, &names) {
            let shown = names.first().map_or("auto", String::as_str);
            return Err(ApiError::model_not_allowed(shown));
        }
    }
    if key.tpm.is_none() && key.budget_usd.is_none() {
        return Ok(Some(Admitted {
            ctx: ctx.clone(),
            key,
            reservation: None,
            estimated_tokens: 0,
        }));
    }
    let estimate = estimate();
    let tokens = estimate.total_tokens;
    if let Some(tpm) = key.tpm {
        match tenancy.limiter().check_tokens(&key.id, tpm, tokens).await {
            Ok(d) => ctx.state().tokens = Some(d),
            Err(l) => {
                ctx.state().tokens = Some(l.decision);
                return Err(limited_error(&l));
            }
        }
    }
    let mut reservation = None;
    if key.budget_usd.is_some() {
        let amount = cost(&estimate);
        let store = tenancy.store().clone();
        let id = key.id.clone();
        let now = now_ms();
        let (since, _) = key.budget_period.window(now);
        let seed = move || async move { store.key_spend_since(&id, since).await };
        match tenancy.ledger().reserve(&key, amount, now, seed).await {
            Ok(mut r) => {
                // Abandoned mid-way, the call still cost its prompt.
                r.charge_if_dropped(cost(&Usage::new(estimate.prompt_tokens, 0)));
                reservation = Some(r);
            }
            Err(over) => {
                if let Some(tpm) = key.tpm {
                    let back = -i64::try_from(tokens).unwrap_or(i64::MAX);
                    tenancy.limiter().add_tokens(&key.id, tpm, back).await;
                }
                return Err(over_budget_error(&over));
            }
        }
    }
    Ok(Some(Admitted {
        ctx: ctx.clone(),
        key,
        reservation,
        estimated_tokens: tokens,
    }))
}

impl Admitted {
    /// Settles the reservation to `cost` and the token count to `actual`
    /// (`None`: the call failed; the reservation is released).
    async fn settle(self, actual: Option<(u64, f64)>) {
        let tenancy = &self.ctx.tenancy;
        if let Some(tpm) = self.key.tpm {
            let used = actual.map_or(0, |(t, _)| t);
            let delta = i64::try_from(used).unwrap_or(i64::MAX)
                - i64::try_from(self.estimated_tokens).unwrap_or(i64::MAX);
            if delta != 0 {
                tenancy.limiter().add_tokens(&self.key.id, tpm, delta).await;
            }
        }
        if let Some(r) = self.reservation {
            match actual {
                Some((_, cost)) => tenancy.ledger().settle(r, cost).await,
                None => tenancy.ledger().release(r).await,
            }
        }
    }
}

/// Marks the request counted, with what it asked for, before the call.
fn begin(ctx: &RequestCtx, model: String) {
    let mut s = ctx.state();
    s.outcome.counted = true;
    s.outcome.model = model;
}

fn refuse(ctx: &RequestCtx, e: ApiError) -> CallError {
    ctx.state().outcome.status = Some(e.status.as_u16());
    CallError::Refused(e)
}

fn finish_outcome(
    ctx: &RequestCtx,
    provider: &str,
    usage: Usage,
    cost: f64,
    cached: bool,
    attempts: usize,
) {
    let mut s = ctx.state();
    s.outcome.provider = (!provider.is_empty()).then(|| provider.to_string());
    s.outcome.usage = usage;
    s.outcome.cost_usd = cost;
    s.outcome.cache_hit = cached;
    s.outcome.attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
}

fn failed_outcome(ctx: &RequestCtx, e: &LlmError) {
    let attempts = match e {
        LlmError::AllProvidersFailed { attempts }
        | LlmError::NoProviderAvailable { attempts }
        | LlmError::DeadlineExceeded { attempts, .. } => attempts.len(),
        _ => 0,
    };
    ctx.state().outcome.attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
}

/// A key with a budget or a token rate gets answers of at most
/// `default_output_tokens` when the request sets no `max_tokens`: the
/// reservation is made for that many, and an uncapped answer could cost
/// many times what was reserved (OpenAI-kind upstreams write until the
/// model's own limit).
fn cap_output(ctx: &RequestCtx, req: &mut LlmRequest) {
    let limited = ctx
        .key()
        .is_some_and(|k| k.budget_usd.is_some() || k.tpm.is_some());
    if limited && req.max_tokens.is_none() {
        req.max_tokens = Some(ctx.tenancy.default_output_tokens());
    }
}

/// Keeps a call by a key with allowed models within them along its whole
/// route: the router then never falls back to an instance or model outside
/// the globs. An `auto` request by a key allowed `auto` lets the router
/// choose, so its route is left free.
fn restrict_models(ctx: &RequestCtx, req: &mut LlmRequest) {
    let auto = req.provider.is_none() && req.model.is_none();
    if auto
        && ctx
            .key()
            .is_some_and(|k| keys::model_allowed(&k.models, &["auto"]))
    {
        return;
    }
    req.allowed_models = key_models(ctx);
}

/// Prompt tokens estimated for a request and the output it may produce.
fn chat_estimate(ctx: &RequestCtx, req: &LlmRequest, prompt: u64) -> Usage {
    let output = req
        .max_tokens
        .unwrap_or(ctx.tenancy.default_output_tokens());
    Usage::new(prompt, u64::from(output))
}

impl AppState {
    /// [`generate`]: what every door calls instead of the client's method.
    pub(crate) async fn generate(&self, req: LlmRequest) -> Result<LlmResponse, CallError> {
        generate(self, req).await
    }

    /// [`stream`]: what every door calls instead of the client's method.
    pub(crate) async fn stream(&self, req: LlmRequest) -> Result<ResponseStream, CallError> {
        stream(self, req).await
    }

    /// [`embed`]: what every door calls instead of the client's method.
    pub(crate) async fn embed(
        &self,
        req: EmbeddingRequest,
    ) -> Result<EmbeddingResponse, CallError> {
        embed(self, req).await
    }
}

/// [`LlmClient::generate`] under the caller's limits and budget.
pub(crate) async fn generate(st: &AppState, mut req: LlmRequest) -> Result<LlmResponse, CallError> {
    let Some(ctx) = current() else {
        return Ok(st.client.generate(req).await?);
    };
    begin(&ctx, requested_model(&req));
    cap_output(&ctx, &mut req);
    restrict_models(&ctx, &mut req);
    let admitted = admit_call(
        &ctx,
        || request_names(&st.client, &req),
        || {
            chat_estimate(
                &ctx,
                &req,
                llm_router::tokens::estimate_usage(&req, "").prompt_tokens,
            )
        },
        |estimate| estimate_cost(&st.client, &req, estimate),
    )
    .await
    .map_err(|e| refuse(&ctx, e))?;
    let result = st.client.generate(req).await;
    match &result {
        Ok(resp) => finish_outcome(
            &ctx,
            &resp.provider,
            resp.usage,
            resp.cost,
            resp.cached,
            resp.attempts.len(),
        ),
        Err(e) => failed_outcome(&ctx, e),
    }
    if let Some(a) = admitted {
        let actual = result.as_ref().ok().map(|r| (r.usage.total_tokens, r.cost));
        a.settle(actual).await;
    }
    Ok(result?)
}

/// [`LlmClient::stream`] under the caller's limits and budget; the stream
/// is charged for what it produced when it ends or is dropped.
pub(crate) async fn stream(
    st: &AppState,
    mut req: LlmRequest,
) -> Result<ResponseStream, CallError> {
    let Some(ctx) = current() else {
        return Ok(st.client.stream(req).await?);
    };
    begin(&ctx, requested_model(&req));
    cap_output(&ctx, &mut req);
    restrict_models(&ctx, &mut req);
    // Streams need the prompt's size even without limits: a stream that ends
    // before the provider reports usage is charged an estimate.
    let prompt_tokens = llm_router::tokens::estimate_usage(&req, "").prompt_tokens;
    let admitted = admit_call(
        &ctx,
        || request_names(&st.client, &req),
        || chat_estimate(&ctx, &req, prompt_tokens),
        |estimate| estimate_cost(&st.client, &req, estimate),
    )
    .await
    .map_err(|e| refuse(&ctx, e))?;
    let asked = req.model.clone();
    let opened = match st.client.stream(req).await {
        Ok(s) => s,
        Err(e) => {
            failed_outcome(&ctx, &e);
            if let Some(a) = admitted {
                a.settle(None).await;
            }
            return Err(e.into());
        }
    };
    let meter = Meter {
        ctx,
        admitted,
        client: st.client.clone(),
        provider: opened.provider.clone(),
        asked,
        reported: opened.model.clone(),
        cached: opened.cached,
        attempts: opened.attempts.len(),
        prompt_tokens,
        text: String::new(),
        usage: None,
        settled: false,
    };
    Ok(opened.map_inner(|inner| Box::pin(Metered { inner, meter })))
}

/// What a running stream has produced so far.
struct Meter {
    ctx: Arc<RequestCtx>,
    admitted: Option<Admitted>,
    client: LlmClient,
    provider: String,
    asked: Option<String>,
    reported: String,
    cached: bool,
    attempts: usize,
    prompt_tokens: u64,
    /// Text and tool-call arguments produced (for an estimate when the
    /// provider reports no usage).
    text: String,
    usage: Option<Usage>,
    settled: bool,
}

impl Meter {
    fn observe(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::Delta { text } | StreamEvent::Thinking { text, .. } => {
                self.text.push_str(text);
            }
            StreamEvent::ToolCall {
                name, arguments, ..
            } => {
                if let Some(n) = name {
                    self.text.push_str(n);
                    self.text.push(' ');
                }
                self.text.push_str(arguments);
            }
            StreamEvent::Usage { usage } => self.usage = Some(*usage),
            _ => {}
        }
    }

    /// Charges what was produced: the reported usage, else an estimate of
    /// the prompt and the output so far; priced like the client prices.
    fn settle(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let model = self.asked.clone().unwrap_or_else(|| self.reported.clone());
        let usage = self.usage.unwrap_or_else(|| {
            Usage::new(
                self.prompt_tokens,
                llm_router::tokens::count_tokens(&model, &self.text),
            )
        });
        let cost = if self.cached {
            0.0
        } else {
            self.client.provider(&self.provider).map_or(0.0, |p| {
                let profile = p.profile();
                let priced = if profile.pricing.contains_key(&model)
                    || !profile.pricing.contains_key(&self.reported)
                {
                    model.as_str()
                } else {
                    self.reported.as_str()
                };
                cost_usd(profile, priced, &usage)
            })
        };
        finish_outcome(
            &self.ctx,
            &self.provider,
            usage,
            cost,
            self.cached,
            self.attempts,
        );
        if let Some(a) = self.admitted.take() {
            let settle = a.settle(Some((usage.total_tokens, cost)));
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(settle);
                }
                Err(_) => tracing::warn!("a stream ended outside the runtime: not settled"),
            }
        }
    }
}

/// An event stream that meters what passes through it.
struct Metered {
    inner: llm_router::EventStream,
    meter: Meter,
}

impl Stream for Metered {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(ev))) => {
                self.meter.observe(ev);
                if matches!(ev, StreamEvent::Done { .. }) {
                    self.meter.settle();
                }
            }
            Poll::Ready(Some(Err(_)) | None) => self.meter.settle(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.meter.settle();
    }
}

/// [`LlmClient::embed`] under the caller's limits and budget.
pub(crate) async fn embed(
    st: &AppState,
    mut req: EmbeddingRequest,
) -> Result<EmbeddingResponse, CallError> {
    let Some(ctx) = current() else {
        return Ok(st.client.embed(req).await?);
    };
    // A fallback never sends the texts to an instance outside the key's models.
    req.allowed_models = caller_models();
    // The model the client will use (the default one when the request
    // names none): what is checked against the key's models and priced.
    // An invalid request keeps its own name; the client refuses it below.
    let model = match st.client.embedding_model(&req) {
        Ok(model) => model,
        // Refused as not allowed at once (names nothing the key may not use).
        Err(e @ LlmError::NotAllowed { .. }) => {
            begin(&ctx, req.model.clone().unwrap_or_default());
            return Err(refuse(&ctx, e.into()));
        }
        Err(_) => req.model.clone().unwrap_or_default(),
    };
    begin(&ctx, model.clone());
    let admitted = admit_call(
        &ctx,
        || {
            let mut names = vec![model.clone()];
            if let Some(p) = &req.provider {
                names.push(format!("{p}/{model}"));
            }
            names
        },
        || {
            let prompt = req
                .inputs
                .iter()
                .map(|t| llm_router::tokens::count_tokens(&model, t))
                .sum();
            Usage::new(prompt, 0)
        },
        |estimate| {
            st.client
                .providers()
                .iter()
                .filter(|p| p.profile().embedding_models.contains(&model))
                .map(|p| cost_usd(p.profile(), &model, estimate))
                .fold(0.0, f64::max)
        },
    )
    .await
    .map_err(|e| refuse(&ctx, e))?;
    let result = st.client.embed(req).await;
    match &result {
        Ok(resp) => finish_outcome(
            &ctx,
            &resp.provider,
            resp.usage,
            resp.cost,
            resp.cached_inputs > 0 && resp.provider.is_empty(),
            resp.attempts.len(),
        ),
        Err(e) => failed_outcome(&ctx, e),
    }
    if let Some(a) = admitted {
        let actual = result.as_ref().ok().map(|r| (r.usage.total_tokens, r.cost));
        a.settle(actual).await;
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_read_like_openai_headers() {
        assert_eq!(reset_text(120), "120ms");
        assert_eq!(reset_text(12_000), "12s");
        assert_eq!(reset_text(12_001), "13s");
        assert_eq!(reset_text(90_000), "1m30s");
        assert_eq!(reset_text(-5), "0ms");
    }

    #[test]
    fn paths_name_their_door() {
        assert_eq!(api_of("/v1/chat/completions"), "chat");
        assert_eq!(api_of("/v1/messages/count_tokens"), "messages");
        assert_eq!(api_of("/api/chat"), "ollama");
        assert_eq!(api_of("/v1/embeddings"), "embeddings");
        assert_eq!(api_of("/v1/models"), "other");
    }
}
