//! Personal access tokens: long-lived bearer tokens a user creates for scripts and agents.
//!
//! A token is a JWT with `typ = pat` whose `jti` is the id of its row. The row stores the SHA-256
//! hash of the whole token, never the token itself, which is shown once at creation. Each request
//! compares the hash in constant time and checks revocation and expiry in the row.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use duckdb::{Connection, OptionalExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::jwt::{self, Claims};
use super::session::{from_unix, secrets_equal};
use super::{Principal, Role, TokenKind};
use crate::audit::{self, AuditEvent, Outcome};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::state::{from_db_time, to_db_time};

/// Lifetime of a new token when the request does not set one.
pub const DEFAULT_EXPIRES_IN_DAYS: u32 = 90;

/// Longest allowed lifetime, in days (about ten years).
pub const MAX_EXPIRES_IN_DAYS: u32 = 3650;

/// Maximum token name length in characters.
const MAX_NAME_LEN: usize = 100;

/// The request of `POST /auth/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewToken {
    /// A name that says what the token is for.
    pub name: String,
    /// Lifetime in days, at most 3650; `null` creates a token that never expires, and an absent
    /// field means 90 days.
    #[serde(default = "default_expiry")]
    pub expires_in_days: Option<u32>,
}

fn default_expiry() -> Option<u32> {
    Some(DEFAULT_EXPIRES_IN_DAYS)
}

/// A token as listed; never includes the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// First 8 characters of the id, to recognize the token.
    pub prefix: String,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Expiry time (UTC); `null` for a token that never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last time the token authenticated a request, updated at most every 5 minutes.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time (UTC), if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A newly created token, the only response that contains the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// Token id.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// First 8 characters of the id.
    pub prefix: String,
    /// The token for `Authorization: Bearer`; it cannot be shown again.
    pub token: String,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Expiry time (UTC), or `null`.
    pub expires_at: Option<DateTime<Utc>>,
}

/// How often the last-use time of a token is written, to avoid a write on every request.
const LAST_USED_RESOLUTION: chrono::Duration = chrono::Duration::minutes(5);

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn not_found(id: &str) -> Error {
    Error::not_found("token.not_found", format!("no token with id {id:?}"))
        .with_hint("List your tokens with GET /auth/tokens to find the id.")
}

