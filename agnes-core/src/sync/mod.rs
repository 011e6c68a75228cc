//! The data plane: sync jobs that run connectors, publish their extracts and rebuild the
//! analytics database, and the catalog and queries over what is published.
//!
//! One job runs at a time. A job extracts each source into a new version folder (the
//! [`extract`](crate::extract) module), publishes only versions that pass the contract, rebuilds
//! the analytics database with the [`Orchestrator`] and installs it in the [`QueryEngine`]. A
//! source or table that fails keeps its previous data; a sync of some tables keeps the others; a
//! server killed mid-sync restarts on the last published data.

mod job;
mod run;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use contract_spec::QueryMode;
use contract_spec::identifier::quote_identifier;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use job::{Job, JobStatus, Progress, SourceRun, TableRun};

use crate::auth::{Principal, Role};
use crate::connector::Connector;
use crate::connector::files::FilesConnector;
use crate::connector::postgres::{PostgresConnector, PostgresSettings};
use crate::connector::{DiscoveredTable, Discovery};
use crate::error::{Error, Result};
use crate::extract::ExtractStore;
use crate::instance::Instance;
use crate::orchestrator::{Column, Orchestrator, Publication};
use crate::query::{
    Access, CancelToken, EngineSettings, QueryContext, QueryEngine, QueryResult, QueryStream,
};
use crate::registry::{self, NewTable};
use crate::remote::{RemotePolicy, SecretLookup};
use crate::sources::{SourceConfig, SourceStore, password_secret_name};
use crate::state::to_db_time;

/// A published table as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CatalogTable {
    /// Table name to query.
    pub name: String,
    /// Source that publishes it.
    pub source: String,
    /// Description.
    pub description: Option<String>,
    /// `local`, `remote` or `materialized`.
    pub query_mode: String,
    /// Row count at extraction (0 for remote tables, which are counted live).
    pub rows: Option<i64>,
    /// Size of the data files in bytes.
    pub size_bytes: Option<i64>,
    /// When the data was extracted, UTC.
    pub extracted_at: Option<String>,
    /// Columns and types.
    pub columns: Vec<Column>,
}

/// Result of discovery across sources, and of registering what it found.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DiscoverResult {
    /// Tables newly registered (or that would be, in a dry run).
    pub registered: Vec<DiscoveredTableOf>,
    /// Names already registered, left unchanged.
    pub skipped: Vec<String>,
    /// Problems: unreachable sources, unusable file names, collisions.
    pub errors: Vec<String>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// A discovered table with the source that offers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DiscoveredTableOf {
    /// Source name.
    pub source: String,
    /// The table.
    #[serde(flatten)]
    pub table: DiscoveredTable,
}

/// The sync state as `GET /api/sync/status` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// The running job, if any.
    pub running: Option<Job>,
    /// The most recent finished job, if any.
    pub last: Option<Job>,
}

/// Settings of a data plane.
#[derive(Debug, Clone)]
pub struct PlaneOptions {
    /// Folder of custom connectors.
    pub connectors_dir: PathBuf,
    /// Query limits.
    pub engine: EngineSettings,
    /// What remote attachments may do, and where extension files are.
    pub policy: RemotePolicy,
}

