//! The accept loop: HTTP/1.1 connections on hyper, each request answered by
//! the router live when it arrives (a reload swaps it; requests already
//! running finish on the one they started with), graceful shutdown with
//! `hyper_util`'s [`GracefulShutdown`] and a grace period after which the
//! remaining connections are dropped, counted and logged.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
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

/// How long a cut with no request in flight lets connections close on
/// their own (idle ones, answers still being written) before cutting them.
const CUT_SETTLE: Duration = Duration::from_millis(250);

/// What a [`GatewayHandle`](crate::GatewayHandle) asks of its servers; it
/// only ever rises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stop {
    /// Accept and serve.
    Serve,
    /// Stop accepting; let requests in flight finish within the grace.
    Finish,
    /// Stop accepting and cut whatever is still in flight now (also when
    /// the handle is gone).
    Cut,
}

/// Serves the router in `routers` on `listener` until `stop` rises to
/// [`Stop::Finish`]; then stops accepting, asks every open connection to
/// finish its request in flight and close (idle ones close at once), waits
/// up to the lifecycle's `shutdown_grace` for that (or until `stop` rises to
/// [`Stop::Cut`]), and drops whatever is left (counted in the lifecycle and
/// logged).
pub(crate) async fn run(
    listener: TcpListener,
    routers: watch::Receiver<Router>,
    life: Arc<Lifecycle>,
    mut stop: watch::Receiver<Stop>,
) -> Shutdown {
    let graceful = GracefulShutdown::new();
    // The tasks serving connections, so that a forced shutdown can drop them.
    let mut conns = JoinSet::new();
    // Requests in flight on this listener's connections (the lifecycle
    // counts those of every worker): what a forced shutdown of this one cuts.
    let local = Arc::new(AtomicU64::new(0));
    loop {
        tokio::select! {
            () = reached(&mut stop, Stop::Finish) => break,
            accepted = listener.accept() => match accepted {
                Ok((sock, _peer)) => {
                    conns.spawn(connection(sock, routers.clone(), life.clone(), local.clone(), &graceful));
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
        requests = local.load(Ordering::Relaxed),
        grace_secs = grace.as_secs_f64(),
        "listener closed: finishing in-flight requests"
    );
    // Asks every connection to close once its request is done (idle ones
    // at once) when first polled; then waits for them.
    let closed = graceful.shutdown();
    tokio::pin!(closed);
    let (mut finished, cut) = tokio::select! {
        done = tokio::time::timeout(grace, &mut closed) => (done.is_ok(), false),
        () = reached(&mut stop, Stop::Cut) => (false, true),
    };
    if cut && !finished && local.load(Ordering::Relaxed) == 0 {
        // Cut with no request in flight: what is left are idle connections
        // closing and answers whose last bytes are still being written;
        // they get a moment, then whatever remains is cut (and counted).
        finished = tokio::time::timeout(CUT_SETTLE, &mut closed).await.is_ok();
    }
    // Tasks that finished but were not reaped yet are not cut.
    while conns.try_join_next().is_some() {}
    if finished || conns.is_empty() {
        tracing::info!("every in-flight request finished");
        return Shutdown::Graceful;
    }
    let connections = conns.len() as u64;
    let requests = local.load(Ordering::Relaxed);
    life.cut(connections, requests);
    tracing::warn!(
        connections,
        requests,
        grace_secs = grace.as_secs_f64(),
        "requests still in flight at the end of shutdown_grace (or cut at once): \
         cut, their connections dropped"
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
    local: Arc<AtomicU64>,
    graceful: &GracefulShutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = sock.set_nodelay(true);
    let service = hyper::service::service_fn(move |req: axum::http::Request<Incoming>| {
        // The router live now: a reload affects the next request, never
        // one already running.
        let router = routers.borrow().clone();
        let life = life.clone();
        let local = LocalGuard::new(&local);
        async move {
            let guard = (life.request(), local);
            let rest = Arc::new(std::sync::Mutex::new(None));
            let req = req.map(|b| Leftover {
                inner: Some(b),
                rest: rest.clone(),
            });
            let resp = router.oneshot(req).await.unwrap_or_else(|e| match e {});
            let (mut parts, body) = resp.into_parts();
            // A body the handler left unread (an early 413, 401 or 429):
            // read and discard it, bounded, before answering. Closing with
            // unread data resets the connection, and a client still sending
            // would get that reset instead of the answer.
            let left = rest.lock().ok().and_then(|mut r| r.take());
            if let Some(left) = left {
                if !drain(left).await {
                    parts
                        .headers
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
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
    _guard: (InflightGuard, LocalGuard),
}

/// Most of an unread request body [`drain`] reads and discards.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// Longest [`drain`] waits for the rest of an unread request body.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// A request body that, dropped before its end, leaves the rest in `rest`
/// for the connection to drain.
struct Leftover {
    inner: Option<Incoming>,
    rest: Arc<std::sync::Mutex<Option<Incoming>>>,
}

impl http_body::Body for Leftover {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.as_ref().map_or_else(
            || http_body::SizeHint::with_exact(0),
            http_body::Body::size_hint,
        )
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(b) = self.inner.take() {
            if !http_body::Body::is_end_stream(&b) {
                if let Ok(mut rest) = self.rest.lock() {
                    *rest = Some(b);
                }
            }
        }
    }
}

/// Reads and discards `body` to its end, at most [`DRAIN_BYTES`] within
/// [`DRAIN_TIME`]; whether it ended (else the connection must close).
async fn drain(mut body: Incoming) -> bool {
    let read = async {
        let mut left = DRAIN_BYTES;
        loop {
            match std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                .await
            {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(frame)) => {
                    let n = frame.data_ref().map_or(0, Bytes::len);
                    match left.checked_sub(n) {
                        Some(l) => left = l,
                        None => return false,
                    }
                }
            }
        }
    };
    tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

/// Counts a request in flight on one listener's connections until dropped.
struct LocalGuard(Arc<AtomicU64>);

impl LocalGuard {
    fn new(count: &Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

/// Resolves once `stop` has reached `level` (or its sender is gone).
async fn reached(stop: &mut watch::Receiver<Stop>, level: Stop) {
    let _ = stop.wait_for(|s| *s >= level).await;
}

/// Listening sockets for `workers` threads on `addr`. On Linux, with more
/// than one, each is its own socket with `SO_REUSEPORT`, so the kernel
/// spreads new connections over the threads and no accept is handed between
/// them; before such a group is bound, `addr` is bound once without the
/// option, so a port already in use (another gateway, started twice by
/// mistake) is an error, not a silent share of its traffic. Elsewhere every
/// worker accepts from one socket (clones of it).
pub(crate) async fn listeners(
    addr: &str,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut last = None;
    for candidate in tokio::net::lookup_host(addr).await? {
        match bind_group(candidate, workers.max(1)) {
            Ok(group) => return Ok(group),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

fn socket(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart can bind while the previous
    // process's connections are in TIME_WAIT.
    #[cfg(unix)]
    s.set_reuseaddr(true)?;
    Ok(s)
}

fn bind_group(
    addr: std::net::SocketAddr,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if workers > 1 {
        return reuse_port_group(addr, workers);
    }
    let s = socket(addr)?;
    s.bind(addr)?;
    let one = listen(s)?;
    let mut group = Vec::with_capacity(workers);
    for _ in 1..workers {
        group.push(one.try_clone()?);
    }
    group.insert(0, one);
    Ok(group)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn reuse_port_group(
    addr: std::net::SocketAddr,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let shared = || -> std::io::Result<tokio::net::TcpSocket> {
        let s = socket(addr)?;
        s.set_reuseport(true)?;
        Ok(s)
    };
    if addr.port() != 0 {
        // The probe: fails if anything listens on the port already.
        socket(addr)?.bind(addr)?;
    }
    let first = shared()?;
    first.bind(addr)?;
    let first = listen(first)?;
    let actual = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..workers {
        let s = shared()?;
        s.bind(actual)?;
        group.push(listen(s)?);
    }
    Ok(group)
}

/// Listens on a bound socket, as a std listener (non-blocking) that any
/// runtime can adopt.
fn listen(s: tokio::net::TcpSocket) -> std::io::Result<std::net::TcpListener> {
    s.listen(1024)?.into_std()
}

/// Serves on one thread per listener, each running a single-threaded
/// runtime: a request is read, routed, sent upstream and answered on the
/// thread that accepted its connection (upstream connections opened there
/// are driven there too, see `llm_router::pools`). With tokio's
/// work-stealing runtime the tasks of one request (the connection, the
/// handler, the upstream connection) woke each other's parked threads at
/// every hand-off: that took 132 µs of CPU per request at saturation on a
/// 2-core machine, 74 µs this way (docs/benchmarks.md, "Performance round
/// two").
///
/// Returns once every thread has built its runtime and adopted its
/// listener (else the first error, and the threads started so far end
/// when `release` goes), with a future that resolves when every worker has
/// shut down (after `stop`). A worker's runtime then keeps running the
/// tasks it owns (pooled upstream and database connections, background
/// settlements) until `release` ends, so that work finishing after the
/// shutdown (the spend log's last flush) still finds them.
pub(crate) async fn spawn_workers(
    listeners: Vec<std::net::TcpListener>,
    routers: &watch::Receiver<Router>,
    life: &Arc<Lifecycle>,
    stop: &watch::Receiver<Stop>,
    release: &watch::Sender<()>,
) -> std::io::Result<impl std::future::Future<Output = Shutdown> + Send + 'static> {
    let mut done = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (routers, life, stop) = (routers.clone(), life.clone(), stop.clone());
        let mut released = release.subscribe();
        std::thread::Builder::new()
            .name(format!("llm-gateway-{i}"))
            .spawn(move || {
                // Upstream connections opened here are driven here.
                llm_router::pools::thread_local_connection_pools();
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let span = tracing::info_span!("worker", worker = i);
                    tokio::select! {
                        outcome = tracing::Instrument::instrument(run(listener, routers, life, stop), span) => {
                            let _ = tx.send(outcome);
                            // Ends when the gateway is released (its handle
                            // and every lease are gone).
                            while released.changed().await.is_ok() {}
                        }
                        // Released without a shutdown: dropping `run`
                        // drops the listener and every connection.
                        () = async { while released.changed().await.is_ok() {} } => {}
                    }
                });
            })?;
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(std::io::Error::other(
                    "a gateway worker thread ended at start",
                ))
            }
        }
        done.push(rx);
    }
    Ok(async move {
        let mut outcome = Shutdown::Graceful;
        for rx in done {
            // A worker that ended without reporting (its thread panicked)
            // may have dropped requests.
            if !matches!(rx.await, Ok(Shutdown::Graceful)) {
                outcome = Shutdown::Forced;
            }
        }
        outcome
    })
}
