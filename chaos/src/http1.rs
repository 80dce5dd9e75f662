//! Just enough HTTP/1.1 to serve exact bytes and misbehave on purpose:
//! requests with `content-length` bodies, responses with a length, chunked
//! streams, and every way of breaking them.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request from `sock`, keeping extra bytes in `buf` for the next
/// one. `Ok(None)`: the peer closed the connection between requests.
pub async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(invalid("connection closed inside a request head"))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(invalid("request body too large"));
    }
    buf.drain(..head_end + 4);
    while buf.len() < len {
        let mut chunk = vec![0u8; (len - buf.len()).min(64 * 1024)];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("connection closed inside a request body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..len).collect();
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "",
        _ => "Unknown",
    }
}

/// The status line and headers (ending with the blank line).
pub fn head(status: u16, headers: &[(&str, String)]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        h.push_str(k);
        h.push_str(": ");
        h.push_str(v);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// A complete response with `content-length`.
pub fn full(status: u16, content_type: &str, extra: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", content_type.to_string()),
        ("content-length", body.len().to_string()),
    ];
    headers.extend(extra.iter().cloned());
    let mut out = head(status, &headers);
    out.extend_from_slice(body);
    out
}

/// The head of a chunked response.
pub fn chunked_head(status: u16, content_type: &str) -> Vec<u8> {
    head(
        status,
        &[
            ("content-type", content_type.to_string()),
            ("transfer-encoding", "chunked".to_string()),
        ],
    )
}

/// One chunk of a chunked body.
pub fn chunk(piece: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", piece.len()).into_bytes();
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
    out
}

/// The last chunk.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes and flushes.
pub async fn send(sock: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    sock.write_all(bytes).await?;
    sock.flush().await
}

/// Writes `bytes` `piece` bytes at a time with `delay` between writes
/// (pieces may split a UTF-8 character or a JSON token).
pub async fn drip(
    sock: &mut TcpStream,
    bytes: &[u8],
    piece: usize,
    delay: Duration,
) -> std::io::Result<()> {
    for p in bytes.chunks(piece.max(1)) {
        send(sock, p).await?;
        tokio::time::sleep(delay).await;
    }
    Ok(())
}

/// Waits until the peer closes the connection or `limit` passes, discarding
/// anything it sends.
pub async fn wait_for_close(sock: &mut TcpStream, limit: Duration) {
    let drain = async {
        let mut sink = [0u8; 4096];
        loop {
            match sock.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(limit, drain).await;
}

/// Resets the connection (RST instead of FIN).
pub fn reset(sock: TcpStream) {
    let _ = sock.set_zero_linger();
    drop(sock);
}
