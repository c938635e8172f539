//! The one error type of the API: every failure becomes a response with the body
//! `{"error": {"code", "message", "field"?, "suggestions"?}}`:
//!
//! - `code`: a stable machine-readable name ([`ApiError::code`]): `invalid_argument`,
//!   `malformed_body`, `unsupported_media_type`, `payload_too_large`, `not_found`,
//!   `method_not_allowed`, `movie_not_found`, `user_not_found`, `timeout`, `overloaded`,
//!   `forbidden`, `rate_limited`, `movie_exists`, `training_running`,
//!   `uri_too_long`, `headers_too_large`, `malformed_request` (written by
//!   [`super::listener`] for requests hyper cannot parse),
//!   `unauthorized`, `reload_failed`, `internal`;
//! - `message`: what is wrong and what is allowed, for people;
//! - `field`: the request field at fault, when one is (`k`, `filter.genres`, `movie`, …);
//! - `suggestions`: close titles, for `movie_not_found`.
//!
//! [`ErrorBody`] is that shape as a type: responses are serialised from it and the OpenAPI
//! document's `ErrorBody` schema is derived from it, so the two cannot drift apart.
//! [`ServerErrors`] and [`BodyErrors`] document, for the OpenAPI document, the answers every
//! route (or every route with a body) can give.

use crate::Error;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    suggestions: Vec<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`, no field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            suggestions: Vec::new(),
            retry_after: None,
        }
    }

    /// A 400 `invalid_argument` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    /// A 404 `not_found` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Why a body could not be read: over [`super::BODY_LIMIT_BYTES`] (413), or cut short, the
    /// client having stopped sending or hung up (400 `malformed_body`, not a 413).
    pub fn unreadable_body(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "the request body could not be read to its end",
            )
        }
    }

    /// A 413 `payload_too_large`: the body is over [`super::BODY_LIMIT_BYTES`].
    pub fn payload_too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the request body is too large (at most {} bytes)",
                super::BODY_LIMIT_BYTES
            ),
        )
    }

    /// 500 with a message for the log and a generic one for the client.
    pub fn internal(message: impl Into<String>) -> Self {
        tracing::error!("internal error: {}", message.into());
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The same error, naming the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error, telling the client to retry after `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::MovieNotFound { suggestions, .. } => ApiError {
                suggestions,
                ..ApiError::new(StatusCode::NOT_FOUND, "movie_not_found", message)
            },
            Error::InvalidArgument { field, .. } => {
                ApiError::bad_request(message).with_field(field)
            }
            Error::UserNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "user_not_found", message)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON with the header `Content-Type: application/json`",
            ),
            JsonRejection::BytesRejection(rejection) => ApiError::unreadable_body(rejection),
            other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

/// The body of every error answer: `{"error": {"code", "message", "field"?, "suggestions"?}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`, `field`) and for people (`message`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable machine-readable name: `invalid_argument`, `malformed_body`,
    /// `unsupported_media_type`, `payload_too_large`, `not_found`, `method_not_allowed`,
    /// `movie_not_found`, `user_not_found`, `unauthorized`, `forbidden`, `rate_limited`,
    /// `movie_exists`, `reload_failed`, `timeout`,
    /// `overloaded` or `internal`.
    #[schema(pattern = "^[a-z_]+$", example = "invalid_argument")]
    pub code: String,
    /// What is wrong and what is allowed, for people.
    #[schema(min_length = 1, example = "k must be between 1 and 100, got 0")]
    pub message: String,
    /// The request field at fault, when there is one (`k`, `filter.genres`, `movie`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "k")]
    pub field: Option<String>,
    /// Close titles, for `movie_not_found`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                suggestions: self.suggestions,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// Answers any route can give, whatever the request: the layers around every handler.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its derived documentation is used.
pub enum ServerErrors {
    /// The request took longer than 10 seconds (`timeout`).
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// A request target over 8 KiB (`uri_too_long`).
    #[response(status = 414)]
    UriTooLong(ErrorBody),
    /// A body with a `Content-Encoding` other than `identity` (bodies are read uncompressed), or
    /// without `Content-Type: application/json` on a route that reads JSON
    /// (`unsupported_media_type`).
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Over 32 KiB of request headers (`headers_too_large`).
    #[response(status = 431)]
    HeadersTooLarge(ErrorBody),
    /// A fault of the server, not of the request (`internal`).
    #[response(status = 500)]
    Internal(ErrorBody),
    /// Too many requests at once; retry after `Retry-After` seconds (`overloaded`).
    #[response(status = 503)]
    Overloaded(ErrorBody),
}

/// Answers of the routes that read a JSON body, besides a 400 for a malformed one.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its derived documentation is used.
pub enum BodyErrors {
    /// A body over 64 KiB (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
}
