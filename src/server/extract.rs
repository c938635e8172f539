//! Reading requests: the checks every request passes first ([`request_guards`]), JSON bodies
//! with messages that name the field at fault, the checks of fields several routes share
//! (`movie`, `k`), and [`JsonAnswer`] for writing answers.

use super::bodies::MovieField;
use super::error::ApiError;
use crate::catalog::MovieQuery;
use crate::engine::{Engine, DEFAULT_K, MAX_K, MIN_K};
use axum::extract::rejection::JsonRejection;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

/// The longest request target (path and query) answered; longer ones get 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry; more get 431
/// `headers_too_large`. (Heads far larger still, over hyper's buffer of about 400 KB, are refused
/// by hyper itself; [`super::listener`] gives that 431 the same error shape.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// What every request must pass before its route sees it: a target and headers of bounded size,
/// and no compressed body (`Content-Encoding`), which no route reads.
pub(super) async fn request_guards(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target has {target} bytes; at most {MAX_URI_BYTES} are read"),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {headers} bytes of headers; at most {MAX_HEADER_BYTES} are read"
            ),
        )
        .into_response();
    }
    if let Some(encoding) = request.headers().get(header::CONTENT_ENCODING) {
        let encoding = String::from_utf8_lossy(encoding.as_bytes());
        if !encoding.trim().eq_ignore_ascii_case("identity") {
            let shown: String = encoding.chars().take(40).collect();
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "request bodies are read uncompressed; Content-Encoding {shown:?} is not accepted"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// A JSON answer, serialized into a buffer sized for a page of results. axum's `Json` starts from
/// 128 bytes and grows the buffer six times for the 6-KB answer of ten recommendations; under load
/// that copying showed in the profile.
pub(super) struct JsonAnswer<T>(pub T);

impl<T: serde::Serialize> IntoResponse for JsonAnswer<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(8 * 1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => {
                ApiError::internal(format!("could not write the answer: {e}")).into_response()
            }
        }
    }
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

pub(super) fn movie_query(field: MovieField) -> Result<MovieQuery, ApiError> {
    match field {
        MovieField::Id(id) => u32::try_from(id).map(MovieQuery::Id).map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
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

pub(super) fn k_value(k: Option<i64>) -> Result<usize, ApiError> {
    let k = k.unwrap_or(DEFAULT_K as i64);
    match usize::try_from(k) {
        Ok(k) => Ok(Engine::check_k(k)?),
        Err(_) => Err(ApiError::bad_request(format!(
            "k must be between {MIN_K} and {MAX_K}, got {k}"
        ))
        .with_field("k")),
    }
}
