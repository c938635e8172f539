//! The JSON API's handlers: thin functions over extractors, each documented for the OpenAPI
//! document with `#[utoipa::path]` next to it.

use super::auth::{authorise, Access};
use super::bodies::{
    Defaults, Health, LikesBody, ModelShapeView, MovieField, MovieSearch, MovieTitles,
    PersonalParams, Projection, ProjectionParams, RecommendationBody, RunListing, RunsParams,
    SearchParams, SeedBody, SeedMovie, SeedRecommendations, ShapeName,
};
use super::error::{ApiError, BodyErrors, ErrorBody, ServerErrors};
use super::extract::{k_value, movie_query, parse_body, JsonAnswer};
use super::ServerState;
use crate::catalog::{MovieFilter, MovieQuery, MovieView};
use crate::engine::{
    Engine, PersonalRecommendations, PersonalTarget, Recommendations, SimilarRequest,
    DEFAULT_INDEX, DEFAULT_K, DEFAULT_MODEL, DEFAULT_PLOT_MODEL, MAX_K, MAX_QUERY_MOVIES, MIN_K,
};
use crate::index::IndexKind;
use crate::models::{ModelKind, ModelShape};
use crate::tracking::{RunFilter, RunKind, RunStore};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

type AppState = State<Arc<Engine>>;

/// Largest `limit` of a title search.
pub const MAX_SEARCH_LIMIT: usize = 50;

