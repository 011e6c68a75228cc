//! Read-only SQL over the published analytics database.
//!
//! A [`Snapshot`] is one DuckDB instance opened on one publication: the analytics file read-only,
//! every extract attached read-only from its pinned version folder, the remote catalogs attached
//! again, then locked down (files only under `extracts/`, no extension loading, configuration
//! locked). [`QueryEngine`] holds the current snapshot; a rebuild installs a new one, and queries
//! that already hold the old one finish on it. Query connections are clones of the snapshot's
//! owning connection, reused through a small pool.
//!
//! Only a single SELECT statement runs, and that is decided by DuckDB's own parser
//! (`json_serialize_sql`) before the text reaches `prepare`, because `prepare` in the `duckdb`
//! crate executes every statement but the last.
//!
//! A query runs as a [`QueryStream`]: DuckDB produces the result one chunk at a time and a
//! [`Format`] writer sends each chunk on, so no result is ever held whole, and an error in any
//! chunk (a timeout, the memory limit, a failing cast) is an error, never a short result.

mod format;
mod raw;

pub use format::{Format, Written};

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use contract_spec::identifier::{quote_identifier, quote_literal};
use contract_spec::spec::EXTRACT_FILE;
use duckdb::{Connection, params};
use serde::{Deserialize, Serialize};

use self::format::ResultWriter;
use self::raw::{Database, ErrorClass, Interrupter, RawConnection, RawError, RawStream};

use crate::error::{Error, ErrorKind, Result};
use crate::orchestrator::Publication;
use crate::remote::{self, RemotePolicy, SecretLookup};

/// Limits of query execution.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// DuckDB `memory_limit` of each snapshot, for example `2GB`.
    pub memory_limit: String,
    /// DuckDB worker threads of each snapshot.
    pub threads: i64,
    /// Largest row limit a caller may ask for; also the limit of streamed formats when the
    /// caller names none.
    pub max_rows: usize,
    /// Time after which a running query is interrupted.
    pub timeout: Duration,
    /// Time limit of a whole-table download, which streams for as long as the client reads.
    pub export_timeout: Duration,
    /// Queries that may run at once; more are rejected with `query.busy` instead of queueing.
    pub max_concurrent: usize,
    /// Queries one user may run at once, so that one user cannot take every slot.
    pub max_per_user: usize,
    /// Largest row limit a viewer may ask for in any format.
    pub viewer_max_rows: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            memory_limit: "2GB".to_string(),
            threads: 2,
            max_rows: 10_000_000,
            timeout: Duration::from_secs(60),
            export_timeout: Duration::from_secs(3600),
            max_concurrent: 64,
            max_per_user: 8,
            viewer_max_rows: 10_000,
        }
    }
}

impl EngineSettings {
    /// Reads the query limits from the environment; unset or empty variables keep the defaults:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `AGNES_QUERY_TIMEOUT_SECONDS` | time limit of one query | 60 |
    /// | `AGNES_EXPORT_TIMEOUT_SECONDS` | time limit of a table download | 3600 |
    /// | `AGNES_QUERY_MEMORY_LIMIT` | DuckDB memory limit shared by all queries, such as `2GB` | `2GB` |
    /// | `AGNES_QUERY_THREADS` | DuckDB worker threads for queries | 2 |
    /// | `AGNES_QUERY_MAX_ROWS` | largest row limit a request may set | 10000000 |
    /// | `AGNES_QUERY_MAX_CONCURRENT` | queries that run at once before `query.busy` | 64 |
    /// | `AGNES_QUERY_MAX_PER_USER` | queries one user runs at once before `query.busy` | 8 |
    /// | `AGNES_VIEWER_MAX_ROWS` | largest row limit of a viewer's query | 10000 |
    ///
    /// Fails with `settings.invalid` naming the variable whose value cannot be used.
    pub fn try_from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, which returns a variable's value; see
    /// [`EngineSettings::try_from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let read = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        let seconds = |name: &str, default: Duration| -> Result<Duration> {
            match read(name) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 7.0 * 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        invalid_setting(
                            name,
                            &value,
                            "a number of seconds above 0 and at most 604800, such as 60",
                        )
                    }),
            }
        };
        let count = |name: &str, default: usize| -> Result<usize> {
            match read(name) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid_setting(name, &value, "a whole number above 0")),
            }
        };
        let memory_limit = match read("AGNES_QUERY_MEMORY_LIMIT") {
            None => defaults.memory_limit.clone(),
            Some(value) if is_memory_size(&value) => value.trim().to_string(),
            Some(value) => {
                return Err(invalid_setting(
                    "AGNES_QUERY_MEMORY_LIMIT",
                    &value,
                    "a size with a unit, such as 512MB, 2GB or 4GiB",
                ));
            }
        };
        let threads = count("AGNES_QUERY_THREADS", defaults.threads as usize)?;
        Ok(Self {
            memory_limit,
            threads: i64::try_from(threads).unwrap_or(i64::MAX),
            max_rows: count("AGNES_QUERY_MAX_ROWS", defaults.max_rows)?,
            timeout: seconds("AGNES_QUERY_TIMEOUT_SECONDS", defaults.timeout)?,
            export_timeout: seconds("AGNES_EXPORT_TIMEOUT_SECONDS", defaults.export_timeout)?,
            max_concurrent: count("AGNES_QUERY_MAX_CONCURRENT", defaults.max_concurrent)?,
            max_per_user: count("AGNES_QUERY_MAX_PER_USER", defaults.max_per_user)?,
            viewer_max_rows: count("AGNES_VIEWER_MAX_ROWS", defaults.viewer_max_rows)?,
        })
    }
}

