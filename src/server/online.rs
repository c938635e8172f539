//! `GET /api/admin/online-metrics`: the online evaluation ([`crate::database::online`]).

use super::auth::require_admin;
use super::error::{ApiError, ErrorBody, ServerErrors};
use super::profiles::database;
use super::ServerState;
use crate::database::online::{OnlineDay, LIKED_RATING, MAX_DAYS, WINDOW_DAYS};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /api/admin/online-metrics` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OnlineParams {
    /// Days of impressions to report, counted back from now (1–366, default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

/// The online evaluation: per model and day, what was recommended and what came of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineMetrics {
    /// Days after an impression in which a rating counts for it (7).
    pub window_days: i64,
    /// The rating that counts as a hit (4).
    pub liked_rating: f64,
    /// Newest day first.
    pub days: Vec<OnlineDay>,
}

/// Per model and day: movies recommended to people (impressions of
/// `GET /api/users/{userId}/recommendations`), and how many of them the person rated, and rated
/// 4 stars or more, within 7 days after.
#[utoipa::path(
    get,
    path = "/api/admin/online-metrics",
    tag = "admin",
    params(OnlineParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The metrics, newest day first", body = OnlineMetrics),
        (status = 400, description = "`days` outside 1–366 (`invalid_argument`)", body = ErrorBody),
        (status = 401, description = "No or a wrong admin token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "The admin routes are off, or no database (`not_found`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub(super) async fn metrics(
    State(state): State<ServerState>,
    headers: HeaderMap,
    params: Result<Query<OnlineParams>, QueryRejection>,
) -> Result<Json<OnlineMetrics>, ApiError> {
    require_admin(&state, &headers)?;
    let Query(params) = params?;
    let days = params.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "days must be between 1 and {MAX_DAYS}, got {days}"
        ))
        .with_field("days"));
    }
    let db = database(&state)?.clone();
    let now = crate::clock::unix_seconds();
    let rows = db.online_metrics(days, now).await?;
    Ok(Json(OnlineMetrics {
        window_days: WINDOW_DAYS,
        liked_rating: LIKED_RATING,
        days: rows,
    }))
}
