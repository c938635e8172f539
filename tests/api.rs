//! Every API route and every error, through the real router; and the real binary serving HTTP.

use crate::common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::trained_model;
use http_body_util::BodyExt;
use movierec::engine::Engine;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

fn app() -> axum::Router {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| Arc::new(Engine::open(trained_model()).expect("model")));
    movierec::server::router(engine.clone(), common::runs_dir().to_path_buf())
}

async fn send(request: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    // Every answer tells browsers not to guess its type.
    assert_eq!(
        response
            .headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "{status}"
    );
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, body)
}

async fn get(uri: &str) -> (StatusCode, Value) {
    let (status, content_type, body) = send(Request::get(uri).body(Body::empty()).unwrap()).await;
    assert!(
        content_type.starts_with("application/json"),
        "{uri}: {content_type}"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

async fn post_raw(uri: &str, content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = Request::post(uri);
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let (status, response_type, body) =
        send(request.body(Body::from(body.to_string())).unwrap()).await;
    assert!(
        response_type.starts_with("application/json"),
        "{uri}: {response_type}"
    );
    (status, serde_json::from_slice(&body).unwrap())
}

async fn post(uri: &str, body: Value) -> (StatusCode, Value) {
    post_raw(uri, Some("application/json"), &body.to_string()).await
}

/// The message of an error answer, after checking the one error shape:
/// `{"error": {"code": "…", "message": "…", "field"?: "…", "suggestions"?: […]}}`.
fn error_of(body: &Value) -> &str {
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object in {body}"));
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"));
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{body}"
    );
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "field", "suggestions"].contains(&k.as_str())),
        "{body}"
    );
    error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
}

/// The `code` and `field` of an error answer.
fn code_and_field(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap(),
        body["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn health_reports_the_catalog_and_choices() {
    let (status, body) = get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["movies"], 9739);
    assert_eq!(
        body["models"],
        json!([
            "similar",
            "collaborative",
            "content",
            "hybrid",
            "item_knn",
            "ease",
            "als",
            "svd"
        ])
    );
    assert_eq!(
        body["modelShapes"]["collaborative"],
        json!({"model": "item_knn", "shape": "neighbour_lists"})
    );
    assert_eq!(body["modelShapes"]["hybrid"]["shape"], "embeddings");
    assert_eq!(
        body["modelShapes"]["similar"],
        json!({"model": "similar", "shape": "neighbour_lists"})
    );
    assert_eq!(body["defaults"]["model"], "similar");
    assert_eq!(body["indexes"], json!(["exact", "annoy", "hnsw"]));
}

#[tokio::test]
async fn search_suggests_titles_as_you_type() {
    let (status, body) = get("/api/movies/search?q=toy%20st&limit=5").await;
    assert_eq!(status, StatusCode::OK);
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.len() <= 5);
    assert!(
        results[0]["title"]
            .as_str()
            .unwrap()
            .starts_with("Toy Story"),
        "{body}"
    );
    let (status, body) = get("/api/movies/search?q=").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"], json!([]));
}

#[tokio::test]
async fn search_rejects_a_bad_limit() {
    for uri in [
        "/api/movies/search?q=heat&limit=0",
        "/api/movies/search?q=heat&limit=51",
    ] {
        let (status, body) = get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(
            error_of(&body).contains("limit must be between 1 and 50"),
            "{body}"
        );
    }
    let (status, body) = get("/api/movies/search?q=heat&limit=ten").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("limit"), "{body}");
}

