//! `GET /api/health` and `GET /api/health/detailed`.

use agnes_core::health::{DetailedHealthReport, HealthReport, HealthStatus};
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, Json};

/// Reports whether the instance is healthy; needs no token and shows no counts, names or paths.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthReport),
        (status = 503, description = "Unhealthy", body = HealthReport),
    ))]
pub async fn health(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<HealthReport>), ApiError> {
    let report = state.blocking(|instance| Ok(instance.health())).await?;
    let status = match report.status {
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    Ok((status, Json(report)))
}

/// Reports health with diagnostics (user counts, data directory, check details); admins only.
#[utoipa::path(get, path = "/api/health/detailed", tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Report with diagnostics", body = DetailedHealthReport),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn detailed(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<DetailedHealthReport>, ApiError> {
    let report = state
        .blocking(|instance| Ok(instance.detailed_health()))
        .await?;
    Ok(Json(report))
}
