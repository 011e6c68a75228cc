//! Checks of `_meta`: its columns, every row, and the view or table each row names.

use std::collections::HashMap;

use crate::finding::{Code, Finding};
use crate::identifier::{identifier_problem, suggest_identifier};
use crate::spec::{META_TABLE, QueryMode, REMOTE_ATTACH_TABLE, contract_v1};

use super::columns::{self, ColumnCodes};
use super::files;
use super::inspect::Inspector;

/// What the `_meta` checks found that later checks need.
#[derive(Debug, Default)]
pub(crate) struct MetaOutcome {
    /// Names that passed every table-level check, in `_meta` order.
    pub published: Vec<String>,
    /// Whether any row has query mode `remote`.
    pub has_remote_rows: bool,
}

/// One `_meta` row, read with lenient casts so a wrong column type does not hide the rows.
struct MetaRow {
    number: u64,
    name: Option<String>,
    rows: Option<i64>,
    size_bytes: Option<i64>,
    query_mode: Option<String>,
}

const CODES: ColumnCodes = ColumnCodes {
    missing: Code::MetaColumnMissing,
    extra: Code::MetaColumnExtra,
    order: Code::MetaColumnOrder,
    wrong_type: Code::MetaColumnType,
    compatible_type: Some(Code::MetaColumnTypeCompatible),
    nullable: Some(Code::MetaColumnNullable),
};

/// Checks `_meta` and the objects it names, pushing findings; returns what later checks need.
pub(crate) fn check(inspector: &Inspector, findings: &mut Vec<Finding>) -> MetaOutcome {
    let contract = contract_v1();
    let spec = contract.table(META_TABLE).expect("contract defines _meta");

    let columns = match inspector.columns(META_TABLE) {
        Ok(Some(columns)) => columns,
        Ok(None) => {
            findings.push(
                Finding::new(
                    Code::MetaMissing,
                    "the extract has no _meta table",
                    "Create it: CREATE TABLE _meta (table_name VARCHAR NOT NULL, description VARCHAR, \
                     rows BIGINT, size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR NOT NULL), \
                     then insert one row per published table.",
                )
                .in_table(META_TABLE),
            );
            return MetaOutcome::default();
        }
        Err(error) => {
            findings.push(unresolved_meta(&error.to_string()));
            return MetaOutcome::default();
        }
    };
    columns::check(spec, &columns, &CODES, findings);

    let present: Vec<String> = columns.iter().map(|c| c.name.to_lowercase()).collect();
    let rows = match read_rows(inspector, &present) {
        Ok(rows) => rows,
        Err(error) => {
            findings.push(unresolved_meta(&error.to_string()));
            return MetaOutcome::default();
        }
    };
    if rows.is_empty() {
        findings.push(
            Finding::new(
                Code::MetaEmpty,
                "_meta has no rows, so the source publishes no tables",
                "Insert one _meta row per table the connector wrote.",
            )
            .in_table(META_TABLE),
        );
    }

    let objects = match inspector.objects() {
        Ok(objects) => objects,
        Err(error) => {
            findings.push(unresolved_meta(&error.to_string()));
            return MetaOutcome::default();
        }
    };

    let mut outcome = MetaOutcome::default();
    let mut first_by_name: HashMap<String, u64> = HashMap::new();
    let mut first_by_folded: HashMap<String, (u64, String)> = HashMap::new();
    for row in &rows {
        let errors_before = error_count(findings);
        let mode = check_values(row, &present, findings);
        if mode == Some(QueryMode::Remote) {
            outcome.has_remote_rows = true;
        }

        let Some(name) = &row.name else { continue };
        if let Some(first) = first_by_name.get(name) {
            findings.push(
                Finding::new(
                    Code::MetaNameDuplicate,
                    format!(
                        "_meta rows {first} and {} both name table {name:?}",
                        row.number
                    ),
                    "Keep one _meta row per table; delete the duplicate row.",
                )
                .in_table(META_TABLE)
                .at_row(row.number)
                .in_column("table_name"),
            );
            continue;
        }
        first_by_name.insert(name.clone(), row.number);
        let folded = name.to_lowercase();
        if let Some((first, other)) = first_by_folded.get(&folded) {
            findings.push(
                Finding::new(
                    Code::MetaNameCaseDuplicate,
                    format!(
                        "_meta row {} names {name:?} and row {first} names {other:?}; DuckDB names ignore \
                         case, so both refer to one table",
                        row.number
                    ),
                    "Give the tables names that differ by more than case, or delete one row.",
                )
                .in_table(META_TABLE)
                .at_row(row.number)
                .in_column("table_name"),
            );
            continue;
        }
        first_by_folded.insert(folded.clone(), (row.number, name.clone()));

        match objects.get(&folded) {
            None => findings.push(
                Finding::new(
                    Code::TableMissing,
                    format!("_meta row {} names {name:?} but the extract has no view or table of that name", row.number),
                    format!(
                        "Create the view in the extract, for example CREATE VIEW {} AS SELECT * FROM \
                         read_parquet('<absolute path of the source folder>/data/{name}.parquet'), or delete the row.",
                        crate::identifier::quote_identifier(name)
                    ),
                )
                .in_table(name.as_str())
                .at_row(row.number),
            ),
            Some(object) => {
                let file_problems = if object.is_view {
                    files::check_view(inspector, &object.name, findings)
                } else {
                    0
                };
                let offline = mode.is_some_and(QueryMode::resolves_offline);
                if file_problems == 0 && offline {
                    check_resolves(inspector, name, row.number, findings);
                }
            }
        }

        if error_count(findings) == errors_before {
            outcome.published.push(name.clone());
        }
    }
    outcome
}

