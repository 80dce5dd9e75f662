//! A small HTTP/1.1 mock server on loopback that answers with exact bytes and
//! can misbehave on purpose: hang, reset, cut a body short, drip chunks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the body of a mocked response is sent.
#[derive(Debug, Clone)]
pub enum MockBody {
    /// One body with `content-length`.
    Full(Vec<u8>),
    /// `transfer-encoding: chunked`, one write (and flush) per piece.
    Chunks(Vec<Vec<u8>>),
    /// Chunked pieces, then the connection is closed without the final chunk.
    ChunksThenCut(Vec<Vec<u8>>),
    /// A `content-length` larger than the bytes sent, then the connection closes.
    Truncated(Vec<u8>),
    /// Nothing is ever sent (not even the status line).
    Hang,
    /// The connection is closed at once, with no response.
    Reset,
}

/// A mocked response.
#[derive(Debug, Clone)]
pub struct MockReply {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body and how it is sent.
    pub body: MockBody,
}

impl MockReply {
    /// A response with `status`, a `content-type` and a full body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: MockBody::Full(body.into()),
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// A streamed response: the pieces are sent as separate chunks.
    pub fn chunked(status: u16, content_type: &str, pieces: Vec<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: MockBody::Chunks(pieces),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: MockBody) -> Self {
        self.body = body;
        self
    }

    /// The body bytes, whatever the sending mode.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            MockBody::Full(b) | MockBody::Truncated(b) => b.clone(),
            MockBody::Chunks(p) | MockBody::ChunksThenCut(p) => p.concat(),
            MockBody::Hang | MockBody::Reset => Vec::new(),
        }
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone)]
struct Route {
    method: String,
    path: String,
    reply: MockReply,
    times: Option<usize>,
}

#[derive(Debug, Default)]
struct State {
    routes: Vec<Route>,
    requests: Vec<RecordedRequest>,
}

/// The mock server. It stops when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MockServer {
    /// Starts a server on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(sock, st).await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `method path` (path without query) with `reply`, every time.
    pub fn on(&self, method: &str, path: &str, reply: MockReply) -> &Self {
        lock(&self.state).routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            reply,
            times: None,
        });
        self
    }

    /// Answers `method path` with `reply` for the next `times` requests only;
    /// routes added earlier take precedence while they last.
    pub fn on_times(&self, method: &str, path: &str, reply: MockReply, times: usize) -> &Self {
        lock(&self.state).routes.push(Route {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            reply,
            times: Some(times),
        });
        self
    }

    /// Removes every route.
    pub fn reset(&self) {
        lock(&self.state).routes.clear();
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// A loopback URL whose port refuses connections.
    pub async fn refused_url() -> std::io::Result<String> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        drop(l);
        Ok(format!("http://{addr}"))
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(mut sock: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await? else {
            return Ok(());
        };
        let path_only = req.path.split('?').next().unwrap_or("").to_string();
        let reply = {
            let mut st = lock(&state);
            st.requests.push(req.clone());
            let pos = st
                .routes
                .iter()
                .position(|r| r.method == req.method && r.path == path_only && r.times != Some(0));
            match pos {
                Some(i) => {
                    let route = &mut st.routes[i];
                    if let Some(t) = route.times.as_mut() {
                        *t -= 1;
                    }
                    route.reply.clone()
                }
                None => MockReply::json(
                    404,
                    format!("{{\"error\":\"no mock for {} {}\"}}", req.method, path_only),
                ),
            }
        };
        if !write_reply(&mut sock, &reply).await? {
            return Ok(());
        }
    }
}

/// Reads one request; `None` at a clean end of the connection.
async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<RecordedRequest>> {
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + len].to_vec();
    buf.drain(..body_start + len);
    Ok(Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes a reply; `false` when the connection must close afterwards.
async fn write_reply(sock: &mut TcpStream, reply: &MockReply) -> std::io::Result<bool> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &reply.body {
        MockBody::Hang => {
            futures::future::pending::<()>().await;
            Ok(false)
        }
        MockBody::Reset => Ok(false),
        MockBody::Full(b) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", b.len()));
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(b).await?;
            sock.flush().await?;
            Ok(true)
        }
        MockBody::Truncated(b) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", b.len() * 2 + 10));
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(b).await?;
            sock.flush().await?;
            Ok(false)
        }
        MockBody::Chunks(pieces) | MockBody::ChunksThenCut(pieces) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            sock.write_all(head.as_bytes()).await?;
            sock.flush().await?;
            for p in pieces.iter().filter(|p| !p.is_empty()) {
                sock.write_all(format!("{:x}\r\n", p.len()).as_bytes())
                    .await?;
                sock.write_all(p).await?;
                sock.write_all(b"\r\n").await?;
                sock.flush().await?;
                // Give the client a chance to read each piece on its own.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if matches!(reply.body, MockBody::ChunksThenCut(_)) {
                return Ok(false);
            }
            sock.write_all(b"0\r\n\r\n").await?;
            sock.flush().await?;
            Ok(true)
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
