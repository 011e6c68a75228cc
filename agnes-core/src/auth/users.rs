//! Users and the admin's user management.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use duckdb::{Connection, OptionalExt, Row};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{Principal, Role, password};
use crate::audit::{self, AuditEvent, Outcome};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::state::{from_db_time, to_db_time};

/// Maximum email length in bytes (the limit of an SMTP path).
const MAX_EMAIL_LEN: usize = 254;

/// A user as shown to admins; never includes the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// User id.
    pub id: String,
    /// Email, stored in lower case.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether the user may log in; deactivated users' tokens stop working at once.
    pub active: bool,
    /// Whether a password is set; a user without one cannot log in with a password.
    pub has_password: bool,
    /// Creation time (UTC).
    pub created_at: DateTime<Utc>,
    /// Deactivation time (UTC), if deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// A user row including the fields only the auth code reads.
#[derive(Debug, Clone)]
pub(crate) struct UserRecord {
    pub user: User,
    pub password_hash: Option<String>,
    pub password_changed_at: Option<DateTime<Utc>>,
}

/// The request to create a user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewUser {
    /// Email; must be unique.
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Role; `analyst` when absent.
    #[serde(default = "default_role")]
    pub role: Role,
    /// Initial password; without one the user cannot log in until an admin resets it.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_role() -> Role {
    Role::Analyst
}

const USER_COLUMNS: &str = "id, email, name, role, active, password_hash IS NOT NULL, \
     CAST(created_at AS VARCHAR), CAST(deactivated_at AS VARCHAR), password_hash, \
     CAST(password_changed_at AS VARCHAR)";

/// Normalizes and checks an email address: trimmed, lower case, one `@`, a dotted domain.
///
/// Fails with `user.invalid_email` and says what is wrong.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let invalid = |why: &str| {
        Error::invalid(
            "user.invalid_email",
            format!("invalid email {email:?}: {why}"),
        )
        .with_hint("Use an address of the form name@example.com.")
    };
    if email.is_empty() {
        return Err(invalid("it is empty"));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(invalid("it is longer than 254 bytes"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it contains whitespace"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("it has no @"));
    };
    if local.is_empty() || domain.contains('@') {
        return Err(invalid("it needs exactly one @ with a name before it"));
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(invalid("the domain after @ needs a dot, as in example.com"));
    }
    Ok(email)
}

/// A user row as read from the database, before its role and times are parsed.
struct RawUser {
    id: String,
    email: String,
    name: String,
    role: String,
    active: bool,
    has_password: bool,
    created_at: String,
    deactivated_at: Option<String>,
    password_hash: Option<String>,
    password_changed_at: Option<String>,
}

fn read_raw(row: &Row<'_>) -> duckdb::Result<RawUser> {
    Ok(RawUser {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role: row.get(3)?,
        active: row.get(4)?,
        has_password: row.get(5)?,
        created_at: row.get(6)?,
        deactivated_at: row.get(7)?,
        password_hash: row.get(8)?,
        password_changed_at: row.get(9)?,
    })
}

impl RawUser {
    fn into_record(self) -> Result<UserRecord> {
        Ok(UserRecord {
            user: User {
                id: self.id,
                email: self.email,
                name: self.name,
                role: Role::parse(&self.role)?,
                active: self.active,
                has_password: self.has_password,
                created_at: from_db_time(&self.created_at)?,
                deactivated_at: optional_time(self.deactivated_at.as_deref())?,
            },
            password_hash: self.password_hash,
            password_changed_at: optional_time(self.password_changed_at.as_deref())?,
        })
    }
}

fn optional_time(text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    text.map(from_db_time).transpose()
}

/// Finds a user by a column (`id` or `email`).
pub(crate) fn find_by(conn: &Connection, column: &str, value: &str) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?");
    let raw = conn
        .query_row(&sql, [value], read_raw)
        .optional()
        .map_err(|e| Error::state_db("reading a user", &e))?;
    raw.map(RawUser::into_record).transpose()
}

fn find_by_id_or_404(conn: &Connection, id: &str) -> Result<UserRecord> {
    find_by(conn, "id", id)?.ok_or_else(|| {
        Error::not_found("user.not_found", format!("no user with id {id:?}"))
            .with_hint("List users with GET /api/users (`agnes admin users list`) to find the id.")
    })
}

