//! The extract contract as data.
//!
//! [`contract_v1`] is the single definition of version 1. The checked-in `contract-v1.json` is
//! generated from it, and a test fails when the two differ, so every change to the contract shows
//! up in review as a change to that file.

use serde::{Deserialize, Serialize};

use crate::identifier::{ENV_VAR_PATTERN, IDENTIFIER_PATTERN};

/// The contract version this crate validates against.
pub const CONTRACT_VERSION: u32 = 1;

/// Name of the required table that lists every published table of an extract.
pub const META_TABLE: &str = "_meta";

/// Name of the optional table that lists external catalogs to attach.
pub const REMOTE_ATTACH_TABLE: &str = "_remote_attach";

/// File name of an extract inside its source folder.
pub const EXTRACT_FILE: &str = "extract.duckdb";

/// Folder, inside the source folder, that contains the Parquet files of `local` and `materialized`
/// tables.
pub const DATA_FOLDER: &str = "data";

/// A whole version of the extract contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Contract version number.
    pub version: u32,
    /// Regular expression that source, table, alias and extension names must match.
    pub identifier_pattern: String,
    /// Regular expression that `_remote_attach.token_env` values must match.
    pub env_var_pattern: String,
    /// File layout of one source folder.
    pub layout: Vec<LayoutEntry>,
    /// Allowed values of `_meta.query_mode`.
    pub query_modes: Vec<QueryModeSpec>,
    /// The contract's tables, in the order they are checked.
    pub tables: Vec<TableSpec>,
}

/// One path of a source folder's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutEntry {
    /// Path relative to `extracts/<source>/`.
    pub path: String,
    /// What the path holds.
    pub description: String,
}

/// One allowed `query_mode` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryModeSpec {
    /// The value as written in `_meta.query_mode`.
    pub name: String,
    /// Where the data lives in this mode.
    pub description: String,
    /// Whether the table's view must resolve offline, with nothing but the source folder.
    pub resolves_offline: bool,
}

/// One table of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Whether every extract must contain the table.
    pub required: bool,
    /// What one row means.
    pub description: String,
    /// Columns, in the required order.
    pub columns: Vec<ColumnSpec>,
}

/// One column of a contract table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Column name.
    pub name: String,
    /// DuckDB type, as `information_schema.columns.data_type` reports it.
    pub data_type: String,
    /// Other types that readers accept with a warning because they convert without loss.
    pub compatible_types: Vec<String>,
    /// Whether a value may be NULL.
    pub nullable: bool,
    /// What the column holds.
    pub description: String,
}

/// A `_meta.query_mode` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryMode {
    /// Data in `data/<table>.parquet`, a view over it.
    Local,
    /// A view over an external catalog that `_remote_attach` names.
    Remote,
    /// Data exported from a remote query into `data/<table>.parquet`, a view over it.
    Materialized,
}

impl QueryMode {
    /// Every mode, in contract order.
    pub const ALL: [QueryMode; 3] = [QueryMode::Local, QueryMode::Remote, QueryMode::Materialized];

    /// The value as written in `_meta.query_mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryMode::Local => "local",
            QueryMode::Remote => "remote",
            QueryMode::Materialized => "materialized",
        }
    }

    /// Parses a `_meta.query_mode` value; returns `None` for anything but the exact lowercase names.
    pub fn parse(value: &str) -> Option<QueryMode> {
        QueryMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
    }

    /// Whether the mode's view reads only files of the source folder, so it must resolve offline.
    pub fn resolves_offline(self) -> bool {
        !matches!(self, QueryMode::Remote)
    }
}

impl std::fmt::Display for QueryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Contract {
    /// Returns the table spec named `name`, if the contract has one.
    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|table| table.name == name)
    }

    /// Renders the contract as the pretty JSON stored in `contract-v<version>.json`.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("contract serializes");
        json.push('\n');
        json
    }
}

fn column(
    name: &str,
    data_type: &str,
    compatible: &[&str],
    nullable: bool,
    doc: &str,
) -> ColumnSpec {
    ColumnSpec {
        name: name.to_string(),
        data_type: data_type.to_string(),
        compatible_types: compatible.iter().map(|t| t.to_string()).collect(),
        nullable,
        description: doc.to_string(),
    }
}

const INTEGER_TYPES: &[&str] = &[
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
];

const TIMESTAMP_TYPES: &[&str] = &[
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "DATE",
];

