//! `agnes serve`: open the instance and serve HTTP until ctrl-c or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use agnes_core::Instance;
use agnes_core::sync::PlaneOptions;
use agnes_http::AppState;
use clap::Args;

use crate::client::print_core_error;

/// Options of `agnes serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory with the state database, extracts and analytics database.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,

    /// Address and port to listen on.
    #[arg(long, env = "AGNES_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,
}

/// Runs the server; returns exit code 1 when the instance cannot be opened or the address bound.
pub fn run(args: ServeArgs) -> ExitCode {
    init_tracing();
    let instance = match Instance::open(&args.data_dir) {
        Ok(instance) => Arc::new(instance),
        Err(e) => {
            print_core_error(&e);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(data_dir = %args.data_dir.display(), version = %instance.settings().version, "instance opened");

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args.listen, instance))
}

async fn serve(listen: String, instance: Arc<Instance>) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            eprintln!(
                "hint: pick a free address with --listen or AGNES_LISTEN, for example 127.0.0.1:8001"
            );
            return ExitCode::FAILURE;
        }
    };
    let opened =
        tokio::task::spawn_blocking(move || AppState::open(instance, PlaneOptions::from_env()))
            .await;
    let state = match opened {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => {
            print_core_error(&e);
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: opening the data plane failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match agnes_http::serve(listener, state, agnes_http::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` sets the filter (default `info`) and `AGNES_LOG_FORMAT=json`
/// switches to one JSON object per line.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("AGNES_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
