//! `GET /api/health` and `GET /api/health/detailed`.

use agnes_core::health::{DetailedHealthReport, HealthReport, HealthStatus};
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, Json};

/// Reports whether the instance is healthy; needs no token and shows no counts, names or paths.
///
/// Every check is listed by name with its status only, and `warnings` contains only release
/// warnings such as a deprecated version. The detailed report gives the cause of each check that
/// is not `ok`.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthReport),
        (status = 503, description = "Unhealthy", body = HealthReport),
    ))]
pub async fn health(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<HealthReport>), ApiError> {
    let plane = state.plane().clone();
    let report = state.blocking(move |_| Ok(plane.health())).await?;
    let status = match report.status {
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    Ok((status, Json(report)))
}

/// Reports health with everything needed to act, for admins only. The report contains each
/// check's message, the warnings with stable codes, contract findings per source, stale tables,
/// the last sync job, disk space, version, commit and uptime.
#[utoipa::path(get, path = "/api/health/detailed", tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Report with checks, warnings and diagnostics", body = DetailedHealthReport),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn detailed(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<DetailedHealthReport>, ApiError> {
    let plane = state.plane().clone();
    let report = state.blocking(move |_| Ok(plane.detailed_health())).await?;
    Ok(Json(report))
}
