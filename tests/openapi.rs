//! The OpenAPI document at `/api/openapi.json` against the routes the router serves, and the
//! interactive docs at `/docs/` (served with their assets, no browser needed).

use crate::common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use common::trained_model;
use http_body_util::BodyExt;
use movierec::engine::Engine;
use movierec::server::error::ErrorBody;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn app() -> axum::Router {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| Arc::new(Engine::open(trained_model()).expect("model")));
    movierec::server::router(engine.clone(), common::runs_dir().to_path_buf())
}

async fn send(request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

async fn get(uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    send(Request::get(uri).body(Body::empty()).unwrap()).await
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .map_or("", |v| v.to_str().unwrap())
}

async fn document() -> Value {
    let (status, headers, body) = get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type(&headers), "application/json");
    serde_json::from_slice(&body).unwrap()
}

/// The document's operations, as `(METHOD, path)`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"].contains(&&**method) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_lists_every_api_route_the_router_serves_and_no_other() {
    let doc = document().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let documented = operations(&doc);
    let served: BTreeSet<(String, String)> = movierec::server::served_routes()
        .into_iter()
        .filter(|r| r.in_openapi)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from the OpenAPI document (add #[utoipa::path] and list the handler \
         in ApiDoc): {undocumented:?}"
    );
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        not_served.is_empty(),
        "documented but not served: {not_served:?}"
    );
    // Everything under /api, /metrics and the seed's route is API, and so documented.
    for route in movierec::server::served_routes() {
        let api = route.path.starts_with("/api/")
            || route.path == "/metrics"
            || route.path == "/recommendation";
        assert_eq!(route.in_openapi, api, "{route:?}");
    }
}

#[tokio::test]
async fn every_documented_path_is_answered_by_its_route() {
    for (method, path) in operations(&document().await) {
        let uri = path.replace("{id}", "1");
        let method: Method = method.parse().unwrap();
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = send(request).await;
        let no_route = status == StatusCode::NOT_FOUND
            && String::from_utf8_lossy(&body).contains("no such route")
            || status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(!no_route, "{method} {uri}: {status}");
    }
}

#[tokio::test]
async fn every_error_status_is_documented_with_the_error_shape() {
    let doc = document().await;
    let error_schema = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error_schema["required"],
        serde_json::json!(["error"]),
        "{error_schema}"
    );
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]));
    for key in ["code", "message", "field", "suggestions"] {
        assert!(detail["properties"].get(key).is_some(), "{key}: {detail}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            // One success answer: 200, or 201 (created), 202 (started), 204 (deleted).
            assert!(
                ["200", "201", "202", "204"]
                    .iter()
                    .any(|s| responses.contains_key(*s)),
                "{method} {path}"
            );
            // Every route can time out, fail inside or shed load.
            for status in ["408", "500", "503"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
            // Every route that reads a body answers its errors (the reload's body is optional).
            let has_body = operation.get("requestBody").is_some();
            if has_body && path != "/api/admin/reload" {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_document_describes_the_filter_the_explanations_and_recall() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let filter = &schemas["MovieFilter"];
    assert_eq!(filter["additionalProperties"], false, "{filter}");
    for key in [
        "genres",
        "exclude_genres",
        "year_min",
        "year_max",
        "min_ratings",
        "exclude",
    ] {
        assert!(filter["properties"].get(key).is_some(), "{key}: {filter}");
    }
    let body = &schemas["RecommendationBody"];
    // One movie or several: exactly one of the two (checked by the server, described here).
    assert!(body["properties"]["movie"].is_object(), "{body}");
    assert_eq!(body["properties"]["movies"]["maxItems"], 100, "{body}");
    assert_eq!(
        body["properties"]["filter"]["$ref"],
        "#/components/schemas/MovieFilter"
    );
    assert_eq!(body["properties"]["k"]["maximum"], 100);
    let answer = &schemas["Recommendations"];
    for key in [
        "query",
        "model",
        "index",
        "recall",
        "results",
        "alternatives",
        "match",
    ] {
        assert!(answer["properties"].get(key).is_some(), "{key}: {answer}");
    }
    let kind = serde_json::to_string(&schemas["MatchKind"]).unwrap();
    for value in ["exact", "close", "loose"] {
        assert!(kind.contains(&format!("\"{value}\"")), "{kind}");
    }
    let why = &schemas["Explanation"];
    for key in [
        "becauseOf",
        "sharedGenres",
        "sharedDecade",
        "coLikes",
        "contentSimilarity",
        "text",
    ] {
        assert!(why["properties"].get(key).is_some(), "{key}: {why}");
    }
    let scored = serde_json::to_string(&schemas["ScoredMovie"]).unwrap();
    assert!(
        scored.contains("\"why\"") && scored.contains("#/components/schemas/MovieView"),
        "{scored}"
    );
    let personal = &doc["paths"]["/api/users/{userId}/recommendations"]["get"];
    let params: BTreeSet<&str> = personal["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        BTreeSet::from([
            "userId",
            "k",
            "genres",
            "exclude_genres",
            "year_min",
            "year_max",
            "min_ratings",
            "exclude"
        ])
    );
}

#[tokio::test]
async fn an_answer_has_the_documented_shape_of_an_error() {
    let request = Request::post("/api/recommendations")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"movie": "toy story", "k": 0}"#))
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error.code, "invalid_argument");
    assert_eq!(error.error.field.as_deref(), Some("k"));
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_the_error_shape() {
    let (status, _, body) = get("/api/recommendations").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let error: ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!(error.error.code, "method_not_allowed");
}

