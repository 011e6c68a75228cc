//! The detailed health report on real instances: healthy, and degraded by a broken extract,
//! stale tables, a failed sync and a deprecated release.

use std::path::Path;
use std::sync::Arc;

use agnes_core::health::{CheckStatus, DetailedHealthReport, HealthStatus};
use agnes_core::instance::{Instance, Settings};
use agnes_core::query::EngineSettings;
use agnes_core::registry::{self, NewTable};
use agnes_core::remote::RemotePolicy;
use agnes_core::sources::SourceConfig;
use agnes_core::sync::{DataPlane, JobStatus, PlaneOptions};

use crate::support::Harness;

const CHECKS: [&str; 8] = [
    "data_dir",
    "disk_space",
    "last_sync",
    "query_engine",
    "release",
    "sources",
    "stale_tables",
    "state_db",
];

fn write_csv(dir: &Path, name: &str, rows: usize) {
    let mut text = String::from("id,label\n");
    for i in 0..rows {
        text.push_str(&format!("{i},row {i}\n"));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

fn status_of(report: &DetailedHealthReport, check: &str) -> CheckStatus {
    report
        .checks
        .get(check)
        .unwrap_or_else(|| panic!("no check {check}: {report:#?}"))
        .status
}

fn codes(report: &DetailedHealthReport) -> Vec<(String, Option<String>)> {
    report
        .warnings
        .iter()
        .map(|w| (w.code.clone(), w.subject.clone()))
        .collect()
}

#[test]
fn synced_instance_is_healthy_with_every_check() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "orders.csv", 7);
    harness
        .plane
        .sources()
        .configure("shop", SourceConfig::Files { path: csv }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    let report = harness.plane.detailed_health();

    assert_eq!(report.status, HealthStatus::Healthy, "{report:#?}");
    assert_eq!(
        report.checks.keys().map(String::as_str).collect::<Vec<_>>(),
        CHECKS
    );
    for (name, check) in &report.checks {
        assert_eq!(check.status, CheckStatus::Ok, "{name}: {}", check.message);
        assert!(!check.message.is_empty(), "{name} has no message");
    }
    assert!(report.warnings.is_empty(), "{:#?}", report.warnings);
    assert_eq!(report.sources.len(), 1);
    assert_eq!(report.sources[0].name, "shop");
    assert_eq!(report.sources[0].status, "published");
    assert_eq!(report.sources[0].tables, 1);
    assert_eq!(report.sources[0].errors, 0);
    assert!(report.stale_tables.is_empty());
    let last = report.last_sync.as_ref().expect("last sync");
    assert_eq!(last.status, JobStatus::Succeeded);
    assert_eq!(last.published_tables, Some(1));
    let disk = report.disk.expect("disk space");
    assert!(disk.total_bytes > 0);
    assert!(disk.free_bytes <= disk.total_bytes);
    assert_eq!(report.diagnostics.published_tables, 1);
    assert_eq!(report.commit, Settings::from_env().commit);

    let public = harness.plane.health();
    assert_eq!(public.status, HealthStatus::Healthy);
    assert_eq!(public.checks.len(), CHECKS.len());
    assert!(public.warnings.is_empty());
}

#[test]
fn broken_extract_is_named_with_its_findings() {
    let harness = Harness::new();
    let folder = harness.data_dir().join("extracts").join("broken");
    std::fs::create_dir_all(&folder).unwrap();
    let conn = duckdb::Connection::open(folder.join("extract.duckdb")).unwrap();
    conn.execute_batch("CREATE TABLE orders AS SELECT range AS id FROM range(3)")
        .unwrap();
    drop(conn);
    harness.plane.publish().unwrap();

    let report = harness.plane.detailed_health();

    assert_eq!(report.status, HealthStatus::Degraded, "{report:#?}");
    assert_eq!(status_of(&report, "sources"), CheckStatus::Warning);
    assert_eq!(status_of(&report, "query_engine"), CheckStatus::Ok);
    assert_eq!(
        codes(&report),
        [("sources.skipped".to_string(), Some("broken".to_string()))]
    );
    let message = &report.warnings[0].message;
    assert!(
        message.contains("source broken is not published"),
        "{message}"
    );
    assert!(message.contains("meta.missing"), "{message}");
    assert!(message.contains("agnes contract validate"), "{message}");
    let source = &report.sources[0];
    assert_eq!(source.name, "broken");
    assert_eq!(source.status, "skipped");
    assert_eq!(source.tables, 0);
    assert!(source.errors >= 1);
    assert!(
        source
            .findings
            .iter()
            .any(|f| f.code == "meta.missing" && f.severity == "error"),
        "{:#?}",
        source.findings
    );
    assert!(source.findings.iter().all(|f| !f.hint.is_empty()));

    let public = harness.plane.health();
    assert_eq!(public.status, HealthStatus::Degraded);
    let text = serde_json::to_string(&public).unwrap();
    assert!(
        !text.contains("broken"),
        "public health names a source: {text}"
    );
}

#[test]
fn stale_and_never_synced_tables_are_listed() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "orders.csv", 3);
    write_csv(&csv, "returns.csv", 2);
    harness
        .plane
        .sources()
        .configure("shop", SourceConfig::Files { path: csv }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    // The last sync of orders happened three days ago.
    harness
        .plane
        .instance()
        .state()
        .with_conn(|conn| {
            conn.execute(
                "UPDATE sync_state SET last_sync = last_sync - INTERVAL 3 DAY WHERE table_id = 'orders'",
                [],
            )
            .unwrap();
            Ok(())
        })
        .unwrap();
    // A table registered after the sync was never synced.
    registry::register(
        harness.plane.instance().state(),
        &NewTable {
            name: "refunds".into(),
            source: "shop".into(),
            source_table: Some("returns.csv".into()),
            query_mode: None,
            description: None,
            is_public: None,
        },
        None,
    )
    .unwrap();

    let report = harness.plane.detailed_health();

    assert_eq!(report.status, HealthStatus::Degraded, "{report:#?}");
    assert_eq!(status_of(&report, "stale_tables"), CheckStatus::Warning);
    assert_eq!(
        codes(&report),
        [
            ("stale_tables.stale".to_string(), Some("orders".to_string())),
            (
                "stale_tables.never_synced".to_string(),
                Some("refunds".to_string())
            ),
        ]
    );
    let stale = &report.warnings[0].message;
    assert!(stale.contains("72 hours ago"), "{stale}");
    assert!(stale.contains("agnes sync --table orders"), "{stale}");
    let names: Vec<&str> = report
        .stale_tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["orders", "refunds"]);
    assert!(report.stale_tables[0].last_sync.is_some());
    assert!(report.stale_tables[1].last_sync.is_none());
    assert!(
        report.checks["stale_tables"]
            .message
            .starts_with("2 of 3 registered tables"),
        "{}",
        report.checks["stale_tables"].message
    );
}

