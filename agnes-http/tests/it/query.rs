//! Query results over HTTP: the five formats, streaming, the download endpoint and its ETag, and
//! the errors that must not leak server paths.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::{Array, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use axum::body::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::fixture::{TestServer, code};

/// Writes a CSV with awkward values: quotes, commas, line breaks, NULLs, dates, timestamps,
/// decimals and booleans.
fn write_sample(dir: &Path, rows: usize) {
    let mut file = std::fs::File::create(dir.join("sample.csv")).unwrap();
    writeln!(file, "id,name,score,day,seen_at,active,note").unwrap();
    for i in 0..rows {
        let name = match i % 4 {
            0 => format!("plain {i}"),
            1 => format!("\"with, comma {i}\""),
            2 => format!("\"quote \"\"{i}\"\" and\nline break\""),
            _ => format!("ünïcödé {i}"),
        };
        let score = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}.{}", i / 3, i % 10)
        };
        let day = format!("2013-{:02}-{:02}", i % 12 + 1, i % 28 + 1);
        let seen = format!("2013-01-01 {:02}:{:02}:{:02}", i % 24, i % 60, (i * 7) % 60);
        let active = if i % 2 == 0 { "true" } else { "false" };
        let note = if i % 5 == 0 { "NA" } else { "DROP TABLE x; --" };
        writeln!(file, "{i},{name},{score},{day},{seen},{active},{note}").unwrap();
    }
}

/// Sends a query and returns the status, the content type and the raw body.
async fn query_raw(
    server: &TestServer,
    token: &str,
    body: Value,
    accept: Option<&str>,
) -> (StatusCode, String, Bytes) {
    let mut request = server
        .raw()
        .post(format!("{}/api/query", server.base))
        .bearer_auth(token)
        .json(&body);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.bytes().await.unwrap();
    (status, content_type, bytes)
}

