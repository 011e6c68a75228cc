//! Data plane benchmarks, each beside its floor: the same work done by a bare DuckDB program.
//!
//! - rebuild: publishing 1, 10 and 100 sources of 20 tables each, cold (first rebuild, every
//!   extract validated) and warm (extracts unchanged), against a program that only attaches the
//!   extracts and creates the views;
//! - CSV sync: syncing `flights.csv` with the files connector, against a bare `COPY` of the same
//!   file to Parquet.
//!
//! Run with `cargo bench -p agnes-core --bench data_plane`; `bench/README.md` explains the
//! figures. Set `AGNES_NYCFLIGHTS_DIR` when the data is not beside the repository.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agnes_core::extract::ExtractStore;
use agnes_core::instance::{Instance, Settings};
use agnes_core::orchestrator::Orchestrator;
use agnes_core::query::EngineSettings;
use agnes_core::remote::{EnvSecrets, RemotePolicy};
use agnes_core::sources::SourceConfig;
use agnes_core::sync::{DataPlane, JobStatus, PlaneOptions};
use contract_spec::QueryMode;
use contract_spec::identifier::{quote_identifier, quote_literal};

const TABLES_PER_SOURCE: usize = 20;
const RUNS: usize = 5;

fn main() {
    println!("| benchmark | agnes (median of {RUNS}) | floor (median of {RUNS}) | ratio |");
    println!("|---|---|---|---|");
    for sources in [1, 10, 100] {
        bench_rebuild(sources);
    }
    bench_csv_sync();
}

/// Writes `count` sources of 20 small local tables each, the way the files connector does.
fn write_sources(extracts: &Path, count: usize) {
    let store = ExtractStore::new(extracts.to_path_buf());
    for s in 0..count {
        let source = format!("source_{s:03}");
        let mut writer = store.writer(&source).expect("writer");
        for t in 0..TABLES_PER_SOURCE {
            let name = format!("s{s:03}_table_{t:02}");
            writer
                .add_parquet_table(
                    &name,
                    "SELECT range AS id, range * 2 AS value FROM range(100)",
                    "bench",
                    QueryMode::Local,
                )
                .expect("table");
        }
        writer
            .finish()
            .expect("finish")
            .publish(&store)
            .expect("publish");
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn row(name: &str, agnes: Duration, floor: Duration) {
    let ratio = agnes.as_secs_f64() / floor.as_secs_f64();
    println!(
        "| {name} | {:.1} ms | {:.1} ms | {ratio:.2}x |",
        agnes.as_secs_f64() * 1000.0,
        floor.as_secs_f64() * 1000.0
    );
}

fn bench_rebuild(sources: usize) {
    let root = tempfile::tempdir().expect("temp dir");
    let extracts = root.path().join("extracts");
    let analytics = root.path().join("analytics");
    std::fs::create_dir_all(&extracts).unwrap();
    std::fs::create_dir_all(&analytics).unwrap();
    write_sources(&extracts, sources);

    let orchestrator = Orchestrator::new(
        ExtractStore::new(extracts.clone()),
        analytics.clone(),
        RemotePolicy::default(),
        Arc::new(EnvSecrets),
    );
    let started = Instant::now();
    let publication = orchestrator.rebuild().expect("rebuild");
    let cold = started.elapsed();
    assert_eq!(publication.tables.len(), sources * TABLES_PER_SOURCE);

    let warm = median(
        (0..RUNS)
            .map(|_| timed(|| drop(orchestrator.rebuild().expect("rebuild"))))
            .collect(),
    );
    let floor = median(
        (0..RUNS)
            .map(|_| timed(|| floor_rebuild(&extracts, &analytics.join("floor.duckdb"))))
            .collect(),
    );
    row(
        &format!("rebuild {sources} x {TABLES_PER_SOURCE}, cold (validates every extract)"),
        cold,
        floor,
    );
    row(
        &format!("rebuild {sources} x {TABLES_PER_SOURCE}, warm"),
        warm,
        floor,
    );
}

fn timed(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

/// The floor of a rebuild: a new file, every extract attached, one view per table, a checkpoint.
fn floor_rebuild(extracts: &Path, target: &Path) {
    let _ = std::fs::remove_file(target);
    let conn = duckdb::Connection::open(target).expect("open");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(extracts)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    sources.sort();
    for dir in sources {
        let source = dir.file_name().unwrap().to_string_lossy().into_owned();
        conn.execute_batch(&format!(
            "ATTACH {} AS {} (READ_ONLY)",
            quote_literal(&dir.join("extract.duckdb").to_string_lossy()),
            quote_identifier(&source)
        ))
        .unwrap();
        let names: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT table_name FROM {}.main._meta",
                    quote_identifier(&source)
                ))
                .unwrap();
            stmt.query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for name in names {
            conn.execute_batch(&format!(
                "CREATE VIEW {n} AS SELECT * FROM {s}.main.{n}",
                n = quote_identifier(&name),
                s = quote_identifier(&source)
            ))
            .unwrap();
        }
    }
    conn.execute_batch("CHECKPOINT").unwrap();
}

fn nycflights() -> Option<PathBuf> {
    let dir = std::env::var_os("AGNES_NYCFLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nycflights13")
        });
    dir.join("flights.csv").is_file().then_some(dir)
}

fn bench_csv_sync() {
    let Some(data) = nycflights() else {
        println!("| csv sync | skipped: flights.csv not found (set AGNES_NYCFLIGHTS_DIR) | | |");
        return;
    };
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(data.join("flights.csv"), input.path().join("flights.csv")).unwrap();

    let root = tempfile::tempdir().unwrap();
    let settings = Settings {
        jwt_secret: Some("benchmark-secret-that-is-long-enough!".into()),
        ..Settings::from_env()
    };
    let instance = Arc::new(Instance::open_with(&root.path().join("data"), settings).unwrap());
    let options = PlaneOptions {
        connectors_dir: root.path().join("none"),
        engine: EngineSettings::default(),
        policy: RemotePolicy::default(),
    };
    let plane = DataPlane::open(instance, options).unwrap();
    plane
        .sources()
        .configure(
            "nyc",
            SourceConfig::Files {
                path: input.path().to_path_buf(),
            },
            None,
        )
        .unwrap();

    let agnes = median(
        (0..RUNS)
            .map(|_| {
                timed(|| {
                    let job = plane.trigger(None, None).unwrap();
                    loop {
                        let job = plane.job(&job.id).unwrap();
                        if job.status != JobStatus::Running {
                            assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect(),
    );
    let floor = median(
        (0..RUNS)
            .map(|_| {
                let out = root.path().join("floor.parquet");
                timed(|| {
                    let conn = duckdb::Connection::open_in_memory().unwrap();
                    conn.execute_batch(&format!(
                        "COPY (SELECT * FROM read_csv({}, nullstr = ['NA', 'NULL', ''])) TO {} (FORMAT PARQUET, COMPRESSION ZSTD)",
                        quote_literal(&input.path().join("flights.csv").to_string_lossy()),
                        quote_literal(&out.to_string_lossy())
                    ))
                    .unwrap();
                })
            })
            .collect(),
    );
    row(
        "csv sync of flights.csv (336,776 rows), whole job",
        agnes,
        floor,
    );
}
