//! The data plane over HTTP: sources, the registry, discovery, sync jobs, the catalog and queries.

use agnes_core::connector::DiscoveredTable;
use agnes_core::connector::built_in;
use agnes_core::registry::{self, NewTable, RegisteredTable, TableUpdate};
use agnes_core::sources::{SourceConfig, SourceView};
use agnes_core::sync::{CatalogTable, DiscoverResult, Job, SyncStatus};
use agnes_core::{Error, ErrorKind};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contract_spec::QueryMode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use agnes_core::auth::Role;
use agnes_core::query::Format;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, Caller, Json};
use crate::stream;

/// The request of `POST /api/admin/configure`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfigureRequest {
    /// `files` (also `local` or `csv`) or `postgres`.
    pub data_source: String,
    /// Source name; defaults to `files` or `postgres`.
    #[serde(default)]
    pub name: Option<String>,
    /// Folder of data files, for `files`.
    #[serde(default)]
    pub path: Option<String>,
    /// libpq connection string or URI without the password, for `postgres`.
    #[serde(default)]
    pub url: Option<String>,
    /// Password for `postgres`; stored with mode 0600 and never returned.
    #[serde(default)]
    pub password: Option<String>,
    /// Schemas to offer, for `postgres`; all by default.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// `remote` (default) or `local`, for `postgres`.
    #[serde(default)]
    pub mode: Option<String>,
}

/// The response of `POST /api/admin/configure`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigureResponse {
    /// Always `ok`.
    pub status: &'static str,
    /// Connector type.
    pub data_source: String,
    /// Source name.
    pub source: String,
    /// `verified`: the source was reached and listed its tables.
    pub connection: &'static str,
    /// Tables the source offers now.
    pub tables_found: usize,
    /// Problems discovery reported, such as two files mapping to one table name.
    pub problems: Vec<String>,
}

/// The response of `GET /api/admin/sources`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceList {
    /// Configured sources, without secrets.
    pub sources: Vec<SourceView>,
}

/// The response of `GET /api/admin/registry`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryList {
    /// Registered tables.
    pub tables: Vec<RegisteredTable>,
    /// Number of tables.
    pub count: usize,
}

/// Query parameters of discovery.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DiscoverParams {
    /// Report what would be registered without writing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// The response of `POST /api/admin/discover-and-register`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoverResponse {
    /// Number of tables registered (or that would be, in a dry run).
    pub registered: usize,
    /// Number of tables already registered.
    pub skipped: usize,
    /// Problems: unreachable sources, unusable names, collisions.
    pub errors: Vec<String>,
    /// Names of the tables registered.
    pub tables: Vec<String>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Full detail.
    pub details: DiscoverResult,
}

/// The response of `GET /api/admin/discover-tables`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoveredList {
    /// Tables offered, by source.
    pub tables: Vec<DiscoveredOf>,
    /// Number of tables.
    pub count: usize,
    /// Problems discovery reported.
    pub errors: Vec<String>,
}

/// A discovered table with its source.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscoveredOf {
    /// Source name.
    pub source: String,
    /// The table.
    #[serde(flatten)]
    pub table: DiscoveredTable,
}

/// The response of `POST /api/sync/trigger`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResponse {
    /// Always `triggered`.
    pub status: &'static str,
    /// Job id; follow it at `/api/sync/jobs/{id}`.
    pub job_id: String,
    /// Tables asked for, or `all`.
    #[schema(value_type = Object)]
    pub tables: serde_json::Value,
    /// What to do next.
    pub message: String,
}

/// The body of a 409 response to `POST /api/sync/trigger`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlreadyRunning {
    /// The error.
    pub error: crate::error::ErrorDetail,
    /// Id of the running job.
    pub job_id: String,
}

/// The response of `GET /api/sync/jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Recent jobs, newest first.
    pub jobs: Vec<Job>,
}

/// The response of `GET /api/catalog/tables`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogList {
    /// Tables the caller may query.
    pub tables: Vec<CatalogTable>,
    /// Number of tables.
    pub count: usize,
}

/// The request of `POST /api/query`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// One SELECT statement.
    pub sql: String,
    /// Maximum rows to return: 1000 by default for `json`, the server's maximum for the other
    /// formats.
    #[serde(default)]
    pub limit: Option<usize>,
    /// `json` (the default), `ndjson`, `csv`, `arrow` or `parquet`; overrides `Accept`.
    #[serde(default)]
    pub format: Option<String>,
}