/// Whether `value` is a size DuckDB's `memory_limit` accepts: a number and a byte unit.
fn is_memory_size(value: &str) -> bool {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number_ok = number
        .parse::<f64>()
        .is_ok_and(|n| n.is_finite() && n > 0.0);
    let unit = unit.trim().to_ascii_lowercase();
    number_ok
        && matches!(
            unit.as_str(),
            "b" | "kb" | "mb" | "gb" | "tb" | "kib" | "mib" | "gib" | "tib"
        )
}

fn invalid_setting(name: &str, value: &str, expected: &str) -> Error {
    Error::invalid(
        "settings.invalid",
        format!("{name}={value:?} is not {expected}"),
    )
    .with_hint(format!("Fix {name} or unset it to use the default."))
}

/// Stops a running query from another thread, for example when its client went away.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Asks the query to stop; the time-limit thread interrupts it within 20 ms.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Returns whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Owner of a query, and the token that stops it early.
#[derive(Debug, Clone, Default)]
pub struct QueryContext {
    /// The user the query counts against for the per-user limit; `None` for internal queries.
    pub user_id: Option<String>,
    /// Stops the query when cancelled.
    pub cancel: CancelToken,
}

/// Interrupts queries that run past their deadline.
///
/// One background thread checks the registered queries every 20 ms. It interrupts an overdue
/// query on every check until the query deregisters, because DuckDB drops an interrupt that
/// arrives before the query has started.
struct Watchdog {
    running: Mutex<HashMap<u64, (Instant, Interrupter, CancelToken)>>,
    next_id: AtomicU64,
}

