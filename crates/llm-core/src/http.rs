//! Generic HTTP plumbing for provider crates (feature `http`).
//!
//! Nothing here knows any provider's API: it sends requests with a deadline,
//! turns transport failures and error statuses into [`ProviderError`]s (status,
//! provider code, request id, `Retry-After`), and decodes SSE and NDJSON bodies
//! with an idle timeout and UTF-8 safety across network chunks.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, ProviderError};
use crate::registry::ProviderSpec;

pub use eventsource_stream::Event as SseEvent;
pub use reqwest;

/// Longest error text kept from a response body.
const MAX_ERROR_TEXT: usize = 1000;

/// Largest whole response body read ([`read_json`]) unless a provider says
/// otherwise ([`read_json_max`]): a larger one is an error, never an
/// unbounded allocation.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// Largest single server-sent event ([`sse_events`]).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Most bytes of an error body read (its message is parsed from them).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// Longest wait of an availability probe ([`probe`]).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider's `base_url`, checked: an `http://` or `https://` URL with a
/// host and no query or fragment, kept without a trailing `/` so that
/// endpoint paths are appended with [`join`](Self::join).
///
/// A `user:password@` part stays in [`as_str`](Self::as_str) (reqwest sends
/// it as basic authentication, e.g. for a proxy) and is left out of
/// [`display`](Self::display), `Display`, `Debug` and every error.
///
/// ```
/// use llm_core::http::BaseUrl;
///
/// let url = BaseUrl::new("https://user:s3cret@proxy.example/v1/").unwrap();
/// assert_eq!(url.as_str(), "https://user:s3cret@proxy.example/v1");
/// assert_eq!(url.display(), "https://proxy.example/v1");
/// assert_eq!(url.join("/models"), "https://user:s3cret@proxy.example/v1/models");
/// assert!(!format!("{url} {url:?}").contains("s3cret"));
/// assert!(BaseUrl::new("ftp://host").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: reqwest::Url,
    text: String,
    shown: String,
}

