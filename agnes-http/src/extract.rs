//! Request extractors: the authenticated caller, the client address and JSON bodies whose
//! rejections use the error model.

use std::net::{IpAddr, SocketAddr};

use agnes_core::Error;
use agnes_core::auth::Principal;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body; a malformed one is answered with `request.invalid_body` (422).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Address of the TCP peer, when the server recorded it; `None` when a test drives the router
/// without a socket.
// TODO: behind a reverse proxy every request has the proxy's address, so rate limits are shared
// by all clients; reading X-Forwarded-For needs a configured list of trusted proxies first.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(address.map(|info| info.0.ip())))
    }
}

/// The caller, authenticated by the `Authorization: Bearer` header against the state database.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?.to_string();
        let state = AppState::from_ref(state);
        let principal = state
            .blocking(move |instance| instance.authenticate(&token))
            .await?;
        tracing::Span::current().record("user_id", principal.user_id.as_str());
        Ok(Self(principal))
    }
}

/// The caller, who must be an admin; others get `auth.forbidden` (403).
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S> FromRequestParts<S> for Admin
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        principal.require_admin()?;
        Ok(Self(principal))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let missing = || {
        ApiError(
            Error::unauthenticated("auth.missing_token", "the request has no bearer token")
                .with_hint(
                    "Send `Authorization: Bearer <token>` with a token from POST /auth/token.",
                ),
        )
    };
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}
