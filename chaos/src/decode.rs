//! Decoding entry points for the fuzz targets in `fuzz/` and for the corpus
//! replay test (which runs the same functions on the stable toolchain).
//!
//! Every function takes arbitrary bytes, must never panic, and returns `Err`
//! when a property that must hold for *any* input does not (for a stream:
//! exactly one terminal item — `Done` or an error — and nothing after it).
//!
//! The provider decoders are not public API, so [`Harness`] reaches them the
//! only way an application can: it serves the bytes from an in-process HTTP
//! server on 127.0.0.1 and calls the real provider. Inputs of the framing and
//! provider functions start with one control byte that chooses how the
//! payload is cut into network chunks (1–16 bytes, or whole).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use llm_core::cache::CachedResponse;
use llm_core::config::Config;
use llm_core::{LlmRequest, Provider, ProviderProfile, ProviderSpec, StreamEvent};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::http1;

/// Splits `data` into its control byte and payload chunks.
pub fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&ctrl, payload)) = data.split_first() else {
        return Vec::new();
    };
    if ctrl >= 0xF0 || payload.is_empty() {
        return vec![payload.to_vec()];
    }
    let size = usize::from(ctrl % 16) + 1;
    payload.chunks(size).map(<[u8]>::to_vec).collect()
}

/// An environment for `${VAR}` expansion that never reads the process's.
fn fake_env(name: &str) -> Option<String> {
    name.len()
        .is_multiple_of(2)
        .then(|| format!("value-of-{name}"))
}

/// Parses configuration text (lossy UTF-8) as `Config::from_toml_str_with_env`.
/// Errors must render; a parsed config must render with `Debug`.
pub fn config(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    match Config::from_toml_str_with_env(&text, None, &fake_env) {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let shown = e.to_string();
            if shown.is_empty() {
                return Err("a configuration error with an empty message".into());
            }
        }
    }
    Ok(())
}

/// Decodes a stored cache entry (`CachedResponse::decode`); what decodes must
/// encode back to something that decodes to the same value.
pub fn cache_entry(data: &[u8]) -> Result<(), String> {
    if let Ok(v) = CachedResponse::decode(data) {
        let again = CachedResponse::decode(&v.encode())
            .map_err(|e| format!("a decoded entry does not round-trip: {e}"))?;
        if again != v {
            return Err("a decoded entry changes when encoded and decoded again".into());
        }
    }
    Ok(())
}

fn response(data: &[u8], content_type: &str) -> reqwest::Response {
    let pieces = chunks(data)
        .into_iter()
        .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
    let body = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let mut resp = hyper::http::Response::new(body);
    if let Ok(v) = hyper::http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert("content-type", v);
    }
    reqwest::Response::from(resp)
}

thread_local! {
    static RUNTIME: Option<Runtime> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok();
}

fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    RUNTIME.with(|rt| match rt {
        Some(rt) => Ok(rt.block_on(f)),
        None => Err("cannot build a Tokio runtime".to_string()),
    })
}

/// `llm_core::http::sse_events` over the payload, cut as the control byte says.
/// Returns the number of events.
pub fn sse(data: &[u8]) -> Result<usize, String> {
    block_on(async {
        let events = llm_core::http::sse_events(
            "fuzz",
            response(data, "text/event-stream"),
            Duration::from_secs(5),
        );
        events.collect::<Vec<_>>().await.len()
    })
}

/// `llm_core::http::ndjson_lines` over the payload. Yielded lines never
/// contain `\n`; nothing follows an error.
pub fn ndjson(data: &[u8]) -> Result<usize, String> {
    block_on(async {
        let lines = llm_core::http::ndjson_lines(
            "fuzz",
            response(data, "application/x-ndjson"),
            Duration::from_secs(5),
            4096,
        );
        let items: Vec<_> = lines.collect().await;
        check_terminal_errors(&items, |l: &bytes::Bytes| {
            if l.contains(&b'\n') {
                Some("a line with a newline in it".to_string())
            } else {
                None
            }
        })?;
        Ok(items.len())
    })?
}

