//! The API's OpenAPI 3.1 document, generated from the code (`GET /api/openapi.json`).
//!
//! [`ApiDoc`] gathers each handler's `#[utoipa::path]` (method, path, parameters, body, every
//! status it can answer) and the schemas derived from the request and response types
//! ([`super::bodies`], the engine's answers, [`ErrorBody`]). A test holds its operations against
//! [`super::served_routes`], so an API route without documentation fails. The interactive docs
//! that read it are [`super::docs`].

use super::error::{ErrorBody, ErrorDetail, ServerErrors};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        super::handlers::health,
        super::handlers::search_movies,
        super::handlers::movie_titles,
        super::handlers::projection,
        super::handlers::recommendations,
        super::handlers::for_likes,
        super::handlers::for_user,
        super::profiles::create_user,
        super::profiles::ratings,
        super::profiles::put_rating,
        super::profiles::delete_rating,
        super::admin::ratings,
        super::admin::add_movie,
        super::admin::patch_movie,
        super::retrain::status,
        super::retrain::start_now,
        super::online::metrics,
        super::handlers::runs,
        super::reload::handler,
        super::metrics::handler,
        super::handlers::seed_recommendation,
    ),
    components(schemas(ErrorBody, ErrorDetail, crate::catalog::MovieFilter)),
    modifiers(&AdminToken),
    tags(
        (name = "recommendations", description = "Movies like a movie, for a user, for a list of likes"),
        (name = "catalog", description = "The served model, title search, the 2-D map"),
        (name = "runs", description = "Recorded training and evaluation runs"),
        (name = "profiles", description = "Profiles and their ratings: recommendations follow every rating at once"),
        (name = "admin", description = "Model reload, ratings in bulk, the catalog's movies"),
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
        components.add_security_scheme(
            "profile_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A profile's own token, as `POST /api/users` answered it",
                    ))
                    .build(),
            ),
        );
    }
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