#[tokio::test]
async fn recommendations_by_title_and_by_id_agree() {
    let (status, by_title) = post(
        "/api/recommendations",
        json!({"movie": "toy stroy", "k": 10, "model": "collaborative", "index": "exact"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_title}");
    assert_eq!(by_title["query"]["movieId"], 1);
    assert_eq!(by_title["results"].as_array().unwrap().len(), 10);
    let (_, by_id) = post(
        "/api/recommendations",
        json!({"movie": 1, "k": 10, "model": "collaborative", "index": "exact"}),
    )
    .await;
    assert_eq!(by_title["results"], by_id["results"]);
    // Each answer says how the title matched: a typo is close, an id exact, a guess loose.
    assert_eq!(by_title["match"], "close", "{by_title}");
    assert_eq!(by_id["match"], "exact");
    let (_, guess) = post("/api/recommendations", json!({"movie": "inception 2"})).await;
    assert_eq!(guess["query"]["title"], "Inception", "{guess}");
    assert_eq!(guess["match"], "loose", "{guess}");
    let titles: Vec<&str> = by_id["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Toy Story 2"), "{titles:?}");
}

#[tokio::test]
async fn recommendations_for_several_movies_are_near_all_of_them() {
    // Toy Story (1) and Finding Nemo (6377): every model and index answers, never with either.
    for (model, index) in [
        ("content", "exact"),
        ("svd", "hnsw"),
        ("hybrid", "annoy"),
        ("collaborative", "exact"),
        ("ease", "exact"),
    ] {
        let (status, body) = post(
            "/api/recommendations",
            json!({"movies": [1, "finding nemo"], "k": 10, "model": model, "index": index}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{model}/{index}: {body}");
        assert_eq!(body["query"]["movieId"], 1);
        assert_eq!(body["also"][0]["movieId"], 6377, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 10, "{model}/{index}: {body}");
        let ids: Vec<u64> = results
            .iter()
            .map(|r| r["movieId"].as_u64().unwrap())
            .collect();
        assert!(
            !ids.contains(&1) && !ids.contains(&6377),
            "{model}/{index}: {ids:?}"
        );
        assert!(
            results.iter().all(|r| r["why"]["text"].is_string()),
            "{body}"
        );
    }
    // Pixar's films come up when asking for two of them together (item-kNN).
    let (_, body) = post(
        "/api/recommendations",
        json!({"movies": [1, 6377], "k": 20}),
    )
    .await;
    let titles: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap())
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Monsters, Inc.") || t.starts_with("Incredibles")),
        "{titles:?}"
    );
    // Exactly one of `movie` and `movies`; the list is 1–100 movies, each known.
    for (body, status, field, message) in [
        (
            json!({"movie": 1, "movies": [2]}),
            StatusCode::BAD_REQUEST,
            "movie",
            "not both",
        ),
        (
            json!({"k": 10}),
            StatusCode::BAD_REQUEST,
            "movie",
            "movie: missing",
        ),
        (
            json!({"movies": []}),
            StatusCode::BAD_REQUEST,
            "movies",
            "between 1 and 100",
        ),
        (
            json!({"movies": (1..=101).collect::<Vec<u32>>()}),
            StatusCode::BAD_REQUEST,
            "movies",
            "got 101",
        ),
        (
            json!({"movies": [1, 99999999]}),
            StatusCode::NOT_FOUND,
            "movies",
            "99999999",
        ),
        (
            json!({"movies": [1, " "]}),
            StatusCode::BAD_REQUEST,
            "movies",
            "empty",
        ),
    ] {
        let (got, answer) = post("/api/recommendations", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(code_and_field(&answer).1, Some(field), "{body}: {answer}");
        assert!(error_of(&answer).contains(message), "{body}: {answer}");
    }
}

/// Whether a result (a movie view) passes: a Documentary of 2000–2015 with at least 3 ratings,
/// not the excluded movie 1.
fn passes_documentary_filter(movie: &Value) -> bool {
    let genres = movie["genres"].as_array().unwrap();
    let year = movie["year"].as_u64().unwrap_or(0);
    genres.iter().any(|g| g == "Documentary")
        && (2000..=2015).contains(&year)
        && movie["ratingCount"].as_u64().unwrap() >= 3
        && movie["movieId"] != 1
}

#[tokio::test]
async fn filters_apply_inside_every_index_and_still_return_k() {
    // About 1% of the catalog passes: an unfiltered top 20 would hold none of it.
    let filter = json!({"genres": ["documentary"], "year_min": 2000, "year_max": 2015,
                        "min_ratings": 3, "exclude": [1]});
    for index in ["exact", "annoy", "hnsw"] {
        let (status, body) = post(
            "/api/recommendations",
            json!({"movie": "toy story", "k": 20, "model": "svd", "index": index,
                   "filter": filter}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len(), 20, "{index}");
        assert!(
            results.iter().all(passes_documentary_filter),
            "{index}: {body}"
        );
    }
    let (status, body) = get(
        "/api/users/1/recommendations?k=5&genres=Documentary&year_min=2000&year_max=2015&min_ratings=3&exclude=1",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(passes_documentary_filter), "{body}");

    for (filter, field, needle) in [
        (
            json!({"genres": ["Space Opera"]}),
            "genres",
            "unknown genre \"Space Opera\"",
        ),
        (
            json!({"year_min": 2001, "year_max": 1999}),
            "year_min",
            "after year_max",
        ),
        (
            json!({"exclude": [999999999]}),
            "exclude",
            "no movie has movieId 999999999",
        ),
        (json!({"min_ratings": -1}), "", "min_ratings"),
        (json!({"colour": "blue"}), "", "unknown field `colour`"),
    ] {
        let (status, body) = post(
            "/api/recommendations",
            json!({"movie": 1, "filter": filter}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(error_of(&body).contains(needle), "{needle}: {body}");
        if !field.is_empty() {
            assert!(error_of(&body).contains(field), "{field}: {body}");
        }
    }
}

#[tokio::test]
async fn every_result_says_why_it_was_picked() {
    let (status, body) = post(
        "/api/recommendations",
        json!({"movie": 1, "k": 10, "model": "collaborative"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let sequel = results
        .iter()
        .find(|r| r["title"] == "Toy Story 2")
        .expect("Toy Story 2 is a neighbour");
    let why = &sequel["why"];
    assert_eq!(why["becauseOf"], 1);
    for genre in ["Adventure", "Animation", "Children", "Comedy", "Fantasy"] {
        assert!(
            why["sharedGenres"]
                .as_array()
                .unwrap()
                .contains(&json!(genre)),
            "{why}"
        );
    }
    assert_eq!(why["sharedDecade"], "1990s");
    // Dozens of the bundled data's users rated both at least 4 stars.
    let co_likes = why["coLikes"].as_u64().expect("co-likes counted");
    assert!((20..=200).contains(&co_likes), "{why}");
    assert!(why["contentSimilarity"].as_f64().unwrap() > 0.5, "{why}");
    let text = why["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "Adventure, Animation, Children, Comedy, Fantasy · both from the 1990s · \
             {co_likes} people who liked Toy Story also liked it · content match {:.2}",
            why["contentSimilarity"].as_f64().unwrap()
        )
    );
    // Each result says its own, whatever the model.
    for model in ["content", "svd"] {
        let (_, body) = post("/api/recommendations", json!({"movie": 1, "model": model})).await;
        assert!(
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["why"]["text"].is_string()),
            "{body}"
        );
        // The parts are joined by one separator, whichever of them are present.
        for r in body["results"].as_array().unwrap() {
            let text = r["why"]["text"].as_str().unwrap();
            let parts: Vec<&str> = text.split(" · ").collect();
            assert!(parts.iter().all(|p| !p.is_empty()), "{text}");
            assert!(
                parts.last().unwrap().starts_with("content match "),
                "{text}"
            );
        }
    }
    // Personalised results are explained by a movie the person liked.
    let (_, body) = post(
        "/api/recommendations/for-likes",
        json!({"likes": [1, 2571], "k": 5}),
    )
    .await;
    for r in body["results"].as_array().unwrap() {
        let because = &r["why"]["becauseOf"];
        assert!(because == 1 || because == 2571, "{r}");
    }
}

#[tokio::test]
async fn recommendations_default_to_k_10_and_accept_every_model_and_index() {
    for model in ["content", "svd", "als", "hybrid"] {
        for index in ["exact", "annoy", "hnsw"] {
            let (status, body) = post(
                "/api/recommendations",
                json!({"movie": "heat", "model": model, "index": index}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["results"].as_array().unwrap().len(), 10);
            assert_eq!(body["model"], model);
            assert_eq!(body["index"], index);
        }
    }
    // Neighbour-list models answer from their lists whatever index is asked for, and say so;
    // `collaborative` names the default one.
    for (model, served) in [
        ("similar", "similar"),
        ("item_knn", "item_knn"),
        ("ease", "ease"),
        ("collaborative", "item_knn"),
    ] {
        let mut first = None;
        for index in [None, Some("exact"), Some("annoy"), Some("hnsw")] {
            let mut request = json!({"movie": "heat", "model": model});
            if let Some(index) = index {
                request["index"] = json!(index);
            }
            let (status, body) = post("/api/recommendations", request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["results"].as_array().unwrap().len(), 10);
            assert_eq!(body["model"], served);
            assert_eq!(body["index"], "lists");
            assert_eq!(body["recall"], 1.0);
            let first = first.get_or_insert_with(|| body["results"].clone());
            assert_eq!(&body["results"], first, "{model}/{index:?}");
        }
    }
    // `lists` is no index of an embedding model.
    let (status, body) = post(
        "/api/recommendations",
        json!({"movie": "heat", "model": "svd", "index": "lists"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        error_of(&body).contains("svd is an embedding model"),
        "{body}"
    );
}

#[tokio::test]
async fn recommendation_errors_name_the_problem() {
    let cases = [
        (
            json!({"movie": "heat", "k": 0}),
            StatusCode::BAD_REQUEST,
            "k must be between 1 and 100",
        ),
        (
            json!({"movie": "heat", "k": 101}),
            StatusCode::BAD_REQUEST,
            "k must be between 1 and 100",
        ),
        (
            json!({"movie": "heat", "k": -3}),
            StatusCode::BAD_REQUEST,
            "k must be between 1 and 100",
        ),
        (
            json!({"movie": "heat", "model": "faiss"}),
            StatusCode::BAD_REQUEST,
            "unknown model",
        ),
        (
            json!({"movie": "heat", "index": "kd"}),
            StatusCode::BAD_REQUEST,
            "unknown index",
        ),
        (
            json!({"movie": ""}),
            StatusCode::BAD_REQUEST,
            "title is empty",
        ),
        (
            json!({"movie": "   "}),
            StatusCode::BAD_REQUEST,
            "title is empty",
        ),
        (
            json!({"movie": "xqzwvkj"}),
            StatusCode::NOT_FOUND,
            "no movie matches",
        ),
        (
            json!({"movie": 99999999}),
            StatusCode::NOT_FOUND,
            "movieId 99999999",
        ),
        (
            json!({"k": 5}),
            StatusCode::BAD_REQUEST,
            "movie: missing; give movie (a title or movieId) or movies",
        ),
        (
            json!({"movie": "heat", "k": "five"}),
            StatusCode::BAD_REQUEST,
            "k: invalid type",
        ),
        (
            json!({"movie": "heat", "model": 3}),
            StatusCode::BAD_REQUEST,
            "model: invalid type",
        ),
        (json!({"movie": [1]}), StatusCode::BAD_REQUEST, "movie"),
        (
            json!({"movie": "heat", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            json!([1, 2]),
            StatusCode::BAD_REQUEST,
            "must be a JSON object",
        ),
    ];
    for (body, status, needle) in cases {
        let (got, answer) = post("/api/recommendations", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(error_of(&answer).contains(needle), "{body} → {answer}");
    }
    // Codes and fields, for clients that react to them.
    for (body, code, field) in [
        (
            json!({"movie": "heat", "k": 0}),
            "invalid_argument",
            Some("k"),
        ),
        (
            json!({"movie": "heat", "k": "five"}),
            "invalid_argument",
            Some("k"),
        ),
        (
            json!({"movie": "heat", "index": "faiss"}),
            "invalid_argument",
            Some("index"),
        ),
        (
            json!({"movie": 999999999}),
            "movie_not_found",
            Some("movie"),
        ),
        (
            json!({"movie": "heat", "filter": {"genres": ["Space Opera"]}}),
            "invalid_argument",
            Some("genres"),
        ),
        (json!([1]), "invalid_argument", None),
    ] {
        let (_, answer) = post("/api/recommendations", body.clone()).await;
        error_of(&answer);
        assert_eq!(code_and_field(&answer), (code, field), "{body} → {answer}");
    }
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_client_errors() {
    let (status, body) = post_raw(
        "/api/recommendations",
        Some("application/json"),
        "{\"movie\": ",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!error_of(&body).is_empty());
    assert_eq!(code_and_field(&body), ("malformed_body", None));
    let (status, body) = post_raw("/api/recommendations", Some("text/plain"), "{}").await;
    assert_eq!(code_and_field(&body).0, "unsupported_media_type");
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        error_of(&body).contains("Content-Type: application/json"),
        "{body}"
    );
    let (status, _) = post_raw("/api/recommendations", None, "{}").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"movie\": \"{}\"}}", "a".repeat(100_000));
    let (status, body) = post_raw("/api/recommendations", Some("application/json"), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(code_and_field(&body).0, "payload_too_large");
}

#[tokio::test]
async fn unknown_titles_come_back_with_suggestions() {
    let (status, body) = post("/api/recommendations", json!({"movie": "godfather zzqxv"})).await;
    if status == StatusCode::NOT_FOUND {
        assert_eq!(code_and_field(&body).0, "movie_not_found");
        let suggestions = body["error"]["suggestions"]
            .as_array()
            .expect("suggestions");
        assert!(suggestions
            .iter()
            .any(|s| s.as_str().unwrap().contains("Godfather")));
    } else {
        assert_eq!(status, StatusCode::OK);
        assert!(body["query"]["title"]
            .as_str()
            .unwrap()
            .contains("Godfather"));
    }
}

#[tokio::test]
async fn the_seed_endpoint_keeps_its_body_and_maps_its_models() {
    let (status, body) = post(
        "/recommendation",
        json!({"model": "FAISS", "n_recommendations": 5, "movie_title": "Toy Story"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Both seed choices answer "more like this", from its lists.
    assert_eq!(body["model"], "similar");
    assert_eq!(body["index"], "lists");
    assert_eq!(body["recommendations"].as_array().unwrap().len(), 5);
    assert!(body["recommendations"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let (status, body) = post(
        "/recommendation",
        json!({"model": "annoy", "n_recommendations": 3, "movie_title": "heat"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], "similar");
    assert_eq!(body["index"], "lists");
    // The seed's own request: eight films like Rocky, its sequels among them and none of them
    // obscure (today's content model gave eight 1970s dramas with 1–4 ratings each).
    let (status, body) = post(
        "/recommendation",
        json!({"model": "faiss", "n_recommendations": 8, "movie_title": "Rocky"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    assert!(
        results
            .iter()
            .all(|r| r["ratingCount"].as_u64().unwrap() >= 5),
        "{body}"
    );
    assert!(
        results
            .iter()
            .any(|r| r["title"].as_str().unwrap().starts_with("Rocky ")),
        "{body}"
    );
    for (bad, needle) in [
        (
            json!({"model": "KNN", "n_recommendations": 3, "movie_title": "heat"}),
            "FAISS or ANNOY",
        ),
        (
            json!({"model": "FAISS", "n_recommendations": 0, "movie_title": "heat"}),
            "n_recommendations must be between 1 and 100, got 0",
        ),
        (
            json!({"model": "FAISS", "n_recommendations": 3, "movie_title": "heat", "k": 3}),
            "unknown field",
        ),
        (
            json!({"model": "FAISS", "n_recommendations": 3, "movie_title": ""}),
            "empty",
        ),
        (
            json!({"model": "FAISS", "movie_title": "heat"}),
            "n_recommendations",
        ),
    ] {
        let (status, body) = post("/recommendation", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {body}");
        assert!(error_of(&body).contains(needle), "{bad} → {body}");
    }
    // The field named is the one the client sent.
    let (_, body) = post(
        "/recommendation",
        json!({"model": "FAISS", "n_recommendations": 101, "movie_title": "heat"}),
    )
    .await;
    assert_eq!(body["error"]["field"], "n_recommendations", "{body}");
}

#[tokio::test]
async fn an_overlong_title_is_refused_and_a_long_unmatched_one_stays_cheap() {
    let long = "x".repeat(301);
    let (status, body) = post("/api/recommendations", json!({"movie": long})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        error_of(&body).contains("at most 300 characters, got 301"),
        "{body}"
    );
    // 300 characters of words that match nothing: an answer with suggestions, quickly.
    let words = "qzxv ".repeat(60);
    let started = std::time::Instant::now();
    let (status, body) = post("/api/recommendations", json!({"movie": words.trim()})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn likes_and_dislikes_are_capped_like_query_movies() {
    let many: Vec<u32> = (0..101).map(|_| 1).collect();
    for field in ["likes", "dislikes"] {
        let mut body = json!({"likes": [1], "k": 5});
        body[field] = json!(many);
        let (status, answer) = post("/api/recommendations/for-likes", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            error_of(&answer).contains(&format!("{field}: at most 100 movies, got 101")),
            "{answer}"
        );
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let hundred: Vec<u32> = (0..100).map(|_| 1).collect();
    let (status, answer) = post(
        "/api/recommendations/for-likes",
        json!({"likes": hundred, "k": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn personalised_recommendations_for_a_user_and_for_likes() {
    let (status, body) = get("/api/users/1/recommendations?k=5").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], 1);
    assert_eq!(body["results"].as_array().unwrap().len(), 5);
    let (status, body) = get("/api/users/1/recommendations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["results"].as_array().unwrap().len(),
        10,
        "k defaults to 10"
    );

    let (status, body) = post(
        "/api/recommendations/for-likes",
        json!({"likes": ["toy stroy", 2571], "dislikes": ["heat"], "k": 7}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let liked: Vec<&Value> = body["liked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["movieId"])
        .collect();
    assert_eq!(liked, vec![&json!(1), &json!(2571)]);
    assert_eq!(body["disliked"][0]["title"], "Heat");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    assert!(results
        .iter()
        .all(|r| ![1, 2571, 6].contains(&r["movieId"].as_u64().unwrap())));
}

/// The `why.becauseOf` of every result of an answer.
fn reasons(body: &Value) -> Vec<u64> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| r["why"]["becauseOf"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn several_liked_films_each_explain_some_of_one_balanced_list() {
    // Toy Story, The Matrix and Amélie: The Matrix's large similarities alone used to explain
    // the whole top 10.
    let (status, body) = post(
        "/api/recommendations/for-likes",
        json!({"likes": [1, 2571, 4973], "k": 10}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 10);
    let because = reasons(&body);
    for liked in [1, 2571, 4973] {
        assert!(because.contains(&liked), "{liked} explains none: {body}");
    }
    // The same for "more like these" with the collaborative lists.
    let (status, body) = post(
        "/api/recommendations",
        json!({"movies": [1, 2571, 4973], "k": 10, "model": "collaborative"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), 10);
    let because = reasons(&body);
    for query in [1, 2571, 4973] {
        assert!(because.contains(&query), "{query} explains none: {body}");
    }
}

#[tokio::test]
async fn personalised_request_errors_name_the_problem() {
    for (uri, status, needle) in [
        (
            "/api/users/999999/recommendations",
            StatusCode::NOT_FOUND,
            "no user 999999",
        ),
        (
            "/api/users/abc/recommendations",
            StatusCode::BAD_REQUEST,
            "is not a number",
        ),
        (
            "/api/users/1/recommendations?k=0",
            StatusCode::BAD_REQUEST,
            "k must be between",
        ),
        (
            "/api/users/1/recommendations?k=x",
            StatusCode::BAD_REQUEST,
            "k",
        ),
    ] {
        let (got, body) = get(uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert!(error_of(&body).contains(needle), "{uri}: {body}");
    }
    for (body, status, needle) in [
        (
            json!({"likes": []}),
            StatusCode::BAD_REQUEST,
            "at least one movie",
        ),
        (json!({}), StatusCode::BAD_REQUEST, "missing field `likes`"),
        (
            json!({"likes": ["xqzwvkj"]}),
            StatusCode::NOT_FOUND,
            "no movie matches",
        ),
        (
            json!({"likes": ["heat"], "k": 500}),
            StatusCode::BAD_REQUEST,
            "k must be between",
        ),
        (
            json!({"likes": "heat"}),
            StatusCode::BAD_REQUEST,
            "likes: invalid type",
        ),
        (
            json!({"likes": [""]}),
            StatusCode::BAD_REQUEST,
            "title is empty",
        ),
    ] {
        let (got, answer) = post("/api/recommendations/for-likes", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(error_of(&answer).contains(needle), "{body} → {answer}");
    }
}

#[tokio::test]
async fn projection_has_one_point_per_movie_for_each_model() {
    for model in ["content", "svd", "als", "hybrid"] {
        let (status, body) = get(&format!("/api/projection?model={model}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["model"], model);
        assert_eq!(body["x"].as_array().unwrap().len(), 9739);
        assert_eq!(body["y"].as_array().unwrap().len(), 9739);
        assert_eq!(body["movieIds"].as_array().unwrap().len(), 9739);
    }
    let (status, body) = get("/api/projection").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["model"], "hybrid");
    let (status, body) = get("/api/projection?model=collaborative").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&body).contains("collaborative (item_knn) has no embedding to plot"),
        "{body}"
    );
    let (status, body) = get("/api/projection?model=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("unknown model"));
    let (status, body) = get("/api/movies/titles").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["titles"].as_array().unwrap().len(), 9739);
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let (status, body) = get("/api/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), "no such route");
}

#[tokio::test]
async fn the_web_page_and_its_assets_are_served_from_the_binary() {
    let response = app()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'self'"),
        "{csp}"
    );
    let (status, content_type, body) = send(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("/assets/app.js") && html.contains("/assets/app.css"));
    assert!(
        !html.contains("http://") && !html.contains("https://cdn"),
        "no external assets"
    );
    for (uri, kind, file) in [
        ("/assets/app.js", "text/javascript", "app.js"),
        ("/assets/app.css", "text/css", "app.css"),
        (
            "/assets/vendor/uPlot.iife.min.js",
            "text/javascript",
            "vendor/uPlot.iife.min.js",
        ),
        (
            "/assets/vendor/uPlot.min.css",
            "text/css",
            "vendor/uPlot.min.css",
        ),
    ] {
        assert!(html.contains(uri), "the page does not load {uri}");
        let (status, content_type, body) =
            send(Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(content_type.starts_with(kind), "{uri}: {content_type}");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("web")
            .join(file);
        assert!(
            body == std::fs::read(&path).unwrap(),
            "{uri} is not {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn assets_and_json_are_gzipped_for_clients_that_accept_it() {
    for uri in [
        "/",
        "/assets/app.js",
        "/assets/vendor/uPlot.iife.min.js",
        "/api/movies/titles",
        "/api/projection?model=hybrid",
    ] {
        let plain = send(Request::get(uri).body(Body::empty()).unwrap()).await.2;
        let response = app()
            .oneshot(
                Request::get(uri)
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            response.headers().get(header::CONTENT_ENCODING),
            Some(&header::HeaderValue::from_static("gzip")),
            "{uri}"
        );
        let gzipped = response.into_body().collect().await.unwrap().to_bytes();
        assert!(gzipped.starts_with(&[0x1f, 0x8b]), "{uri}: not gzip");
        assert!(
            gzipped.len() * 2 < plain.len(),
            "{uri}: {} bytes gzipped, {} plain",
            gzipped.len(),
            plain.len()
        );
    }
}

#[test]
fn the_binary_serves_http_on_the_given_port() {
    use std::io::{Read, Write};
    let server = common::server::Server::start(trained_model());
    let address = server.address().to_string();
    let body = r#"{"movie": "Toy Story", "k": 10}"#;
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "POST /api/recommendations HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    drop(server);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"Toy Story 2\""), "{response}");
}

#[tokio::test]
async fn runs_lists_the_recorded_training_and_filters_by_kind() {
    let (status, body) = get("/api/runs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let runs = body["runs"].as_array().unwrap();
    // The model these tests serve was trained by this test binary, which recorded the run (the
    // other tests record theirs in the same store: find this one by its output directory).
    let out = trained_model().display().to_string();
    let train = runs
        .iter()
        .find(|r| r["kind"] == "train" && r["status"] == "finished" && r["params"]["out"] == out)
        .unwrap_or_else(|| panic!("no training run of {out} in {body}"));
    assert_eq!(train["metrics"]["movies"], 9739.0);
    assert!(train["metrics"]["item_knn.annoy.recall_at_10"].is_null());
    assert!(train["metrics"]["svd.annoy.recall_at_10"].as_f64().unwrap() > 0.9);
    let (status, body) = get("/api/runs?kind=evaluate&limit=5").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["kind"] == "evaluate"));
    for (bad, needle) in [
        ("/api/runs?kind=serve", "kind:"),
        ("/api/runs?limit=0", "limit must be at least 1"),
        ("/api/runs?limit=x", "limit"),
    ] {
        let (status, body) = get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(error_of(&body).contains(needle), "{bad}: {body}");
    }
}

#[tokio::test]
async fn options_without_cors_is_405_in_the_error_shape_not_an_empty_200() {
    for (uri, status, code) in [
        (
            "/api/health",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "/api/recommendations",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        ("/no/such/route", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let request = Request::options(uri).body(Body::empty()).unwrap();
        let (got, content_type, body) = send(request).await;
        assert_eq!(got, status, "{uri}");
        assert!(content_type.starts_with("application/json"), "{uri}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
    }
}

#[tokio::test]
async fn a_compressed_request_body_is_refused_with_415() {
    let request = Request::post("/api/recommendations")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(r#"{"movie": 1}"#))
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    assert!(error_of(&body).contains("\"gzip\""), "{body}");
    // `identity` is no encoding at all.
    let request = Request::post("/api/recommendations")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "identity")
        .body(Body::from(r#"{"movie": 1}"#))
        .unwrap();
    assert_eq!(send(request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_target_or_header_block_gets_the_error_shape() {
    let long = format!("/api/movies/search?q={}", "a".repeat(9_000));
    let (status, body) = get(&long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    assert_eq!(body["error"]["code"], "uri_too_long");
    let request = Request::get("/api/health")
        .header("x-padding", "b".repeat(40_000))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    // Through a real server too: hyper reads such a head and hands it to the checks.
    use std::io::{Read, Write};
    let server = common::server::Server::start(trained_model());
    let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
    write!(
        stream,
        "GET {long} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 414"), "{response}");
    assert!(response.contains("\"uri_too_long\""), "{response}");
}

#[test]
fn requests_hyper_cannot_parse_get_the_error_shape_too() {
    use std::io::{Read, Write};
    let server = common::server::Server::start(trained_model());
    let ask = |raw: &[u8]| -> String {
        let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
        stream.write_all(raw).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    };
    let huge = format!(
        "GET /api/health HTTP/1.1\r\nHost: t\r\nx-a: {}\r\n\r\n",
        "a".repeat(600_000)
    );
    for (raw, status, code) in [
        (
            &b"GET /api/health HTTP/1.1\r\nHost: t\r\nbad header line\r\n\r\n"[..],
            "400",
            "malformed_request",
        ),
        (
            b"POST /api/recommendations HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            "400",
            "malformed_request",
        ),
        (huge.as_bytes(), "431", "headers_too_large"),
    ] {
        let response = ask(raw);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{}",
            &response[..response.len().min(300)]
        );
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // The server still answers afterwards.
    let response = ask(b"GET /api/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn a_run_store_that_is_not_a_file_lists_no_runs_and_says_why() {
    let engine = Arc::new(Engine::open(trained_model()).expect("model"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runs.jsonl")).unwrap();
    let app = movierec::server::router(engine, dir.path().to_path_buf());
    let response = app
        .oneshot(Request::get("/api/runs").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["runs"], json!([]));
    let why = body["skipped"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(why.contains("not a regular file"), "{why}");
}

#[tokio::test]
async fn health_states_the_datas_latest_year() {
    let (status, body) = get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    // ml-latest-small's newest films are from 2018.
    assert_eq!(body["latestYear"], 2018, "{body}");
}
