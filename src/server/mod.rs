//! The HTTP server: JSON API under `/api`, the seed-compatible `POST /recommendation`, the
//! web page at `/` (its assets compiled into the binary from `web/`), the API's OpenAPI document
//! at `/api/openapi.json` and interactive docs at `/docs/` ([`openapi`]).
//!
//! Handlers are thin functions over extractors; each request answers from the `Arc<Engine>`
//! current when it started (a reload swaps in a new one, [`reload`]); errors become responses
//! through [`error::ApiError`]; request and response bodies are the types of [`bodies`]; request
//! ids, tracing, CORS, timeouts, body limits, load shedding (503 + `Retry-After` beyond
//! [`ServerConfig::max_in_flight`]), metrics ([`metrics`]) and gzip compression of every answer
//! the client accepts it for are tower layers.

mod admin;
mod auth;
pub mod bodies;
pub mod cluster;
mod docs;
pub mod error;
mod extract;
mod handlers;
pub mod listener;
pub mod metrics;
mod online;
pub mod openapi;
mod page;
mod profiles;
pub mod rate;
pub mod reload;
pub mod retrain;
mod routes;

pub use routes::{served_routes, ServedRoute};

use crate::database::Database;
use crate::engine::Engine;
use arc_swap::ArcSwap;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use metrics::Metrics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

/// Largest accepted request body.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Longest a request may take before it is answered with 408 `timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests answered at once by default; more are refused with 503 and `Retry-After`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// How the server runs, besides the model it serves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The model directory served (reloaded by SIGHUP and by a reload without a directory).
    pub model_dir: PathBuf,
    /// The local run store's directory (read by `GET /api/runs`).
    pub runs_dir: PathBuf,
    /// The token `POST /api/admin/reload` requires; `None` disables the endpoint.
    pub admin_token: Option<String>,
    /// Origins allowed to call the API from a browser page of theirs (CORS); empty: none
    /// (only the server's own page), `*`: any.
    pub cors_origins: Vec<String>,
    /// Requests answered at once; more are refused with 503 and `Retry-After: 1`.
    pub max_in_flight: usize,
    /// Connections at once, idle and write timeouts.
    pub limits: listener::ServeLimits,
    /// The live database of profiles, ratings and added movies; `None`: profiles are off.
    pub database: Option<Database>,
    /// Writes per second each token may make (profiles' ratings, admin writes); 0: no limit.
    pub write_rate: f64,
    /// New profiles per second, from all clients together; 0: no limit.
    pub profile_rate: f64,
    /// Background retraining (needs `database`); `None`: off.
    pub retrain: Option<retrain::RetrainConfig>,
    /// A model store shared with other servers (`--model-store`); `None`: this server trains
    /// into and serves `model_dir` alone.
    pub cluster: Option<cluster::ClusterConfig>,
}

/// Writes per second a token may make by default (a person rating as fast as they can click
/// makes a few; a site's server writes in bulk through the admin API).
pub const DEFAULT_WRITE_RATE: f64 = 20.0;
/// New profiles per second by default, from all clients together.
pub const DEFAULT_PROFILE_RATE: f64 = 10.0;
/// How many seconds of its rate a bucket holds: the burst allowed after a quiet spell.
pub const BURST_SECONDS: f64 = 5.0;

/// The rate limits of writes ([`rate`]).
#[derive(Debug)]
pub struct WriteLimits {
    writes: rate::RateLimiter<auth::Caller>,
    profiles: rate::RateLimiter<()>,
}

