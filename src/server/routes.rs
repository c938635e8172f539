//! Route table and handlers.

use super::error::ApiError;
use crate::catalog::{MovieFilter, MovieQuery, MovieView};
use crate::engine::{
    Engine, PersonalTarget, SimilarRequest, DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODEL,
    DEFAULT_PLOT_MODEL, MAX_K, MIN_K,
};
use crate::index::IndexKind;
use crate::models::{ModelKind, ModelShape};
use crate::tracking::{RunFilter, RunKind, RunStore};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

type AppState = State<Arc<Engine>>;
type ApiResult = Result<Json<Value>, ApiError>;

/// Largest `limit` of a title search.
pub const MAX_SEARCH_LIMIT: usize = 50;

pub(super) fn routes() -> Router<super::ServerState> {
    Router::new()
        .route("/", get(index_html))
        .route("/assets/app.js", get(app_js))
        .route("/assets/app.css", get(app_css))
        .route("/assets/vendor/uPlot.iife.min.js", get(uplot_js))
        .route("/assets/vendor/uPlot.min.css", get(uplot_css))
        .route("/api/health", get(health))
        .route("/api/movies/search", get(search_movies))
        .route("/api/movies/titles", get(movie_titles))
        .route("/api/projection", get(projection))
        .route("/api/recommendations", post(recommendations))
        .route("/api/recommendations/for-likes", post(for_likes))
        .route("/api/users/{id}/recommendations", get(for_user))
        .route("/api/runs", get(runs))
        .route("/api/admin/reload", post(super::reload::handler))
        .route("/metrics", get(super::metrics::handler))
        .route("/recommendation", post(seed_recommendation))
        .fallback(not_found)
}

/// The page loads only its own compiled-in assets and talks only to this server; the policy makes
/// the browser refuse anything else, should a title ever slip past the page's escaping.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

async fn index_html() -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(include_str!("../../web/index.html")),
    )
        .into_response()
}

async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../web/app.css"))
}

// uPlot (the Runs tab's chart), vendored from npm by web/vendor/update.sh at the version
// web/package-lock.json pins; tests/web_vendor.rs checks these files against its manifest.
async fn uplot_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/vendor/uPlot.iife.min.js"),
    )
}

async fn uplot_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../web/vendor/uPlot.min.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct RunsParams {
    kind: Option<String>,
    limit: Option<usize>,
}

/// The recorded runs, newest first (as `movierec runs --json`), and the unreadable lines skipped.
async fn runs(
    State(dir): State<Arc<std::path::PathBuf>>,
    params: Result<Query<RunsParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    let kind = params
        .kind
        .map(|k| k.parse::<RunKind>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("kind: {e}")).with_field("kind"))?;
    if params.limit == Some(0) {
        return Err(ApiError::bad_request("limit must be at least 1, got 0").with_field("limit"));
    }
    let filter = RunFilter {
        kind,
        limit: params.limit,
    };
    // The store is a small file; reading it off the async threads keeps them free.
    let listing = tokio::task::spawn_blocking(move || -> crate::Result<_> {
        if !dir.exists() {
            return Ok(None);
        }
        Ok(Some(RunStore::open(&dir)?.list(&filter)?))
    })
    .await
    .map_err(|e| ApiError::internal(format!("reading the run store failed: {e}")))??;
    Ok(Json(match listing {
        Some(listing) => json!({
            "runs": listing.runs,
            "skipped": listing.skipped.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        None => json!({"runs": [], "skipped": []}),
    }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn health(State(engine): AppState) -> Json<Value> {
    let manifest = engine.manifest();
    Json(json!({
        "status": "ok",
        "movies": engine.catalog().len(),
        "models": ModelKind::NAMES,
        "modelShapes": ModelKind::NAMES.iter().map(|name| {
            let kind = ModelKind::parse(name).expect("every listed name parses");
            let resolved = engine.resolve_model(kind);
            let shape = match resolved.shape() {
                ModelShape::Embeddings => "embeddings",
                ModelShape::NeighbourLists => "neighbour_lists",
            };
            (name.to_string(), json!({"model": resolved, "shape": shape}))
        }).collect::<serde_json::Map<_, _>>(),
        "indexes": IndexKind::ALL,
        "genres": engine.catalog().genre_names(),
        "defaults": {"model": DEFAULT_MODEL, "index": DEFAULT_INDEX, "k": DEFAULT_K, "plotModel": DEFAULT_PLOT_MODEL},
        "trainedAt": manifest.created_at,
        "dataset": manifest.dataset.fingerprint,
    }))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
}

async fn search_movies(
    State(engine): AppState,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    let q = params.q.unwrap_or_default();
    let limit = params.limit.unwrap_or(10);
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}"
        ))
        .with_field("limit"));
    }
    let catalog = engine.catalog();
    let results: Vec<MovieView> = catalog
        .search(&q, limit)
        .into_iter()
        .map(|item| catalog.movie(item).view())
        .collect();
    Ok(Json(json!({"query": q, "results": results})))
}

