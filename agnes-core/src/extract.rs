//! Writing extracts so that readers never see a broken or half-written one.
//!
//! Built-in connectors write each new extract into a fresh version folder,
//! `extracts/.<source>.v<stamp>/`, whose dot-name hides it from scans. [`PendingExtract::publish`]
//! validates the finished folder with the contract validator and only then points the symbolic
//! link `extracts/<source>` at it, with one atomic rename. A failed or invalid write leaves the
//! link, and so the previous data, untouched. Superseded versions stay on disk until
//! [`ExtractStore::collect_garbage`] finds that no published analytics database still reads them,
//! so queries that started before a sync finish on the data they started with.
//!
//! Standalone connectors may instead write `extracts/<source>/` as a real folder; they write it
//! under a dot-name and rename it into place themselves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use contract_spec::identifier::{quote_identifier, quote_literal};
use contract_spec::spec::{DATA_FOLDER, EXTRACT_FILE};
use contract_spec::{QueryMode, Report};
use duckdb::{Config, Connection, params};

use crate::error::{Error, ErrorKind, Result};

/// The `_meta` DDL every built-in connector writes.
const META_DDL: &str = "CREATE TABLE _meta (table_name VARCHAR NOT NULL, description VARCHAR, \
     rows BIGINT, size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR NOT NULL)";

/// The `_remote_attach` DDL every built-in connector writes.
const REMOTE_ATTACH_DDL: &str = "CREATE TABLE _remote_attach (alias VARCHAR NOT NULL, \
     extension VARCHAR NOT NULL, url VARCHAR NOT NULL, token_env VARCHAR)";

/// Counter that keeps version folder names unique within one process.
static VERSION_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The `extracts/` folder of a data directory.
#[derive(Debug, Clone)]
pub struct ExtractStore {
    root: PathBuf,
}

/// Size and row count of one table a writer added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// Published table name.
    pub name: String,
    /// Query mode of the `_meta` row.
    pub query_mode: QueryMode,
    /// Rows written (0 for remote tables).
    pub rows: i64,
    /// Bytes of the Parquet file (0 for remote tables).
    pub size_bytes: i64,
}

impl ExtractStore {
    /// Wraps the `extracts/` folder at `root`; the folder must exist.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The `extracts/` folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The published folder of `source`: `extracts/<source>`, a link or a real folder.
    pub fn source_dir(&self, source: &str) -> PathBuf {
        self.root.join(source)
    }

    /// The published extract file of `source`.
    pub fn extract_path(&self, source: &str) -> PathBuf {
        self.source_dir(source).join(EXTRACT_FILE)
    }

    /// Names of the published sources, sorted: every entry of `extracts/` that is a folder (or a
    /// link to one) and whose name does not start with `.`.
    ///
    /// Fails with `extract.list_failed` when the folder cannot be read.
    pub fn sources(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| io_error("extract.list_failed", &self.root, &e))?;
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Starts a new version of `source`'s extract in a hidden version folder.
    ///
    /// Fails with `extract.write_failed` when the folder or the DuckDB file cannot be created.
    pub fn writer(&self, source: &str) -> Result<ExtractWriter> {
        let dir = self.new_version_dir(source)?;
        std::fs::create_dir_all(dir.join(DATA_FOLDER))
            .map_err(|e| io_error("extract.write_failed", &dir, &e))?;

        let conn = Config::default()
            .enable_autoload_extension(false)
            .and_then(|config| config.with("autoinstall_known_extensions", "false"))
            .and_then(|config| Connection::open_with_flags(dir.join(EXTRACT_FILE), config))
            .map_err(|e| db_error("creating the extract", &e))?;
        conn.execute_batch(META_DDL)
            .map_err(|e| db_error("creating _meta", &e))?;

        Ok(ExtractWriter {
            source: source.to_string(),
            dir,
            conn,
            tables: Vec::new(),
            has_remote_attach: false,
        })
    }

