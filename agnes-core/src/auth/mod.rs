//! Authentication and user management.
//!
//! - [`password`] hashes and verifies passwords with Argon2id.
//! - [`jwt`] signs and checks HS256 tokens; a token says who sent it, never what they may do.
//! - [`session`] holds the rules for the first admin (bootstrap), login and checking a bearer
//!   token on each request: the user, role, activity and token revocation are read from the state
//!   database every time, so a revoked token or a deactivated user fails at once.
//! - [`tokens`] manages personal access tokens, stored as SHA-256 hashes.
//! - [`users`] is the admin's user management.
//! - [`rate_limit`] limits login and bootstrap attempts per client address.

pub mod cache;
pub mod jwt;
pub mod password;
pub mod rate_limit;
pub mod session;
pub mod tokens;
pub mod users;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// A user's role; each role may do everything the roles below it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the catalog and queries tables.
    Viewer,
    /// A viewer who may also download tables and run heavier work.
    Analyst,
    /// Manages users, sources and the instance.
    Admin,
}

impl Role {
    /// Returns the name stored in the database and sent in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored or requested role name.
    ///
    /// Fails with `user.invalid_role` for any name other than `admin`, `analyst` or `viewer`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "viewer" => Ok(Self::Viewer),
            "analyst" => Ok(Self::Analyst),
            "admin" => Ok(Self::Admin),
            other => Err(Error::invalid(
                "user.invalid_role",
                format!("unknown role {other:?}; expected admin, analyst or viewer"),
            )),
        }
    }
}

/// Kind of bearer token, stored in the `typ` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Issued by login or bootstrap; expires after a day.
    Session,
    /// A personal access token, stored hashed and revocable.
    Pat,
}

/// The authenticated caller of a request, as read from the state database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// User email.
    pub email: String,
    /// Current role from the database.
    pub role: Role,
    /// Kind of token the request carried.
    pub token_kind: TokenKind,
}

impl Principal {
    /// Checks that the caller is an admin.
    ///
    /// Fails with `auth.forbidden` for any other role.
    pub fn require_admin(&self) -> Result<()> {
        if self.role == Role::Admin {
            return Ok(());
        }
        Err(
            Error::forbidden("auth.forbidden", "this action requires the admin role")
                .with_hint("Ask an admin of this instance to do it or to change your role."),
        )
    }
}
