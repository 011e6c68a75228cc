use std::fs;
use std::time::SystemTime;

use super::*;

fn table_exists(db: &StateDb, name: &str) -> bool {
    db.with_conn(|conn| {
        conn.query_row(
            "SELECT count(*) > 0 FROM information_schema.tables WHERE table_name = ?",
            [name],
            |row| row.get(0),
        )
        .map_err(|e| Error::state_db("test", &e))
    })
    .unwrap()
}

fn file_fingerprint(path: &Path) -> (Vec<u8>, SystemTime) {
    let bytes = fs::read(path).unwrap();
    let modified = fs::metadata(path).unwrap().modified().unwrap();
    (bytes, modified)
}

#[test]
fn fresh_database_gets_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.duckdb");

    let db = StateDb::open(&path).unwrap();

    assert_eq!(db.schema_version().unwrap(), CURRENT_SCHEMA_VERSION);
    for table in [
        "users",
        "personal_access_tokens",
        "audit_log",
        "table_registry",
        "table_grants",
        "sync_state",
        "sync_history",
        "sync_jobs",
    ] {
        assert!(table_exists(&db, table), "table {table} is missing");
    }
    assert!(!path.with_extension("duckdb.pre-migrate-v0").exists());
}

#[test]
fn versions_are_consecutive() {
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, index as i64 + 1);
    }
    assert_eq!(CURRENT_SCHEMA_VERSION, MIGRATIONS.len() as i64);
}

#[test]
fn v1_database_migrates_with_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.duckdb");
    {
        let db = StateDb::open_at_version(&path, 1).unwrap();
        assert_eq!(db.schema_version().unwrap(), 1);
        assert!(!table_exists(&db, "sync_jobs"));
        db.with_conn(|conn| {
            conn.execute_batch(
                "INSERT INTO users (id, email, name, role, password_hash, active, created_at, updated_at) \
                 VALUES ('u1', 'ada@example.com', 'Ada', 'admin', 'hash', true, TIMESTAMP '2026-01-02 03:04:05', TIMESTAMP '2026-01-02 03:04:05'); \
                 INSERT INTO audit_log (id, occurred_at, user_id, action, params, result) \
                 VALUES ('a1', TIMESTAMP '2026-01-02 03:04:05', 'u1', 'auth.login', '{}', 'success');",
            )
            .map_err(|e| Error::state_db("test", &e))
        })
        .unwrap();
        db.checkpoint().unwrap();
    }

    let db = StateDb::open(&path).unwrap();

    assert_eq!(db.schema_version().unwrap(), CURRENT_SCHEMA_VERSION);
    assert!(table_exists(&db, "sync_jobs"));
    let (email, name): (String, String) = db
        .with_conn(|conn| {
            conn.query_row("SELECT email, name FROM users WHERE id = 'u1'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| Error::state_db("test", &e))
        })
        .unwrap();
    assert_eq!(email, "ada@example.com");
    assert_eq!(name, "Ada");
    let (action, client_ip): (String, Option<String>) = db
        .with_conn(|conn| {
            conn.query_row(
                "SELECT action, client_ip FROM audit_log WHERE id = 'a1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| Error::state_db("test", &e))
        })
        .unwrap();
    assert_eq!(action, "auth.login");
    assert_eq!(client_ip, None);
    drop(db);

    let copy = dir.path().join("system.duckdb.pre-migrate-v1");
    assert!(copy.exists(), "no copy taken before migrating");
    let copy_db = StateDb::open_at_version(&copy, 1).unwrap();
    assert_eq!(copy_db.schema_version().unwrap(), 1);
    assert!(!table_exists(&copy_db, "sync_jobs"));
}

#[test]
fn newer_schema_is_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.duckdb");
    {
        let db = StateDb::open(&path).unwrap();
        db.with_conn(|conn| {
            conn.execute_batch(
                "INSERT INTO schema_version VALUES (99, 'from the future', TIMESTAMP '2030-01-01 00:00:00')",
            )
            .map_err(|e| Error::state_db("test", &e))
        })
        .unwrap();
        db.checkpoint().unwrap();
    }
    let before = file_fingerprint(&path);
    let files_before = fs::read_dir(dir.path()).unwrap().count();

    let error = StateDb::open(&path).unwrap_err();

    assert_eq!(error.code, "state.newer_schema");
    assert!(
        error.message.contains("schema version 99"),
        "{}",
        error.message
    );
    assert!(
        error
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("left unchanged")
    );
    assert_eq!(
        file_fingerprint(&path),
        before,
        "the newer database was modified"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        files_before,
        "files were added"
    );
}

#[test]
fn unknown_target_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let error = StateDb::open_at_version(&dir.path().join("x.duckdb"), CURRENT_SCHEMA_VERSION + 1)
        .unwrap_err();
    assert_eq!(error.code, "state.unknown_version");
}

#[test]
fn db_time_round_trips() {
    let time = DateTime::from_timestamp(1_767_322_245, 123_456_000).unwrap();
    assert_eq!(from_db_time(&to_db_time(time)).unwrap(), time);
    assert_eq!(
        from_db_time("2026-01-02 03:04:05").unwrap(),
        DateTime::from_timestamp(1_767_323_045, 0).unwrap()
    );
}

/// Environment variable that turns `lock_holder_process` into a helper holding a database open.
const HOLD_ENV: &str = "AGNES_TEST_HOLD_STATE_DB";

/// Helper run in a child process by `second_process_gets_lock_error`; without `HOLD_ENV` it does
/// nothing. It opens the database, prints `holding` (after libtest's test name on the same line)
/// and keeps the database open until stdin closes.
#[test]
fn lock_holder_process() {
    let Ok(path) = std::env::var(HOLD_ENV) else {
        return;
    };
    let _db = StateDb::open(Path::new(&path)).unwrap();
    println!("holding");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn second_process_gets_lock_error() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.duckdb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "state::tests::lock_holder_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let holding = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.trim_end().ends_with("holding"));
    assert!(holding, "the helper process did not open the database");

    let error = StateDb::open(&path).unwrap_err();

    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(error.code, "state.locked");
    assert!(
        error.message.contains("in use by another process"),
        "{}",
        error.message
    );
    assert!(error.hint.as_deref().unwrap_or("").contains("--data-dir"));
}
