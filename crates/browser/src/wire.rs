//! The transport: W3C WebDriver commands as JSON over HTTP/1.1 to chromedriver on loopback,
//! one connection per command.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where chromedriver listens, and how long one command may take.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    addr: SocketAddr,
    timeout: Duration,
}

impl Wire {
    pub(crate) fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self { addr, timeout }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a command and returns the `value` of its answer; a WebDriver error answer
    /// becomes an error naming the command, the error code and its message.
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let what = command_name(method, path);
        tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| anyhow!("{what}: no answer within {:?}", self.timeout))?
            .with_context(|| what.clone())
    }

    async fn exchange(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to chromedriver at {}", self.addr))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let body = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v)?),
            None if method == "POST" => Bytes::from_static(b"{}"),
            None => Bytes::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let answer: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("answer {status} is not JSON: {}", String::from_utf8_lossy(&bytes)))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value["error"].as_str().unwrap_or("unknown error");
            let message = value["message"].as_str().unwrap_or_default();
            bail!("{code}: {message}");
        }
        Ok(value)
    }
}

/// The command as a person would name it: the method and the path without the session id.
fn command_name(method: &str, path: &str) -> String {
    let mut parts = path.split('/').collect::<Vec<_>>();
    if parts.get(1) == Some(&"session") && parts.len() > 2 {
        parts[2] = "{session}";
    }
    format!("WebDriver {method} {}", parts.join("/"))
}

/// Percent-escapes a path segment (a cookie name).
pub(crate) fn escape_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Ends a session without an async runtime (from `Drop`): chromedriver then quits
/// Chromium. Bounded by a few seconds for the connection and 30 s for the answer.
pub(crate) fn delete_blocking(addr: SocketAddr, session: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no answer to DELETE /session within 30 s");
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
        if complete(&answer) {
            break;
        }
    }
    let head = String::from_utf8_lossy(&answer);
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        bail!("DELETE /session answered: {head}")
    }
}

/// Whether `answer` holds a whole HTTP response with a Content-Length body.
fn complete(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|n| answer.len() >= end + 4 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_commands_without_the_session_id() {
        assert_eq!(
            command_name("POST", "/session/abc123/element/e1/click"),
            "WebDriver POST /session/{session}/element/e1/click"
        );
        assert_eq!(command_name("GET", "/status"), "WebDriver GET /status");
    }

    #[test]
    fn escapes_cookie_names() {
        assert_eq!(escape_path("a b/c"), "a%20b%2Fc");
        assert_eq!(escape_path("session_id-1.x"), "session_id-1.x");
    }

    #[test]
    fn sees_when_an_answer_is_whole() {
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"));
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\n"));
    }
}
