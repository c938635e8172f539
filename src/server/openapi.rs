//! The API's OpenAPI 3.1 document, generated from the code, and the interactive docs.
//!
//! - `GET /api/openapi.json`: [`ApiDoc`] gathers each handler's `#[utoipa::path]` (method, path,
//!   parameters, body, every status it can answer) and the schemas derived from the request and
//!   response types ([`super::bodies`], the engine's answers, [`ErrorBody`]). A test holds its
//!   operations against [`super::served_routes`], so an API route without documentation fails.
//! - `GET /docs/`: Swagger UI, its files compiled into the binary (the `utoipa-swagger-ui` crate
//!   with `vendored`: nothing is fetched at build or run time), under its own
//!   Content-Security-Policy.

use super::error::{ApiError, ErrorBody, ErrorDetail};
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_swagger_ui::Config;

/// The OpenAPI document of every route under `/api`, `/metrics` and `POST /recommendation`.
/// `ApiDoc::openapi()` builds it; the server answers it at `GET /api/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "movierec",
        description = "Movie recommendations from MovieLens. Every error answer has the body \
            `ErrorBody`: `{\"error\": {\"code\", \"message\", \"field\"?, \"suggestions\"?}}`."
    ),
    paths(
        document_handler,
        super::routes::health,
        super::routes::search_movies,
        super::routes::movie_titles,
        super::routes::projection,
        super::routes::recommendations,
        super::routes::for_likes,
        super::routes::for_user,
        super::routes::runs,
        super::reload::handler,
        super::metrics::handler,
        super::routes::seed_recommendation,
    ),
    components(schemas(ErrorBody, ErrorDetail, crate::catalog::MovieFilter)),
    modifiers(&AdminToken),
    tags(
        (name = "recommendations", description = "Movies like a movie, for a user, for a list of likes"),
        (name = "catalog", description = "The served model, title search, the 2-D map"),
        (name = "runs", description = "Recorded training and evaluation runs"),
        (name = "admin", description = "Model reload"),
        (name = "operations", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the `admin_token` bearer scheme `POST /api/admin/reload` requires.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The token the server was started with (`MOVIEREC_ADMIN_TOKEN`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Answers any route can give, whatever the request: the layers around every handler.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only its derived documentation is used.
pub(super) enum ServerErrors {
    /// The request took longer than 10 seconds (`timeout`).
    #[response(status = 408)]
    Timeout(ErrorBody),
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
pub(super) enum BodyErrors {
    /// A body over 64 KiB (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// A body without `Content-Type: application/json` (`unsupported_media_type`).
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// The document as JSON, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    })
}

/// This document: the OpenAPI 3.1 description of the API, generated from the code.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object),
        ServerErrors,
    )
)]
pub(super) async fn document_handler() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

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
