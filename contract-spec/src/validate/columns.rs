//! Column checks shared by `_meta` and `_remote_attach`: names, order, types and nullability.

use crate::finding::{Code, Finding};
use crate::spec::TableSpec;

use super::inspect::ColumnInfo;

/// The finding codes of one contract table's column checks.
pub(crate) struct ColumnCodes {
    pub missing: Code,
    pub extra: Code,
    pub order: Code,
    pub wrong_type: Code,
    /// `None` where a compatible type is reported as a wrong type.
    pub compatible_type: Option<Code>,
    /// `None` where undeclared `NOT NULL` is not reported.
    pub nullable: Option<Code>,
}

/// Compares `actual` columns with `spec` and pushes one finding per problem.
pub(crate) fn check(
    spec: &TableSpec,
    actual: &[ColumnInfo],
    codes: &ColumnCodes,
    findings: &mut Vec<Finding>,
) {
    let table = spec.name.as_str();
    let expected: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let present: Vec<String> = actual.iter().map(|c| c.name.to_lowercase()).collect();

    for column in &spec.columns {
        if !present.contains(&column.name) {
            findings.push(
                Finding::new(
                    codes.missing,
                    format!("{table} has no column {}", column.name),
                    format!(
                        "Create {table} with exactly these columns, in this order: {}.",
                        ddl(spec)
                    ),
                )
                .in_table(table)
                .in_column(&column.name),
            );
        }
    }
    for column in actual {
        if !expected.contains(&column.name.to_lowercase().as_str()) {
            findings.push(
                Finding::new(
                    codes.extra,
                    format!(
                        "{table} has column {} that the contract does not define",
                        column.name
                    ),
                    format!(
                        "Drop the column; {table} has exactly these columns: {}.",
                        ddl(spec)
                    ),
                )
                .in_table(table)
                .in_column(&column.name),
            );
        }
    }

    let known_in_actual_order: Vec<&str> = present
        .iter()
        .map(String::as_str)
        .filter(|name| expected.contains(name))
        .collect();
    let known_in_spec_order: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|name| present.iter().any(|p| p == name))
        .collect();
    if known_in_actual_order != known_in_spec_order {
        findings.push(
            Finding::new(
                codes.order,
                format!(
                    "{table} columns are in the order {}, the contract order is {}",
                    known_in_actual_order.join(", "),
                    known_in_spec_order.join(", ")
                ),
                format!(
                    "Recreate {table} with the columns in contract order: {}.",
                    ddl(spec)
                ),
            )
            .in_table(table),
        );
    }

    for column_spec in &spec.columns {
        let Some(column) = actual
            .iter()
            .find(|c| c.name.to_lowercase() == column_spec.name)
        else {
            continue;
        };
        check_type(table, column_spec, column, codes, findings);
        if let Some(code) = codes.nullable
            && !column_spec.nullable
            && column.nullable
        {
            findings.push(
                Finding::new(
                    code,
                    format!("{table}.{} is declared without NOT NULL", column_spec.name),
                    format!(
                        "Declare it `{} {} NOT NULL` so DuckDB rejects a missing value when the connector writes it.",
                        column_spec.name, column_spec.data_type
                    ),
                )
                .in_table(table)
                .in_column(&column_spec.name),
            );
        }
    }
}

fn check_type(
    table: &str,
    spec: &crate::spec::ColumnSpec,
    column: &ColumnInfo,
    codes: &ColumnCodes,
    findings: &mut Vec<Finding>,
) {
    let actual = column.data_type.to_uppercase();
    if actual == spec.data_type {
        return;
    }
    let compatible = spec.compatible_types.contains(&actual);
    let code = match (compatible, codes.compatible_type) {
        (true, Some(code)) => code,
        _ => codes.wrong_type,
    };
    findings.push(
        Finding::new(
            code,
            format!(
                "{table}.{} has type {}, the contract type is {}",
                spec.name, column.data_type, spec.data_type
            ),
            format!("Declare the column as `{} {}`.", spec.name, spec.data_type),
        )
        .in_table(table)
        .in_column(&spec.name),
    );
}

/// Renders the contract columns of `spec` as a column list for hints.
fn ddl(spec: &TableSpec) -> String {
    spec.columns
        .iter()
        .map(|c| {
            if c.nullable {
                format!("{} {}", c.name, c.data_type)
            } else {
                format!("{} {} NOT NULL", c.name, c.data_type)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
