//! The PostgreSQL connector against the real server the test setup starts.

use agnes_core::sources::SourceConfig;
use agnes_core::sync::JobStatus;
use contract_spec::QueryMode;

use crate::support::{Harness, required};

struct Server {
    url: String,
    password: String,
    extensions: String,
}

/// The server and extension folder from `scripts/test-services.sh`, or `None` to skip.
fn server() -> Option<Server> {
    let found = (|| {
        Some(Server {
            url: std::env::var("AGNES_TEST_PG_URL").ok()?,
            password: std::env::var("AGNES_TEST_PG_PASSWORD").ok()?,
            extensions: std::env::var("AGNES_TEST_EXTENSION_DIR").ok()?,
        })
    })();
    if found.is_none() {
        assert!(
            !required(),
            "AGNES_TEST_PG_URL, AGNES_TEST_PG_PASSWORD and AGNES_TEST_EXTENSION_DIR must be set; run scripts/test.sh"
        );
        eprintln!("skipped: no PostgreSQL test server (run scripts/test.sh)");
    }
    found
}

/// Creates schema `schema` with a `customers` table of `rows` rows in the test server.
fn seed(server: &Server, schema: &str, rows: i64) {
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "SET autoinstall_known_extensions = false; SET extension_directory = '{}'; LOAD postgres;
         ATTACH '{} password={}' AS pg (TYPE postgres);
         CALL postgres_execute('pg', 'DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}');
         CREATE TABLE pg.{schema}.customers AS SELECT range AS id, 'customer ' || range AS name FROM range({rows});",
        server.extensions, server.url, server.password
    ))
    .unwrap();
}

#[test]
fn remote_and_local_modes_read_postgres() {
    let Some(server) = server() else { return };
    let harness = Harness::new_with_extensions(&server.extensions);
    seed(&server, "crm_remote", 7);
    seed(&server, "crm_local", 4);

    let sources = harness.plane.sources();
    let remote = SourceConfig::Postgres {
        url: server.url.clone(),
        schemas: vec!["crm_remote".into()],
        mode: QueryMode::Remote,
    };
    sources
        .configure("crm", remote, Some(&server.password))
        .unwrap();
    let local = SourceConfig::Postgres {
        url: server.url.clone(),
        schemas: vec!["crm_local".into()],
        mode: QueryMode::Local,
    };
    sources
        .configure("warehouse", local, Some(&server.password))
        .unwrap();

    let job = harness.sync(None);
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(
        harness.scalar("SELECT count(*) FROM crm_remote_customers"),
        7
    );
    assert_eq!(
        harness.scalar("SELECT count(*) FROM crm_local_customers"),
        4
    );

    // Remote mode reads live: a row added in PostgreSQL shows without a sync.
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "SET extension_directory = '{}'; LOAD postgres; ATTACH '{} password={}' AS pg (TYPE postgres);
         INSERT INTO pg.crm_remote.customers VALUES (100, 'late');",
        server.extensions, server.url, server.password
    ))
    .unwrap();
    assert_eq!(
        harness.scalar("SELECT count(*) FROM crm_remote_customers"),
        8
    );
    assert_eq!(
        harness.scalar("SELECT count(*) FROM crm_local_customers"),
        4
    );

    let extract = std::fs::read(harness.data_dir().join("extracts/crm/extract.duckdb")).unwrap();
    let text = String::from_utf8_lossy(&extract);
    assert!(
        !text.contains(&server.password),
        "the password was written into the extract"
    );
}
