//! Data plane tests on real files, real DuckDB extracts and, where the test setup provides one,
//! a real PostgreSQL server: sync jobs, the orchestrator, custom connectors and queries during
//! rebuilds.

mod custom;
mod files;
mod health;
mod postgres;
mod query;
mod support;