/// The JSON response of `POST /api/query`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows as arrays of values, in column order.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Number of rows returned.
    pub row_count: usize,
    /// Whether the limit cut the result.
    pub truncated: bool,
}

/// Rows a JSON query returns when the request names no limit, as in the original.
const DEFAULT_JSON_LIMIT: usize = 1000;

fn source_config(request: &ConfigureRequest) -> Result<(String, SourceConfig), Error> {
    let connector = built_in::find(&request.data_source).ok_or_else(|| {
        let known: Vec<&str> = built_in::built_in().iter().map(|c| c.data_source).collect();
        Error::invalid(
            "configure.unknown_data_source",
            format!(
                "data_source {:?} is not one this build has; use {}",
                request.data_source,
                known.join(" or ")
            ),
        )
        .with_hint("GET /api/admin/connectors lists the connectors and their fields; Keboola and BigQuery are not built in yet, and a custom connector can read them (see docs/connectors.md).")
    })?;
    let name = request
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| connector.data_source.to_string());
    match connector.data_source {
        "files" => {
            let path = request.path.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
                Error::invalid("configure.missing_field", "path is required for the files data source")
                    .with_hint("Send {\"data_source\": \"files\", \"path\": \"/data/csv\"} with a folder the server can read.")
            })?;
            let folder = std::path::PathBuf::from(&path);
            if !folder.is_absolute() {
                return Err(Error::invalid("configure.path_not_absolute", format!("folder {path} is not an absolute path"))
                    .with_hint("Give the full path from the root, such as /srv/data/csv; a relative path would depend on where the server was started."));
            }
            if folder.is_file() {
                let parent = folder
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "/".to_string());
                return Err(Error::invalid("configure.path_is_file", format!("{path} is a file, not a folder; the files source reads every file of a folder"))
                    .with_hint(format!("Give the folder that holds it, such as {parent}; each CSV, TSV, Parquet or JSON file in it becomes one table.")));
            }
            if !folder.is_dir() {
                return Err(Error::invalid("configure.path_not_found", format!("folder {path} does not exist on the server"))
                    .with_hint("Give the absolute path of a folder inside the server or container (mount it with a Docker volume)."));
            }
            Ok((name, SourceConfig::Files { path: folder }))
        }
        "postgres" => {
            let url = request.url.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
                Error::invalid("configure.missing_field", "url is required for the postgres data source")
                    .with_hint("Send a libpq string such as \"host=db port=5432 dbname=crm user=agnes\" and the password separately.")
            })?;
            let mode = match request.mode.as_deref().unwrap_or("remote") {
                "remote" => QueryMode::Remote,
                "local" => QueryMode::Local,
                other => {
                    return Err(Error::invalid("configure.invalid_mode", format!("mode {other:?} is not remote or local"))
                        .with_hint("Use remote to query PostgreSQL live, local to copy its tables to Parquet on each sync."));
                }
            };
            Ok((
                name,
                SourceConfig::Postgres {
                    url,
                    schemas: request.schemas.clone(),
                    mode,
                },
            ))
        }
        other => Err(Error::internal(format!(
            "connector {other} is listed as built in but configure does not handle it"
        ))),
    }
}

/// Configures a data source and checks that it can be reached.
#[utoipa::path(post, path = "/api/admin/configure", tag = "data",
    security(("bearer" = [])),
    request_body = ConfigureRequest,
    responses(
        (status = 200, description = "Source stored and reached", body = ConfigureResponse),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "Missing field, unknown type, or the source cannot be reached; nothing was stored", body = ErrorBody),
    ))]
pub async fn configure(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Json(request): Json<ConfigureRequest>,
) -> Result<Json<ConfigureResponse>, ApiError> {
    let plane = state.plane().clone();
    let response = state
        .blocking(move |_| {
            let (name, config) = source_config(&request)?;
            let kind = config.kind().to_string();
            let previous = plane.sources().views()?.into_iter().find(|s| s.name == name);
            plane.sources().configure(&name, config, request.password.as_deref())?;
            let discovery = plane.discover(Some(&name)).map(|mut found| found.remove(&name).unwrap_or_default());
            let discovery = match discovery {
                Ok(discovery) if discovery.tables.is_empty() && !discovery.problems.is_empty() => {
                    restore(&plane, &name, previous)?;
                    return Err(Error::invalid("configure.unreachable", format!("source {name} cannot be read: {}", discovery.problems.join("; ")))
                        .with_hint("Check the path or connection settings and the password; nothing was stored."));
                }
                Ok(discovery) => discovery,
                Err(error) => {
                    restore(&plane, &name, previous)?;
                    return Err(error);
                }
            };
            Ok(ConfigureResponse {
                status: "ok",
                data_source: kind,
                source: name,
                connection: "verified",
                tables_found: discovery.tables.len(),
                problems: discovery.problems,
            })
        })
        .await?;
    Ok(Json(response))
}

