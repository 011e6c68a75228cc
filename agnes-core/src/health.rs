//! The health report: an overall status computed from named checks.
//!
//! Every check has a stable name, a status (`ok`, `warning` or `error`) and a message with the
//! next step. The instance checks are `state_db`, `data_dir`, `disk_space` and `release`; the
//! data plane adds `query_engine`, `sources`, `stale_tables` and `last_sync`
//! ([`DataPlane::detailed_health`]). A check that is not `ok` also adds one or more entries to
//! `warnings`, each with a stable code. A warning about one source, table or sync job names it in
//! `subject`, so a script can compare two reports. Warnings about the whole instance
//! (`state_db`, `data_dir`, `disk_space`, `release`, `query_engine`, `sources.not_published`)
//! have no subject.
//!
//! The public report holds only statuses, the version and whether setup is needed, plus the
//! release warnings; counts, names, paths and messages are in the detailed report, which only
//! admins see.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use contract_spec::Severity;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::end_sentence;
use crate::instance::Instance;
use crate::orchestrator::SourceStatus;
use crate::state::{CURRENT_SCHEMA_VERSION, from_db_time};
use crate::sync::{DataPlane, JobStatus};

/// Free space below which `disk_space` is an error: a sync would fail.
pub const DISK_ERROR_BYTES: u64 = 100 * 1024 * 1024;

/// Free space below which `disk_space` warns (also below 5 % of the file system).
pub const DISK_WARNING_BYTES: u64 = 1024 * 1024 * 1024;

/// Findings listed per source in the detailed report; the rest are counted.
const FINDINGS_PER_SOURCE: usize = 20;

/// Overall status of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every check passed.
    Healthy,
    /// The instance serves requests, but a check warns.
    Degraded,
    /// A check failed that stops the instance from serving.
    Unhealthy,
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check passed.
    Ok,
    /// The instance works with reduced function.
    Warning,
    /// The instance cannot work.
    Error,
}

/// One named check in the public report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// Result of the check.
    pub status: CheckStatus,
}

/// One named check in the detailed report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DetailedCheck {
    /// Result of the check.
    pub status: CheckStatus,
    /// Finding of the check and, when it is not `ok`, the next step.
    pub message: String,
}

/// Something an operator should act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Warning {
    /// Stable code: the check name, a dot and the condition, such as `stale_tables.never_synced`.
    pub code: String,
    /// The problem and the next step.
    pub message: String,
    /// The source or table (or, for `last_sync.*`, the sync job id) the warning concerns; absent
    /// for warnings about the whole instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The health report anyone may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthReport {
    /// Overall status: the worst of the checks.
    pub status: HealthStatus,
    /// Release version.
    pub version: String,
    /// Release channel.
    pub channel: String,
    /// Schema version of the state database.
    pub schema_version: i64,
    /// Whether the instance still needs its first admin.
    pub setup_required: bool,
    /// Time of the report (UTC).
    pub timestamp: DateTime<Utc>,
    /// Checks by name, with their status only.
    pub checks: BTreeMap<String, Check>,
    /// Release warnings, such as a deprecated version; the other warnings are in the detailed
    /// report.
    #[serde(default)]
    pub warnings: Vec<Warning>,
}

/// One contract finding of a source, as the detailed report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceFinding {
    /// Stable finding code of the contract validator, such as `meta.missing`.
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
    /// The table the finding concerns, when it concerns one.
    pub table: Option<String>,
    /// The problem.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Outcome of the last rebuild for one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SourceHealth {
    /// Source name (its folder under `extracts/`).
    pub name: String,
    /// `published`, `partial` (some tables are not published) or `skipped` (nothing is).
    pub status: String,
    /// Tables published from the source.
    pub tables: usize,
    /// Contract errors.
    pub errors: usize,
    /// Contract warnings.
    pub warnings: usize,
    /// The contract findings, at most 20.
    pub findings: Vec<SourceFinding>,
    /// Problems outside the contract: remote attachments, views, name collisions.
    pub problems: Vec<String>,
}

/// A registered table whose data is old or missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StaleTable {
    /// Table name.
    pub name: String,
    /// Source that offers it.
    pub source: String,
    /// Last successful sync (UTC), when there was one.
    pub last_sync: Option<String>,
    /// Error of the most recent failed sync of the table, when it failed.
    pub last_error: Option<String>,
}

