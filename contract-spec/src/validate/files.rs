//! Finds the files a view reads, with DuckDB's own parser, and checks that each one exists inside
//! the view's source folder.

use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::finding::{Code, Finding};

use super::inspect::Inspector;

/// Matches the keyword `AS` that may end the `CREATE VIEW ... AS` prefix.
static AS_KEYWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bAS\b").expect("pattern compiles"));

/// File extensions that make DuckDB treat a table name as a file to scan.
const FILE_EXTENSIONS: &[&str] = &[
    ".parquet", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt", ".gz", ".zst", ".arrow",
];

/// Checks every file `view` reads; pushes one finding per bad file and returns how many it pushed.
pub(crate) fn check_view(inspector: &Inspector, view: &str, findings: &mut Vec<Finding>) -> usize {
    let Ok(Some(sql)) = inspector.view_sql(view) else {
        return 0;
    };
    let Some(tree) = parse_view_query(inspector, &sql) else {
        return 0;
    };

    let mut paths = Vec::new();
    collect_paths(&tree, &mut paths);
    paths.dedup();

    let before = findings.len();
    for path in paths {
        if let Some(finding) = check_path(inspector, &path) {
            findings.push(finding.in_table(view));
        }
    }
    findings.len() - before
}

/// Cuts the query out of a `CREATE VIEW name AS query` statement by trying each `AS` keyword in
/// turn until DuckDB's parser accepts the rest as one SELECT statement.
fn parse_view_query(inspector: &Inspector, create_sql: &str) -> Option<Value> {
    AS_KEYWORD.find_iter(create_sql).find_map(|keyword| {
        let query = create_sql[keyword.end()..]
            .trim()
            .trim_end_matches(';')
            .trim();
        inspector.parse_select(query)
    })
}

/// Collects the string arguments of every table function, and every table name that DuckDB
/// would scan as a file, anywhere in a parsed statement.
fn collect_paths(node: &Value, paths: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            match map.get("type").and_then(Value::as_str) {
                Some("TABLE_FUNCTION") => {
                    if let Some(arguments) = map
                        .get("function")
                        .and_then(|f| f.get("children"))
                        .and_then(Value::as_array)
                    {
                        for argument in arguments {
                            collect_constant_strings(argument, paths);
                        }
                    }
                }
                Some("BASE_TABLE") => {
                    if let Some(name) = map.get("table_name").and_then(Value::as_str)
                        && looks_like_file(name)
                    {
                        paths.push(name.to_string());
                    }
                }
                _ => {}
            }
            for value in map.values() {
                collect_paths(value, paths);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_paths(item, paths)),
        _ => {}
    }
}

/// Collects VARCHAR constants of a positional argument, including those inside a list such as
/// `['a.parquet', 'b.parquet']`. Named parameters (`header = true`) are comparisons and skipped.
fn collect_constant_strings(argument: &Value, paths: &mut Vec<String>) {
    match argument.get("class").and_then(Value::as_str) {
        Some("CONSTANT") => {
            if let Some(text) = argument.get("value").and_then(varchar_value) {
                paths.push(text);
            }
        }
        Some("FUNCTION") => {
            let is_list = matches!(
                argument.get("function_name").and_then(Value::as_str),
                Some("list_value" | "list_pack")
            );
            if is_list && let Some(items) = argument.get("children").and_then(Value::as_array) {
                items
                    .iter()
                    .for_each(|item| collect_constant_strings(item, paths));
            }
        }
        _ => {}
    }
}

/// Reads a serialized DuckDB value that is a non-NULL VARCHAR.
fn varchar_value(value: &Value) -> Option<String> {
    let is_varchar = value
        .get("type")
        .and_then(|t| t.get("id"))
        .and_then(Value::as_str)
        == Some("VARCHAR");
    let is_null = value
        .get("is_null")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !is_varchar || is_null {
        return None;
    }
    value
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn looks_like_file(name: &str) -> bool {
    let lowered = name.to_lowercase();
    name.contains('/') || FILE_EXTENSIONS.iter().any(|ext| lowered.ends_with(ext))
}

/// Checks one path a view reads. Returns a finding when it is remote, relative, outside the
/// source folder (also through a symbolic link) or missing.
fn check_path(inspector: &Inspector, path: &str) -> Option<Finding> {
    if let Some(scheme_end) = path.find("://") {
        let shown = path.split(['?', '#']).next().unwrap_or_default();
        let scheme = &path[..scheme_end];
        return Some(Finding::new(
            Code::TableFileOutsideSource,
            format!("the view reads {shown:?} over {scheme}, outside the source folder"),
            "Download the data into data/<table>.parquet during the sync, or publish the table with \
             query_mode 'remote' and a _remote_attach row.",
        ));
    }

    let as_path = Path::new(path);
    if !as_path.is_absolute() {
        return Some(Finding::new(
            Code::TableFileRelative,
            format!(
                "the view reads {path:?} by a relative path, which depends on the reader's working directory"
            ),
            "Write the absolute path of the file inside the source folder, for example \
             <data dir>/extracts/<source>/data/<table>.parquet.",
        ));
    }

    let normalized = normalize(as_path);
    let source_dir = &inspector.source_dir;
    if !normalized.starts_with(source_dir) && !normalized.starts_with(&inspector.source_dir_given) {
        return Some(outside(path, source_dir, ""));
    }

    let has_glob = path.contains(['*', '?', '[']);
    if has_glob {
        let escapes = glob_root(&normalized)
            .canonicalize()
            .is_ok_and(|real| !real.starts_with(source_dir));
        if escapes {
            return Some(outside(path, source_dir, " through a symbolic link"));
        }
        let matches = inspector
            .glob_count(&normalized.to_string_lossy())
            .unwrap_or(0);
        return (matches == 0).then(|| missing(path, "no file matches the pattern"));
    }

    match normalized.canonicalize() {
        Ok(real) if !real.starts_with(source_dir) => {
            Some(outside(path, source_dir, " through a symbolic link"))
        }
        Ok(_) => None,
        Err(_) => Some(missing(path, "the file does not exist")),
    }
}

fn outside(path: &str, source_dir: &Path, how: &str) -> Finding {
    Finding::new(
        Code::TableFileOutsideSource,
        format!(
            "the view reads {path:?}{how}, outside the source folder {}",
            source_dir.display()
        ),
        "Views may read only files inside their own source folder; write the data to \
         data/<table>.parquet there and point the view at it.",
    )
}

fn missing(path: &str, why: &str) -> Finding {
    Finding::new(
        Code::TableFileMissing,
        format!("the view reads {path:?} but {why}"),
        "Write the file during the sync before the view is published, or fix the path in the view.",
    )
}

/// Removes `.` and resolves `..` lexically, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The longest leading part of a glob pattern without wildcard characters.
fn glob_root(pattern: &Path) -> PathBuf {
    let mut root = PathBuf::new();
    for component in pattern.components() {
        if component
            .as_os_str()
            .to_string_lossy()
            .contains(['*', '?', '['])
        {
            break;
        }
        root.push(component.as_os_str());
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/a/../../etc")), PathBuf::from("/etc"));
    }

    #[test]
    fn glob_root_stops_at_wildcard() {
        assert_eq!(
            glob_root(Path::new("/x/data/t/*.parquet")),
            PathBuf::from("/x/data/t")
        );
    }

    #[test]
    fn file_like_names() {
        assert!(looks_like_file("/x/y"));
        assert!(looks_like_file("flights.parquet"));
        assert!(!looks_like_file("flights"));
    }
}