/// Puts back the source as it was before a failed configure.
fn restore(
    plane: &agnes_core::sync::DataPlane,
    name: &str,
    previous: Option<SourceView>,
) -> agnes_core::Result<()> {
    match previous {
        Some(view) => plane.sources().configure(name, view.config, None),
        None => plane.sources().remove(name).map(|_| ()),
    }
}

/// Lists the configured sources, without secrets.
#[utoipa::path(get, path = "/api/admin/sources", tag = "data",
    security(("bearer" = [])),
    responses((status = 200, description = "Configured sources", body = SourceList), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list_sources(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<SourceList>, ApiError> {
    let plane = state.plane().clone();
    let sources = state.blocking(move |_| plane.sources().views()).await?;
    Ok(Json(SourceList { sources }))
}

/// Removes a configured source and its secret; its published data stays until the next sync.
#[utoipa::path(delete, path = "/api/admin/sources/{name}", tag = "data",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Source name")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such source", body = ErrorBody)))]
pub async fn remove_source(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let plane = state.plane().clone();
    state
        .blocking(move |_| {
            if plane.sources().remove(&name)? {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(Error::not_found(
                    "sources.not_found",
                    format!("source {name} is not configured"),
                ))
            }
        })
        .await
}

/// Lists the registered tables.
#[utoipa::path(get, path = "/api/admin/registry", tag = "data",
    security(("bearer" = [])),
    responses((status = 200, description = "Registered tables", body = RegistryList), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub async fn list_registry(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<RegistryList>, ApiError> {
    let tables = state
        .blocking(|instance| registry::list(instance.state()))
        .await?;
    Ok(Json(RegistryList {
        count: tables.len(),
        tables,
    }))
}

/// Registers a table.
#[utoipa::path(post, path = "/api/admin/registry", tag = "data",
    security(("bearer" = [])),
    request_body = NewTable,
    responses(
        (status = 201, description = "Registered", body = RegisteredTable),
        (status = 409, description = "Name already registered", body = ErrorBody),
        (status = 422, description = "Name is not an identifier", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Json(request): Json<NewTable>,
) -> Result<(StatusCode, Json<RegisteredTable>), ApiError> {
    let table = state
        .blocking(move |instance| {
            registry::register(instance.state(), &request, Some(&admin.user_id))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(table)))
}

/// Registers a table; the original path of `POST /api/admin/registry`.
#[utoipa::path(post, path = "/api/admin/register-table", tag = "data",
    security(("bearer" = [])),
    request_body = NewTable,
    responses((status = 201, description = "Registered", body = RegisteredTable), (status = 409, description = "Name already registered", body = ErrorBody)))]
pub async fn register_table(
    state: State<AppState>,
    admin: Admin,
    request: Json<NewTable>,
) -> Result<(StatusCode, Json<RegisteredTable>), ApiError> {
    register(state, admin, request).await
}

/// Changes a registered table.
#[utoipa::path(put, path = "/api/admin/registry/{id}", tag = "data",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Table id")),
    request_body = TableUpdate,
    responses((status = 200, description = "Updated", body = RegisteredTable), (status = 404, description = "Not registered", body = ErrorBody)))]
pub async fn update_registry(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
    Json(request): Json<TableUpdate>,
) -> Result<Json<RegisteredTable>, ApiError> {
    let table = state
        .blocking(move |instance| registry::update(instance.state(), &id, &request))
        .await?;
    Ok(Json(table))
}

/// Removes a table from the registry.
#[utoipa::path(delete, path = "/api/admin/registry/{id}", tag = "data",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Table id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Not registered", body = ErrorBody)))]
pub async fn delete_registry(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |instance| registry::delete(instance.state(), &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists what every configured source offers, without registering anything.
#[utoipa::path(get, path = "/api/admin/discover-tables", tag = "data",
    security(("bearer" = [])),
    responses((status = 200, description = "Tables offered", body = DiscoveredList)))]
pub async fn discover_tables(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<DiscoveredList>, ApiError> {
    let plane = state.plane().clone();
    let found = state.blocking(move |_| plane.discover(None)).await?;
    let mut list = DiscoveredList {
        tables: Vec::new(),
        count: 0,
        errors: Vec::new(),
    };
    for (source, discovery) in found {
        list.errors.extend(
            discovery
                .problems
                .into_iter()
                .map(|p| format!("{source}: {p}")),
        );
        list.tables
            .extend(discovery.tables.into_iter().map(|table| DiscoveredOf {
                source: source.clone(),
                table,
            }));
    }
    list.count = list.tables.len();
    Ok(Json(list))
}

/// Discovers every source's tables and registers the new ones.
#[utoipa::path(post, path = "/api/admin/discover-and-register", tag = "data",
    security(("bearer" = [])),
    params(DiscoverParams),
    responses((status = 200, description = "What was (or would be) registered", body = DiscoverResponse)))]