/// Returns whether any user has a password, which ends setup mode and disables bootstrap.
pub(crate) fn any_password_set(conn: &Connection) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) > 0 FROM users WHERE password_hash IS NOT NULL",
        [],
        |row| row.get(0),
    )
    .map_err(|e| Error::state_db("counting users with a password", &e))
}

/// Inserts a user row and returns its id.
pub(crate) fn insert(
    conn: &Connection,
    email: &str,
    name: &str,
    role: Role,
    password_hash: Option<&str>,
) -> Result<String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let now = to_db_time(Utc::now());
    let changed = password_hash.map(|_| now.clone());
    conn.execute(
        "INSERT INTO users (id, email, name, role, password_hash, password_changed_at, active, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?::TIMESTAMP, true, ?::TIMESTAMP, ?::TIMESTAMP)",
        duckdb::params![id, email, name, role.as_str(), password_hash, changed, now, now],
    )
    .map_err(|e| Error::state_db("inserting a user", &e))?;
    Ok(id)
}

/// Sets a user's password hash and the time it changed, which invalidates older sessions.
pub(crate) fn set_password_hash(conn: &Connection, id: &str, hash: &str) -> Result<()> {
    let now = to_db_time(Utc::now());
    conn.execute(
        "UPDATE users SET password_hash = ?, password_changed_at = ?::TIMESTAMP, updated_at = ?::TIMESTAMP WHERE id = ?",
        duckdb::params![hash, now, now, id],
    )
    .map_err(|e| Error::state_db("setting a password", &e))?;
    Ok(())
}

fn count_active_admins(conn: &Connection) -> Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND active",
        [],
        |row| row.get(0),
    )
    .map_err(|e| Error::state_db("counting admins", &e))
}

fn last_admin_error() -> Error {
    Error::conflict(
        "user.last_admin",
        "this is the last active admin; the instance would have no admin left",
    )
    .with_hint("Make another user an admin first.")
}

