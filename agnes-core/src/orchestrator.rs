//! The orchestrator: publishes every valid extract as views in a new analytics database.
//!
//! [`Orchestrator::rebuild`] validates each source under `extracts/` with the contract validator,
//! attaches the valid ones read-only (pinned to the version folder their link points at), attaches
//! their remote catalogs, creates one view per table in a new file, and renames that file over
//! `analytics/server.duckdb`. A broken source is skipped with its findings; one table whose view
//! fails does not hide the rest of its source. Two sources publishing one table name is a
//! reported collision: the source that owned the name in the previous publication keeps it, and
//! otherwise the source first in name order gets it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use contract_spec::identifier::{quote_identifier, quote_literal};
use contract_spec::spec::{DATA_FOLDER, EXTRACT_FILE};
use contract_spec::{Code, Finding, QueryMode, Report};
use duckdb::{Config, Connection};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::extract::ExtractStore;
use crate::remote::{self, RemoteAttachment, RemotePolicy, SecretLookup};

/// File name of the published analytics database inside `analytics/`.
pub const ANALYTICS_FILE: &str = "server.duckdb";

/// File name of the publication record inside `analytics/`.
pub const PUBLICATION_FILE: &str = "publication.json";

/// Whether a source's tables made it into the analytics database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Every table of the source is published.
    Published,
    /// Some tables are published; the others have errors.
    Partial,
    /// Nothing of the source is published.
    Skipped,
}

/// What the rebuild did with one source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceOutcome {
    /// Source name (the folder under `extracts/`).
    pub name: String,
    /// Outcome.
    pub status: SourceStatus,
    /// The version folder that was attached, when the source was attached.
    pub extract_dir: Option<PathBuf>,
    /// Tables published from this source.
    pub tables: Vec<String>,
    /// Contract findings, warnings included.
    pub findings: Vec<Finding>,
    /// Failures outside the contract: remote attach, view creation, collisions.
    pub errors: Vec<String>,
}

/// One column of a published table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// DuckDB type.
    pub data_type: String,
}

/// One published table (a view in the analytics database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedTable {
    /// View name in the analytics database; the same as the `_meta.table_name`.
    pub name: String,
    /// Source that publishes it.
    pub source: String,
    /// Query mode from `_meta`.
    pub query_mode: QueryMode,
    /// Description from `_meta`.
    pub description: Option<String>,
    /// Row count from `_meta`.
    pub rows: Option<i64>,
    /// Data size from `_meta`.
    pub size_bytes: Option<i64>,
    /// Extraction time from `_meta`, as text.
    pub extracted_at: Option<String>,
    /// Columns of the view.
    pub columns: Vec<Column>,
    /// The Parquet files of a local or materialized table that existed when it was published:
    /// `data/<table>.parquet` of its version folder, or the Parquet files of the folder
    /// `data/<table>/`. Empty for remote tables and for tables stored in the extract itself.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

/// Two or more sources offering one table name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collision {
    /// The contested name.
    pub name: String,
    /// The source whose table is published under it.
    pub kept: String,
    /// The sources whose tables are not published under it.
    pub dropped: Vec<String>,
}

/// The result of one rebuild: what the analytics database contains and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publication {
    /// When the rebuild finished.
    pub built_at: DateTime<Utc>,
    /// How long the rebuild took, in milliseconds.
    pub duration_ms: u64,
    /// The analytics database file.
    pub analytics_path: PathBuf,
    /// The `extracts/` folder the sources were read from.
    pub extracts_root: PathBuf,
    /// Every source seen, in name order.
    pub sources: Vec<SourceOutcome>,
    /// Published tables, in name order.
    pub tables: Vec<PublishedTable>,
    /// Remote catalogs the published views need, for query connections to attach again.
    pub attachments: Vec<RemoteAttachment>,
    /// Table names offered by more than one source.
    pub collisions: Vec<Collision>,
}

impl Publication {
    /// Returns the published table named `name`, ignoring case.
    pub fn table(&self, name: &str) -> Option<&PublishedTable> {
        self.tables
            .iter()
            .find(|table| table.name.eq_ignore_ascii_case(name))
    }

