//! The ordered schema migrations of the state database.
//!
//! A migration is applied once, in its own transaction together with its row in `schema_version`,
//! so a crash leaves the database at the previous version and never half-migrated. Migrations are
//! append-only: a released migration never changes, a change to the schema is a new migration.

/// One step of the schema, identified by the version it brings the database to.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version the database has after this migration.
    pub version: i64,
    /// What the migration changes, stored in `schema_version.description`.
    pub description: &'static str,
    /// The DDL statements, separated by semicolons.
    pub sql: &'static str,
}

/// Every migration, in the order it is applied; versions count up from 1 without gaps.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, personal access tokens and audit log",
        sql: r#"
CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);
CREATE TABLE users (
    id VARCHAR PRIMARY KEY,
    email VARCHAR NOT NULL UNIQUE,
    name VARCHAR NOT NULL DEFAULT '',
    role VARCHAR NOT NULL,
    password_hash VARCHAR,
    password_changed_at TIMESTAMP,
    active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deactivated_at TIMESTAMP
);
CREATE TABLE personal_access_tokens (
    id VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    token_hash VARCHAR NOT NULL,
    prefix VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE TABLE audit_log (
    id VARCHAR PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    user_id VARCHAR,
    action VARCHAR NOT NULL,
    resource VARCHAR,
    params JSON,
    result VARCHAR NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        description: "table registry, table grants, sync state, history and jobs; audit client address",
        sql: r#"
CREATE TABLE table_registry (
    id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    source_table VARCHAR,
    query_mode VARCHAR NOT NULL DEFAULT 'local',
    sync_strategy VARCHAR NOT NULL DEFAULT 'full_refresh',
    sync_schedule VARCHAR,
    primary_key VARCHAR,
    description VARCHAR,
    is_public BOOLEAN NOT NULL DEFAULT true,
    registered_by VARCHAR,
    registered_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP
);
CREATE TABLE table_grants (
    table_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    granted_by VARCHAR,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (table_id, user_id)
);
CREATE TABLE sync_state (
    table_id VARCHAR PRIMARY KEY,
    last_sync TIMESTAMP,
    rows BIGINT,
    file_size_bytes BIGINT,
    uncompressed_size_bytes BIGINT,
    columns INTEGER,
    hash VARCHAR,
    status VARCHAR NOT NULL DEFAULT 'ok',
    error VARCHAR
);
CREATE TABLE sync_history (
    id VARCHAR PRIMARY KEY,
    job_id VARCHAR,
    table_id VARCHAR NOT NULL,
    synced_at TIMESTAMP NOT NULL,
    rows BIGINT,
    duration_ms BIGINT,
    status VARCHAR NOT NULL,
    error VARCHAR
);
CREATE TABLE sync_jobs (
    id VARCHAR PRIMARY KEY,
    status VARCHAR NOT NULL,
    requested_by VARCHAR,
    tables JSON,
    progress JSON,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    error VARCHAR,
    result JSON
);
ALTER TABLE audit_log ADD COLUMN client_ip VARCHAR;
"#,
    },
];

/// The schema version this build writes: the version of the last migration.
pub const CURRENT_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;