#[test]
fn failed_sync_is_reported_with_its_cause() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "orders.csv", 3);
    harness
        .plane
        .sources()
        .configure("shop", SourceConfig::Files { path: csv.clone() }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    std::fs::remove_dir_all(&csv).unwrap();
    let job = harness.sync(None);
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");

    let report = harness.plane.detailed_health();

    assert_eq!(status_of(&report, "last_sync"), CheckStatus::Warning);
    assert!(
        codes(&report).contains(&("last_sync.failed".to_string(), Some(job.id.clone()))),
        "{:#?}",
        report.warnings
    );
    let last = report.last_sync.as_ref().unwrap();
    assert_eq!(last.id, job.id);
    assert!(
        last.problems.iter().any(|p| p.starts_with("source shop:")),
        "{:#?}",
        last.problems
    );
    // The data synced before still serves.
    assert_eq!(status_of(&report, "sources"), CheckStatus::Ok);
    assert_eq!(status_of(&report, "query_engine"), CheckStatus::Ok);
}

#[test]
fn deleted_extract_file_is_reported_until_a_sync_writes_it_again() {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    write_csv(&csv, "orders.csv", 3);
    write_csv(&csv, "refunds.csv", 2);
    harness
        .plane
        .sources()
        .configure("shop", SourceConfig::Files { path: csv }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    assert_eq!(
        harness.plane.detailed_health().status,
        HealthStatus::Healthy
    );

    // The file as an operator sees it: through the source's link in extracts/.
    let file = harness.data_dir().join("extracts/shop/data/orders.parquet");
    assert!(file.is_file(), "{} is missing", file.display());
    std::fs::remove_file(&file).unwrap();

    let report = harness.plane.detailed_health();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:#?}");
    assert_eq!(status_of(&report, "sources"), CheckStatus::Warning);
    assert_eq!(
        codes(&report),
        [(
            "sources.file_missing".to_string(),
            Some("orders".to_string())
        )]
    );
    let message = &report.warnings[0].message;
    assert!(
        message.starts_with("table orders of source shop is published, but its data file "),
        "{message}"
    );
    assert!(message.contains("orders.parquet is gone"), "{message}");
    assert!(message.contains("`agnes sync --table orders`"), "{message}");
    assert_eq!(report.checks["sources"].message, *message);
    // Only admins see the detailed report; the public one shows the status alone.
    assert_eq!(
        report.public().checks["sources"].status,
        CheckStatus::Warning
    );

    // A sync of the table writes the file again and the warning goes.
    assert_eq!(
        harness.sync(Some(vec!["orders"])).status,
        JobStatus::Succeeded
    );
    let report = harness.plane.detailed_health();
    assert_eq!(report.status, HealthStatus::Healthy, "{report:#?}");
    assert_eq!(harness.scalar("SELECT count(*) FROM orders"), 3);
}

fn open_with(root: &Path, settings: Settings, engine: EngineSettings) -> Arc<DataPlane> {
    let instance = Instance::open_with(&root.join("data"), settings).unwrap();
    let options = PlaneOptions {
        connectors_dir: root.join("connectors"),
        engine,
        policy: RemotePolicy::default(),
    };
    DataPlane::open(Arc::new(instance), options).unwrap()
}

fn settings() -> Settings {
    Settings {
        jwt_secret: Some("test-secret-that-is-long-enough-for-hs256".into()),
        ..Settings::default()
    }
}

#[test]
fn deprecated_channel_warns_in_public_and_detailed_reports() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open_with(
        dir.path(),
        Settings {
            channel: "deprecated".into(),
            version: "2026.04.3".into(),
            ..settings()
        },
        EngineSettings::default(),
    );

    let report = plane.detailed_health();
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.channel, "deprecated");
    assert_eq!(status_of(&report, "release"), CheckStatus::Warning);
    assert_eq!(codes(&report), [("release.deprecated".to_string(), None)]);
    assert!(
        report.warnings[0]
            .message
            .starts_with("Running deprecated version 2026.04.3. Update to the latest release of the stable channel"),
        "{}",
        report.warnings[0].message
    );

    let public = plane.health();
    assert_eq!(public.status, HealthStatus::Degraded);
    assert_eq!(public.warnings, report.warnings);
}