impl Watchdog {
    fn start() -> Arc<Watchdog> {
        let watchdog = Arc::new(Watchdog {
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&watchdog);
        let spawned = std::thread::Builder::new()
            .name("query-watchdog".to_string())
            .spawn(move || {
                while let Some(watchdog) = weak.upgrade() {
                    let now = Instant::now();
                    for (deadline, interrupter, cancel) in watchdog
                        .running
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                    {
                        if now >= *deadline || cancel.is_cancelled() {
                            interrupter.interrupt();
                        }
                    }
                    drop(watchdog);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the query watchdog; queries will not time out");
        }
        watchdog
    }

    /// Interrupts the connection of `interrupter` from `deadline` on, or once `cancel` is
    /// cancelled, until [`Watchdog::forget`]
    /// is called with the returned id; that must happen before the connection is dropped.
    fn watch(&self, deadline: Instant, interrupter: Interrupter, cancel: CancelToken) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (deadline, interrupter, cancel));
        id
    }

    fn forget(&self, id: u64) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

/// The result of a query in the original JSON shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each a list of JSON values in column order.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Number of rows returned.
    pub row_count: usize,
    /// Whether more rows existed than the limit allowed.
    pub truncated: bool,
}

/// One DuckDB instance serving one publication.
pub struct Snapshot {
    publication: Publication,
    // Fields drop in order: pooled connections and the owning connection go before the
    // database they belong to.
    pool: Mutex<Vec<QueryConnection>>,
    owner: Mutex<Connection>,
    database: Database,
    scrubber: Scrubber,
    time_limit: Duration,
    memory_limit: String,
}

/// The two connections a query uses: the `duckdb` crate's, for the parse-tree check, and a raw
/// one that streams the result.
struct QueryConnection {
    check: Connection,
    raw: RawConnection,
}

impl Snapshot {
    /// Opens a DuckDB instance on `publication`'s analytics file with every extract and remote
    /// catalog attached, then locks it down.
    ///
    /// Fails with `query.open_failed` when the analytics file or an extract cannot be opened.
    /// A remote catalog that fails to attach is logged and its views fail at query time.
    pub fn open(
        publication: Publication,
        settings: &EngineSettings,
        policy: &RemotePolicy,
        secrets: &dyn SecretLookup,
    ) -> Result<Snapshot> {
        let scrubber = Scrubber::for_publication(&publication, policy);
        let mut options = vec![
            ("access_mode", "READ_ONLY".to_string()),
            ("autoload_known_extensions", "false".to_string()),
            ("autoinstall_known_extensions", "false".to_string()),
            ("max_memory", settings.memory_limit.clone()),
            ("threads", settings.threads.to_string()),
            ("temp_directory", String::new()),
        ];
        if let Some(dir) = &policy.extension_directory {
            options.push(("extension_directory", dir.to_string_lossy().into_owned()));
        }
        let database = Database::open(&publication.analytics_path, &options)
            .map_err(|e| open_failed("opening the analytics database", &e.message, &scrubber))?;
        let conn = database
            .crate_connection()
            .map_err(|e| open_failed("connecting", &e.to_string(), &scrubber))?;

        for (source, dir) in publication.attached_sources() {
            let attach = format!(
                "ATTACH {} AS {} (READ_ONLY)",
                quote_literal(&dir.join(EXTRACT_FILE).to_string_lossy()),
                quote_identifier(source)
            );
            conn.execute_batch(&attach)
                .map_err(|e| open_failed("attaching an extract", &e.to_string(), &scrubber))?;
        }
        for attachment in &publication.attachments {
            if let Err(error) = remote::attach(&conn, attachment, policy, secrets) {
                tracing::warn!(source = %attachment.source, alias = %attachment.alias, %error, "remote attach failed for queries");
            }
        }

        let mut root = publication.extracts_root.to_string_lossy().into_owned();
        if !root.ends_with('/') {
            root.push('/');
        }
        let sandbox = format!(
            "SET allowed_directories = [{}]; SET enable_external_access = false; SET lock_configuration = true;",
            quote_literal(&root)
        );
        conn.execute_batch(&sandbox).map_err(|e| {
            open_failed(
                "locking the query connection down",
                &e.to_string(),
                &scrubber,
            )
        })?;

        Ok(Snapshot {
            publication,
            pool: Mutex::new(Vec::new()),
            owner: Mutex::new(conn),
            database,
            scrubber,
            time_limit: settings.timeout,
            memory_limit: settings.memory_limit.clone(),
        })
    }

    /// The publication this snapshot serves.
    pub fn publication(&self) -> &Publication {
        &self.publication
    }

    /// Whether DuckDB's `message` reports that a file under the extracts folder is missing,
    /// which a sync repairs, rather than a mistake in the query.
    fn names_missing_extract_file(&self, message: &str) -> bool {
        let missing = message.contains("No files found that match the pattern")
            || message.contains("No such file or directory");
        // Published views read from the hidden version folders, `extracts/.<source>.v<time>/`.
        let versions = self.publication.extracts_root.join(".");
        missing && message.contains(versions.to_string_lossy().as_ref())
    }

    fn checkout(&self) -> Result<QueryConnection> {
        if let Some(conn) = self.pool.lock().expect("pool lock").pop() {
            return Ok(conn);
        }
        let check = self
            .owner
            .lock()
            .expect("owner lock")
            .try_clone()
            .map_err(|e| {
                open_failed("opening a query connection", &e.to_string(), &self.scrubber)
            })?;
        let raw = self
            .database
            .connect()
            .map_err(|e| open_failed("opening a query connection", &e.message, &self.scrubber))?;
        Ok(QueryConnection { check, raw })
    }