async fn movie_titles(State(engine): AppState) -> Json<Value> {
    let movies = engine.catalog().movies();
    Json(json!({
        "movieIds": movies.iter().map(|m| m.movie_id).collect::<Vec<_>>(),
        "titles": movies.iter().map(|m| m.title.as_str()).collect::<Vec<_>>(),
        "years": movies.iter().map(|m| m.year).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
struct ProjectionParams {
    model: Option<String>,
}

async fn projection(
    State(engine): AppState,
    params: Result<Query<ProjectionParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    let model = match params.model {
        Some(name) => ModelKind::parse(&name)?,
        None => DEFAULT_PLOT_MODEL,
    };
    let (model, points) = engine.projection(model)?;
    // Three decimals are plenty for a plot and keep the payload small.
    let round = |v: f32| (v * 1000.0).round() / 1000.0;
    Ok(Json(json!({
        "model": model,
        "movieIds": engine.catalog().movies().iter().map(|m| m.movie_id).collect::<Vec<_>>(),
        "x": points.chunks(2).map(|p| round(p[0])).collect::<Vec<_>>(),
        "y": points.chunks(2).map(|p| round(p[1])).collect::<Vec<_>>(),
    })))
}

/// A movie named by title (matched fuzzily) or by MovieLens id.
#[derive(Deserialize)]
#[serde(untagged)]
enum MovieField {
    Id(u64),
    Title(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendationBody {
    movie: MovieField,
    k: Option<i64>,
    model: Option<String>,
    index: Option<String>,
    #[serde(default)]
    filter: MovieFilter,
}

/// Reads a JSON body into `T`, with messages that name the field at fault.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Json<Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(value) = body?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::bad_request(format!("invalid request body: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("{path}: {}", e.inner())).with_field(path.clone())
        }
    })
}

fn movie_query(field: MovieField) -> Result<MovieQuery, ApiError> {
    match field {
        MovieField::Id(id) => u32::try_from(id).map(MovieQuery::Id).map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "movie_not_found",
                format!("no movie has movieId {id}"),
            )
            .with_field("movie")
        }),
        MovieField::Title(title) if title.trim().is_empty() => {
            Err(ApiError::bad_request("movie: the movie title is empty").with_field("movie"))
        }
        MovieField::Title(title) => Ok(MovieQuery::Title(title)),
    }
}

fn k_value(k: Option<i64>) -> Result<usize, ApiError> {
    let k = k.unwrap_or(DEFAULT_K as i64);
    match usize::try_from(k) {
        Ok(k) => Ok(Engine::check_k(k)?),
        Err(_) => Err(ApiError::bad_request(format!(
            "k must be between {MIN_K} and {MAX_K}, got {k}"
        ))
        .with_field("k")),
    }
}

async fn recommendations(
    State(engine): AppState,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let body: RecommendationBody = parse_body(body)?;
    let request = SimilarRequest {
        movie: movie_query(body.movie)?,
        k: k_value(body.k)?,
        model: body
            .model
            .as_deref()
            .map(ModelKind::parse)
            .transpose()?
            .unwrap_or(DEFAULT_MODEL),
        index: body
            .index
            .as_deref()
            .map(IndexKind::parse)
            .transpose()?
            .unwrap_or(DEFAULT_INDEX),
        filter: body.filter,
    };
    let answer = engine.similar(&request).map_err(|e| match e {
        crate::Error::MovieNotFound { .. } => ApiError::from(e).with_field("movie"),
        other => other.into(),
    })?;
    Ok(Json(serde_json::to_value(answer).expect("serialisable")))
}

