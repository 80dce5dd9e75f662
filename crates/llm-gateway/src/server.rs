//! The accept loop: HTTP/1.1 connections on hyper, graceful shutdown with
//! `hyper_util`'s [`GracefulShutdown`] and a grace period after which the
//! remaining connections are dropped.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

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

/// Serves `router` on `listener` until `stop` turns true; then stops
/// accepting, asks every open connection to finish its request in flight and
/// close (idle ones close at once), waits up to `grace` for that, and drops
/// whatever is left.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) -> Shutdown {
    let graceful = GracefulShutdown::new();
    // The tasks serving connections, so that a forced shutdown can drop them.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, _peer)) => {
                    conns.spawn(connection(sock, router.clone(), &graceful));
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
    tracing::debug!(
        connections = graceful.count(),
        "shutting down: closing open connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_ok()
    {
        return Shutdown::Graceful;
    }
    // Tasks that finished but were not reaped yet are not cut.
    while conns.try_join_next().is_some() {}
    tracing::warn!(
        connections = conns.len(),
        grace_secs = grace.as_secs_f64(),
        "requests still in flight after shutdown_grace; dropping their connections"
    );
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    Shutdown::Forced
}

/// Serves one connection, watched by `graceful`.
fn connection(
    sock: tokio::net::TcpStream,
    router: Router,
    graceful: &GracefulShutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = sock.set_nodelay(true);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(sock), service);
    let conn = graceful.watch(conn);
    async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
