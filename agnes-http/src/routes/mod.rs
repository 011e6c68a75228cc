//! The routes, their OpenAPI document, and the one table both are checked against.

mod auth;
mod connectors;
mod data;
mod grants;
mod health;
mod pages;
mod users;

use std::sync::OnceLock;

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::extract::Json;

/// Every route as (method, path), in OpenAPI path syntax; a test checks that the router serves
/// each and that the OpenAPI document lists exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/health/detailed"),
    ("POST", "/auth/bootstrap"),
    ("POST", "/auth/token"),
    ("POST", "/auth/tokens"),
    ("GET", "/auth/tokens"),
    ("DELETE", "/auth/tokens/{id}"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("PATCH", "/api/users/{id}"),
    ("POST", "/api/users/{id}/deactivate"),
    ("POST", "/api/users/{id}/activate"),
    ("POST", "/api/users/{id}/reset-password"),
    ("GET", "/"),
    ("GET", "/setup"),
    ("GET", "/dashboard"),
    ("GET", "/assets/agnes.css"),
    ("GET", "/assets/common.js"),
    ("GET", "/assets/setup.js"),
    ("GET", "/assets/dashboard.js"),
    ("GET", "/openapi.json"),
    ("GET", "/api/admin/connectors"),
    ("POST", "/api/admin/configure"),
    ("GET", "/api/admin/sources"),
    ("DELETE", "/api/admin/sources/{name}"),
    ("GET", "/api/admin/registry"),
    ("POST", "/api/admin/registry"),
    ("POST", "/api/admin/register-table"),
    ("PUT", "/api/admin/registry/{id}"),
    ("DELETE", "/api/admin/registry/{id}"),
    ("GET", "/api/admin/grants"),
    ("PUT", "/api/admin/registry/{id}/grants/{user}"),
    ("DELETE", "/api/admin/registry/{id}/grants/{user}"),
    ("GET", "/api/admin/discover-tables"),
    ("POST", "/api/admin/discover-and-register"),
    ("POST", "/api/sync/trigger"),
    ("GET", "/api/sync/status"),
    ("GET", "/api/sync/jobs"),
    ("GET", "/api/sync/jobs/{id}"),
    ("GET", "/api/catalog/tables"),
    ("POST", "/api/query"),
    ("GET", "/api/data/{table}/download"),
];

/// Paths that work before the first admin exists. The pages and their assets hold no data; the
/// dashboard is here so that its script can send the browser on to `/setup` instead of showing
/// a JSON error.
pub const SETUP_PATHS: &[&str] = &[
    "/",
    "/setup",
    "/dashboard",
    "/assets/agnes.css",
    "/assets/common.js",
    "/assets/setup.js",
    "/assets/dashboard.js",
    "/auth/bootstrap",
    "/api/health",
    "/openapi.json",
];

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Agnes", description = "Self-hosted AI data analyst server"),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Health checks"),
        (name = "auth", description = "Bootstrap, login and personal access tokens"),
        (name = "users", description = "User management for admins"),
        (name = "setup", description = "First-start setup, the setup wizard and the dashboard"),
        (name = "data", description = "Sources, the table registry and discovery, for admins"),
        (name = "sync", description = "Sync jobs"),
        (name = "catalog", description = "Published tables"),
        (name = "query", description = "Read-only SQL"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::detailed))
        .routes(routes!(auth::bootstrap))
        .routes(routes!(auth::login))
        .routes(routes!(auth::create_token, auth::list_tokens))
        .routes(routes!(auth::revoke_token))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update))
        .routes(routes!(users::deactivate))
        .routes(routes!(users::activate))
        .routes(routes!(users::reset_password))
        .routes(routes!(pages::root))
        .routes(routes!(pages::setup))
        .routes(routes!(pages::dashboard))
        .routes(routes!(pages::style))
        .routes(routes!(pages::common_script))
        .routes(routes!(pages::setup_script))
        .routes(routes!(pages::dashboard_script))
        .routes(routes!(openapi_json))
        .routes(routes!(connectors::list))
        .routes(routes!(data::configure))
        .routes(routes!(data::list_sources))
        .routes(routes!(data::remove_source))
        .routes(routes!(data::list_registry, data::register))
        .routes(routes!(data::register_table))
        .routes(routes!(data::update_registry, data::delete_registry))
        .routes(routes!(grants::list))
        .routes(routes!(grants::grant, grants::revoke))
        .routes(routes!(data::discover_tables))
        .routes(routes!(data::discover_and_register))
        .routes(routes!(data::trigger))
        .routes(routes!(data::status))
        .routes(routes!(data::jobs))
        .routes(routes!(data::job))
        .routes(routes!(data::catalog))
        .routes(routes!(data::query))
        .routes(routes!(data::download))
}

/// Returns the OpenAPI 3 document of every route, built from the handlers' annotations.
pub fn openapi() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = api().split_for_parts().1;
        document.info.version = env!("CARGO_PKG_VERSION").to_string();
        document
    })
}

/// Returns the routes without middleware.
pub(crate) fn routes() -> Router<AppState> {
    api().split_for_parts().0
}

/// Serves this OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "setup",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static OpenApi> {
    Json(openapi())
}
