//! The table registry: which tables of which source a sync extracts, and who may read them.
//!
//! A registry row's id is its published table name, so the name analysts query, the name access
//! control checks and the name syncs write are one and the same (the original mixed ids and names
//! and denied people their own tables). Names must be identifiers when they are registered, not
//! only when they are published.

use chrono::Utc;
use contract_spec::QueryMode;
use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
    let id = id.to_lowercase();
    let found = state.with_conn(|conn| {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM table_registry WHERE id = ?"
            ))
            .map_err(|e| Error::state_db("reading the registry", &e))?;
        let mut rows = stmt
            .query_map([&id], map_row)
            .map_err(|e| Error::state_db("reading the registry", &e))?;
        rows.next()
            .transpose()
            .map_err(|e| Error::state_db("reading the registry", &e))
    })?;
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

/// Removes table `id` from the registry. Its published data stays until the next sync of its source.
///
/// Fails with `registry.not_found`.
pub fn delete(state: &StateDb, id: &str) -> Result<()> {
    let id = id.to_lowercase();
    let deleted = state.with_conn(|conn| {
        conn.execute("DELETE FROM table_registry WHERE id = ?", [&id])
            .map_err(|e| Error::state_db("deleting a table", &e))
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
