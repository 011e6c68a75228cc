//! The data plane end to end over HTTP: configure the nycflights13 folder, discover, sync, read
//! the catalog and query it.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use crate::fixture::{TestServer, code, token};

/// Returns the nycflights13 CSV folder, or `None` (after a note) when it is missing outside CI.
pub fn nycflights_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AGNES_NYCFLIGHTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nycflights13")
        });
    if dir.join("flights.csv").is_file() {
        return Some(dir);
    }
    assert!(
        !crate::fixture::required_in_ci(),
        "nycflights13 data not found at {}; set AGNES_NYCFLIGHTS_DIR",
        dir.display()
    );
    eprintln!("skipped: nycflights13 data not found at {}", dir.display());
    None
}

#[tokio::test]
async fn files_source_path_must_be_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    std::fs::create_dir_all(&csv).unwrap();
    let file = csv.join("flights.csv");
    std::fs::write(&file, "id\n1\n").unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let admin = token(&server.bootstrap().await);

    let (status, body) = server
        .post(
            "/api/admin/configure",
            Some(&admin),
            json!({"data_source": "files", "path": file}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "configure.path_is_file");
    assert_eq!(
        body["error"]["message"],
        format!(
            "{} is a file, not a folder; the files source reads every file of a folder",
            file.display()
        )
    );
    let hint = body["error"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!(
            "Give the folder that holds it, such as {};",
            csv.display()
        )),
        "{hint}"
    );

    let (status, body) = server
        .post(
            "/api/admin/configure",
            Some(&admin),
            json!({"data_source": "files", "path": csv}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn nycflights_end_to_end() {
    let Some(data) = nycflights_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let admin = token(&server.bootstrap().await);

    let (status, body) = server
        .post(
            "/api/admin/configure",
            Some(&admin),
            json!({"data_source": "files", "name": "nyc", "path": "/no/such/folder"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "configure.path_not_found");

    let (status, body) = server
        .post(
            "/api/admin/configure",
            Some(&admin),
            json!({"data_source": "files", "name": "nyc", "path": data}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connection"], "verified");
    assert_eq!(body["tables_found"], 5);

    let (status, body) = server
        .post(
            "/api/admin/discover-and-register?dry_run=true",
            Some(&admin),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["registered"], 5);
    let (_, registry) = server.get("/api/admin/registry", Some(&admin)).await;
    assert_eq!(
        registry["count"], 0,
        "a dry run registered tables: {registry}"
    );

    let (status, body) = server
        .post(
            "/api/admin/discover-and-register",
            Some(&admin),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["tables"],
        json!(["airlines", "airports", "flights", "planes", "weather"])
    );

    let (status, started) = server
        .post("/api/sync/trigger", Some(&admin), json!(null))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["job_id"].as_str().unwrap().to_string();
    let (status, second) = server
        .post("/api/sync/trigger", Some(&admin), json!(null))
        .await;
    if status == StatusCode::CONFLICT {
        assert_eq!(code(&second), "sync.already_running");
        assert_eq!(second["job_id"], id.as_str());
    } else {
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "the first job had finished already: {second}"
        );
        server
            .wait_for_job(&admin, second["job_id"].as_str().unwrap())
            .await;
    }
    let job = server.wait_for_job(&admin, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["published_tables"], 5);

    let (status, catalog) = server.get("/api/catalog/tables", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<(String, i64)> = catalog["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("airlines", 16),
        ("airports", 1458),
        ("flights", 336_776),
        ("planes", 3322),
        ("weather", 26_115),
    ];
    assert_eq!(rows, expected.map(|(n, r)| (n.to_string(), r)));

    let (status, result) = server
        .post(
            "/api/query",
            Some(&admin),
            json!({"sql": "SELECT count(*) AS n, count(*) FILTER (WHERE arr_delay IS NULL) AS missing, typeof(any_value(arr_delay)) AS t FROM flights"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["columns"], json!(["n", "missing", "t"]));
    assert_eq!(result["rows"], json!([[336_776, 9430, "BIGINT"]]));

    let (status, result) = server
        .post(
            "/api/query",
            Some(&admin),
            json!({"sql": "SELECT carrier FROM airlines ORDER BY carrier", "limit": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["row_count"], 3);
    assert_eq!(result["truncated"], true);

    for (sql, expected) in [
        ("SELEC 1", "query.syntax"),
        ("DROP VIEW flights", "query.not_select"),
        ("SELECT nope FROM flights", "query.failed"),
    ] {
        let (status, body) = server
            .post("/api/query", Some(&admin), json!({"sql": sql}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sql}: {body}");
        assert_eq!(code(&body), expected, "{sql}");
    }
    let (_, body) = server
        .post(
            "/api/query",
            Some(&admin),
            json!({"sql": "SELECT nope FROM flights"}),
        )
        .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LINE 1"),
        "the message shows the position: {body}"
    );

    let (status, _) = server.get("/api/sync/status", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}
