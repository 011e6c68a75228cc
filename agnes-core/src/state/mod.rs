//! The state database `state/system.duckdb`: users, tokens, registry, sync records, audit log.
//!
//! One process owns the file. [`StateDb::open`] holds it open read-write for the lifetime of the
//! value, so DuckDB's file lock makes a second process fail to open it, and that failure is turned
//! into a message naming the holder. Calls are blocking; async callers run them on a blocking
//! thread and never keep the connection across an `.await`.

mod migrations;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDateTime, Utc};
use duckdb::{AccessMode, Config, Connection};

use crate::error::{Error, ErrorKind, Result};
pub use migrations::{CURRENT_SCHEMA_VERSION, MIGRATIONS, Migration};

/// The open state database and the schema version it was brought to.
#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateDb {
    /// Opens the state database at `path`, creating it when missing, and migrates it to
    /// [`CURRENT_SCHEMA_VERSION`].
    ///
    /// Before an existing database is migrated, a copy is written next to it as
    /// `system.duckdb.pre-migrate-v<old version>`. Fails with `state.newer_schema` (and leaves the
    /// file untouched) when a newer build wrote it, with `state.locked` when another process holds
    /// it, and with `state.migration_failed` when a migration fails (the database then stays at
    /// the last version that completed).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_at_version(path, CURRENT_SCHEMA_VERSION)
    }

    /// Opens the database like [`StateDb::open`] but migrates it only up to `target`.
    ///
    /// Tests use it to write databases of an older schema; the server always uses
    /// [`StateDb::open`]. Fails like [`StateDb::open`], and with `state.unknown_version` when
    /// `target` is not a known version.
    pub fn open_at_version(path: &Path, target: i64) -> Result<Self> {
        if !(1..=CURRENT_SCHEMA_VERSION).contains(&target) {
            return Err(Error::invalid(
                "state.unknown_version",
                format!("schema version {target} is not between 1 and {CURRENT_SCHEMA_VERSION}"),
            ));
        }

        let found = if path.exists() {
            probe_version(path)?
        } else {
            0
        };
        if found > CURRENT_SCHEMA_VERSION {
            return Err(newer_schema_error(path, found));
        }
        if found > 0 && found < target {
            copy_before_migration(path, found)?;
        }

        let conn = open_read_write(path)?;
        let db = Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        db.migrate(found, target)?;
        Ok(db)
    }

    /// Returns the path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection, holding the lock on it until `f` returns.
    ///
    /// Blocking: call it from a blocking thread. Returns what `f` returns.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.lock())
    }

    /// Reads the schema version recorded in the database.
    ///
    /// Fails with `state.query_failed` when the `schema_version` table cannot be read.
    pub fn schema_version(&self) -> Result<i64> {
        self.with_conn(|conn| read_version(conn))
    }

    /// Writes the write-ahead log into the database file, as done before shutdown so a later start
    /// has no log to replay. Fails with `state.query_failed`.
    pub fn checkpoint(&self) -> Result<()> {
        self.with_conn(|conn| {
            conn.execute_batch("CHECKPOINT")
                .map_err(|e| Error::state_db("checkpointing", &e))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-applied state behind, because every
        // multi-statement change runs in a DuckDB transaction, so a poisoned lock is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self, from: i64, target: i64) -> Result<()> {
        let mut conn = self.lock();
        for migration in MIGRATIONS
            .iter()
            .filter(|m| m.version > from && m.version <= target)
        {
            apply(&mut conn, migration).map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    "state.migration_failed",
                    format!(
                        "migrating {} to schema version {} failed: {e}",
                        self.path.display(),
                        migration.version
                    ),
                )
                .with_hint(format!(
                    "The database stays at schema version {}; the copy taken before migrating \
                     is next to it. Report this error with the log of this start.",
                    migration.version - 1
                ))
            })?;
            tracing::info!(
                version = migration.version,
                description = migration.description,
                "applied state database migration"
            );
        }
        Ok(())
    }
}

