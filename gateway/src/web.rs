//! The web GUI: the built `web/dist` served at `/`, with unknown paths
//! answered by `index.html` so the GUI's own router can resolve them.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Installs the fallback for every path no API route claimed.
pub fn mount(app: Router, dir: Option<&Path>) -> Router {
    let spa = dir.filter(|d| d.join("index.html").is_file()).map(|d| {
        tracing::info!(dir = %d.display(), "serving the web GUI");
        ServeDir::new(d).fallback(ServeFile::new(d.join("index.html")))
    });
    if spa.is_none() {
        tracing::warn!(
            "no built GUI found (web/dist/index.html); run `npm --prefix web ci && npm --prefix web run build`"
        );
    }
    app.fallback(move |request: Request| {
        let spa = spa.clone();
        async move {
            if is_grpc(&request) {
                return grpc_unimplemented();
            }
            match spa {
                Some(spa) => match spa.oneshot(request).await {
                    Ok(response) => response.into_response(),
                    Err(never) => match never {},
                },
                None => (
                    StatusCode::NOT_FOUND,
                    "The certctl GUI is not built. Run `npm --prefix web ci && npm --prefix web run build` and restart, \
                     or use the API under /api/v1.\n",
                )
                    .into_response(),
            }
        }
    })
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// What a gRPC client expects for a service this server does not have.
fn grpc_unimplemented() -> Response {
    tonic::Status::unimplemented("no such gRPC service on this gateway").into_http()
}
