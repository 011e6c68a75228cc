//! Data commands against a running server: sources, the registry, discovery, syncs, the catalog
//! and queries.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::ServerArgs;
use crate::client::{Client, ClientError};

/// Data administration subcommands of `agnes admin`.
#[derive(Debug, Subcommand)]
pub enum DataAdminCommand {
    /// List the connectors the server can configure, with the fields each takes, as JSON.
    Connectors {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Configure a data source and check that it can be reached.
    #[command(subcommand)]
    Configure(ConfigureCommand),
    /// List the configured sources (secrets are never shown).
    Sources {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a configured source and its stored secret.
    RemoveSource {
        #[command(flatten)]
        server: ServerArgs,
        /// Source name.
        name: String,
    },
    /// Manage the table registry.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Discover the tables every source offers and register the new ones.
    Discover {
        #[command(flatten)]
        server: ServerArgs,
        /// Show what would be registered without registering it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show the detailed health report: every check with its message, warnings, contract
    /// findings per source, stale tables, the last sync and disk space.
    Health {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show recent sync jobs, or one job in full.
    Jobs {
        #[command(flatten)]
        server: ServerArgs,
        /// Job id; omit to list recent jobs.
        id: Option<String>,
    },
    /// Let a user read a table, also while it is private (see `agnes admin registry`).
    Grant {
        #[command(flatten)]
        server: ServerArgs,
        /// Table id (its published name).
        table: String,
        /// User id or email (see `agnes admin users list`).
        user: String,
    },
    /// Take back a user's grant of a table; it takes effect with their next request.
    Revoke {
        #[command(flatten)]
        server: ServerArgs,
        /// Table id.
        table: String,
        /// User id or email.
        user: String,
    },
    /// List table grants as JSON: all, or those of one table or one user.
    Grants {
        #[command(flatten)]
        server: ServerArgs,
        /// Only the grants of this table.
        #[arg(long)]
        table: Option<String>,
        /// Only the grants of this user, by id or email.
        #[arg(long)]
        user: Option<String>,
    },
}

/// `agnes admin configure`.
#[derive(Debug, Subcommand)]
pub enum ConfigureCommand {
    /// A folder of CSV, TSV, Parquet or JSON files on the server.
    Files {
        #[command(flatten)]
        server: ServerArgs,
        /// Folder path on the server.
        #[arg(long)]
        path: String,
        /// Source name.
        #[arg(long, default_value = "files")]
        name: String,
    },
    /// A PostgreSQL database.
    Postgres {
        #[command(flatten)]
        server: ServerArgs,
        /// libpq connection string or URI, without the password.
        #[arg(long)]
        url: String,
        /// Environment variable of this shell that contains the password.
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// Schema to offer; repeat for several; all schemas when omitted.
        #[arg(long = "schema")]
        schemas: Vec<String>,
        /// `remote` queries PostgreSQL live; `local` copies tables to Parquet on each sync.
        #[arg(long, value_enum, default_value = "remote")]
        mode: ModeArg,
        /// Source name.
        #[arg(long, default_value = "postgres")]
        name: String,
    },
}

/// Query mode of a PostgreSQL source.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Views over the live database.
    Remote,
    /// Copies in Parquet, refreshed by each sync.
    Local,
}

/// `agnes admin registry`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List the registered tables.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Register a table.
    Register {
        #[command(flatten)]
        server: ServerArgs,
        /// Published table name; letters, digits and underscores.
        name: String,
        /// Source that offers it.
        #[arg(long)]
        source: String,
        /// The table as the source names it (a file name, or schema.table).
        #[arg(long)]
        source_table: Option<String>,
        /// Description for the catalog.
        #[arg(long)]
        description: Option<String>,
        /// Readable only by admins and users granted it.
        #[arg(long)]
        private: bool,
    },
    /// Change a registered table: who may read it, or its description.
    Update {
        #[command(flatten)]
        server: ServerArgs,
        /// Table id.
        id: String,
        /// Readable only by admins and users granted it (`agnes admin grant`).
        #[arg(long, conflicts_with = "public")]
        private: bool,
        /// Readable by every user.
        #[arg(long)]
        public: bool,
        /// New description for the catalog.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a table from the registry.
    Delete {
        #[command(flatten)]
        server: ServerArgs,
        /// Table id.
        id: String,
    },
}

/// `agnes sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Sync only this table; repeat for several; every registered table when omitted.
    #[arg(long = "table")]
    tables: Vec<String>,
    /// Return once the job has started instead of following it to the end.
    #[arg(long)]
    no_wait: bool,
}

/// `agnes catalog`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Output format of `agnes query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// The server's JSON: `{"columns", "rows", "row_count", "truncated"}`.
    Json,
    /// One JSON object per row and line.
    Ndjson,
    /// An Arrow IPC stream (binary; use --output).
    Arrow,
    /// A Parquet file (binary; use --output).
    Parquet,
}

impl OutputFormat {
    fn server_name(self) -> Option<&'static str> {
        match self {
            OutputFormat::Table => None,
            OutputFormat::Csv => Some("csv"),
            OutputFormat::Json => Some("json"),
            OutputFormat::Ndjson => Some("ndjson"),
            OutputFormat::Arrow => Some("arrow"),
            OutputFormat::Parquet => Some("parquet"),
        }
    }
}

