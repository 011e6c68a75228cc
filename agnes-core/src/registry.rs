//! The table registry: which tables of which source a sync extracts, and who may read them.
//!
//! A table is public (every user reads it) or private (admins read it, and the users an admin
//! granted it to). Grants are read on every query, so a revoke takes effect with the next request.
//!
//! A registry row's id is its published table name, so the name analysts query, the name access
//! control checks and the name syncs write are one and the same (the original mixed ids and names
//! and denied people their own tables). Names must be identifiers when they are registered, not
//! only when they are published.

use std::net::IpAddr;

use chrono::Utc;
use contract_spec::QueryMode;
use duckdb::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent, Outcome};
use crate::auth::users::{self, User};
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::state::{StateDb, to_db_time};

/// One registered table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegisteredTable {
    /// Id, equal to the published name.
    pub id: String,
    /// Published table name.
    pub name: String,
    /// Source that offers it.
    pub source: String,
    /// The table as the source names it: a file name or `schema.table`.
    pub source_table: Option<String>,
    /// `local`, `remote` or `materialized`.
    #[schema(value_type = String)]
    pub query_mode: QueryMode,
    /// Description for the catalog.
    pub description: Option<String>,
    /// Whether every user may read it; otherwise only admins and users granted it.
    pub is_public: bool,
    /// Who registered it.
    pub registered_by: Option<String>,
    /// When it was registered, as text.
    pub registered_at: String,
}

/// A request to register a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct NewTable {
    /// Published table name; an identifier.
    pub name: String,
    /// Source that offers it.
    pub source: String,
    /// The table as the source names it; defaults to the name.
    #[serde(default)]
    pub source_table: Option<String>,
    /// Query mode; defaults to `local`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub query_mode: Option<QueryMode>,
    /// Description for the catalog.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether every user may read it; defaults to true.
    #[serde(default)]
    pub is_public: Option<bool>,
}

/// Changes to a registered table; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct TableUpdate {
    /// New source table.
    #[serde(default)]
    pub source_table: Option<String>,
    /// New query mode.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub query_mode: Option<QueryMode>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New visibility.
    #[serde(default)]
    pub is_public: Option<bool>,
}

const COLUMNS: &str = "id, name, source, source_table, query_mode, description, is_public, registered_by, \
                       CAST(registered_at AS VARCHAR)";

fn map_row(row: &duckdb::Row<'_>) -> duckdb::Result<RegisteredTable> {
    let mode: String = row.get(4)?;
    Ok(RegisteredTable {
        id: row.get(0)?,
        name: row.get(1)?,
        source: row.get(2)?,
        source_table: row.get(3)?,
        query_mode: QueryMode::parse(&mode).unwrap_or(QueryMode::Local),
        description: row.get(5)?,
        is_public: row.get(6)?,
        registered_by: row.get(7)?,
        registered_at: row.get(8)?,
    })
}

/// Every registered table, by name.
///
/// Fails with `state.query_failed` when the state database cannot be read.
pub fn list(state: &StateDb) -> Result<Vec<RegisteredTable>> {
    state.with_conn(|conn| {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM table_registry ORDER BY name"
            ))
            .map_err(|e| Error::state_db("listing the registry", &e))?;
        let rows = stmt
            .query_map([], map_row)
            .map_err(|e| Error::state_db("listing the registry", &e))?;
        rows.collect::<duckdb::Result<Vec<_>>>()
            .map_err(|e| Error::state_db("listing the registry", &e))
    })
}

/// The registered table `id`.
///
/// Fails with `registry.not_found` when there is none.
pub fn get(state: &StateDb, id: &str) -> Result<RegisteredTable> {
    state.with_conn(|conn| get_in(conn, id))
}