/// The recorded runs, newest first (as `movierec runs --json`), and the unreadable lines skipped.
#[utoipa::path(
    get,
    path = "/api/runs",
    tag = "runs",
    params(RunsParams),
    responses(
        (status = 200, description = "The runs of the store the server was started with (`serve --runs-dir`, `$MOVIEREC_RUNS_DIR`, else `./runs`), merged with those of a PostgreSQL database the server shares with others; a store that cannot be read (its file a directory or a FIFO) lists none and says why in `skipped`", body = RunListing),
        (status = 400, description = "An unknown `kind` or a `limit` that is not a positive integer (`invalid_argument`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn runs(
    State(state): State<super::ServerState>,
    params: Result<Query<RunsParams>, QueryRejection>,
) -> Result<Json<RunListing>, ApiError> {
    let dir = state.runs_dir.clone();
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
    // A store that is not a directory holding a regular file (a file, a FIFO) lists no runs
    // and says why in `skipped`: the request is fine, the server's store is not.
    let listing = tokio::task::spawn_blocking(move || -> crate::Result<RunListing> {
        if !dir.exists() {
            return Ok(RunListing {
                runs: Vec::new(),
                skipped: Vec::new(),
            });
        }
        let store = match RunStore::open(&dir) {
            Ok(store) => store,
            Err(e) => {
                return Ok(RunListing {
                    runs: Vec::new(),
                    skipped: vec![e.to_string()],
                })
            }
        };
        let listing = store.list(&filter)?;
        Ok(RunListing {
            runs: listing.runs,
            skipped: listing.skipped.iter().map(ToString::to_string).collect(),
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("reading the run store failed: {e}")))??;
    // Servers sharing a database also list the runs recorded there: every server's trainings.
    let Some(db) = state.database.as_ref().filter(|db| db.is_shared()) else {
        return Ok(Json(listing));
    };
    let limit = params.limit.unwrap_or(usize::MAX);
    let mut listing = listing;
    let known: std::collections::HashSet<String> =
        listing.runs.iter().map(|r| r.id.clone()).collect();
    for record in db.runs(kind.map(RunKind::as_str), limit).await? {
        match serde_json::from_str::<crate::tracking::RunRecord>(&record) {
            Ok(run) if known.contains(&run.id) => {}
            Ok(run) => listing.runs.push(run),
            Err(e) => listing.skipped.push(format!(
                "{}: a stored run that is not a run record: {e}",
                db.location().display()
            )),
        }
    }
    // Newest first, as the run store lists them (ids begin with the start time).
    listing.runs.sort_by(|a, b| {
        (b.started_at.as_str(), b.id.as_str()).cmp(&(a.started_at.as_str(), a.id.as_str()))
    });
    listing.runs.truncate(limit);
    Ok(Json(listing))
}

/// The served model and the choices it offers (models, indexes, genres, defaults).
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "catalog",
    responses(
        (status = 200, description = "The server is up", body = Health),
        ServerErrors,
    )
)]
pub(super) async fn health(State(engine): AppState) -> Json<Health> {
    let manifest = engine.manifest();
    let kinds = || {
        ModelKind::NAMES
            .iter()
            .map(|name| ModelKind::parse(name).expect("every listed name parses"))
    };
    Json(Health {
        status: "ok".into(),
        movies: engine.catalog().len(),
        models: kinds().collect(),
        model_shapes: ModelKind::NAMES
            .iter()
            .zip(kinds())
            .map(|(name, kind)| {
                let resolved = engine.resolve_model(kind);
                let shape = match resolved.shape() {
                    ModelShape::Embeddings => ShapeName::Embeddings,
                    ModelShape::NeighbourLists => ShapeName::NeighbourLists,
                };
                (
                    name.to_string(),
                    ModelShapeView {
                        model: resolved,
                        shape,
                    },
                )
            })
            .collect(),
        indexes: IndexKind::ALL.to_vec(),
        genres: engine
            .catalog()
            .genre_names()
            .iter()
            .map(|g| g.to_string())
            .collect(),
        defaults: Defaults {
            model: DEFAULT_MODEL,
            index: DEFAULT_INDEX,
            k: DEFAULT_K,
            plot_model: DEFAULT_PLOT_MODEL,
        },
        latest_year: engine
            .catalog()
            .movies()
            .iter()
            .filter_map(|m| m.year)
            .max(),
        trained_at: manifest.created_at.clone(),
        dataset: manifest.dataset.fingerprint.clone(),
    })
}

/// Fuzzy title search, for suggestions as one types.
#[utoipa::path(
    get,
    path = "/api/movies/search",
    tag = "catalog",
    params(SearchParams),
    responses(
        (status = 200, description = "The best matches first", body = MovieSearch),
        (status = 400, description = "`limit` outside 1–50 or not an integer (`invalid_argument`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn search_movies(
    State(engine): AppState,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<MovieSearch>, ApiError> {
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
    Ok(Json(MovieSearch { query: q, results }))
}

/// Every movie's id, title and year (the plot's hover labels).
#[utoipa::path(
    get,
    path = "/api/movies/titles",
    tag = "catalog",
    responses(
        (status = 200, description = "Three parallel lists, in catalog order", body = MovieTitles),
        ServerErrors,
    )
)]
pub(super) async fn movie_titles(State(engine): AppState) -> Json<MovieTitles> {
    let movies = engine.catalog().movies();
    Json(MovieTitles {
        movie_ids: movies.iter().map(|m| m.movie_id).collect(),
        titles: movies.iter().map(|m| m.title.clone()).collect(),
        years: movies.iter().map(|m| m.year).collect(),
    })
}

/// The 2-D map of an embedding model, one point per movie.
#[utoipa::path(
    get,
    path = "/api/projection",
    tag = "catalog",
    params(ProjectionParams),
    responses(
        (status = 200, description = "The map, parallel to the catalog", body = Projection),
        (status = 400, description = "An unknown model, or a neighbour-list model (no embedding to map) (`invalid_argument`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn projection(
    State(engine): AppState,
    params: Result<Query<ProjectionParams>, QueryRejection>,
) -> Result<Json<Projection>, ApiError> {
    let Query(params) = params?;
    let model = match params.model {
        Some(name) => ModelKind::parse(&name)?,
        None => DEFAULT_PLOT_MODEL,
    };
    let (model, points) = engine.projection(model)?;
    // Three decimals are plenty for a plot and keep the payload small.
    let round = |v: f32| (v * 1000.0).round() / 1000.0;
    Ok(Json(Projection {
        model,
        movie_ids: engine
            .catalog()
            .movies()
            .iter()
            .map(|m| m.movie_id)
            .collect(),
        x: points.chunks(2).map(|p| round(p[0])).collect(),
        y: points.chunks(2).map(|p| round(p[1])).collect(),
    }))
}

/// Movies like one movie, each with its score and why it was picked, and the index's recall.
#[utoipa::path(
    post,
    path = "/api/recommendations",
    tag = "recommendations",
    request_body(content = RecommendationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The query movie, the results (most similar first) and the other movies matching the title (the `recommend --json` shape)", body = Recommendations),
        (status = 400, description = "A bad argument: `k` outside 1–100, an unknown model, index or genre, the index `lists` with an embedding model, an empty title, an unknown field (`invalid_argument`); or a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 404, description = "No movie matches the title or id (`movie_not_found`, with `suggestions`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn recommendations(
    State(engine): AppState,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<JsonAnswer<Recommendations>, ApiError> {
    let body: RecommendationBody = parse_body(body)?;
    let (movie, also, field) = match (body.movie, body.movies) {
        (Some(movie), None) => (movie_query(movie)?, Vec::new(), "movie"),
        (None, Some(movies)) => {
            if movies.is_empty() || movies.len() > MAX_QUERY_MOVIES {
                return Err(ApiError::bad_request(format!(
                    "movies: name between 1 and {MAX_QUERY_MOVIES} movies, got {}",
                    movies.len()
                ))
                .with_field("movies"));
            }
            let mut queries = movies
                .into_iter()
                .map(|m| movie_query(m).map_err(|e| e.with_field("movies")))
                .collect::<Result<Vec<_>, _>>()?;
            (queries.remove(0), queries, "movies")
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "movie: give either movie (one movie) or movies (several), not both",
            )
            .with_field("movie"))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "movie: missing; give movie (a title or movieId) or movies (a list of them)",
            )
            .with_field("movie"))
        }
    };
    let request = SimilarRequest {
        movie,
        also,
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
        crate::Error::MovieNotFound { .. } => ApiError::from(e).with_field(field),
        other => other.into(),
    })?;
    Ok(JsonAnswer(answer))
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
            min_ratings: self.min_ratings,
            exclude,
        })
    }
}