/// `agnes query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// One SELECT statement.
    sql: String,
    /// Maximum rows to return (default: 1000 for table and json, the server's maximum for the
    /// other formats).
    #[arg(long)]
    limit: Option<usize>,
    /// Output format; every format but `table` is the server's own, streamed as it arrives.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write the result to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// `agnes download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Published table name.
    table: String,
    /// File to write; `<table>.parquet` in the current folder by default.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::from_message(format!("cannot start the async runtime: {e}")))
}

fn finish(result: Result<Option<Value>, ClientError>) -> ExitCode {
    match result {
        Ok(Some(value)) => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            error.print();
            ExitCode::FAILURE
        }
    }
}

/// Runs a data administration command and returns the exit code.
pub fn run_admin(command: DataAdminCommand) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(admin(command))))
}

async fn admin(command: DataAdminCommand) -> Result<Option<Value>, ClientError> {
    let value = match command {
        DataAdminCommand::Connectors { server } => {
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, "/api/admin/connectors", None)
                .await?
        }
        DataAdminCommand::Configure(ConfigureCommand::Files { server, path, name }) => {
            let body = json!({"data_source": "files", "name": name, "path": path});
            server
                .client(Duration::from_secs(120))?
                .call(Method::POST, "/api/admin/configure", Some(&body))
                .await?
        }
        DataAdminCommand::Configure(ConfigureCommand::Postgres {
            server,
            url,
            password_env,
            schemas,
            mode,
            name,
        }) => {
            let password = match password_env {
                Some(var) => Some(std::env::var(&var).map_err(|_| {
                    ClientError::from_message(format!(
                        "environment variable {var} is not set; export the password in it first"
                    ))
                })?),
                None => None,
            };
            let mode = match mode {
                ModeArg::Remote => "remote",
                ModeArg::Local => "local",
            };
            let body = json!({"data_source": "postgres", "name": name, "url": url, "password": password, "schemas": schemas, "mode": mode});
            server
                .client(Duration::from_secs(120))?
                .call(Method::POST, "/api/admin/configure", Some(&body))
                .await?
        }
        DataAdminCommand::Sources { server } => {
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, "/api/admin/sources", None)
                .await?
        }
        DataAdminCommand::RemoveSource { server, name } => {
            server
                .client(Duration::from_secs(30))?
                .call(Method::DELETE, &format!("/api/admin/sources/{name}"), None)
                .await?;
            eprintln!("removed source {name}");
            return Ok(None);
        }
        DataAdminCommand::Registry(RegistryCommand::List { server }) => {
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, "/api/admin/registry", None)
                .await?
        }
        DataAdminCommand::Registry(RegistryCommand::Register {
            server,
            name,
            source,
            source_table,
            description,
            private,
        }) => {
            let body = json!({"name": name, "source": source, "source_table": source_table, "description": description, "is_public": !private});
            server
                .client(Duration::from_secs(30))?
                .call(Method::POST, "/api/admin/registry", Some(&body))
                .await?
        }
        DataAdminCommand::Registry(RegistryCommand::Update {
            server,
            id,
            private,
            public,
            description,
        }) => {
            let mut body = json!({});
            if private || public {
                body["is_public"] = json!(public);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            server
                .client(Duration::from_secs(30))?
                .call(
                    Method::PUT,
                    &format!("/api/admin/registry/{}", encode(&id)),
                    Some(&body),
                )
                .await?
        }
        DataAdminCommand::Registry(RegistryCommand::Delete { server, id }) => {
            server
                .client(Duration::from_secs(30))?
                .call(Method::DELETE, &format!("/api/admin/registry/{id}"), None)
                .await?;
            eprintln!("removed {id} from the registry");
            return Ok(None);
        }
        DataAdminCommand::Discover { server, dry_run } => {
            let path = if dry_run {
                "/api/admin/discover-and-register?dry_run=true"
            } else {
                "/api/admin/discover-and-register"
            };
            server
                .client(Duration::from_secs(300))?
                .call(Method::POST, path, None)
                .await?
        }
        DataAdminCommand::Health { server } => {
            server
                .client(Duration::from_secs(60))?
                .call(Method::GET, "/api/health/detailed", None)
                .await?
        }
        DataAdminCommand::Jobs { server, id } => {
            let path = id
                .map(|id| format!("/api/sync/jobs/{id}"))
                .unwrap_or_else(|| "/api/sync/jobs".to_string());
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, &path, None)
                .await?
        }
        DataAdminCommand::Grant {
            server,
            table,
            user,
        } => {
            let outcome = server
                .client(Duration::from_secs(30))?
                .call(Method::PUT, &grant_path(&table, &user), None)
                .await?;
            if outcome["created"] == true {
                eprintln!(
                    "granted {} to {}",
                    outcome["table_id"].as_str().unwrap_or(&table),
                    outcome["email"].as_str().unwrap_or(&user)
                );
            } else {
                eprintln!(
                    "{} already had {}; nothing changed",
                    outcome["email"].as_str().unwrap_or(&user),
                    outcome["table_id"].as_str().unwrap_or(&table)
                );
            }
            print_notes(&outcome);
            outcome
        }
        DataAdminCommand::Revoke {
            server,
            table,
            user,
        } => {
            let outcome = server
                .client(Duration::from_secs(30))?
                .call(Method::DELETE, &grant_path(&table, &user), None)
                .await?;
            if outcome["revoked"] == true {
                eprintln!(
                    "revoked {} from {}",
                    outcome["table_id"].as_str().unwrap_or(&table),
                    outcome["email"].as_str().unwrap_or(&user)
                );
            }
            print_notes(&outcome);
            outcome
        }
        DataAdminCommand::Grants {
            server,
            table,
            user,
        } => {
            let filters: Vec<String> = [("table", table), ("user", user)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| format!("{name}={}", encode(&v))))
                .collect();
            let path = if filters.is_empty() {
                "/api/admin/grants".to_string()
            } else {
                format!("/api/admin/grants?{}", filters.join("&"))
            };
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, &path, None)
                .await?
        }
    };
    Ok(Some(value))
}

