//! Sync job records: their shape, and how they are stored in `sync_jobs`.

use chrono::Utc;
use duckdb::params;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{StateDb, to_db_time};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Working.
    Running,
    /// Every source synced and the data is published.
    Succeeded,
    /// Some sources or tables failed; the rest is published and the failed ones keep their
    /// previous data.
    Partial,
    /// Nothing new was published; the previous data keeps serving.
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Partial => "partial",
            JobStatus::Failed => "failed",
        }
    }
}

/// How far a running job is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Current step: `discovering`, `extracting`, `custom_connectors`, `publishing` or `done`.
    pub phase: String,
    /// Sources finished.
    pub sources_done: usize,
    /// Sources in this job.
    pub sources_total: usize,
    /// Source being extracted.
    pub current_source: Option<String>,
    /// Table being extracted.
    pub current_table: Option<String>,
    /// Tables of built-in sources finished. Custom connectors are counted by source only,
    /// because they report no tables while they run.
    #[serde(default)]
    pub tables_done: usize,
    /// Tables of built-in sources in this job.
    #[serde(default)]
    pub tables_total: usize,
    /// Names of the tables finished so far, in order. Whether each succeeded shows in the job's
    /// per-source results once its source is done.
    #[serde(default)]
    pub tables_finished: Vec<String>,
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableRun {
    /// Table name.
    pub name: String,
    /// `ok`, `failed` (previous data kept when there was some) or `carried_over` (not asked for,
    /// previous data kept).
    pub status: String,
    /// Rows written.
    pub rows: Option<i64>,
    /// Bytes written.
    pub size_bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What happened to one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceRun {
    /// Source name.
    pub name: String,
    /// Connector type: `files`, `postgres` or `custom`.
    pub kind: String,
    /// `ok`, `partial` or `failed`.
    pub status: String,
    /// Tables, with their results.
    pub tables: Vec<TableRun>,
    /// Time spent, in milliseconds.
    pub duration_ms: u64,
    /// Why the source failed, when it did.
    pub error: Option<String>,
    /// Output of a custom connector (its last 64 KiB).
    pub log: Option<String>,
}

/// The whole record of one sync job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Where the job is.
    pub status: JobStatus,
    /// User id of the user who started it.
    pub requested_by: Option<String>,
    /// Tables asked for; `None` syncs everything.
    pub tables: Option<Vec<String>>,
    /// When it was created, UTC.
    pub created_at: String,
    /// When it finished, UTC.
    pub finished_at: Option<String>,
    /// Time from start to finish, in milliseconds.
    pub duration_ms: Option<u64>,
    /// How far it is.
    pub progress: Progress,
    /// Per-source results so far.
    pub sources: Vec<SourceRun>,
    /// Tables published when the job finished.
    pub published_tables: Option<usize>,
    /// Problems of the publication: skipped sources and name collisions.
    pub publication_errors: Vec<String>,
    /// Why the job failed as a whole.
    pub error: Option<String>,
}

/// Inserts a new job row.
pub(crate) fn insert(state: &StateDb, job: &Job) -> Result<()> {
    state.with_conn(|conn| {
        conn.execute(
            "INSERT INTO sync_jobs (id, status, requested_by, tables, progress, created_at, started_at, result) \
             VALUES (?, ?, ?, ?, ?, ?::TIMESTAMP, ?::TIMESTAMP, ?)",
            params![
                job.id,
                job.status.as_str(),
                job.requested_by,
                job.tables.as_ref().map(|t| serde_json::to_string(t).unwrap_or_default()),
                serde_json::to_string(&job.progress).unwrap_or_default(),
                job.created_at,
                job.created_at,
                serde_json::to_string(job).unwrap_or_default()
            ],
        )
        .map_err(|e| Error::state_db("recording a sync job", &e))?;
        Ok(())
    })
}

/// Stores the job's current state.
pub(crate) fn save(state: &StateDb, job: &Job) -> Result<()> {
    state.with_conn(|conn| {
        conn.execute(
            "UPDATE sync_jobs SET status = ?, progress = ?, finished_at = ?::TIMESTAMP, error = ?, result = ? WHERE id = ?",
            params![
                job.status.as_str(),
                serde_json::to_string(&job.progress).unwrap_or_default(),
                job.finished_at,
                job.error,
                serde_json::to_string(job).unwrap_or_default(),
                job.id
            ],
        )
        .map_err(|e| Error::state_db("updating a sync job", &e))?;
        Ok(())
    })
}

/// Reads job `id`.
///
/// Fails with `sync.job_not_found`.
pub(crate) fn load(state: &StateDb, id: &str) -> Result<Job> {
    let text: Option<String> = state.with_conn(|conn| {
        let mut stmt = conn
            .prepare("SELECT CAST(result AS VARCHAR) FROM sync_jobs WHERE id = ?")
            .map_err(|e| Error::state_db("reading a sync job", &e))?;
        let mut rows = stmt
            .query([id])
            .map_err(|e| Error::state_db("reading a sync job", &e))?;
        match rows
            .next()
            .map_err(|e| Error::state_db("reading a sync job", &e))?
        {
            Some(row) => row
                .get(0)
                .map_err(|e| Error::state_db("reading a sync job", &e)),
            None => Ok(None),
        }
    })?;
    let text = text.ok_or_else(|| {
        Error::not_found(
            "sync.job_not_found",
            format!("sync job {id} does not exist"),
        )
        .with_hint("GET /api/sync/jobs lists recent jobs.")
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::internal(format!("sync job {id} is unreadable: {e}")))
}

/// The most recent jobs, newest first.
pub(crate) fn recent(state: &StateDb, limit: usize) -> Result<Vec<Job>> {
    let texts: Vec<String> = state.with_conn(|conn| {
        let mut stmt = conn
            .prepare(
                "SELECT CAST(result AS VARCHAR) FROM sync_jobs ORDER BY created_at DESC LIMIT ?",
            )
            .map_err(|e| Error::state_db("listing sync jobs", &e))?;
        let rows = stmt
            .query_map([limit as i64], |row| row.get(0))
            .map_err(|e| Error::state_db("listing sync jobs", &e))?;
        rows.collect::<duckdb::Result<Vec<String>>>()
            .map_err(|e| Error::state_db("listing sync jobs", &e))
    })?;
    Ok(texts
        .iter()
        .filter_map(|text| serde_json::from_str(text).ok())
        .collect())
}

/// Marks jobs left `running` by a stopped server as failed; their data was never published.
pub(crate) fn fail_interrupted(state: &StateDb) -> Result<usize> {
    let interrupted: Vec<Job> = recent(state, 1000)?
        .into_iter()
        .filter(|job| job.status == JobStatus::Running)
        .collect();
    for mut job in interrupted.iter().cloned() {
        job.status = JobStatus::Failed;
        job.finished_at = Some(to_db_time(Utc::now()));
        job.error = Some(
            "the server stopped during this sync; the data published before it still serves"
                .to_string(),
        );
        save(state, &job)?;
    }
    Ok(interrupted.len())
}
