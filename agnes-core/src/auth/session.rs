//! Bootstrap of the first admin, login, and the check of a bearer token on each request.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::jwt::{self, Claims};
use super::rate_limit::Action;
use super::users::{self, UserRecord, normalize_email};
use super::{Principal, Role, TokenKind, password, tokens};
use crate::audit::{self, AuditEvent, Outcome};
use crate::error::{Error, Result};
use crate::instance::Instance;

/// Lifetime of a session token, as in the original server.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(24);

/// The request of `POST /auth/bootstrap`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BootstrapRequest {
    /// Email of the first admin.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Password; at least 8 characters.
    #[serde(default)]
    pub password: String,
}

/// The request of `POST /auth/token`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    #[serde(default)]
    pub password: String,
}

/// A session token and the user it belongs to, returned by login and bootstrap.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The session token (a JWT) for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// User id.
    pub user_id: String,
    /// User email.
    pub email: String,
    /// User role.
    pub role: Role,
}

fn invalid_credentials() -> Error {
    Error::unauthenticated("auth.invalid_credentials", "invalid email or password")
        .with_hint("Check the email and password; an admin can reset a forgotten password.")
}

fn bootstrap_done() -> Error {
    Error::forbidden(
        "setup.already_done",
        "bootstrap is disabled because a user with a password already exists",
    )
    .with_hint("Log in with POST /auth/token and your email and password.")
}

impl Instance {
    /// Creates the first admin and returns a session token for them.
    ///
    /// Allowed only while no user has a password; a user that already exists with `email` and no
    /// password (a seeded admin) gets the password and the admin role. Fails with `rate_limited`,
    /// with `user.invalid_email` or a password error (422), and with `setup.already_done` (403)
    /// once a user with a password exists.
    pub fn bootstrap(
        &self,
        request: &BootstrapRequest,
        client: Option<IpAddr>,
    ) -> Result<TokenResponse> {
        self.rate_limiter().check(Action::Bootstrap, client)?;
        let email = normalize_email(&request.email)?;
        password::validate(&request.password)?;
        let hash = password::hash(&request.password)?;

        let record = self.state().with_conn(|conn| {
            if users::any_password_set(conn)? {
                audit::record_or_log(
                    conn,
                    &AuditEvent {
                        user_id: None,
                        action: "auth.bootstrap",
                        resource: None,
                        params: json!({"email": email}),
                        outcome: Outcome::Failure,
                        client_ip: client,
                    },
                );
                return Err(bootstrap_done());
            }
            let id = match users::find_by(conn, "email", &email)? {
                Some(existing) => {
                    conn.execute(
                        "UPDATE users SET role = 'admin', active = true WHERE id = ?",
                        [&existing.user.id],
                    )
                    .map_err(|e| Error::state_db("promoting the seeded admin", &e))?;
                    users::set_password_hash(conn, &existing.user.id, &hash)?;
                    existing.user.id
                }
                None => users::insert(conn, &email, request.name.trim(), Role::Admin, Some(&hash))?,
            };
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&id),
                    action: "auth.bootstrap",
                    resource: Some(&id),
                    params: json!({"email": email}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            users::find_by(conn, "id", &id)?
                .ok_or_else(|| Error::internal("the new admin was not stored"))
        })?;

        self.mark_setup_done();
        tracing::info!(user_id = %record.user.id, "first admin created; setup mode ended");
        self.issue_session(&record)
    }