    /// Sources that were attached, with their pinned version folders.
    pub fn attached_sources(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.sources
            .iter()
            .filter(|source| source.status != SourceStatus::Skipped)
            .filter_map(|source| {
                source
                    .extract_dir
                    .as_deref()
                    .map(|dir| (source.name.as_str(), dir))
            })
    }

    /// Reads the publication record of an earlier rebuild, if there is a readable one.
    pub fn load(analytics_dir: &Path) -> Option<Publication> {
        let text = std::fs::read_to_string(analytics_dir.join(PUBLICATION_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Builds analytics databases from the extracts of one data directory.
pub struct Orchestrator {
    extracts: ExtractStore,
    analytics_dir: PathBuf,
    policy: RemotePolicy,
    secrets: Arc<dyn SecretLookup>,
    /// Validation reports by extract file, reused while the file's size and modification time
    /// stay the same; published version folders never change, so most rebuilds validate nothing.
    reports: Mutex<HashMap<PathBuf, (FileStamp, Report)>>,
}

/// Size and modification time of a file, which identify one version of an extract.
type FileStamp = (u64, Option<std::time::SystemTime>);

/// A source ready to publish: its attached tables and `_meta` values.
struct Candidate {
    outcome: SourceOutcome,
    meta: Vec<PublishedTable>,
}

impl Orchestrator {
    /// Creates an orchestrator over `extracts` that writes into `analytics_dir`.
    pub fn new(
        extracts: ExtractStore,
        analytics_dir: PathBuf,
        policy: RemotePolicy,
        secrets: Arc<dyn SecretLookup>,
    ) -> Self {
        Self {
            extracts,
            analytics_dir,
            policy,
            secrets,
            reports: Mutex::new(HashMap::new()),
        }
    }

    /// Validates `file` as source `source`, or returns the stored report of an unchanged file.
    fn validate(&self, file: &Path, source: &str) -> Report {
        let stamp = std::fs::metadata(file)
            .ok()
            .map(|m| (m.len(), m.modified().ok()));
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stamp) = stamp
            && let Some((stored, report)) = reports.get(file)
            && *stored == stamp
            && report.source == source
        {
            return report.clone();
        }
        let report = contract_spec::validate_with(
            file,
            &contract_spec::Options {
                source: Some(source.to_string()),
            },
        );
        if let Some(stamp) = stamp {
            reports.insert(file.to_path_buf(), (stamp, report.clone()));
        }
        report
    }

    /// The remote-attach policy in force.
    pub fn policy(&self) -> &RemotePolicy {
        &self.policy
    }

    /// The secrets remote attachments read.
    pub fn secrets(&self) -> &Arc<dyn SecretLookup> {
        &self.secrets
    }

    /// Validates every source, builds a new analytics database and renames it into place.
    ///
    /// Sources with errors are skipped and reported in the result; this fails only when the
    /// analytics database itself cannot be written (`orchestrator.write_failed`), and then the
    /// previously published database stays in place.
    pub fn rebuild(&self) -> Result<Publication> {
        let started = Instant::now();
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|file, _| file.exists());
        let previous_owners = previous_owners(&self.analytics_dir);
        let building = self
            .analytics_dir
            .join(format!("{ANALYTICS_FILE}.building-{}", std::process::id()));
        remove_unfinished_builds(&self.analytics_dir);

        let conn = open_analytics(&building, &self.policy)?;
        let mut candidates = Vec::new();
        let mut attachments = Vec::new();
        for source in self.extracts.sources()? {
            let candidate = self.attach_source(&conn, &source, &mut attachments);
            candidates.push(candidate);
        }

        let (winners, collisions) = resolve_collisions(&candidates, &previous_owners);
        let mut tables = Vec::new();
        for candidate in &mut candidates {
            publish_views(&conn, candidate, &winners, &collisions, &mut tables);
        }
        fill_columns(&conn, &mut tables);
        tables.sort_by_key(|table| table.name.to_lowercase());

        conn.execute_batch("CHECKPOINT")
            .map_err(|e| write_failed("checkpointing", &e))?;
        drop(conn);

        let target = self.analytics_dir.join(ANALYTICS_FILE);
        std::fs::rename(&building, &target).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                "orchestrator.write_failed",
                format!("cannot rename the new analytics database into place: {e}"),
            )
        })?;

