//! The Agnes extract contract, as data, with an offline validator.
//!
//! Every Agnes data source writes one DuckDB file, the *extract*, at
//! `extracts/<source>/extract.duckdb`. Its `_meta` table lists the tables it publishes, one view or
//! table per row; an optional `_remote_attach` table names external catalogs that remote views
//! read. The orchestrator publishes every valid extract's tables as views in one analytics
//! database.
//!
//! This crate has three parts:
//!
//! - [`spec`]: the contract as Rust data. [`contract_v1`] builds version 1, and the checked-in
//!   `contract-v1.json` is generated from it (a test keeps the two identical).
//! - [`validate()`]: opens an extract read-only and returns a [`Report`] with one [`Finding`] per
//!   problem, each with a stable [`Code`], a severity, where it is, a message and a hint.
//! - [`identifier`]: the identifier rule for source, table, alias and extension names, and safe
//!   quoting for DuckDB.
//!
//! ```no_run
//! let report = contract_spec::validate(std::path::Path::new("data/extracts/sales/extract.duckdb"));
//! for finding in &report.findings {
//!     println!("{} {}: {} ({})", finding.severity.as_str(), finding.code, finding.message, finding.hint);
//! }
//! assert!(report.is_valid());
//! ```
//!
//! The custom-connector authors' CLI (`agnes contract validate`) and the orchestrator both use
//! this validator, so what passes here is what gets published.

pub mod finding;
pub mod identifier;
pub mod spec;
mod validate;

pub use finding::{Code, Finding, Report, Severity};
pub use spec::{CONTRACT_VERSION, Contract, QueryMode, contract_v1};
pub use validate::{Options, TreeError, validate, validate_tree, validate_with};