/// Builds the path of the grant of `table` to `user`.
fn grant_path(table: &str, user: &str) -> String {
    format!(
        "/api/admin/registry/{}/grants/{}",
        encode(table),
        encode(user)
    )
}

/// Prints the server's notes on a grant or revoke (why it changes nothing now) to stderr.
fn print_notes(outcome: &Value) {
    for note in outcome["notes"].as_array().into_iter().flatten() {
        if let Some(note) = note.as_str() {
            eprintln!("note: {note}");
        }
    }
}

/// Percent-encodes `value` for a path segment or query value; letters, digits, `-._~` and `@`
/// stay as they are.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Runs `agnes sync` and returns the exit code: 0 when the job succeeded (with `--no-wait`: when
/// it started), 1 otherwise, after a summary of what failed on stderr.
pub fn run_sync(args: SyncArgs) -> ExitCode {
    let no_wait = args.no_wait;
    let outcome = runtime().and_then(|rt| rt.block_on(sync(args)));
    match outcome {
        Ok(job) => {
            outln!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
            let status = job["status"].as_str().unwrap_or("unknown");
            let started = no_wait && job["job_id"].is_string();
            if status == "succeeded" || started {
                return ExitCode::SUCCESS;
            }
            let id = job["id"].as_str().unwrap_or("?");
            let problems = job_problems(&job);
            eprintln!(
                "error: sync job {id} ended {status}: {}",
                if problems.is_empty() {
                    "no details recorded".to_string()
                } else {
                    problems.join("; ")
                }
            );
            eprintln!(
                "hint: fix the cause, then run `agnes sync` again; the data published before keeps serving. `agnes admin jobs {id}` shows the whole job."
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            error.print();
            ExitCode::FAILURE
        }
    }
}

/// What went wrong in a finished sync job, one short line per failed source, failed table and
/// publication problem.
pub fn job_problems(job: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for source in job["sources"].as_array().into_iter().flatten() {
        let name = source["name"].as_str().unwrap_or("?");
        if let Some(error) = source["error"].as_str() {
            problems.push(format!("source {name}: {}", shorten(error)));
        }
        for table in source["tables"].as_array().into_iter().flatten() {
            if table["status"] == "failed" {
                problems.push(format!(
                    "table {} of source {name}: {}",
                    table["name"].as_str().unwrap_or("?"),
                    shorten(table["error"].as_str().unwrap_or("failed"))
                ));
            }
        }
    }
    for problem in job["publication_errors"].as_array().into_iter().flatten() {
        problems.extend(problem.as_str().map(shorten));
    }
    problems.extend(job["error"].as_str().map(shorten));
    problems
}

/// The first 300 characters of `text`, without a closing full stop, on one line.
fn shorten(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.trim_end_matches('.');
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(299).collect::<String>())
    } else {
        line.to_string()
    }
}

