//! The `agnes` command-line tool: a thin clap adapter over `agnes-core` and `contract-spec`.

#[macro_use]
mod out;

mod admin;
mod client;
mod contract;
mod data;
mod healthcheck;
mod login;
mod serve;
mod smoke;
mod tokens;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Agnes, a self-hosted AI data analyst server.
#[derive(Debug, Parser)]
#[command(name = "agnes", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with the extract contract: validate extracts, print the contract.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Serve the HTTP API from a data directory until ctrl-c or SIGTERM.
    Serve(serve::ServeArgs),
    /// Probe a running server's health; exit code 0 when healthy or degraded, 1 otherwise.
    Healthcheck(healthcheck::HealthcheckArgs),
    /// Administer a running server: users, sources, the table registry, discovery, sync jobs.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Sync every registered table (or some) on a running server and follow the job.
    Sync(data::SyncArgs),
    /// List the tables you may query, with row counts and columns.
    Catalog(data::CatalogArgs),
    /// Run one read-only SELECT on a running server.
    Query(data::QueryArgs),
    /// Download a published table as a Parquet file.
    Download(data::DownloadArgs),
    /// Log in to a server and store the token for the other commands (mode 0600).
    Login(login::LoginArgs),
    /// Delete the stored login.
    Logout,
    /// Create the first admin of a new server and store its token like `agnes login`.
    Bootstrap(login::BootstrapArgs),
    /// Manage your personal access tokens: long-lived tokens for scripts and agents.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Check a running server end to end: health, token, catalog, a query, a sync, health again.
    /// Exit code 0 only when every step passed.
    SmokeTest(smoke::SmokeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Contract(command) => contract::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Admin(command) => admin::run(command),
        Command::Sync(args) => data::run_sync(args),
        Command::Catalog(args) => data::run_catalog(args),
        Command::Query(args) => data::run_query(args),
        Command::Download(args) => data::run_download(args),
        Command::Login(args) => login::run_login(args),
        Command::Logout => login::run_logout(),
        Command::Bootstrap(args) => login::run_bootstrap(args),
        Command::Tokens(command) => tokens::run(command),
        Command::SmokeTest(args) => smoke::run(args),
    }
}
