//! Findings and reports: what the validator returns.
//!
//! The JSON form of [`Report`] is a stable interface: codes never change meaning, and fields are
//! only ever added.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The orchestrator would publish the source, but something is off.
    Warning,
    /// The extract breaks the contract; the orchestrator skips the source or the table.
    Error,
}

impl Severity {
    /// Lowercase name, as in the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $severity:ident; )*) => {
        /// A stable finding code. Each code has one fixed severity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Code {
            $( $(#[$doc])* #[serde(rename = $code)] $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as written in reports, for example `meta.name_unsafe`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }

            /// The severity every finding with this code has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }
        }
    };
}

codes! {
    /// The path does not exist.
    FileMissing = "file.missing", Error;
    /// The file has zero bytes.
    FileEmpty = "file.empty", Error;
    /// The file is not a DuckDB database.
    FileNotDuckdb = "file.not_duckdb", Error;
    /// The file exists but DuckDB could not open it (permissions, a lock, corruption).
    FileUnreadable = "file.unreadable", Error;
    /// The source folder name is not an identifier.
    SourceNameUnsafe = "source.name_unsafe", Error;
    /// A folder under `extracts/` has no `extract.duckdb`.
    SourceNoExtract = "source.no_extract", Warning;
    /// `_meta` does not exist.
    MetaMissing = "meta.missing", Error;
    /// `_meta` lacks a contract column.
    MetaColumnMissing = "meta.column_missing", Error;
    /// `_meta` has a column the contract does not define.
    MetaColumnExtra = "meta.column_extra", Error;
    /// `_meta` has the contract columns in another order.
    MetaColumnOrder = "meta.column_order", Error;
    /// A `_meta` column has a type that cannot be read as the contract type.
    MetaColumnType = "meta.column_type", Error;
    /// A `_meta` column has a type that reads without loss but is not the contract type.
    MetaColumnTypeCompatible = "meta.column_type_compatible", Warning;
    /// A `_meta` column that must never be NULL is declared without `NOT NULL`.
    MetaColumnNullable = "meta.column_nullable", Warning;
    /// `_meta` has no rows, so the source publishes nothing.
    MetaEmpty = "meta.empty", Warning;
    /// A `_meta` row has a NULL `table_name`.
    MetaNameNull = "meta.name_null", Error;
    /// A `_meta.table_name` is not an identifier.
    MetaNameUnsafe = "meta.name_unsafe", Error;
    /// A `_meta.table_name` names one of the contract's own tables.
    MetaNameReserved = "meta.name_reserved", Error;
    /// Two `_meta` rows have the same `table_name`.
    MetaNameDuplicate = "meta.name_duplicate", Error;
    /// Two `_meta` rows have names equal up to case, which DuckDB treats as one name.
    MetaNameCaseDuplicate = "meta.name_case_duplicate", Error;
    /// A `_meta.query_mode` is NULL or not one of the contract's modes.
    MetaQueryModeUnknown = "meta.query_mode_unknown", Error;
    /// A `_meta.rows` value is negative.
    MetaRowsNegative = "meta.rows_negative", Error;
    /// A `_meta.size_bytes` value is negative.
    MetaSizeNegative = "meta.size_negative", Error;
    /// A `remote` row exists but the extract has no `_remote_attach` row to attach its catalog.
    MetaRemoteWithoutAttach = "meta.remote_without_attach", Error;
    /// A `_meta` row has no view or table of that name.
    TableMissing = "table.missing", Error;
    /// A view exists but querying it fails.
    TableUnresolved = "table.unresolved", Error;
    /// A view reads a file or URL outside its own source folder.
    TableFileOutsideSource = "table.file_outside_source", Error;
    /// A view reads a file inside the source folder that does not exist.
    TableFileMissing = "table.file_missing", Error;
    /// A view reads a file by a relative path, which depends on the reader's working directory.
    TableFileRelative = "table.file_relative", Error;
    /// `_remote_attach` lacks a contract column.
    RemoteAttachColumnMissing = "remote_attach.column_missing", Error;
    /// `_remote_attach` has a column the contract does not define.
    RemoteAttachColumnExtra = "remote_attach.column_extra", Error;
    /// `_remote_attach` has the contract columns in another order.
    RemoteAttachColumnOrder = "remote_attach.column_order", Error;
    /// A `_remote_attach` column has a type that cannot be read as the contract type.
    RemoteAttachColumnType = "remote_attach.column_type", Error;
    /// A `_remote_attach.alias` is NULL or not an identifier.
    RemoteAttachAliasUnsafe = "remote_attach.alias_unsafe", Error;
    /// Two `_remote_attach` rows use the same alias (ignoring case).
    RemoteAttachAliasDuplicate = "remote_attach.alias_duplicate", Error;
    /// A `_remote_attach.alias` equals the source name, which the extract itself is attached as.
    RemoteAttachAliasSourceCollision = "remote_attach.alias_source_collision", Error;
    /// A `_remote_attach.extension` is NULL or not an identifier.
    RemoteAttachExtensionUnsafe = "remote_attach.extension_unsafe", Error;
    /// A `_remote_attach.url` is NULL or empty.
    RemoteAttachUrlMissing = "remote_attach.url_missing", Error;
    /// A `_remote_attach.url` carries a password or token.
    RemoteAttachUrlSecret = "remote_attach.url_secret", Error;
    /// A `_remote_attach.token_env` is not an environment-variable name; it may be a literal secret.
    RemoteAttachTokenEnvInvalid = "remote_attach.token_env_invalid", Error;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in an extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code.
    pub code: Code,
    /// Severity of the code.
    pub severity: Severity,
    /// Table or view the finding concerns, when there is one (`_meta`, `_remote_attach`, or a
    /// published table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// One-based position of the row in `_meta` or `_remote_attach`, when the finding concerns a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// Column the finding concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl Finding {
    /// Creates a finding with the code's severity and no location.
    pub fn new(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            code,
            severity: code.severity(),
            table: None,
            row: None,
            column: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Sets the table the finding concerns.
    pub fn in_table(mut self, table: impl Into<String>) -> Finding {
        self.table = Some(table.into());
        self
    }

    /// Sets the one-based row the finding concerns.
    pub fn at_row(mut self, row: u64) -> Finding {
        self.row = Some(row);
        self
    }

    /// Sets the column the finding concerns.
    pub fn in_column(mut self, column: impl Into<String>) -> Finding {
        self.column = Some(column.into());
        self
    }

    /// Where the finding is, for example `_meta row 3` or `orders`; empty when it concerns the file.
    pub fn location(&self) -> String {
        let mut parts = Vec::new();
        if let Some(table) = &self.table {
            parts.push(table.clone());
        }
        if let Some(row) = self.row {
            parts.push(format!("row {row}"));
        }
        if let Some(column) = &self.column {
            parts.push(format!("column {column}"));
        }
        parts.join(" ")
    }
}

/// Everything the validator found in one extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Path of the validated file, as given.
    pub path: PathBuf,
    /// Source name: the name of the folder that contains the file.
    pub source: String,
    /// Contract version the file was checked against.
    pub contract_version: u32,
    /// Names from `_meta` that passed every table-level check.
    pub tables: Vec<String>,
    /// Every finding, in the order the checks ran.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of findings with severity error.
    pub fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Number of findings with severity warning.
    pub fn warning_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    /// True when the extract has no error findings.
    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }

    /// Returns true when some finding has `code`.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// Codes of the error findings, in order.
    pub fn error_codes(&self) -> Vec<Code> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.code)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_unique_and_namespaced() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            let prefix = code.as_str().split('.').next().unwrap();
            assert!(
                ["file", "source", "meta", "table", "remote_attach"].contains(&prefix),
                "{code}"
            );
        }
    }

    #[test]
    fn every_code_documented() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/contract.md");
        let doc = std::fs::read_to_string(&path).expect("docs/contract.md exists");
        for code in Code::ALL {
            let row = format!("| `{code}` | {} |", code.severity().as_str());
            assert!(doc.contains(&row), "docs/contract.md has no row {row}");
        }
    }

    #[test]
    fn code_serializes_as_string() {
        let json = serde_json::to_string(&Code::MetaNameUnsafe).unwrap();
        assert_eq!(json, "\"meta.name_unsafe\"");
        let back: Code = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Code::MetaNameUnsafe);
    }

    #[test]
    fn finding_location_reads() {
        let finding = Finding::new(Code::MetaRowsNegative, "m", "h")
            .in_table("_meta")
            .at_row(3)
            .in_column("rows");
        assert_eq!(finding.location(), "_meta row 3 column rows");
        assert_eq!(finding.severity, Severity::Error);
    }
}
