//! Custom connectors: good, invalid, slow and failing programs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use agnes_core::sync::JobStatus;

use crate::support::Harness;

/// Writes a valid extract with one physical table of `rows` rows to `dir/extract.duckdb`.
fn write_fixture_extract(dir: &Path, table: &str, rows: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let conn = duckdb::Connection::open(dir.join("extract.duckdb")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE _meta (table_name VARCHAR NOT NULL, description VARCHAR, rows BIGINT, size_bytes BIGINT, \
         extracted_at TIMESTAMP, query_mode VARCHAR NOT NULL);
         CREATE TABLE {table} AS SELECT range AS id FROM range({rows});
         INSERT INTO _meta VALUES ('{table}', 'from a custom connector', {rows}, 0, now()::TIMESTAMP, 'local');"
    ))
    .unwrap();
}

/// Creates connector `name`: on its first run it copies a good extract; once `misbehave` exists
/// in its folder it runs `bad_step` instead.
fn write_connector(root: &Path, name: &str, bad_step: &str, timeout: u64) {
    let dir = root.join(name);
    write_fixture_extract(&dir.join("fixture"), name, 3);
    let script = format!(
        "#!/bin/sh\nset -e\necho \"starting {name} for $AGNES_SOURCE\"\n\
         if [ -f misbehave ]; then\n{bad_step}\nfi\n\
         cp fixture/extract.duckdb \"$AGNES_OUTPUT_DIR/extract.duckdb\"\necho done\n"
    );
    std::fs::write(dir.join("run.sh"), script).unwrap();
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("connector.json"),
        format!(r#"{{"entrypoint": ["./run.sh"], "timeout_seconds": {timeout}, "env": ["CUSTOM_TOKEN"]}}"#),
    )
    .unwrap();
}

#[test]
fn failing_custom_connectors_keep_previous_data() {
    let harness = Harness::new();
    let root = harness.connectors_dir();
    write_connector(
        &root,
        "invalid",
        "echo 'not a database' > \"$AGNES_OUTPUT_DIR/extract.duckdb\"; exit 0",
        60,
    );
    write_connector(&root, "slow", "echo sleeping; sleep 30", 1);
    write_connector(
        &root,
        "broken",
        "echo 'cannot reach the API' >&2; exit 3",
        60,
    );

    let first = harness.sync(None);
    assert_eq!(first.status, JobStatus::Succeeded, "{first:#?}");
    for name in ["invalid", "slow", "broken"] {
        assert_eq!(
            harness.scalar(&format!("SELECT count(*) FROM {name}")),
            3,
            "{name}"
        );
    }
    let log = first
        .sources
        .iter()
        .find(|s| s.name == "broken")
        .unwrap()
        .log
        .clone()
        .unwrap();
    assert!(log.contains("starting broken for broken"), "{log}");

    for name in ["invalid", "slow", "broken"] {
        std::fs::write(root.join(name).join("misbehave"), "").unwrap();
    }
    let started = std::time::Instant::now();
    let second = harness.sync(None);
    assert!(
        started.elapsed().as_secs() < 20,
        "the slow connector was not stopped by its timeout"
    );
    assert_eq!(second.status, JobStatus::Failed, "{second:#?}");

    let error_of = |name: &str| {
        second
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .error
            .clone()
            .unwrap()
    };
    assert!(
        error_of("invalid").contains("file.not_duckdb"),
        "{}",
        error_of("invalid")
    );
    assert!(
        error_of("slow").contains("longer than 1 s"),
        "{}",
        error_of("slow")
    );
    assert!(
        error_of("broken").contains("exit status: 3"),
        "{}",
        error_of("broken")
    );
    assert!(
        error_of("broken").contains("cannot reach the API"),
        "{}",
        error_of("broken")
    );

    for name in ["invalid", "slow", "broken"] {
        assert_eq!(
            harness.scalar(&format!("SELECT count(*) FROM {name}")),
            3,
            "{name} lost its data"
        );
    }
}

#[test]
fn custom_connector_sees_only_its_variables() {
    let harness = Harness::new();
    let dir = harness.connectors_dir().join("envcheck");
    write_fixture_extract(&dir.join("fixture"), "envcheck", 1);
    std::fs::write(
        dir.join("run.sh"),
        "#!/bin/sh\nenv | sort > \"$AGNES_OUTPUT_DIR/../envcheck-env.txt\"\ncp fixture/extract.duckdb \"$AGNES_OUTPUT_DIR/\"\n",
    )
    .unwrap();
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("connector.json"),
        r#"{"entrypoint": ["./run.sh"], "env": ["HOME"]}"#,
    )
    .unwrap();

    let job = harness.sync(None);
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let env = std::fs::read_to_string(harness.data_dir().join("extracts").join("envcheck-env.txt"))
        .unwrap();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    for name in &names {
        assert!(
            [
                "AGNES_OUTPUT_DIR",
                "AGNES_SOURCE",
                "HOME",
                "LANG",
                "PATH",
                "PWD",
                "SHLVL",
                "_"
            ]
            .contains(name),
            "leaked {name}"
        );
    }
    assert!(names.contains(&"AGNES_OUTPUT_DIR"));
}

#[test]
fn standalone_extract_published_on_rebuild() {
    let harness = Harness::new();
    let extracts = harness.data_dir().join("extracts");

    // A standalone connector writes a hidden folder, then renames it into place.
    let incoming = extracts.join(".warehouse.incoming");
    write_fixture_extract(&incoming, "shipments", 5);
    harness.plane.publish().unwrap();
    assert!(
        harness
            .plane
            .catalog(&crate::support::admin())
            .unwrap()
            .is_empty(),
        "a hidden folder was published"
    );

    std::fs::rename(&incoming, extracts.join("warehouse")).unwrap();
    let publication = harness.plane.publish().unwrap();
    assert_eq!(publication.tables.len(), 1);
    assert_eq!(harness.scalar("SELECT count(*) FROM shipments"), 5);

    // A later sync of built-in sources keeps the standalone folder as it is.
    assert_eq!(harness.sync(None).status, JobStatus::Succeeded);
    assert!(extracts.join("warehouse").join("extract.duckdb").is_file());
    assert_eq!(harness.scalar("SELECT count(*) FROM shipments"), 5);
}
