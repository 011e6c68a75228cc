//! `agnes serve`: open the instance and serve HTTP until ctrl-c or SIGTERM.

use std::io::IsTerminal;
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

    /// Address and port to listen on; port 0 picks a free port.
    #[arg(long, env = "AGNES_LISTEN", default_value = "127.0.0.1:8000")]
    listen: String,

    /// Set up a demo first: create an admin (AGNES_DEMO_EMAIL and AGNES_DEMO_PASSWORD, else
    /// admin@example.com with a generated password), write a sample data set into the data
    /// directory, configure and sync it, and print the URL, the credentials and a first query.
    /// Run again on the same data directory, it reuses what is there.
    #[arg(long)]
    demo: bool,
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
    runtime.block_on(serve(args.listen, instance, args.demo))
}

async fn serve(listen: String, instance: Arc<Instance>, demo: bool) -> ExitCode {
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
    let opened = tokio::task::spawn_blocking(move || {
        AppState::open(instance, PlaneOptions::try_from_env()?)
    })
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
    let url = match listener.local_addr() {
        Ok(address) if address.ip().is_unspecified() => {
            format!("http://127.0.0.1:{}", address.port())
        }
        Ok(address) => format!("http://{address}"),
        Err(e) => {
            eprintln!("error: cannot read the listening address: {e}");
            return ExitCode::FAILURE;
        }
    };
    if demo {
        let plane = state.plane().clone();
        let prepared = tokio::task::spawn_blocking(move || {
            plane.prepare_demo(&agnes_core::demo::DemoOptions::from_env())
        })
        .await;
        match prepared {
            Ok(Ok(setup)) => print_demo(&url, &setup),
            Ok(Err(e)) => {
                print_core_error(&e);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("error: the demo set-up failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        outln!("Agnes is serving on {url} (ctrl-c stops it)");
    }
    match agnes_http::serve(listener, state, agnes_http::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, with colours only when stderr is a terminal; `RUST_LOG` sets the filter
/// (default `info`) and `AGNES_LOG_FORMAT=json` switches to one JSON object per line.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("AGNES_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Prints where the demo runs, how to log in and a first query, ready to copy.
fn print_demo(url: &str, setup: &agnes_core::demo::DemoSetup) {
    let program = shell_word(
        &std::env::args()
            .next()
            .unwrap_or_else(|| "agnes".to_string()),
    );
    let query = agnes_core::demo::FIRST_QUERY;
    let tables = setup
        .tables
        .iter()
        .map(|(name, rows)| format!("{name} ({rows} rows)"))
        .collect::<Vec<_>>()
        .join(", ");

    outln!("Agnes demo is serving on {url} (ctrl-c stops it)");
    outln!();
    outln!("  admin email:    {}", setup.email);
    match (&setup.password, &setup.credentials_file) {
        (Some(password), Some(file)) => {
            outln!("  admin password: {password}");
            outln!("  stored in:      {} (mode 0600)", file.display());
        }
        _ => outln!(
            "  admin password: not known to the demo; this data directory had an admin already"
        ),
    }
    outln!("  sample data:    {}", setup.data_folder.display());
    outln!("  tables:         {tables}");
    outln!();

    match &setup.token {
        Some(token) => {
            outln!("A first query (the token is valid for 24 hours):");
            outln!("  export AGNES_SERVER={url}");
            outln!("  export AGNES_TOKEN={token}");
            outln!("  {program} query \"{query}\"");
            outln!(
                "  curl -s -X POST \"$AGNES_SERVER/api/query\" -H \"Authorization: Bearer $AGNES_TOKEN\" -H 'Content-Type: application/json' -d '{{\"sql\": \"{query}\"}}'"
            );
            outln!();
            outln!("Log in for later commands (stores the token for every agnes command):");
            outln!("  {program} login --server {url} --email {}", setup.email);
        }
        None => {
            outln!("Log in, then run a first query:");
            outln!("  {program} login --server {url} --email {}", setup.email);
            outln!("  {program} query \"{query}\"");
        }
    }
    outln!();
}

/// Quotes `word` for a POSIX shell when it needs quoting.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