        let used: Vec<&str> = candidates
            .iter()
            .filter(|c| c.outcome.status != SourceStatus::Skipped)
            .map(|c| c.outcome.name.as_str())
            .collect();
        attachments.retain(|a: &RemoteAttachment| used.contains(&a.source.as_str()));
        let publication = Publication {
            built_at: Utc::now(),
            duration_ms: started.elapsed().as_millis() as u64,
            analytics_path: target,
            extracts_root: self.extracts.root().to_path_buf(),
            sources: candidates.into_iter().map(|c| c.outcome).collect(),
            tables,
            attachments,
            collisions,
        };
        write_publication(&self.analytics_dir, &publication);
        tracing::info!(
            sources = publication.sources.len(),
            tables = publication.tables.len(),
            duration_ms = publication.duration_ms,
            "rebuilt the analytics database"
        );
        Ok(publication)
    }

    /// Validates and attaches one source; returns its tables, or a skipped outcome.
    fn attach_source(
        &self,
        conn: &Connection,
        source: &str,
        attachments: &mut Vec<RemoteAttachment>,
    ) -> Candidate {
        let link = self.extracts.source_dir(source);
        let dir = link.canonicalize().unwrap_or(link.clone());
        let report = self.validate(&dir.join(EXTRACT_FILE), source);
        let mut outcome = SourceOutcome {
            name: source.to_string(),
            status: SourceStatus::Skipped,
            extract_dir: None,
            tables: Vec::new(),
            findings: report.findings.clone(),
            errors: Vec::new(),
        };
        let source_level = report
            .findings
            .iter()
            .any(|f| f.severity == contract_spec::Severity::Error && is_source_level(f.code));
        if source_level || report.tables.is_empty() {
            if !report.findings.is_empty() {
                tracing::warn!(%source, errors = report.error_count(), "skipping a source that breaks the contract");
            }
            return Candidate {
                outcome,
                meta: Vec::new(),
            };
        }

        let attach = format!(
            "ATTACH {} AS {} (READ_ONLY)",
            quote_literal(&dir.join(EXTRACT_FILE).to_string_lossy()),
            quote_identifier(source)
        );
        if let Err(error) = conn.execute_batch(&attach) {
            outcome
                .errors
                .push(format!("cannot attach the extract: {error}"));
            return Candidate {
                outcome,
                meta: Vec::new(),
            };
        }
        outcome.extract_dir = Some(dir);

        let rows = match read_attach_rows(conn, source) {
            Ok(rows) => rows,
            Err(error) => {
                outcome
                    .errors
                    .push(format!("cannot read _remote_attach: {error}"));
                Vec::new()
            }
        };
        for row in rows {
            match attachments.iter().find(|a| a.alias.eq_ignore_ascii_case(&row.alias)) {
                Some(existing) if existing.extension == row.extension && existing.url == row.url && existing.token_env == row.token_env => {}
                Some(existing) => outcome.errors.push(format!(
                    "alias {} is already used by source {} for another catalog; choose another alias",
                    row.alias, existing.source
                )),
                None if self.extracts.sources().is_ok_and(|s| s.iter().any(|n| n.eq_ignore_ascii_case(&row.alias))) => {
                    outcome.errors.push(format!("alias {} is the name of a source; choose another alias", row.alias));
                }
                None => match remote::attach(conn, &row, &self.policy, self.secrets.as_ref()) {
                    Ok(()) => attachments.push(row),
                    Err(error) => {
                        tracing::warn!(%source, alias = %row.alias, %error, "remote attach failed");
                        outcome.errors.push(error);
                    }
                },
            }
        }

        let meta = match read_meta(conn, source, &report.tables) {
            Ok(mut meta) => {
                if let Some(dir) = outcome.extract_dir.as_deref() {
                    for table in &mut meta {
                        if table.query_mode != QueryMode::Remote {
                            table.files = parquet_files(dir, &table.name);
                        }
                    }
                }
                meta
            }
            Err(error) => {
                outcome.errors.push(format!("cannot read _meta: {error}"));
                Vec::new()
            }
        };
        Candidate { outcome, meta }
    }
}