/// Personalised recommendations for a user: a profile (with its token) or a user of the release,
/// from their ratings as they are now in the database (a rating given a moment ago counts); a
/// server without a database answers for the users of the training data. Rated movies are
/// excluded.
#[utoipa::path(
    get,
    path = "/api/users/{userId}/recommendations",
    tag = "recommendations",
    params(
        ("userId" = u32, Path, description = "A profile's id, or a MovieLens `userId`"),
        PersonalParams,
    ),
    security((), ("profile_token" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The user's recommendations, best first, each explained by the liked movie it is most like", body = PersonalRecommendations),
        (status = 400, description = "A user id that is not a number, `k` outside 1–100, an unknown genre or movieId, an empty year range, an unknown parameter (`invalid_argument`)", body = ErrorBody),
        (status = 401, description = "A profile asked for without its token, or with a token that belongs to nobody (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "Another profile's token (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user (`user_not_found`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn for_user(
    State(state): State<ServerState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<PersonalParams>, QueryRejection>,
) -> Result<JsonAnswer<PersonalRecommendations>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()).with_field("userId"))?;
    let Query(params) = params?;
    let user: u32 = id.parse().map_err(|_| {
        ApiError::bad_request(format!("user id {id:?} is not a number")).with_field("userId")
    })?;
    let (k, filter) = (k_value(params.k)?, params.filter()?);
    let engine = state.engine.load_full();
    let Some(db) = state.database.as_ref() else {
        let answer = engine.personal(&PersonalTarget::User(user), k, &filter)?;
        return Ok(JsonAnswer(answer));
    };
    authorise(&state, db, &headers, user, Access::Read).await?;
    let ratings = db.ratings_of(user).await?;
    // Oldest first, as the scorer counts positions.
    let history: Vec<(u32, f32)> = ratings
        .iter()
        .rev()
        .map(|r| (r.movie_id, r.rating))
        .collect();
    let answer = engine.personal_ratings(user, &history, k, &filter)?;
    // What was recommended to whom, for the online evaluation (not waited for).
    db.record_impressions(
        user,
        answer.model.as_str(),
        answer.results.iter().map(|r| r.movie.movie_id).collect(),
        crate::clock::unix_seconds(),
    );
    Ok(JsonAnswer(answer))
}

