//! The audit log: one row per security-relevant event, such as a login, a failed login, a token
//! created or revoked, or a user changed. Rows never contain a password, token or token hash.

use std::net::IpAddr;

use chrono::Utc;
use duckdb::Connection;

use crate::error::{Error, Result};
use crate::state::to_db_time;

/// Outcome of an audited action, stored in `audit_log.result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The action was carried out.
    Success,
    /// The action was rejected, for example because of a wrong password.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The acting user, when known.
    pub user_id: Option<&'a str>,
    /// Dotted action name, such as `auth.login` or `token.revoke`.
    pub action: &'a str,
    /// The object acted on, such as a user id or token id.
    pub resource: Option<&'a str>,
    /// Further details; never a secret.
    pub params: serde_json::Value,
    /// Whether the action succeeded.
    pub outcome: Outcome,
    /// Address of the client that sent the request, when known.
    pub client_ip: Option<IpAddr>,
}

/// Appends `event` to the audit log.
///
/// Fails with `state.query_failed` when the row cannot be written.
pub fn record(conn: &Connection, event: &AuditEvent<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (id, occurred_at, user_id, action, resource, params, result, client_ip) \
         VALUES (?, ?::TIMESTAMP, ?, ?, ?, ?::JSON, ?, ?)",
        duckdb::params![
            uuid::Uuid::new_v4().to_string(),
            to_db_time(Utc::now()),
            event.user_id,
            event.action,
            event.resource,
            event.params.to_string(),
            event.outcome.as_str(),
            event.client_ip.map(|ip| ip.to_string()),
        ],
    )
    .map_err(|e| Error::state_db("writing the audit log", &e))?;
    Ok(())
}

/// Appends `event` and logs, instead of returning, a failure to write it, for callers whose own
/// result must not depend on the audit log (a rejected login stays rejected either way).
pub fn record_or_log(conn: &Connection, event: &AuditEvent<'_>) {
    if let Err(e) = record(conn, event) {
        tracing::error!(action = event.action, error = %e, "failed to write an audit event");
    }
}
