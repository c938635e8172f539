//! The admin API's writes (`MOVIEREC_ADMIN_TOKEN`): ratings in bulk for any user, and movies a
//! site adds to its catalog or corrects. What is written here is served after the next
//! training (the served model's catalog is fixed); the database keeps it from now on.

use super::auth::{require_admin, Caller};
use super::error::{ApiError, BodyErrors, ErrorBody, ServerErrors};
use super::extract::parse_body;
use super::profiles::{database, limit_writes, path_id};
use super::ServerState;
use crate::database::bulk::{self, Format};
use crate::database::MovieRecord;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Largest body of `POST /api/admin/ratings` (about 500,000 ratings as CSV).
pub const BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What a bulk write stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkWritten {
    /// Ratings stored (added or replaced).
    pub ratings: usize,
    /// Users that did not exist and were created (without a token, like the release's).
    pub users_created: usize,
}

/// A movie of the catalog, as the admin API writes and answers it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MovieBody {
    /// The movie's id (positive; new movies take ids above the release's, e.g. from 1,000,000).
    #[schema(minimum = 1)]
    pub movie_id: u32,
    /// The title, without the year.
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    /// The release year.
    #[schema(minimum = 1870, maximum = 2200)]
    pub year: Option<i32>,
    /// Genres (at most 20).
    #[serde(default)]
    pub genres: Vec<String>,
    /// IMDb numeric id (the digits of `tt0114709`).
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
}

/// `PATCH /api/admin/movies/{movieId}`: the fields to change; the others stay.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoviePatch {
    /// The title, without the year.
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    /// The release year.
    #[schema(minimum = 1870, maximum = 2200)]
    pub year: Option<i32>,
    /// Genres (replacing the old ones).
    pub genres: Option<Vec<String>>,
    /// IMDb numeric id.
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
}

impl From<MovieRecord> for MovieBody {
    fn from(m: MovieRecord) -> Self {
        MovieBody {
            movie_id: m.movie_id,
            title: m.title,
            year: m.year,
            genres: m.genres,
            imdb_id: m.imdb_id,
            tmdb_id: m.tmdb_id,
        }
    }
}

impl From<MovieBody> for MovieRecord {
    fn from(m: MovieBody) -> Self {
        MovieRecord {
            movie_id: m.movie_id,
            title: m.title.trim().to_string(),
            year: m.year,
            genres: m.genres,
            imdb_id: m.imdb_id,
            tmdb_id: m.tmdb_id,
        }
    }
}

fn bad_row(e: crate::Error) -> ApiError {
    match e {
        crate::Error::Data { .. } => ApiError::bad_request(e.to_string()).with_field("body"),
        crate::Error::InvalidArgument { field, .. } => {
            ApiError::bad_request(e.to_string()).with_field(field)
        }
        other => other.into(),
    }
}

/// Stores ratings of any users in one transaction (all or nothing): CSV with the header
/// `userId,movieId,rating[,timestamp]`, or JSON Lines with the same names.
#[utoipa::path(
    post,
    path = "/api/admin/ratings",
    tag = "admin",
    // JSON Lines bodies (`application/x-ndjson`) are read too; the document names only CSV, the
    // media type OpenAPI tools can generate.
    request_body(
        content = String,
        content_type = "text/csv",
        description = "Up to 16 MiB: CSV with the header `userId,movieId,rating[,timestamp]` (`Content-Type: text/csv`), or the same as JSON Lines (`Content-Type: application/x-ndjson` or `application/jsonl`)"
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every rating was stored", body = BulkWritten),
        (status = 400, description = "A bad row, named `body:LINE` (`invalid_argument`, field `body`)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "A movie not in the catalog (`movie_not_found`); the admin routes are off without `MOVIEREC_ADMIN_TOKEN`, or no database (`not_found`)", body = ErrorBody),
        (status = 413, description = "A body over 16 MiB (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "A content type other than CSV or JSON Lines (`unsupported_media_type`)", body = ErrorBody),
        (status = 429, description = "Too many writes with the admin token; retry after `Retry-After` seconds (`rate_limited`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn ratings(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BulkWritten>, ApiError> {
    require_admin(&state, &headers)?;
    let db = database(&state)?.clone();
    let format =
        match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .as_deref()
        {
            Some("text/csv") => Format::Csv,
            Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
                Format::JsonLines
            }
            _ => return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send ratings as `Content-Type: text/csv` or `application/x-ndjson` (JSON Lines)",
            )),
        };
    let body = body.map_err(ApiError::unreadable_body)?;
    limit_writes(&state, Caller::Admin)?;
    let now = crate::clock::unix_seconds();
    let ratings =
        tokio::task::spawn_blocking(move || bulk::parse_ratings("body", &body, format, now))
            .await
            .map_err(|e| ApiError::internal(format!("a bulk write failed: {e}")))?
            .map_err(bad_row)?;
    let count = ratings.len();
    let users_created = db
        .import_rows(Vec::new(), ratings, now)
        .await
        .map_err(bad_row)?
        .users_created;
    let written = BulkWritten {
        ratings: count,
        users_created,
    };
    super::retrain::note_writes(&state, written.ratings as u64);
    Ok(Json(written))
}

