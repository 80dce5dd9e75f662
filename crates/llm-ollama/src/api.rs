//! The HTTP client shared by the provider and the service manager: endpoint
//! URLs, configured headers, and the non-generation endpoints.

use std::fmt;
use std::time::Duration;

use llm_core::http::{self, reqwest};
use llm_core::{ConfigError, ProviderError};

use crate::config::OllamaConfig;
use crate::error::{parse_error, ImageError};
use crate::wire;

/// Largest image fetched from an `http(s)` URL, in bytes (20 MiB).
pub const MAX_IMAGE_BYTES: u64 = 20 * 1024 * 1024;

/// Longest wait of an availability probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured connection to one Ollama server.
#[derive(Clone)]
pub(crate) struct Api {
    /// Provider instance name (for errors).
    pub name: String,
    /// `base_url` without a trailing slash.
    pub base: String,
    /// `base_url` without credentials, for messages.
    pub display: String,
    /// Per-request timeout.
    pub timeout: Duration,
    client: http::HttpClient,
    headers: reqwest::header::HeaderMap,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .field("base", &self.display)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client for `config.base_url`.
    pub fn new(name: &str, config: &OllamaConfig, timeout: Duration) -> Result<Self, ConfigError> {
        config.check()?;
        let base = config
            .checked_url()
            .map_err(|m| ConfigError::new(m).with_key("base_url"))?;
        Ok(Self {
            name: name.to_string(),
            base: base.as_str().to_string(),
            display: base.display().to_string(),
            timeout,
            client: http::client(CONNECT_TIMEOUT.min(timeout))?,
            headers: http::header_map(&config.headers)?,
        })
    }

    /// `POST path` with a JSON body and the configured headers.
    pub fn post<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .headers(self.headers.clone())
            .json(body)
    }

    /// `GET path` with the configured headers.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .headers(self.headers.clone())
    }

    /// `GET /api/version` within `timeout`: the server's version (`None` when it
    /// answers 2xx without one).
    pub async fn version(&self, timeout: Duration) -> Result<Option<String>, ProviderError> {
        let resp = http::send(&self.name, self.get("/api/version"), timeout, parse_error).await?;
        let v: wire::Version = http::read_json(&self.name, resp, timeout)
            .await
            .unwrap_or_default();
        Ok(v.version)
    }

    /// Whether the server answers `GET /api/version` within [`PROBE_TIMEOUT`].
    pub async fn probe(&self) -> bool {
        self.check().await.is_ok()
    }

    /// `GET /api/version` within [`PROBE_TIMEOUT`]: `Err` says why the server
    /// cannot take requests (no connection, a timeout, an error status such
    /// as a proxy's 401).
    pub async fn check(&self) -> Result<(), ProviderError> {
        let request = self.get("/api/version");
        let errors: fn(&[u8]) -> http::ErrorBody = parse_error;
        http::probe(
            &self.name,
            request,
            PROBE_TIMEOUT.min(self.timeout),
            &errors,
        )
        .await
    }

    /// `GET /api/tags`: the names of the models on the server.
    pub async fn tags(&self) -> Result<Vec<String>, ProviderError> {
        let started = tokio::time::Instant::now();
        let resp = http::send(&self.name, self.get("/api/tags"), self.timeout, parse_error).await?;
        let left = self.timeout.saturating_sub(started.elapsed());
        let tags: wire::Tags = http::read_json(&self.name, resp, left).await?;
        Ok(tags
            .models
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.name.or(m.model))
            .collect())
    }
}

impl Api {
    /// Fetches the image at `url` (an `http(s)` URL) within `timeout` and
    /// returns its bytes in base64, as Ollama takes images.
    ///
    /// No configured header is sent (they are meant for the Ollama server).
    /// The answer must be 2xx and at most `limit` bytes (checked against
    /// `Content-Length` first, then while reading), and an image: a
    /// `Content-Type` of `image/*`, or else bytes that start like a PNG, JPEG,
    /// GIF or WebP file.
    pub async fn fetch_image(
        &self,
        url: &str,
        timeout: Duration,
        limit: u64,
    ) -> Result<String, ImageError> {
        let shown = shown_url(url);
        let fail = |reason: String| ImageError::Fetch {
            url: shown.clone(),
            reason,
        };
        let too_large = || ImageError::TooLarge {
            url: shown.clone(),
            limit,
        };
        let work = async {
            let mut resp = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(fail(format!("HTTP {}", status.as_u16())));
            }
            if resp.content_length().is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|t| t.trim().to_ascii_lowercase());
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?
            {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            let declared = content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("image/"));
            if !declared && !looks_like_image(&body) {
                return Err(ImageError::NotAnImage {
                    url: shown.clone(),
                    content_type: content_type.unwrap_or_else(|| "none".to_string()),
                });
            }
            Ok(base64(&body))
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(fail(format!(
                "no complete answer within {:.1} s",
                timeout.as_secs_f64()
            ))),
        }
    }
}

/// `url` without credentials, query or fragment (signed URLs carry secrets
/// there), at most 120 characters, for messages.
pub(crate) fn shown_url(url: &str) -> String {
    let shown = match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or("").to_string(),
    };
    http::truncate_text(&shown, 120)
}

/// Whether `bytes` start like a PNG, JPEG, GIF or WebP file.
fn looks_like_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || bytes.starts_with(b"GIF87a")
        || bytes.starts_with(b"GIF89a")
        || (bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP")
}

/// Standard base64 (RFC 4648, with padding), as Go encodes `[]byte` in JSON.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3F) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// `name` with the implicit `:latest` tag made explicit, for comparing model names.
pub(crate) fn canonical_model(name: &str) -> String {
    let name = name.trim();
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        for (raw, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (&[0xFF, 0xFE, 0xFD, 0x00][..], "//79AA=="),
        ] {
            assert_eq!(base64(raw), encoded);
        }
    }

    #[test]
    fn shown_urls_hide_what_may_be_secret() {
        assert_eq!(
            shown_url("https://user:pw@img.example.com/a/b.png?X-Amz-Signature=abc#frag"),
            "https://img.example.com/a/b.png"
        );
        assert!(shown_url(&format!("https://e.com/{}", "x".repeat(300))).ends_with('…'));
    }

    #[test]
    fn image_magic_numbers() {
        assert!(looks_like_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(looks_like_image(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(looks_like_image(b"GIF89a\x01\0"));
        assert!(looks_like_image(b"RIFF\x24\0\0\0WEBPVP8 "));
        assert!(!looks_like_image(b"<!doctype html>"));
        assert!(!looks_like_image(b""));
    }

    #[test]
    fn canonical_names_have_a_tag() {
        assert_eq!(canonical_model("llama3.2"), "llama3.2:latest");
        assert_eq!(canonical_model("llama3:8b"), "llama3:8b");
        assert_eq!(canonical_model("ns/model"), "ns/model:latest");
        assert_eq!(
            canonical_model("registry.local:5000/ns/model"),
            "registry.local:5000/ns/model:latest"
        );
    }
}
