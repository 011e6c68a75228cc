//! Query plane benchmarks: the real server on a loopback port, each figure beside its floor, the
//! same query on the same Parquet file run in-process by DuckDB with no HTTP and no Agnes code.
//!
//! - latency, one client: `SELECT 1`, the group-by over `flights`, and 10,000 rows of `flights`
//!   as JSON; p50 and p99, with 1 source and with 100 sources published;
//! - throughput, 16 clients: requests per second for `SELECT 1` and the group-by, against 16
//!   threads running the query in-process;
//! - memory: the process's peak resident memory above idle while 1,000,000 rows stream out as
//!   Arrow and as JSON (the client discards what it reads).
//!
//! Build with `cargo build --workspace --all-targets` (or `--release`) and run the
//! `query_plane` binary from the target folder's `deps`; `bench/README.md` has the figures. Set
//! `AGNES_NYCFLIGHTS_DIR` when the data is not beside the repository.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agnes_core::instance::{Instance, Settings};
use agnes_http::AppState;
use serde_json::{Value, json};

const GROUP_BY: &str = "SELECT carrier, count(*), avg(dep_delay) FROM flights GROUP BY carrier";
const TEN_THOUSAND: &str = "SELECT * FROM flights LIMIT 10000";
const MILLION: &str = "SELECT f.* FROM flights f, range(3) t(i) LIMIT 1000000";
const CLIENTS: usize = 16;
const THROUGHPUT_SECONDS: u64 = 5;