#[test]
fn deprecated_file_names_the_version_to_move_to() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deprecated.json");
    std::fs::write(
        &file,
        r#"{"deprecated": [{"version": "2026.04.3", "upgrade_to": "2026.04.4", "reason": "the query API changed"}]}"#,
    )
    .unwrap();
    let plane = open_with(
        dir.path(),
        Settings {
            channel: "stable".into(),
            version: "2026.04.3".into(),
            deprecated_file: Some(file.clone()),
            ..settings()
        },
        EngineSettings::default(),
    );

    let report = plane.detailed_health();
    assert_eq!(codes(&report), [("release.deprecated".to_string(), None)]);
    let message = &report.warnings[0].message;
    assert!(message.contains("Update to version 2026.04.4"), "{message}");
    assert!(message.contains("the query API changed"), "{message}");
    drop(plane);

    // A version not in the list is fine; an unreadable list is a warning of its own.
    let other = tempfile::tempdir().unwrap();
    let plane = open_with(
        other.path(),
        Settings {
            version: "2026.04.4".into(),
            deprecated_file: Some(file.clone()),
            ..settings()
        },
        EngineSettings::default(),
    );
    assert_eq!(plane.detailed_health().status, HealthStatus::Healthy);
    drop(plane);
    std::fs::write(&file, "not json").unwrap();
    let third = tempfile::tempdir().unwrap();
    let plane = open_with(
        third.path(),
        Settings {
            deprecated_file: Some(file),
            ..settings()
        },
        EngineSettings::default(),
    );
    assert_eq!(
        codes(&plane.detailed_health()),
        [("release.deprecated_file_unreadable".to_string(), None)]
    );
}

#[test]
fn query_engine_that_cannot_run_queries_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let plane = open_with(
        dir.path(),
        settings(),
        EngineSettings {
            max_concurrent: 0,
            ..EngineSettings::default()
        },
    );
    let report = plane.detailed_health();
    assert_eq!(status_of(&report, "query_engine"), CheckStatus::Warning);
    assert_eq!(codes(&report), [("query_engine.failed".to_string(), None)]);
    assert!(report.warnings[0].message.contains("query.busy"));
}