impl PlaneOptions {
    /// Reads `CONNECTORS_DIR` (default `connectors/custom` in the working directory), the query
    /// limits of [`EngineSettings::try_from_env`] and the remote-attach variables of
    /// [`RemotePolicy::from_env`].
    ///
    /// Fails with `settings.invalid` naming a variable whose value cannot be used.
    pub fn try_from_env() -> Result<Self> {
        Ok(Self {
            connectors_dir: std::env::var_os("CONNECTORS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("connectors/custom")),
            engine: EngineSettings::try_from_env()?,
            policy: RemotePolicy::from_env(),
        })
    }
}

/// Everything that moves data for one instance.
pub struct DataPlane {
    instance: Arc<Instance>,
    store: ExtractStore,
    sources: Arc<SourceStore>,
    orchestrator: Orchestrator,
    engine: QueryEngine,
    connectors_dir: PathBuf,
    rebuild_lock: Mutex<()>,
    running: Mutex<Option<Job>>,
}

impl DataPlane {
    /// Opens the data plane of `instance`: marks interrupted jobs failed, removes unfinished
    /// extract versions, and publishes what `extracts/` holds.
    ///
    /// Fails when the analytics database cannot be written or opened.
    pub fn open(instance: Arc<Instance>, options: PlaneOptions) -> Result<Arc<DataPlane>> {
        let layout = instance.layout().clone();
        let PlaneOptions {
            connectors_dir,
            engine: engine_settings,
            policy,
        } = options;
        let sources = Arc::new(SourceStore::new(&layout.state_dir));
        let secrets: Arc<dyn SecretLookup> = sources.clone();
        let store = ExtractStore::new(layout.extracts_dir.clone());
        let plane = Arc::new(DataPlane {
            orchestrator: Orchestrator::new(
                store.clone(),
                layout.analytics_dir.clone(),
                policy.clone(),
                Arc::clone(&secrets),
            ),
            engine: QueryEngine::new(engine_settings, policy, secrets),
            store,
            sources,
            connectors_dir,
            rebuild_lock: Mutex::new(()),
            running: Mutex::new(None),
            instance,
        });

        let interrupted = job::fail_interrupted(plane.instance.state())?;
        if interrupted > 0 {
            tracing::warn!(
                jobs = interrupted,
                "marked sync jobs interrupted by a stop as failed"
            );
        }
        plane.publish()?;
        Ok(plane)
    }

    /// The instance this data plane serves.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// The configured sources.
    pub fn sources(&self) -> &SourceStore {
        &self.sources
    }

    /// The query engine.
    pub fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// The publication currently served, if any.
    pub fn publication(&self) -> Option<Publication> {
        self.engine.snapshot().map(|s| s.publication().clone())
    }

    /// Rebuilds the analytics database from `extracts/`, serves it, and deletes extract
    /// versions that nothing reads any more. Returns the new publication.
    ///
    /// While a sync job runs, versions written in the last hour are kept, because the job may
    /// still be writing one.
    pub fn publish(&self) -> Result<Publication> {
        let job_running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        let min_age = if job_running {
            Duration::from_secs(3600)
        } else {
            Duration::ZERO
        };
        self.publish_keeping(min_age)
    }

    /// Rebuilds, serves the result and deletes unused versions older than `min_age`.
    fn publish_keeping(&self, min_age: Duration) -> Result<Publication> {
        let _guard = self.rebuild_lock.lock().unwrap_or_else(|p| p.into_inner());
        let publication = self.orchestrator.rebuild()?;
        self.engine.install(publication.clone())?;
        if let Err(error) = self
            .store
            .collect_garbage(&self.engine.folders_in_use(), min_age)
        {
            tracing::warn!(%error, "cannot clean up old extract versions");
        }
        Ok(publication)
    }

    /// Builds the connector of a configured source.
    fn connector(&self, name: &str, config: &SourceConfig) -> Box<dyn Connector> {
        match config {
            SourceConfig::Files { path } => Box::new(FilesConnector::new(path.clone())),
            SourceConfig::Postgres { url, schemas, mode } => {
                let secret = password_secret_name(name);
                let settings = PostgresSettings {
                    source: name.to_string(),
                    url: url.clone(),
                    password_secret: self.sources.secret(&secret).map(|_| secret),
                    schemas: schemas.clone(),
                    mode: *mode,
                };
                Box::new(PostgresConnector::new(
                    settings,
                    self.orchestrator.policy().clone(),
                    Arc::clone(self.orchestrator.secrets()),
                ))
            }
        }
    }

    /// Lists the tables every configured source offers (or only `source`).
    ///
    /// Fails with `sources.not_found` for an unknown source; an unreachable source becomes an
    /// error entry of its discovery.
    pub fn discover(&self, only: Option<&str>) -> Result<BTreeMap<String, Discovery>> {
        let sources = self.sources.list()?;
        if let Some(name) = only
            && !sources.contains_key(name)
        {
            return Err(Error::not_found(
                "sources.not_found",
                format!("source {name} is not configured"),
            )
            .with_hint("GET /api/admin/sources lists the configured sources."));
        }
        let mut found = BTreeMap::new();
        for (name, config) in sources
            .iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        {
            let discovery = self
                .connector(name, config)
                .discover()
                .unwrap_or_else(|error| Discovery {
                    tables: Vec::new(),
                    problems: vec![error.message_and_hint()],
                });
            found.insert(name.clone(), discovery);
        }
        Ok(found)
    }