/// The `src` and `href` attributes of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

#[tokio::test]
async fn docs_serve_swagger_ui_and_every_asset_it_loads() {
    let (status, headers, _) = get("/docs").await;
    assert!(status.is_redirection(), "{status}");
    assert_eq!(headers[header::LOCATION], "/docs/");

    let (status, headers, body) = get("/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type(&headers).starts_with("text/html"),
        "{headers:?}"
    );
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Under `script-src 'self'` an inline script would not run: every script is a file.
    assert!(!html.contains("<script>"), "{html}");

    let assets = links(&html);
    assert!(assets.len() >= 5, "{assets:?}");
    let mut seen = BTreeSet::new();
    for asset in &assets {
        assert!(
            !asset.contains("//"),
            "{asset}: the docs load nothing from elsewhere"
        );
        let uri = format!("/docs/{}", asset.trim_start_matches("./"));
        let (status, headers, body) = get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(!body.is_empty(), "{uri}");
        let kind = content_type(&headers).to_string();
        if uri.ends_with(".js") {
            assert!(kind.contains("javascript"), "{uri}: {kind}");
        } else if uri.ends_with(".css") {
            assert!(kind.starts_with("text/css"), "{uri}: {kind}");
        }
        seen.insert(kind);
    }
    assert!(seen.iter().any(|k| k.contains("javascript")), "{seen:?}");
    assert!(seen.iter().any(|k| k.starts_with("text/css")), "{seen:?}");

    // The initializer points Swagger UI at this server's document, and at no validator.
    let (status, _, body) = get("/docs/swagger-initializer.js").await;
    assert_eq!(status, StatusCode::OK);
    let script = String::from_utf8(body).unwrap();
    assert!(script.contains("/api/openapi.json"), "{script}");
    assert!(!script.contains("petstore"), "{script}");

    let (status, _, body) = get("/docs/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    serde_json::from_slice::<ErrorBody>(&body).unwrap();
}

#[tokio::test]
async fn the_docs_page_has_a_viewport_tag_for_phones() {
    let (status, _, body) = get("/docs/").await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    assert_eq!(html.matches(r#"name="viewport""#).count(), 1, "{html}");
    assert!(html.contains(r#"content="width=device-width, initial-scale=1""#));
}
