//! Model downloads: streamed `POST /api/pull`.

use std::time::Duration;

use futures::StreamExt;
use llm_core::http;
use llm_core::ProviderError;
use serde::Serialize;

use crate::api::Api;
use crate::error::{self, parse_error};
use crate::wire;

/// Longest line of a pull stream.
const MAX_LINE: usize = 64 * 1024;
/// Shortest gap allowed between two progress lines: verifying the digest of a
/// large model can take minutes without a line.
const MIN_PULL_IDLE: Duration = Duration::from_secs(600);

/// One progress report of a model download (a line of the `/api/pull` stream).
///
/// The server reports `pulling manifest`, then `pulling <digest prefix>` lines
/// with `digest`, `total` and `completed` bytes per layer, then
/// `verifying sha256 digest`, `writing manifest`, possibly
/// `removing unused layers`, and finally `success`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PullProgress {
    /// What the server is doing, e.g. `pulling manifest` or `success`.
    pub status: String,
    /// Layer digest (`sha256:<hex>`) of a download line.
    pub digest: Option<String>,
    /// Size of the layer in bytes.
    pub total: Option<u64>,
    /// Bytes of the layer downloaded so far.
    pub completed: Option<u64>,
}

impl PullProgress {
    /// Fraction of the layer downloaded, 0 to 1, when the line reports sizes.
    pub fn fraction(&self) -> Option<f64> {
        match self.total {
            Some(total) if total > 0 => {
                Some((self.completed.unwrap_or(0) as f64 / total as f64).min(1.0))
            }
            _ => None,
        }
    }

    /// Whether this is the final `success` line.
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}

impl Api {
    /// Downloads `model`, calling `progress` for every line the server sends.
    ///
    /// Succeeds on the `success` line. An `{"error":…}` line inside the `200`
    /// stream (e.g. an unknown model) is an error, and so is a stream that ends
    /// before `success` (incomplete). A request rejected up front (`400` for an
    /// invalid name) is an HTTP error.
    pub(crate) async fn pull(
        &self,
        model: &str,
        progress: &mut (dyn FnMut(&PullProgress) + Send),
    ) -> Result<(), ProviderError> {
        let body = wire::PullRequest {
            model,
            stream: true,
        };
        let resp = http::send(
            &self.name,
            self.post("/api/pull", &body),
            self.timeout,
            parse_error,
        )
        .await?;
        let idle = self.timeout.max(MIN_PULL_IDLE);
        let mut lines = std::pin::pin!(http::ndjson_lines(&self.name, resp, idle, MAX_LINE));
        while let Some(line) = lines.next().await {
            let line: wire::PullLine = http::decode_json(&self.name, &line?)?;
            if let Some(e) = line.error {
                return Err(error::in_stream(
                    &self.name,
                    &format!("pulling `{model}`"),
                    &e.message(),
                ));
            }
            let p = PullProgress {
                status: line.status.unwrap_or_default(),
                digest: line.digest,
                total: line.total,
                completed: line.completed,
            };
            progress(&p);
            if p.is_success() {
                return Ok(());
            }
        }
        Err(ProviderError::incomplete(
            &self.name,
            format!("the pull of `{model}` ended before the server reported success"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_of_a_layer() {
        let p = PullProgress {
            status: "pulling dde5aa3fc5ff".into(),
            digest: Some("sha256:dde5".into()),
            total: Some(200),
            completed: Some(50),
        };
        assert_eq!(p.fraction(), Some(0.25));
        let p = PullProgress {
            completed: None,
            ..p
        };
        assert_eq!(p.fraction(), Some(0.0));
        assert_eq!(PullProgress::default().fraction(), None);
        assert!(!p.is_success());
    }
}