/// Recommendations for a list of liked (and disliked) movies.
#[utoipa::path(
    post,
    path = "/api/recommendations/for-likes",
    tag = "recommendations",
    request_body(content = LikesBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The recommendations, best first, with `liked` and `disliked` resolved", body = PersonalRecommendations),
        (status = 400, description = "No likes or more than 100 likes or dislikes, `k` outside 1–100, an unknown genre, an empty title, an unknown field (`invalid_argument`); or a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 404, description = "A liked or disliked movie matches nothing (`movie_not_found`, with `suggestions`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn for_likes(
    State(engine): AppState,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<JsonAnswer<PersonalRecommendations>, ApiError> {
    let body: LikesBody = parse_body(body)?;
    let queries = |fields: Vec<MovieField>| -> Result<Vec<MovieQuery>, ApiError> {
        fields.into_iter().map(movie_query).collect()
    };
    let target = PersonalTarget::Likes {
        likes: queries(body.likes)?,
        dislikes: queries(body.dislikes)?,
    };
    let answer = engine.personal(&target, k_value(body.k)?, &body.filter)?;
    Ok(JsonAnswer(answer))
}

/// The seed demo's endpoint, kept so its clients keep working: both choices answer "more like
/// this" (the default answer to "movies like X"); `FAISS` asks for the exact index and `ANNOY`
/// for the annoy one, and since "more like this" answers from lists computed exactly at
/// training time, both report `"index": "lists"`.
#[utoipa::path(
    post,
    path = "/recommendation",
    tag = "recommendations",
    request_body(content = SeedBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The `POST /api/recommendations` answer plus `movie_title` and `recommendations`", body = SeedRecommendations),
        (status = 400, description = "A model other than FAISS or ANNOY, `n_recommendations` outside 1–100, an empty title, a missing or unknown field (`invalid_argument`); or a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 404, description = "No movie matches the title (`movie_not_found`, with `suggestions`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn seed_recommendation(
    State(engine): AppState,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<SeedRecommendations>, ApiError> {
    let body: SeedBody = parse_body(body)?;
    // The seed's two choices map onto a model and an index each.
    let (model, index) = match body.model.to_ascii_uppercase().as_str() {
        "FAISS" => (DEFAULT_MODEL, IndexKind::Exact),
        "ANNOY" => (DEFAULT_MODEL, IndexKind::Annoy),
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
        also: Vec::new(),
        // The seed's own field is named in the error, not the `k` it stands for.
        k: k_value(Some(body.n_recommendations)).map_err(|_| {
            ApiError::bad_request(format!(
                "n_recommendations must be between {MIN_K} and {MAX_K}, got {}",
                body.n_recommendations
            ))
            .with_field("n_recommendations")
        })?,
        model,
        index,
        filter: MovieFilter::default(),
    };
    let answer = engine.similar(&request)?;
    let recommendations = answer
        .results
        .iter()
        .map(|r| SeedMovie {
            title: r.movie.title.to_string(),
            year: r.movie.year,
            url: r
                .movie
                .imdb_url
                .clone()
                .unwrap_or_else(|| r.movie.movielens_url.clone()),
        })
        .collect();
    Ok(Json(SeedRecommendations {
        movie_title: answer.query.title.to_string(),
        recommendations,
        answer,
    }))
}
