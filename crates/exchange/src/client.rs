//! A small HTTP/1.1 client over mutual TLS with kept-alive connections: what nodes and the
//! gateway use to push batches to each other. One [`PeerClient`] per peer URL.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Why a request failed before an HTTP status came back.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://host:port[/path]`.
    #[error("bad url {0:?}")]
    Url(String),
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// TLS handshake failed (e.g. the server is not the pinned one).
    #[error("tls: {0}")]
    Tls(std::io::Error),
    /// HTTP failed.
    #[error("http: {0}")]
    Http(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

/// The largest response body read.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A client for one peer base URL.
pub struct PeerClient {
    base: String,
    host: String,
    port: u16,
    path_prefix: String,
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    timeout: Duration,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerClient({})", self.base)
    }
}

impl PeerClient {
    /// A client for `base` (`https://host:port[/prefix]`) with this TLS client configuration.
    pub fn new(
        base: &str,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<PeerClient, ClientError> {
        let rest = base.strip_prefix("https://").ok_or_else(|| ClientError::Url(base.to_owned()))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| ClientError::Url(base.to_owned()))?),
            None => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let server_name =
            ServerName::try_from(host.clone()).map_err(|_| ClientError::Url(base.to_owned()))?;
        Ok(PeerClient {
            base: base.to_owned(),
            host,
            port,
            path_prefix: prefix.to_owned(),
            server_name,
            connector: tokio_rustls::TlsConnector::from(tls),
            idle: Mutex::new(Vec::new()),
            timeout,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await.map_err(ClientError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = self.connector.connect(self.server_name.clone(), tcp).await.map_err(ClientError::Tls)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(send)
    }

    /// Sends one request with a JSON body and reads the whole answer. Connections are reused.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.request_with(method, path, None, body).await
    }

    /// [`PeerClient::request`] with a bearer token (the node's user API).
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.request_bytes(method, path, bearer, Bytes::from(body)).await
    }

    /// [`PeerClient::request_with`] with the body as shared bytes (sent again without a copy,
    /// to another endpoint by [`crate::failover::Failover`]).
    pub async fn request_bytes(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        tokio::time::timeout(self.timeout, self.request_inner(method, path, bearer, body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn request_inner(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        // An idle connection may have been closed by the peer; a request that fails on a
        // reused connection before any answer is retried once on a fresh one.
        let mut reused = true;
        let mut send = loop {
            let candidate = self.idle.lock().await.pop();
            match candidate {
                Some(mut s) => {
                    if s.ready().await.is_ok() {
                        break s;
                    }
                }
                None => {
                    reused = false;
                    break self.connect().await?;
                }
            }
        };
        let build = |body: Bytes| {
            let mut b = Request::builder()
                .method(method.clone())
                .uri(format!("{}{}", self.path_prefix, path))
                .header(hyper::header::HOST, format!("{}:{}", self.host, self.port));
            if !body.is_empty() {
                b = b.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            if let Some(t) = bearer {
                b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
            }
            b.body(Full::new(body)).map_err(|e| ClientError::Http(e.to_string()))
        };
        let resp = match send.send_request(build(body.clone())?).await {
            Ok(r) => r,
            Err(e) if reused && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) => {
                send = self.connect().await?;
                send.send_request(build(body)?).await.map_err(|e| ClientError::Http(e.to_string()))?
            }
            Err(e) => return Err(ClientError::Http(e.to_string())),
        };
        let (status, bytes) = read_whole(resp).await?;
        let mut idle = self.idle.lock().await;
        if idle.len() < 8 {
            idle.push(send);
        }
        Ok((status, bytes))
    }
}

/// One GET of a public URL (`http://` or `https://`; a node's public endpoint), the whole
/// answer read (at most 64 MB) within `timeout`. Over HTTPS the server must present a
/// certificate that chains to one of `roots_pem` (a PEM bundle, such as Debian's
/// `/etc/ssl/certs/ca-certificates.crt`).
pub async fn get_public(
    url: &str,
    roots_pem: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), ClientError> {
    if url.starts_with("https://") {
        let (base, path) = split_url(url, "https://")?;
        let tls =
            crate::tls::public_client_config(roots_pem).map_err(|e| ClientError::Http(e.to_string()))?;
        let client = PeerClient::new(&base, tls, timeout)?;
        return client.request(Method::GET, &path, Vec::new()).await;
    }
    let (base, path) = split_url(url, "http://")?;
    let authority = base.trim_start_matches("http://").to_owned();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse::<u16>().map_err(|_| ClientError::Url(url.to_owned()))?),
        None => (authority.clone(), 80),
    };
    let fetch = async move {
        let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(ClientError::Connect)?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(hyper::header::HOST, authority)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = send.send_request(req).await.map_err(|e| ClientError::Http(e.to_string()))?;
        read_whole(resp).await
    };
    tokio::time::timeout(timeout, fetch).await.map_err(|_| ClientError::Timeout)?
}

/// `scheme://authority` and the path (with its query; `/` when none) of `url`.
fn split_url(url: &str, scheme: &str) -> Result<(String, String), ClientError> {
    let rest = url.strip_prefix(scheme).ok_or_else(|| ClientError::Url(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(ClientError::Url(url.to_owned()));
    }
    Ok((format!("{scheme}{authority}"), path.to_owned()))
}

/// The status and the whole body of an answer, at most [`MAX_RESPONSE`] bytes.
async fn read_whole(
    resp: hyper::Response<hyper::body::Incoming>,
) -> Result<(StatusCode, Bytes), ClientError> {
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}
