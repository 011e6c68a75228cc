//! The local files connector: one table per CSV, TSV, Parquet, JSON or NDJSON file of a folder.
//!
//! Table names come from file names by [`table_name_for`](super::table_name_for) after the
//! format's extensions are cut off (`Flight Data.csv.gz` becomes `flight_data`). Two files that map
//! to one name are both left out, with a problem naming both. DuckDB's CSV sniffer infers column
//! types, and `NA`, `NULL` and empty fields read as NULL, so a numeric column with missing values
//! stays numeric.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use contract_spec::QueryMode;
use contract_spec::identifier::quote_literal;

use super::{
    Connector, DiscoveredTable, Discovery, ExtractOutcome, SelectedTable, TableProgress,
    table_name_for,
};
use crate::error::{Error, Result};
use crate::extract::ExtractWriter;

/// Strings read as NULL in CSV and TSV files.
pub const NULL_MARKERS: &[&str] = &["NA", "NULL", ""];

/// File formats the connector reads, by the extension that marks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Parquet,
    Json,
}

/// Extensions recognised, longest first so `.csv.gz` wins over `.gz`.
const EXTENSIONS: &[(&str, Format)] = &[
    (".csv.gz", Format::Csv),
    (".csv.zst", Format::Csv),
    (".tsv.gz", Format::Csv),
    (".ndjson.gz", Format::Json),
    (".jsonl.gz", Format::Json),
    (".json.gz", Format::Json),
    (".csv", Format::Csv),
    (".tsv", Format::Csv),
    (".parquet", Format::Parquet),
    (".ndjson", Format::Json),
    (".jsonl", Format::Json),
    (".json", Format::Json),
];

/// A folder of data files.
#[derive(Debug, Clone)]
pub struct FilesConnector {
    folder: PathBuf,
}

impl FilesConnector {
    /// Creates a connector over `folder`.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
        }
    }

    /// Maps every data file of the folder to its table name; collisions become problems.
    fn scan(&self) -> Result<(BTreeMap<String, PathBuf>, Vec<String>)> {
        let entries = std::fs::read_dir(&self.folder).map_err(|e| {
            Error::invalid("source.folder_unreadable", format!("cannot read the folder {}: {e}", self.folder.display()))
                .with_hint("Set the source's path to an existing folder the server can read (POST /api/admin/configure).")
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();

        let mut by_name: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let mut problems = Vec::new();
        for file in files {
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((stem, _)) = split_extension(&file_name) else {
                continue;
            };
            match table_name_for(stem) {
                Some(name) => by_name.entry(name).or_default().push(file),
                None => problems.push(format!("{file_name}: no table name can be made from it; rename the file to start with a letter")),
            }
        }

        let mut tables = BTreeMap::new();
        for (name, files) in by_name {
            if files.len() == 1 {
                tables.insert(name, files.into_iter().next().expect("one file"));
            } else {
                let names: Vec<String> = files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                problems.push(format!(
                    "files {} all map to table name {name}; rename all but one so their names differ",
                    names.join(" and ")
                ));
            }
        }
        Ok((tables, problems))
    }
}

fn split_extension(file_name: &str) -> Option<(&str, Format)> {
    let lowered = file_name.to_lowercase();
    EXTENSIONS
        .iter()
        .find(|(ext, _)| lowered.ends_with(ext) && lowered.len() > ext.len())
        .map(|(ext, format)| (&file_name[..file_name.len() - ext.len()], *format))
}

/// The SELECT that reads `file` in its format.
fn read_sql(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_string_lossy().into_owned();
    let (_, format) = split_extension(&name)?;
    let path = quote_literal(&file.to_string_lossy());
    Some(match format {
        Format::Csv => {
            let markers: Vec<String> = NULL_MARKERS.iter().map(|m| quote_literal(m)).collect();
            format!(
                "SELECT * FROM read_csv({path}, nullstr = [{}])",
                markers.join(", ")
            )
        }
        Format::Parquet => format!("SELECT * FROM read_parquet({path})"),
        Format::Json => format!("SELECT * FROM read_json({path})"),
    })
}

impl Connector for FilesConnector {
    fn kind(&self) -> &'static str {
        "files"
    }

    fn discover(&self) -> Result<Discovery> {
        let (tables, problems) = self.scan()?;
        let tables = tables
            .into_iter()
            .map(|(name, file)| {
                let file_name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                DiscoveredTable {
                    name,
                    description: format!("Data from {file_name}"),
                    source_table: file_name,
                    query_mode: QueryMode::Local,
                }
            })
            .collect();
        Ok(Discovery { tables, problems })
    }

    fn extract(
        &self,
        writer: &mut ExtractWriter,
        tables: &[SelectedTable],
        progress: &mut dyn FnMut(TableProgress),
    ) -> Result<ExtractOutcome> {
        if !self.folder.is_dir() {
            return Err(Error::invalid(
                "source.folder_unreadable",
                format!("the folder {} does not exist", self.folder.display()),
            )
            .with_hint("Create the folder or configure the source with another path."));
        }
        let mut outcome = ExtractOutcome::default();
        for (done, table) in tables.iter().enumerate() {
            progress(TableProgress {
                table: table.name.clone(),
                done,
                total: tables.len(),
            });
            let file = self.folder.join(&table.source_table);
            if file.parent() != Some(self.folder.as_path()) || !file.is_file() {
                outcome.failed.push((
                    table.name.clone(),
                    format!(
                        "file {} is not in {}",
                        table.source_table,
                        self.folder.display()
                    ),
                ));
                continue;
            }
            let Some(select) = read_sql(&file) else {
                outcome.failed.push((
                    table.name.clone(),
                    format!(
                        "{} is not a CSV, TSV, Parquet or JSON file",
                        table.source_table
                    ),
                ));
                continue;
            };
            if let Err(error) =
                writer.add_parquet_table(&table.name, &select, &table.description, QueryMode::Local)
            {
                tracing::warn!(table = %table.name, %error, "cannot extract a file");
                outcome.failed.push((table.name.clone(), error.message));
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_split() {
        assert_eq!(
            split_extension("flights.csv"),
            Some(("flights", Format::Csv))
        );
        assert_eq!(
            split_extension("Flights.CSV.gz"),
            Some(("Flights", Format::Csv))
        );
        assert_eq!(
            split_extension("events.jsonl"),
            Some(("events", Format::Json))
        );
        assert_eq!(split_extension("notes.txt"), None);
        assert_eq!(split_extension(".csv"), None);
    }

    #[test]
    fn collisions_name_both_files() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["orders.csv", "Orders.parquet", "lines.csv", "readme.md"] {
            std::fs::write(dir.path().join(file), "a\n1\n").unwrap();
        }
        let discovery = FilesConnector::new(dir.path()).discover().unwrap();
        let names: Vec<&str> = discovery.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["lines"]);
        assert_eq!(discovery.problems.len(), 1);
        assert!(
            discovery.problems[0].contains("Orders.parquet and orders.csv"),
            "{:?}",
            discovery.problems
        );
    }
}