pub async fn discover_and_register(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Query(params): Query<DiscoverParams>,
) -> Result<Json<DiscoverResponse>, ApiError> {
    let plane = state.plane().clone();
    let result = state
        .blocking(move |_| plane.discover_and_register(Some(&admin.user_id), params.dry_run))
        .await?;
    Ok(Json(DiscoverResponse {
        registered: result.registered.len(),
        skipped: result.skipped.len(),
        errors: result.errors.clone(),
        tables: result
            .registered
            .iter()
            .map(|t| t.table.name.clone())
            .collect(),
        dry_run: result.dry_run,
        details: result,
    }))
}

/// Reads the optional body of a trigger: nothing, `null`, a list of tables or `{"tables": [...]}`.
fn trigger_tables(body: &Bytes) -> Result<Option<Vec<String>>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid = || {
        Error::invalid(
            "request.invalid_body",
            "the body must be empty, null, a list of table names, or {\"tables\": [...]}",
        )
        .with_hint("Omit the body to sync every registered table.")
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let list = match &value {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Array(_) => value,
        serde_json::Value::Object(map) => match map.get("tables") {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(list) => list.clone(),
        },
        _ => return Err(invalid()),
    };
    serde_json::from_value(list)
        .map(Some)
        .map_err(|_| invalid())
}

/// Starts a sync job of every registered table, or of the listed ones.
#[utoipa::path(post, path = "/api/sync/trigger", tag = "sync",
    security(("bearer" = [])),
    request_body(content = Object, description = "Optional: a list of table names, or {\"tables\": [...]}", content_type = "application/json"),
    responses(
        (status = 202, description = "Job started", body = TriggerResponse),
        (status = 409, description = "A job is already running", body = AlreadyRunning),
        (status = 422, description = "Unknown tables or a malformed body", body = ErrorBody),
    ))]
pub async fn trigger(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tables = trigger_tables(&body)?;
    let plane = state.plane().clone();
    let started = state
        .blocking(move |_| Ok(plane.trigger(Some(&admin), tables)))
        .await?;
    match started {
        Ok(job) => {
            let tables = match &job.tables {
                Some(tables) => serde_json::json!(tables),
                None => serde_json::json!("all"),
            };
            let response = TriggerResponse {
                status: "triggered",
                message: format!("Sync started; follow it at GET /api/sync/jobs/{}", job.id),
                job_id: job.id,
                tables,
            };
            Ok((StatusCode::ACCEPTED, Json(response)).into_response())
        }
        Err(error) if error.kind == ErrorKind::Conflict && error.code == "sync.already_running" => {
            let running = state
                .plane()
                .status()
                .ok()
                .and_then(|s| s.running)
                .map(|j| j.id)
                .unwrap_or_default();
            let body = AlreadyRunning {
                error: crate::error::ErrorDetail {
                    code: error.code.to_string(),
                    message: error.message,
                    hint: error.hint,
                },
                job_id: running,
            };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        Err(error) => Err(ApiError(error)),
    }
}

/// The running sync job and the last finished one.
#[utoipa::path(get, path = "/api/sync/status", tag = "sync",
    security(("bearer" = [])),
    responses((status = 200, description = "Sync state", body = SyncStatus)))]
pub async fn status(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<SyncStatus>, ApiError> {
    let plane = state.plane().clone();
    let status = state.blocking(move |_| plane.status()).await?;
    Ok(Json(status))
}

/// Recent sync jobs, newest first.
#[utoipa::path(get, path = "/api/sync/jobs", tag = "sync",
    security(("bearer" = [])),
    responses((status = 200, description = "Recent jobs", body = JobList)))]
