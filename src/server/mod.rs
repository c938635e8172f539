//! The HTTP server: JSON API under `/api`, the seed-compatible `POST /recommendation`, and the
//! web page at `/` (its assets compiled into the binary from `web/`).
//!
//! Handlers are thin functions over extractors; shared state is an `Arc<Engine>` loaded once at
//! start; errors become responses through [`error::ApiError`]; body limits, timeouts and tracing
//! are tower layers.

pub mod error;
mod routes;

use crate::engine::Engine;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest accepted request body.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the handlers share: the loaded model directory and where runs are recorded.
#[derive(Clone)]
pub struct ServerState {
    /// The recommender.
    pub engine: Arc<Engine>,
    /// The local run store's directory (read by `GET /api/runs`).
    pub runs_dir: Arc<PathBuf>,
}

impl axum::extract::FromRef<ServerState> for Arc<Engine> {
    fn from_ref(state: &ServerState) -> Self {
        state.engine.clone()
    }
}

impl axum::extract::FromRef<ServerState> for Arc<PathBuf> {
    fn from_ref(state: &ServerState) -> Self {
        state.runs_dir.clone()
    }
}

/// The application with all routes and layers.
pub fn router(engine: Arc<Engine>, runs_dir: PathBuf) -> Router {
    routes::routes()
        .with_state(ServerState {
            engine,
            runs_dir: Arc::new(runs_dir),
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(TraceLayer::new_for_http())
}

/// Serves `engine` (and the runs recorded in `runs_dir`) on `addr` until Ctrl-C or SIGTERM
/// (requests in flight finish first).
pub async fn serve(engine: Engine, runs_dir: PathBuf, addr: SocketAddr) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::io(format!("{addr}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::Error::io(format!("{addr}"), e))?;
    tracing::info!(
        "serving {} movies on http://{local}",
        engine.catalog().len()
    );
    eprintln!("movierec: serving on http://{local}");
    axum::serve(listener, router(Arc::new(engine), runs_dir))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| crate::Error::io(format!("{addr}"), e))
}

/// Sends `GET url` (plain `http://host:port/path`) and succeeds if the answer is 200 within
/// 3 seconds. Used by `movierec health` for container health checks, where no curl is at hand.
pub fn probe(url: &str) -> crate::Result<()> {
    use std::io::{Read, Write};
    let bad = |message: String| crate::Error::invalid("url", format!("--url: {message}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad(format!("{url:?} is not an http:// URL")))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let timeout = Duration::from_secs(3);
    let address = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .map_err(|e| crate::Error::io(authority, e))?
        .next()
        .ok_or_else(|| bad(format!("{authority:?} does not resolve")))?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)
        .map_err(|e| crate::Error::io(authority, e))?;
    let io = |e| crate::Error::io(authority, e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(io)?;
    let status = response.lines().next().unwrap_or_default();
    if status.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(bad(format!("{url} answered {status:?}")))
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
