//! Property tests of request parsing, through the real router in process: arbitrary JSON bodies,
//! arbitrary bytes, arbitrary query strings and path segments never make the server fail (no
//! 5xx, no panic), and every 4xx has the documented error shape with a message.

use crate::common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::trained_model;
use http_body_util::BodyExt;
use movierec::engine::Engine;
use movierec::server::error::ErrorBody;
use movierec::server::{app, ServerConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// The admin token the router is built with, so that reload bodies are parsed too.
const ADMIN_TOKEN: &str = "property-token";

/// The routes that read a JSON body.
const POST_ROUTES: [&str; 4] = [
    "/api/recommendations",
    "/api/recommendations/for-likes",
    "/recommendation",
    "/api/admin/reload",
];

/// The routes that read a query string.
const GET_ROUTES: [&str; 5] = [
    "/api/movies/search",
    "/api/projection",
    "/api/runs",
    "/api/users/1/recommendations",
    "/api/health",
];

/// Field names the bodies and queries know, so that generated requests get past the first
/// check often enough to reach the deeper ones.
const KEYS: [&str; 20] = [
    "movie",
    "k",
    "model",
    "index",
    "filter",
    "likes",
    "dislikes",
    "n_recommendations",
    "movie_title",
    "model_dir",
    "genres",
    "exclude_genres",
    "year_min",
    "year_max",
    "min_ratings",
    "exclude",
    "q",
    "limit",
    "kind",
    "x",
];

fn router() -> axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let engine = Arc::new(Engine::open(trained_model()).expect("model"));
            let mut config = ServerConfig::new(
                trained_model().to_path_buf(),
                common::runs_dir().to_path_buf(),
            );
            config.admin_token = Some(ADMIN_TOKEN.into());
            app(engine, &config).expect("config").0
        })
        .clone()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Sends `request` and checks the answer: below 500, and a 4xx carries the error shape.
fn check(request: Request<Body>) -> Result<(), TestCaseError> {
    let what = format!("{} {}", request.method(), request.uri());
    let (status, content_type, body) = runtime().block_on(async {
        let response = router().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, body)
    });
    let text = String::from_utf8_lossy(&body);
    prop_assert!(status.as_u16() < 500, "{what}: {status} {text}");
    if status.is_client_error() {
        prop_assert!(
            content_type.starts_with("application/json"),
            "{what}: {status} {content_type:?} {text}"
        );
        let error: ErrorBody = serde_json::from_slice(&body)
            .map_err(|e| TestCaseError::fail(format!("{what}: {status} {text}: {e}")))?;
        prop_assert!(!error.error.message.trim().is_empty(), "{what}: {text}");
        prop_assert!(
            !error.error.code.is_empty()
                && error
                    .error
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{what}: {text}"
        );
    } else {
        // 200, or the redirect of `/docs` to `/docs/`.
        prop_assert!(
            status == StatusCode::OK || status.is_redirection(),
            "{what}: {status} {text}"
        );
    }
    Ok(())
}

fn post(uri: &str, content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut request =
        Request::post(uri).header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"));
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(Body::from(body)).unwrap()
}

/// Any JSON value, nested a few levels, with objects keyed mostly by the known field names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![-5i64..120, Just(0), Just(1), Just(100), Just(101)].prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("toy story"),
            Just("Toy Story (1995)"),
            Just("FAISS"),
            Just("annoy"),
            Just("hnsw"),
            Just("als"),
            Just("item_knn"),
            Just("collaborative"),
            Just("Comedy"),
            Just(" "),
            Just(""),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&KEYS[..]).prop_map(String::from),
        1 => "[a-z_]{1,8}",
    ]
}

/// A JSON object keyed by known field names: the shape of a real body, with arbitrary values.
fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A query string of known and unknown names, with arbitrary (and arbitrarily escaped) values.
fn query_string() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[ -~]{0,10}",
        "-?[0-9]{1,22}",
        Just("Comedy,Drama".to_string()),
        Just("%FF%FE".to_string()),
        Just("%".to_string()),
        ".{0,6}",
    ];
    prop::collection::vec((key(), value), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let v: String = v
                    .chars()
                    .map(|c| match c {
                        ' ' => "+".to_string(),
                        '#' => "%23".to_string(),
                        // Left raw: what a URI may carry unescaped, and `%`, `&` and `=`, so
                        // that broken escapes and stray separators come through too.
                        c if c.is_ascii_alphanumeric() || "-._~!$'()*+,;=:@/?%&".contains(c) => {
                            c.to_string()
                        }
                        c => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
                    })
                    .collect();
                format!("{k}={v}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn arbitrary_json_bodies_never_fail_the_server() {
    runner()
        .run(
            &(
                prop::sample::select(&POST_ROUTES[..]),
                prop_oneof![json_object(), json_value()],
            ),
            |(uri, body)| {
                check(post(
                    uri,
                    Some("application/json"),
                    serde_json::to_vec(&body).unwrap(),
                ))
            },
        )
        .unwrap();
}

#[test]
fn arbitrary_bytes_never_fail_the_server() {
    let content_type = prop_oneof![
        Just(Some("application/json")),
        Just(Some("application/json; charset=utf-8")),
        Just(Some("text/plain")),
        Just(Some("application/x-www-form-urlencoded")),
        Just(None),
    ];
    runner()
        .run(
            &(
                prop::sample::select(&POST_ROUTES[..]),
                content_type,
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..200),
                    "[{}\\[\\]\":,0-9a-z \\\\]{0,60}".prop_map(String::into_bytes),
                ],
            ),
            |(uri, content_type, body)| check(post(uri, content_type, body)),
        )
        .unwrap();
}

#[test]
fn arbitrary_query_strings_and_user_ids_never_fail_the_server() {
    let segment = prop_oneof![
        "[0-9]{1,12}",
        "-?[0-9a-zA-Z._~-]{0,10}",
        "(%[0-9A-F]{2}){1,4}",
    ];
    runner()
        .run(
            &(
                prop::sample::select(&GET_ROUTES[..]),
                segment,
                query_string(),
            ),
            |(route, segment, query)| {
                let path = if route.contains("/users/") {
                    format!("/api/users/{segment}/recommendations")
                } else {
                    route.to_string()
                };
                let uri = format!("{path}?{query}");
                check(Request::get(uri).body(Body::empty()).unwrap())
            },
        )
        .unwrap();
}

#[test]
fn arbitrary_methods_and_paths_answer_with_the_error_shape() {
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ]);
    let path = prop_oneof![
        prop::sample::select(&POST_ROUTES[..]).prop_map(String::from),
        prop::sample::select(&GET_ROUTES[..]).prop_map(String::from),
        "/[a-z]{0,8}(/[a-z.]{1,8}){0,3}",
        "/docs/[a-z.-]{0,12}",
    ];
    runner()
        .run(&(method, path), |(method, path)| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            check(request)
        })
        .unwrap();
}
