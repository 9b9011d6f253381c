//! Serving an axum router over TLS with the client's certificate made visible to handlers as
//! the [`PeerCert`] request extension. Used by the node (one port for people and peers) and
//! the gateway.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::error::ExchangeError;

/// The TLS client certificate (end-entity, DER) of the connection a request came on, if the
/// client presented one.
#[derive(Debug, Clone, Default)]
pub struct PeerCert(pub Option<Arc<Vec<u8>>>);

/// The TCP address of the client of a request served by [`serve_any`] (a request extension):
/// what public pages rate-limit by.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Stops a server started with [`serve`].
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(Arc::new(watch::channel(false).0))
    }
}

impl Shutdown {
    /// Asks the server to stop accepting connections; open connections finish their
    /// current request and close.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
    /// A receiver that sees the trigger.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// What one listener allows a client: how long it may take to send a request head (and how
/// long a kept-alive connection may sit idle), how long to send a body, and how many
/// connections may be open at once. `[server.limits]` in the node's and the gateway's
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeLimits {
    /// TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// A whole request head, and the idle time between requests on a kept-alive connection.
    pub header_timeout_ms: u64,
    /// A whole request body, counted from the end of its head.
    pub body_timeout_ms: u64,
    /// Open connections; past it, new ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    /// 10 s handshake, 20 s head (and idle), 60 s body (32 MiB at 550 KB/s), 1,024 connections.
    fn default() -> Self {
        ServeLimits {
            handshake_timeout_ms: 10_000,
            header_timeout_ms: 20_000,
            body_timeout_ms: 60_000,
            max_connections: 1024,
        }
    }
}

/// The error a request body reports when it was not received within
/// [`ServeLimits::body_timeout_ms`]. Handlers see it through `BodyTimeout::is` on the error
/// chain and answer `408 BODY_TIMEOUT`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimeout;

impl BodyTimeout {
    /// Whether `e` (or what it wraps) is a body timeout.
    pub fn is(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if e.is::<BodyTimeout>() {
                return true;
            }
            cur = e.source();
        }
        false
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes.
struct Timed<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> hyper::body::Body for Timed<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Bytes of an oversized body that [`read_body`] reads and throws away so that an identified
/// sender gets its `413` on a connection that still works (a closed connection would show as
/// a broken pipe, pointing the wrong way). Past it, the connection is closed.
pub const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a request body of at most `limit` bytes; call it only once the sender is known. A
/// body over the limit is read on and dropped up to [`DRAIN_LIMIT`] more bytes, so the answer
/// is a clean `413` on a connection that can carry the next request; a `Content-Length` past
/// even that is refused before a byte is read. Memory held: at most `limit` bytes. Errors:
/// `BATCH_TOO_LARGE` (413), `BODY_TIMEOUT` (408), `BATCH_MALFORMED` (400, the connection
/// broke).
pub async fn read_body(
    headers: &hyper::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Vec<u8>, (hyper::StatusCode, ExchangeError)> {
    use http_body_util::BodyExt as _;
    let too_large = |what: String| {
        (hyper::StatusCode::PAYLOAD_TOO_LARGE, ExchangeError::new("BATCH_TOO_LARGE", None, what))
    };
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let most = limit.saturating_add(DRAIN_LIMIT);
    if let Some(n) = declared.filter(|&n| n > most as u64) {
        return Err(too_large(format!("{n} bytes declared; at most {limit} are accepted")));
    }
    let mut body = body;
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| (n as usize).min(limit)));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if BodyTimeout::is(&e) {
                (
                    hyper::StatusCode::REQUEST_TIMEOUT,
                    ExchangeError::new("BODY_TIMEOUT", None, "the request body was not received in time"),
                )
            } else {
                (
                    hyper::StatusCode::BAD_REQUEST,
                    ExchangeError::new("BATCH_MALFORMED", None, format!("reading the body: {e}")),
                )
            }
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else {
                buf = Vec::new();
                if seen > most {
                    break;
                }
            }
        }
    }
    if seen > limit {
        return Err(too_large(format!("more than {limit} bytes")));
    }
    Ok(buf)
}

/// Serves `router` on `listener` with `tls` and the default [`ServeLimits`] until `shutdown`
/// is triggered.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    serve_with(listener, tls, router, shutdown, ServeLimits::default()).await
}

/// [`serve`] under `limits`. Every connection is bounded in time (handshake, each request
/// head, each body, idle) and their number is capped, so slow or idle clients cannot hold
/// the server's memory or file descriptors.
pub async fn serve_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: Shutdown,
    limits: ServeLimits,
) -> std::io::Result<()> {
    serve_any(listener, Some(tls), router, shutdown, limits).await
}

/// [`serve_with`], over TLS when `tls` is given and plain HTTP otherwise (for a listener behind
/// a reverse proxy on the same machine), with the same limits either way.
pub async fn serve_any(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: Shutdown,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut stop = shutdown.subscribe();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        };
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let conn_stop = shutdown.subscribe();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                let peer = (PeerCert::default(), PeerAddr(addr));
                return connection(TokioIo::new(tcp), peer, router, limits, conn_stop).await;
            };
            let handshake = Duration::from_millis(limits.handshake_timeout_ms);
            let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let peer = PeerCert(
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| Arc::new(c.to_vec())),
            );
            connection(TokioIo::new(tls), (peer, PeerAddr(addr)), router, limits, conn_stop).await
        });
    }
}

/// Serves one connection under `limits` until it closes or `stop` fires (then gracefully,
/// for at most 10 s).
async fn connection<I>(
    io: I,
    (peer, addr): (PeerCert, PeerAddr),
    router: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let body_timeout = Duration::from_millis(limits.body_timeout_ms);
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(|inner| {
            axum::body::Body::new(Timed { inner, deadline: Box::pin(tokio::time::sleep(body_timeout)) })
        });
        req.extensions_mut().insert(peer.clone());
        req.extensions_mut().insert(addr);
        router.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        }
    }
}

/// Calls `changed` each time the modification time of the file at `path` changes, looking
/// every `every`, until `stop` fires. A node and a gateway put a newer trust list in force this
/// way, without a restart.
pub async fn on_file_change(
    path: std::path::PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut changed: impl FnMut(),
) {
    let modified = || std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut seen = modified();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = modified();
        if now != seen {
            seen = now;
            changed();
        }
    }
}
