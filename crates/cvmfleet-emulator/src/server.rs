//! The HTTP/1.1 server loop. It is hand-rolled over hyper (rather than `axum::serve`) so that
//! a handler can drop its own connection: close it without an answer (a lost response) or
//! reset it (TCP RST).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::app::Disconnect;

/// How long open connections get to finish their requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection was dropped on purpose; hyper closes it without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// A TCP stream that resets (SO_LINGER 0) instead of closing gracefully when its connection
/// asked for it, and that rewrites hyper's own answers into the API's envelope.
struct ConnIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
    /// An answer hyper wrote by itself, being replaced.
    rewrite: Option<Rewrite>,
}

/// The envelope answer sent instead of one of hyper's automatic answers.
struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
}

/// hyper answers a request head it cannot read by itself, before any handler runs, with an
/// empty body: 431 when the head is larger than its buffer (about 400 KB) or has more than 100
/// headers, 414 when the URI is too long. The API answers everything with HTTP 200 and its
/// JSON error envelope (issue 10), so those answers are replaced on their way out. Handlers
/// never answer 431 or 414, so a write starting with either status line is hyper's.
fn automatic_answer(buf: &[u8]) -> Option<Vec<u8>> {
    let message = if buf.starts_with(b"HTTP/1.1 431 ") {
        "The request header is too large."
    } else if buf.starts_with(b"HTTP/1.1 414 ") {
        "The request URI is too long."
    } else {
        return None;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = cvmfleet_wire::envelope::encode_error("RequestSizeLimitExceeded", message, &request_id);
    let mut bytes = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        cvmfleet_wire::envelope::RESPONSE_CONTENT_TYPE,
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    Some(bytes)
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none()
            && let Some(bytes) = automatic_answer(buf)
        {
            this.rewrite = Some(Rewrite { bytes, written: 0 });
        }
        let Some(rewrite) = &mut this.rewrite else {
            return Pin::new(&mut this.stream).poll_write(cx, buf);
        };
        // The envelope goes out whole; hyper's answer (and anything after it: the connection
        // closes) is reported written and dropped.
        while rewrite.written < rewrite.bytes.len() {
            let n = ready!(Pin::new(&mut this.stream).poll_write(cx, &rewrite.bytes[rewrite.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rewrite.written += n;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets open connections finish
/// (up to [`DRAIN_TIMEOUT`]).
pub(crate) async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let builder = hyper::server::conn::http1::Builder::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ConnIo { stream, reset: Arc::clone(&reset), rewrite: None });
        let tower = TowerToHyperService::new(router.clone());
        let service = service_fn(move |request: hyper::Request<Incoming>| {
            let call = tower.call(request);
            let reset = Arc::clone(&reset);
            async move {
                let response = match call.await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if let Some(d) = response.extensions().get::<Disconnect>() {
                    reset.store(d.reset, Ordering::Relaxed);
                    return Err(Dropped);
                }
                Ok(response)
            }
        });
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}
