//! Checks of the optional `_remote_attach` table.
//!
//! No finding ever repeats a `url` or an invalid `token_env` value, because either may be a secret
//! that a connector wrote by mistake.

use std::collections::HashMap;

use crate::finding::{Code, Finding};
use crate::identifier::{identifier_problem, is_env_var_name};
use crate::spec::{REMOTE_ATTACH_TABLE, contract_v1};

use super::columns::{self, ColumnCodes};
use super::inspect::{Inspector, is_reserved_catalog};

const CODES: ColumnCodes = ColumnCodes {
    missing: Code::RemoteAttachColumnMissing,
    extra: Code::RemoteAttachColumnExtra,
    order: Code::RemoteAttachColumnOrder,
    wrong_type: Code::RemoteAttachColumnType,
    compatible_type: None,
    nullable: None,
};

struct AttachRow {
    number: u64,
    alias: Option<String>,
    extension: Option<String>,
    url: Option<String>,
    token_env: Option<String>,
}

/// Checks `_remote_attach` when the extract has one; returns its number of rows.
pub(crate) fn check(inspector: &Inspector, source: &str, findings: &mut Vec<Finding>) -> usize {
    let contract = contract_v1();
    let spec = contract
        .table(REMOTE_ATTACH_TABLE)
        .expect("contract defines _remote_attach");
    let Ok(Some(columns)) = inspector.columns(REMOTE_ATTACH_TABLE) else {
        return 0;
    };
    columns::check(spec, &columns, &CODES, findings);

    let present: Vec<String> = columns.iter().map(|c| c.name.to_lowercase()).collect();
    let pick = |column: &str| {
        if present.iter().any(|c| c == column) {
            format!(
                "TRY_CAST({} AS VARCHAR)",
                crate::identifier::quote_identifier(column)
            )
        } else {
            "NULL::VARCHAR".to_string()
        }
    };
    let select = [
        pick("alias"),
        pick("extension"),
        pick("url"),
        pick("token_env"),
    ]
    .join(", ");
    let mut number = 0;
    let rows = inspector.rows(&select, REMOTE_ATTACH_TABLE, |row| {
        number += 1;
        Ok(AttachRow {
            number,
            alias: row.get(0)?,
            extension: row.get(1)?,
            url: row.get(2)?,
            token_env: row.get(3)?,
        })
    });
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            findings.push(
                Finding::new(
                    Code::TableUnresolved,
                    format!("reading _remote_attach fails: {error}"),
                    "Recreate _remote_attach as a plain table with the contract columns.",
                )
                .in_table(REMOTE_ATTACH_TABLE),
            );
            return 0;
        }
    };

    let mut aliases: HashMap<String, u64> = HashMap::new();
    for row in &rows {
        check_alias(row, source, &mut aliases, findings);
        check_extension(row, findings);
        check_url(row, findings);
        check_token_env(row, findings);
    }
    rows.len()
}

fn at(finding: Finding, row: &AttachRow, column: &str) -> Finding {
    finding
        .in_table(REMOTE_ATTACH_TABLE)
        .at_row(row.number)
        .in_column(column)
}

fn check_alias(
    row: &AttachRow,
    source: &str,
    seen: &mut HashMap<String, u64>,
    findings: &mut Vec<Finding>,
) {
    let hint = "Use a catalog alias of letters, digits and underscores (at most 64 characters) that is \
                not the source name and not main, memory, system or temp; the remote views must use the same alias.";
    let Some(alias) = &row.alias else {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachAliasUnsafe,
                format!("_remote_attach row {} has a NULL alias", row.number),
                hint,
            ),
            row,
            "alias",
        ));
        return;
    };
    let problem = identifier_problem(alias).or_else(|| {
        is_reserved_catalog(alias).then(|| "is a catalog name DuckDB reserves".to_string())
    });
    if let Some(problem) = problem {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachAliasUnsafe,
                format!("alias {alias:?} {problem}"),
                hint,
            ),
            row,
            "alias",
        ));
        return;
    }
    let folded = alias.to_lowercase();
    if folded == source.to_lowercase() {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachAliasSourceCollision,
                format!("alias {alias:?} is the source name, which the extract itself is attached as"),
                "Choose another alias, for example the extension name, and use it in the remote views.",
            ),
            row,
            "alias",
        ));
    }
    if let Some(first) = seen.get(&folded) {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachAliasDuplicate,
                format!(
                    "_remote_attach rows {first} and {} both use alias {alias:?}",
                    row.number
                ),
                "Give every attached catalog its own alias, or delete the duplicate row.",
            ),
            row,
            "alias",
        ));
    } else {
        seen.insert(folded, row.number);
    }
}

