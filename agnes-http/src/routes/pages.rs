//! The browser pages: the setup wizard at `/setup`, the dashboard at `/dashboard`, and their
//! scripts and style sheet.
//!
//! The pages are static and hold no data, so they need no token: their scripts read everything
//! through the same authenticated JSON API that the CLI uses, with the bearer token kept in the
//! tab's `sessionStorage`. Every page is sent with a Content-Security-Policy that allows only
//! this server's own scripts, styles and API, so the pages load nothing from elsewhere and run no
//! inline script.

use axum::extract::State;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;

/// Policy of the HTML pages: own scripts, styles and API calls only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

const SETUP_HTML: &str = include_str!("../../assets/setup.html");
const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");
const STYLE_CSS: &str = include_str!("../../assets/agnes.css");
const COMMON_JS: &str = include_str!("../../assets/common.js");
const SETUP_JS: &str = include_str!("../../assets/setup.js");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard.js");

/// Sends the browser to the wizard while the instance has no admin, else to the dashboard.
#[utoipa::path(get, path = "/", tag = "setup",
    responses((status = 303, description = "Redirect to /setup or /dashboard")))]
pub async fn root(State(state): State<AppState>) -> Redirect {
    if state.instance().is_setup_required() {
        Redirect::to("/setup")
    } else {
        Redirect::to("/dashboard")
    }
}

/// Serves the setup wizard. Its script finds the current step from the API, so a reload resumes
/// at the step the server's state calls for.
#[utoipa::path(get, path = "/setup", tag = "setup",
    responses((status = 200, description = "Setup wizard", content_type = "text/html", body = String)))]
pub async fn setup() -> Response {
    page(SETUP_HTML)
}

/// Serves the dashboard: health, published tables and recent sync jobs, read with the caller's
/// token.
#[utoipa::path(get, path = "/dashboard", tag = "setup",
    responses((status = 200, description = "Dashboard", content_type = "text/html", body = String)))]
pub async fn dashboard() -> Response {
    page(DASHBOARD_HTML)
}

/// Serves the style sheet of the pages.
#[utoipa::path(get, path = "/assets/agnes.css", tag = "setup",
    responses((status = 200, description = "Style sheet", content_type = "text/css", body = String)))]
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// Serves the script module shared by the pages: API calls, the token and error display.
#[utoipa::path(get, path = "/assets/common.js", tag = "setup",
    responses((status = 200, description = "Script module", content_type = "text/javascript", body = String)))]
pub async fn common_script() -> Response {
    asset(JAVASCRIPT, COMMON_JS)
}

/// Serves the script of the setup wizard.
#[utoipa::path(get, path = "/assets/setup.js", tag = "setup",
    responses((status = 200, description = "Script module", content_type = "text/javascript", body = String)))]
pub async fn setup_script() -> Response {
    asset(JAVASCRIPT, SETUP_JS)
}

/// Serves the script of the dashboard.
#[utoipa::path(get, path = "/assets/dashboard.js", tag = "setup",
    responses((status = 200, description = "Script module", content_type = "text/javascript", body = String)))]
pub async fn dashboard_script() -> Response {
    asset(JAVASCRIPT, DASHBOARD_JS)
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn page(html: &'static str) -> Response {
    let mut response = asset("text/html; charset=utf-8", html);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 3] = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // The files are compiled into the binary; revalidating keeps a browser from running the
        // scripts of an older release after an upgrade.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}
