//! Key authentication (bearer or `x-api-key`) and the concurrency limit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use llm_router::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::protocols::anthropic_messages;
use super::AppState;

/// The accepted bearer keys, kept only as SHA-256 digests and compared in
/// constant time (neither a key's bytes nor its length leak through timing).
pub(crate) struct Keys {
    digests: Vec<[u8; 32]>,
}

impl Keys {
    pub(crate) fn new(keys: &[SecretString]) -> Self {
        Self {
            digests: keys.iter().map(|k| digest(k.expose_secret())).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.digests.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub(crate) fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented);
        let mut ok = subtle::Choice::from(0u8);
        for k in &self.digests {
            ok |= k.ct_eq(&d);
        }
        bool::from(ok)
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Rejects requests without one of the configured keys (401), given as
/// `Authorization: Bearer <key>` or (as Anthropic's clients send it)
/// `x-api-key: <key>`. With virtual keys on, those are accepted too, with
/// their limits ([`tenancy::enforce`](crate::tenancy::enforce)).
pub(crate) async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(tenancy) = st.tenancy.clone() {
        return crate::tenancy::enforce::authenticate(&st, tenancy, req, next).await;
    }
    if st.keys.is_empty() {
        return next.run(req).await;
    }
    let (bearer, api_key) = crate::tenancy::enforce::presented_keys(req.headers());
    let error = match (bearer, api_key) {
        (None, None) => ApiError::missing_key(),
        (b, k) if b.into_iter().chain(k).any(|t| st.keys.accepts(t)) => return next.run(req).await,
        _ => ApiError::wrong_key(),
    };
    layer_error(&req, error)
}

/// A shared layer's error, in the shape of the protocol the request came in by.
pub(crate) fn layer_error(req: &Request, error: ApiError) -> Response {
    if anthropic_messages::wants_anthropic(req.uri().path(), req.headers()) {
        anthropic_messages::layer_error(error)
    } else {
        error.into_response()
    }
}

/// Answers 429 (with `Retry-After`) when `max_concurrency` requests are in
/// flight. A permit is held until the response body has been produced, so a
/// stream counts for as long as it runs.
pub(crate) async fn limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(permit) = Arc::clone(&st.inflight).try_acquire_owned() else {
        return layer_error(&req, ApiError::overloaded(st.settings.max_concurrency));
    };
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        Body::new(Permitted {
            inner: body,
            permit: Some(permit),
        }),
    )
}

/// A response body that holds a concurrency permit until its last frame has
/// been produced (or it is dropped).
struct Permitted {
    inner: Body,
    permit: Option<OwnedSemaphorePermit>,
}

impl HttpBody for Permitted {
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
            // Released before the last bytes are written, so a client that has
            // read the whole answer can immediately send the next request.
            self.permit = None;
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

/// A semaphore with `n` permits (at least one).
pub(crate) fn semaphore(n: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly() {
        let k = Keys::new(&[SecretString::from("sk-one"), SecretString::from("sk-two")]);
        assert!(k.accepts("sk-one"));
        assert!(k.accepts("sk-two"));
        assert!(!k.accepts("sk-on"));
        assert!(!k.accepts("sk-one "));
        assert!(!k.accepts(""));
        assert!(Keys::new(&[]).is_empty());
    }
}
