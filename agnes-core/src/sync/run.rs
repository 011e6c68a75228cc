//! The steps of one sync job.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use chrono::Utc;
use contract_spec::QueryMode;
use duckdb::params;

use super::DataPlane;
use super::job::{self, Job, JobStatus, SourceRun, TableRun};
use crate::connector::{SelectedTable, custom};
use crate::error::{Error, Result};
use crate::extract::CarriedTable;
use crate::registry::{self, RegisteredTable};
use crate::sources::SourceConfig;
use crate::state::to_db_time;

impl DataPlane {
    /// Runs job `id` to the end and records its outcome; a failed step becomes the job's error.
    pub(super) fn run_job(&self, id: &str) {
        let started = Instant::now();
        let outcome = self.run_steps();

        // The finished record is stored before the running slot is cleared, so a caller never
        // sees the job finished while a new trigger would still be refused.
        let Some(mut job) = self.snapshot_job() else {
            return;
        };
        match &outcome {
            Ok(status) => job.status = *status,
            Err(error) => {
                job.status = JobStatus::Failed;
                job.error = Some(error.message_and_hint());
            }
        }
        job.progress.phase = "done".to_string();
        job.progress.current_source = None;
        job.progress.current_table = None;
        job.finished_at = Some(to_db_time(Utc::now()));
        job.duration_ms = Some(started.elapsed().as_millis() as u64);
        if let Err(error) = job::save(self.instance.state(), &job) {
            tracing::error!(job = %id, %error, "cannot record the end of a sync job");
        }
        self.record_tables(&job);
        tracing::info!(job = %id, status = ?job.status, duration_ms = job.duration_ms, "sync job finished");
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn snapshot_job(&self) -> Option<Job> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn tables_done(&self) -> usize {
        self.snapshot_job()
            .map_or(0, |job| job.progress.tables_done)
    }

    fn save_progress(&self) {
        if let Some(job) = self.snapshot_job()
            && let Err(error) = job::save(self.instance.state(), &job)
        {
            tracing::warn!(job = %job.id, %error, "cannot record sync progress");
        }
    }

    fn run_steps(&self) -> Result<JobStatus> {
        let subset = self
            .snapshot_job()
            .and_then(|job| job.tables)
            .map(|t| t.iter().map(|s| s.to_lowercase()).collect::<HashSet<_>>());
        let configured = self.sources.list()?;

        let mut tables = registry::list(self.instance.state())?;
        if tables.is_empty() && subset.is_none() && !configured.is_empty() {
            self.update_running(|job| job.progress.phase = "discovering".to_string());
            let found = self.discover_and_register(Some("auto-discovery"), false)?;
            tracing::info!(
                registered = found.registered.len(),
                problems = found.errors.len(),
                "registered tables found on the first sync"
            );
            tables = registry::list(self.instance.state())?;
        }

        let mut by_source: BTreeMap<String, Vec<RegisteredTable>> = BTreeMap::new();
        for table in tables {
            by_source
                .entry(table.source.clone())
                .or_default()
                .push(table);
        }
        let plan: Vec<(String, SourceConfig, Vec<RegisteredTable>)> = configured
            .into_iter()
            .filter_map(|(name, config)| {
                let tables = by_source.remove(&name).unwrap_or_default();
                let wanted = subset
                    .as_ref()
                    .is_none_or(|s| tables.iter().any(|t| s.contains(&t.id)));
                (wanted && !tables.is_empty()).then_some((name, config, tables))
            })
            .collect();
        let (custom_connectors, custom_problems) = if subset.is_none() {
            custom::scan(&self.connectors_dir)
        } else {
            (Vec::new(), Vec::new())
        };

        let total = plan.len() + custom_connectors.len();
        let tables_total = plan
            .iter()
            .map(|(_, _, tables)| selected_tables(tables, subset.as_ref()).len())
            .sum();
        self.update_running(|job| {
            job.progress.phase = "extracting".to_string();
            job.progress.sources_total = total;
            job.progress.tables_total = tables_total;
            job.publication_errors.extend(custom_problems.clone());
        });
        self.save_progress();

        for (name, config, tables) in &plan {
            let run = self.sync_source(name, config, tables, subset.as_ref());
            self.update_running(|job| {
                job.sources.push(run);
                job.progress.sources_done += 1;
            });
            self.save_progress();
        }

        self.update_running(|job| job.progress.phase = "custom_connectors".to_string());
        for connector in &custom_connectors {
            self.update_running(|job| job.progress.current_source = Some(connector.name.clone()));
            let run = self.sync_custom(connector);
            self.update_running(|job| {
                job.sources.push(run);
                job.progress.sources_done += 1;
            });
            self.save_progress();
        }

        self.update_running(|job| {
            job.progress.phase = "publishing".to_string();
            job.progress.current_source = None;
            job.progress.current_table = None;
        });
        // Every version this job wrote is published or deleted by now, so nothing is in progress.
        let publication = self.publish_keeping(std::time::Duration::ZERO)?;
        let problems: Vec<String> = publication
            .sources
            .iter()
            .flat_map(|s| {
                let findings = s
                    .findings
                    .iter()
                    .filter(|f| f.severity == contract_spec::Severity::Error)
                    .map(move |f| format!("{}: {} {}", s.name, f.code, f.message));
                let errors = s.errors.iter().map(move |e| format!("{}: {e}", s.name));
                findings.chain(errors).collect::<Vec<_>>()
            })
            .collect();

        let mut status = JobStatus::Succeeded;
        self.update_running(|job| {
            job.published_tables = Some(publication.tables.len());
            job.publication_errors.extend(problems);
            let failed = job.sources.iter().filter(|s| s.status == "failed").count();
            let partial = job.sources.iter().any(|s| s.status == "partial")
                || !job.publication_errors.is_empty();
            status = if failed > 0 && failed == job.sources.len() {
                JobStatus::Failed
            } else if failed > 0 || partial {
                JobStatus::Partial
            } else {
                JobStatus::Succeeded
            };
            if status == JobStatus::Failed {
                job.error = Some(
                    "every source failed; the data published before keeps serving".to_string(),
                );
            }
        });
        Ok(status)
    }

    /// Extracts one configured source into a new version and publishes it if it is valid.
    fn sync_source(
        &self,
        name: &str,
        config: &SourceConfig,
        registered: &[RegisteredTable],
        subset: Option<&HashSet<String>>,
    ) -> SourceRun {
        let started = Instant::now();
        let mut run = SourceRun {
            name: name.to_string(),
            kind: config.kind().to_string(),
            status: "ok".to_string(),
            tables: Vec::new(),
            duration_ms: 0,
            error: None,
            log: None,
        };
        self.update_running(|job| job.progress.current_source = Some(name.to_string()));

        let selected = selected_tables(registered, subset);
        let previous: BTreeMap<String, CarriedTable> = self
            .store
            .carried_tables(name)
            .into_iter()
            .map(|t| (t.name.to_lowercase(), t))
            .collect();

        let tables_before = self.tables_done();
        let outcome = self.write_source(name, config, registered, &selected, &previous, &mut run);
        self.update_running(|job| {
            job.progress.tables_done = tables_before + selected.len();
            if let Some(finished) = job.progress.current_table.take() {
                job.progress.tables_finished.push(finished);
            }
        });
        if let Err(error) = outcome {
            tracing::warn!(source = %name, %error, "sync of a source failed; its previous data stays");
            run.status = "failed".to_string();
            run.error = Some(error.message_and_hint());
        } else if run.tables.iter().any(|t| t.status == "failed") {
            run.status = "partial".to_string();
        }
        run.duration_ms = started.elapsed().as_millis() as u64;
        run
    }

    fn write_source(
        &self,
        name: &str,
        config: &SourceConfig,
        registered: &[RegisteredTable],
        selected: &[SelectedTable],
        previous: &BTreeMap<String, CarriedTable>,
        run: &mut SourceRun,
    ) -> Result<()> {
        let connector = self.connector(name, config);
        let mut writer = self.store.writer(name)?;
        let tables_before = self.tables_done();
        let mut report_progress = |progress: crate::connector::TableProgress| {
            self.update_running(|job| {
                let previous = job.progress.current_table.replace(progress.table.clone());
                job.progress.tables_finished.extend(previous);
                job.progress.tables_done = tables_before + progress.done;
            });
        };
        let outcome = match connector.extract(&mut writer, selected, &mut report_progress) {
            Ok(outcome) => outcome,
            Err(error) => {
                writer.discard();
                return Err(error);
            }
        };

        let written: HashSet<String> = writer
            .tables()
            .iter()
            .map(|t| t.name.to_lowercase())
            .collect();
        for stats in writer.tables() {
            run.tables.push(TableRun {
                name: stats.name.clone(),
                status: "ok".to_string(),
                rows: Some(stats.rows),
                size_bytes: Some(stats.size_bytes),
                error: None,
            });
        }

        // Keep the previous data of failed tables and of registered tables this run did not touch.
        let failed: BTreeMap<String, String> = outcome
            .failed
            .into_iter()
            .map(|(t, e)| (t.to_lowercase(), e))
            .collect();
        for table in registered {
            let id = table.name.to_lowercase();
            if written.contains(&id) {
                continue;
            }
            let kept = previous.get(&id).map(|carried| writer.carry_over(carried));
            let kept_ok = matches!(kept, Some(Ok(_)));
            match failed.get(&id) {
                Some(error) => run.tables.push(TableRun {
                    name: table.name.clone(),
                    status: "failed".to_string(),
                    rows: None,
                    size_bytes: None,
                    error: Some(if kept_ok {
                        format!("{error}; the previous data stays")
                    } else {
                        error.clone()
                    }),
                }),
                None if kept_ok => run.tables.push(TableRun {
                    name: table.name.clone(),
                    status: "carried_over".to_string(),
                    rows: previous.get(&id).map(|c| c.rows),
                    size_bytes: None,
                    error: None,
                }),
                None => {}
            }
        }

        if writer.tables().is_empty() {
            writer.discard();
            return Err(Error::invalid(
                "sync.nothing_extracted",
                format!("no table of source {name} could be extracted"),
            )
            .with_hint("See each table's error; the previous data of the source stays."));
        }
        let pending = writer.finish()?;
        pending.publish(&self.store)?;
        Ok(())
    }

    /// Runs one custom connector and publishes its extract if it is valid.
    fn sync_custom(&self, connector: &custom::CustomConnector) -> SourceRun {
        let started = Instant::now();
        let mut run = SourceRun {
            name: connector.name.clone(),
            kind: "custom".to_string(),
            status: "ok".to_string(),
            tables: Vec::new(),
            duration_ms: 0,
            error: None,
            log: None,
        };
        let result = connector
            .run(&self.store, self.sources.as_ref())
            .and_then(|output| {
                run.log = Some(output.log);
                output.pending.publish(&self.store)
            });
        match result {
            Ok(report) => {
                run.tables = report
                    .tables
                    .iter()
                    .map(|t| TableRun {
                        name: t.clone(),
                        status: "ok".to_string(),
                        rows: None,
                        size_bytes: None,
                        error: None,
                    })
                    .collect();
            }
            Err(error) => {
                tracing::warn!(connector = %connector.name, %error, "custom connector failed; its previous data stays");
                run.status = "failed".to_string();
                run.error = Some(error.message_and_hint());
            }
        }
        run.duration_ms = started.elapsed().as_millis() as u64;
        run
    }

    /// Writes `sync_state` and `sync_history` for every table of the job, in one transaction.
    fn record_tables(&self, job: &Job) {
        let now = to_db_time(Utc::now());
        let written = self.instance.state().with_conn(|conn| {
            let tx = conn.transaction().map_err(|e| Error::state_db("recording table syncs", &e))?;
            for source in &job.sources {
                for table in source.tables.iter().filter(|t| t.status != "carried_over") {
                    let status = if table.status == "ok" { "ok" } else { "error" };
                    tx.execute(
                        "INSERT INTO sync_history (id, job_id, table_id, synced_at, rows, duration_ms, status, error) \
                         VALUES (?, ?, ?, ?::TIMESTAMP, ?, ?, ?, ?)",
                        params![
                            uuid::Uuid::new_v4().simple().to_string(),
                            job.id,
                            table.name.to_lowercase(),
                            now,
                            table.rows,
                            source.duration_ms as i64,
                            status,
                            table.error
                        ],
                    )
                    .map_err(|e| Error::state_db("recording table syncs", &e))?;
                    if status == "ok" {
                        tx.execute(
                            "INSERT OR REPLACE INTO sync_state (table_id, last_sync, rows, file_size_bytes, status, error) \
                             VALUES (?, ?::TIMESTAMP, ?, ?, 'ok', NULL)",
                            params![table.name.to_lowercase(), now, table.rows, table.size_bytes],
                        )
                        .map_err(|e| Error::state_db("recording table syncs", &e))?;
                    } else {
                        tx.execute(
                            "INSERT INTO sync_state (table_id, status, error) VALUES (?, 'error', ?) \
                             ON CONFLICT (table_id) DO UPDATE SET status = 'error', error = excluded.error",
                            params![table.name.to_lowercase(), table.error],
                        )
                        .map_err(|e| Error::state_db("recording table syncs", &e))?;
                    }
                }
            }
            tx.commit().map_err(|e| Error::state_db("recording table syncs", &e))
        });
        if let Err(error) = written {
            tracing::error!(job = %job.id, %error, "cannot record table sync results");
        }
    }
}

/// Returns the registered tables of one source that a sync writes. Remote tables are only views,
/// so they are always rewritten. Local ones are written when `subset` is `None` or contains them.
fn selected_tables(
    registered: &[RegisteredTable],
    subset: Option<&HashSet<String>>,
) -> Vec<SelectedTable> {
    registered
        .iter()
        .filter(|t| t.query_mode == QueryMode::Remote || subset.is_none_or(|s| s.contains(&t.id)))
        .map(|t| SelectedTable {
            name: t.name.clone(),
            source_table: t.source_table.clone().unwrap_or_else(|| t.name.clone()),
            query_mode: t.query_mode,
            description: t.description.clone().unwrap_or_default(),
        })
        .collect()
}