    fn checkin(&self, conn: QueryConnection) {
        let mut pool = self.pool.lock().expect("pool lock");
        if pool.len() < 64 {
            pool.push(conn);
        }
    }

    /// Runs one read-only SELECT and returns at most `limit` rows, with no time limit.
    ///
    /// Fails with `query.not_select` for anything but a single SELECT statement and with
    /// `query.failed` when DuckDB rejects the query.
    pub fn query(self: &Arc<Self>, sql: &str, limit: usize) -> Result<QueryResult> {
        self.start(sql, limit, &Access::All, None, None)?.collect()
    }

    /// Checks `sql` against `access`, starts it and fetches its first rows, so that an error of
    /// the query itself comes out here rather than in the middle of a stream.
    fn start(
        self: &Arc<Self>,
        sql: &str,
        limit: usize,
        access: &Access,
        watch: Option<(Arc<Watchdog>, Instant, CancelToken)>,
        slot: Option<Slot>,
    ) -> Result<QueryStream> {
        let mut conn = self.checkout()?;
        let checked = ensure_single_select(&conn.check, sql).and_then(|tree| match access {
            Access::All => Ok(()),
            Access::Tables(visible) => {
                crate::guard::check(&tree, &|name| visible.contains(name)).map_err(Error::from)
            }
        });
        if let Err(error) = checked {
            self.checkin(conn);
            return Err(self.scrubber.error(error));
        }
        let deadline = watch.as_ref().map(|(_, deadline, _)| *deadline);
        let cancel = watch.as_ref().map(|(_, _, cancel)| cancel.clone());
        let watch = watch.map(|(watchdog, deadline, cancel)| {
            let id = watchdog.watch(deadline, conn.raw.interrupter(), cancel);
            (watchdog, id)
        });
        let started = conn.raw.start(sql);
        let mut stream = QueryStream {
            raw: None,
            conn: Some(conn),
            snapshot: self.clone(),
            watch,
            deadline,
            cancel,
            limit,
            emitted: 0,
            truncated: false,
            pending: None,
            done: false,
            schema: SchemaRef::new(arrow::datatypes::Schema::empty()),
            _slot: slot,
        };
        let raw = started.map_err(|e| stream.failed(e))?;
        stream.schema = raw.schema();
        stream.raw = Some(raw);
        stream.pending = stream.fetch()?;
        Ok(stream)
    }
}

/// A query that has started and whose rows are read one batch at a time.
///
/// It holds its connection, its query slot and its place under the time limit until it is
/// dropped, which returns the connection to the pool.
pub struct QueryStream {
    // Drop order: the DuckDB result goes before its connection is pooled again (see `Drop`).
    raw: Option<RawStream>,
    conn: Option<QueryConnection>,
    snapshot: Arc<Snapshot>,
    watch: Option<(Arc<Watchdog>, u64)>,
    deadline: Option<Instant>,
    cancel: Option<CancelToken>,
    limit: usize,
    emitted: usize,
    truncated: bool,
    pending: Option<RecordBatch>,
    done: bool,
    schema: SchemaRef,
    _slot: Option<Slot>,
}

impl QueryStream {
    /// Returns the result's columns and their Arrow types.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Returns the column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Rows handed out so far.
    pub fn row_count(&self) -> usize {
        self.emitted
    }

