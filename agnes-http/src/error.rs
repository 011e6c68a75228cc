//! The one HTTP error type: a core error rendered as `{"error": {"code", "message", "hint"}}`.

use agnes_core::{Error, ErrorKind};
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code, message and hint of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, such as `auth.invalid_credentials`.
    pub code: String,
    /// What failed, in plain words.
    pub message: String,
    /// The next step, or `null`.
    pub hint: Option<String>,
}

/// An error returned by a handler; wraps the core error and picks the HTTP status.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self(
            Error::invalid("request.invalid_body", rejection.body_text())
                .with_hint("Send a JSON body with `Content-Type: application/json`; see /openapi.json for the fields."),
        )
    }
}

/// Returns the HTTP status for a class of core error.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::InvalidQuery => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::SetupRequired | ErrorKind::Unavailable | ErrorKind::Busy { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = status_of(error.kind);
        if status.is_server_error() {
            tracing::error!(code = error.code, error = %error.message, "request failed");
        } else {
            tracing::info!(
                code = error.code,
                status = status.as_u16(),
                "request rejected"
            );
        }

        let body = ErrorBody {
            error: ErrorDetail {
                code: error.code.to_string(),
                message: error.message,
                hint: error.hint,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match error.kind {
            ErrorKind::RateLimited { retry_after } | ErrorKind::Busy { retry_after } => {
                // Rounded up, so a client that waits this long is past the window.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            ErrorKind::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