    /// Creates an empty, hidden version folder for a new extract of `source`.
    ///
    /// Fails with `extract.write_failed` when the folder cannot be created.
    pub fn new_version_dir(&self, source: &str) -> Result<PathBuf> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
        let sequence = VERSION_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(format!(
            ".{source}.v{stamp}-{}-{sequence}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| io_error("extract.write_failed", &dir, &e))?;
        Ok(dir)
    }

    /// The version folder `extracts/<source>` currently points at, when it is a link.
    pub fn current_version(&self, source: &str) -> Option<PathBuf> {
        let link = self.source_dir(source);
        let target = std::fs::read_link(&link).ok()?;
        Some(if target.is_absolute() {
            target
        } else {
            self.root.join(target)
        })
    }

    /// Deletes version folders that no source links to and that are not in `in_use`, and
    /// unfinished folders left by a crash. Returns how many folders it deleted.
    ///
    /// `in_use` lists the version folders that a live analytics database still reads. Folders
    /// modified less than `min_age` ago are kept, so a version that a running sync is still
    /// writing survives a rebuild started elsewhere.
    pub fn collect_garbage(
        &self,
        in_use: &HashSet<PathBuf>,
        min_age: std::time::Duration,
    ) -> Result<usize> {
        let current: HashSet<PathBuf> = self
            .sources()?
            .iter()
            .filter_map(|source| self.current_version(source))
            .collect();
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| io_error("extract.list_failed", &self.root, &e))?;
        let mut deleted = 0;
        for entry in entries.filter_map(|entry| entry.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !name.starts_with('.')
                || !name.contains(".v")
                || current.contains(&path)
                || in_use.contains(&path)
            {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|age| age < min_age) {
                continue;
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => deleted += 1,
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot delete an old extract version")
                }
            }
        }
        Ok(deleted)
    }
}

/// A new extract version being written; nothing reads it until it is published.
pub struct ExtractWriter {
    source: String,
    dir: PathBuf,
    conn: Connection,
    tables: Vec<TableStats>,
    has_remote_attach: bool,
}

impl ExtractWriter {
    /// The version folder being written.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The source this extract is for.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The read-write connection to the new extract file, for connectors that attach a source
    /// catalog to copy from.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Tables added so far.
    pub fn tables(&self) -> &[TableStats] {
        &self.tables
    }

    /// Writes the result of `select` to `data/<name>.parquet`, creates a view over it and adds
    /// its `_meta` row. Returns the row count and file size.
    ///
    /// Fails with `extract.table_failed` when DuckDB cannot run the query or write the file; the
    /// writer stays usable for other tables.
    pub fn add_parquet_table(
        &mut self,
        name: &str,
        select: &str,
        description: &str,
        mode: QueryMode,
    ) -> Result<TableStats> {
        let file = self.parquet_path(name);
        let copy = format!(
            "COPY ({select}) TO {} (FORMAT PARQUET, COMPRESSION ZSTD)",
            quote_literal(&file.to_string_lossy())
        );
        let rows = self
            .conn
            .execute(&copy, [])
            .map_err(|e| table_error(name, &e))? as i64;
        self.finish_parquet_table(name, &file, rows, description, mode, None)
    }

    /// Adds a table from a Parquet file of an earlier version by hard link (or copy across file
    /// systems), keeping its `_meta` values. Used so a sync of some tables keeps the others.
    pub fn carry_over(&mut self, previous: &CarriedTable) -> Result<TableStats> {
        let file = self.parquet_path(&previous.name);
        if std::fs::hard_link(&previous.file, &file).is_err() {
            std::fs::copy(&previous.file, &file)
                .map_err(|e| io_error("extract.table_failed", &previous.file, &e))?;
        }
        self.finish_parquet_table(
            &previous.name,
            &file,
            previous.rows,
            &previous.description,
            previous.query_mode,
            previous.extracted_at.as_deref(),
        )
    }