fn read_arrow(bytes: &[u8]) -> RecordBatch {
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes, None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

fn read_parquet(bytes: Bytes) -> RecordBatch {
    use arrow::array::RecordBatchReader;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 8192).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

fn read_csv(bytes: &[u8], schema: SchemaRef) -> RecordBatch {
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(bytes)
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// The rows of `batch` as JSON objects, as an independent JSON writer encodes them.
fn json_objects(batch: &RecordBatch) -> Vec<Value> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(Vec::new());
    writer.write(batch).unwrap();
    writer.finish().unwrap();
    String::from_utf8(writer.into_inner())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn the_five_formats_return_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 5000);
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;
    let sql = "SELECT * FROM sample ORDER BY id";

    let (status, content_type, arrow_bytes) = query_raw(
        &server,
        &admin,
        json!({"sql": sql, "format": "arrow"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.apache.arrow.stream");
    let reference = read_arrow(&arrow_bytes);
    assert_eq!(reference.num_rows(), 5000);
    assert_eq!(reference.num_columns(), 7);
    assert_eq!(reference.column(2).null_count(), 715, "NULL scores");

    let (status, content_type, parquet_bytes) = query_raw(
        &server,
        &admin,
        json!({"sql": sql}),
        Some("application/vnd.apache.parquet"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/vnd.apache.parquet");
    assert_eq!(read_parquet(parquet_bytes), reference);

    let (status, content_type, csv_bytes) =
        query_raw(&server, &admin, json!({"sql": sql}), Some("text/csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(read_csv(&csv_bytes, reference.schema()), reference);

    let expected = json_objects(&reference);
    let (status, content_type, ndjson) = query_raw(
        &server,
        &admin,
        json!({"sql": sql}),
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = String::from_utf8(ndjson.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, expected);

    let (status, content_type, body) =
        query_raw(&server, &admin, json!({"sql": sql, "limit": 5000}), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    let columns: Vec<String> = reference
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(body["columns"], json!(columns));
    assert_eq!(body["row_count"], 5000);
    assert_eq!(body["truncated"], false);
    let as_arrays: Vec<Value> = expected
        .iter()
        .map(|row| Value::Array(columns.iter().map(|c| row[c].clone()).collect()))
        .collect();
    assert_eq!(body["rows"], Value::Array(as_arrays));
    assert_eq!(body["rows"][2][1], "quote \"2\" and\nline break");
    assert_eq!(body["rows"][0][2], Value::Null);
    assert_eq!(body["rows"][5][6], Value::Null, "NA reads as NULL");

    // The default JSON limit is the original's 1000 rows, and says it cut the result.
    let (_, _, body) = query_raw(&server, &admin, json!({"sql": sql}), None).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["row_count"], 1000);
    assert_eq!(body["truncated"], true);
    assert_eq!(body["rows"].as_array().unwrap().len(), 1000);

    server.stop().await;
}

#[tokio::test]
async fn formats_are_negotiated_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 10);
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;

    let (status, _, body) = query_raw(
        &server,
        &admin,
        json!({"sql": "SELECT 1 AS one"}),
        Some("image/png"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&body), "query.not_acceptable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/png")
    );

    let (status, _, body) = query_raw(
        &server,
        &admin,
        json!({"sql": "SELECT 1", "format": "xml"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&body), "query.unknown_format");

    // A misspelt field is an error, not a silent default.
    let (status, _, body) =
        query_raw(&server, &admin, json!({"sql": "SELECT 1", "lim": 5}), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("lim"),
        "{body}"
    );

    // The format field wins over Accept.
    let (status, content_type, body) = query_raw(
        &server,
        &admin,
        json!({"sql": "SELECT 1 AS one, 'a,b' AS two", "format": "csv"}),
        Some("application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        "one,two\n1,\"a,b\"\n"
    );

    // Time stamps with a zone come out in UTC with an offset, in every text format.
    let sql = "SELECT TIMESTAMPTZ '2013-01-01 05:00:00+02' AS at";
    let (status, _, body) =
        query_raw(&server, &admin, json!({"sql": sql, "format": "csv"}), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        "at\n2013-01-01T03:00:00Z\n"
    );
    let (_, _, body) = query_raw(&server, &admin, json!({"sql": sql}), None).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["rows"], json!([["2013-01-01T03:00:00Z"]]));
    let (_, _, body) = query_raw(
        &server,
        &admin,
        json!({"sql": sql, "format": "arrow"}),
        None,
    )
    .await;
    let batch = read_arrow(&body);
    assert_eq!(
        batch.schema().field(0).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );

    let (status, _, body) = query_raw(
        &server,
        &admin,
        json!({"sql": "SELECT [1, 2] AS list", "format": "csv"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&body), "query.format_unsupported");
    assert!(body["error"]["message"].as_str().unwrap().contains("list"));

    server.stop().await;
}

#[tokio::test]
async fn a_million_rows_stream_and_a_late_error_aborts_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 10);
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;

    let response = server
        .raw()
        .post(format!("{}/api/query", server.base))
        .bearer_auth(&admin)
        .json(&json!({"sql": "SELECT i, i * 2 AS twice FROM range(1000000) t(i)", "format": "ndjson"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.content_length().is_none(), "the body is streamed");
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1_000_000);
    assert_eq!(lines[999_999], r#"{"i":999999,"twice":1999998}"#);

    // An error in a late chunk must not look like a complete, shorter result.
    let sql = "SELECT CASE WHEN i = 900000 THEN error('boom at ' || i) ELSE i END AS i FROM range(1000000) t(i)";
    for format in ["ndjson", "csv", "arrow", "parquet", "json"] {
        let response = server
            .raw()
            .post(format!("{}/api/query", server.base))
            .bearer_auth(&admin)
            .json(&json!({"sql": sql, "format": format, "limit": 1_000_000}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status == StatusCode::OK {
            let body = response.bytes().await;
            assert!(
                body.is_err(),
                "{format}: a failed query gave a complete body"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{format}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "query.failed", "{format}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("boom at 900000")
            );
        }
    }

    // The server keeps answering after the aborted streams.
    let (status, body) = server
        .post(
            "/api/query",
            Some(&admin),
            json!({"sql": "SELECT 42 AS answer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rows"], json!([[42]]));
    server.stop().await;
}

#[tokio::test]
async fn download_serves_parquet_with_an_etag() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 300);
    std::fs::write(folder.join("secret.csv"), "x\n1\n").unwrap();
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;

    let url = format!("{}/api/data/sample/download", server.base);
    let response = server
        .raw()
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/vnd.apache.parquet"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"sample.parquet\""
    );
    let etag = response.headers()[ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let table = read_parquet(response.bytes().await.unwrap());
    assert_eq!(table.num_rows(), 300);

    let response = server
        .raw()
        .get(&url)
        .bearer_auth(&admin)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[ETAG].to_str().unwrap(), etag);
    assert!(response.bytes().await.unwrap().is_empty());

    // New data, new tag; the old tag gets the whole table again.
    write_sample(&folder, 301);
    let (status, started) = server
        .post("/api/sync/trigger", Some(&admin), json!(null))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    server
        .wait_for_job(&admin, started["job_id"].as_str().unwrap())
        .await;
    let response = server
        .raw()
        .get(&url)
        .bearer_auth(&admin)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()[ETAG].to_str().unwrap(), etag);
    assert_eq!(
        read_parquet(response.bytes().await.unwrap()).num_rows(),
        301
    );

    // An analyst reads public tables; a private one looks like no table at all.
    let analyst = server
        .user_token(&admin, "ana@example.com", "analyst")
        .await;
    let (status, body) = server
        .request(
            reqwest::Method::PUT,
            "/api/admin/registry/secret",
            Some(&admin),
            Some(json!({"is_public": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for table in ["secret", "missing"] {
        let (status, body) = server
            .get(&format!("/api/data/{table}/download"), Some(&analyst))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{table}: {body}");
        assert_eq!(code(&body), "data.table_not_found");
    }
    let response = server
        .raw()
        .get(&url)
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = server.get("/api/data/sample/download", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Viewers query but do not download.
    let viewer = server.user_token(&admin, "vi@example.com", "viewer").await;
    let (status, body) = server.get("/api/data/sample/download", Some(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code(&body), "data.download_forbidden");
    server.stop().await;
}

#[tokio::test]
async fn errors_do_not_show_server_paths() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 10);
    let data = dir.path().join("data");
    let server = TestServer::start(&data).await;
    let admin = server.publish_folder(&folder).await;

    let missing = data.join("extracts/files/nothing.parquet");
    let (status, body) = server
        .post(
            "/api/query",
            Some(&admin),
            json!({"sql": format!("SELECT * FROM read_parquet('{}')", missing.display())}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    let root = dir.path().to_string_lossy();
    assert!(!message.contains(root.as_ref()), "{message}");
    assert!(
        message.contains("<data>/extracts/files/nothing.parquet"),
        "{message}"
    );
    server.stop().await;
}

#[tokio::test]
async fn viewers_read_at_most_their_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 10);
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;
    let viewer = server.user_token(&admin, "vi@example.com", "viewer").await;
    let sql = "SELECT i FROM range(25000) t(i)";

    let (status, _, body) =
        query_raw(&server, &viewer, json!({"sql": sql, "format": "csv"}), None).await;
    assert_eq!(status, StatusCode::OK);
    let lines = String::from_utf8(body.to_vec()).unwrap().lines().count();
    assert_eq!(lines, 1 + 10_000, "a header and the viewer's 10,000 rows");

    let (status, _, body) = query_raw(
        &server,
        &viewer,
        json!({"sql": sql, "format": "parquet", "limit": 25000}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code(&body), "query.limit_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("viewer")
    );

    let (_, _, body) = query_raw(&server, &admin, json!({"sql": sql, "format": "csv"}), None).await;
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap().lines().count(),
        25_001
    );
    server.stop().await;
}

#[tokio::test]
async fn queries_of_vanished_clients_free_their_slots() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("input");
    std::fs::create_dir(&folder).unwrap();
    write_sample(&folder, 10);
    let server = TestServer::start(&dir.path().join("data")).await;
    let admin = server.publish_folder(&folder).await;

    // Twice the per-user limit of endless queries, each abandoned by its client after 300 ms.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let endless = "SELECT count(*) FROM range(1000000000000) a, range(1000) b";
    let mut abandoned = Vec::new();
    for _ in 0..16 {
        let request = impatient
            .post(format!("{}/api/query", server.base))
            .bearer_auth(&admin)
            .json(&json!({"sql": endless}))
            .send();
        abandoned.push(tokio::spawn(request));
    }
    let mut gave_up = 0;
    for request in abandoned {
        match request.await.unwrap() {
            Err(_) => gave_up += 1,
            Ok(response) => assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE),
        }
    }
    assert_eq!(gave_up, 8, "the per-user limit let 8 queries run");

    // Without cancellation the slots would stay taken for the 60 s time limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server
            .post(
                "/api/query",
                Some(&admin),
                json!({"sql": "SELECT 1 AS one"}),
            )
            .await;
        if status == StatusCode::OK {
            assert_eq!(body["rows"], json!([[1]]));
            break;
        }
        assert_eq!(code(&body), "query.busy", "{body}");
        assert!(
            Instant::now() < deadline,
            "the abandoned queries still hold the slots"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