/// Formats a UTC time the way the state database stores `TIMESTAMP` values.
pub fn to_db_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Parses a `TIMESTAMP` value read as text (`CAST(col AS VARCHAR)`) as a UTC time.
///
/// Fails with `internal` when the text is not a DuckDB timestamp.
pub fn from_db_time(text: &str) -> Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .map(|naive| naive.and_utc())
        .map_err(|e| {
            Error::internal(format!(
                "invalid timestamp {text:?} in the state database: {e}"
            ))
        })
}

fn apply(conn: &mut Connection, migration: &Migration) -> std::result::Result<(), duckdb::Error> {
    let tx = conn.transaction()?;
    tx.execute_batch(migration.sql)?;
    tx.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?::TIMESTAMP)",
        duckdb::params![
            migration.version,
            migration.description,
            to_db_time(Utc::now())
        ],
    )?;
    tx.commit()
}

/// Reads the schema version of an existing file through a read-only connection, so a database of
/// a newer schema is inspected without being written.
fn probe_version(path: &Path) -> Result<i64> {
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .map_err(|e| Error::state_db("configuring a read-only open", &e))?;
    let conn = Connection::open_with_flags(path, config).map_err(|e| open_error(path, &e))?;
    read_version(&conn)
}

fn read_version(conn: &Connection) -> Result<i64> {
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM information_schema.tables \
             WHERE table_schema = 'main' AND table_name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| Error::state_db("looking for the schema_version table", &e))?;
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )
    .map_err(|e| Error::state_db("reading the schema version", &e))
}

fn open_read_write(path: &Path) -> Result<Connection> {
    let config = Config::default()
        .access_mode(AccessMode::ReadWrite)
        // Statically linked extensions (json, parquet) still load; nothing is fetched from the
        // network when a statement names an unknown extension.
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .map_err(|e| Error::state_db("configuring the connection", &e))?;
    Connection::open_with_flags(path, config).map_err(|e| open_error(path, &e))
}

fn open_error(path: &Path, source: &duckdb::Error) -> Error {
    let text = source.to_string();
    if text.contains("Could not set lock") || text.contains("Conflicting lock") {
        return Error::new(
            ErrorKind::Unavailable,
            "state.locked",
            format!(
                "the state database {} is in use by another process: {text}",
                path.display()
            ),
        )
        .with_hint(
            "Only one agnes server can use a data directory. Stop the other process, or start \
             this one with another --data-dir.",
        );
    }
    Error::new(
        ErrorKind::Unavailable,
        "state.open_failed",
        format!("cannot open the state database {}: {text}", path.display()),
    )
    .with_hint(
        "Check that the file is a DuckDB database written by this or an older agnes release.",
    )
}

fn newer_schema_error(path: &Path, found: i64) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "state.newer_schema",
        format!(
            "the state database {} has schema version {found}, written by a newer agnes release; \
             this release ({}) supports versions up to {CURRENT_SCHEMA_VERSION}",
            path.display(),
            env!("CARGO_PKG_VERSION"),
        ),
    )
    .with_hint(format!(
        "The file was left unchanged. Run an agnes release that supports schema version {found}, \
         or, to go back to this release, restore the copy the upgrade wrote next to it \
         (system.duckdb.pre-migrate-v{CURRENT_SCHEMA_VERSION} or older) and accept losing the \
         changes made since."
    ))
}

/// Copies the database file (and its write-ahead log, if any) before migrating it.
fn copy_before_migration(path: &Path, version: i64) -> Result<PathBuf> {
    let copy = with_suffix(path, &format!(".pre-migrate-v{version}"));
    fs::copy(path, &copy).map_err(|e| {
        Error::internal(format!(
            "cannot copy {} to {} before migrating it: {e}",
            path.display(),
            copy.display()
        ))
    })?;

    let wal = with_suffix(path, ".wal");
    if wal.exists() {
        let wal_copy = with_suffix(&copy, ".wal");
        fs::copy(&wal, &wal_copy).map_err(|e| {
            Error::internal(format!(
                "cannot copy {} before migrating: {e}",
                wal.display()
            ))
        })?;
    }
    tracing::info!(from_version = version, copy = %copy.display(), "copied state database before migrating it");
    Ok(copy)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests;
