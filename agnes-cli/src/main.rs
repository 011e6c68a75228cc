//! The `agnes` command-line tool: a thin clap adapter over `agnes-core` and `contract-spec`.

mod admin;
mod client;
mod contract;
mod healthcheck;
mod serve;

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
    /// Administer a running server (users).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Contract(command) => contract::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Admin(command) => admin::run(command),
    }
}