/// Adds a movie to the catalog (served after the next training).
#[utoipa::path(
    post,
    path = "/api/admin/movies",
    tag = "admin",
    request_body(content = MovieBody, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The movie as stored", body = MovieBody),
        (status = 400, description = "A bad field: an empty title, a year outside 1870–2200, more than 20 genres (`invalid_argument`); a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "The admin routes are off without `MOVIEREC_ADMIN_TOKEN`, or no database (`not_found`)", body = ErrorBody),
        (status = 409, description = "A movie with this id exists: change it with PATCH (`movie_exists`)", body = ErrorBody),
        (status = 429, description = "Too many writes with the admin token (`rate_limited`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn add_movie(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<MovieBody>), ApiError> {
    require_admin(&state, &headers)?;
    let db = database(&state)?;
    let body: MovieBody = parse_body(body)?;
    let movie = MovieRecord::from(body);
    bulk::check_movie(&movie)?;
    limit_writes(&state, Caller::Admin)?;
    let stored = movie.clone();
    let added = db.add_movie(movie, crate::clock::unix_seconds()).await?;
    if !added {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "movie_exists",
            format!(
                "movieId {} is taken; change that movie with PATCH /api/admin/movies/{}",
                stored.movie_id, stored.movie_id
            ),
        )
        .with_field("movieId"));
    }
    super::retrain::note_writes(&state, 1);
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Changes a movie's title, year, genres or links.
#[utoipa::path(
    patch,
    path = "/api/admin/movies/{movieId}",
    tag = "admin",
    params(("movieId" = u32, Path, description = "The movie")),
    request_body(content = MoviePatch, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The movie as stored now", body = MovieBody),
        (status = 400, description = "A bad field or id (`invalid_argument`); a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "No such movie (`movie_not_found`); the admin routes are off, or no database (`not_found`)", body = ErrorBody),
        (status = 429, description = "Too many writes with the admin token (`rate_limited`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn patch_movie(
    State(state): State<ServerState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<MovieBody>, ApiError> {
    require_admin(&state, &headers)?;
    let db = database(&state)?;
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()).with_field("movieId"))?;
    let movie_id = path_id(&id, "movieId")?;
    let patch: MoviePatch = parse_body(body)?;
    limit_writes(&state, Caller::Admin)?;
    let changed = db
        .change_movie(
            movie_id,
            Box::new(move |mut movie: MovieRecord| {
                if let Some(title) = patch.title {
                    movie.title = title.trim().to_string();
                }
                if patch.year.is_some() {
                    movie.year = patch.year;
                }
                if let Some(genres) = patch.genres {
                    movie.genres = genres;
                }
                if patch.imdb_id.is_some() {
                    movie.imdb_id = patch.imdb_id;
                }
                if patch.tmdb_id.is_some() {
                    movie.tmdb_id = patch.tmdb_id;
                }
                bulk::check_movie(&movie)?;
                Ok(movie)
            }),
        )
        .await
        .map_err(|e| match e {
            crate::Error::MovieNotFound { .. } => ApiError::from(e).with_field("movieId"),
            other => other.into(),
        })?;
    super::retrain::note_writes(&state, 1);
    Ok(Json(changed.into()))
}
