//! The query engine: statement checks, the sandbox and the time limit.

use std::time::{Duration, Instant};

use agnes_core::sources::SourceConfig;
use agnes_core::sync::JobStatus;

use crate::support::{Harness, admin};

/// A harness with one small table `people` published.
fn published() -> Harness {
    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    std::fs::write(
        csv.join("people.csv"),
        "id,name,note\n1,Ann,x\n2,Bob,DROP TABLE people;\n3,Cy,\n",
    )
    .unwrap();
    harness
        .plane
        .sources()
        .configure("files", SourceConfig::Files { path: csv }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    harness
}

fn error_code(harness: &Harness, sql: &str) -> String {
    match harness.plane.query(&admin(), sql, 100) {
        Ok(result) => panic!("{sql} was accepted: {result:?}"),
        Err(error) => error.code.to_string(),
    }
}

#[test]
fn analyst_sql_accepted() {
    let harness = published();
    let queries = [
        "SELECT count(*) FROM people",
        "select count(*) from people -- a comment with DROP TABLE people;",
        "/* block; comment */ SELECT count(*) FROM people",
        "WITH named AS (SELECT * FROM people WHERE name <> 'x; DROP TABLE people') SELECT count(*) FROM named",
        "SELECT count(*) FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM people) WHERE n > 0",
        "SELECT count(*)\nFROM \"people\"\nWHERE note LIKE '%;%' OR true",
        "SELECT count(*) FROM people;",
    ];
    for sql in queries {
        let result = harness
            .plane
            .query(&admin(), sql, 10)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(result.rows[0][0], serde_json::json!(3), "{sql}");
    }
}

#[test]
fn non_select_rejected_before_running() {
    let harness = published();
    assert_eq!(
        error_code(&harness, "CREATE TABLE made AS SELECT 1; SELECT 42"),
        "query.not_select"
    );
    assert_eq!(
        error_code(&harness, "SELECT 1; SELECT 2"),
        "query.not_select"
    );
    assert_eq!(error_code(&harness, "DROP VIEW people"), "query.not_select");
    assert_eq!(
        error_code(&harness, "ATTACH '/tmp/x.duckdb' AS x"),
        "query.not_select"
    );
    assert_eq!(
        error_code(&harness, "SET enable_external_access = true"),
        "query.not_select"
    );
    assert_eq!(
        error_code(&harness, "COPY (SELECT 1) TO '/tmp/out.csv'"),
        "query.not_select"
    );
    assert_eq!(error_code(&harness, "INSTALL httpfs"), "query.not_select");
    assert_eq!(error_code(&harness, "SELEC 1"), "query.syntax");
    assert_eq!(
        error_code(&harness, "SELECT * FROM made"),
        "query.failed",
        "the CREATE before the SELECT ran"
    );
}

#[test]
fn files_outside_extracts_unreadable() {
    let harness = published();
    let state_db = harness.data_dir().join("state").join("system.duckdb");
    let secret = harness.data_dir().join("state").join(".jwt_secret");
    for path in [state_db, secret, std::path::PathBuf::from("/etc/passwd")] {
        let sql = format!("SELECT * FROM read_text('{}')", path.display());
        assert_eq!(error_code(&harness, &sql), "query.failed", "{sql}");
        let sql = format!("SELECT * FROM read_csv('{}')", path.display());
        assert_eq!(error_code(&harness, &sql), "query.failed", "{sql}");
    }
}

#[test]
fn endless_query_stopped_by_timeout() {
    let harness = published();
    let engine_settings = agnes_core::query::EngineSettings {
        timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let engine = agnes_core::query::QueryEngine::new(
        engine_settings,
        agnes_core::remote::RemotePolicy::default(),
        std::sync::Arc::new(agnes_core::remote::EnvSecrets),
    );
    engine
        .install(harness.plane.publication().unwrap())
        .unwrap();

    let started = Instant::now();
    let error = engine
        .query(
            "SELECT count(*) FROM range(1000000000000) a, range(1000) b",
            10,
        )
        .unwrap_err();
    assert_eq!(error.code, "query.timeout", "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    let result = engine.query("SELECT count(*) FROM people", 10).unwrap();
    assert_eq!(result.rows[0][0], serde_json::json!(3));
}

#[test]
fn analyst_reads_only_granted_tables() {
    use agnes_core::auth::{Principal, Role, TokenKind};
    use agnes_core::registry::{self, TableUpdate};

    let harness = Harness::new();
    let csv = harness.dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    for (file, body) in [
        ("open.csv", "id\n1\n"),
        ("granted.csv", "id\n2\n"),
        ("salaries.csv", "id,salary\n3,99000\n"),
    ] {
        std::fs::write(csv.join(file), body).unwrap();
    }
    harness
        .plane
        .sources()
        .configure("files", SourceConfig::Files { path: csv }, None)
        .unwrap();
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);

    let state = harness.plane.instance().state();
    for private in ["granted", "salaries"] {
        let update = TableUpdate {
            is_public: Some(false),
            ..TableUpdate::default()
        };
        registry::update(state, private, &update).unwrap();
    }
    state
        .with_conn(|conn| {
            conn.execute("INSERT INTO table_grants (table_id, user_id, granted_at) VALUES ('granted', 'analyst-1', now())", [])
                .map_err(|e| agnes_core::Error::state_db("granting", &e))
        })
        .unwrap();
    let analyst = Principal {
        user_id: "analyst-1".into(),
        email: "a@example.com".into(),
        role: Role::Analyst,
        token_kind: TokenKind::Session,
    };

    let catalog: Vec<String> = harness
        .plane
        .catalog(&analyst)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(catalog, ["granted", "open"]);

    let allowed = [
        "SELECT count(*) FROM open",
        "SELECT count(*) FROM granted JOIN open ON true",
        "WITH salaries AS (SELECT 1 AS id) SELECT count(*) FROM salaries",
        "SELECT count(*) FROM \"OPEN\" WHERE 'salaries' <> ''",
    ];
    for sql in allowed {
        let result = harness
            .plane
            .query(&analyst, sql, 10)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(result.rows[0][0], serde_json::json!(1), "{sql}");
    }

    let denied = [
        "SELECT * FROM salaries",
        "SELECT * FROM \"Salaries\"",
        "SELECT * FROM open WHERE id IN (SELECT id FROM salaries)",
        "SELECT (SELECT max(salary) FROM salaries)",
        "SELECT * FROM open UNION ALL SELECT id FROM salaries",
        "WITH x AS (SELECT * FROM salaries) SELECT * FROM x",
        "SELECT * FROM files.salaries",
        "SELECT * FROM files.main.salaries",
        "SELECT * FROM main.open",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_columns()",
        "SELECT * FROM query('SELECT * FROM salaries')",
        "SELECT * FROM query_table('salaries')",
        "SELECT current_setting('allowed_directories')",
    ];
    for sql in denied {
        let error = harness.plane.query(&analyst, sql, 10).expect_err(sql);
        assert_eq!(
            error.kind,
            agnes_core::ErrorKind::Forbidden,
            "{sql}: {error:?}"
        );
        assert!(!error.message.contains("99000"), "{sql}: {}", error.message);
    }
    let error = harness
        .plane
        .query(&analyst, "SELECT * FROM salaries", 10)
        .unwrap_err();
    assert!(
        error.message.contains("salaries"),
        "the denial names the table: {}",
        error.message
    );
    assert_eq!(
        harness.scalar("SELECT max(salary) FROM salaries"),
        99000,
        "admins read everything"
    );
}

#[test]
fn memory_limit_has_its_own_code() {
    let harness = published();
    let engine = agnes_core::query::QueryEngine::new(
        agnes_core::query::EngineSettings {
            memory_limit: "32MB".to_string(),
            threads: 1,
            ..Default::default()
        },
        agnes_core::remote::RemotePolicy::default(),
        std::sync::Arc::new(agnes_core::remote::EnvSecrets),
    );
    engine
        .install(harness.plane.publication().unwrap())
        .unwrap();

    // A sort of about 400 MB cannot spill, because query snapshots have no temp directory.
    let error = engine
        .query(
            "SELECT i, repeat('x', 100) || i AS pad FROM range(4000000) t(i) ORDER BY pad DESC",
            10,
        )
        .unwrap_err();
    assert_eq!(error.code, "query.memory_limit", "{error:?}");
    assert!(error.hint.is_some());

    let result = engine.query("SELECT count(*) FROM people", 10).unwrap();
    assert_eq!(result.rows[0][0], serde_json::json!(3));
}

#[test]
fn stream_reports_truncation_and_limits_rows() {
    let harness = published();
    let mut stream = harness
        .plane
        .start_query(&admin(), "SELECT * FROM range(10000) t(i)", 2500)
        .unwrap();
    assert_eq!(stream.columns(), vec!["i".to_string()]);
    let mut rows = 0;
    while let Some(batch) = stream.next_batch().unwrap() {
        rows += batch.num_rows();
    }
    assert_eq!(rows, 2500);
    assert_eq!(stream.row_count(), 2500);
    assert!(stream.truncated());

    for (limit, truncated) in [(3, false), (2, true), (0, true)] {
        let result = harness
            .plane
            .query(&admin(), "SELECT id FROM people ORDER BY id", limit)
            .unwrap();
        assert_eq!(result.row_count, limit.min(3), "limit {limit}");
        assert_eq!(result.truncated, truncated, "limit {limit}");
    }
}

fn engine_with(
    harness: &Harness,
    settings: agnes_core::query::EngineSettings,
) -> agnes_core::query::QueryEngine {
    let engine = agnes_core::query::QueryEngine::new(
        settings,
        agnes_core::remote::RemotePolicy::default(),
        std::sync::Arc::new(agnes_core::remote::EnvSecrets),
    );
    engine
        .install(harness.plane.publication().unwrap())
        .unwrap();
    engine
}

fn context(user: &str) -> agnes_core::query::QueryContext {
    agnes_core::query::QueryContext {
        user_id: Some(user.to_string()),
        cancel: agnes_core::query::CancelToken::default(),
    }
}

#[test]
fn one_user_cannot_take_every_slot() {
    use agnes_core::query::{Access, EngineSettings};
    let harness = published();
    let engine = engine_with(
        &harness,
        EngineSettings {
            max_per_user: 2,
            ..Default::default()
        },
    );
    let sql = "SELECT * FROM range(100000) t(i)";
    let first = engine
        .start_with(sql, 10, &Access::All, &context("ann"))
        .unwrap();
    let second = engine
        .start_with(sql, 10, &Access::All, &context("ann"))
        .unwrap();
    let error = engine
        .start_with(sql, 10, &Access::All, &context("ann"))
        .err()
        .expect("a third query of one user");
    assert_eq!(error.code, "query.busy");
    assert!(
        error.message.contains("you already run 2"),
        "{}",
        error.message
    );
    let other = engine.start_with(sql, 10, &Access::All, &context("bob"));
    assert!(
        other.is_ok(),
        "another user is not limited by ann's queries"
    );

    drop(first);
    let again = engine.start_with(sql, 10, &Access::All, &context("ann"));
    assert!(again.is_ok(), "a finished query frees its slot");
    drop(second);
}

#[test]
fn cancelled_query_stops_quickly() {
    use agnes_core::query::{Access, EngineSettings};
    let harness = published();
    let engine = std::sync::Arc::new(engine_with(&harness, EngineSettings::default()));
    let context = context("ann");
    let cancel = context.cancel.clone();
    let running = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            engine
                .start_with(
                    "SELECT count(*) FROM range(1000000000000) a, range(1000) b",
                    10,
                    &Access::All,
                    &context,
                )
                .err()
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let error = running.join().unwrap().expect("the query was stopped");
    assert_eq!(error.code, "query.cancelled", "{error:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        cancelled_at.elapsed()
    );
    let result = engine.query("SELECT count(*) FROM people", 10).unwrap();
    assert_eq!(result.rows[0][0], serde_json::json!(3));
}

#[test]
fn missing_extract_file_asks_for_a_sync() {
    let harness = published();
    let publication = harness.plane.publication().unwrap();
    let (_, folder) = publication
        .attached_sources()
        .find(|(source, _)| *source == "files")
        .expect("the files source is attached");
    std::fs::remove_file(folder.join("data/people.parquet")).unwrap();

    let error = harness
        .plane
        .query(&admin(), "SELECT count(*) FROM people", 10)
        .unwrap_err();
    assert_eq!(error.code, "query.extract_missing", "{error:?}");
    assert!(error.hint.as_deref().unwrap().contains("sync"));
    let root = harness.dir.path().to_string_lossy();
    assert!(!error.message.contains(root.as_ref()), "{}", error.message);
}

#[test]
fn timeout_message_names_the_limit() {
    let harness = published();
    let engine = engine_with(
        &harness,
        agnes_core::query::EngineSettings {
            timeout: Duration::from_millis(300),
            ..Default::default()
        },
    );
    let error = engine
        .query(
            "SELECT count(*) FROM range(1000000000000) a, range(1000) b",
            10,
        )
        .unwrap_err();
    assert_eq!(error.code, "query.timeout");
    assert!(error.message.contains("0.3 s"), "{}", error.message);
}