/// The Parquet files of table `name` in the source folder `dir`: `data/<name>.parquet`, else the
/// `.parquet` files of the folder `data/<name>/`, sorted.
fn parquet_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let data = dir.join(DATA_FOLDER);
    let file = data.join(format!("{name}.parquet"));
    if file.is_file() {
        return vec![file];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(name))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| {
                    path.extension().is_some_and(|ext| ext == "parquet") && path.is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Finding codes that make a whole source unpublishable, as opposed to one table.
fn is_source_level(code: Code) -> bool {
    let name = code.as_str();
    name.starts_with("file.")
        || name.starts_with("source.")
        || name.starts_with("remote_attach.")
        || name.starts_with("meta.column_")
        || matches!(code, Code::MetaMissing | Code::MetaRemoteWithoutAttach)
}

fn open_analytics(path: &Path, policy: &RemotePolicy) -> Result<Connection> {
    let mut config = Config::default()
        .enable_autoload_extension(false)
        .and_then(|c| c.with("autoinstall_known_extensions", "false"))
        .and_then(|c| c.threads(2))
        .map_err(|e| write_failed("configuring DuckDB", &e))?;
    if let Some(dir) = &policy.extension_directory {
        config = config
            .with("extension_directory", dir.to_string_lossy())
            .map_err(|e| write_failed("configuring DuckDB", &e))?;
    }
    Connection::open_with_flags(path, config)
        .map_err(|e| write_failed("creating the analytics database", &e))
}

fn read_attach_rows(conn: &Connection, source: &str) -> duckdb::Result<Vec<RemoteAttachment>> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' \
         AND lower(table_name) = '_remote_attach'",
        [source],
        |row| row.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT alias, extension, url, NULLIF(token_env, '') FROM {}.main._remote_attach",
        quote_identifier(source)
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |row| {
        Ok(RemoteAttachment {
            source: source.to_string(),
            alias: row.get(0)?,
            extension: row.get(1)?,
            url: row.get(2)?,
            token_env: row.get(3)?,
        })
    })?;
    rows.collect()
}

fn read_meta(
    conn: &Connection,
    source: &str,
    valid: &[String],
) -> duckdb::Result<Vec<PublishedTable>> {
    let sql = format!(
        "SELECT table_name, query_mode, description, rows, size_bytes, CAST(extracted_at AS VARCHAR) FROM {}.main._meta",
        quote_identifier(source)
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |row| {
        let mode: String = row.get(1)?;
        Ok(PublishedTable {
            name: row.get(0)?,
            source: source.to_string(),
            query_mode: QueryMode::parse(&mode).unwrap_or(QueryMode::Local),
            description: row.get(2)?,
            rows: row.get(3)?,
            size_bytes: row.get(4)?,
            extracted_at: row.get(5)?,
            columns: Vec::new(),
            files: Vec::new(),
        })
    })?;
    let mut tables: Vec<PublishedTable> = rows.collect::<duckdb::Result<_>>()?;
    tables.retain(|table| valid.contains(&table.name));
    Ok(tables)
}

/// Picks the source that publishes each name offered by several sources.
fn resolve_collisions(
    candidates: &[Candidate],
    previous: &HashMap<String, String>,
) -> (HashMap<String, String>, Vec<Collision>) {
    let mut offers: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for candidate in candidates {
        for table in &candidate.meta {
            offers
                .entry(table.name.to_lowercase())
                .or_default()
                .push(&candidate.outcome.name);
        }
    }
    let mut winners = HashMap::new();
    let mut collisions = Vec::new();
    for (name, sources) in offers {
        let kept = previous
            .get(&name)
            .filter(|owner| sources.contains(&owner.as_str()))
            .cloned()
            .unwrap_or_else(|| sources[0].to_string());
        if sources.len() > 1 {
            let dropped: Vec<String> = sources
                .iter()
                .filter(|s| **s != kept)
                .map(|s| s.to_string())
                .collect();
            tracing::warn!(table = %name, %kept, ?dropped, "several sources publish one table name");
            collisions.push(Collision {
                name: name.clone(),
                kept: kept.clone(),
                dropped,
            });
        }
        winners.insert(name, kept);
    }
    (winners, collisions)
}