/// The most recent finished sync job, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastSync {
    /// Job id.
    pub id: String,
    /// `succeeded`, `partial` or `failed`.
    pub status: JobStatus,
    /// When it started (UTC).
    pub created_at: String,
    /// When it finished (UTC).
    pub finished_at: Option<String>,
    /// Time it took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Tables published when it finished.
    pub published_tables: Option<usize>,
    /// Failed sources, failed tables and publication problems, one line each.
    pub problems: Vec<String>,
    /// Id of the job running now, if one runs.
    pub running_job: Option<String>,
}

/// Space on the file system of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiskSpace {
    /// Bytes available to the server.
    pub free_bytes: u64,
    /// Size of the file system in bytes.
    pub total_bytes: u64,
}

/// Diagnostics for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Diagnostics {
    /// Data directory.
    pub data_dir: String,
    /// Size of the state database file in bytes.
    pub state_db_bytes: Option<u64>,
    /// Number of users.
    pub users: Option<i64>,
    /// Number of active admins.
    pub active_admins: Option<i64>,
    /// Seconds since the instance was opened.
    pub uptime_seconds: u64,
    /// Where the token signing key came from: `environment`, `file` or `generated`.
    pub jwt_secret_source: String,
    /// Tables the current publication serves.
    pub published_tables: usize,
    /// When the current publication was built (UTC).
    pub published_at: Option<DateTime<Utc>>,
}

/// The health report with everything an admin or their agent needs to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DetailedHealthReport {
    /// Overall status: the worst of the checks.
    pub status: HealthStatus,
    /// Release version.
    pub version: String,
    /// Release channel.
    pub channel: String,
    /// Commit the build was made from, or `unknown`.
    pub commit: String,
    /// Schema version of the state database.
    pub schema_version: i64,
    /// Whether the instance still needs its first admin.
    pub setup_required: bool,
    /// Time of the report (UTC).
    pub timestamp: DateTime<Utc>,
    /// Seconds since the instance was opened.
    pub uptime_seconds: u64,
    /// Checks by name: `state_db`, `data_dir`, `disk_space`, `release`, `query_engine`,
    /// `sources`, `stale_tables`, `last_sync`.
    pub checks: BTreeMap<String, DetailedCheck>,
    /// Everything to act on, one entry per problem; empty when the instance is healthy.
    pub warnings: Vec<Warning>,
    /// Every source the last rebuild saw, with its contract findings.
    pub sources: Vec<SourceHealth>,
    /// Registered tables never synced, or last synced longer ago than the stale limit.
    pub stale_tables: Vec<StaleTable>,
    /// The most recent finished sync job.
    pub last_sync: Option<LastSync>,
    /// Space on the data directory's file system, when it can be read.
    pub disk: Option<DiskSpace>,
    /// Counts, paths and other diagnostics.
    pub diagnostics: Diagnostics,
}

impl DetailedHealthReport {
    /// Returns the part of the report anyone may read.
    pub fn public(&self) -> HealthReport {
        HealthReport {
            status: self.status,
            version: self.version.clone(),
            channel: self.channel.clone(),
            schema_version: self.schema_version,
            setup_required: self.setup_required,
            timestamp: self.timestamp,
            checks: self
                .checks
                .iter()
                .map(|(name, check)| {
                    (
                        name.clone(),
                        Check {
                            status: check.status,
                        },
                    )
                })
                .collect(),
            warnings: self
                .warnings
                .iter()
                .filter(|w| w.code.starts_with("release."))
                .cloned()
                .collect(),
        }
    }
}

/// The checks run so far, their warnings, and the overall status.
#[derive(Default)]
struct Checks {
    checks: BTreeMap<String, DetailedCheck>,
    warnings: Vec<Warning>,
}

impl Checks {
    fn ok(&mut self, name: &str, message: impl Into<String>) {
        self.set(name, CheckStatus::Ok, message.into());
    }

    fn set(&mut self, name: &str, status: CheckStatus, message: String) {
        self.checks
            .insert(name.to_string(), DetailedCheck { status, message });
    }