impl BaseUrl {
    /// Checks `value` (surrounding white space is ignored); the error says
    /// what is wrong without repeating any credentials.
    pub fn new(value: &str) -> Result<Self, String> {
        let url =
            reqwest::Url::parse(value.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
        let shown = without_credentials(&url);
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "`{shown}` is not an http:// or https:// URL with a host"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{shown}` must not have a query or fragment"));
        }
        let text = url.as_str().trim_end_matches('/').to_string();
        Ok(Self { url, text, shown })
    }

    /// Checks option `key` of `spec`: an error names the file, line and key.
    pub fn parse(spec: &ProviderSpec, key: &str, value: &str) -> Result<Self, ConfigError> {
        Self::new(value).map_err(|message| spec.error_at(Some(key), message))
    }

    /// The URL requests go to, credentials included, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The URL without credentials or a trailing `/`, for messages and logs.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// How a configured `value` is shown in `Debug` and messages: the
    /// [`display`](Self::display) of the checked URL, else `<invalid URL>`
    /// (the text may hold credentials).
    pub fn shown(value: &str) -> String {
        Self::new(value).map_or_else(|_| "<invalid URL>".to_string(), |u| u.shown)
    }

    /// The endpoint `path` (starting with `/`) under this URL.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.text)
    }

    /// The parsed URL (host and port, e.g. to tell a local server).
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BaseUrl").field(&self.shown).finish()
    }
}

/// `url` without user name, password or a trailing `/`.
fn without_credentials(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.as_str().trim_end_matches('/').to_string()
}

/// A client with rustls, connection pooling and a connect timeout
/// ([`HttpClient`]).
pub fn client(connect_timeout: Duration) -> Result<HttpClient, ConfigError> {
    Ok(HttpClient {
        inner: Arc::new(ClientInner {
            connect_timeout,
            shared: build_client(connect_timeout)?,
        }),
    })
}

fn build_client(connect_timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| ConfigError::new(format!("cannot build the HTTP client: {e}")))
}

/// A provider's HTTP client: a `reqwest::Client` (rustls, pooled
/// connections, a connect timeout) whose pool is shared by every thread,
/// except on threads that asked for pools of their own
/// ([`pools::thread_local_connection_pools`](crate::pools::thread_local_connection_pools)),
/// where requests go through a client of that thread's (built on first use).
/// Cheap to clone (clones share the pools).
///
/// ```
/// # fn main() -> Result<(), llm_core::ConfigError> {
/// let http = llm_core::http::client(std::time::Duration::from_secs(5))?;
/// let request = http.get("http://127.0.0.1:11434/api/version");
/// # drop(request);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    connect_timeout: Duration,
    shared: reqwest::Client,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("connect_timeout", &self.inner.connect_timeout)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// This thread's own clients, by the shared client they stand in for
    /// (entries of clients dropped since are pruned when one is added).
    static LOCAL_CLIENTS: RefCell<Vec<(Weak<ClientInner>, reqwest::Client)>> =
        const { RefCell::new(Vec::new()) };
}

impl HttpClient {
    /// The `reqwest::Client` for this thread: the shared one, or this
    /// thread's own on threads with pools of their own.
    pub fn reqwest(&self) -> reqwest::Client {
        if !crate::pools::uses_thread_local_pools() {
            return self.inner.shared.clone();
        }
        LOCAL_CLIENTS
            .try_with(|local| self.local(&mut local.borrow_mut()))
            // The thread is ending: its own clients are gone.
            .unwrap_or_else(|_| self.inner.shared.clone())
    }

    /// This client's stand-in in `local` (added on first use; entries of
    /// clients dropped since, e.g. by a configuration reload, are removed
    /// then).
    fn local(&self, local: &mut Vec<(Weak<ClientInner>, reqwest::Client)>) -> reqwest::Client {
        // Entries of clients dropped since (a reload) go at once, not
        // only when another client is added: the list is a few entries.
        if local.iter().any(|(w, _)| w.strong_count() == 0) {
            local.retain(|(w, _)| w.strong_count() > 0);
        }
        // A `Weak` keeps its allocation: a live client's address is never
        // an entry of a dropped one.
        if let Some((_, c)) = local
            .iter()
            .find(|(w, _)| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.inner)))
        {
            return c.clone();
        }
        let own = match build_client(self.inner.connect_timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e.message, "HTTP client of this thread: using the shared one");
                self.inner.shared.clone()
            }
        };
        local.retain(|(w, _)| w.strong_count() > 0);
        local.push((Arc::downgrade(&self.inner), own.clone()));
        own
    }

    /// `POST url`.
    pub fn post<U: reqwest::IntoUrl>(&self, url: U) -> reqwest::RequestBuilder {
        self.reqwest().post(url)
    }

    /// `GET url`.
    pub fn get<U: reqwest::IntoUrl>(&self, url: U) -> reqwest::RequestBuilder {
        self.reqwest().get(url)
    }

    /// `method url`.
    pub fn request<U: reqwest::IntoUrl>(
        &self,
        method: reqwest::Method,
        url: U,
    ) -> reqwest::RequestBuilder {
        self.reqwest().request(method, url)
    }
}