/// Creates the views of one source, each on its own so one failure does not hide the others.
fn publish_views(
    conn: &Connection,
    candidate: &mut Candidate,
    winners: &HashMap<String, String>,
    collisions: &[Collision],
    tables: &mut Vec<PublishedTable>,
) {
    let source = candidate.outcome.name.clone();
    for table in candidate.meta.drain(..) {
        let folded = table.name.to_lowercase();
        if winners.get(&folded) != Some(&source) {
            let kept = collisions
                .iter()
                .find(|c| c.name == folded)
                .map(|c| c.kept.as_str())
                .unwrap_or("another source");
            candidate.outcome.errors.push(format!(
                "table {} is not published because source {kept} publishes a table of the same name; rename one of them",
                table.name
            ));
            continue;
        }
        let view = format!(
            "CREATE VIEW {name} AS SELECT * FROM {source}.main.{name}",
            name = quote_identifier(&table.name),
            source = quote_identifier(&source)
        );
        if let Err(error) = conn.execute_batch(&view) {
            tracing::warn!(%source, table = %table.name, %error, "cannot create a view");
            candidate
                .outcome
                .errors
                .push(format!("cannot publish {}: {error}", table.name));
            continue;
        }
        if let Some(description) = &table.description {
            let comment = format!(
                "COMMENT ON VIEW {} IS {}",
                quote_identifier(&table.name),
                quote_literal(description)
            );
            let _ = conn.execute_batch(&comment);
        }
        candidate.outcome.tables.push(table.name.clone());
        tables.push(table);
    }
    let has_problems = !candidate.outcome.errors.is_empty()
        || candidate
            .outcome
            .findings
            .iter()
            .any(|f| f.severity == contract_spec::Severity::Error);
    candidate.outcome.status = match (candidate.outcome.tables.is_empty(), has_problems) {
        (true, _) => SourceStatus::Skipped,
        (false, true) => SourceStatus::Partial,
        (false, false) => SourceStatus::Published,
    };
}

fn fill_columns(conn: &Connection, tables: &mut [PublishedTable]) {
    let read = || -> duckdb::Result<Vec<(String, String, String)>> {
        let mut stmt = conn.prepare(
            "SELECT table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_catalog = current_database() AND table_schema = 'main' ORDER BY table_name, ordinal_position",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect()
    };
    let columns = match read() {
        Ok(columns) => columns,
        Err(error) => {
            tracing::warn!(%error, "cannot read the columns of the published views");
            return;
        }
    };
    let mut by_table: HashMap<String, Vec<Column>> = HashMap::new();
    for (table, name, data_type) in columns {
        by_table
            .entry(table.to_lowercase())
            .or_default()
            .push(Column { name, data_type });
    }
    for table in tables {
        table.columns = by_table
            .remove(&table.name.to_lowercase())
            .unwrap_or_default();
    }
}

fn previous_owners(analytics_dir: &Path) -> HashMap<String, String> {
    Publication::load(analytics_dir)
        .map(|p| {
            p.tables
                .into_iter()
                .map(|t| (t.name.to_lowercase(), t.source))
                .collect()
        })
        .unwrap_or_default()
}

fn write_publication(analytics_dir: &Path, publication: &Publication) {
    let path = analytics_dir.join(PUBLICATION_FILE);
    let temp = analytics_dir.join(format!("{PUBLICATION_FILE}.tmp-{}", std::process::id()));
    let written = serde_json::to_vec_pretty(publication)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(&temp, json))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(error) = written {
        tracing::warn!(%error, "cannot write the publication record; collision owners may change on the next rebuild");
    }
}

/// Deletes the files of rebuilds that a crash interrupted (`server.duckdb.building-<pid>` and
/// their write-ahead logs). Only the process that owns the data directory rebuilds, so none of
/// them is in use.
fn remove_unfinished_builds(analytics_dir: &Path) {
    let prefix = format!("{ANALYTICS_FILE}.building-");
    let Ok(entries) = std::fs::read_dir(analytics_dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        if let Err(error) = std::fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), %error, "cannot delete a leftover analytics file");
        }
    }
}

fn write_failed(step: &str, error: &duckdb::Error) -> Error {
    Error::new(ErrorKind::Internal, "orchestrator.write_failed", format!("DuckDB failed while {step}: {error}"))
        .with_hint("Check free disk space and the permissions of the analytics folder; the previous publication stays in place.")
}
