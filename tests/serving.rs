//! The server's operational behaviour: metrics, request ids, CORS, load shedding, and model
//! reloads (over HTTP and SIGHUP, in process and under load against the real binary).

use crate::common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::server::Server;
use common::trained_model;
use http_body_util::BodyExt;
use movierec::engine::Engine;
use movierec::server::{app, ServerConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(Engine::open(trained_model()).expect("model")))
        .clone()
}

fn config() -> ServerConfig {
    ServerConfig::new(
        trained_model().to_path_buf(),
        common::runs_dir().to_path_buf(),
    )
}

async fn send(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn recommend_request() -> Request<Body> {
    Request::post("/api/recommendations")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"movie": 1, "k": 5}"#))
        .unwrap()
}

fn reload_request(token: Option<&str>, body: &str) -> Request<Body> {
    let mut request =
        Request::post("/api/admin/reload").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// A copy of the trained model directory (to reload from, or to corrupt).
fn copy_of_model(name: &str) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(trained_model()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_with_latencies() {
    let (router, _) = app(engine(), &config()).unwrap();
    for _ in 0..3 {
        assert_eq!(send(&router, recommend_request()).await.0, StatusCode::OK);
    }
    let bad = Request::get("/api/users/999999/recommendations")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&router, bad).await.0, StatusCode::NOT_FOUND);
    let (status, headers, body) = send(
        &router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(r#"movierec_http_requests_total{method="POST",route="/api/recommendations",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"movierec_http_requests_total{method="GET",route="/api/users/{userId}/recommendations",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"movierec_http_request_duration_seconds_count{method="POST",route="/api/recommendations"} 3"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_clients() {
    let (router, _) = app(engine(), &config()).unwrap();
    let (_, first, _) = send(&router, recommend_request()).await;
    let (_, second, _) = send(&router, recommend_request()).await;
    let id = |h: &axum::http::HeaderMap| h["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id(&first), id(&second));
    let mine = Request::get("/api/health")
        .header("x-request-id", "trace-me-42")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(&router, mine).await;
    assert_eq!(id(&headers), "trace-me-42");
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_configured_origins() {
    let preflight = |origin: &str| {
        Request::options("/api/recommendations")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap()
    };
    let (router, _) = app(engine(), &config()).unwrap();
    let (_, headers, _) = send(&router, preflight("https://example.org")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let configured = ServerConfig {
        cors_origins: vec!["https://example.org".into()],
        ..config()
    };
    let (router, _) = app(engine(), &configured).unwrap();
    let (_, headers, _) = send(&router, preflight("https://example.org")).await;
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://example.org"
    );
    let (_, headers, _) = send(&router, preflight("https://evil.example")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let bad = ServerConfig {
        cors_origins: vec!["bad\norigin".into()],
        ..config()
    };
    assert!(app(engine(), &bad).is_err());
}

#[tokio::test]
async fn beyond_the_concurrency_limit_requests_get_503_with_retry_after() {
    use std::future::Future;
    let limited = ServerConfig {
        max_in_flight: 1,
        admin_token: Some("secret".into()),
        ..config()
    };
    let (router, state) = app(engine(), &limited).unwrap();
    // A reload verifies a whole model directory off the runtime: polled once, it holds the one
    // slot while it waits for that work.
    let mut reload = Box::pin(router.clone().oneshot(reload_request(Some("secret"), "")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(reload.as_mut().poll(&mut cx).is_pending());
    let (status, headers, body) = send(&router, recommend_request()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    let response = reload.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(send(&router, recommend_request()).await.0, StatusCode::OK);
    // The 503 is counted, though it was given before routing.
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains(
            r#"movierec_http_requests_total{method="POST",route="unrouted",status="503"} 1"#
        ),
        "{metrics}"
    );
    // A request given up on (its future dropped, as the timeout does) leaves the in-flight
    // gauge.
    let mut abandoned = Box::pin(router.clone().oneshot(reload_request(Some("secret"), "")));
    assert!(abandoned.as_mut().poll(&mut cx).is_pending());
    assert!(state
        .metrics
        .encode()
        .contains("movierec_http_requests_in_flight 1"));
    drop(abandoned);
    assert!(state
        .metrics
        .encode()
        .contains("movierec_http_requests_in_flight 0"));
}

/// A body that sends a few bytes, then fails: the client hung up.
struct CutShort(bool);

impl http_body::Body for CutShort {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other("the client hung up"))));
        }
        self.0 = true;
        let start = axum::body::Bytes::from_static(br#"{"movie": "#);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(start))))
    }
}

#[tokio::test]
async fn a_body_cut_short_is_a_400_not_a_413() {
    let (router, _) = app(engine(), &config()).unwrap();
    let request = Request::post("/api/recommendations")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::new(CutShort(false)))
        .unwrap();
    let (status, _, body) = send(&router, request).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "malformed_body", "{body}");
}

#[tokio::test]
async fn reload_needs_the_token_swaps_models_and_keeps_the_old_one_on_failure() {
    let (router, state) = app(engine(), &config()).unwrap();
    let (status, _, body) = send(&router, reload_request(None, "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "disabled without a token");
    assert!(String::from_utf8_lossy(&body).contains("MOVIEREC_ADMIN_TOKEN"));

    let with_token = ServerConfig {
        admin_token: Some("secret".into()),
        ..config()
    };
    let (router, state2) = app(engine(), &with_token).unwrap();
    drop(state);
    for token in [None, Some("wrong")] {
        let (status, _, _) = send(&router, reload_request(token, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    let copy = copy_of_model("copy");
    let body = json!({"model_dir": copy}).to_string();
    let (status, _, answer) = send(&router, reload_request(Some("secret"), &body)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["modelDir"], copy.display().to_string());
    assert_eq!(
        state2.engine.load().dir(),
        copy.as_path(),
        "the copy is served now"
    );

    // A corrupt directory: refused, and the copy keeps serving.
    let corrupt = copy_of_model("corrupt");
    let embeddings = corrupt.join("svd.embeddings");
    let mut bytes = std::fs::read(&embeddings).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(&embeddings, bytes).unwrap();
    let body = json!({"model_dir": corrupt}).to_string();
    let (status, _, answer) = send(&router, reload_request(Some("secret"), &body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error"]["code"], "reload_failed");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("svd.embeddings is corrupt"),
        "{answer}"
    );
    assert_eq!(state2.engine.load().dir(), copy.as_path());
    assert_eq!(send(&router, recommend_request()).await.0, StatusCode::OK);

    let (_, _, metrics) = send(
        &router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains(r#"movierec_model_reloads_total{outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"movierec_model_reloads_total{outcome="failed"} 1"#),
        "{metrics}"
    );
}

/// The real binary, serving `model_dir` with the admin token `secret`.
fn serve_with_token(model_dir: &Path) -> Server {
    Server::start_with(model_dir, &[("MOVIEREC_ADMIN_TOKEN", "secret")])
}

#[test]
fn reloads_under_load_fail_no_request() {
    let served = serve_with_token(&copy_of_model("served"));
    let other = copy_of_model("other");
    let base = served.url.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let (mut ok, mut failed) = (0usize, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match agent
                        .post(&format!("{base}/api/recommendations"))
                        .header("Content-Type", "application/json")
                        .send(r#"{"movie": "toy story", "k": 10}"#)
                    {
                        Ok(response) if response.status() == 200 => ok += 1,
                        Ok(response) => failed.push(response.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let agent = ureq::Agent::new_with_defaults();
    for (i, dir) in [other.clone(), trained_model().to_path_buf(), other]
        .iter()
        .enumerate()
    {
        std::thread::sleep(std::time::Duration::from_millis(150));
        let answer = agent
            .post(&format!("{base}/api/admin/reload"))
            // The scheme is case-insensitive.
            .header(
                "Authorization",
                if i == 1 {
                    "bearer secret"
                } else {
                    "Bearer secret"
                },
            )
            .header("Content-Type", "application/json")
            .send(json!({"model_dir": dir}).to_string())
            .unwrap_or_else(|e| panic!("reload {i}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap();
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["status"], "reloaded");
    }
    #[cfg(unix)]
    {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(served.child.id() as i32).unwrap(),
            rustix::process::Signal::HUP,
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        let (ok, failed) = client.join().unwrap();
        assert!(
            failed.is_empty(),
            "failed requests during reloads: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 100, "only {total} requests were made");
    let metrics = agent
        .get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let reloads = if cfg!(unix) { 4 } else { 3 };
    assert!(
        metrics.contains(&format!(
            r#"movierec_model_reloads_total{{outcome="ok"}} {reloads}"#
        )),
        "{metrics}"
    );
}

#[test]
fn recommend_with_server_prints_what_a_local_run_prints() {
    let served = Server::start(trained_model());
    let url = served.url.clone();
    let model = trained_model().to_str().unwrap();
    for args in [
        vec!["toy", "stroy", "-k", "7", "--json"],
        vec![
            "heat",
            "--model",
            "hybrid",
            "--index",
            "hnsw",
            "--genre",
            "Crime",
            "--year-min",
            "1990",
        ],
        vec![
            "--user",
            "3",
            "-k",
            "5",
            "--exclude-genre",
            "Drama",
            "--json",
        ],
        vec![
            "--likes",
            "toy story",
            "--dislikes",
            "heat",
            "--min-ratings",
            "20",
        ],
    ] {
        let local = common::movierec(&[&["recommend", "--model-dir", model][..], &args].concat());
        let remote = common::movierec(&[&["recommend", "--server", &url][..], &args].concat());
        assert!(local.status.success(), "{}", common::stderr(&local));
        assert!(
            remote.status.success(),
            "{args:?}: {}",
            common::stderr(&remote)
        );
        assert_eq!(common::stdout(&remote), common::stdout(&local), "{args:?}");
    }
    // Errors: the server's message, and a failing exit code, as locally.
    let local = common::movierec(&["recommend", "--model-dir", model, "qwzxv", "kjhgf"]);
    let remote = common::movierec(&["recommend", "--server", &url, "qwzxv", "kjhgf"]);
    assert!(!remote.status.success());
    assert_eq!(common::stderr(&remote), common::stderr(&local));
    let unreachable = common::movierec(&["recommend", "--server", "http://127.0.0.1:9", "heat"]);
    assert!(!unreachable.status.success());
    assert!(
        common::stderr(&unreachable).contains("request failed"),
        "{}",
        common::stderr(&unreachable)
    );
}

#[test]
fn a_blank_admin_token_is_refused_at_start() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(["serve", "--model-dir"])
        .arg(trained_model())
        .args(["--port", "0"])
        .env("MOVIEREC_ADMIN_TOKEN", "   ")
        .env("MOVIEREC_RUNS_DIR", common::runs_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("serve started with a blank admin token");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("MOVIEREC_ADMIN_TOKEN"), "{stderr}");
}

#[tokio::test]
async fn reloading_a_directory_whose_catalog_is_a_fifo_fails_at_once_and_keeps_serving() {
    let with_token = ServerConfig {
        admin_token: Some("secret".into()),
        ..config()
    };
    let (router, _state) = app(engine(), &with_token).unwrap();
    let copy = copy_of_model("fifo");
    let catalog = copy.join("catalog.json");
    std::fs::remove_file(&catalog).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&catalog)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let body = json!({"model_dir": copy}).to_string();
    // Opening a FIFO for reading waits for a writer: the reload must not.
    let (status, _, answer) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        send(&router, reload_request(Some("secret"), &body)),
    )
    .await
    .expect("the reload answered within 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{status} {answer}"
    );
    assert!(
        answer.contains("catalog.json") && answer.contains("not a regular file"),
        "{answer}"
    );
    assert_eq!(send(&router, recommend_request()).await.0, StatusCode::OK);
}