/// A header value holding a secret, marked sensitive so it never shows in `Debug`.
pub fn secret_header(prefix: &str, secret: &SecretString) -> Result<HeaderValue, ConfigError> {
    let mut v = HeaderValue::from_str(&format!("{prefix}{}", secret.expose_secret()))
        .map_err(|_| ConfigError::new("the API key contains characters not allowed in a header"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Parses configured extra headers.
pub fn header_map<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            ConfigError::new(format!("invalid header name `{k}`")).with_key("headers")
        })?;
        let mut value = HeaderValue::from_str(v).map_err(|_| {
            ConfigError::new(format!("invalid value for header `{k}`")).with_key("headers")
        })?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// Maps a reqwest error to a typed error; the URL is stripped (it may carry secrets).
pub fn map_reqwest_error(provider: &str, err: reqwest::Error) -> ProviderError {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_timeout() {
        ProviderError::timeout(provider, message)
    } else if err.is_connect() {
        ProviderError::connect(provider, message)
    } else if err.is_decode() && is_json_error(&err) {
        // reqwest also reports a body cut short by the connection as a
        // "decode" error; only a real JSON error is the provider's answer.
        ProviderError::decode(provider, message)
    } else {
        ProviderError::transport(provider, message)
    }
}

/// Whether a reqwest error was caused by JSON decoding (`Response::json`).
fn is_json_error(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<serde_json::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// `retry-after-ms`, else `retry-after` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let v = text("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The provider's request id (`x-request-id` or `request-id`).
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What a provider's error body says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// Error code or type.
    pub code: Option<String>,
    /// Error message.
    pub message: Option<String>,
}

/// How a provider's error replies become [`ProviderError`]s: the one piece
/// of error handling a provider writes; [`send_with`] does the rest
/// (timeouts, transport errors, reading a bounded body, request id,
/// `Retry-After`).
///
/// ```
/// use llm_core::http::{ErrorBody, ErrorMapping};
/// use llm_core::http::reqwest::{header::HeaderMap, StatusCode};
///
/// struct Acme;
/// impl ErrorMapping for Acme {
///     fn parse(&self, body: &[u8]) -> ErrorBody {
///         let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
///         ErrorBody {
///             code: v["code"].as_str().map(str::to_string),
///             message: v["detail"].as_str().map(str::to_string),
///         }
///     }
/// }
/// let e = Acme.map_error("acme", StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(),
///     br#"{"code":"slow_down","detail":"too fast"}"#);
/// assert_eq!((e.status, e.code.as_deref(), e.message.as_str()), (Some(429), Some("slow_down"), "too fast"));
/// ```
pub trait ErrorMapping: Send + Sync {
    /// Error code and message of an error body; the default finds none (the
    /// body's text, truncated, becomes the message).
    fn parse(&self, body: &[u8]) -> ErrorBody {
        let _ = body;
        ErrorBody::default()
    }

    /// The error for a non-2xx reply. The default: an HTTP error with the
    /// parsed code and message, the request id and `Retry-After`. Override to
    /// read more (a provider's own retry header, a body request id).
    fn map_error(
        &self,
        provider: &str,
        status: reqwest::StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ProviderError {
        let parsed = self.parse(body);
        let message = parsed
            .message
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| error_text(status, body));
        let mut err = ProviderError::http(provider, status.as_u16(), message)
            .with_request_id(request_id(headers))
            .with_retry_after(retry_after(headers));
        err.code = parsed.code;
        err
    }
}

/// A body parser is an error mapping.
impl ErrorMapping for fn(&[u8]) -> ErrorBody {
    fn parse(&self, body: &[u8]) -> ErrorBody {
        self(body)
    }
}

/// The text of an error body that is not the provider's error JSON:
/// trimmed and truncated to 1,000 bytes, or the status's reason when empty.
pub fn error_text(status: reqwest::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        truncate_text(text, MAX_ERROR_TEXT)
    }
}

/// Sends `request` and waits for the response head, within `timeout`.
///
/// A non-2xx status becomes an HTTP [`ProviderError`] with the body parsed by
/// `parse_error`, the request id and `Retry-After`.
pub async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    parse_error: fn(&[u8]) -> ErrorBody,
) -> Result<reqwest::Response, ProviderError> {
    send_with(provider, request, timeout, &parse_error).await
}

/// [`send`] with a provider's [`ErrorMapping`].
pub async fn send_with(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    mapping: &dyn ErrorMapping,
) -> Result<reqwest::Response, ProviderError> {
    let resp = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => {
            return Err(ProviderError::timeout(
                provider,
                format!("no response within {:.1} s", timeout.as_secs_f64()),
            ))
        }
        Ok(Err(e)) => return Err(map_reqwest_error(provider, e)),
        Ok(Ok(r)) => r,
    };
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(error_from_response_with(provider, resp, timeout, mapping).await)
}

/// An availability probe: sends `request` (a cheap authenticated `GET`)
/// within `timeout`, at most [`PROBE_TIMEOUT`]. Any 2xx is available; `Err`
/// says why not (no connection, a timeout, or the status and the API's
/// message through `mapping`, so a 401 or a 5xx is never "available").
pub async fn probe(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    mapping: &dyn ErrorMapping,
) -> Result<(), ProviderError> {
    send_with(provider, request, timeout.min(PROBE_TIMEOUT), mapping)
        .await
        .map(drop)
}

/// Builds the error for a non-2xx response.
pub async fn error_from_response(
    provider: &str,
    resp: reqwest::Response,
    timeout: Duration,
    parse_error: fn(&[u8]) -> ErrorBody,
) -> ProviderError {
    error_from_response_with(provider, resp, timeout, &parse_error).await
}