impl Instance {
    /// Lists all users, oldest first. Only admins may call it.
    ///
    /// Fails with `auth.forbidden` for other roles and `state.query_failed` on database errors.
    pub fn list_users(&self, actor: &Principal) -> Result<Vec<User>> {
        actor.require_admin()?;
        self.state().with_conn(|conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, email");
            let mut statement = conn
                .prepare(&sql)
                .map_err(|e| Error::state_db("listing users", &e))?;
            let raw = statement
                .query_map([], read_raw)
                .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
                .map_err(|e| Error::state_db("listing users", &e))?;
            raw.into_iter()
                .map(|raw| raw.into_record().map(|record| record.user))
                .collect()
        })
    }

    /// Creates a user. Only admins may call it.
    ///
    /// Fails with `user.invalid_email` or a password error (422), `user.email_taken` (409) when the
    /// email exists, and `auth.forbidden` for other roles.
    pub fn create_user(
        &self,
        actor: &Principal,
        request: NewUser,
        client: Option<IpAddr>,
    ) -> Result<User> {
        actor.require_admin()?;
        let email = normalize_email(&request.email)?;
        let hash = match &request.password {
            Some(pw) => {
                password::validate(pw)?;
                Some(password::hash(pw)?)
            }
            None => None,
        };

        self.state().with_conn(|conn| {
            if find_by(conn, "email", &email)?.is_some() {
                return Err(Error::conflict(
                    "user.email_taken",
                    format!("a user with email {email:?} already exists"),
                ));
            }
            let id = insert(
                conn,
                &email,
                request.name.trim(),
                request.role,
                hash.as_deref(),
            )?;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "user.create",
                    resource: Some(&id),
                    params: json!({"email": email, "role": request.role.as_str()}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            Ok(find_by_id_or_404(conn, &id)?.user)
        })
    }

    /// Changes a user's role. Only admins may call it.
    ///
    /// Fails with `user.not_found`, with `user.last_admin` when it would leave no active admin,
    /// and with `auth.forbidden` for other roles.
    pub fn set_user_role(
        &self,
        actor: &Principal,
        id: &str,
        role: Role,
        client: Option<IpAddr>,
    ) -> Result<User> {
        actor.require_admin()?;
        let result = self.state().with_conn(|conn| {
            let record = find_by_id_or_404(conn, id)?;
            let demotes_admin =
                record.user.role == Role::Admin && role != Role::Admin && record.user.active;
            if demotes_admin && count_active_admins(conn)? <= 1 {
                return Err(last_admin_error());
            }
            conn.execute(
                "UPDATE users SET role = ?, updated_at = ?::TIMESTAMP WHERE id = ?",
                duckdb::params![role.as_str(), to_db_time(Utc::now()), id],
            )
            .map_err(|e| Error::state_db("changing a role", &e))?;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "user.set_role",
                    resource: Some(id),
                    params: json!({"from": record.user.role.as_str(), "to": role.as_str()}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            Ok(find_by_id_or_404(conn, id)?.user)
        });
        self.auth_cache().invalidate();
        result
    }

    /// Deactivates a user; their sessions and tokens fail from the next request on. Only admins
    /// may call it.
    ///
    /// Fails with `user.not_found`, with `user.last_admin` when it would leave no active admin,
    /// and with `auth.forbidden` for other roles.
    pub fn deactivate_user(
        &self,
        actor: &Principal,
        id: &str,
        client: Option<IpAddr>,
    ) -> Result<User> {
        actor.require_admin()?;
        let result = self.state().with_conn(|conn| {
            let record = find_by_id_or_404(conn, id)?;
            if record.user.role == Role::Admin && record.user.active && count_active_admins(conn)? <= 1 {
                return Err(last_admin_error());
            }
            let now = to_db_time(Utc::now());
            conn.execute(
                "UPDATE users SET active = false, deactivated_at = ?::TIMESTAMP, updated_at = ?::TIMESTAMP WHERE id = ?",
                duckdb::params![now, now, id],
            )
            .map_err(|e| Error::state_db("deactivating a user", &e))?;
            audit::record_or_log(conn, &AuditEvent {
                user_id: Some(&actor.user_id),
                action: "user.deactivate",
                resource: Some(id),
                params: json!({}),
                outcome: Outcome::Success,
                client_ip: client,
            });
            Ok(find_by_id_or_404(conn, id)?.user)
        });
        self.auth_cache().invalidate();
        result
    }

    /// Activates a deactivated user again: they can log in from the next request on, and their
    /// unexpired sessions and personal access tokens work again (reset the password to end the
    /// sessions). Activating an active user changes nothing. Only admins may call it.
    ///
    /// Fails with `user.not_found` and with `auth.forbidden` for other roles.
    pub fn activate_user(
        &self,
        actor: &Principal,
        id: &str,
        client: Option<IpAddr>,
    ) -> Result<User> {
        actor.require_admin()?;
        let result = self.state().with_conn(|conn| {
            let record = find_by_id_or_404(conn, id)?;
            if record.user.active {
                return Ok(record.user);
            }
            conn.execute(
                "UPDATE users SET active = true, deactivated_at = NULL, updated_at = ?::TIMESTAMP WHERE id = ?",
                duckdb::params![to_db_time(Utc::now()), id],
            )
            .map_err(|e| Error::state_db("activating a user", &e))?;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "user.activate",
                    resource: Some(id),
                    params: json!({}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            Ok(find_by_id_or_404(conn, id)?.user)
        });
        self.auth_cache().invalidate();
        result
    }

    /// Sets a new password for a user; their older sessions stop working. Only admins may call it.
    ///
    /// Fails with a password error (422), `user.not_found`, or `auth.forbidden` for other roles.
    pub fn reset_user_password(
        &self,
        actor: &Principal,
        id: &str,
        new_password: &str,
        client: Option<IpAddr>,
    ) -> Result<()> {
        actor.require_admin()?;
        password::validate(new_password)?;
        let hash = password::hash(new_password)?;
        let result = self.state().with_conn(|conn| {
            find_by_id_or_404(conn, id)?;
            set_password_hash(conn, id, &hash)?;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "user.reset_password",
                    resource: Some(id),
                    params: json!({}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            Ok(())
        });
        self.auth_cache().invalidate();
        result
    }
}
