//! The health report: an overall status computed from named checks.
//!
//! The public report holds only statuses, the version and whether setup is needed; counts, paths
//! and error details are in the detailed report, which only admins see.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::instance::Instance;
use crate::state::CURRENT_SCHEMA_VERSION;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// Checks by name: `state_db` and `data_dir`.
    pub checks: BTreeMap<String, Check>,
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
    /// Details of checks that did not pass, by check name.
    pub check_details: BTreeMap<String, String>,
}

/// The health report with diagnostics, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DetailedHealthReport {
    /// The public report.
    #[serde(flatten)]
    pub report: HealthReport,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

struct CheckResult {
    status: CheckStatus,
    detail: Option<String>,
}

impl Instance {
    /// Runs the checks and returns the public report. Blocking (it queries the state database);
    /// a failing check shows in the report instead of as an error.
    pub fn health(&self) -> HealthReport {
        self.detailed_health().report
    }

    /// Runs the checks and returns the report with diagnostics. Blocking, like
    /// [`Instance::health`].
    pub fn detailed_health(&self) -> DetailedHealthReport {
        let (state_check, schema_version) = self.check_state_db();
        let data_check = self.check_data_dir();
        let results = [("state_db", state_check), ("data_dir", data_check)];

        let status = overall(results.iter().map(|(_, r)| r.status));
        let checks = results
            .iter()
            .map(|(name, r)| (name.to_string(), Check { status: r.status }))
            .collect();
        let check_details = results
            .iter()
            .filter_map(|(name, r)| r.detail.clone().map(|d| (name.to_string(), d)))
            .collect();
        let (users, active_admins) = self.count_users();

        DetailedHealthReport {
            report: HealthReport {
                status,
                version: self.settings().version.clone(),
                channel: self.settings().channel.clone(),
                schema_version,
                setup_required: self.is_setup_required(),
                timestamp: Utc::now(),
                checks,
            },
            diagnostics: Diagnostics {
                data_dir: self.layout().root.display().to_string(),
                state_db_bytes: std::fs::metadata(&self.layout().state_db)
                    .ok()
                    .map(|m| m.len()),
                users,
                active_admins,
                uptime_seconds: self.uptime().as_secs(),
                jwt_secret_source: self.secret_source().as_str().to_string(),
                check_details,
            },
        }
    }

    fn check_state_db(&self) -> (CheckResult, i64) {
        match self.state().schema_version() {
            Ok(version) => (
                CheckResult {
                    status: CheckStatus::Ok,
                    detail: None,
                },
                version,
            ),
            Err(e) => (
                CheckResult {
                    status: CheckStatus::Error,
                    detail: Some(e.message),
                },
                CURRENT_SCHEMA_VERSION,
            ),
        }
    }

    fn check_data_dir(&self) -> CheckResult {
        match self.layout().create() {
            Ok(()) => CheckResult {
                status: CheckStatus::Ok,
                detail: None,
            },
            Err(e) => CheckResult {
                status: CheckStatus::Warning,
                detail: Some(e.message),
            },
        }
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
