//! Zero-downtime model reload: `POST /api/admin/reload` (guarded by the admin token) and SIGHUP.
//!
//! The served engine sits behind an [`ArcSwap`]: each request takes its own `Arc` of the engine
//! current when it starts and answers from it to the end, so a swap never touches a request in
//! flight; the old engine is dropped when its last request finishes. A new model directory is
//! opened and fully verified (checksums included) off the async runtime before the swap; if that
//! fails, the old model keeps serving and the error is returned (and logged, for SIGHUP).

use super::bodies::{ReloadBody, Reloaded};
use super::error::{ApiError, ErrorBody, ServerErrors};
use super::ServerState;
use crate::engine::Engine;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use super::auth::ADMIN_TOKEN_ENV;

/// Opens `dir` (or the directory being served, when `None`), verifies it and swaps it in.
/// Reloads are serialised: a second one waits for the first.
pub async fn reload(state: &ServerState, dir: Option<PathBuf>) -> crate::Result<Reloaded> {
    let mut current = state.model_dir.lock().await;
    let dir = dir.unwrap_or_else(|| current.clone());
    let started = Instant::now();
    let opened = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Engine::open(&dir))
            .await
            .map_err(|e| crate::Error::invalid("model_dir", format!("reload panicked: {e}")))?
    };
    state.metrics.reloaded(opened.is_ok());
    let engine = opened?;
    let answer = Reloaded {
        status: "reloaded".into(),
        model_dir: dir.display().to_string(),
        trained_at: engine.manifest().created_at.clone(),
        movies: engine.catalog().len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    state.engine.store(Arc::new(engine));
    tracing::info!("reloaded the model from {}", dir.display());
    *current = dir;
    Ok(answer)
}

/// `POST /api/admin/reload`, body `{"model_dir": "…"}` (optional: the directory being served).
#[utoipa::path(
    post,
    path = "/api/admin/reload",
    operation_id = "reload",
    tag = "admin",
    request_body(
        content = Option<ReloadBody>,
        content_type = "application/json",
        description = "Optional: without a body (or `null`, or without `model_dir`) the directory being served is reopened"
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The new model is being served", body = Reloaded),
        (status = 400, description = "A body that is not JSON (`malformed_body`) or not `{\"model_dir\"?}` (`invalid_argument`)", body = ErrorBody),
        (status = 401, description = "No or a wrong `Authorization: Bearer` token (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Reloading is disabled: the server was started without `MOVIEREC_ADMIN_TOKEN` (`not_found`)", body = ErrorBody),
        (status = 413, description = "A body over 64 KiB (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "The directory failed to open or verify; the old model keeps serving (`reload_failed`)", body = ErrorBody),
        ServerErrors,
    )
)]
pub async fn handler(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Reloaded>, ApiError> {
    if state.admin_token.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("model reload is disabled: start the server with {ADMIN_TOKEN_ENV} set"),
        ));
    }
    if !super::auth::is_admin(&state, super::auth::request_token(&headers)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "reloading needs the header `Authorization: Bearer <admin token>`",
        ));
    }
    let body = body.map_err(ApiError::unreadable_body)?;
    let body: ReloadBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadBody::default()
    } else {
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("the body is not JSON: {e}"),
            )
        })?;
        if value.is_null() {
            ReloadBody::default()
        } else {
            super::extract::parse_body(Ok(Json(value)))?
        }
    };
    match reload(&state, body.model_dir).await {
        Ok(answer) => Ok(Json(answer)),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_failed",
            format!("the old model keeps serving: {e}"),
        )
        .with_field("model_dir")),
    }
}

/// Reloads the served directory on every SIGHUP, until the server stops.
#[cfg(unix)]
pub async fn on_sighup(state: ServerState) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /api/admin/reload");
        return;
    };
    while hangups.recv().await.is_some() {
        match reload(&state, None).await {
            Ok(answer) => eprintln!(
                "movierec: SIGHUP: {}",
                serde_json::to_string(&answer).expect("serialisable")
            ),
            Err(e) => {
                tracing::error!("SIGHUP reload failed, the old model keeps serving: {e}");
                eprintln!("movierec: SIGHUP reload failed, the old model keeps serving: {e}");
            }
        }
    }
}
