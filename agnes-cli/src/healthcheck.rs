//! `agnes healthcheck`: a container probe that needs no curl.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::Method;

use crate::client::Client;

/// Options of `agnes healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Base URL of the server to probe.
    #[arg(
        long,
        visible_alias = "url",
        env = "AGNES_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    server: String,

    /// Seconds to wait for the response.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// Probes `GET /api/health`; exit code 0 when the status is `healthy` or `degraded`, else 1.
pub fn run(args: HealthcheckArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(probe(args))
}

async fn probe(args: HealthcheckArgs) -> ExitCode {
    let client = match Client::new(&args.server, None, Duration::from_secs(args.timeout)) {
        Ok(client) => client.with_unreachable_hint(
            "Check that the server runs and that --server or AGNES_SERVER points to it.",
        ),
        Err(e) => {
            e.print();
            return ExitCode::FAILURE;
        }
    };
    let (_, body) = match client.send(Method::GET, "/api/health", None).await {
        Ok(answer) => answer,
        Err(e) => {
            e.print();
            return ExitCode::FAILURE;
        }
    };
    let status = body["status"].as_str().unwrap_or("unknown");
    outln!("{status}");
    match status {
        "healthy" | "degraded" => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
