//! Middleware around the routes: request ids, tracing spans, the setup-mode gate and the JSON
//! answer for unknown paths.

use agnes_core::Error;
use agnes_core::auth::session::setup_required;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::SETUP_PATHS;

/// Adds the fallback, the setup gate, tracing and request ids to `routes`.
pub(crate) fn wrap(routes: axum::Router<AppState>, state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id());

    routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), setup_gate))
        .layer(layers)
        .with_state(state)
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        user_id = tracing::field::Empty,
    )
}

/// Returns 503 `setup.required` for every path but the setup paths until the first admin exists.
async fn setup_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.instance().is_setup_required() || SETUP_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:8000");
    ApiError(setup_required(&format!("http://{host}"))).into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError(
        Error::not_found(
            "route.not_found",
            format!("no route for {} {}", request.method(), request.uri().path()),
        )
        .with_hint("See /openapi.json for the routes of this server."),
    )
}