async fn sync(args: SyncArgs) -> Result<Value, ClientError> {
    let client = args.server.client(Duration::from_secs(30))?;
    let body = if args.tables.is_empty() {
        Value::Null
    } else {
        json!({"tables": args.tables})
    };
    let started = client
        .call(Method::POST, "/api/sync/trigger", Some(&body))
        .await?;
    let id = started["job_id"].as_str().unwrap_or_default().to_string();
    eprintln!("sync job {id} started");
    if args.no_wait {
        return Ok(started);
    }

    let mut bar = ProgressLine::new();
    let started_at = Instant::now();
    loop {
        let job = client
            .call(Method::GET, &format!("/api/sync/jobs/{id}"), None)
            .await?;
        bar.show(&job, started_at.elapsed());
        if job["status"] != "running" {
            bar.finish();
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A one-line progress bar on stderr; plain lines when stderr is not a terminal.
struct ProgressLine {
    terminal: bool,
    last: String,
}

impl ProgressLine {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    fn show(&mut self, job: &Value, elapsed: Duration) {
        let line = progress_text(&job["progress"]);
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(
                stderr,
                "\r{:<100}",
                format!("{line}  {:.0}s", elapsed.as_secs_f64())
            );
            let _ = stderr.flush();
        } else if line != self.last {
            let _ = writeln!(stderr, "{line}  {:.0}s", elapsed.as_secs_f64());
        }
        self.last = line;
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// Formats the progress line of a job, without the elapsed time: a bar over the tables (over the
/// sources while the job counts no tables), the counts, the phase and the table being copied.
fn progress_text(progress: &Value) -> String {
    let count = |field: &str| progress[field].as_u64().unwrap_or(0);
    let (tables_done, tables_total) = (count("tables_done"), count("tables_total"));
    let (sources_done, sources_total) = (count("sources_done"), count("sources_total"));
    let (done, total) = if tables_total > 0 {
        (tables_done, tables_total)
    } else {
        (sources_done, sources_total)
    };

    let width = 30;
    let filled = (done.min(total) * width / total.max(1)) as usize;

    let mut counts = Vec::new();
    if tables_total > 0 {
        counts.push(format!("{tables_done}/{tables_total} tables"));
    }
    counts.push(format!("{sources_done}/{sources_total} sources"));

    let current = [
        progress["current_source"].as_str(),
        progress["current_table"].as_str(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");
    let current = if current.chars().count() > 40 {
        let tail: Vec<char> = current.chars().rev().take(39).collect();
        format!("…{}", tail.into_iter().rev().collect::<String>())
    } else {
        current
    };

    format!(
        "[{}{}] {}  {:<10} {current}",
        "#".repeat(filled),
        "-".repeat(width as usize - filled),
        counts.join(", "),
        progress["phase"].as_str().unwrap_or(""),
    )
    .trim_end()
    .to_string()
}

/// Runs `agnes catalog`.
pub fn run_catalog(args: CatalogArgs) -> ExitCode {
    let outcome = runtime().and_then(|rt| {
        rt.block_on(async {
            args.server
                .client(Duration::from_secs(30))?
                .call(Method::GET, "/api/catalog/tables", None)
                .await
        })
    });
    match outcome {
        Ok(catalog) if args.json => finish(Ok(Some(catalog))),
        Ok(catalog) => {
            let rows: Vec<Vec<String>> = catalog["tables"]
                .as_array()
                .map(|tables| {
                    tables
                        .iter()
                        .map(|t| {
                            vec![
                                text(&t["name"]),
                                text(&t["source"]),
                                text(&t["rows"]),
                                t["columns"].as_array().map_or(0, Vec::len).to_string(),
                                text(&t["description"]),
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            print_table(
                &["table", "source", "rows", "columns", "description"],
                &rows,
            );
            ExitCode::SUCCESS
        }
        Err(error) => finish(Err(error)),
    }
}

/// Runs `agnes query`.
pub fn run_query(args: QueryArgs) -> ExitCode {
    if let Some(format) = args.format.server_name() {
        let mut body = json!({"sql": args.sql, "format": format});
        if let Some(limit) = args.limit {
            body["limit"] = json!(limit);
        }
        let binary = matches!(args.format, OutputFormat::Arrow | OutputFormat::Parquet);
        if binary && args.output.is_none() && std::io::stdout().is_terminal() {
            return finish(Err(ClientError::new(
                format!("{format} is binary and standard output is a terminal"),
                Some("Add --output FILE, or pipe the output to a file or program.".to_string()),
            )));
        }
        return finish(
            stream_result(
                &args.server,
                "/api/query",
                Some(&body),
                args.output.as_deref(),
            )
            .map(|_| None),
        );
    }
    let body = json!({"sql": args.sql, "limit": args.limit.unwrap_or(1000)});
    let outcome = runtime().and_then(|rt| {
        rt.block_on(async {
            args.server
                .client(Duration::from_secs(300))?
                .call(Method::POST, "/api/query", Some(&body))
                .await
        })
    });
    let result = match outcome {
        Ok(result) => result,
        Err(error) => return finish(Err(error)),
    };
    let columns: Vec<String> = result["columns"]
        .as_array()
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = result["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|r| r.iter().map(text).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<&str> = columns.iter().map(String::as_str).collect();
    print_table(&headers, &rows);
    let count = result["row_count"].as_u64().unwrap_or(0);
    let more = if result["truncated"] == true {
        " (truncated; raise --limit)"
    } else {
        ""
    };
    let noun = if count == 1 { "row" } else { "rows" };
    eprintln!("{count} {noun}{more}");
    ExitCode::SUCCESS
}

/// Runs `agnes download`: streams a table as Parquet to a file.
pub fn run_download(args: DownloadArgs) -> ExitCode {
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.parquet", args.table)));
    let path = format!("/api/data/{}/download", args.table);
    finish(stream_result(&args.server, &path, None, Some(&output)).map(|_| None))
}

/// Streams a response body to `output` (or standard output) and reports its size on stderr.
/// A file is written beside its final name and renamed at the end, so a failed transfer leaves
/// no partial file.
fn stream_result(
    server: &ServerArgs,
    path: &str,
    body: Option<&Value>,
    output: Option<&std::path::Path>,
) -> Result<(), ClientError> {
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let rt = runtime()?;
    let client = server.client(Duration::from_secs(3600))?;
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            rt.block_on(client.stream_to(method, path, body, &[], &mut out))?;
            if body.is_some_and(|b| b["format"] == "json") {
                // The server's JSON has no line end; a shell prompt would follow it on its line.
                out.write_all(b"\n")
                    .and_then(|()| out.flush())
                    .map_err(|e| {
                        if crate::out::is_broken_pipe(&e) {
                            crate::out::stop_on_write_error(&e);
                        }
                        ClientError::new(format!("cannot write the result: {e}"), None)
                    })?;
            }
            Ok(())
        }
        Some(output) => {
            let name = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let partial = output.with_file_name(format!(".{name}.partial"));
            let cannot = |e: std::io::Error| {
                ClientError::new(format!("cannot write {}: {e}", partial.display()), None)
            };
            let mut file =
                std::io::BufWriter::new(std::fs::File::create(&partial).map_err(cannot)?);
            let streamed = rt.block_on(client.stream_to(method, path, body, &[], &mut file));
            drop(file);
            match streamed {
                Ok((bytes, headers)) => {
                    std::fs::rename(&partial, output).map_err(cannot)?;
                    let rows = headers.get("agnes-row-count").and_then(|v| v.to_str().ok());
                    match rows {
                        Some(rows) => {
                            eprintln!("wrote {} ({bytes} bytes, {rows} rows)", output.display())
                        }
                        None => eprintln!("wrote {} ({bytes} bytes)", output.display()),
                    }
                    Ok(())
                }
                Err(error) => {
                    let _ = std::fs::remove_file(&partial);
                    Err(error)
                }
            }
        }
    }
}

/// Renders a JSON value as a cell: strings bare, NULL empty, others as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count().min(60));
            }
        }
    }
    let render = |cells: Vec<String>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let cell: String = cell.chars().take(60).collect();
                format!("{cell:<width$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    outln!(
        "{}",
        render(headers.iter().map(|h| h.to_string()).collect())
    );
    outln!(
        "{}",
        render(widths.iter().map(|w| "-".repeat(*w)).collect())
    );
    for row in rows {
        outln!("{}", render(row.clone()));
    }
}

impl ServerArgs {
    /// Builds a client for the server these arguments name.
    pub fn client(&self, timeout: Duration) -> Result<Client, ClientError> {
        crate::admin::connect_with(self, timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_shows_tables_and_the_current_one() {
        let copying = json!({
            "phase": "extracting", "sources_done": 0, "sources_total": 2,
            "current_source": "files", "current_table": "salaries",
            "tables_done": 3, "tables_total": 10, "tables_finished": ["a", "b", "c"],
        });
        assert_eq!(
            progress_text(&copying),
            format!(
                "[{}{}] 3/10 tables, 0/2 sources  extracting files/salaries",
                "#".repeat(9),
                "-".repeat(21)
            )
        );

        let starting = json!({"phase": "discovering", "sources_done": 0, "sources_total": 0});
        assert_eq!(
            progress_text(&starting),
            format!("[{}] 0/0 sources  discovering", "-".repeat(30))
        );

        let custom = json!({
            "phase": "custom_connectors", "sources_done": 1, "sources_total": 2,
            "current_source": "crm", "tables_done": 0, "tables_total": 0,
        });
        assert_eq!(
            progress_text(&custom),
            format!(
                "[{}{}] 1/2 sources  custom_connectors crm",
                "#".repeat(15),
                "-".repeat(15)
            )
        );

        let long = json!({
            "phase": "extracting", "sources_done": 0, "sources_total": 1,
            "current_source": "warehouse", "current_table": "x".repeat(60),
            "tables_done": 10, "tables_total": 10,
        });
        let text = progress_text(&long);
        assert!(
            text.starts_with(&format!("[{}] 10/10 tables", "#".repeat(30))),
            "{text}"
        );
        assert!(text.ends_with(&format!("…{}", "x".repeat(39))), "{text}");
    }

    #[test]
    fn grant_paths_are_encoded() {
        assert_eq!(
            grant_path("salaries", "ana+data@example.com"),
            "/api/admin/registry/salaries/grants/ana%2Bdata@example.com"
        );
        assert_eq!(encode("a b/c?d"), "a%20b%2Fc%3Fd");
    }

    #[test]
    fn cells_render_json() {
        assert_eq!(text(&json!(null)), "");
        assert_eq!(text(&json!("x")), "x");
        assert_eq!(text(&json!(3)), "3");
        assert_eq!(text(&json!([1, 2])), "[1,2]");
    }
}
