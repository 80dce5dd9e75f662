//! The accept loop: HTTP/1.1 connections on hyper, each request answered by
//! the router live when it arrives (a reload swaps it; requests already
//! running finish on the one they started with), graceful shutdown with
//! `hyper_util`'s [`GracefulShutdown`] and a grace period after which the
//! remaining connections are dropped, counted and logged.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::lifecycle::{InflightGuard, Lifecycle};

/// How long a connection may wait for the headers of its next request,
/// idle keep-alive time included (hyper's timer covers both). Longer than
/// the idle timeouts of common load balancers and proxies (AWS ALB and
/// nginx: 60 s), so the balancer, not the gateway, closes an idle pooled
/// connection: a gateway that closed it first would race the balancer's
/// next request on it (a 502). hyper's default is 30 s.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every in-flight request finished within the grace period.
    Graceful,
    /// The grace period passed; the remaining connections were dropped.
    Forced,
}

/// Serves the router in `routers` on `listener` until `stop` turns true;
/// then stops accepting, asks every open connection to finish its request
/// in flight and close (idle ones close at once), waits up to the
/// lifecycle's `shutdown_grace` for that, and drops whatever is left
/// (counted in the lifecycle and logged).
pub(crate) async fn run(
    listener: TcpListener,
    routers: watch::Receiver<Router>,
    life: Arc<Lifecycle>,
    mut stop: watch::Receiver<bool>,
) -> Shutdown {
    let graceful = GracefulShutdown::new();
    // The tasks serving connections, so that a forced shutdown can drop them.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, _peer)) => {
                    conns.spawn(connection(sock, routers.clone(), life.clone(), &graceful));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    life.stopped();
    let grace = life.timings().shutdown_grace;
    tracing::info!(
        connections = graceful.count(),
        requests = life.inflight(),
        grace_secs = grace.as_secs_f64(),
        "listener closed: finishing in-flight requests"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok()
    {
        tracing::info!("every in-flight request finished");
        return Shutdown::Graceful;
    }
    // Tasks that finished but were not reaped yet are not cut.
    while conns.try_join_next().is_some() {}
    let connections = conns.len() as u64;
    let requests = life.inflight();
    life.cut(connections, requests);
    tracing::warn!(
        connections,
        requests,
        grace_secs = grace.as_secs_f64(),
        "requests still in flight after shutdown_grace: cut, their connections dropped"
    );
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    Shutdown::Forced
}

/// Serves one connection, watched by `graceful`.
fn connection(
    sock: tokio::net::TcpStream,
    routers: watch::Receiver<Router>,
    life: Arc<Lifecycle>,
    graceful: &GracefulShutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = sock.set_nodelay(true);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        // The router live now: a reload affects the next request, never
        // one already running.
        let router = routers.borrow().clone();
        let life = life.clone();
        async move {
            let guard = life.request();
            let resp = router.oneshot(req).await.unwrap_or_else(|e| match e {});
            let (mut parts, body) = resp.into_parts();
            if life.draining() {
                // Keep-alive clients reconnect, to another replica.
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            let body = Body::new(Counted {
                inner: body,
                _guard: guard,
            });
            Ok::<_, Infallible>(axum::http::Response::from_parts(parts, body))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(IDLE_TIMEOUT))
        .serve_connection(TokioIo::new(sock), service);
    let conn = graceful.watch(conn);
    async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// A response body that keeps its request counted in flight until it is
/// fully sent (or dropped).
struct Counted {
    inner: Body,
    _guard: InflightGuard,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
