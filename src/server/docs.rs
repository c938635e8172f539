//! The interactive API docs at `/docs/`: Swagger UI, its files compiled into the binary (the
//! `utoipa-swagger-ui` crate with `vendored`: nothing is fetched at build or run time), under its
//! own Content-Security-Policy, reading the document `openapi.rs` serves.

use super::error::ApiError;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa_swagger_ui::Config;

/// Swagger UI loads its own scripts, styles and images, and the document from this server;
/// `'unsafe-inline'` styles because it sets `style` attributes in the markup it renders.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /docs`: to `/docs/`, so that the page's relative asset URLs resolve under it.
pub(super) async fn docs_redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

/// `GET /docs/`: Swagger UI's page.
pub(super) async fn docs_index() -> Response {
    docs_file("")
}

/// `GET /docs/{file}`: Swagger UI's scripts, styles and icons.
pub(super) async fn docs_asset(file: Result<Path<String>, PathRejection>) -> Response {
    match file {
        Ok(Path(file)) => docs_file(&file),
        Err(rejection) => ApiError::bad_request(rejection.body_text()).into_response(),
    }
}

fn docs_file(path: &str) -> Response {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        // No validator: Swagger UI would otherwise load a badge from validator.swagger.io.
        Arc::new(Config::from("/api/openapi.json").validator_url("none"))
    });
    match utoipa_swagger_ui::serve(path, config.clone()) {
        Ok(Some(file)) => (
            [
                (header::CONTENT_TYPE, file.content_type.as_str()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    DOCS_CONTENT_SECURITY_POLICY,
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            with_viewport(&file.content_type, file.bytes.into_owned()),
        )
            .into_response(),
        Ok(None) => ApiError::not_found(format!("the docs have no file {path:?}")).into_response(),
        Err(e) => ApiError::internal(format!("serving the docs' {path:?}: {e}")).into_response(),
    }
}

/// Swagger UI's page has no viewport tag, so a phone shows it at desktop width, unreadably
/// small: one is added to its `<head>`.
fn with_viewport(content_type: &str, bytes: Vec<u8>) -> Vec<u8> {
    const TAG: &str = r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#;
    if !content_type.starts_with("text/html") {
        return bytes;
    }
    match String::from_utf8(bytes) {
        Ok(page) if !page.contains("name=\"viewport\"") => match page.find("<head>") {
            Some(at) => {
                let end = at + "<head>".len();
                format!("{}{TAG}{}", &page[..end], &page[end..]).into_bytes()
            }
            None => page.into_bytes(),
        },
        Ok(page) => page.into_bytes(),
        Err(e) => e.into_bytes(),
    }
}
