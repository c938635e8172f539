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
        let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
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