    /// Returns whether the row limit cut the result, which is known once the last batch was
    /// read.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The next batch of rows within the row limit, or `None` at the end.
    ///
    /// Fails with `query.timeout` when the time limit stops the query, `query.memory_limit`
    /// when DuckDB runs out of its memory limit, and `query.failed` for any other error DuckDB
    /// reports while producing rows.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.done {
            return Ok(None);
        }
        let batch = match self.pending.take() {
            Some(batch) => Some(batch),
            None => self.fetch()?,
        };
        let Some(batch) = batch else {
            self.finish();
            return Ok(None);
        };
        let room = self.limit - self.emitted;
        if room == 0 {
            self.truncated = true;
            self.finish();
            return Ok(None);
        }
        if batch.num_rows() > room {
            self.truncated = true;
            self.emitted = self.limit;
            self.finish();
            return Ok(Some(batch.slice(0, room)));
        }
        self.emitted += batch.num_rows();
        Ok(Some(batch))
    }

    /// Writes the whole result to `out` in `format` and returns how many rows went out.
    ///
    /// Fails as [`QueryStream::next_batch`] does, with `query.format_unsupported` when the format
    /// cannot hold a column (see [`Format::check`]), and with `query.write_failed` when `out`
    /// fails, for example because the client went away.
    pub fn write_to<W: Write + Send>(mut self, format: Format, out: W) -> Result<(Written, W)> {
        format.check(&self.schema)?;
        let mut writer = ResultWriter::begin(format, &self.schema, out)?;
        while let Some(batch) = self.next_batch()? {
            writer.write(&batch)?;
        }
        let written = Written {
            row_count: self.emitted,
            truncated: self.truncated,
        };
        let out = writer.finish(&written)?;
        Ok((written, out))
    }

    /// Reads the whole result into the original JSON shape.
    pub fn collect(self) -> Result<QueryResult> {
        let (_, bytes) = self.write_to(Format::Json, Vec::new())?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                "query.encode_failed",
                format!("the JSON result does not parse back: {e}"),
            )
        })
    }

    fn fetch(&mut self) -> Result<Option<RecordBatch>> {
        let Some(raw) = self.raw.as_mut() else {
            return Ok(None);
        };
        match raw.next_batch() {
            Ok(batch) => Ok(batch),
            Err(error) => {
                let error = self.failed(error);
                self.finish();
                Err(error)
            }
        }
    }

    /// Ends the query early or at its end: frees DuckDB's result and the time limit's watch.
    fn finish(&mut self) {
        self.done = true;
        self.raw = None;
        if let Some((watchdog, id)) = self.watch.take() {
            watchdog.forget(id);
        }
    }

    /// Turns DuckDB's error into ours: the time limit, the memory limit, a cancelled query and a
    /// missing extract file get their own codes.
    fn failed(&self, error: RawError) -> Error {
        let timed_out = self.deadline.is_some_and(|d| Instant::now() >= d);
        let cancelled = self.cancel.as_ref().is_some_and(CancelToken::is_cancelled);
        let limit = self.snapshot.time_limit;
        let error = match error.class {
            ErrorClass::Interrupted if cancelled => Error::new(
                ErrorKind::Unavailable,
                "query.cancelled",
                "the query was stopped because its client went away",
            ),
            ErrorClass::Interrupted if timed_out => Error::new(
                ErrorKind::LimitExceeded,
                "query.timeout",
                format!(
                    "the query ran longer than the time limit of {} s and was stopped",
                    limit.as_secs_f64()
                ),
            )
            .with_hint("Add filters or aggregate, ask for fewer rows, or download the table and query it locally."),
            ErrorClass::OutOfMemory => Error::new(
                ErrorKind::LimitExceeded,
                "query.memory_limit",
                format!(
                    "the query needed more memory than the server's limit of {}: {}",
                    self.snapshot.memory_limit,
                    first_line(&error.message)
                ),
            )
            .with_hint("Aggregate or filter earlier, select fewer columns, or ask for fewer rows; large sorts and joins need the most memory."),
            _ if self.snapshot.names_missing_extract_file(&error.message) => Error::new(
                ErrorKind::Unavailable,
                "query.extract_missing",
                format!("a published data file is missing on the server: {}", first_line(&error.message)),
            )
            .with_hint("Run a sync (`agnes sync` or POST /api/sync/trigger) to rebuild the extract; GET /api/health/detailed names the source."),
            _ => Error::new(ErrorKind::InvalidQuery, "query.failed", error.message).with_hint(
                "Fix the SQL; GET /api/catalog/tables lists the tables and their columns.",
            ),
        };
        self.snapshot.scrubber.error(error)
    }
}

/// The first line of a DuckDB message, without the advice DuckDB adds for its own shell.
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim_end()
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.finish();
        if let Some(conn) = self.conn.take() {
            self.snapshot.checkin(conn);
        }
    }
}

/// Replaces the server's own paths in messages with placeholders, so that errors name the
/// data folder without telling where it is.
struct Scrubber {
    replacements: Vec<(String, &'static str)>,
}

impl Scrubber {
    fn for_publication(publication: &Publication, policy: &RemotePolicy) -> Scrubber {
        let mut replacements = Vec::new();
        let mut add = |path: &Path, placeholder: &'static str| {
            for variant in [Some(path.to_path_buf()), path.canonicalize().ok()]
                .into_iter()
                .flatten()
            {
                let text = variant.to_string_lossy().trim_end_matches('/').to_string();
                if text.len() > 1 {
                    replacements.push((text, placeholder));
                }
            }
        };
        if let Some(data_dir) = publication.extracts_root.parent() {
            add(data_dir, "<data>");
        }
        add(&publication.extracts_root, "<data>/extracts");
        if let Some(dir) = &policy.extension_directory {
            add(dir, "<extensions>");
        }
        // Longer paths first, so that a folder inside another is replaced whole.
        replacements.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        replacements.dedup();
        Scrubber { replacements }
    }