pub async fn jobs(
    State(state): State<AppState>,
    Admin(_admin): Admin,
) -> Result<Json<JobList>, ApiError> {
    let plane = state.plane().clone();
    let jobs = state.blocking(move |_| plane.jobs(50)).await?;
    Ok(Json(JobList { jobs }))
}

/// One sync job: status, progress, per-source results, durations and errors.
#[utoipa::path(get, path = "/api/sync/jobs/{id}", tag = "sync",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = Job), (status = 404, description = "No such job", body = ErrorBody)))]
pub async fn job(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let plane = state.plane().clone();
    let job = state.blocking(move |_| plane.job(&id)).await?;
    Ok(Json(job))
}

/// The published tables the caller may query, with descriptions, columns and row counts.
#[utoipa::path(get, path = "/api/catalog/tables", tag = "catalog",
    security(("bearer" = [])),
    responses((status = 200, description = "Visible tables", body = CatalogList)))]
pub async fn catalog(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<CatalogList>, ApiError> {
    let plane = state.plane().clone();
    let tables = state.blocking(move |_| plane.catalog(&caller)).await?;
    Ok(Json(CatalogList {
        count: tables.len(),
        tables,
    }))
}

/// Runs one read-only SELECT over the published tables and streams the result.
///
/// The format is the request's `format` field, else the `Accept` header, else JSON.
#[utoipa::path(post, path = "/api/query", tag = "query",
    security(("bearer" = [])),
    request_body = QueryRequest,
    responses(
        (status = 200, description = "The result rows, streamed", content(
            (QueryResponse = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.arrow.stream"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )),
        (status = 400, description = "Not a single SELECT, or DuckDB rejected it", body = ErrorBody),
        (status = 403, description = "The query reads tables the caller may not read", body = ErrorBody),
        (status = 406, description = "The Accept header names no format the server sends", body = ErrorBody),
        (status = 422, description = "Unknown format, limit too large, or the time or memory limit stopped the query", body = ErrorBody),
        (status = 503, description = "The server runs its maximum of queries; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn query(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Json(request): Json<QueryRequest>,
) -> Result<Response, ApiError> {
    let format = requested_format(request.format.as_deref(), &headers)?;
    let settings = state.plane().engine().settings();
    let limit = request.limit.unwrap_or(match format {
        Format::Json => DEFAULT_JSON_LIMIT,
        _ if caller.role == Role::Viewer => settings.viewer_max_rows,
        _ => settings.max_rows,
    });
    let mut extra = HeaderMap::new();
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    stream::respond(&state, format, extra, move |plane, cancel| {
        plane.start_query_with(&caller, &request.sql, limit, cancel)
    })
    .await
}

/// Returns the format a request names: its `format` field, else its `Accept` header, else JSON.
fn requested_format(field: Option<&str>, headers: &HeaderMap) -> Result<Format, Error> {
    if let Some(name) = field {
        return Format::parse(name);
    }
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Format::Json);
    };
    let accept = accept.to_str().unwrap_or_default();
    Format::from_accept(accept).ok_or_else(|| {
        Error::new(
            ErrorKind::NotAcceptable,
            "query.not_acceptable",
            format!("Accept: {accept} names no format this server sends"),
        )
        .with_hint("Accept application/json, application/x-ndjson, text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet, or send a format field.")
    })
}

/// Serves a published table as a Parquet file, with an `ETag` that changes when its data does.
#[utoipa::path(get, path = "/api/data/{table}/download", tag = "query",
    security(("bearer" = [])),
    params(("table" = String, Path, description = "Published table name")),
    responses(
        (status = 200, description = "The whole table as Parquet, streamed", content_type = "application/vnd.apache.parquet", body = Vec<u8>),
        (status = 304, description = "The table is unchanged since the ETag in If-None-Match"),
        (status = 403, description = "Viewers may not download", body = ErrorBody),
        (status = 404, description = "No such table, or the caller may not read it", body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(table): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let plane = state.plane().clone();
    let lookup = (caller.clone(), table.clone());
    let (name, tag) = state
        .blocking(move |_| plane.download_version(&lookup.0, &lookup.1))
        .await?;
    let etag = tag.map(|tag| format!("\"{tag}\""));
    if let Some(etag) = &etag {
        let unchanged = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().trim_start_matches("W/"))
            .any(|v| v == "*" || v == etag);
        if unchanged {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response
                .headers_mut()
                .insert(header::ETAG, header_value(etag)?);
            return Ok(response);
        }
    }
    let mut extra = HeaderMap::new();
    extra.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"{name}.parquet\""))?,
    );
    match &etag {
        Some(etag) => {
            extra.insert(header::ETAG, header_value(etag)?);
            extra.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            );
        }
        None => {
            extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    stream::respond(&state, Format::Parquet, extra, move |plane, cancel| {
        plane
            .start_download(&caller, &name, cancel)
            .map(|(stream, _)| stream)
    })
    .await
}

fn header_value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text)
        .map_err(|_| Error::internal(format!("{text:?} is not a valid header value")))
}