    fn finish_parquet_table(
        &mut self,
        name: &str,
        file: &Path,
        rows: i64,
        description: &str,
        mode: QueryMode,
        extracted_at: Option<&str>,
    ) -> Result<TableStats> {
        let size_bytes = std::fs::metadata(file).map(|m| m.len() as i64).unwrap_or(0);
        let view = format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM read_parquet({})",
            quote_identifier(name),
            quote_literal(&file.to_string_lossy())
        );
        self.conn
            .execute_batch(&view)
            .map_err(|e| table_error(name, &e))?;
        self.insert_meta(name, description, rows, size_bytes, mode, extracted_at)?;
        let stats = TableStats {
            name: name.to_string(),
            query_mode: mode,
            rows,
            size_bytes,
        };
        self.tables.push(stats.clone());
        Ok(stats)
    }

    /// Adds a `_remote_attach` row. The catalog must already be attached to [`Self::connection`]
    /// under `alias` when remote views are added.
    pub fn add_remote_attach(
        &mut self,
        alias: &str,
        extension: &str,
        url: &str,
        token_env: Option<&str>,
    ) -> Result<()> {
        if !self.has_remote_attach {
            self.conn
                .execute_batch(REMOTE_ATTACH_DDL)
                .map_err(|e| db_error("creating _remote_attach", &e))?;
            self.has_remote_attach = true;
        }
        self.conn
            .execute(
                "INSERT INTO _remote_attach VALUES (?, ?, ?, ?)",
                params![alias, extension, url, token_env],
            )
            .map_err(|e| db_error("writing _remote_attach", &e))?;
        Ok(())
    }

    /// Adds a view named `name` over `target` (a qualified name in an attached catalog, already
    /// quoted) and its `_meta` row with query mode `remote`.
    pub fn add_remote_view(
        &mut self,
        name: &str,
        target: &str,
        description: &str,
    ) -> Result<TableStats> {
        let view = format!(
            "CREATE OR REPLACE VIEW {} AS SELECT * FROM {target}",
            quote_identifier(name)
        );
        self.conn
            .execute_batch(&view)
            .map_err(|e| table_error(name, &e))?;
        self.insert_meta(name, description, 0, 0, QueryMode::Remote, None)?;
        let stats = TableStats {
            name: name.to_string(),
            query_mode: QueryMode::Remote,
            rows: 0,
            size_bytes: 0,
        };
        self.tables.push(stats.clone());
        Ok(stats)
    }

    fn insert_meta(
        &self,
        name: &str,
        description: &str,
        rows: i64,
        size_bytes: i64,
        mode: QueryMode,
        extracted_at: Option<&str>,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO _meta VALUES (?, ?, ?, ?, COALESCE(?::TIMESTAMP, now()::TIMESTAMP), ?)",
                params![name, description, rows, size_bytes, extracted_at, mode.as_str()],
            )
            .map_err(|e| db_error("writing _meta", &e))?;
        Ok(())
    }

    fn parquet_path(&self, name: &str) -> PathBuf {
        self.dir.join(DATA_FOLDER).join(format!("{name}.parquet"))
    }

    /// Checkpoints and closes the extract file. Nothing reads it until it is published.
    ///
    /// Fails with `extract.write_failed` when DuckDB cannot checkpoint.
    pub fn finish(self) -> Result<PendingExtract> {
        self.conn
            .execute_batch("CHECKPOINT")
            .map_err(|e| db_error("checkpointing the extract", &e))?;
        drop(self.conn);
        Ok(PendingExtract {
            source: self.source,
            dir: self.dir,
            tables: self.tables,
        })
    }

    /// Deletes the unfinished version folder.
    pub fn discard(self) {
        let dir = self.dir.clone();
        drop(self);
        remove_quietly(&dir);
    }
}

/// A written extract version waiting to be validated and published.
#[derive(Debug)]
pub struct PendingExtract {
    source: String,
    dir: PathBuf,
    tables: Vec<TableStats>,
}

/// Why a pending extract was not published.
#[derive(Debug)]
pub struct RejectedExtract {
    /// The validator's report on the rejected version.
    pub report: Report,
}

impl PendingExtract {
    /// Wraps a version folder that a custom connector wrote, so it can be validated and published.
    pub fn from_dir(source: &str, dir: PathBuf) -> PendingExtract {
        PendingExtract {
            source: source.to_string(),
            dir,
            tables: Vec::new(),
        }
    }

    /// Deletes the version folder without publishing it.
    pub fn discard(self) {
        remove_quietly(&self.dir);
    }

    /// The tables in this version.
    pub fn tables(&self) -> &[TableStats] {
        &self.tables
    }

    /// Validates the version and, when it has no error finding, points `extracts/<source>` at it.
    /// Returns the validator's report (warnings only).
    ///
    /// An invalid version is deleted and the published one stays. Fails with
    /// `extract.invalid` (the report's findings are in the message) or `extract.publish_failed`
    /// when the link cannot be swapped.
    pub fn publish(self, store: &ExtractStore) -> Result<Report> {
        let options = contract_spec::Options {
            source: Some(self.source.clone()),
        };
        let report = contract_spec::validate_with(&self.dir.join(EXTRACT_FILE), &options);
        if !report.is_valid() {
            remove_quietly(&self.dir);
            let summary: Vec<String> = report
                .findings
                .iter()
                .filter(|f| f.severity == contract_spec::Severity::Error)
                .map(|f| format!("{}: {}", f.code, f.message))
                .collect();
            return Err(Error::new(
                ErrorKind::Internal,
                "extract.invalid",
                format!("the new extract of {} breaks the contract, so the previous data stays: {}", self.source, summary.join("; ")),
            )
            .with_hint("Fix the connector's output; run `agnes contract validate` on it to see every finding."));
        }
        swap_link(store, &self.source, &self.dir)?;
        tracing::info!(source = %self.source, version = %self.dir.display(), tables = self.tables.len(), "published extract");
        Ok(report)
    }
}