fn check_extension(row: &AttachRow, findings: &mut Vec<Finding>) {
    let problem = match &row.extension {
        None => Some("is NULL".to_string()),
        Some(extension) => {
            identifier_problem(extension).map(|problem| format!("{extension:?} {problem}"))
        }
    };
    if let Some(problem) = problem {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachExtensionUnsafe,
                format!("_remote_attach row {} extension {problem}", row.number),
                "Write the DuckDB extension name, for example postgres or sqlite.",
            ),
            row,
            "extension",
        ));
    }
}

fn check_url(row: &AttachRow, findings: &mut Vec<Finding>) {
    let url = row.url.as_deref().unwrap_or_default();
    if url.trim().is_empty() {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachUrlMissing,
                format!("_remote_attach row {} has no url", row.number),
                "Write the ATTACH target, for example 'host=db.internal dbname=sales user=agnes' for postgres.",
            ),
            row,
            "url",
        ));
        return;
    }
    if carries_secret(url) {
        findings.push(at(
            Finding::new(
                Code::RemoteAttachUrlSecret,
                format!("_remote_attach row {} url contains a password or token (value not shown)", row.number),
                "Remove the secret from the url, put it in an environment variable of the server, and write \
                 that variable's name into token_env.",
            ),
            row,
            "url",
        ));
    }
}

fn check_token_env(row: &AttachRow, findings: &mut Vec<Finding>) {
    let Some(value) = row.token_env.as_deref().filter(|value| !value.is_empty()) else {
        return;
    };
    if is_env_var_name(value) {
        return;
    }
    findings.push(at(
        Finding::new(
            Code::RemoteAttachTokenEnvInvalid,
            format!(
                "_remote_attach row {} token_env is not an environment-variable name; it may be a literal \
                 secret, so its value ({} characters) is not shown",
                row.number,
                value.chars().count()
            ),
            "Write the NAME of the environment variable that holds the secret (for example PG_PASSWORD), \
             never the secret itself; if a secret was written, rotate it.",
        ),
        row,
        "token_env",
    ));
}

/// Recognizes a password in a URI's user part (`scheme://user:password@host`) and secret-bearing
/// keys of libpq strings and query parameters.
fn carries_secret(url: &str) -> bool {
    if let Some(rest) = url.split_once("://").map(|(_, rest)| rest) {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((user_info, _)) = authority.rsplit_once('@')
            && user_info.contains(':')
        {
            return true;
        }
    }
    let lowered = url.to_lowercase();
    [
        "password=",
        "passwd=",
        "token=",
        "secret=",
        "access_key",
        "api_key=",
    ]
    .iter()
    .any(|key| lowered.contains(key))
}

#[cfg(test)]
mod tests {
    use super::carries_secret;

    #[test]
    fn secrets_in_urls_detected() {
        assert!(carries_secret("postgresql://agnes:hunter2@db/sales"));
        assert!(carries_secret("host=db dbname=sales password=hunter2"));
        assert!(carries_secret("https://x.example/?access_token=abc"));
        assert!(!carries_secret("postgresql://agnes@db/sales"));
        assert!(!carries_secret("host=db dbname=sales user=agnes"));
        assert!(!carries_secret("project=my-project"));
    }
}