fn check_terminal_errors<T, E>(
    items: &[Result<T, E>],
    bad: impl Fn(&T) -> Option<String>,
) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        match item {
            Ok(v) => {
                if let Some(why) = bad(v) {
                    return Err(why);
                }
            }
            Err(_) if i + 1 != items.len() => {
                return Err(format!("{} item(s) after an error", items.len() - i - 1));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// What the fixed-reply server sends next.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    chunked: bool,
    body: Vec<Vec<u8>>,
}

/// The provider decoders behind a fixed-reply server on 127.0.0.1: one
/// runtime, one server, one `openai` and one `ollama` provider, reused for
/// every input (keep-alive, so millions of inputs do not exhaust ports).
pub struct Harness {
    runtime: Runtime,
    reply: Arc<Mutex<Reply>>,
    openai: Arc<dyn Provider>,
    ollama: Arc<dyn Provider>,
    anthropic: Arc<dyn Provider>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

/// How a provider call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// An answer (for a stream: the text up to `Done`).
    Answer(String),
    /// A typed error.
    Error(String),
}

impl Harness {
    /// Starts the server and builds the providers.
    pub fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let reply = Arc::new(Mutex::new(Reply {
            status: 200,
            content_type: "application/json",
            chunked: false,
            body: Vec::new(),
        }));
        let addr = runtime.block_on(serve_fixed(reply.clone()))?;
        let build = |name: &str, kind: &str, base: String, model: &str| {
            let profile = ProviderProfile {
                models: vec![model.to_string()],
                default_model: Some(model.to_string()),
                timeout: Duration::from_secs(10),
                ..ProviderProfile::default()
            };
            let mut spec = ProviderSpec::new(name, kind, profile).option("base_url", base);
            if kind == "anthropic" {
                spec = spec.option("api_key", "sk-ant-fuzz");
            }
            llm_core::registry::build_spec(&spec).map_err(|e| e.to_string())
        };
        let openai = build(
            "openai",
            "openai",
            format!("http://{addr}/v1"),
            "gpt-4o-mini",
        )?;
        let ollama = build("ollama", "ollama", format!("http://{addr}"), "llama3.2")?;
        let anthropic = build(
            "anthropic",
            "anthropic",
            format!("http://{addr}"),
            "claude-sonnet-4-5-20250929",
        )?;
        Ok(Self {
            runtime,
            reply,
            openai,
            ollama,
            anthropic,
        })
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(PoisonError::into_inner) = reply;
    }

    fn generate(&self, p: &Arc<dyn Provider>) -> Decoded {
        let p = p.clone();
        let out = self
            .runtime
            .block_on(async move { p.generate(&LlmRequest::new("fuzz")).await });
        match out {
            Ok(r) => Decoded::Answer(r.content),
            Err(e) => Decoded::Error(e.to_string()),
        }
    }

    fn stream(&self, p: &Arc<dyn Provider>) -> Result<Decoded, String> {
        let p = p.clone();
        self.runtime.block_on(async move {
            let s = match p.stream(&LlmRequest::new("fuzz")).await {
                Ok(s) => s,
                Err(e) => return Ok(Decoded::Error(e.to_string())),
            };
            let items: Vec<_> = s.collect().await;
            let mut text = String::new();
            for (i, item) in items.iter().enumerate() {
                let last = i + 1 == items.len();
                match item {
                    Ok(StreamEvent::Delta { text: t }) => text.push_str(t),
                    Ok(
                        StreamEvent::Usage { .. }
                        | StreamEvent::ToolCall { .. }
                        | StreamEvent::Logprobs { .. }
                        | StreamEvent::Thinking { .. }
                        | StreamEvent::ThinkingSignature { .. }
                        | StreamEvent::RedactedThinking { .. },
                    ) => {}
                    Ok(StreamEvent::Done { .. }) if last => return Ok(Decoded::Answer(text)),
                    Err(e) if last => return Ok(Decoded::Error(e.to_string())),
                    Ok(StreamEvent::Done { .. }) | Err(_) => {
                        return Err(format!("{} item(s) after the end", items.len() - i - 1))
                    }
                }
            }
            Err("the stream ended silently, with neither Done nor an error".into())
        })
    }

    /// A `200` JSON answer of the OpenAI kind (`generate`).
    pub fn openai_json(&self, data: &[u8]) -> Decoded {
        self.set(Reply {
            status: 200,
            content_type: "application/json",
            chunked: false,
            body: vec![data.to_vec()],
        });
        self.generate(&self.openai)
    }

    /// A `200` event stream of the OpenAI kind (`stream`), cut as the control byte says.
    pub fn openai_sse(&self, data: &[u8]) -> Result<Decoded, String> {
        self.set(Reply {
            status: 200,
            content_type: "text/event-stream",
            chunked: true,
            body: chunks(data),
        });
        self.stream(&self.openai)
    }

    /// An error status (from the first byte: 400–599) with the rest as the body.
    pub fn openai_error(&self, data: &[u8]) -> Result<Decoded, String> {
        let (status, body) = error_reply(data);
        self.set(Reply {
            status,
            content_type: "application/json",
            chunked: false,
            body: vec![body.to_vec()],
        });
        match self.generate(&self.openai) {
            Decoded::Answer(_) => Err(format!("HTTP {status} was taken for an answer")),
            d => Ok(d),
        }
    }

    /// A `200` JSON answer of the Ollama kind (`generate`).
    pub fn ollama_json(&self, data: &[u8]) -> Decoded {
        self.set(Reply {
            status: 200,
            content_type: "application/json; charset=utf-8",
            chunked: false,
            body: vec![data.to_vec()],
        });
        self.generate(&self.ollama)
    }

    /// A `200` JSON answer of the Anthropic kind (`generate`).
    pub fn anthropic_json(&self, data: &[u8]) -> Decoded {
        self.set(Reply {
            status: 200,
            content_type: "application/json",
            chunked: false,
            body: vec![data.to_vec()],
        });
        self.generate(&self.anthropic)
    }

    /// A `200` event stream of the Anthropic kind (`stream`), cut as the control byte says.
    pub fn anthropic_sse(&self, data: &[u8]) -> Result<Decoded, String> {
        self.set(Reply {
            status: 200,
            content_type: "text/event-stream",
            chunked: true,
            body: chunks(data),
        });
        self.stream(&self.anthropic)
    }

    /// A `200` NDJSON stream of the Ollama kind (`stream`), cut as the control byte says.
    pub fn ollama_ndjson(&self, data: &[u8]) -> Result<Decoded, String> {
        self.set(Reply {
            status: 200,
            content_type: "application/x-ndjson",
            chunked: true,
            body: chunks(data),
        });
        self.stream(&self.ollama)
    }
}

