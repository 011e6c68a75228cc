//! Login, bootstrap and personal access tokens under `/auth`.

use agnes_core::auth::session::{BootstrapRequest, LoginRequest, TokenResponse};
use agnes_core::auth::tokens::{CreatedToken, NewToken, TokenInfo};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ClientIp, Json};

/// Creates the first admin and returns a session token; allowed only while no user has a
/// password.
#[utoipa::path(post, path = "/auth/bootstrap", tag = "auth",
    request_body = BootstrapRequest,
    responses(
        (status = 200, description = "First admin created", body = TokenResponse),
        (status = 403, description = "An admin already exists; log in instead", body = ErrorBody),
        (status = 422, description = "Invalid email or password too short", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn bootstrap(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(request): Json<BootstrapRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let response = state
        .blocking(move |instance| instance.bootstrap(&request, client))
        .await?;
    Ok(Json(response))
}

/// Logs in with email and password and returns a session token valid for 24 hours.
#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Invalid email or password", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(request): Json<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let response = state
        .blocking(move |instance| instance.login(&request, client))
        .await?;
    Ok(Json(response))
}

/// Creates a personal access token for the caller; the token is in this response only.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth",
    security(("bearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Token created", body = CreatedToken),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Called with a personal access token", body = ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientIp(client): ClientIp,
    Json(request): Json<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = state
        .blocking(move |instance| instance.create_token(&caller, &request, client))
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists the caller's personal access tokens, without the tokens themselves.
#[utoipa::path(get, path = "/auth/tokens", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tokens, newest first", body = Vec<TokenInfo>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let tokens = state
        .blocking(move |instance| instance.list_tokens(&caller))
        .await?;
    Ok(Json(tokens))
}

/// Revokes a personal access token; it fails from the next request on.
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Token revoked"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such token of the caller", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |instance| instance.revoke_token(&caller, &id, client))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
