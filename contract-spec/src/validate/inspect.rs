//! A sandboxed, read-only DuckDB connection onto one extract.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use duckdb::{Config, Connection, params};

use crate::finding::{Code, Finding};
use crate::identifier::{quote_identifier, quote_literal};

/// Alias the extract is attached under when the source name itself is not a safe identifier.
const FALLBACK_ALIAS: &str = "extract_under_validation";

/// One column as `information_schema.columns` describes it.
#[derive(Debug, Clone)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// One table or view of the extract's `main` schema.
#[derive(Debug, Clone)]
pub(crate) struct ObjectInfo {
    pub name: String,
    pub is_view: bool,
}

/// An in-memory DuckDB database with the extract attached read-only.
pub(crate) struct Inspector {
    conn: Connection,
    alias: String,
    /// Canonical path of the source folder: the only folder views may read from.
    pub source_dir: PathBuf,
    /// The source folder's absolute path as given, before symbolic links are resolved.
    pub source_dir_given: PathBuf,
}

impl Inspector {
    /// Attaches the extract at `path` read-only under `source` (or a fallback alias when `source`
    /// is unsafe), then locks the connection down to the source folder.
    pub fn open(path: &Path, source: &str) -> Result<Inspector, Finding> {
        let absolute = std::path::absolute(path).map_err(|e| open_failed(path, &e.to_string()))?;
        let source_dir_given = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        let source_dir = source_dir_given
            .canonicalize()
            .unwrap_or_else(|_| source_dir_given.clone());
        let alias = if crate::identifier::is_identifier(source) && !is_reserved_catalog(source) {
            source.to_string()
        } else {
            FALLBACK_ALIAS.to_string()
        };

        let conn = Config::default()
            .enable_autoload_extension(false)
            .and_then(|config| config.with("temp_directory", ""))
            .and_then(|config| config.threads(2))
            .and_then(Connection::open_in_memory_with_flags)
            .map_err(|e| open_failed(path, &e.to_string()))?;

        let attach = format!(
            "ATTACH {} AS {} (READ_ONLY)",
            quote_literal(&absolute.to_string_lossy()),
            quote_identifier(&alias)
        );
        conn.execute_batch(&attach)
            .map_err(|e| open_failed(path, &e.to_string()))?;

        let mut allowed: Vec<String> = [&source_dir, &source_dir_given]
            .iter()
            .map(|dir| quote_literal(&format!("{}/", dir.to_string_lossy().trim_end_matches('/'))))
            .collect();
        allowed.dedup();
        let sandbox = format!(
            "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
            allowed.join(", ")
        );
        conn.execute_batch(&sandbox)
            .map_err(|e| open_failed(path, &e.to_string()))?;

        Ok(Inspector {
            conn,
            alias,
            source_dir,
            source_dir_given,
        })
    }

    /// Columns of `table` in ordinal order, or `None` when the extract has no such table or view.
    /// The name is matched ignoring case, as DuckDB resolves names.
    pub fn columns(&self, table: &str) -> duckdb::Result<Option<Vec<ColumnInfo>>> {
        let mut stmt = self.conn.prepare(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns \
             WHERE table_catalog = ? AND table_schema = 'main' AND lower(table_name) = lower(?) \
             ORDER BY ordinal_position",
        )?;
        let columns: Vec<ColumnInfo> = stmt
            .query_map(params![self.alias, table], |row| {
                Ok(ColumnInfo {
                    name: row.get(0)?,
                    data_type: row.get(1)?,
                    nullable: row.get(2)?,
                })
            })?
            .collect::<duckdb::Result<_>>()?;
        Ok(if columns.is_empty() {
            None
        } else {
            Some(columns)
        })
    }

    /// Every table and view of the extract's `main` schema, keyed by lowercase name.
    pub fn objects(&self) -> duckdb::Result<HashMap<String, ObjectInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT table_name, table_type = 'VIEW' FROM information_schema.tables \
             WHERE table_catalog = ? AND table_schema = 'main'",
        )?;
        let rows = stmt.query_map(params![self.alias], |row| {
            Ok(ObjectInfo {
                name: row.get(0)?,
                is_view: row.get(1)?,
            })
        })?;
        let mut objects = HashMap::new();
        for object in rows {
            let object = object?;
            objects.insert(object.name.to_lowercase(), object);
        }
        Ok(objects)
    }

    /// The `CREATE VIEW` statement of `view`, as DuckDB stored it.
    pub fn view_sql(&self, view: &str) -> duckdb::Result<Option<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main' \
             AND lower(view_name) = lower(?)",
        )?;
        let mut rows = stmt.query(params![self.alias, view])?;
        match rows.next()? {
            Some(row) => row.get(0),
            None => Ok(None),
        }
    }

    /// Parses `sql` with DuckDB's own parser and returns its JSON syntax tree, or `None` when the
    /// text is not one SELECT statement.
    pub fn parse_select(&self, sql: &str) -> Option<serde_json::Value> {
        let json: String = self
            .conn
            .query_row(
                "SELECT json_serialize_sql(?::VARCHAR)",
                params![sql],
                |row| row.get(0),
            )
            .ok()?;
        let tree: serde_json::Value = serde_json::from_str(&json).ok()?;
        let ok = tree.get("error") == Some(&serde_json::Value::Bool(false));
        let single = tree
            .get("statements")
            .and_then(|s| s.as_array())
            .is_some_and(|s| s.len() == 1);
        (ok && single).then_some(tree)
    }

    /// Runs `SELECT * FROM <catalog>.<table> LIMIT 0` and returns DuckDB's error message on failure.
    pub fn resolve(&self, table: &str) -> Result<(), String> {
        let sql = format!(
            "SELECT * FROM {}.{} LIMIT 0",
            quote_identifier(&self.alias),
            quote_identifier(table)
        );
        let run = || -> duckdb::Result<()> {
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        };
        run().map_err(|e| e.to_string())
    }

    /// Selects `select_list` from `table` of the extract and maps each row.
    pub fn rows<T>(
        &self,
        select_list: &str,
        table: &str,
        map: impl FnMut(&duckdb::Row<'_>) -> duckdb::Result<T>,
    ) -> duckdb::Result<Vec<T>> {
        let sql = format!(
            "SELECT {select_list} FROM {}.{}",
            quote_identifier(&self.alias),
            quote_identifier(table)
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], map)?;
        rows.collect()
    }

    /// Expands a glob pattern inside the allowed source folder; returns the number of matches.
    pub fn glob_count(&self, pattern: &str) -> duckdb::Result<i64> {
        self.conn
            .query_row("SELECT count(*) FROM glob(?)", params![pattern], |row| {
                row.get(0)
            })
    }
}

/// Catalog names DuckDB reserves for itself.
pub(crate) fn is_reserved_catalog(name: &str) -> bool {
    ["main", "memory", "system", "temp"].contains(&name.to_lowercase().as_str())
}

fn open_failed(path: &Path, detail: &str) -> Finding {
    Finding::new(
        Code::FileUnreadable,
        format!("DuckDB cannot open {} read-only: {detail}", path.display()),
        "Check that the file is a complete DuckDB database written by DuckDB 1.4 or older, that it is \
         readable, and that no process holds it open for writing.",
    )
}