    /// Discovers every source's tables and registers those not registered yet.
    pub fn discover_and_register(
        &self,
        actor: Option<&str>,
        dry_run: bool,
    ) -> Result<DiscoverResult> {
        let registered: HashSet<String> = registry::list(self.instance.state())?
            .into_iter()
            .map(|t| t.id)
            .collect();
        let mut result = DiscoverResult {
            dry_run,
            ..DiscoverResult::default()
        };
        let mut claimed: HashMap<String, String> = HashMap::new();
        for (source, discovery) in self.discover(None)? {
            result.errors.extend(
                discovery
                    .problems
                    .into_iter()
                    .map(|p| format!("{source}: {p}")),
            );
            for table in discovery.tables {
                let id = table.name.to_lowercase();
                if registered.contains(&id) {
                    result.skipped.push(table.name.clone());
                    continue;
                }
                if let Some(other) = claimed.get(&id) {
                    result.errors.push(format!(
                        "{source}: table {} is also offered by source {other}; register it by hand under another name",
                        table.name
                    ));
                    continue;
                }
                claimed.insert(id, source.clone());
                if !dry_run {
                    let request = NewTable {
                        name: table.name.clone(),
                        source: source.clone(),
                        source_table: Some(table.source_table.clone()),
                        query_mode: Some(table.query_mode),
                        description: Some(table.description.clone()),
                        is_public: None,
                    };
                    if let Err(error) = registry::register(self.instance.state(), &request, actor) {
                        result.errors.push(format!("{source}: {}", error.message));
                        continue;
                    }
                }
                result.registered.push(DiscoveredTableOf {
                    source: source.clone(),
                    table,
                });
            }
        }
        Ok(result)
    }

    /// Starts a sync job of every registered table, or only of `tables`, and returns its record.
    ///
    /// Fails with `sync.already_running` (naming the running job) while another job runs, and
    /// with `sync.unknown_tables` when `tables` names tables that are not registered.
    pub fn trigger(
        self: &Arc<Self>,
        actor: Option<&Principal>,
        tables: Option<Vec<String>>,
    ) -> Result<Job> {
        if let Some(tables) = &tables {
            let registered: HashSet<String> = registry::list(self.instance.state())?
                .into_iter()
                .map(|t| t.id)
                .collect();
            let unknown: Vec<&String> = tables
                .iter()
                .filter(|t| !registered.contains(&t.to_lowercase()))
                .collect();
            if !unknown.is_empty() {
                return Err(Error::invalid(
                    "sync.unknown_tables",
                    format!("these tables are not registered: {}", unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
                )
                .with_hint("GET /api/admin/registry lists the registered tables; omit the list to sync everything."));
            }
        }

        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = running.as_ref() {
            return Err(Error::conflict(
                "sync.already_running",
                format!("sync job {} is still running", job.id),
            )
            .with_hint(format!("Wait for it: GET /api/sync/jobs/{}", job.id)));
        }
        let job = Job {
            id: uuid::Uuid::new_v4().simple().to_string(),
            status: JobStatus::Running,
            requested_by: actor.map(|a| a.user_id.clone()),
            tables,
            created_at: to_db_time(Utc::now()),
            finished_at: None,
            duration_ms: None,
            progress: Progress {
                phase: "starting".to_string(),
                ..Progress::default()
            },
            sources: Vec::new(),
            published_tables: None,
            publication_errors: Vec::new(),
            error: None,
        };
        job::insert(self.instance.state(), &job)?;
        *running = Some(job.clone());
        drop(running);

        let plane = Arc::clone(self);
        let id = job.id.clone();
        std::thread::Builder::new()
            .name(format!("sync-{}", &id[..8]))
            .spawn(move || plane.run_job(&id))
            .map_err(|e| Error::internal(format!("cannot start the sync thread: {e}")))?;
        tracing::info!(job = %job.id, tables = ?job.tables, "sync job started");
        Ok(job)
    }

    /// The running job and the most recent finished one.
    pub fn status(&self) -> Result<SyncStatus> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let last = job::recent(self.instance.state(), 20)?
            .into_iter()
            .find(|j| j.status != JobStatus::Running);
        Ok(SyncStatus { running, last })
    }

