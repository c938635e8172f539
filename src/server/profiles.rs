//! Profiles and their ratings (`/api/users…`): create a profile, rate, unrate, list ratings.
//! Every write is committed to the database before it is answered, and the profile's next
//! recommendation request scores its ratings as they are then ([`super::handlers::for_user`]).

use super::auth::{authorise, Access, Caller};
use super::error::{ApiError, BodyErrors, ErrorBody, ServerErrors};
use super::extract::parse_body;
use super::rate::RateLimited;
use super::ServerState;
use crate::database::{check_rating, Database, StoredRating};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// `201` to `POST /api/users`: the new profile's id and its secret token, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewProfile {
    /// The profile's user id (above every id of the release).
    pub user_id: u32,
    /// The profile's secret token: send it as `Authorization: Bearer <token>`. Only its hash is
    /// stored; it cannot be shown again.
    #[schema(min_length = 64, max_length = 64)]
    pub token: String,
}

/// `PUT /api/users/{userId}/ratings/{movieId}`: the rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// Stars: 0.5 to 5 in half stars.
    #[schema(minimum = 0.5, maximum = 5.0, multiple_of = 0.5, example = 4.5)]
    pub rating: f64,
}

/// A profile's ratings, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RatingList {
    /// The ratings, newest first (at most `limit`).
    pub ratings: Vec<StoredRatingView>,
    /// How many ratings the profile has in all.
    pub total: usize,
}

/// One rating as the API answers it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredRatingView {
    /// The profile.
    pub user_id: u32,
    /// The movie.
    pub movie_id: u32,
    /// Stars, 0.5–5 in halves.
    pub rating: f32,
    /// When it was given (seconds since the Unix epoch).
    pub timestamp: i64,
}

impl From<StoredRating> for StoredRatingView {
    fn from(r: StoredRating) -> Self {
        StoredRatingView {
            user_id: r.user_id,
            movie_id: r.movie_id,
            rating: r.rating,
            timestamp: r.timestamp,
        }
    }
}

/// `GET /api/users/{userId}/ratings` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RatingsParams {
    /// How many of the newest ratings to list (1–10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// Most ratings one listing answers.
pub const MAX_RATINGS_LISTED: usize = 10_000;

/// The database, or `404` when the server runs without one.
pub(super) fn database(state: &ServerState) -> Result<&Database, ApiError> {
    state.database.as_ref().ok_or_else(|| {
        ApiError::not_found("this server runs without a database: profiles and ratings are off")
    })
}

/// A path segment that must be an id.
pub(super) fn path_id(text: &str, field: &'static str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{field}: {} is not a positive integer id",
            crate::data::text::show(text.as_bytes())
        ))
        .with_field(field)
    })
}

/// Takes one write of `caller`'s allowance.
pub(super) fn limit_writes(state: &ServerState, caller: Caller) -> Result<(), ApiError> {
    state
        .limits
        .writes
        .take(caller)
        .map_err(|wait| RateLimited(wait).into())
}

/// Creates a profile: an id above every user of the data, and a secret token shown once.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "profiles",
    responses(
        (status = 201, description = "The new profile and its token (keep it: it is not shown again)", body = NewProfile),
        (status = 404, description = "The server runs without a database (`not_found`)", body = ErrorBody),
        (status = 429, description = "Too many new profiles in a short time; retry after `Retry-After` seconds (`rate_limited`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn create_user(
    State(state): State<ServerState>,
) -> Result<(StatusCode, Json<NewProfile>), ApiError> {
    let db = database(&state)?;
    state
        .limits
        .profiles
        .take(())
        .map_err(|wait| ApiError::from(RateLimited(wait)))?;
    let (user_id, token) = db.create_user(crate::clock::unix_seconds()).await?;
    Ok((StatusCode::CREATED, Json(NewProfile { user_id, token })))
}

/// A profile's ratings, newest first.
#[utoipa::path(
    get,
    path = "/api/users/{userId}/ratings",
    tag = "profiles",
    params(("userId" = u32, Path, description = "The profile"), RatingsParams),
    security((), ("profile_token" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The ratings, newest first", body = RatingList),
        (status = 400, description = "An id that is not a number, a `limit` outside 1–10000 (`invalid_argument`)", body = ErrorBody),
        (status = 401, description = "A profile asked for without a token, or with one that belongs to nobody (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "Another profile's token (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user (`user_not_found`), or no database (`not_found`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn ratings(
    State(state): State<ServerState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<RatingsParams>, QueryRejection>,
) -> Result<Json<RatingList>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()).with_field("userId"))?;
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(1000);
    if !(1..=MAX_RATINGS_LISTED).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_RATINGS_LISTED}, got {limit}"
        ))
        .with_field("limit"));
    }
    let db = database(&state)?;
    let user_id = path_id(&id, "userId")?;
    authorise(&state, db, &headers, user_id, Access::Read).await?;
    let all = db.ratings_of(user_id).await?;
    Ok(Json(RatingList {
        total: all.len(),
        ratings: all.into_iter().take(limit).map(Into::into).collect(),
    }))
}