/// `?k=…` and the filter, in query-string form: lists are comma-separated
/// (`genres=Comedy,Drama`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalParams {
    k: Option<i64>,
    genres: Option<String>,
    exclude_genres: Option<String>,
    year_min: Option<u16>,
    year_max: Option<u16>,
    min_ratings: Option<u32>,
    exclude: Option<String>,
}

impl PersonalParams {
    fn filter(&self) -> Result<MovieFilter, ApiError> {
        let list = |v: &Option<String>| -> Vec<String> {
            v.iter()
                .flat_map(|s| s.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let exclude = list(&self.exclude)
            .iter()
            .map(|id| {
                id.parse().map_err(|_| {
                    ApiError::bad_request(format!("exclude: {id:?} is not a movieId"))
                        .with_field("exclude")
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(MovieFilter {
            genres: list(&self.genres),
            exclude_genres: list(&self.exclude_genres),
            year_min: self.year_min,
            year_max: self.year_max,
            min_ratings: self.min_ratings.unwrap_or(0),
            exclude,
        })
    }
}

async fn for_user(
    State(engine): AppState,
    Path(id): Path<String>,
    params: Result<Query<PersonalParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params?;
    let user: u32 = id.parse().map_err(|_| {
        ApiError::bad_request(format!("user id {id:?} is not a number")).with_field("id")
    })?;
    let answer = engine.personal(
        &PersonalTarget::User(user),
        k_value(params.k)?,
        &params.filter()?,
    )?;
    Ok(Json(serde_json::to_value(answer).expect("serialisable")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LikesBody {
    likes: Vec<MovieField>,
    #[serde(default)]
    dislikes: Vec<MovieField>,
    k: Option<i64>,
    #[serde(default)]
    filter: MovieFilter,
}

async fn for_likes(State(engine): AppState, body: Result<Json<Value>, JsonRejection>) -> ApiResult {
    let body: LikesBody = parse_body(body)?;
    let queries = |fields: Vec<MovieField>| -> Result<Vec<MovieQuery>, ApiError> {
        fields.into_iter().map(movie_query).collect()
    };
    let target = PersonalTarget::Likes {
        likes: queries(body.likes)?,
        dislikes: queries(body.dislikes)?,
    };
    let answer = engine.personal(&target, k_value(body.k)?, &body.filter)?;
    Ok(Json(serde_json::to_value(answer).expect("serialisable")))
}

/// The seed demo's request body, kept so its clients keep working.
#[derive(Deserialize)]
struct SeedBody {
    model: String,
    n_recommendations: i64,
    movie_title: String,
}

async fn seed_recommendation(
    State(engine): AppState,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let body: SeedBody = parse_body(body)?;
    // The seed's two choices map onto a model and an index each.
    let (model, index) = match body.model.to_ascii_uppercase().as_str() {
        "FAISS" => (ModelKind::Content, IndexKind::Exact),
        "ANNOY" => (ModelKind::Svd, IndexKind::Annoy),
        _ => {
            return Err(ApiError::bad_request(format!(
                "model: unknown model {:?}; expected FAISS or ANNOY",
                body.model
            ))
            .with_field("model"))
        }
    };
    if body.movie_title.trim().is_empty() {
        return Err(
            ApiError::bad_request("movie_title: the movie title is empty")
                .with_field("movie_title"),
        );
    }
    let request = SimilarRequest {
        movie: MovieQuery::Title(body.movie_title),
        k: k_value(Some(body.n_recommendations))?,
        model,
        index,
        filter: MovieFilter::default(),
    };
    let answer = engine.similar(&request)?;
    let mut value = serde_json::to_value(&answer).expect("serialisable");
    value["movie_title"] = json!(answer.query.title);
    value["recommendations"] = answer
        .results
        .iter()
        .map(|r| {
            json!({
                "title": r.movie.title,
                "year": r.movie.year,
                "url": r.movie.imdb_url.as_ref().unwrap_or(&r.movie.movielens_url),
            })
        })
        .collect();
    Ok(Json(value))
}
