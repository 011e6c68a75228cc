//! Validation of a whole folder: a data directory, an `extracts/` folder, or one source folder.

use std::path::{Path, PathBuf};

use crate::finding::{Code, Finding, Report};
use crate::spec::{CONTRACT_VERSION, EXTRACT_FILE};

use super::validate;

/// Why [`validate_tree`] could not run at all.
#[derive(Debug)]
pub struct TreeError {
    /// The path that could not be read.
    pub path: PathBuf,
    /// The underlying error.
    pub source: std::io::Error,
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for TreeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Validates every extract that `path` names and returns one report per extract.
///
/// `path` may be an extract file, a source folder that contains `extract.duckdb`, a folder of
/// source folders (such as `extracts/`), or a data directory that contains `extracts/`. Folders
/// whose names start with `.` are skipped, because they are work in progress (a standalone
/// connector writes into such a folder and renames it into place). A source folder without an
/// extract gets a report with a `source.no_extract` warning.
///
/// Fails only when `path` does not exist or a folder cannot be listed.
pub fn validate_tree(path: &Path) -> Result<Vec<Report>, TreeError> {
    let error = |source| TreeError {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(error)?;
    if metadata.is_file() {
        return Ok(vec![validate(path)]);
    }
    if path.join(EXTRACT_FILE).exists() {
        return Ok(vec![validate(&path.join(EXTRACT_FILE))]);
    }
    let extracts = path.join("extracts");
    let sources_dir = if extracts.is_dir() {
        extracts
    } else {
        path.to_path_buf()
    };

    let mut folders: Vec<PathBuf> = std::fs::read_dir(&sources_dir)
        .map_err(|source| TreeError {
            path: sources_dir.clone(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|entry| entry.is_dir())
        .filter(|entry| {
            !entry
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .collect();
    folders.sort();

    Ok(folders
        .iter()
        .map(|folder| validate_source_folder(folder))
        .collect())
}

fn validate_source_folder(folder: &Path) -> Report {
    let file = folder.join(EXTRACT_FILE);
    if file.exists() {
        return validate(&file);
    }
    let source = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Report {
        path: file,
        source,
        contract_version: CONTRACT_VERSION,
        tables: Vec::new(),
        findings: vec![Finding::new(
            Code::SourceNoExtract,
            format!("{} has no {EXTRACT_FILE}", folder.display()),
            "Run the source's connector, or remove the folder if the source is gone.",
        )],
    }
}