/// Rates a movie (or changes the rating): committed before the answer, counted by the next
/// recommendation request.
#[utoipa::path(
    put,
    path = "/api/users/{userId}/ratings/{movieId}",
    tag = "profiles",
    params(
        ("userId" = u32, Path, description = "The profile"),
        ("movieId" = u32, Path, description = "The movie rated"),
    ),
    request_body(content = RatingBody, content_type = "application/json"),
    security(("profile_token" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The rating as stored", body = StoredRatingView),
        (status = 400, description = "A rating outside 0.5–5 or between half stars, an id that is not a number, an unknown field (`invalid_argument`); a body that is not a JSON object (`malformed_body`)", body = ErrorBody),
        (status = 401, description = "No token, or one that belongs to nobody (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "Another profile's token, or a user of the release without the admin token (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user (`user_not_found`) or movie (`movie_not_found`), or no database (`not_found`)", body = ErrorBody),
        (status = 429, description = "Too many writes with this token; retry after `Retry-After` seconds (`rate_limited`)", body = ErrorBody),
        BodyErrors,
        ServerErrors,
    )
)]
pub(super) async fn put_rating(
    State(state): State<ServerState>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<StoredRatingView>, ApiError> {
    let Path((user, movie)) =
        ids.map_err(|e| ApiError::bad_request(e.body_text()).with_field("userId"))?;
    let db = database(&state)?;
    let (user_id, movie_id) = (path_id(&user, "userId")?, path_id(&movie, "movieId")?);
    let caller = authorise(&state, db, &headers, user_id, Access::Write).await?;
    let body: RatingBody = parse_body(body)?;
    let rating = check_rating(body.rating)?;
    limit_writes(&state, caller)?;
    let stored = db
        .put_rating(StoredRating {
            user_id,
            movie_id,
            rating,
            timestamp: crate::clock::unix_seconds(),
        })
        .await
        .map_err(|e| match e {
            crate::Error::MovieNotFound { .. } => ApiError::from(e).with_field("movieId"),
            other => other.into(),
        })?;
    super::retrain::note_writes(&state, 1);
    Ok(Json(stored.into()))
}

/// Removes a rating (an undo); answered `204` whether or not there was one.
#[utoipa::path(
    delete,
    path = "/api/users/{userId}/ratings/{movieId}",
    tag = "profiles",
    params(
        ("userId" = u32, Path, description = "The profile"),
        ("movieId" = u32, Path, description = "The movie"),
    ),
    security(("profile_token" = []), ("admin_token" = [])),
    responses(
        (status = 204, description = "The profile has no rating of the movie now"),
        (status = 400, description = "An id that is not a number (`invalid_argument`)", body = ErrorBody),
        (status = 401, description = "No token, or one that belongs to nobody (`unauthorized`)", body = ErrorBody),
        (status = 403, description = "Another profile's token, or a user of the release without the admin token (`forbidden`)", body = ErrorBody),
        (status = 404, description = "No such user (`user_not_found`), or no database (`not_found`)", body = ErrorBody),
        (status = 429, description = "Too many writes with this token; retry after `Retry-After` seconds (`rate_limited`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn delete_rating(
    State(state): State<ServerState>,
    headers: HeaderMap,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((user, movie)) =
        ids.map_err(|e| ApiError::bad_request(e.body_text()).with_field("userId"))?;
    let db = database(&state)?;
    let (user_id, movie_id) = (path_id(&user, "userId")?, path_id(&movie, "movieId")?);
    let caller = authorise(&state, db, &headers, user_id, Access::Write).await?;
    limit_writes(&state, caller)?;
    if db.delete_rating(user_id, movie_id).await? {
        super::retrain::note_writes(&state, 1);
    }
    Ok(StatusCode::NO_CONTENT)
}
