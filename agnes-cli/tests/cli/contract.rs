//! `agnes contract validate` and `agnes contract show`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn agnes(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agnes"))
        .args(args)
        .output()
        .expect("run agnes")
}

/// Writes a valid extract with one local table under `<root>/extracts/<source>/`.
fn write_extract(root: &Path, source: &str) -> PathBuf {
    let dir = root.join("extracts").join(source);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let parquet = dir.join("data").join("orders.parquet");
    let conn = duckdb::Connection::open(dir.join("extract.duckdb")).unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT range AS id FROM range(3)) TO '{p}' (FORMAT PARQUET);
         CREATE VIEW orders AS SELECT * FROM read_parquet('{p}');
         CREATE TABLE _meta (table_name VARCHAR NOT NULL, description VARCHAR, rows BIGINT, size_bytes BIGINT,
             extracted_at TIMESTAMP, query_mode VARCHAR NOT NULL);
         INSERT INTO _meta VALUES ('orders', 'Orders', 3, 100, now()::TIMESTAMP, 'local');",
        p = parquet.display()
    ))
    .unwrap();
    dir
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn valid_extract_exits_zero() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_extract(root.path(), "sales");
    let output = agnes(&["contract", "validate", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("(source sales): valid, 1 tables, 0 errors, 0 warnings"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn invalid_extract_exits_one_with_json() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_extract(root.path(), "sales");
    let conn = duckdb::Connection::open(dir.join("extract.duckdb")).unwrap();
    conn.execute_batch("UPDATE _meta SET rows = -1").unwrap();
    drop(conn);
    write_extract(root.path(), "hr");

    let output = agnes(&[
        "contract",
        "validate",
        "--format",
        "json",
        root.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(json["contract_version"], 1);
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 1);
    assert_eq!(json["reports"].as_array().unwrap().len(), 2);
    assert_eq!(json["reports"][0]["source"], "hr");
    let finding = &json["reports"][1]["findings"][0];
    assert_eq!(finding["code"], "meta.rows_negative");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["table"], "_meta");
    assert_eq!(finding["row"], 1);
    assert_eq!(finding["column"], "rows");
    assert!(finding["hint"].as_str().unwrap().contains("row count"));
}

#[test]
fn text_output_has_fix_lines() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_extract(root.path(), "sales");
    std::fs::remove_file(dir.join("data").join("orders.parquet")).unwrap();
    let output = agnes(&["contract", "validate", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("error   table.file_missing [orders]"),
        "{text}"
    );
    assert!(text.contains("fix: "), "{text}");
    assert!(
        text.ends_with("1 extracts checked: 1 errors, 0 warnings\n"),
        "{text}"
    );
}

#[test]
fn missing_path_exits_two() {
    let output = agnes(&["contract", "validate", "/nonexistent/agnes/extract"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("check the path"));
}

#[test]
fn empty_folder_exits_two() {
    let root = tempfile::tempdir().unwrap();
    let output = agnes(&["contract", "validate", root.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("contains no extract"));
}

#[test]
fn source_flag_validates_hidden_version() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_extract(root.path(), ".sales.v1");
    let plain = agnes(&["contract", "validate", dir.to_str().unwrap()]);
    assert_eq!(
        plain.status.code(),
        Some(1),
        "a dot-name is not a source name"
    );
    let named = agnes(&[
        "contract",
        "validate",
        "--source",
        "sales",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(named.status.code(), Some(0), "{}", stdout(&named));
}

#[test]
fn show_prints_frozen_contract() {
    let output = agnes(&["contract", "show"]);
    assert_eq!(output.status.code(), Some(0));
    let frozen = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract-spec/contract-v1.json"),
    )
    .unwrap();
    assert_eq!(stdout(&output), frozen);
}
