//! `agnes tokens ...`: the caller's personal access tokens, over `/auth/tokens`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin::ServerArgs;
use crate::client::ClientError;

/// Personal access token commands.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token for scripts and agents; it is printed once and never shown again.
    Create {
        #[command(flatten)]
        server: ServerArgs,
        /// What the token is for, such as `nightly-report`.
        name: String,
        /// Days until it expires, at most 3650 (default 90).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_in_days: Option<u32>,
        /// Create a token that never expires.
        #[arg(long)]
        no_expiry: bool,
    },
    /// List your tokens as JSON, without the tokens themselves.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke one of your tokens; it fails from the next request on.
    Revoke {
        #[command(flatten)]
        server: ServerArgs,
        /// Token id (see `agnes tokens list`).
        id: String,
    },
}

/// Runs a tokens command; exit code 1 when the server rejects it or cannot be reached.
pub fn run(command: TokensCommand) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::from_message(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(tokens(command)));
    match outcome {
        Ok(Some(value)) => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            error.print();
            ExitCode::FAILURE
        }
    }
}

async fn tokens(command: TokensCommand) -> Result<Option<Value>, ClientError> {
    match command {
        TokensCommand::Create {
            server,
            name,
            expires_in_days,
            no_expiry,
        } => {
            let mut body = json!({"name": name});
            if no_expiry {
                body["expires_in_days"] = Value::Null;
            } else if let Some(days) = expires_in_days {
                body["expires_in_days"] = json!(days);
            }
            let created = server
                .client(Duration::from_secs(30))?
                .call(Method::POST, "/auth/tokens", Some(&body))
                .await?;
            eprintln!(
                "created token {} ({}); it is shown this once, so store it now. Use it as --token or AGNES_TOKEN, or as `Authorization: Bearer <token>`.",
                created["name"].as_str().unwrap_or("?"),
                created["id"].as_str().unwrap_or("?")
            );
            Ok(Some(created))
        }
        TokensCommand::List { server } => Ok(Some(
            server
                .client(Duration::from_secs(30))?
                .call(Method::GET, "/auth/tokens", None)
                .await?,
        )),
        TokensCommand::Revoke { server, id } => {
            server
                .client(Duration::from_secs(30))?
                .call(
                    Method::DELETE,
                    &format!("/auth/tokens/{}", crate::data::encode(&id)),
                    None,
                )
                .await?;
            eprintln!("revoked token {id}");
            Ok(None)
        }
    }
}
