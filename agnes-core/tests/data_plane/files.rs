//! The files connector, sync jobs and queries during rebuilds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agnes_core::auth::Principal;
use agnes_core::sources::SourceConfig;
use agnes_core::sync::JobStatus;

use crate::support::{Harness, admin, open_plane, required};

/// The nycflights13 CSV folder shipped beside the repository.
fn nycflights_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AGNES_NYCFLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nycflights13")
        });
    if dir.join("flights.csv").is_file() {
        return Some(dir);
    }
    assert!(
        !required(),
        "nycflights13 data not found at {}; set AGNES_NYCFLIGHTS_DIR",
        dir.display()
    );
    eprintln!("skipped: nycflights13 data not found at {}", dir.display());
    None
}

fn configure_files(harness: &Harness, name: &str, path: PathBuf) {
    harness
        .plane
        .sources()
        .configure(name, SourceConfig::Files { path }, None)
        .unwrap();
}

#[test]
fn nycflights_sync_publishes_exact_rows() {
    let Some(dir) = nycflights_dir() else { return };
    let harness = Harness::new();
    configure_files(&harness, "nyc", dir);

    let job = harness.sync(None);
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(job.published_tables, Some(5));
    assert_eq!(job.progress.tables_total, 5);
    assert_eq!(job.progress.tables_done, 5);
    assert_eq!(
        job.progress.tables_finished,
        ["airlines", "airports", "flights", "planes", "weather"]
    );
    assert_eq!(job.progress.current_table, None);

    let catalog = harness.plane.catalog(&admin()).unwrap();
    let rows: Vec<(&str, Option<i64>)> =
        catalog.iter().map(|t| (t.name.as_str(), t.rows)).collect();
    assert_eq!(
        rows,
        [
            ("airlines", Some(16)),
            ("airports", Some(1458)),
            ("flights", Some(336_776)),
            ("planes", Some(3322)),
            ("weather", Some(26_115))
        ]
    );
    let flights = catalog.iter().find(|t| t.name == "flights").unwrap();
    let arr_delay = flights
        .columns
        .iter()
        .find(|c| c.name == "arr_delay")
        .unwrap();
    assert_eq!(arr_delay.data_type, "BIGINT");

    assert_eq!(harness.scalar("SELECT count(*) FROM flights"), 336_776);
    assert_eq!(
        harness.scalar("SELECT count(*) FROM flights WHERE arr_delay IS NULL"),
        9430
    );
    assert_eq!(
        harness.scalar("SELECT sum(arr_delay) FROM flights"),
        2_257_174
    );
}

fn write_csv(dir: &std::path::Path, name: &str, rows: usize, tag: &str) {
    let mut text = String::from("id,tag\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{tag}\n"));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn subset_sync_keeps_other_tables() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "alpha.csv", 3, "old");
    write_csv(&csv, "beta.csv", 4, "old");
    configure_files(&harness, "files", csv.clone());
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    write_csv(&csv, "alpha.csv", 5, "new");
    write_csv(&csv, "beta.csv", 6, "new");
    let job = harness.sync(Some(vec!["alpha"]));
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(job.progress.tables_total, 1, "only alpha is written");
    assert_eq!(job.progress.tables_done, 1);
    assert_eq!(job.progress.tables_finished, ["alpha"]);

    assert_eq!(
        harness.scalar("SELECT count(*) FROM alpha WHERE tag = 'new'"),
        5
    );
    assert_eq!(
        harness.scalar("SELECT count(*) FROM beta WHERE tag = 'old'"),
        4
    );
    let beta = &job.sources[0]
        .tables
        .iter()
        .find(|t| t.name == "beta")
        .unwrap()
        .status;
    assert_eq!(beta, "carried_over");
}

#[test]
fn broken_file_keeps_previous_data() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "alpha.csv", 3, "old");
    write_csv(&csv, "beta.csv", 4, "old");
    configure_files(&harness, "files", csv.clone());
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    std::fs::remove_file(csv.join("beta.csv")).unwrap();
    write_csv(&csv, "alpha.csv", 7, "new");
    let job = harness.sync(None);
    assert_eq!(job.status, JobStatus::Partial, "{job:#?}");
    let beta = job.sources[0]
        .tables
        .iter()
        .find(|t| t.name == "beta")
        .unwrap();
    assert_eq!(beta.status, "failed");
    assert!(
        beta.error
            .as_deref()
            .unwrap()
            .contains("previous data stays"),
        "{beta:?}"
    );

    assert_eq!(harness.scalar("SELECT count(*) FROM alpha"), 7);
    assert_eq!(
        harness.scalar("SELECT count(*) FROM beta WHERE tag = 'old'"),
        4
    );
}

#[test]
fn second_trigger_conflicts() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "alpha.csv", 200_000, "x");
    configure_files(&harness, "files", csv);
    let first = harness.plane.trigger(None, None).unwrap();
    let second = harness.plane.trigger(None, None);
    if let Err(error) = second {
        assert_eq!(error.code, "sync.already_running");
        assert!(error.message.contains(&first.id), "{}", error.message);
    }
    crate::support::wait_for(&harness.plane, &first.id);
    let unknown = harness
        .plane
        .trigger(None, Some(vec!["nope".into()]))
        .unwrap_err();
    assert_eq!(unknown.code, "sync.unknown_tables");
}

#[test]
fn queries_survive_rebuilds() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "alpha.csv", 1000, "x");
    write_csv(&csv, "beta.csv", 500, "y");
    configure_files(&harness, "files", csv);
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    let plane = Arc::clone(&harness.plane);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Fifty users, because one user may run only a few queries at once.
    let workers: Vec<_> = (0..50)
        .map(|worker| {
            let plane = Arc::clone(&plane);
            let stop = Arc::clone(&stop);
            let done = Arc::clone(&done);
            let user = Principal {
                user_id: format!("admin-{worker}"),
                ..admin()
            };
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let result = plane.query(
                        &user,
                        "SELECT count(*) FROM alpha JOIN beta ON alpha.id = beta.id",
                        10,
                    );
                    let rows = result
                        .unwrap_or_else(|e| panic!("query failed during a rebuild: {e:?}"))
                        .rows;
                    assert_eq!(rows[0][0], serde_json::json!(500));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for _ in 0..10 {
        harness.plane.publish().unwrap();
    }
    for _ in 0..2 {
        assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("no query failed");
    }
    assert!(done.load(Ordering::Relaxed) >= 50);
}

#[test]
fn restart_after_crash_serves_last_data() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "alpha.csv", 3, "old");
    configure_files(&harness, "files", csv);
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    // A sync killed mid-write leaves a hidden version folder with a half-written file.
    let extracts = harness.data_dir().join("extracts");
    let leftover = extracts.join(".files.v99990101T000000000-1-1");
    std::fs::create_dir_all(leftover.join("data")).unwrap();
    std::fs::write(leftover.join("extract.duckdb"), b"half written").unwrap();
    let Harness { dir, plane } = harness;
    drop(plane);

    let plane = open_plane(dir.path(), None);
    let rows = plane
        .query(&admin(), "SELECT count(*) FROM alpha WHERE tag = 'old'", 10)
        .unwrap()
        .rows;
    assert_eq!(rows[0][0], serde_json::json!(3));
    assert!(
        !leftover.exists(),
        "unfinished version folder was not removed"
    );
}