/// Reads the registered table `id` on an open connection; fails like [`get`].
fn get_in(conn: &Connection, id: &str) -> Result<RegisteredTable> {
    let id = id.to_lowercase();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM table_registry WHERE id = ?"
        ))
        .map_err(|e| Error::state_db("reading the registry", &e))?;
    let mut rows = stmt
        .query_map([&id], map_row)
        .map_err(|e| Error::state_db("reading the registry", &e))?;
    let found = rows
        .next()
        .transpose()
        .map_err(|e| Error::state_db("reading the registry", &e))?;
    found.ok_or_else(|| not_found(&id))
}

/// Registers `table`. Returns the stored row.
///
/// Fails with `registry.invalid_name` when the name or source is not an identifier and with
/// `registry.already_registered` when the name is taken (names ignore case).
pub fn register(
    state: &StateDb,
    table: &NewTable,
    registered_by: Option<&str>,
) -> Result<RegisteredTable> {
    for (what, value) in [("table name", &table.name), ("source", &table.source)] {
        if let Some(problem) = contract_spec::identifier::identifier_problem(value) {
            return Err(Error::invalid(
                "registry.invalid_name",
                format!("{what} {value:?} {problem}"),
            )
            .with_hint(format!(
                "Use letters, digits and underscores, starting with a letter; for example {:?}.",
                contract_spec::identifier::suggest_identifier(value)
            )));
        }
    }
    let id = table.name.to_lowercase();
    let mode = table.query_mode.unwrap_or(QueryMode::Local);
    let source_table = table
        .source_table
        .clone()
        .unwrap_or_else(|| table.name.clone());
    let inserted = state.with_conn(|conn| {
        conn.execute(
            "INSERT INTO table_registry (id, name, source, source_table, query_mode, description, is_public, \
             registered_by, registered_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMP \
             WHERE NOT EXISTS (SELECT 1 FROM table_registry WHERE id = ?)",
            params![
                id,
                table.name,
                table.source,
                source_table,
                mode.as_str(),
                table.description,
                table.is_public.unwrap_or(true),
                registered_by,
                to_db_time(Utc::now()),
                id
            ],
        )
        .map_err(|e| Error::state_db("registering a table", &e))
    })?;
    if inserted == 0 {
        return Err(Error::conflict(
            "registry.already_registered",
            format!("table {} is already registered", table.name),
        )
        .with_hint("Update it with PUT /api/admin/registry/{id}, or choose another name."));
    }
    get(state, &id)
}

/// Applies `update` to table `id`. Returns the stored row.
///
/// Fails with `registry.not_found`.
pub fn update(state: &StateDb, id: &str, update: &TableUpdate) -> Result<RegisteredTable> {
    let current = get(state, id)?;
    let mode = update.query_mode.unwrap_or(current.query_mode);
    state.with_conn(|conn| {
        conn.execute(
            "UPDATE table_registry SET source_table = ?, query_mode = ?, description = ?, is_public = ?, \
             updated_at = ?::TIMESTAMP WHERE id = ?",
            params![
                update.source_table.clone().or(current.source_table.clone()),
                mode.as_str(),
                update.description.clone().or(current.description.clone()),
                update.is_public.unwrap_or(current.is_public),
                to_db_time(Utc::now()),
                current.id
            ],
        )
        .map_err(|e| Error::state_db("updating a table", &e))
    })?;
    get(state, id)
}

/// Removes table `id` from the registry, with its grants, so a table registered later under the
/// same name starts without them. Its published data stays until the next sync of its source.
///
/// Fails with `registry.not_found`.
pub fn delete(state: &StateDb, id: &str) -> Result<()> {
    let id = id.to_lowercase();
    let deleted = state.with_conn(|conn| {
        let failed = |e: duckdb::Error| Error::state_db("deleting a table", &e);
        let tx = conn.transaction().map_err(failed)?;
        tx.execute("DELETE FROM table_grants WHERE table_id = ?", [&id])
            .map_err(failed)?;
        let deleted = tx
            .execute("DELETE FROM table_registry WHERE id = ?", [&id])
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        Ok(deleted)
    })?;
    if deleted == 0 {
        return Err(not_found(&id));
    }
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::not_found(
        "registry.not_found",
        format!("table {id} is not registered"),
    )
    .with_hint("GET /api/admin/registry lists the registered tables.")
}

