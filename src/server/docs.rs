//! The interactive API docs at `/docs/`: Swagger UI, its files compiled into the binary (the
//! `utoipa-swagger-ui` crate with `vendored`: nothing is fetched at build or run time), under its
//! own Content-Security-Policy, reading the document [`super::openapi`] serves.

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
            file.bytes.into_owned(),
        )
            .into_response(),
        Ok(None) => ApiError::not_found(format!("the docs have no file {path:?}")).into_response(),
        Err(e) => ApiError::internal(format!("serving the docs' {path:?}: {e}")).into_response(),
    }
}