    fn text(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (path, placeholder) in &self.replacements {
            if text.contains(path.as_str()) {
                text = text.replace(path.as_str(), placeholder);
            }
        }
        text
    }

    fn error(&self, mut error: Error) -> Error {
        error.message = self.text(&error.message);
        error
    }
}

/// Which published tables a query may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every table, and qualified names; for admins.
    All,
    /// Only these published tables (lowercase names), checked on DuckDB's parse tree before the
    /// query runs.
    Tables(HashSet<String>),
}

/// Rejects anything but one SELECT statement, using DuckDB's parser, and returns the parse tree
/// (the output of `json_serialize_sql`).
pub fn ensure_single_select(conn: &Connection, sql: &str) -> Result<serde_json::Value> {
    let json: String = conn
        .query_row(
            "SELECT json_serialize_sql(?::VARCHAR)",
            params![sql],
            |row| row.get(0),
        )
        .map_err(query_failed)?;
    let tree: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
        Error::new(
            ErrorKind::InvalidQuery,
            "query.too_complex",
            format!("the query is nested too deeply to check: {e}"),
        )
        .with_hint(
            "Split the expression or the subqueries into simpler steps, for example with WITH.",
        )
    })?;
    if tree.get("error").and_then(serde_json::Value::as_bool) == Some(false) {
        let count = tree
            .get("statements")
            .and_then(|s| s.as_array())
            .map_or(0, Vec::len);
        if count == 1 {
            return Ok(tree);
        }
        return Err(Error::new(
            ErrorKind::InvalidQuery,
            "query.not_select",
            format!("the request holds {count} statements; only one SELECT runs"),
        )
        .with_hint("Send one SELECT (or WITH ... SELECT) statement per request."));
    }
    let message = tree
        .get("error_message")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("not a SELECT statement");
    let kind = tree
        .get("error_type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if kind == "parser" {
        return Err(Error::new(
            ErrorKind::InvalidQuery,
            "query.syntax",
            format!("SQL syntax error: {message}"),
        )
        .with_hint("Fix the SQL; only one SELECT statement runs."));
    }
    Err(Error::new(ErrorKind::InvalidQuery, "query.not_select", "only a single read-only SELECT statement is allowed")
        .with_hint("Send one SELECT (or WITH ... SELECT) statement; data changes, ATTACH, SET, PRAGMA and COPY are not allowed."))
}

/// Serves queries from the current snapshot and swaps in new ones.
pub struct QueryEngine {
    settings: EngineSettings,
    policy: RemotePolicy,
    secrets: Arc<dyn SecretLookup>,
    current: RwLock<Option<Arc<Snapshot>>>,
    retired: Mutex<Vec<Weak<Snapshot>>>,
    watchdog: Arc<Watchdog>,
    active: Arc<AtomicUsize>,
    per_user: PerUser,
}

/// Running queries by user id.
type PerUser = Arc<Mutex<HashMap<String, usize>>>;

/// Releases a query slot, and the user's share of the slots, when dropped.
struct Slot {
    active: Arc<AtomicUsize>,
    user: Option<(PerUser, String)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        if let Some((per_user, user)) = &self.user {
            let mut per_user = per_user.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = per_user.get_mut(user) {
                *count -= 1;
                if *count == 0 {
                    per_user.remove(user);
                }
            }
        }
    }
}