/// One user's read access to one table, as `GET /api/admin/grants` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableGrant {
    /// Table id (its published name).
    pub table_id: String,
    /// User id.
    pub user_id: String,
    /// The user's email; `null` when the user no longer exists.
    pub email: Option<String>,
    /// User id of the admin who granted it.
    pub granted_by: Option<String>,
    /// When it was granted, as text (UTC).
    pub granted_at: String,
}

/// The result of granting a table to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantOutcome {
    /// The grant as stored.
    #[serde(flatten)]
    pub grant: TableGrant,
    /// Whether this call stored it; `false` when the user had it already.
    pub created: bool,
    /// Why the grant changes nothing at the moment, when that is so: the user is an admin, or
    /// the table is public, or the user is deactivated.
    pub notes: Vec<String>,
}

/// The result of revoking a table from a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokeOutcome {
    /// Table id.
    pub table_id: String,
    /// User id.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// Whether a grant was removed; `false` when there was none.
    pub revoked: bool,
    /// Why the user may still read the table, when they can: it is public, or they are an admin.
    pub notes: Vec<String>,
}

/// Finds a user by id, or by email when `user` contains `@`.
///
/// Fails with `user.invalid_email` for a malformed email and `user.not_found` for no such user.
fn resolve_user(conn: &Connection, user: &str) -> Result<User> {
    let user = user.trim();
    let found = if user.contains('@') {
        users::find_by(conn, "email", &users::normalize_email(user)?)?
    } else {
        users::find_by(conn, "id", user)?
    };
    found.map(|record| record.user).ok_or_else(|| {
        Error::not_found(
            "user.not_found",
            format!("no user with id or email {user:?}"),
        )
        .with_hint(
            "GET /api/users (or `agnes admin users list`) lists every user with id and email.",
        )
    })
}

/// Notes on why `user` reads `table` whether or not it is granted to them.
fn reads_anyway(table: &RegisteredTable, user: &User) -> Vec<String> {
    let mut notes = Vec::new();
    if user.role == Role::Admin {
        notes.push(format!(
            "{} is an admin and reads every table; a grant matters only if their role changes.",
            user.email
        ));
    }
    if table.is_public {
        notes.push(format!(
            "Table {id} is public, so every user reads it; a grant matters only while it is \
             private (PUT /api/admin/registry/{id} {{\"is_public\": false}}, or \
             `agnes admin registry update {id} --private`).",
            id = table.id
        ));
    }
    notes
}

const GRANT_COLUMNS: &str =
    "g.table_id, g.user_id, u.email, g.granted_by, CAST(g.granted_at AS VARCHAR)";

fn map_grant(row: &duckdb::Row<'_>) -> duckdb::Result<TableGrant> {
    Ok(TableGrant {
        table_id: row.get(0)?,
        user_id: row.get(1)?,
        email: row.get(2)?,
        granted_by: row.get(3)?,
        granted_at: row.get(4)?,
    })
}

/// Reads the grants, narrowed to `table_id` and to `user_id` when they are given.
fn read_grants(
    conn: &Connection,
    table_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Vec<TableGrant>> {
    let failed = |e: duckdb::Error| Error::state_db("reading table grants", &e);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {GRANT_COLUMNS} FROM table_grants g LEFT JOIN users u ON u.id = g.user_id \
             WHERE (?::VARCHAR IS NULL OR g.table_id = ?) AND (?::VARCHAR IS NULL OR g.user_id = ?) \
             ORDER BY g.table_id, u.email, g.user_id"
        ))
        .map_err(failed)?;
    let rows = stmt
        .query_map(params![table_id, table_id, user_id, user_id], map_grant)
        .map_err(failed)?;
    rows.collect::<duckdb::Result<Vec<_>>>().map_err(failed)
}

