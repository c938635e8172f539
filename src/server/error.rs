//! The one error type of the API: every failure becomes a 4xx with `{"error": "…"}`.

use crate::Error;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    suggestions: Vec<String>,
}

impl ApiError {
    /// A 400 Bad Request with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            suggestions: Vec::new(),
        }
    }

    /// A 404 Not Found with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            suggestions: Vec::new(),
        }
    }
}

impl ApiError {
    /// 500 with a message for the log and a generic one for the client.
    pub fn internal(message: impl Into<String>) -> Self {
        tracing::error!("internal error: {}", message.into());
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
            suggestions: Vec::new(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::MovieNotFound { suggestions, .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                message,
                suggestions,
            },
            Error::InvalidArgument { .. } => ApiError::bad_request(message),
            Error::UserNotFound { .. } => ApiError::not_found(message),
            other => {
                tracing::error!("internal error: {other}");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "internal error".into(),
                    suggestions: Vec::new(),
                }
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the request body must be JSON with the header `Content-Type: application/json`"
                    .to_string()
            }
            JsonRejection::BytesRejection(_) => "the request body is too large".to_string(),
            other => other.body_text(),
        };
        ApiError {
            status,
            message,
            suggestions: Vec::new(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if !self.suggestions.is_empty() {
            body["suggestions"] = json!(self.suggestions);
        }
        (self.status, Json(body)).into_response()
    }
}