    /// Logs a user in with email and password and returns a session token.
    ///
    /// Fails with `rate_limited`, with `auth.invalid_credentials` for an unknown email, a wrong
    /// password or a user without a password (one message for all, so emails cannot be probed),
    /// and with `auth.account_deactivated` for a deactivated user with the right password.
    pub fn login(&self, request: &LoginRequest, client: Option<IpAddr>) -> Result<TokenResponse> {
        self.rate_limiter().check(Action::Login, client)?;
        let email = request.email.trim().to_lowercase();
        let found = self
            .state()
            .with_conn(|conn| users::find_by(conn, "email", &email))?;

        let verified = match found.as_ref().and_then(|r| r.password_hash.as_deref()) {
            Some(stored) => password::verify(&request.password, stored),
            None => {
                password::verify_dummy(&request.password);
                false
            }
        };
        let active = found.as_ref().is_some_and(|r| r.user.active);

        self.state().with_conn(|conn| {
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: found.as_ref().map(|r| r.user.id.as_str()),
                    action: "auth.login",
                    resource: None,
                    params: json!({"email": email}),
                    outcome: if verified && active {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    },
                    client_ip: client,
                },
            );
            Ok(())
        })?;

        match found {
            Some(record) if verified && active => self.issue_session(&record),
            Some(_) if verified => Err(deactivated()),
            _ => Err(invalid_credentials()),
        }
    }

    /// Checks a bearer token (a session token or a personal access token) and returns the caller.
    ///
    /// The user, their role and activity and, for a personal access token, its row are read from
    /// the state database on every call. Fails with `auth.invalid_token`, `auth.token_expired`,
    /// `auth.token_revoked` or `auth.account_deactivated` (all 401).
    pub fn authenticate(&self, token: &str) -> Result<Principal> {
        let now = Utc::now();
        let claims = self.jwt_keys().verify(token, now)?;
        if let Some(principal) = self.auth_cache().get(token) {
            return Ok(principal);
        }
        let generation = self.auth_cache().generation();
        let principal = self.state().with_conn(|conn| {
            if claims.typ == TokenKind::Pat {
                tokens::check_pat_row(conn, &claims, token, now)?;
            }
            let record = users::find_by(conn, "id", &claims.sub)?.ok_or_else(jwt::invalid_token)?;
            check_session_user(&record, &claims)?;
            Ok(Principal {
                user_id: record.user.id,
                email: record.user.email,
                role: record.user.role,
                token_kind: claims.typ,
            })
        })?;
        self.auth_cache().put(token, &principal, generation);
        Ok(principal)
    }

    fn issue_session(&self, record: &UserRecord) -> Result<TokenResponse> {
        let now = Utc::now();
        let claims = Claims {
            sub: record.user.id.clone(),
            role: record.user.role.as_str().to_string(),
            typ: TokenKind::Session,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            exp: Some((now + SESSION_TTL).timestamp()),
        };
        Ok(TokenResponse {
            access_token: self.jwt_keys().sign(&claims)?,
            token_type: "bearer".to_string(),
            user_id: record.user.id.clone(),
            email: record.user.email.clone(),
            role: record.user.role,
        })
    }
}

/// Checks that the token's user may still act: active and, for a session, issued after the last
/// password change (a reset ends older sessions).
fn check_session_user(record: &UserRecord, claims: &Claims) -> Result<()> {
    if !record.user.active {
        return Err(deactivated());
    }
    let changed_after_issue = record
        .password_changed_at
        .is_some_and(|changed| claims.iat < changed.timestamp());
    if claims.typ == TokenKind::Session && changed_after_issue {
        return Err(Error::unauthenticated(
            "auth.token_revoked",
            "the session ended because the password was changed",
        )
        .with_hint("Log in again with POST /auth/token (`agnes login`)."));
    }
    Ok(())
}

fn deactivated() -> Error {
    Error::unauthenticated("auth.account_deactivated", "this account is deactivated")
        .with_hint(
            "Ask an admin of this instance to activate it again (POST /api/users/{id}/activate, `agnes admin users activate ID`).",
        )
}

/// Compares two secrets in constant time, so response timing does not reveal matching prefixes.
pub(crate) fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Returns the time `seconds` since the Unix epoch as UTC, or `None` when out of range.
pub(crate) fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

/// Returns the error for a request to an instance that has no admin yet, with both ways to
/// create one: the `/setup` page and the bootstrap request, both under `base_url`.
pub fn setup_required(base_url: &str) -> Error {
    let base = base_url.trim_end_matches('/');
    Error::new(
        crate::ErrorKind::SetupRequired,
        "setup.required",
        "this instance has no admin yet, so it only serves the setup routes",
    )
    .with_hint(format!(
        "Open {base}/setup in a browser, or create the first admin with: \
         curl -X POST {base}/auth/bootstrap -H 'Content-Type: application/json' \
         -d '{{\"email\": \"admin@example.com\", \"name\": \"Admin\", \"password\": \"<at least 8 characters>\"}}'"
    ))
}