/// A table of the published version to copy into a new version unchanged.
#[derive(Debug, Clone)]
pub struct CarriedTable {
    /// Table name.
    pub name: String,
    /// Its Parquet file in the published version.
    pub file: PathBuf,
    /// `_meta.rows` of the published version.
    pub rows: i64,
    /// `_meta.description` of the published version.
    pub description: String,
    /// `_meta.query_mode` of the published version.
    pub query_mode: QueryMode,
    /// `_meta.extracted_at` of the published version, as text.
    pub extracted_at: Option<String>,
}

impl ExtractStore {
    /// Lists the local and materialized tables of `source`'s published extract whose Parquet file
    /// is `data/<name>.parquet`, so a new version can carry them over.
    ///
    /// Returns an empty list when the source has no published extract or it cannot be read.
    pub fn carried_tables(&self, source: &str) -> Vec<CarriedTable> {
        let path = self.extract_path(source);
        if !path.exists() {
            return Vec::new();
        }
        let read = || -> duckdb::Result<Vec<CarriedTable>> {
            let conn = Connection::open_with_flags(
                &path,
                Config::default().access_mode(duckdb::AccessMode::ReadOnly)?,
            )?;
            let mut stmt = conn.prepare(
                "SELECT table_name, COALESCE(rows, 0), COALESCE(description, ''), query_mode, \
                 CAST(extracted_at AS VARCHAR) FROM _meta WHERE query_mode IN ('local', 'materialized')",
            )?;
            let data = self.source_dir(source).join(DATA_FOLDER);
            let rows = stmt.query_map([], |row| {
                let name: String = row.get(0)?;
                let mode: String = row.get(3)?;
                Ok(CarriedTable {
                    file: data.join(format!("{name}.parquet")),
                    name,
                    rows: row.get(1)?,
                    description: row.get(2)?,
                    query_mode: QueryMode::parse(&mode).unwrap_or(QueryMode::Local),
                    extracted_at: row.get(4)?,
                })
            })?;
            rows.collect()
        };
        match read() {
            Ok(tables) => tables.into_iter().filter(|t| t.file.exists()).collect(),
            Err(error) => {
                tracing::warn!(%source, %error, "cannot read the published extract to carry tables over");
                Vec::new()
            }
        }
    }
}

/// Points `extracts/<source>` at `version` by renaming a new link over the old one.
fn swap_link(store: &ExtractStore, source: &str, version: &Path) -> Result<()> {
    let link = store.source_dir(source);
    let target = version
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| version.to_path_buf());
    let temp_link = store
        .root
        .join(format!(".{source}.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&temp_link);
    std::os::unix::fs::symlink(&target, &temp_link)
        .map_err(|e| io_error("extract.publish_failed", &temp_link, &e))?;

    let is_real_dir = std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir());
    if is_real_dir {
        // A standalone connector wrote a real folder here before; keep it as an old version.
        let kept = store
            .root
            .join(format!(".{source}.v0-previous-{}", std::process::id()));
        std::fs::rename(&link, &kept).map_err(|e| io_error("extract.publish_failed", &link, &e))?;
    }
    std::fs::rename(&temp_link, &link).map_err(|e| io_error("extract.publish_failed", &link, &e))
}

fn remove_quietly(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir) {
        tracing::warn!(path = %dir.display(), %error, "cannot delete an extract version folder");
    }
}

fn io_error(code: &'static str, path: &Path, error: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        code,
        format!("file operation on {} failed: {error}", path.display()),
    )
    .with_hint("Check free disk space and the permissions of the data directory.")
}

fn db_error(step: &str, error: &duckdb::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        "extract.write_failed",
        format!("DuckDB failed while {step}: {error}"),
    )
}

fn table_error(name: &str, error: &duckdb::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "extract.table_failed",
        format!("table {name}: {error}"),
    )
}