impl QueryEngine {
    /// Creates an engine with no snapshot; [`QueryEngine::install`] gives it one.
    pub fn new(
        settings: EngineSettings,
        policy: RemotePolicy,
        secrets: Arc<dyn SecretLookup>,
    ) -> Self {
        Self {
            settings,
            policy,
            secrets,
            current: RwLock::new(None),
            retired: Mutex::new(Vec::new()),
            watchdog: Watchdog::start(),
            active: Arc::new(AtomicUsize::new(0)),
            per_user: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The engine's limits.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Opens a snapshot on `publication` and makes it current. Queries already running keep the
    /// snapshot they started on.
    ///
    /// Fails like [`Snapshot::open`]; the current snapshot then stays.
    pub fn install(&self, publication: Publication) -> Result<()> {
        let snapshot = Arc::new(Snapshot::open(
            publication,
            &self.settings,
            &self.policy,
            self.secrets.as_ref(),
        )?);
        let previous = self
            .current
            .write()
            .expect("snapshot lock")
            .replace(snapshot);
        if let Some(previous) = previous {
            let mut retired = self.retired.lock().expect("retired lock");
            retired.retain(|weak| weak.strong_count() > 0);
            retired.push(Arc::downgrade(&previous));
        }
        Ok(())
    }

    /// The current snapshot, if any publication was installed.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.read().expect("snapshot lock").clone()
    }

    /// Runs one read-only SELECT on the current snapshot with access to every table.
    ///
    /// Fails like [`QueryEngine::query_as`].
    pub fn query(&self, sql: &str, limit: usize) -> Result<QueryResult> {
        self.query_as(sql, limit, &Access::All)
    }

    /// Runs one read-only SELECT on the current snapshot, reading only what `access` allows,
    /// and collects at most `limit` rows.
    ///
    /// Fails as [`QueryEngine::start`] and [`QueryStream::next_batch`] do.
    pub fn query_as(&self, sql: &str, limit: usize, access: &Access) -> Result<QueryResult> {
        self.start(sql, limit, access)?.collect()
    }

    /// Starts one read-only SELECT on the current snapshot, reading only what `access` allows;
    /// the stream hands out at most `limit` rows.
    ///
    /// Fails with `query.not_ready` before the first publication, `query.limit_too_large` when
    /// `limit` exceeds the configured maximum, `query.busy` when the server runs its maximum of
    /// queries, `query.not_select` or `query.syntax` for anything but one SELECT,
    /// `query.table_denied` (and the other codes of [`crate::guard`]) when it reads what `access`
    /// forbids, `query.failed` when DuckDB rejects it, and `query.timeout` or
    /// `query.memory_limit` when a limit stops it before its first rows.
    pub fn start(&self, sql: &str, limit: usize, access: &Access) -> Result<QueryStream> {
        self.start_with(sql, limit, access, &QueryContext::default())
    }

    /// Starts a query like [`QueryEngine::start`], counted against `context.user_id` and stopped
    /// when `context.cancel` is cancelled.
    ///
    /// Fails as [`QueryEngine::start`] does, and with `query.busy` when the user already runs
    /// the per-user maximum of queries.
    pub fn start_with(
        &self,
        sql: &str,
        limit: usize,
        access: &Access,
        context: &QueryContext,
    ) -> Result<QueryStream> {
        if limit > self.settings.max_rows {
            return Err(Error::invalid(
                "query.limit_too_large",
                format!(
                    "limit {limit} is above the maximum of {} rows",
                    self.settings.max_rows
                ),
            )
            .with_hint("Ask for fewer rows, or download the table as Parquet."));
        }
        self.start_unchecked(sql, limit, access, self.settings.timeout, context)
    }

    /// Starts one read-only SELECT that hands out every row, for exports of whole tables.
    ///
    /// Fails as [`QueryEngine::start_with`] does, except that there is no row limit and the
    /// time limit is the export timeout.
    pub fn start_export(
        &self,
        sql: &str,
        access: &Access,
        context: &QueryContext,
    ) -> Result<QueryStream> {
        self.start_unchecked(
            sql,
            usize::MAX,
            access,
            self.settings.export_timeout,
            context,
        )
    }

    fn start_unchecked(
        &self,
        sql: &str,
        limit: usize,
        access: &Access,
        timeout: Duration,
        context: &QueryContext,
    ) -> Result<QueryStream> {
        let snapshot = self.snapshot().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "query.not_ready",
                "no data has been published yet",
            )
            .with_hint("Run a sync (POST /api/sync/trigger or `agnes sync`) and try again.")
        })?;
        let slot = self.acquire_slot(context.user_id.as_deref())?;
        let deadline = Instant::now() + timeout;
        snapshot.start(
            sql,
            limit,
            access,
            Some((self.watchdog.clone(), deadline, context.cancel.clone())),
            Some(slot),
        )
    }

    /// Takes one of the `max_concurrent` query slots, or fails with `query.busy`.
    fn acquire_slot(&self, user: Option<&str>) -> Result<Slot> {
        let taken = self.active.fetch_add(1, Ordering::AcqRel);
        let mut slot = Slot {
            active: self.active.clone(),
            user: None,
        };
        if taken >= self.settings.max_concurrent {
            return Err(Error::new(
                ErrorKind::Busy {
                    retry_after: Duration::from_secs(1),
                },
                "query.busy",
                format!(
                    "{} queries are already running, the most this server runs at once",
                    self.settings.max_concurrent
                ),
            )
            .with_hint("Retry in a second or two."));
        }
        if let Some(user) = user {
            let mut per_user = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
            let count = per_user.entry(user.to_string()).or_insert(0);
            if *count >= self.settings.max_per_user {
                return Err(Error::new(
                    ErrorKind::Busy {
                        retry_after: Duration::from_secs(1),
                    },
                    "query.busy",
                    format!(
                        "you already run {} queries, the most one user may run at once",
                        self.settings.max_per_user
                    ),
                )
                .with_hint("Wait for one of your queries to finish, then retry."));
            }
            *count += 1;
            slot.user = Some((self.per_user.clone(), user.to_string()));
        }
        Ok(slot)
    }

    /// Version folders that a live snapshot still reads, so garbage collection keeps them.
    pub fn folders_in_use(&self) -> HashSet<PathBuf> {
        let mut snapshots: Vec<Arc<Snapshot>> = self
            .retired
            .lock()
            .expect("retired lock")
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        snapshots.extend(self.snapshot());
        snapshots
            .iter()
            .flat_map(|s| {
                s.publication
                    .attached_sources()
                    .map(|(_, dir)| dir.to_path_buf())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

fn open_failed(step: &str, message: &str, scrubber: &Scrubber) -> Error {
    Error::new(ErrorKind::Unavailable, "query.open_failed", format!("DuckDB failed while {step}: {}", scrubber.text(message)))
        .with_hint("Run a sync to rebuild the analytics database; GET /api/health/detailed shows which source is broken.")
}

fn query_failed(error: duckdb::Error) -> Error {
    Error::new(ErrorKind::InvalidQuery, "query.failed", error.to_string())
        .with_hint("Fix the SQL; GET /api/catalog/tables lists the tables and their columns.")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<EngineSettings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineSettings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn engine_settings_from_environment() {
        let defaults = read(&[]).unwrap();
        assert_eq!(defaults.timeout, Duration::from_secs(60));
        assert_eq!(defaults.memory_limit, "2GB");

        let set = read(&[
            ("AGNES_QUERY_TIMEOUT_SECONDS", "2.5"),
            ("AGNES_EXPORT_TIMEOUT_SECONDS", "600"),
            ("AGNES_QUERY_MEMORY_LIMIT", " 512MiB "),
            ("AGNES_QUERY_THREADS", "4"),
            ("AGNES_QUERY_MAX_ROWS", "5000"),
            ("AGNES_QUERY_MAX_CONCURRENT", "8"),
        ])
        .unwrap();
        assert_eq!(set.timeout, Duration::from_millis(2500));
        assert_eq!(set.export_timeout, Duration::from_secs(600));
        assert_eq!(set.memory_limit, "512MiB");
        assert_eq!(set.threads, 4);
        assert_eq!(set.max_rows, 5000);
        assert_eq!(set.max_concurrent, 8);

        for (name, value) in [
            ("AGNES_QUERY_TIMEOUT_SECONDS", "0"),
            ("AGNES_QUERY_TIMEOUT_SECONDS", "soon"),
            ("AGNES_QUERY_MEMORY_LIMIT", "2"),
            ("AGNES_QUERY_MEMORY_LIMIT", "lots GB"),
            ("AGNES_QUERY_MEMORY_LIMIT", "2GB; SET x = 1"),
            ("AGNES_QUERY_THREADS", "-1"),
            ("AGNES_QUERY_MAX_CONCURRENT", "0"),
        ] {
            let error = read(&[(name, value)]).unwrap_err();
            assert_eq!(error.code, "settings.invalid", "{name}={value}");
            assert!(error.message.contains(name), "{}", error.message);
            assert!(error.message.contains(value), "{}", error.message);
        }
    }
}