#[cfg(test)]
mod tests {
    use super::{ConfigureRequest, source_config, trigger_tables};
    use agnes_core::connector::built_in;
    use axum::body::Bytes;

    fn request(data_source: &str) -> ConfigureRequest {
        ConfigureRequest {
            data_source: data_source.to_string(),
            name: None,
            path: None,
            url: None,
            password: None,
            schemas: Vec::new(),
            mode: None,
        }
    }

    /// Returns the error code of configuring `request`, and checks that the connector's field
    /// `field` lists it, so the wizard shows the error next to that field.
    fn code_for_field(request: &ConfigureRequest, field: &str) -> &'static str {
        let code = source_config(request).expect_err("rejected").code;
        let connector = built_in::find(&request.data_source).expect("a built-in connector");
        let listed = connector
            .fields
            .iter()
            .find(|f| f.name == field)
            .is_some_and(|f| f.error_codes.contains(&code));
        assert!(
            listed,
            "field {field} of {} does not list {code}",
            connector.data_source
        );
        code
    }

    #[test]
    fn every_built_in_connector_is_configurable() {
        for connector in built_in::built_in() {
            for data_source in std::iter::once(connector.data_source).chain(connector.aliases) {
                let error = source_config(&request(data_source)).expect_err("fields missing");
                assert_eq!(error.code, "configure.missing_field", "{data_source}");
            }
        }
        let unknown = source_config(&request("keboola")).expect_err("unknown");
        assert_eq!(unknown.code, "configure.unknown_data_source");
        assert!(
            unknown.message.contains("files or postgres"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn configure_errors_name_their_field() {
        assert_eq!(
            code_for_field(&request("files"), "path"),
            "configure.missing_field"
        );
        let mut relative = request("files");
        relative.path = Some("data/csv".to_string());
        assert_eq!(
            code_for_field(&relative, "path"),
            "configure.path_not_absolute"
        );
        let mut missing = request("csv");
        missing.path = Some("/no/such/folder".to_string());
        assert_eq!(code_for_field(&missing, "path"), "configure.path_not_found");

        assert_eq!(
            code_for_field(&request("postgres"), "url"),
            "configure.missing_field"
        );
        let mut mode = request("postgres");
        mode.url = Some("host=db".to_string());
        mode.mode = Some("sideways".to_string());
        assert_eq!(code_for_field(&mode, "mode"), "configure.invalid_mode");
    }

    #[test]
    fn configure_defaults_the_source_name() {
        let dir = std::env::temp_dir();
        let mut files = request("local");
        files.path = Some(dir.display().to_string());
        files.name = Some(String::new());
        assert_eq!(source_config(&files).unwrap().0, "files");
        let mut postgres = request("postgresql");
        postgres.url = Some("host=db".to_string());
        assert_eq!(source_config(&postgres).unwrap().0, "postgres");
    }

    #[test]
    fn trigger_bodies() {
        assert_eq!(trigger_tables(&Bytes::from_static(b"")).unwrap(), None);
        assert_eq!(trigger_tables(&Bytes::from_static(b"null")).unwrap(), None);
        assert_eq!(
            trigger_tables(&Bytes::from_static(b"[\"a\"]")).unwrap(),
            Some(vec!["a".to_string()])
        );
        assert_eq!(
            trigger_tables(&Bytes::from_static(b"{\"tables\": [\"b\"]}")).unwrap(),
            Some(vec!["b".to_string()])
        );
        assert_eq!(trigger_tables(&Bytes::from_static(b"{}")).unwrap(), None);
        assert!(trigger_tables(&Bytes::from_static(b"42")).is_err());
        assert!(trigger_tables(&Bytes::from_static(b"[1]")).is_err());
    }
}
