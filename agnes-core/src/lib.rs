//! The Agnes library: everything an Agnes server does, without HTTP or a command line.
//!
//! An [`Instance`] is one Agnes deployment's data directory opened by one process. Opening it
//! creates the folder layout ([`instance::Layout`]), loads or generates the token signing key
//! ([`secrets`]) and opens the state database ([`state::StateDb`]), migrating it to the schema of
//! this build. The instance then carries out the auth rules ([`auth`]): bootstrap of the first
//! admin, login, bearer-token checks, personal access tokens and user management, each writing
//! to the [`audit`] log. [`health`] computes the health report from named checks.
//!
//! The data plane moves data. A [`connector`] (files, PostgreSQL, or a custom program) writes a
//! source's tables into a new [`extract`] version, which is published only when the contract
//! validator accepts it. The [`orchestrator`] publishes every valid extract as views in a new
//! analytics database, attaching remote catalogs under the [`remote`] allowlists, and the
//! [`query`] engine serves read-only SQL from it, swapping databases without failing a running
//! query. [`sync`] runs this as jobs over the configured [`sources`] and the table [`registry`].
//! [`demo`] sets up a fresh instance with generated sample data in one call.
//!
//! Every fallible call returns [`Error`], which carries a stable code, a message and a hint; the
//! HTTP and CLI adapters map it to their status model and show it unchanged. Instance methods are
//! blocking (they call DuckDB); async callers run them on a blocking thread.
//!
//! Unsafe code is denied everywhere but in the module that streams query results through
//! DuckDB's C API.

#![deny(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod connector;
pub mod demo;
pub mod error;
pub mod extract;
pub mod guard;
pub mod health;
pub mod instance;
pub mod orchestrator;
pub mod query;
pub mod registry;
pub mod remote;
pub mod secrets;
pub mod sources;
pub mod state;
pub mod sync;

pub use error::{Error, ErrorKind, Result};
pub use instance::{Instance, Layout, Settings};
