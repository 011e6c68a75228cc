//! The PostgreSQL connector, through DuckDB's `postgres` extension.
//!
//! In `remote` mode the extract holds only views over the attached database and a
//! `_remote_attach` row; queries read PostgreSQL live. In `local` mode every table is copied to
//! Parquet. The password never enters the extract: it is stored by Agnes under a secret name
//! (`AGNES_SECRET_<SOURCE>_PASSWORD`) that `_remote_attach.token_env` names.

use std::sync::Arc;

use contract_spec::QueryMode;
use contract_spec::identifier::quote_identifier;

use super::{
    Connector, DiscoveredTable, Discovery, ExtractOutcome, SelectedTable, TableProgress,
    table_name_for,
};
use crate::error::{Error, Result};
use crate::extract::ExtractWriter;
use crate::remote::{self, RemoteAttachment, RemotePolicy, SecretLookup};

/// Settings of one PostgreSQL source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Source name.
    pub source: String,
    /// libpq connection string or URI, without the password.
    pub url: String,
    /// Name of the secret holding the password, if there is one.
    pub password_secret: Option<String>,
    /// Schemas to offer; empty means every schema but the system ones.
    pub schemas: Vec<String>,
    /// `remote` or `local`.
    pub mode: QueryMode,
}

/// A PostgreSQL database.
pub struct PostgresConnector {
    settings: PostgresSettings,
    policy: RemotePolicy,
    secrets: Arc<dyn SecretLookup>,
}

impl PostgresConnector {
    /// Creates a connector; `policy` and `secrets` are the ones the orchestrator uses.
    pub fn new(
        settings: PostgresSettings,
        policy: RemotePolicy,
        secrets: Arc<dyn SecretLookup>,
    ) -> Self {
        Self {
            settings,
            policy,
            secrets,
        }
    }

    /// The catalog alias the extract's views use: `pg_<source>`, cut to 64 characters.
    pub fn alias(&self) -> String {
        format!("pg_{}", self.settings.source)
            .chars()
            .take(64)
            .collect()
    }

    fn attachment(&self) -> RemoteAttachment {
        RemoteAttachment {
            source: self.settings.source.clone(),
            alias: self.alias(),
            extension: "postgres".to_string(),
            url: self.settings.url.clone(),
            token_env: self.settings.password_secret.clone(),
        }
    }

    fn attach_to(&self, conn: &duckdb::Connection) -> Result<()> {
        remote::attach(conn, &self.attachment(), &self.policy, self.secrets.as_ref()).map_err(|message| {
            Error::invalid("source.unreachable", message)
                .with_hint("Check the connection string, the password and that the server accepts connections from Agnes.")
        })
    }

    fn list_tables(&self, conn: &duckdb::Connection) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT table_schema, table_name FROM {}.information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
            quote_identifier(&self.alias())
        );
        let read = || -> duckdb::Result<Vec<(String, String)>> {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        };
        let tables = read().map_err(|e| {
            Error::invalid(
                "source.unreachable",
                format!("cannot list PostgreSQL tables: {e}"),
            )
        })?;
        Ok(tables
            .into_iter()
            .filter(|(schema, _)| {
                self.settings.schemas.is_empty() || self.settings.schemas.contains(schema)
            })
            .collect())
    }
}

impl Connector for PostgresConnector {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn discover(&self) -> Result<Discovery> {
        let conn = duckdb::Connection::open_in_memory()
            .map_err(|e| Error::internal(format!("DuckDB: {e}")))?;
        configure(&conn, &self.policy)?;
        self.attach_to(&conn)?;
        let mut discovery = Discovery::default();
        let mut seen = std::collections::HashSet::new();
        for (schema, table) in self.list_tables(&conn)? {
            let raw = if schema == "public" {
                table.clone()
            } else {
                format!("{schema}_{table}")
            };
            let Some(name) = table_name_for(&raw) else {
                discovery.problems.push(format!(
                    "{schema}.{table}: no table name can be made from it"
                ));
                continue;
            };
            if !seen.insert(name.clone()) {
                discovery.problems.push(format!("{schema}.{table} maps to {name}, which another table already uses; register it under another name"));
                continue;
            }
            discovery.tables.push(DiscoveredTable {
                name,
                source_table: format!("{schema}.{table}"),
                query_mode: self.settings.mode,
                description: format!("PostgreSQL table {schema}.{table}"),
            });
        }
        Ok(discovery)
    }

    fn extract(
        &self,
        writer: &mut ExtractWriter,
        tables: &[SelectedTable],
        progress: &mut dyn FnMut(TableProgress),
    ) -> Result<ExtractOutcome> {
        configure(writer.connection(), &self.policy)?;
        self.attach_to(writer.connection())?;
        let alias = self.alias();
        let remote_tables = tables.iter().any(|t| t.query_mode == QueryMode::Remote);
        if remote_tables {
            let row = self.attachment();
            writer.add_remote_attach(
                &row.alias,
                &row.extension,
                &row.url,
                row.token_env.as_deref(),
            )?;
        }

        let mut outcome = ExtractOutcome::default();
        for (done, table) in tables.iter().enumerate() {
            progress(TableProgress {
                table: table.name.clone(),
                done,
                total: tables.len(),
            });
            let Some((schema, name)) = table.source_table.split_once('.') else {
                outcome.failed.push((
                    table.name.clone(),
                    format!("source_table {} is not schema.table", table.source_table),
                ));
                continue;
            };
            let target = format!(
                "{}.{}.{}",
                quote_identifier(&alias),
                quote_identifier(schema),
                quote_identifier(name)
            );
            let written = match table.query_mode {
                QueryMode::Remote => {
                    writer.add_remote_view(&table.name, &target, &table.description)
                }
                mode => writer.add_parquet_table(
                    &table.name,
                    &format!("SELECT * FROM {target}"),
                    &table.description,
                    mode,
                ),
            };
            if let Err(error) = written {
                tracing::warn!(table = %table.name, %error, "cannot extract a PostgreSQL table");
                outcome.failed.push((table.name.clone(), error.message));
            }
        }
        if let Err(error) = writer
            .connection()
            .execute_batch(&format!("DETACH {}", quote_identifier(&alias)))
        {
            tracing::warn!(%error, "cannot detach PostgreSQL after extraction");
        }
        Ok(outcome)
    }
}

/// Points the connection's extension directory at the configured one, so `LOAD postgres` finds
/// the extension file offline.
fn configure(conn: &duckdb::Connection, policy: &RemotePolicy) -> Result<()> {
    conn.execute_batch(
        "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
    )
    .map_err(|e| Error::internal(format!("DuckDB: {e}")))?;
    if let Some(dir) = &policy.extension_directory {
        let sql = format!(
            "SET extension_directory = {}",
            contract_spec::identifier::quote_literal(&dir.to_string_lossy())
        );
        conn.execute_batch(&sql)
            .map_err(|e| Error::internal(format!("DuckDB: {e}")))?;
    }
    Ok(())
}
