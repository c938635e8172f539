//! Accepting connections with every connection bounded: in number, in idle time, in the time a
//! request head may take, and in what a client that stops reading can hold.
//!
//! axum's own `serve` sets none of these limits (no timer, so hyper's header-read timeout never
//! fires; no connection limit; half-closed clients dropped), so the server runs its own accept
//! loop over hyper's HTTP/1 connection, as `axum::serve` does inside:
//!
//! - **Connections**: at most [`ServeLimits::max_connections`] at once, and never more than the
//!   open-file limit leaves room for (the soft limit is first raised to the hard one). Beyond
//!   that, new connections wait in the kernel's backlog until one closes, instead of failing to
//!   accept with `EMFILE` in a loop. Should `accept` still fail for want of files, the loop
//!   waits 100 ms before trying again and logs it at most once a second.
//! - **Idle and slow heads**: a connection must deliver a complete request head within
//!   [`ServeLimits::idle_timeout`] of connecting or of its previous answer (hyper's header-read
//!   timeout), so idle keep-alive connections and clients that trickle headers are closed.
//! - **Slow readers**: the kernel's send buffer of each connection is fixed
//!   ([`SEND_BUFFER_BYTES`]) and a write that makes no progress for
//!   [`ServeLimits::write_timeout`] closes the connection, so a client that never reads pins at
//!   most one answer for that long.
//! - **Half-close**: a client that shuts its side down after sending its request still gets
//!   the answer.
//! - **hyper's own refusals**: a request hyper cannot parse (a malformed request line or
//!   header, two `Content-Length`s, a head over its buffer) never reaches the router; hyper
//!   answers it itself with an empty 400, 414 or 431. [`ShapedRejections`] gives those answers
//!   the error shape of every other answer.
//!
//! Ctrl-C or SIGTERM stops accepting, lets requests in flight finish and closes idle
//! connections (hyper's graceful shutdown).

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connections served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long a connection may wait for a complete request head by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a write may make no progress by default.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The kernel send buffer of each connection: with hyper's own buffer and the answer being
/// written, what a client that stops reading can hold.
pub const SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Open files kept for everything but connections (model files, the run store, logs).
const RESERVED_FILES: u64 = 64;

/// The limits of every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once (further ones wait to be accepted).
    pub max_connections: usize,
    /// How long a connection may take to deliver a complete request head, counted from its
    /// opening or its previous answer: idle keep-alive connections are closed after it.
    pub idle_timeout: Duration,
    /// How long a write of an answer may make no progress before the connection is closed.
    pub write_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the
/// connections finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = limits.max_connections.min(connections_the_files_allow());
    tracing::info!(
        "at most {max_connections} connections; idle timeout {:?}, write timeout {:?}",
        limits.idle_timeout,
        limits.write_timeout
    );
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_logged: Option<Instant> = None;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    on_accept_error(&e, &mut last_logged).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        configure(&stream);
        let io = TokioIo::new(ShapedRejections::new(WriteDeadline::new(
            stream,
            limits.write_timeout,
        )));
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.idle_timeout)
            .half_close(true)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// No delay for small answers, and a fixed send buffer (see [`SEND_BUFFER_BYTES`]).
fn configure(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES);
}

/// A failed `accept`: a connection that went away before it was accepted is nothing; anything
/// else (no files or memory left) waits 100 ms, so the loop never spins, and is logged at most
/// once a second.
async fn on_accept_error(e: &io::Error, last_logged: &mut Option<Instant>) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    if last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        tracing::error!("accept failed: {e}; waiting for connections to close");
        *last_logged = Some(Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// How many connections the open-file limit leaves room for, after raising its soft limit to
/// the hard one.
fn connections_the_files_allow() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return usize::MAX;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        let files: u64 = limit.rlim_cur;
        usize::try_from(files.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX)
    }
    #[cfg(not(unix))]
    {
        usize::MAX
    }
}

/// A stream whose writes fail with `TimedOut` once one has made no progress for `timeout`.
struct WriteDeadline {
    stream: TcpStream,
    timeout: Duration,
    /// Armed while a write or flush is pending.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    fn new(stream: TcpStream, timeout: Duration) -> WriteDeadline {
        WriteDeadline {
            stream,
            timeout,
            deadline: None,
        }
    }

    /// Passes a ready poll through (disarming the deadline); on a pending one, arms the
    /// deadline or fails once it has passed.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.deadline = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {timeout:?}"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// Rewrites the answers hyper writes by itself, for requests it could not parse, into the
/// server's error shape (`{"error": {"code", "message"}}`).
///
/// hyper has no hook for these answers: it writes a head with status 400, 414 or 431 and
/// `content-length: 0`, then closes the connection. No answer of the router looks like that
/// (every error of the router has a JSON body), so a write that is exactly such a head is
/// hyper's refusal, and it is replaced by the same status with a body. The replacement is
/// written before anything else, and hyper is told its own bytes were written.
struct ShapedRejections<T> {
    inner: T,
    /// The replacement not yet written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T: AsyncWrite + Unpin> ShapedRejections<T> {
    fn new(inner: T) -> ShapedRejections<T> {
        ShapedRejections {
            inner,
            pending: None,
        }
    }

    /// Writes what is left of a replacement; ready once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.pending.as_mut() {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The error-shaped answer for `head` if it is one of hyper's own refusals.
fn shaped_rejection(head: &[u8]) -> Option<Vec<u8>> {
    // Cheap checks first: this sees every write of every answer.
    if head.len() > 1024 || !head.starts_with(b"HTTP/1.1 4") || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let text = text.strip_suffix("\r\n\r\n")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let (code, message) = match status {
        "400" => (
            "malformed_request",
            "the request is not valid HTTP/1.1: a malformed request line or header, or \
             conflicting Content-Length or Transfer-Encoding headers",
        ),
        "414" => (
            "uri_too_long",
            "the request target is longer than the server reads (at most 8 KiB are read)",
        ),
        "431" => (
            "headers_too_large",
            "the request head is larger than the server reads (at most 32 KiB of headers)",
        ),
        _ => return None,
    };
    let mut kept = Vec::new();
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" if value.trim() == "0" => empty = true,
            // Anything with a body or a type of its own is not hyper's bare refusal.
            "content-length" | "content-type" | "transfer-encoding" => return None,
            "connection" => {}
            _ => kept.push(line),
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = format!("{status_line}\r\n");
    for line in kept {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\nx-content-type-options: nosniff\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(out.into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for ShapedRejections<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ShapedRejections<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        if let Some(replacement) = shaped_rejection(buf) {
            self.pending = Some((replacement, 0));
            // hyper's bytes count as written; the replacement goes out now or at the flush.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut parts = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (parts.next(), parts.next()) {
            // A head with an empty body comes as one slice.
            return self.poll_write(cx, only);
        }
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::shaped_rejection;

    #[test]
    fn only_hypers_bare_refusals_are_given_a_body() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 10:00:00 GMT\r\n\r\n";
        let shaped = String::from_utf8(shaped_rejection(hyper).unwrap()).unwrap();
        let (head, body) = shaped.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Sat, 05 Dec 2026"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("content-length: 0"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "malformed_request");
        let shaped = shaped_rejection(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap();
        assert!(String::from_utf8(shaped)
            .unwrap()
            .contains("\"headers_too_large\""));
        // The router's own answers, and anything else, pass untouched.
        for other in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            b"\xff\xfe",
        ] {
            assert!(shaped_rejection(other).is_none(), "{other:?}");
        }
    }
}