impl Instance {
    /// Lets `user` (an id or an email) read the registered table `table`, even while it is
    /// private. Granting twice changes nothing. Only admins may call it.
    ///
    /// Fails with `registry.not_found` for an unregistered table, `user.not_found` for an
    /// unknown user, `user.invalid_email` for a malformed email, and `auth.forbidden` for other
    /// roles. A grant to an admin, or of a public table, is stored and explained in the
    /// outcome's notes.
    pub fn grant_table(
        &self,
        actor: &Principal,
        table: &str,
        user: &str,
        client: Option<IpAddr>,
    ) -> Result<GrantOutcome> {
        actor.require_admin()?;
        self.state().with_conn(|conn| {
            let table = get_in(conn, table)?;
            let user = resolve_user(conn, user)?;
            let created = conn
                .execute(
                    "INSERT INTO table_grants (table_id, user_id, granted_by, granted_at) \
                     SELECT ?, ?, ?, ?::TIMESTAMP WHERE NOT EXISTS \
                     (SELECT 1 FROM table_grants WHERE table_id = ? AND user_id = ?)",
                    params![
                        table.id,
                        user.id,
                        actor.user_id,
                        to_db_time(Utc::now()),
                        table.id,
                        user.id
                    ],
                )
                .map_err(|e| Error::state_db("granting a table", &e))?
                > 0;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "table.grant",
                    resource: Some(&table.id),
                    params: json!({"user_id": user.id, "email": user.email, "created": created}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            let grant = read_grants(conn, Some(&table.id), Some(&user.id))?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::internal(format!(
                        "the grant of {} to {} is missing right after it was stored",
                        table.id, user.email
                    ))
                })?;
            let mut notes = reads_anyway(&table, &user);
            if !user.active {
                notes.push(format!(
                    "{} is deactivated and cannot log in, so the grant has no effect for now.",
                    user.email
                ));
            }
            Ok(GrantOutcome {
                grant,
                created,
                notes,
            })
        })
    }

    /// Takes back the grant of `table` to `user` (an id or an email). From the next request on,
    /// the user reads the table only if it is public. Revoking a grant that does not exist
    /// changes nothing. Only admins may call it.
    ///
    /// Fails like [`Instance::grant_table`].
    pub fn revoke_table(
        &self,
        actor: &Principal,
        table: &str,
        user: &str,
        client: Option<IpAddr>,
    ) -> Result<RevokeOutcome> {
        actor.require_admin()?;
        self.state().with_conn(|conn| {
            let table = get_in(conn, table)?;
            let user = resolve_user(conn, user)?;
            let revoked = conn
                .execute(
                    "DELETE FROM table_grants WHERE table_id = ? AND user_id = ?",
                    params![table.id, user.id],
                )
                .map_err(|e| Error::state_db("revoking a table", &e))?
                > 0;
            audit::record_or_log(
                conn,
                &AuditEvent {
                    user_id: Some(&actor.user_id),
                    action: "table.revoke",
                    resource: Some(&table.id),
                    params: json!({"user_id": user.id, "email": user.email, "revoked": revoked}),
                    outcome: Outcome::Success,
                    client_ip: client,
                },
            );
            let mut notes = Vec::new();
            if !revoked {
                notes.push(format!(
                    "{} had no grant of table {}; nothing changed.",
                    user.email, table.id
                ));
            }
            notes.extend(reads_anyway(&table, &user));
            Ok(RevokeOutcome {
                table_id: table.id,
                user_id: user.id,
                email: user.email,
                revoked,
                notes,
            })
        })
    }

    /// Lists table grants, by table then email: all of them, or those of one table, one user
    /// (an id or an email), or both. Only admins may call it.
    ///
    /// Fails with `registry.not_found` or `user.not_found` when a filter names nothing, and with
    /// `auth.forbidden` for other roles.
    pub fn list_grants(
        &self,
        actor: &Principal,
        table: Option<&str>,
        user: Option<&str>,
    ) -> Result<Vec<TableGrant>> {
        actor.require_admin()?;
        self.state().with_conn(|conn| {
            let table_id = table.map(|t| get_in(conn, t)).transpose()?.map(|t| t.id);
            let user_id = user
                .map(|u| resolve_user(conn, u))
                .transpose()?
                .map(|u| u.id);
            read_grants(conn, table_id.as_deref(), user_id.as_deref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::auth::session::BootstrapRequest;
    use crate::auth::users::NewUser;

    struct Fixture {
        _dir: tempfile::TempDir,
        instance: Instance,
        admin: Principal,
        analyst: User,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open_with(dir.path(), Settings::default()).unwrap();
        let request = BootstrapRequest {
            email: "admin@example.com".into(),
            name: String::new(),
            password: "long enough".into(),
        };
        let session = instance.bootstrap(&request, None).unwrap();
        let admin = instance.authenticate(&session.access_token).unwrap();
        let analyst = instance
            .create_user(
                &admin,
                NewUser {
                    email: "ana@example.com".into(),
                    name: String::new(),
                    role: Role::Analyst,
                    password: None,
                },
                None,
            )
            .unwrap();
        for (name, public) in [("salaries", false), ("open", true)] {
            let table = NewTable {
                name: name.into(),
                source: "files".into(),
                source_table: None,
                query_mode: None,
                description: None,
                is_public: Some(public),
            };
            register(instance.state(), &table, None).unwrap();
        }
        Fixture {
            _dir: dir,
            instance,
            admin,
            analyst,
        }
    }

    fn audit_actions(instance: &Instance) -> Vec<(String, String, String)> {
        instance
            .state()
            .with_conn(|conn| {
                let mut stmt = conn
                    .prepare(
                        "SELECT action, resource, CAST(params AS VARCHAR) FROM audit_log \
                         WHERE action LIKE 'table.%' ORDER BY occurred_at, rowid",
                    )
                    .unwrap();
                let rows = stmt
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .unwrap();
                Ok(rows.map(Result::unwrap).collect())
            })
            .unwrap()
    }

    #[test]
    fn grant_list_and_revoke() {
        let f = fixture();
        let granted = f
            .instance
            .grant_table(&f.admin, "Salaries", "ANA@example.com", None)
            .unwrap();
        assert!(granted.created);
        assert!(granted.notes.is_empty(), "{:?}", granted.notes);
        assert_eq!(granted.grant.table_id, "salaries");
        assert_eq!(granted.grant.user_id, f.analyst.id);
        assert_eq!(granted.grant.email.as_deref(), Some("ana@example.com"));
        assert_eq!(
            granted.grant.granted_by.as_deref(),
            Some(f.admin.user_id.as_str())
        );

        let again = f
            .instance
            .grant_table(&f.admin, "salaries", &f.analyst.id, None)
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.grant, granted.grant);

        let all = f.instance.list_grants(&f.admin, None, None).unwrap();
        assert_eq!(all, vec![granted.grant.clone()]);
        let by_user = f
            .instance
            .list_grants(&f.admin, None, Some("ana@example.com"))
            .unwrap();
        assert_eq!(by_user, all);
        let by_table = f
            .instance
            .list_grants(&f.admin, Some("open"), None)
            .unwrap();
        assert!(by_table.is_empty());

        let revoked = f
            .instance
            .revoke_table(&f.admin, "salaries", "ana@example.com", None)
            .unwrap();
        assert!(revoked.revoked);
        assert!(revoked.notes.is_empty(), "{:?}", revoked.notes);
        let twice = f
            .instance
            .revoke_table(&f.admin, "salaries", "ana@example.com", None)
            .unwrap();
        assert!(!twice.revoked);
        assert_eq!(twice.notes.len(), 1, "{:?}", twice.notes);
        assert!(
            f.instance
                .list_grants(&f.admin, None, None)
                .unwrap()
                .is_empty()
        );

        let actions: Vec<(String, String, bool)> = audit_actions(&f.instance)
            .into_iter()
            .map(|(action, resource, params)| {
                let params: serde_json::Value = serde_json::from_str(&params).unwrap();
                assert_eq!(params["user_id"], f.analyst.id.as_str());
                let changed = params["created"]
                    .as_bool()
                    .or(params["revoked"].as_bool())
                    .unwrap();
                (action, resource, changed)
            })
            .collect();
        let expected = [
            ("table.grant", true),
            ("table.grant", false),
            ("table.revoke", true),
            ("table.revoke", false),
        ];
        assert_eq!(
            actions,
            expected
                .iter()
                .map(|(a, c)| (a.to_string(), "salaries".to_string(), *c))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn grant_errors_name_the_value() {
        let f = fixture();
        let error = f
            .instance
            .grant_table(&f.admin, "nope", "ana@example.com", None)
            .unwrap_err();
        assert_eq!(error.code, "registry.not_found");
        assert!(error.message.contains("nope"), "{}", error.message);

        for user in ["nobody@example.com", "0123abcd"] {
            let error = f
                .instance
                .grant_table(&f.admin, "salaries", user, None)
                .unwrap_err();
            assert_eq!(error.code, "user.not_found");
            assert!(error.message.contains(user), "{}", error.message);
            assert!(error.hint.is_some());
        }
        let error = f
            .instance
            .grant_table(&f.admin, "salaries", "ana@", None)
            .unwrap_err();
        assert_eq!(error.code, "user.invalid_email");
        let error = f
            .instance
            .list_grants(&f.admin, Some("nope"), None)
            .unwrap_err();
        assert_eq!(error.code, "registry.not_found");

        let analyst = Principal {
            user_id: f.analyst.id.clone(),
            email: f.analyst.email.clone(),
            role: Role::Analyst,
            token_kind: crate::auth::TokenKind::Session,
        };
        let forbidden = [
            f.instance
                .grant_table(&analyst, "salaries", &analyst.user_id, None)
                .unwrap_err(),
            f.instance
                .revoke_table(&analyst, "salaries", &analyst.user_id, None)
                .unwrap_err(),
            f.instance.list_grants(&analyst, None, None).unwrap_err(),
        ];
        for error in forbidden {
            assert_eq!(error.code, "auth.forbidden");
        }
        assert!(audit_actions(&f.instance).is_empty());
    }

    #[test]
    fn grants_that_change_nothing_say_why() {
        let f = fixture();
        let to_admin = f
            .instance
            .grant_table(&f.admin, "salaries", "admin@example.com", None)
            .unwrap();
        assert!(to_admin.created);
        assert_eq!(to_admin.notes.len(), 1);
        assert!(
            to_admin.notes[0].contains("is an admin"),
            "{:?}",
            to_admin.notes
        );

        let public = f
            .instance
            .grant_table(&f.admin, "open", "ana@example.com", None)
            .unwrap();
        assert!(public.created);
        assert_eq!(public.notes.len(), 1);
        assert!(public.notes[0].contains("is public"), "{:?}", public.notes);
        let revoked = f
            .instance
            .revoke_table(&f.admin, "open", "ana@example.com", None)
            .unwrap();
        assert!(revoked.revoked);
        assert!(
            revoked.notes[0].contains("is public"),
            "{:?}",
            revoked.notes
        );
    }

    #[test]
    fn deleting_a_table_drops_its_grants() {
        let f = fixture();
        f.instance
            .grant_table(&f.admin, "salaries", "ana@example.com", None)
            .unwrap();
        delete(f.instance.state(), "salaries").unwrap();
        let table = NewTable {
            name: "salaries".into(),
            source: "files".into(),
            source_table: None,
            query_mode: None,
            description: None,
            is_public: Some(false),
        };
        register(f.instance.state(), &table, None).unwrap();
        assert!(
            f.instance
                .list_grants(&f.admin, None, None)
                .unwrap()
                .is_empty()
        );
    }
}