    /// Records a problem and adds its warning. The check takes the problem's status and message
    /// unless it already has that status or a worse one.
    fn problem(
        &mut self,
        name: &str,
        status: CheckStatus,
        condition: &str,
        subject: Option<&str>,
        message: String,
    ) {
        self.warnings.push(Warning {
            code: format!("{name}.{condition}"),
            message: message.clone(),
            subject: subject.map(str::to_string),
        });
        match self.checks.get_mut(name) {
            Some(check) if check.status >= status => {}
            _ => self.set(name, status, message),
        }
    }

    fn status(&self) -> HealthStatus {
        overall(self.checks.values().map(|c| c.status))
    }
}

impl Instance {
    /// Runs the instance checks (`state_db`, `data_dir`, `disk_space`, `release`) and returns
    /// the public report. Blocking (it queries the state database); a failing check shows in the
    /// report instead of as an error. A server with a data plane reports more with
    /// [`DataPlane::health`].
    pub fn health(&self) -> HealthReport {
        let mut checks = Checks::default();
        let schema_version = self.run_instance_checks(&mut checks);
        self.assemble(checks, schema_version, None).public()
    }

    /// Runs the checks that need only the instance; returns the schema version.
    fn run_instance_checks(&self, checks: &mut Checks) -> i64 {
        let schema_version = match self.state().schema_version() {
            Ok(version) => {
                checks.ok(
                    "state_db",
                    format!("the state database is readable at schema version {version}"),
                );
                version
            }
            Err(e) => {
                checks.problem(
                    "state_db",
                    CheckStatus::Error,
                    "unreadable",
                    None,
                    format!(
                        "the state database cannot be read: {}. {}",
                        e.message,
                        e.hint.as_deref().unwrap_or(
                            "Check the server log; restore state/system.duckdb from a backup if it is damaged."
                        )
                    ),
                );
                CURRENT_SCHEMA_VERSION
            }
        };

        match self.layout().create() {
            Ok(()) => checks.ok("data_dir", "every folder of the data directory is writable"),
            Err(e) => checks.problem(
                "data_dir",
                CheckStatus::Warning,
                "not_writable",
                None,
                e.message_and_hint(),
            ),
        }

        check_disk(checks, &self.layout().root);
        self.check_release(checks);
        schema_version
    }