/// Checks the values of one row; returns its query mode when valid.
fn check_values(
    row: &MetaRow,
    present: &[String],
    findings: &mut Vec<Finding>,
) -> Option<QueryMode> {
    let at = |finding: Finding, column: &str| {
        finding
            .in_table(META_TABLE)
            .at_row(row.number)
            .in_column(column)
    };

    match &row.name {
        None if present.iter().any(|c| c == "table_name") => findings.push(at(
            Finding::new(
                Code::MetaNameNull,
                format!("_meta row {} has a NULL table_name", row.number),
                "Write the table's name into table_name, or delete the row.",
            ),
            "table_name",
        )),
        None => {}
        Some(name) => {
            if let Some(problem) = identifier_problem(name) {
                findings.push(at(
                    Finding::new(
                        Code::MetaNameUnsafe,
                        format!("table name {name:?} {problem}"),
                        format!(
                            "Use letters, digits and underscores, starting with a letter or underscore, at \
                             most 64 characters; for example {:?}. Rename the view too.",
                            suggest_identifier(name)
                        ),
                    ),
                    "table_name",
                ));
            }
            let lowered = name.to_lowercase();
            if lowered == META_TABLE || lowered == REMOTE_ATTACH_TABLE {
                findings.push(at(
                    Finding::new(
                        Code::MetaNameReserved,
                        format!("table name {name:?} is reserved for the contract's own table"),
                        "Choose another name for the published table.",
                    ),
                    "table_name",
                ));
            }
        }
    }

    if let Some(rows) = row.rows.filter(|rows| *rows < 0) {
        findings.push(at(
            Finding::new(
                Code::MetaRowsNegative,
                format!("_meta row {} has rows = {rows}", row.number),
                "Write the table's row count (0 or more), or NULL when unknown.",
            ),
            "rows",
        ));
    }
    if let Some(size) = row.size_bytes.filter(|size| *size < 0) {
        findings.push(at(
            Finding::new(
                Code::MetaSizeNegative,
                format!("_meta row {} has size_bytes = {size}", row.number),
                "Write the size of the table's files in bytes (0 or more), or NULL when unknown.",
            ),
            "size_bytes",
        ));
    }

    if !present.iter().any(|c| c == "query_mode") {
        return None;
    }
    let mode = row.query_mode.as_deref().and_then(QueryMode::parse);
    if mode.is_none() {
        let shown = match &row.query_mode {
            None => "NULL".to_string(),
            Some(value) => format!("{value:?}"),
        };
        findings.push(at(
            Finding::new(
                Code::MetaQueryModeUnknown,
                format!("_meta row {} has query_mode {shown}", row.number),
                "Write one of 'local', 'remote' or 'materialized' (lowercase).",
            ),
            "query_mode",
        ));
    }
    mode
}

fn check_resolves(inspector: &Inspector, name: &str, row: u64, findings: &mut Vec<Finding>) {
    if let Err(message) = inspector.resolve(name) {
        findings.push(
            Finding::new(
                Code::TableUnresolved,
                format!("querying {name:?} fails: {message}"),
                "Fix the view so `SELECT * FROM <source>.<table>` works with only the extract attached; \
                 it may read files of its own source folder only.",
            )
            .in_table(name)
            .at_row(row),
        );
    }
}

/// Reads every `_meta` row, selecting NULL in place of a missing column.
fn read_rows(inspector: &Inspector, present: &[String]) -> duckdb::Result<Vec<MetaRow>> {
    let pick = |column: &str, cast: &str| {
        if present.iter().any(|c| c == column) {
            format!(
                "TRY_CAST({} AS {cast})",
                crate::identifier::quote_identifier(column)
            )
        } else {
            format!("NULL::{cast}")
        }
    };
    let select = [
        pick("table_name", "VARCHAR"),
        pick("rows", "BIGINT"),
        pick("size_bytes", "BIGINT"),
        pick("query_mode", "VARCHAR"),
    ]
    .join(", ");
    let mut number = 0;
    inspector.rows(&select, META_TABLE, |row| {
        number += 1;
        Ok(MetaRow {
            number,
            name: row.get(0)?,
            rows: row.get(1)?,
            size_bytes: row.get(2)?,
            query_mode: row.get(3)?,
        })
    })
}

fn unresolved_meta(detail: &str) -> Finding {
    Finding::new(
        Code::TableUnresolved,
        format!("reading _meta fails: {detail}"),
        "Recreate _meta as a plain table with the contract columns.",
    )
    .in_table(META_TABLE)
}

fn error_count(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.severity == crate::finding::Severity::Error)
        .count()
}