/// Builds version 1 of the extract contract.
pub fn contract_v1() -> Contract {
    let meta = TableSpec {
        name: META_TABLE.to_string(),
        required: true,
        description: "One row per published table of the source.".to_string(),
        columns: vec![
            column(
                "table_name",
                "VARCHAR",
                &[],
                false,
                "Name of the view or table in this extract; an identifier, unique ignoring case.",
            ),
            column(
                "description",
                "VARCHAR",
                &[],
                true,
                "Human-readable description for the catalog.",
            ),
            column(
                "rows",
                "BIGINT",
                INTEGER_TYPES,
                true,
                "Row count at extraction time; not negative.",
            ),
            column(
                "size_bytes",
                "BIGINT",
                INTEGER_TYPES,
                true,
                "Size of the table's data files in bytes; not negative.",
            ),
            column(
                "extracted_at",
                "TIMESTAMP",
                TIMESTAMP_TYPES,
                true,
                "When the data was extracted, in UTC.",
            ),
            column(
                "query_mode",
                "VARCHAR",
                &[],
                false,
                "One of the query modes: local, remote, materialized.",
            ),
        ],
    };
    let remote_attach = TableSpec {
        name: REMOTE_ATTACH_TABLE.to_string(),
        required: false,
        description:
            "One row per external catalog that remote views read; attached read-only before \
                      the views are published."
                .to_string(),
        columns: vec![
            column(
                "alias",
                "VARCHAR",
                &[],
                false,
                "Catalog name the views use; an identifier.",
            ),
            column(
                "extension",
                "VARCHAR",
                &[],
                false,
                "DuckDB extension that attaches the catalog; an identifier.",
            ),
            column(
                "url",
                "VARCHAR",
                &[],
                false,
                "ATTACH target, without any password or token in it.",
            ),
            column(
                "token_env",
                "VARCHAR",
                &[],
                true,
                "Name of the environment variable holding the secret, never the secret; NULL or '' for none.",
            ),
        ],
    };
    Contract {
        version: CONTRACT_VERSION,
        identifier_pattern: IDENTIFIER_PATTERN.to_string(),
        env_var_pattern: ENV_VAR_PATTERN.to_string(),
        layout: vec![
            LayoutEntry {
                path: EXTRACT_FILE.to_string(),
                description: "DuckDB file with _meta, optional _remote_attach, and one view or table per _meta row."
                    .to_string(),
            },
            LayoutEntry {
                path: format!("{DATA_FOLDER}/<table>.parquet"),
                description: "Data of a local or materialized table; views read files only inside the source folder."
                    .to_string(),
            },
        ],
        query_modes: vec![
            QueryModeSpec {
                name: "local".to_string(),
                description: "Data in data/<table>.parquet inside the source folder, a view over it.".to_string(),
                resolves_offline: true,
            },
            QueryModeSpec {
                name: "remote".to_string(),
                description: "A view over an external catalog attached from a _remote_attach row.".to_string(),
                resolves_offline: false,
            },
            QueryModeSpec {
                name: "materialized".to_string(),
                description: "Result of a remote query exported to data/<table>.parquet, a view over it."
                    .to_string(),
                resolves_offline: true,
            },
        ],
        tables: vec![meta, remote_attach],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set this variable to rewrite `contract-v1.json` from the code after a deliberate change.
    const UPDATE_VAR: &str = "AGNES_UPDATE_CONTRACT";

    #[test]
    fn frozen_json_matches_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contract-v1.json");
        let generated = contract_v1().to_json();
        if std::env::var_os(UPDATE_VAR).is_some() {
            std::fs::write(&path, &generated).expect("write contract-v1.json");
        }
        let frozen = std::fs::read_to_string(&path).expect("contract-v1.json is checked in");
        assert!(
            frozen == generated,
            "contract-v1.json differs from contract_v1(); a contract change is a breaking change. \
             If it is deliberate, run `{UPDATE_VAR}=1 cargo test -p contract-spec` and commit the file."
        );
    }

    #[test]
    fn frozen_json_parses_back() {
        let frozen: Contract = serde_json::from_str(include_str!("../contract-v1.json")).unwrap();
        assert_eq!(frozen.version, 1);
        let meta: Vec<&str> = frozen
            .table(META_TABLE)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            meta,
            [
                "table_name",
                "description",
                "rows",
                "size_bytes",
                "extracted_at",
                "query_mode"
            ]
        );
        let remote: Vec<&str> = frozen
            .table(REMOTE_ATTACH_TABLE)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(remote, ["alias", "extension", "url", "token_env"]);
    }

    #[test]
    fn query_modes_parse_exactly() {
        for mode in QueryMode::ALL {
            assert_eq!(QueryMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(QueryMode::parse("LOCAL"), None);
        assert_eq!(QueryMode::parse("hybrid"), None);
        let names: Vec<String> = contract_v1()
            .query_modes
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["local", "remote", "materialized"]);
    }
}