/// Builds the error for a non-2xx response with a provider's [`ErrorMapping`]:
/// the body is read up to 64 KiB and parsed whole before any text is cut.
pub async fn error_from_response_with(
    provider: &str,
    resp: reqwest::Response,
    timeout: Duration,
    mapping: &dyn ErrorMapping,
) -> ProviderError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = match tokio::time::timeout(timeout, read_capped(resp, MAX_ERROR_BODY)).await {
        Ok(Ok((b, _))) => b,
        _ => Bytes::new(),
    };
    mapping.map_error(provider, status, &headers, &body)
}

/// Reads a whole JSON body within `timeout`, at most
/// [`DEFAULT_MAX_RESPONSE_BYTES`].
pub async fn read_json<T: DeserializeOwned>(
    provider: &str,
    resp: reqwest::Response,
    timeout: Duration,
) -> Result<T, ProviderError> {
    read_json_max(provider, resp, timeout, DEFAULT_MAX_RESPONSE_BYTES).await
}

/// Reads a whole JSON body within `timeout`; a body over `max_bytes` is a
/// decode error naming the limit (the rest is not read).
pub async fn read_json_max<T: DeserializeOwned>(
    provider: &str,
    resp: reqwest::Response,
    timeout: Duration,
    max_bytes: u64,
) -> Result<T, ProviderError> {
    let id = request_id(resp.headers());
    let body = match tokio::time::timeout(timeout, read_capped(resp, max_bytes)).await {
        Err(_) => {
            return Err(ProviderError::timeout(
                provider,
                "response body did not arrive in time",
            ))
        }
        Ok(Err(e)) => return Err(map_reqwest_error(provider, e)),
        Ok(Ok((_, true))) => {
            return Err(ProviderError::decode(
                provider,
                format!("response body is larger than {max_bytes} bytes"),
            )
            .with_request_id(id))
        }
        Ok(Ok((b, false))) => b,
    };
    decode_json(provider, &body).map_err(|e| e.with_request_id(id))
}

/// Reads a body up to `max` bytes; `true` when there was more (not read).
async fn read_capped(
    mut resp: reqwest::Response,
    max: u64,
) -> Result<(Bytes, bool), reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Ok((Bytes::new(), true));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if (buf.len() + chunk.len()) as u64 > max {
            let room = usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
            return Ok((buf.freeze(), true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf.freeze(), false))
}

/// Decodes JSON, with a snippet of the body in the error.
pub fn decode_json<T: DeserializeOwned>(provider: &str, body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::decode(
            provider,
            format!(
                "invalid JSON in response ({e}): {}",
                truncate_text(&String::from_utf8_lossy(body), 200)
            ),
        )
    })
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The body as a stream of chunks; a gap longer than `idle` ends it with a timeout error.
pub fn body_chunks(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
    let provider = provider.to_string();
    let body = resp.bytes_stream().boxed();
    futures::stream::unfold(Some(body), move |state| {
        let provider = provider.clone();
        async move {
            let mut body = state?;
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => Some((
                    Err(ProviderError::timeout(
                        &provider,
                        format!("stream stalled for {:.1} s", idle.as_secs_f64()),
                    )),
                    None,
                )),
                Ok(None) => None,
                Ok(Some(Ok(b))) => Some((Ok(b), Some(body))),
                Ok(Some(Err(e))) => Some((Err(map_reqwest_error(&provider, e)), None)),
            }
        }
    })
}