/// Columns read from `personal_access_tokens` to check a token: user id, token hash, and the
/// revocation, expiry and last-use times as text.
type PatRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Checks the row of a personal access token: known, hash equal, not revoked, not expired.
pub(crate) fn check_pat_row(
    conn: &Connection,
    claims: &Claims,
    token: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let row: Option<PatRow> = conn
        .query_row(
            "SELECT user_id, token_hash, CAST(revoked_at AS VARCHAR), CAST(expires_at AS VARCHAR), \
             CAST(last_used_at AS VARCHAR) FROM personal_access_tokens WHERE id = ?",
            [&claims.jti],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .optional()
        .map_err(|e| Error::state_db("reading a personal access token", &e))?;
    let Some((user_id, stored_hash, revoked_at, expires_at, last_used_at)) = row else {
        return Err(jwt::invalid_token());
    };

    let hash_matches = secrets_equal(&sha256_hex(token), &stored_hash);
    if !hash_matches || user_id != claims.sub {
        return Err(jwt::invalid_token());
    }
    if revoked_at.is_some() {
        return Err(
            Error::unauthenticated("auth.token_revoked", "the token has been revoked")
                .with_hint("Create a new personal access token with POST /auth/tokens."),
        );
    }
    let expires_at = expires_at.as_deref().map(from_db_time).transpose()?;
    if expires_at.is_some_and(|expires| expires <= now) {
        return Err(jwt::expired());
    }

    let stale = match last_used_at.as_deref().map(from_db_time).transpose()? {
        Some(last) => now - last >= LAST_USED_RESOLUTION,
        None => true,
    };
    if stale {
        conn.execute(
            "UPDATE personal_access_tokens SET last_used_at = ?::TIMESTAMP WHERE id = ?",
            duckdb::params![to_db_time(now), claims.jti],
        )
        .map_err(|e| Error::state_db("recording a token's last use", &e))?;
    }
    Ok(())
}

fn read_info(row: &duckdb::Row<'_>) -> duckdb::Result<[Option<String>; 7]> {
    Ok([
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ])
}

fn into_info(
    [id, name, prefix, created, expires, last_used, revoked]: [Option<String>; 7],
) -> Result<TokenInfo> {
    let time = |text: Option<String>| text.as_deref().map(from_db_time).transpose();
    Ok(TokenInfo {
        id: id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        prefix: prefix.unwrap_or_default(),
        created_at: time(created)?
            .ok_or_else(|| Error::internal("token row without created_at"))?,
        expires_at: time(expires)?,
        last_used_at: time(last_used)?,
        revoked_at: time(revoked)?,
    })
}

impl Instance {
    /// Creates a personal access token for the caller and returns it; the token itself is not
    /// stored and cannot be shown again.
    ///
    /// Fails with `token.pat_cannot_create` (403) when the caller authenticated with a personal
    /// access token, and with `token.invalid_name` or `token.invalid_expiry` (422).
    pub fn create_token(
        &self,
        actor: &Principal,
        request: &NewToken,
        client: Option<IpAddr>,
    ) -> Result<CreatedToken> {
        if actor.token_kind == TokenKind::Pat {
            return Err(Error::forbidden(
                "token.pat_cannot_create",
                "a personal access token cannot create other tokens",
            )
            .with_hint(
                "Log in with POST /auth/token and use the session token to create tokens.",
            ));
        }
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(Error::invalid(
                "token.invalid_name",
                format!("the token name must have 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        let days = request.expires_in_days.unwrap_or(DEFAULT_EXPIRES_IN_DAYS);
        if !(1..=MAX_EXPIRES_IN_DAYS).contains(&days) {
            return Err(Error::invalid(
                "token.invalid_expiry",
                format!(
                    "expires_in_days is {days}; it must be between 1 and {MAX_EXPIRES_IN_DAYS}, or null for no expiry"
                ),
            ));
        }

        let now = Utc::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = id[..8].to_string();
        let expires_at = request
            .expires_in_days
            .map(|days| now + chrono::Duration::days(i64::from(days)));
        let claims = Claims {
            sub: actor.user_id.clone(),
            role: actor.role.as_str().to_string(),
            typ: TokenKind::Pat,
            jti: id.clone(),
            iat: now.timestamp(),
            exp: expires_at.map(|t| t.timestamp()),
        };
        let token = self.jwt_keys().sign(&claims)?;
        // The row keeps whole seconds, like the token's `exp`, so both expire at the same moment.
        let expires_at = expires_at.and_then(|t| from_unix(t.timestamp()));

        self.state().with_conn(|conn| {
            conn.execute(
                "INSERT INTO personal_access_tokens (id, user_id, name, token_hash, prefix, created_at, expires_at) \
                 VALUES (?, ?, ?, ?, ?, ?::TIMESTAMP, ?::TIMESTAMP)",
                duckdb::params![id, actor.user_id, name, sha256_hex(&token), prefix, to_db_time(now), expires_at.map(to_db_time)],
            )
            .map_err(|e| Error::state_db("storing a personal access token", &e))?;
            audit::record_or_log(conn, &AuditEvent {
                user_id: Some(&actor.user_id),
                action: "token.create",
                resource: Some(&id),
                params: json!({"name": name, "expires_at": expires_at}),
                outcome: Outcome::Success,
                client_ip: client,
            });
            Ok(())
        })?;

        Ok(CreatedToken {
            id,
            name: name.to_string(),
            prefix,
            token,
            created_at: now,
            expires_at,
        })
    }

    /// Lists the caller's personal access tokens, newest first, including revoked and expired
    /// ones. Fails with `state.query_failed` on database errors.
    pub fn list_tokens(&self, actor: &Principal) -> Result<Vec<TokenInfo>> {
        self.state().with_conn(|conn| {
            let mut statement = conn
                .prepare(
                    "SELECT id, name, prefix, CAST(created_at AS VARCHAR), CAST(expires_at AS VARCHAR), \
                     CAST(last_used_at AS VARCHAR), CAST(revoked_at AS VARCHAR) \
                     FROM personal_access_tokens WHERE user_id = ? ORDER BY created_at DESC",
                )
                .map_err(|e| Error::state_db("listing tokens", &e))?;
            let rows = statement
                .query_map([&actor.user_id], read_info)
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(|e| Error::state_db("listing tokens", &e))?;
            rows.into_iter().map(into_info).collect()
        })
    }

    /// Revokes a personal access token; it fails from the next request on. Users revoke their own
    /// tokens and admins anyone's; revoking a revoked token changes nothing.
    ///
    /// Fails with `token.not_found` (404) when no token with `id` exists or, for a non-admin, it
    /// belongs to someone else.
    pub fn revoke_token(&self, actor: &Principal, id: &str, client: Option<IpAddr>) -> Result<()> {
        let result = self.state().with_conn(|conn| {
            let owner: Option<String> = conn
                .query_row("SELECT user_id FROM personal_access_tokens WHERE id = ?", [id], |row| row.get(0))
                .optional()
                .map_err(|e| Error::state_db("reading a token", &e))?;
            let allowed = match &owner {
                Some(owner) => *owner == actor.user_id || actor.role == Role::Admin,
                None => false,
            };
            if !allowed {
                return Err(not_found(id));
            }
            conn.execute(
                "UPDATE personal_access_tokens SET revoked_at = ?::TIMESTAMP WHERE id = ? AND revoked_at IS NULL",
                duckdb::params![to_db_time(Utc::now()), id],
            )
            .map_err(|e| Error::state_db("revoking a token", &e))?;
            audit::record_or_log(conn, &AuditEvent {
                user_id: Some(&actor.user_id),
                action: "token.revoke",
                resource: Some(id),
                params: json!({"owner": owner}),
                outcome: Outcome::Success,
                client_ip: client,
            });
            Ok(())
        });
        self.auth_cache().invalidate();
        result
    }
}