impl ServerConfig {
    /// The defaults for serving `model_dir`: runs in `runs_dir`, no reload token, no CORS.
    pub fn new(model_dir: PathBuf, runs_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            model_dir,
            runs_dir,
            admin_token: None,
            cors_origins: Vec::new(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            limits: listener::ServeLimits::default(),
            database: None,
            write_rate: DEFAULT_WRITE_RATE,
            profile_rate: DEFAULT_PROFILE_RATE,
            retrain: None,
            cluster: None,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ServerState {
    /// The recommender being served; swapped whole by a reload.
    pub engine: Arc<ArcSwap<Engine>>,
    /// The local run store's directory (read by `GET /api/runs`).
    pub runs_dir: Arc<PathBuf>,
    /// The directory the served engine was opened from (locked while reloading).
    pub model_dir: Arc<tokio::sync::Mutex<PathBuf>>,
    /// The reload token, if reloading over HTTP is enabled.
    pub admin_token: Option<Arc<str>>,
    /// The metrics of `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// The live database, when profiles are on.
    pub database: Option<Database>,
    /// Rate limits of writes.
    pub limits: Arc<WriteLimits>,
    /// The background trainer.
    pub retrainer: Arc<retrain::Retrainer>,
    /// The shared model store, when this server is one of many.
    pub cluster: Option<Arc<cluster::ClusterConfig>>,
}

impl axum::extract::FromRef<ServerState> for Arc<Engine> {
    /// The engine current when the request started: it answers the whole request, even if a
    /// reload swaps in another meanwhile.
    fn from_ref(state: &ServerState) -> Self {
        state.engine.load_full()
    }
}

impl axum::extract::FromRef<ServerState> for Arc<PathBuf> {
    fn from_ref(state: &ServerState) -> Self {
        state.runs_dir.clone()
    }
}

impl axum::extract::FromRef<ServerState> for Arc<Metrics> {
    fn from_ref(state: &ServerState) -> Self {
        state.metrics.clone()
    }
}

/// Numbers the requests that come without an `x-request-id` of their own.
#[derive(Clone, Default)]
struct RequestCounter(Arc<AtomicU64>);

impl MakeRequestId for RequestCounter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Some(RequestId::new(HeaderValue::from(n)))
    }
}

/// The application with all routes and layers, and its shared state (for reloads).
pub fn app(engine: Arc<Engine>, config: &ServerConfig) -> crate::Result<(Router, ServerState)> {
    let state = ServerState {
        engine: Arc::new(ArcSwap::new(engine)),
        runs_dir: Arc::new(config.runs_dir.clone()),
        model_dir: Arc::new(tokio::sync::Mutex::new(config.model_dir.clone())),
        admin_token: config.admin_token.as_deref().map(Arc::from),
        metrics: Arc::new(Metrics::default()),
        database: config.database.clone(),
        retrainer: Arc::new(retrain::Retrainer::new(config.retrain.clone())),
        cluster: config.cluster.clone().map(Arc::new),
        limits: Arc::new(WriteLimits {
            writes: rate::RateLimiter::new(config.write_rate, config.write_rate * BURST_SECONDS),
            profiles: rate::RateLimiter::new(
                config.profile_rate,
                config.profile_rate * BURST_SECONDS,
            ),
        }),
    };
    // No CORS layer at all without origins: tower-http's answers every OPTIONS as a preflight
    // (200, empty), which without origins only hides the 405 a client should see.
    let cors = (!config.cors_origins.is_empty())
        .then(|| cors_layer(&config.cors_origins))
        .transpose()?;
    // The layers' own failures, in the API's error shape, counted in the metrics (the
    // route-aware counting inside the router never sees them).
    let layer_metrics = state.metrics.clone();
    let layer_error = move |method: Method, error: tower::BoxError| {
        let metrics = layer_metrics.clone();
        async move {
            let response = if error.is::<tower::timeout::error::Elapsed>() {
                error::ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    format!(
                        "the request took longer than {} seconds",
                        REQUEST_TIMEOUT.as_secs()
                    ),
                )
                .into_response()
            } else {
                (
                    [(header::RETRY_AFTER, "1")],
                    error::ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "the server is answering as many requests as it can; retry in a second",
                    ),
                )
                    .into_response()
            };
            metrics.answered_unrouted(method.as_str(), response.status().as_u16());
            response
        }
    };
    // The route-aware metrics layer sits inside the router (it reads the matched route); the
    // rest wrap the router once, as one service. (`Router::layer` would wrap every route in
    // every layer, boxing each, and clone that whole chain for each request: about 7% of the
    // server's time under load.)
    let routes = routes::routes()
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(extract::request_guards))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ));
    let service = ServiceBuilder::new()
        // Outermost: a panic anywhere below is answered 500 in the error shape (and logged)
        // instead of dropping the connection.
        .layer(CatchPanicLayer::custom(panic_answer))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetRequestIdLayer::x_request_id(RequestCounter::default()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", id, method = %request.method(), uri = %request.uri())
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .option_layer(cors)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(HandleErrorLayer::new(layer_error))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            config.max_in_flight.max(1),
        ))
        .timeout(REQUEST_TIMEOUT)
        // The page's assets and its large JSON (projection, titles) shrink 3-5x; the page's first
        // load stays well under its 1.5 MB budget (docs/BENCHMARKS.md).
        .layer(CompressionLayer::new().gzip(true))
        .service(routes);
    let router = Router::new().fallback_service(service);
    Ok((router, state))
}

/// The answer to a request whose handling panicked: 500 in the error shape, the panic logged
/// (its message is not sent: it may quote internals).
fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!("a request's handling panicked: {message}");
    error::ApiError::internal("the server failed while answering this request").into_response()
}

/// CORS for `origins` (not empty); `*` allows any origin.
fn cors_layer(origins: &[String]) -> crate::Result<CorsLayer> {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| {
                    crate::Error::invalid(
                        "cors_origin",
                        format!("--cors-origin: {o:?} is not a valid origin"),
                    )
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]))
}

/// The application over `engine` with the default configuration (runs read from `runs_dir`).
pub fn router(engine: Arc<Engine>, runs_dir: PathBuf) -> Router {
    let config = ServerConfig::new(engine.dir().to_path_buf(), runs_dir);
    app(engine, &config)
        .expect("the default configuration is valid")
        .0
}

/// Serves `engine` as `config` says on `addr` until Ctrl-C or SIGTERM (requests in flight
/// finish first); SIGHUP reloads the model directory.
pub async fn serve(engine: Engine, config: ServerConfig, addr: SocketAddr) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            crate::Error::invalid(
                "port",
                format!(
                    "{addr}: the port is taken (another program, or another movierec serve, \
                     listens on it); choose another with --port"
                ),
            )
        } else {
            crate::Error::io(format!("{addr}"), e)
        }
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::Error::io(format!("{addr}"), e))?;
    tracing::info!(
        "serving {} movies on http://{local}",
        engine.catalog().len()
    );
    let (router, state) = app(Arc::new(engine), &config)?;
    tokio::spawn(retrain::on_schedule(state.clone()));
    if let Some(cluster) = config.cluster.clone() {
        tokio::spawn(cluster::follow(state.clone(), cluster));
    }
    #[cfg(unix)]
    tokio::spawn(reload::on_sighup(state));
    #[cfg(not(unix))]
    drop(state);
    eprintln!("movierec: serving on http://{local}");
    listener::serve(listener, router, config.limits, shutdown_signal()).await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_in_the_error_shape() {
        async fn boom() -> &'static str {
            panic!("boom at {}", 42)
        }
        let service = ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(panic_answer))
            .service(Router::new().route("/boom", get(boom)));
        let request = axum::http::Request::get("/boom")
            .body(Body::empty())
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(
            !body.to_string().contains("boom"),
            "the panic's text is not sent: {body}"
        );
    }
}
