//! Table grants for admins: who may read which private table.

use agnes_core::registry::{GrantOutcome, RevokeOutcome, TableGrant};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ClientIp, Json};

/// Filters of `GET /api/admin/grants`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct GrantFilter {
    /// Only the grants of this table id.
    #[serde(default)]
    pub table: Option<String>,
    /// Only the grants of this user, by id or email.
    #[serde(default)]
    pub user: Option<String>,
}

/// The response of `GET /api/admin/grants`.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    /// Grants, by table and then email.
    pub grants: Vec<TableGrant>,
    /// Number of grants.
    pub count: usize,
}

/// Lists table grants: all, or those of one table or one user.
#[utoipa::path(get, path = "/api/admin/grants", tag = "data",
    security(("bearer" = [])),
    params(GrantFilter),
    responses(
        (status = 200, description = "Grants", body = GrantList),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "A filter names no registered table or no user", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Query(filter): Query<GrantFilter>,
) -> Result<Json<GrantList>, ApiError> {
    let grants = state
        .blocking(move |instance| {
            instance.list_grants(&admin, filter.table.as_deref(), filter.user.as_deref())
        })
        .await?;
    Ok(Json(GrantList {
        count: grants.len(),
        grants,
    }))
}

/// Lets a user read a table even while it is private; granting twice changes nothing.
#[utoipa::path(put, path = "/api/admin/registry/{id}/grants/{user}", tag = "data",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Table id"),
        ("user" = String, Path, description = "User id or email"),
    ),
    responses(
        (status = 201, description = "Granted", body = GrantOutcome),
        (status = 200, description = "The user had the grant already", body = GrantOutcome),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such table or user", body = ErrorBody),
        (status = 422, description = "The user is not an id and not a valid email", body = ErrorBody),
    ))]
pub async fn grant(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path((id, user)): Path<(String, String)>,
) -> Result<(StatusCode, Json<GrantOutcome>), ApiError> {
    let outcome = state
        .blocking(move |instance| instance.grant_table(&admin, &id, &user, client))
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

/// Takes back a user's grant of a table; it takes effect with the next request.
#[utoipa::path(delete, path = "/api/admin/registry/{id}/grants/{user}", tag = "data",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Table id"),
        ("user" = String, Path, description = "User id or email"),
    ),
    responses(
        (status = 200, description = "Revoked, or there was no grant (see `revoked`)", body = RevokeOutcome),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such table or user", body = ErrorBody),
        (status = 422, description = "The user is not an id and not a valid email", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path((id, user)): Path<(String, String)>,
) -> Result<Json<RevokeOutcome>, ApiError> {
    let outcome = state
        .blocking(move |instance| instance.revoke_table(&admin, &id, &user, client))
        .await?;
    Ok(Json(outcome))
}