    fn check_release(&self, checks: &mut Checks) {
        let settings = self.settings();
        let release = format!(
            "version {} on channel {}, commit {}",
            settings.version, settings.channel, settings.commit
        );
        checks.ok("release", format!("running {release}"));
        let listed = match settings.deprecated_file.as_deref() {
            Some(file) => match read_deprecations(file) {
                Ok(list) => list
                    .deprecated
                    .into_iter()
                    .find(|d| d.version == settings.version),
                Err(problem) => {
                    checks.problem(
                        "release",
                        CheckStatus::Warning,
                        "deprecated_file_unreadable",
                        None,
                        format!(
                            "the list of deprecated versions cannot be read: {problem}. Fix the file AGNES_DEPRECATED_FILE names (JSON: {{\"deprecated\": [{{\"version\": \"...\", \"upgrade_to\": \"...\"}}]}}) or unset the variable."
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        if listed.is_none() && settings.channel != "deprecated" {
            return;
        }
        let target = listed
            .as_ref()
            .and_then(|d| d.upgrade_to.clone())
            .map(|v| format!("version {v}"))
            .unwrap_or_else(|| "the latest release of the stable channel".to_string());
        let reason = listed
            .as_ref()
            .and_then(|d| d.reason.clone())
            .map(|r| format!(" Reason: {r}."))
            .unwrap_or_default();
        checks.problem(
            "release",
            CheckStatus::Warning,
            "deprecated",
            None,
            format!(
                "Running deprecated version {}. Update to {target}: pull that image tag and restart; the data directory carries over.{reason}",
                settings.version
            ),
        );
    }

    fn count_users(&self) -> (Option<i64>, Option<i64>) {
        let counts = self.state().with_conn(|conn| {
            conn.query_row(
                "SELECT count(*), count(*) FILTER (WHERE role = 'admin' AND active) FROM users",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| crate::error::Error::state_db("counting users", &e))
        });
        match counts {
            Ok((users, admins)) => (Some(users), Some(admins)),
            Err(_) => (None, None),
        }
    }

    /// Builds the report from finished checks.
    fn assemble(
        &self,
        checks: Checks,
        schema_version: i64,
        plane: Option<PlaneParts>,
    ) -> DetailedHealthReport {
        let (users, active_admins) = self.count_users();
        let plane = plane.unwrap_or_default();
        DetailedHealthReport {
            status: checks.status(),
            version: self.settings().version.clone(),
            channel: self.settings().channel.clone(),
            commit: self.settings().commit.clone(),
            schema_version,
            setup_required: self.is_setup_required(),
            timestamp: Utc::now(),
            uptime_seconds: self.uptime().as_secs(),
            checks: checks.checks,
            warnings: checks.warnings,
            sources: plane.sources,
            stale_tables: plane.stale_tables,
            last_sync: plane.last_sync,
            disk: disk_space(&self.layout().root).ok(),
            diagnostics: Diagnostics {
                data_dir: self.layout().root.display().to_string(),
                state_db_bytes: std::fs::metadata(&self.layout().state_db)
                    .ok()
                    .map(|m| m.len()),
                users,
                active_admins,
                uptime_seconds: self.uptime().as_secs(),
                jwt_secret_source: self.secret_source().as_str().to_string(),
                published_tables: plane.published_tables,
                published_at: plane.published_at,
            },
        }
    }
}

/// Parts of the report that the data plane checks fill in.
#[derive(Default)]
struct PlaneParts {
    sources: Vec<SourceHealth>,
    stale_tables: Vec<StaleTable>,
    last_sync: Option<LastSync>,
    published_tables: usize,
    published_at: Option<DateTime<Utc>>,
}

impl DataPlane {
    /// Runs every check and returns the public report. Blocking, like
    /// [`DataPlane::detailed_health`].
    pub fn health(&self) -> HealthReport {
        self.detailed_health().public()
    }

    /// Runs every check, the instance's and the data plane's, and returns the report with its
    /// warnings and diagnostics. Blocking (it queries the state database and runs `SELECT 1` on
    /// the query engine); a failing check shows in the report instead of as an error.
    pub fn detailed_health(&self) -> DetailedHealthReport {
        let instance = self.instance();
        let mut checks = Checks::default();
        let schema_version = instance.run_instance_checks(&mut checks);
        let mut parts = PlaneParts::default();

        self.check_query_engine(&mut checks);
        self.check_sources(&mut checks, &mut parts);
        self.check_stale_tables(&mut checks, &mut parts);
        self.check_last_sync(&mut checks, &mut parts);

        instance.assemble(checks, schema_version, Some(parts))
    }

    fn check_query_engine(&self, checks: &mut Checks) {
        match self.engine().query("SELECT 1", 1) {
            Ok(result) if result.rows == vec![vec![serde_json::json!(1)]] => {
                checks.ok("query_engine", "SELECT 1 runs on the published data")
            }
            Ok(result) => checks.problem(
                "query_engine",
                CheckStatus::Error,
                "wrong_result",
                None,
                format!(
                    "SELECT 1 returned {:?} instead of one row with 1; restart the server and report this.",
                    result.rows
                ),
            ),
            Err(e) => {
                // A full server is busy, not broken.
                let status = if e.code == "query.busy" {
                    CheckStatus::Warning
                } else {
                    CheckStatus::Error
                };
                checks.problem(
                    "query_engine",
                    status,
                    "failed",
                    None,
                    format!("SELECT 1 failed ({}): {}", e.code, e.message_and_hint()),
                );
            }
        }
    }

    fn check_sources(&self, checks: &mut Checks, parts: &mut PlaneParts) {
        let Some(publication) = self.publication() else {
            checks.problem(
                "sources",
                CheckStatus::Warning,
                "not_published",
                None,
                "nothing is published yet; configure a source and run a sync (`agnes sync`, POST /api/sync/trigger)".to_string(),
            );
            return;
        };
        parts.published_tables = publication.tables.len();
        parts.published_at = Some(publication.built_at);
        let extracts = &publication.extracts_root;
        let mut contract_warnings = 0;
        for source in &publication.sources {
            let errors: Vec<_> = source
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .collect();
            let warning_count = source.findings.len() - errors.len();
            contract_warnings += warning_count;
            let status = match source.status {
                SourceStatus::Published => "published",
                SourceStatus::Partial => "partial",
                SourceStatus::Skipped => "skipped",
            };
            parts.sources.push(SourceHealth {
                name: source.name.clone(),
                status: status.to_string(),
                tables: source.tables.len(),
                errors: errors.len(),
                warnings: warning_count,
                findings: source
                    .findings
                    .iter()
                    .take(FINDINGS_PER_SOURCE)
                    .map(|f| SourceFinding {
                        code: f.code.as_str().to_string(),
                        severity: f.severity.as_str().to_string(),
                        table: f.table.clone(),
                        message: f.message.clone(),
                        hint: f.hint.clone(),
                    })
                    .collect(),
                problems: source.errors.clone(),
            });
            if source.status == SourceStatus::Published {
                continue;
            }
            let mut reasons: Vec<String> = errors
                .iter()
                .take(3)
                .map(|f| match &f.table {
                    Some(table) => format!("{} in {table}: {}", f.code, f.message),
                    None => format!("{}: {}", f.code, f.message),
                })
                .collect();
            reasons.extend(source.errors.iter().take(3).cloned());
            let folder = extracts.join(&source.name);
            let what = if source.status == SourceStatus::Skipped {
                "is not published"
            } else {
                "is published only in part"
            };
            checks.problem(
                "sources",
                CheckStatus::Warning,
                status,
                Some(&source.name),
                format!(
                    "source {} {what} ({} contract errors): {}. Fix the connector or its extract, check it with `agnes contract validate {}`, then run `agnes sync`; the data published before keeps serving.",
                    source.name,
                    errors.len(),
                    if reasons.is_empty() { "no tables in _meta".to_string() } else { reasons.join("; ") },
                    folder.display()
                ),
            );
        }
        for collision in &publication.collisions {
            checks.problem(
                "sources",
                CheckStatus::Warning,
                "collision",
                Some(&collision.name),
                format!(
                    "table {} is offered by several sources; {} publishes it and {} do not. Rename the table in one source (or register it under another name) and sync.",
                    collision.name,
                    collision.kept,
                    collision.dropped.join(", ")
                ),
            );
        }
        for table in &publication.tables {
            let missing: Vec<&std::path::Path> = table
                .files
                .iter()
                .map(|file| file.as_path())
                .filter(|file| {
                    std::fs::metadata(file).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                })
                .collect();
            let Some(first) = missing.first() else {
                continue;
            };
            let more = match missing.len() {
                1 => String::new(),
                n => format!(" and {} more of its files", n - 1),
            };
            checks.problem(
                "sources",
                CheckStatus::Warning,
                "file_missing",
                Some(&table.name),
                format!(
                    "table {} of source {} is published, but its data file {}{more} is gone, so queries of it fail. Run `agnes sync --table {}` (POST /api/sync/trigger) to write it again; a standalone connector must write its extract again itself.",
                    table.name,
                    table.source,
                    first.display(),
                    table.name
                ),
            );
        }
        if !checks.checks.contains_key("sources") {
            let published = publication
                .sources
                .iter()
                .filter(|s| s.status == SourceStatus::Published)
                .count();
            checks.ok(
                "sources",
                format!(
                    "published sources: {published} of {}; tables: {}; contract warnings: {contract_warnings}",
                    publication.sources.len(),
                    publication.tables.len()
                ),
            );
        }
    }

    fn check_stale_tables(&self, checks: &mut Checks, parts: &mut PlaneParts) {
        let limit = self.instance().settings().stale_after;
        let rows = self.instance().state().with_conn(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT r.name, r.source, CAST(s.last_sync AS VARCHAR), s.status, s.error \
                     FROM table_registry r LEFT JOIN sync_state s ON s.table_id = r.id ORDER BY r.id",
                )
                .map_err(|e| crate::error::Error::state_db("reading sync state", &e))?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(|e| crate::error::Error::state_db("reading sync state", &e))?;
            rows.collect::<duckdb::Result<Vec<_>>>()
                .map_err(|e| crate::error::Error::state_db("reading sync state", &e))
        });
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                checks.problem(
                    "stale_tables",
                    CheckStatus::Warning,
                    "unreadable",
                    None,
                    format!("the sync state cannot be read: {}", e.message),
                );
                return;
            }
        };
        let now = Utc::now();
        let hours = |d: std::time::Duration| format!("{:.0}", d.as_secs_f64() / 3600.0);
        let registered = rows.len();
        for (name, source, last_sync, status, error) in rows {
            let last_error = (status.as_deref() == Some("error"))
                .then_some(error)
                .flatten();
            let synced_at = last_sync.as_deref().and_then(|t| from_db_time(t).ok());
            let fix = match &last_error {
                Some(error) => format!(
                    " Its last sync failed: {error}. Fix that, then run `agnes sync --table {name}`."
                ),
                None => format!(" Run `agnes sync --table {name}` (POST /api/sync/trigger)."),
            };
            match synced_at {
                None => checks.problem(
                    "stale_tables",
                    CheckStatus::Warning,
                    "never_synced",
                    Some(&name),
                    format!(
                        "table {name} of source {source} is registered but was never synced.{fix}"
                    ),
                ),
                Some(at) if (now - at).to_std().is_ok_and(|age| age > limit) => {
                    let age = (now - at).to_std().unwrap_or_default();
                    checks.problem(
                        "stale_tables",
                        CheckStatus::Warning,
                        "stale",
                        Some(&name),
                        format!(
                            "table {name} of source {source} was last synced {} hours ago, more than the limit of {} hours (AGNES_STALE_AFTER_HOURS).{fix}",
                            hours(age),
                            hours(limit)
                        ),
                    );
                }
                Some(_) => continue,
            }
            parts.stale_tables.push(StaleTable {
                name,
                source,
                last_sync,
                last_error,
            });
        }
        if parts.stale_tables.is_empty() {
            checks.ok(
                "stale_tables",
                format!(
                    "all {registered} registered tables were synced within {} hours",
                    hours(limit)
                ),
            );
        } else if let Some(check) = checks.checks.get_mut("stale_tables") {
            check.message = format!(
                "{} of {registered} registered tables were never synced or not within {} hours; see `warnings` for each, and run `agnes sync`.",
                parts.stale_tables.len(),
                hours(limit)
            );
        }
    }

    fn check_last_sync(&self, checks: &mut Checks, parts: &mut PlaneParts) {
        let status = match self.status() {
            Ok(status) => status,
            Err(e) => {
                checks.problem(
                    "last_sync",
                    CheckStatus::Warning,
                    "unreadable",
                    None,
                    format!("the sync jobs cannot be read: {}", e.message),
                );
                return;
            }
        };
        let running = status.running.as_ref().map(|j| j.id.clone());
        let running_note = running
            .as_ref()
            .map(|id| format!("; sync job {id} is running"))
            .unwrap_or_default();
        let Some(job) = status.last else {
            checks.ok(
                "last_sync",
                format!("no sync has finished yet{running_note}"),
            );
            return;
        };
        let mut problems: Vec<String> = Vec::new();
        for source in &job.sources {
            if let Some(error) = &source.error {
                problems.push(format!("source {}: {error}", source.name));
            }
            for table in source.tables.iter().filter(|t| t.status == "failed") {
                problems.push(format!(
                    "table {} of source {}: {}",
                    table.name,
                    source.name,
                    table.error.as_deref().unwrap_or("failed")
                ));
            }
        }
        problems.extend(job.publication_errors.iter().cloned());
        if let Some(error) = &job.error {
            problems.push(error.clone());
        }
        let finished = job.finished_at.clone().unwrap_or_default();
        match job.status {
            JobStatus::Succeeded | JobStatus::Running => checks.ok(
                "last_sync",
                format!(
                    "sync job {} succeeded at {finished} UTC{running_note}",
                    job.id
                ),
            ),
            JobStatus::Partial | JobStatus::Failed => {
                let (condition, what) = if job.status == JobStatus::Failed {
                    ("failed", "failed")
                } else {
                    ("partial", "finished with failures")
                };
                let details = if problems.is_empty() {
                    "no details recorded".to_string()
                } else {
                    problems
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                checks.problem(
                    "last_sync",
                    CheckStatus::Warning,
                    condition,
                    Some(&job.id),
                    format!(
                        "{} The data published before keeps serving; fix the cause, then run `agnes sync` (`agnes admin jobs {}` shows the whole job){running_note}.",
                        end_sentence(&format!("sync job {} {what} at {finished} UTC: {details}", job.id)),
                        job.id
                    ),
                );
            }
        }
        parts.last_sync = Some(LastSync {
            id: job.id,
            status: job.status,
            created_at: job.created_at,
            finished_at: job.finished_at,
            duration_ms: job.duration_ms,
            published_tables: job.published_tables,
            problems,
            running_job: running,
        });
    }
}

/// Reads free and total bytes of the file system that contains `path`.
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    let stats = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(DiskSpace {
        free_bytes: stats.f_bavail.saturating_mul(stats.f_frsize),
        total_bytes: stats.f_blocks.saturating_mul(stats.f_frsize),
    })
}

fn check_disk(checks: &mut Checks, root: &Path) {
    let space = match disk_space(root) {
        Ok(space) => space,
        Err(e) => {
            checks.problem(
                "disk_space",
                CheckStatus::Warning,
                "unknown",
                None,
                format!("the free space of the data directory cannot be read: {e}"),
            );
            return;
        }
    };
    let text = format!(
        "{} free of {} on the data directory's file system",
        human_bytes(space.free_bytes),
        human_bytes(space.total_bytes)
    );
    let fix = "Free space, or move the data directory to a larger disk: a sync writes each new extract beside the one it replaces.";
    if space.free_bytes < DISK_ERROR_BYTES {
        checks.problem(
            "disk_space",
            CheckStatus::Error,
            "full",
            None,
            format!("only {text}; syncs will fail. {fix}"),
        );
    } else if space.free_bytes < DISK_WARNING_BYTES
        || space.free_bytes.saturating_mul(20) < space.total_bytes
    {
        checks.problem(
            "disk_space",
            CheckStatus::Warning,
            "low",
            None,
            format!("only {text}. {fix}"),
        );
    } else {
        checks.ok("disk_space", text);
    }
}

/// Formats a byte count with a binary unit, such as `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The file of deprecated versions a release image ships.
#[derive(Debug, Default, Deserialize)]
struct DeprecationList {
    #[serde(default)]
    deprecated: Vec<Deprecation>,
}

/// One deprecated version.
#[derive(Debug, Deserialize)]
struct Deprecation {
    version: String,
    #[serde(default)]
    upgrade_to: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn read_deprecations(file: &Path) -> Result<DeprecationList, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("it is not valid JSON of the expected shape: {e}"))
}