/// Server-sent events of a response body (UTF-8 safe across chunks), each
/// at most [`DEFAULT_MAX_EVENT_BYTES`].
pub fn sse_events(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static {
    sse_events_max(provider, resp, idle, DEFAULT_MAX_EVENT_BYTES)
}

/// [`sse_events`] with an explicit per-event limit: an event (the bytes
/// between two blank lines) longer than `max_event` ends the stream with a
/// decode error instead of growing a buffer without bound.
pub fn sse_events_max(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
    max_event: usize,
) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static {
    use eventsource_stream::{EventStreamError, Eventsource};
    let name = provider.to_string();
    let guard_name = provider.to_string();
    let mut since_blank = 0usize;
    let mut last = 0u8;
    let mut over = false;
    let chunks = body_chunks(provider, resp, idle).map(move |chunk| {
        let chunk = chunk?;
        if over {
            return Err(ProviderError::decode(&guard_name, "event too large"));
        }
        for &b in chunk.iter() {
            // A blank line (`\n\n`, with or without `\r`) ends an event.
            if b == b'\n' && last == b'\n' {
                since_blank = 0;
            } else if b != b'\r' {
                since_blank += 1;
            }
            if b != b'\r' {
                last = b;
            }
        }
        if since_blank > max_event {
            over = true;
            return Err(ProviderError::decode(
                &guard_name,
                format!("a stream event is larger than {max_event} bytes"),
            ));
        }
        Ok(chunk)
    });
    chunks.eventsource().map_err(move |e| match e {
        EventStreamError::Transport(e) => e,
        EventStreamError::Utf8(e) => {
            ProviderError::decode(&name, format!("stream is not valid UTF-8: {e}"))
        }
        EventStreamError::Parser(e) => {
            ProviderError::decode(&name, format!("malformed event stream: {e}"))
        }
    })
}

/// Newline-delimited JSON lines of a response body, each at most `max_line`
/// bytes (a longer one ends the stream with a decode error). Lines are split
/// by `tokio_util`'s `LinesCodec`, so a multi-byte character split across
/// network chunks is intact; `\r\n` endings are accepted, empty lines
/// skipped, and a last line without `\n` is still yielded.
pub fn ndjson_lines(
    provider: &str,
    resp: reqwest::Response,
    idle: Duration,
    max_line: usize,
) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static {
    use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
    use tokio_util::io::StreamReader;

    let name = provider.to_string();
    // Transport errors travel through the reader as `io::Error`s and come
    // back out as the `ProviderError` they were.
    let reader =
        StreamReader::new(body_chunks(provider, resp, idle).map_err(std::io::Error::other));
    FramedRead::new(reader, LinesCodec::new_with_max_length(max_line))
        .filter_map(move |line| {
            let out = match line {
                Ok(l) if l.trim().is_empty() => None,
                Ok(l) => Some(Ok(Bytes::from(l))),
                Err(LinesCodecError::MaxLineLengthExceeded) => Some(Err(ProviderError::decode(
                    &name,
                    format!("a stream line is longer than {max_line} bytes"),
                ))),
                Err(LinesCodecError::Io(e)) => Some(Err(match e.downcast::<ProviderError>() {
                    Ok(pe) => pe,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        ProviderError::decode(&name, format!("stream is not valid UTF-8: {e}"))
                    }
                    Err(e) => ProviderError::new(
                        &name,
                        crate::error::ProviderErrorKind::Transport,
                        e.to_string(),
                    ),
                })),
            };
            futures::future::ready(out)
        })
        .scan(false, |failed, item| {
            // Nothing follows an error.
            if *failed {
                return futures::future::ready(None);
            }
            *failed = item.is_err();
            futures::future::ready(Some(item))
        })
}

/// Turns upstream frames (SSE events, NDJSON lines, …) into stream events.
///
/// Implemented by each provider's stream decoder; [`decode_frames`] drives it.
pub trait FrameDecoder: Send + 'static {
    /// One unit of the upstream stream.
    type Frame: Send + 'static;

    /// Handles one frame, pushing zero or more items onto `out`. Returns `true`
    /// when the stream is over (its terminator, or an error item was pushed).
    fn frame(
        &mut self,
        frame: Self::Frame,
        out: &mut std::collections::VecDeque<Result<crate::StreamEvent, ProviderError>>,
    ) -> bool;

    /// The error for an upstream stream that ended before it was over.
    fn incomplete(&self) -> ProviderError;
}

