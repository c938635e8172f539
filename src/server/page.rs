//! The web page at `/` and its assets, compiled into the binary from `web/`.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// The page loads only its own compiled-in assets and talks only to this server; the policy makes
/// the browser refuse anything else, should a title ever slip past the page's escaping.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub(super) async fn index_html() -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(include_str!("../../web/index.html")),
    )
        .into_response()
}

pub(super) async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
}

pub(super) async fn app_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../../web/app.css"))
}

// uPlot (the Runs tab's chart), vendored from npm by web/vendor/update.sh at the version
// web/package-lock.json pins; tests/web_vendor.rs checks these files against its manifest.
pub(super) async fn uplot_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../web/vendor/uPlot.iife.min.js"),
    )
}

pub(super) async fn uplot_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../web/vendor/uPlot.min.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
