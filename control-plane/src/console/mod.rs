//! The web console: a page served beside the admin API on the same
//! address, talking to the same gRPC services through gRPC-Web with the
//! credential the person signs in with. Its files are embedded in the
//! binary (plain HTML, CSS and JavaScript modules: nothing to build), and
//! served with a policy that lets the page load nothing but them and
//! talk to nothing but this address.

mod schema;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the console lives on the control plane's address.
pub const PATH: &str = "/console/";

/// The console's files: name, content type, content.
const ASSETS: [(&str, &str, &str); 6] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../console/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/pages.js"),
    ),
    (
        "grpc.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/grpc.js"),
    ),
    (
        "dates.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/dates.js"),
    ),
];

/// The page may run its own scripts and styles and call this address;
/// nothing inline, nothing from elsewhere, never inside a frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's routes: `/` and `/console` lead to [`PATH`].
pub fn router() -> Router {
    let schema = schema::schema_json();
    Router::new()
        .route("/", get(|| async { Redirect::to(PATH) }))
        .route("/console", get(|| async { Redirect::to(PATH) }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/schema.json",
            get(move || async move { served("application/json", schema.clone()) }),
        )
        .route(
            "/console/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, content)) => served(content_type, *content),
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}

fn served(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The files change with the binary: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