fn error_reply(data: &[u8]) -> (u16, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (400 + u16::from(b) % 200, rest),
        None => (500, &[]),
    }
}

async fn serve_fixed(reply: Arc<Mutex<Reply>>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Ok(Some(_req)) = http1::read_request(&mut sock, &mut buf).await {
                    let r = reply.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let bytes = if r.chunked {
                        let mut b = http1::chunked_head(r.status, r.content_type);
                        for piece in r.body.iter().filter(|p| !p.is_empty()) {
                            b.extend_from_slice(&http1::chunk(piece));
                        }
                        b.extend_from_slice(http1::LAST_CHUNK);
                        b
                    } else {
                        http1::full(r.status, r.content_type, &[], &r.body.concat())
                    };
                    if http1::send(&mut sock, &bytes).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_byte_cuts_the_payload() {
        assert!(chunks(b"").is_empty());
        assert_eq!(chunks(b"\x01abcd"), vec![b"ab".to_vec(), b"cd".to_vec()]);
        assert_eq!(chunks(b"\xffabcd"), vec![b"abcd".to_vec()]);
    }

    #[test]
    fn the_harness_decodes_real_answers() {
        let h = Harness::new().unwrap();
        let body = crate::protocol::openai::completion("你好");
        assert_eq!(
            h.openai_json(body.as_bytes()),
            Decoded::Answer("你好".into())
        );
        let mut sse = vec![0x03u8];
        for e in crate::protocol::openai::stream_events("a<b>", true) {
            sse.extend(e);
        }
        assert_eq!(h.openai_sse(&sse).unwrap(), Decoded::Answer("a<b>".into()));
        let mut nd = vec![0xffu8];
        for l in crate::protocol::ollama::stream_lines("秋风") {
            nd.extend(l);
        }
        assert_eq!(
            h.ollama_ndjson(&nd).unwrap(),
            Decoded::Answer("秋风".into())
        );
        assert!(matches!(
            h.openai_sse(b"\x01data: {}\n\n").unwrap(),
            Decoded::Error(_)
        ));
        assert!(matches!(
            h.openai_error(b"\x64{}").unwrap(),
            Decoded::Error(_)
        ));
    }
}
