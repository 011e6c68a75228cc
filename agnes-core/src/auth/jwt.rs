//! HS256 tokens: signing and checking the signature, expiry and claim shape.
//!
//! A valid signature only says who sent a request; [`super::session`] then reads the user and, for
//! personal access tokens, the token row from the state database.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::TokenKind;
use crate::error::{Error, Result};
use crate::secrets::JwtSecret;

/// The claims of every token this server issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Role when the token was issued; informational, the database decides.
    pub role: String,
    /// Token kind.
    pub typ: TokenKind,
    /// Token id; for a personal access token, the id of its row.
    pub jti: String,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry time, in seconds since the Unix epoch; absent for a personal access token without
    /// expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

/// Signs and checks tokens with one HS256 key.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<hidden>)")
    }
}

impl JwtKeys {
    /// Creates the keys from the signing secret.
    pub fn new(secret: &JwtSecret) -> Self {
        // Loading a secret fails only when it is empty, and a JwtSecret is at least 32 bytes.
        Self {
            encoding: EncodingKey::from_secret(secret.key())
                .expect("the signing secret is not empty"),
            decoding: DecodingKey::from_secret(secret.key())
                .expect("the signing secret is not empty"),
        }
    }

    /// Signs `claims` and returns the compact token.
    ///
    /// Fails with `internal` if encoding fails, which HS256 with valid claims does not cause.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::internal(format!("cannot sign a token: {e}")))
    }

    /// Checks the signature and expiry of `token` at time `now` and returns its claims.
    ///
    /// Fails with `auth.token_expired` when `exp` has passed and with `auth.invalid_token` for a
    /// bad signature, another algorithm, a malformed token or a session token without `exp`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked below against `now`, without the library's default leeway.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();

        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                JwtErrorKind::ExpiredSignature => expired(),
                _ => invalid_token(),
            })?
            .claims;

        match (claims.typ, claims.exp) {
            (_, Some(exp)) if exp <= now.timestamp() => Err(expired()),
            (TokenKind::Session, None) => Err(invalid_token()),
            _ => Ok(claims),
        }
    }
}

/// Returns the error for a token whose expiry has passed.
pub fn expired() -> Error {
    Error::unauthenticated("auth.token_expired", "the token has expired")
        .with_hint("Log in again with POST /auth/token, or create a new personal access token.")
}

/// Returns the error for a token that is malformed, wrongly signed or unknown.
pub fn invalid_token() -> Error {
    Error::unauthenticated("auth.invalid_token", "the token is invalid")
        .with_hint("Send `Authorization: Bearer <token>` with a token from POST /auth/token.")
}
