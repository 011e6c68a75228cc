//! Connectors: what a data source offers, and how its tables get into an extract.
//!
//! A built-in connector implements [`Connector`]: [`Connector::discover`] lists the tables the
//! source offers, and [`Connector::extract`] writes the registered ones into an
//! [`ExtractWriter`](crate::extract::ExtractWriter). The sync job then validates and publishes
//! the written version, so a connector never has to handle swapping or rollback. Custom connectors
//! ([`custom`]) are programs that write the extract themselves. [`built_in`] describes the
//! built-in connectors and their configuration fields as data, for forms and the CLI.

pub mod built_in;
pub mod custom;
pub mod files;
pub mod postgres;

use contract_spec::QueryMode;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::extract::ExtractWriter;

/// A table a source offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiscoveredTable {
    /// Name to publish it under; an identifier.
    pub name: String,
    /// The table as the source names it: a file name or `schema.table`.
    pub source_table: String,
    /// Query mode the connector would use.
    #[schema(value_type = String)]
    pub query_mode: QueryMode,
    /// Description for the catalog.
    pub description: String,
}

/// What discovery found: the tables, and the problems that kept other tables out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Tables the source offers.
    pub tables: Vec<DiscoveredTable>,
    /// One message per table that could not be offered, naming the value and the fix.
    pub problems: Vec<String>,
}

/// A registered table that a sync extracts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedTable {
    /// Published name.
    pub name: String,
    /// The table as the source names it.
    pub source_table: String,
    /// Query mode.
    pub query_mode: QueryMode,
    /// Description for the catalog.
    pub description: String,
}

/// Progress reported while extracting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProgress {
    /// Table being worked on.
    pub table: String,
    /// Tables finished so far, this one excluded.
    pub done: usize,
    /// Tables in this run.
    pub total: usize,
}

/// Per-table failures of one extract run; the other tables were written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractOutcome {
    /// `(table, message)` for every table that failed.
    pub failed: Vec<(String, String)>,
}

/// A built-in connector.
pub trait Connector: Send + Sync {
    /// Connector type, as in the source configuration (`files`, `postgres`).
    fn kind(&self) -> &'static str;

    /// Lists the tables the source offers.
    ///
    /// Fails when the source cannot be reached at all (a missing folder, a refused connection).
    fn discover(&self) -> Result<Discovery>;

    /// Writes `tables` into `writer`, reporting each table as it starts.
    ///
    /// A table that fails is recorded in the outcome and the others are still written; this
    /// fails only when the source cannot be reached at all.
    fn extract(
        &self,
        writer: &mut ExtractWriter,
        tables: &[SelectedTable],
        progress: &mut dyn FnMut(TableProgress),
    ) -> Result<ExtractOutcome>;
}

/// Turns a file or table name into a table name: lowercase, every run of other characters
/// replaced by `_`, no leading or trailing `_`, a `t_` prefix before a leading digit, at most 64
/// characters. Returns `None` when nothing usable is left.
pub fn table_name_for(raw: &str) -> Option<String> {
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_string();
    if name.is_empty() {
        return None;
    }
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{name}")
    } else {
        name
    };
    Some(
        name.chars()
            .take(64)
            .collect::<String>()
            .trim_end_matches('_')
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::table_name_for;

    #[test]
    fn names_follow_the_rule() {
        assert_eq!(table_name_for("flights").as_deref(), Some("flights"));
        assert_eq!(
            table_name_for("Flight Data (2013)").as_deref(),
            Some("flight_data_2013")
        );
        assert_eq!(
            table_name_for("2013-weather").as_deref(),
            Some("t_2013_weather")
        );
        assert_eq!(
            table_name_for("in.c-sales.orders").as_deref(),
            Some("in_c_sales_orders")
        );
        assert_eq!(table_name_for("čísla").as_deref(), Some("sla"));
        assert_eq!(table_name_for("---"), None);
        let long = table_name_for(&"a".repeat(100)).unwrap();
        assert_eq!(long.len(), 64);
        for raw in ["x y", "9", "ÄÖÜ abc", "_a_", "a__b"] {
            if let Some(name) = table_name_for(raw) {
                assert!(
                    contract_spec::identifier::is_identifier(&name),
                    "{raw} -> {name}"
                );
            }
        }
    }
}