fn main() {
    let Some(data) = nycflights() else {
        println!("skipped: flights.csv not found (set AGNES_NYCFLIGHTS_DIR)");
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("| benchmark | agnes over HTTP | floor in-process | difference |");
    println!("|---|---|---|---|");
    for sources in [1, 100] {
        let bench = runtime.block_on(Bench::start(&data, sources));
        let floor = Floor::open(&bench.flights_parquet());
        let label = |what: &str| {
            format!(
                "{what}, {sources} source{}",
                if sources == 1 { "" } else { "s" }
            )
        };

        let runs = [
            ("SELECT 1", "SELECT 1", 2000),
            ("group-by", GROUP_BY, 300),
            ("10,000 rows as JSON", TEN_THOUSAND, 100),
        ];
        for (name, sql, count) in runs {
            let agnes = runtime.block_on(bench.latencies(sql, count));
            let bare = floor.latencies(sql, count);
            println!(
                "| {} p50 | {} | {} | {} |",
                label(name),
                ms(percentile(&agnes, 50)),
                ms(percentile(&bare, 50)),
                diff(percentile(&agnes, 50), percentile(&bare, 50))
            );
            println!(
                "| {} p99 | {} | {} | {} |",
                label(name),
                ms(percentile(&agnes, 99)),
                ms(percentile(&bare, 99)),
                diff(percentile(&agnes, 99), percentile(&bare, 99))
            );
        }
        if sources == 1 {
            for (name, sql) in [("SELECT 1", "SELECT 1"), ("group-by", GROUP_BY)] {
                let agnes = runtime.block_on(bench.throughput(sql));
                let bare = floor.throughput(sql);
                println!(
                    "| {name}, {CLIENTS} clients | {agnes:.0} req/s | {bare:.0} req/s | {:.0}% of the floor |",
                    100.0 * agnes / bare
                );
            }
            for format in ["arrow", "json"] {
                let (peak, bytes) = runtime.block_on(bench.stream_memory(format));
                println!(
                    "| 1,000,000 rows streamed as {format} ({:.0} MB sent) | {:.1} MB peak above idle | | |",
                    bytes as f64 / 1e6,
                    peak as f64 / 1e6
                );
            }
        }
        runtime.block_on(bench.stop());
    }
}

/// A running server with flights published, and a client with an admin token.
struct Bench {
    base: String,
    token: String,
    client: reqwest::Client,
    root: tempfile::TempDir,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Bench {
    async fn start(data: &Path, sources: usize) -> Bench {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("input");
        std::fs::create_dir_all(input.join("flights")).unwrap();
        std::fs::copy(data.join("flights.csv"), input.join("flights/flights.csv")).unwrap();
        for s in 1..sources {
            let folder = input.join(format!("extra_{s:03}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(
                folder.join(format!("extra_{s:03}.csv")),
                "id,value\n1,2\n3,4\n",
            )
            .unwrap();
        }

        let settings = Settings {
            jwt_secret: Some("benchmark-secret-that-is-long-enough!".into()),
            ..Settings::from_env()
        };
        let data_dir = root.path().join("data");
        let instance = Arc::new(Instance::open_with(&data_dir, settings).unwrap());
        let options = agnes_core::sync::PlaneOptions {
            connectors_dir: root.path().join("none"),
            // The 16 clients share one token, so one user may run all of their queries.
            engine: agnes_core::query::EngineSettings {
                max_per_user: CLIENTS,
                ..Default::default()
            },
            policy: agnes_core::remote::RemotePolicy::default(),
        };
        let state = AppState::open(instance, options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agnes_http::serve(listener, state, async {
            let _ = signal.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();

        let bootstrap: Value = client
            .post(format!("{base}/auth/bootstrap"))
            .json(&json!({"email": "bench@example.com", "name": "Bench", "password": "benchmark password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = bootstrap["access_token"].as_str().unwrap().to_string();
        let bench = Bench {
            base,
            token,
            client,
            root,
            shutdown,
            task,
        };
        let mut folders: Vec<PathBuf> = std::fs::read_dir(&input)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        folders.sort();
        for folder in folders {
            let name = folder.file_name().unwrap().to_string_lossy().into_owned();
            let answer = bench
                .post(
                    "/api/admin/configure",
                    json!({"data_source": "files", "name": name, "path": folder}),
                )
                .await;
            assert_eq!(answer["connection"], "verified", "{answer}");
        }
        let job = bench.post("/api/sync/trigger", json!(null)).await;
        let id = job["job_id"].as_str().unwrap().to_string();
        loop {
            let job: Value = bench.get(&format!("/api/sync/jobs/{id}")).await;
            if job["status"] != "running" {
                assert_eq!(job["status"], "succeeded", "{job}");
                assert_eq!(job["published_tables"], sources, "{job}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bench
    }

    fn flights_parquet(&self) -> PathBuf {
        self.root
            .path()
            .join("data/extracts/flights/data/flights.parquet")
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Runs one query over HTTP and reads the whole JSON response.
    async fn query(client: &reqwest::Client, base: &str, token: &str, sql: &str) {
        let response = client
            .post(format!("{base}/api/query"))
            .bearer_auth(token)
            .json(&json!({"sql": sql, "limit": 10000}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 10);
    }

    async fn latencies(&self, sql: &str, count: usize) -> Vec<Duration> {
        for _ in 0..count / 10 + 5 {
            Self::query(&self.client, &self.base, &self.token, sql).await;
        }
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            Self::query(&self.client, &self.base, &self.token, sql).await;
            times.push(started.elapsed());
        }
        times
    }

    async fn throughput(&self, sql: &str) -> f64 {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (client, base, token, sql) = (
                    self.client.clone(),
                    self.base.clone(),
                    self.token.clone(),
                    sql.to_string(),
                );
                let (done, stop) = (done.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        Self::query(&client, &base, &token, &sql).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(THROUGHPUT_SECONDS)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }

    /// Streams a million rows in `format` and returns the peak resident memory above idle and
    /// the bytes received.
    async fn stream_memory(&self, format: &str) -> (u64, u64) {
        let idle = resident_bytes();
        let peak = Arc::new(AtomicU64::new(idle));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(resident_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let mut response = self
            .client
            .post(format!("{}/api/query", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"sql": MILLION, "format": format, "limit": 1_000_000}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.unwrap() {
            received += chunk.len() as u64;
        }
        stop.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        (peak.load(Ordering::Relaxed).saturating_sub(idle), received)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// The floor: DuckDB in this process over the same Parquet file, no HTTP, no Agnes code.
struct Floor {
    conn: duckdb::Connection,
}

impl Floor {
    fn open(parquet: &Path) -> Floor {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "SET threads = 2; CREATE VIEW flights AS SELECT * FROM read_parquet('{}')",
            parquet.display()
        ))
        .unwrap();
        Floor { conn }
    }

    fn run(conn: &duckdb::Connection, sql: &str) {
        let mut statement = conn.prepare(sql).unwrap();
        let rows: usize = statement
            .query_arrow([])
            .unwrap()
            .map(|b| b.num_rows())
            .sum();
        assert!(rows > 0);
    }

    fn latencies(&self, sql: &str, count: usize) -> Vec<Duration> {
        for _ in 0..count / 10 + 5 {
            Self::run(&self.conn, sql);
        }
        (0..count)
            .map(|_| {
                let started = Instant::now();
                Self::run(&self.conn, sql);
                started.elapsed()
            })
            .collect()
    }

    fn throughput(&self, sql: &str) -> f64 {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let conn = self.conn.try_clone().unwrap();
                let (done, stop, sql) = (done.clone(), stop.clone(), sql.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        Self::run(&conn, &sql);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(THROUGHPUT_SECONDS));
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    }
}

/// Resident memory of this process, from `/proc/self/statm`.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn diff(agnes: Duration, floor: Duration) -> String {
    format!(
        "+{:.2} ms",
        (agnes.as_secs_f64() - floor.as_secs_f64()) * 1000.0
    )
}

fn nycflights() -> Option<PathBuf> {
    let dir = std::env::var_os("AGNES_NYCFLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nycflights13")
        });
    dir.join("flights.csv").is_file().then_some(dir)
}