/// Drives `decoder` over `frames`: items come out in order; a transport error
/// ends the stream with that error; an upstream end before the decoder saw
/// the terminator ends it with [`FrameDecoder::incomplete`]. Nothing follows
/// the last item.
pub fn decode_frames<S, D>(
    frames: S,
    decoder: D,
) -> impl Stream<Item = Result<crate::StreamEvent, ProviderError>> + Send + 'static
where
    S: Stream<Item = Result<D::Frame, ProviderError>> + Send + 'static,
    D: FrameDecoder,
{
    struct State<D: FrameDecoder> {
        frames: futures::stream::BoxStream<'static, Result<D::Frame, ProviderError>>,
        decoder: D,
        pending: std::collections::VecDeque<Result<crate::StreamEvent, ProviderError>>,
        finished: bool,
    }
    let state = State {
        frames: frames.boxed(),
        decoder,
        pending: std::collections::VecDeque::new(),
        finished: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            match st.frames.next().await {
                Some(Ok(frame)) => {
                    st.finished = st.decoder.frame(frame, &mut st.pending);
                }
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.finished = true;
                    return Some((Err(st.decoder.incomplete()), st));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_entries() -> usize {
        LOCAL_CLIENTS.with(|l| l.borrow().len())
    }

    #[test]
    fn threads_share_one_pool_unless_they_ask_for_their_own() {
        std::thread::spawn(|| {
            let http = client(Duration::from_secs(5)).unwrap();
            drop(http.get("http://127.0.0.1:1/"));
            assert_eq!(local_entries(), 0, "the shared client, no entry");
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            crate::pools::thread_local_connection_pools();
            let (a, b) = (
                client(Duration::from_secs(5)).unwrap(),
                client(Duration::from_secs(5)).unwrap(),
            );
            drop((
                a.get("http://127.0.0.1:1/"),
                a.reqwest(),
                a.clone().post("http://127.0.0.1:1/"),
            ));
            assert_eq!(local_entries(), 1, "one client of this thread's per client");
            drop(b.get("http://127.0.0.1:1/"));
            assert_eq!(local_entries(), 2);
            // A client dropped (a reload): its entry goes when another is added.
            drop(a);
            let c = client(Duration::from_secs(5)).unwrap();
            drop(c.get("http://127.0.0.1:1/"));
            assert_eq!(local_entries(), 2, "b and c");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn secret_headers_are_sensitive() {
        let v = secret_header("Bearer ", &SecretString::from("sk-hidden")).unwrap();
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("sk-hidden"));
    }

    #[test]
    fn base_urls_are_checked_and_normalized() {
        let url = BaseUrl::new(" https://api.openai.com/v1/ ").unwrap();
        assert_eq!(url.as_str(), "https://api.openai.com/v1");
        assert_eq!(url.join("/models"), "https://api.openai.com/v1/models");
        assert_eq!(
            BaseUrl::new("http://localhost:11434").unwrap().as_str(),
            "http://localhost:11434"
        );
        for bad in [
            "",
            "not a url",
            "localhost:8000",
            "ftp://host/v1",
            "file:///tmp/x",
            "http://h/v1?x=1",
            "http://h/v1#top",
        ] {
            assert!(BaseUrl::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_url_credentials_are_never_shown() {
        let url = BaseUrl::new("https://gateway:pa55-word@proxy.example:8443/v1").unwrap();
        assert_eq!(
            url.as_str(),
            "https://gateway:pa55-word@proxy.example:8443/v1"
        );
        assert_eq!(url.display(), "https://proxy.example:8443/v1");
        let shown = format!("{url} {url:?}");
        assert!(
            !shown.contains("pa55-word") && !shown.contains("gateway"),
            "{shown}"
        );
        assert_eq!(
            BaseUrl::shown("http://gateway:pa55-word@host:11434/"),
            "http://host:11434"
        );
        assert_eq!(
            BaseUrl::shown("http://gateway:pa55-word@host:x"),
            "<invalid URL>"
        );
        let e = BaseUrl::new("ftp://gateway:pa55-word@host").unwrap_err();
        assert!(!e.contains("pa55-word"), "{e}");
        let e = BaseUrl::new("http://gateway:pa55-word@host:notaport").unwrap_err();
        assert!(!e.contains("pa55-word"), "{e}");
    }

    #[test]
    fn base_url_errors_name_the_key() {
        let spec = ProviderSpec::new("acme", "acme", crate::ProviderProfile::default());
        for bad in ["ftp://host", "no scheme", "http://"] {
            let e = BaseUrl::parse(&spec, "base_url", bad).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("llm_providers.acme.base_url"), "{e}");
        }
        let e = BaseUrl::parse(&spec, "api_url", "https://h?q").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("llm_providers.acme.api_url"), "{e}");
        assert!(e.to_string().contains("query"), "{e}");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_text("中文字", 4), "中…");
        assert_eq!(truncate_text("abc", 10), "abc");
    }
}