fn overall(statuses: impl Iterator<Item = CheckStatus>) -> HealthStatus {
    statuses.fold(HealthStatus::Healthy, |worst, status| {
        match (worst, status) {
            (HealthStatus::Unhealthy, _) | (_, CheckStatus::Error) => HealthStatus::Unhealthy,
            (_, CheckStatus::Warning) => HealthStatus::Degraded,
            (current, CheckStatus::Ok) => current,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn worst_check_wins() {
        use CheckStatus::*;
        assert_eq!(overall([Ok, Ok].into_iter()), HealthStatus::Healthy);
        assert_eq!(overall([Ok, Warning].into_iter()), HealthStatus::Degraded);
        assert_eq!(
            overall([Error, Warning].into_iter()),
            HealthStatus::Unhealthy
        );
    }

    #[test]
    fn problem_raises_but_never_lowers_a_check() {
        let mut checks = Checks::default();
        checks.ok("sources", "fine");
        checks.problem("sources", CheckStatus::Error, "x", None, "bad".into());
        checks.problem(
            "sources",
            CheckStatus::Warning,
            "y",
            Some("t"),
            "meh".into(),
        );
        assert_eq!(checks.checks["sources"].status, CheckStatus::Error);
        assert_eq!(checks.warnings.len(), 2);
        assert_eq!(checks.warnings[1].code, "sources.y");
        assert_eq!(checks.warnings[1].subject.as_deref(), Some("t"));
    }

    #[test]
    fn disk_space_of_a_real_folder() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.free_bytes <= space.total_bytes);
    }
}
