//! The route table: the one list of what the server answers.
//!
//! [`table`] builds the router, and [`served_routes`] reports it, so that a test can hold it
//! against the OpenAPI document ([`super::openapi`]) and fail when an API route has no
//! documentation. Handlers live in [`super::handlers`] (the JSON API), [`super::page`] (the web
//! page), [`super::docs`] (Swagger UI), [`super::reload`] and [`super::metrics`].

use super::error::ApiError;
use super::ServerState;
use super::{admin, docs, handlers, metrics, online, openapi, page, profiles, reload, retrain};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

/// A route the server answers, as [`served_routes`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRoute {
    /// The HTTP method.
    pub method: Method,
    /// The path pattern, as axum and OpenAPI write it (`/api/users/{userId}/recommendations`).
    pub path: &'static str,
    /// True for the API (documented in `GET /api/openapi.json`); false for the web page, its
    /// assets and the interactive docs.
    pub in_openapi: bool,
}

/// One row of [`table`]: a [`ServedRoute`] and its handler.
struct Route {
    served: ServedRoute,
    handler: MethodRouter<ServerState>,
}

impl Route {
    /// The same route reading bodies of up to `bytes` (instead of [`super::BODY_LIMIT_BYTES`]).
    fn body_limit(mut self, bytes: usize) -> Route {
        self.handler = self
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(bytes));
        self
    }
}

/// A route of the JSON API: it must be in the OpenAPI document.
fn api<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    route(method, path, handler, true)
}

/// A route of the web page or the docs: not part of the API document.
fn page<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    route(method, path, handler, false)
}

fn route<H, T>(method: Method, path: &'static str, handler: H, in_openapi: bool) -> Route
where
    H: Handler<T, ServerState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route {
        served: ServedRoute {
            method,
            path,
            in_openapi,
        },
        handler: on(filter, handler),
    }
}

/// Every route the server answers. Add new routes here (and nowhere else), with `api` for the
/// JSON API (then document the handler with `#[utoipa::path]` and list it in
/// [`super::openapi::ApiDoc`]) or `page` for what a browser shows.
fn table() -> Vec<Route> {
    vec![
        page(Method::GET, "/", page::index_html),
        page(Method::GET, "/assets/app.js", page::app_js),
        page(Method::GET, "/assets/app.css", page::app_css),
        page(
            Method::GET,
            "/assets/vendor/uPlot.iife.min.js",
            page::uplot_js,
        ),
        page(Method::GET, "/assets/vendor/uPlot.min.css", page::uplot_css),
        page(Method::GET, "/docs", docs::docs_redirect),
        page(Method::GET, "/docs/", docs::docs_index),
        page(Method::GET, "/docs/{*file}", docs::docs_asset),
        api(Method::GET, "/api/openapi.json", openapi::document_handler),
        api(Method::GET, "/api/health", handlers::health),
        api(Method::GET, "/api/movies/search", handlers::search_movies),
        api(Method::GET, "/api/movies/titles", handlers::movie_titles),
        api(Method::GET, "/api/projection", handlers::projection),
        api(
            Method::POST,
            "/api/recommendations",
            handlers::recommendations,
        ),
        api(
            Method::POST,
            "/api/recommendations/for-likes",
            handlers::for_likes,
        ),
        api(
            Method::GET,
            "/api/users/{userId}/recommendations",
            handlers::for_user,
        ),
        api(Method::POST, "/api/users", profiles::create_user),
        api(
            Method::GET,
            "/api/users/{userId}/ratings",
            profiles::ratings,
        ),
        api(
            Method::PUT,
            "/api/users/{userId}/ratings/{movieId}",
            profiles::put_rating,
        ),
        api(
            Method::DELETE,
            "/api/users/{userId}/ratings/{movieId}",
            profiles::delete_rating,
        ),
        api(Method::POST, "/api/admin/ratings", admin::ratings).body_limit(admin::BULK_BODY_LIMIT),
        api(Method::POST, "/api/admin/movies", admin::add_movie),
        api(
            Method::PATCH,
            "/api/admin/movies/{movieId}",
            admin::patch_movie,
        ),
        api(Method::GET, "/api/admin/training", retrain::status),
        api(Method::GET, "/api/admin/online-metrics", online::metrics),
        api(Method::POST, "/api/admin/training", retrain::start_now),
        api(Method::GET, "/api/runs", handlers::runs),
        api(Method::POST, "/api/admin/reload", reload::handler),
        api(Method::GET, "/metrics", metrics::handler),
        api(
            Method::POST,
            "/recommendation",
            handlers::seed_recommendation,
        ),
    ]
}

/// The routes the server answers, in the order they are registered.
pub fn served_routes() -> Vec<ServedRoute> {
    table().into_iter().map(|r| r.served).collect()
}

pub(super) fn routes() -> Router<ServerState> {
    table()
        .into_iter()
        .fold(Router::new(), |router, r| {
            router.route(r.served.path, r.handler)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this route does not answer {method}"),
    )
}