    /// Job `id`, live while it runs.
    ///
    /// Fails with `sync.job_not_found`.
    pub fn job(&self, id: &str) -> Result<Job> {
        if let Some(job) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|j| j.id == id)
        {
            return Ok(job.clone());
        }
        job::load(self.instance.state(), id)
    }

    /// The most recent jobs, newest first.
    pub fn jobs(&self, limit: usize) -> Result<Vec<Job>> {
        job::recent(self.instance.state(), limit)
    }

    /// Updates the live record of the running job.
    fn update_running(&self, update: impl FnOnce(&mut Job)) {
        if let Some(job) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            update(job);
        }
    }

    /// The published tables `principal` may see, with their columns.
    pub fn catalog(&self, principal: &Principal) -> Result<Vec<CatalogTable>> {
        let Some(publication) = self.publication() else {
            return Ok(Vec::new());
        };
        let visible = self.visible_tables(principal)?;
        Ok(publication
            .tables
            .iter()
            .filter(|t| {
                visible
                    .as_ref()
                    .is_none_or(|v| v.contains(&t.name.to_lowercase()))
            })
            .map(|t| CatalogTable {
                name: t.name.clone(),
                source: t.source.clone(),
                description: t.description.clone(),
                query_mode: t.query_mode.as_str().to_string(),
                rows: t.rows,
                size_bytes: t.size_bytes,
                extracted_at: t.extracted_at.clone(),
                columns: t.columns.clone(),
            })
            .collect())
    }

    /// Names (lowercase) of the tables `principal` may read; `None` means every table.
    ///
    /// Admins read everything. Other users read registered tables that are public or granted to
    /// them; unregistered tables (from custom connectors) stay admin-only until registered.
    pub fn visible_tables(&self, principal: &Principal) -> Result<Option<HashSet<String>>> {
        if principal.role == Role::Admin {
            return Ok(None);
        }
        let granted: HashSet<String> = self.instance.state().with_conn(|conn| {
            let mut stmt = conn
                .prepare("SELECT table_id FROM table_grants WHERE user_id = ?")
                .map_err(|e| Error::state_db("reading table grants", &e))?;
            let rows = stmt
                .query_map([&principal.user_id], |row| row.get::<_, String>(0))
                .map_err(|e| Error::state_db("reading table grants", &e))?;
            rows.collect::<duckdb::Result<HashSet<String>>>()
                .map_err(|e| Error::state_db("reading table grants", &e))
        })?;
        Ok(Some(
            registry::list(self.instance.state())?
                .into_iter()
                .filter(|t| t.is_public || granted.contains(&t.id))
                .map(|t| t.id)
                .collect(),
        ))
    }

    /// Runs one read-only SELECT for `principal` and collects at most `limit` rows.
    ///
    /// Fails as [`DataPlane::start_query`] does.
    pub fn query(&self, principal: &Principal, sql: &str, limit: usize) -> Result<QueryResult> {
        self.start_query(principal, sql, limit)?.collect()
    }

    /// Starts one read-only SELECT for `principal`; the stream hands out at most `limit` rows.
    ///
    /// Admins read everything. Other users read only the published tables they may see: every
    /// table the query names is checked on DuckDB's parse tree before it runs, and qualified
    /// names, catalog functions and file readers are refused. Fails as
    /// [`QueryEngine::start`] does.
    pub fn start_query(
        &self,
        principal: &Principal,
        sql: &str,
        limit: usize,
    ) -> Result<QueryStream> {
        self.start_query_with(principal, sql, limit, CancelToken::default())
    }

    /// Starts a query like [`DataPlane::start_query`] that `cancel` can stop, for example when
    /// the client goes away. The query counts against `principal`'s share of the query slots.
    ///
    /// Fails as [`QueryEngine::start_with`] does, and with `query.limit_too_large` when a viewer
    /// asks for more rows than viewers may read at once.
    pub fn start_query_with(
        &self,
        principal: &Principal,
        sql: &str,
        limit: usize,
        cancel: CancelToken,
    ) -> Result<QueryStream> {
        let viewer_max = self.engine.settings().viewer_max_rows;
        if principal.role == Role::Viewer && limit > viewer_max {
            return Err(Error::invalid(
                "query.limit_too_large",
                format!("limit {limit} is above the {viewer_max} rows a viewer may read per query"),
            )
            .with_hint("Ask for fewer rows or aggregate; an admin can give you the analyst role, which downloads whole tables."));
        }
        let access = self.access(principal)?;
        let context = QueryContext {
            user_id: Some(principal.user_id.clone()),
            cancel,
        };
        self.engine.start_with(sql, limit, &access, &context)
    }

    /// Starts reading every row of the published table `table` for `principal`, and returns the
    /// stream with the table's version tag: the same tag means the same rows. Remote tables,
    /// which read their source live, have no tag.
    ///
    /// Fails as [`DataPlane::download_version`] and [`QueryEngine::start_export`] do.
    pub fn start_download(
        &self,
        principal: &Principal,
        table: &str,
        cancel: CancelToken,
    ) -> Result<(QueryStream, Option<String>)> {
        let (name, tag) = self.download_version(principal, table)?;
        let access = self.access(principal)?;
        let sql = format!("SELECT * FROM {}", quote_identifier(&name));
        let context = QueryContext {
            user_id: Some(principal.user_id.clone()),
            cancel,
        };
        Ok((self.engine.start_export(&sql, &access, &context)?, tag))
    }

    /// The exact name of the published table `table` that `principal` may download, and its
    /// version tag (see [`DataPlane::start_download`]).
    ///
    /// Fails with `data.download_forbidden` for viewers, who query but do not download, and with
    /// `data.table_not_found` when no such table is published or `principal` may not read it
    /// (the two look the same).
    pub fn download_version(
        &self,
        principal: &Principal,
        table: &str,
    ) -> Result<(String, Option<String>)> {
        if principal.role == Role::Viewer {
            return Err(Error::forbidden(
                "data.download_forbidden",
                "viewers may query tables but not download them",
            )
            .with_hint("Query with POST /api/query, or ask an admin for the analyst role."));
        }
        let not_found = || {
            Error::not_found(
                "data.table_not_found",
                format!("no published table {table:?} that you may read"),
            )
            .with_hint(
                "GET /api/catalog/tables (or `agnes catalog`) lists the tables you can read.",
            )
        };
        let snapshot = self.engine.snapshot().ok_or_else(not_found)?;
        let publication = snapshot.publication();
        let published = publication.table(table).ok_or_else(not_found)?;
        let visible = self.visible_tables(principal)?;
        if visible.is_some_and(|v| !v.contains(&published.name.to_lowercase())) {
            return Err(not_found());
        }
        let tag = match published.query_mode {
            QueryMode::Remote => None,
            QueryMode::Local | QueryMode::Materialized => publication
                .attached_sources()
                .find(|(source, _)| *source == published.source)
                .map(|(_, dir)| {
                    let mut hasher = Sha256::new();
                    for part in [
                        dir.to_string_lossy().as_ref(),
                        published.name.as_str(),
                        published.extracted_at.as_deref().unwrap_or_default(),
                    ] {
                        hasher.update(part.as_bytes());
                        hasher.update([0]);
                    }
                    hex::encode(&hasher.finalize()[..16])
                }),
        };
        Ok((published.name.clone(), tag))
    }

    /// Returns what `principal` may read: everything, or the published tables visible to them.
    fn access(&self, principal: &Principal) -> Result<Access> {
        Ok(match self.visible_tables(principal)? {
            None => Access::All,
            Some(visible) => {
                // The snapshot's publication, borrowed: `publication()` would copy every table.
                let snapshot = self.engine.snapshot();
                let published: HashSet<String> = snapshot
                    .iter()
                    .flat_map(|s| s.publication().tables.iter())
                    .map(|t| t.name.to_lowercase())
                    .collect();
                Access::Tables(visible.intersection(&published).cloned().collect())
            }
        })
    }
}
