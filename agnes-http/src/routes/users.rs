//! User management for admins under `/api/users`.

use agnes_core::auth::Role;
use agnes_core::auth::users::{NewUser, User};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ClientIp, Json};

/// The request of `PATCH /api/users/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UserUpdate {
    /// New role.
    pub role: Role,
}

/// The request of `POST /api/users/{id}/reset-password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordReset {
    /// New password; at least 8 characters.
    pub password: String,
}

/// Lists all users.
#[utoipa::path(get, path = "/api/users", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "All users, oldest first", body = Vec<User>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
) -> Result<Json<Vec<User>>, ApiError> {
    let users = state
        .blocking(move |instance| instance.list_users(&admin))
        .await?;
    Ok(Json(users))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/users", tag = "users",
    security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, description = "User created", body = User),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "Email already in use", body = ErrorBody),
        (status = 422, description = "Invalid email, role or password", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Json(request): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = state
        .blocking(move |instance| instance.create_user(&admin, request, client))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes a user's role.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "Updated user", body = User),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Would leave no active admin", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Json(request): Json<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    let user = state
        .blocking(move |instance| instance.set_user_role(&admin, &id, request.role, client))
        .await?;
    Ok(Json(user))
}

/// Deactivates a user; their sessions and tokens fail from the next request on.
#[utoipa::path(post, path = "/api/users/{id}/deactivate", tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Deactivated user", body = User),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Would leave no active admin", body = ErrorBody),
    ))]
pub async fn deactivate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = state
        .blocking(move |instance| instance.deactivate_user(&admin, &id, client))
        .await?;
    Ok(Json(user))
}

/// Activates a deactivated user again; they can log in from the next request on.
#[utoipa::path(post, path = "/api/users/{id}/activate", tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Active user (unchanged when it was active)", body = User),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = state
        .blocking(move |instance| instance.activate_user(&admin, &id, client))
        .await?;
    Ok(Json(user))
}

/// Sets a new password for a user; their older sessions stop working.
#[utoipa::path(post, path = "/api/users/{id}/reset-password", tag = "users",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = PasswordReset,
    responses(
        (status = 204, description = "Password set"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "Password too short", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    Json(request): Json<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |instance| {
            instance.reset_user_password(&admin, &id, &request.password, client)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
