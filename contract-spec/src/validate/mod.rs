//! The offline validator: opens an `extract.duckdb` read-only and reports every contract finding.
//!
//! The file is attached to an in-memory DuckDB database under its source name, exactly as the
//! orchestrator attaches it, so a view that only works under another catalog name is caught. After
//! the attach, the connection may read files only inside the source folder and may not load
//! extensions, so a hostile extract cannot make the validator read other files or reach the network.

mod columns;
mod files;
mod inspect;
mod meta;
mod remote;
mod tree;

use std::path::Path;

pub use tree::{TreeError, validate_tree};

use crate::finding::{Code, Finding, Report};
use crate::identifier::identifier_problem;
use crate::spec::CONTRACT_VERSION;
use inspect::Inspector;

/// Settings for [`validate_with`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Source name to check against; defaults to the name of the folder that contains the file.
    pub source: Option<String>,
}

/// Validates the extract at `path` against the current contract.
///
/// Never modifies the file and never takes a write lock. Every problem, including a missing or
/// unreadable file, is returned as a finding in the report; this function does not fail or panic.
pub fn validate(path: &Path) -> Report {
    validate_with(path, &Options::default())
}

/// Validates the extract at `path` with explicit [`Options`].
pub fn validate_with(path: &Path, options: &Options) -> Report {
    let source = options
        .source
        .clone()
        .unwrap_or_else(|| source_name_of(path));
    let mut report = Report {
        path: path.to_path_buf(),
        source: source.clone(),
        contract_version: CONTRACT_VERSION,
        tables: Vec::new(),
        findings: Vec::new(),
    };

    if let Some(problem) = identifier_problem(&source) {
        report.findings.push(Finding::new(
            Code::SourceNameUnsafe,
            format!("source folder name {source:?} {problem}"),
            "Rename the folder under extracts/ to letters, digits and underscores, starting with a \
             letter or underscore (at most 64 characters); the orchestrator skips unsafe names.",
        ));
    }

    if let Err(finding) = check_file(path) {
        report.findings.push(finding);
        return report;
    }

    let inspector = match Inspector::open(path, &source) {
        Ok(inspector) => inspector,
        Err(finding) => {
            report.findings.push(finding);
            return report;
        }
    };

    let outcome = meta::check(&inspector, &mut report.findings);
    let attach_rows = remote::check(&inspector, &source, &mut report.findings);
    if outcome.has_remote_rows && attach_rows == 0 {
        report.findings.push(Finding::new(
            Code::MetaRemoteWithoutAttach,
            "_meta has rows with query_mode 'remote' but the extract has no _remote_attach row, so \
             their views cannot resolve",
            "Write one _remote_attach row (alias, extension, url, token_env) per external catalog \
             the remote views read.",
        ));
    }
    report.tables = outcome.published;
    report
}

/// Takes the source name from the folder that contains `path`.
fn source_name_of(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .parent()
        .and_then(|parent| parent.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Bytes 8 to 11 of every DuckDB database file.
const DUCKDB_MAGIC: &[u8; 4] = b"DUCK";

/// Checks that `path` is a non-empty DuckDB file before DuckDB touches it, because DuckDB would
/// otherwise treat an empty file as a new database.
fn check_file(path: &Path) -> Result<(), Finding> {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Finding::new(
                Code::FileMissing,
                format!("{shown} does not exist"),
                "Run the connector so it writes extracts/<source>/extract.duckdb, or pass the path of an \
                 existing extract.",
            ));
        }
        Err(error) => return Err(unreadable(path, &error.to_string())),
    };
    if metadata.is_dir() {
        return Err(Finding::new(
            Code::FileNotDuckdb,
            format!("{shown} is a folder, not a DuckDB file"),
            "Pass the extract.duckdb file, or the folder that contains it.",
        ));
    }
    if metadata.len() == 0 {
        return Err(Finding::new(
            Code::FileEmpty,
            format!("{shown} is empty (0 bytes)"),
            "The connector probably stopped before writing; run it again and check its log.",
        ));
    }

    let mut header = [0u8; 12];
    let read = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read(&mut file, &mut header))
        .map_err(|error| unreadable(path, &error.to_string()))?;
    if read < header.len() || &header[8..12] != DUCKDB_MAGIC {
        return Err(Finding::new(
            Code::FileNotDuckdb,
            format!("{shown} is not a DuckDB database file"),
            "Write the extract with DuckDB (for example `duckdb.connect(path)` in Python); CSV, \
             Parquet or SQLite files are not extracts.",
        ));
    }
    Ok(())
}

fn unreadable(path: &Path, detail: &str) -> Finding {
    Finding::new(
        Code::FileUnreadable,
        format!("cannot open {}: {detail}", path.display()),
        "Check the file's permissions, and that no connector still has it open for writing.",
    )
}
