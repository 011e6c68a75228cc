//! `agnes admin users ...`: user management against a running server.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientError};

/// Administration of a running server.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    #[command(flatten)]
    Data(crate::data::DataAdminCommand),
}

/// Server address and credentials shared by the commands that talk to a server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of the server; else the stored login's server (`agnes login`), else
    /// http://127.0.0.1:8000.
    #[arg(long, env = "AGNES_SERVER")]
    server: Option<String>,

    /// Bearer token: a session token from POST /auth/token or a personal access token; else the
    /// token of the stored login for this server.
    #[arg(long, env = "AGNES_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// A role a user can have.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Manages users, sources and the instance.
    Admin,
    /// Queries and downloads tables.
    Analyst,
    /// Reads the catalog and queries tables.
    Viewer,
}

impl RoleArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Analyst => "analyst",
            Self::Viewer => "viewer",
        }
    }
}

/// Source of a new password.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible in the process list and shell history; prefer --password-stdin).
    #[arg(
        long,
        env = "AGNES_NEW_PASSWORD",
        hide_env_values = true,
        conflicts_with = "password_stdin"
    )]
    password: Option<String>,

    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

/// User management commands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List all users as JSON.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create a user and print it as JSON.
    Create {
        #[command(flatten)]
        server: ServerArgs,
        /// Email of the new user.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// Role of the new user.
        #[arg(long, value_enum, default_value = "analyst")]
        role: RoleArg,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change a user's role.
    SetRole {
        #[command(flatten)]
        server: ServerArgs,
        /// User id (see `agnes admin users list`).
        id: String,
        /// New role.
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Deactivate a user; their tokens stop working at once.
    Deactivate {
        #[command(flatten)]
        server: ServerArgs,
        /// User id.
        id: String,
    },
    /// Activate a deactivated user again; they can log in from the next request on.
    Activate {
        #[command(flatten)]
        server: ServerArgs,
        /// User id.
        id: String,
    },
    /// Set a new password for a user; their older sessions stop working.
    ResetPassword {
        #[command(flatten)]
        server: ServerArgs,
        /// User id.
        id: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

/// Runs an admin command; exit code 1 when the server rejects it or cannot be reached.
pub fn run(command: AdminCommand) -> ExitCode {
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
    let users = match command {
        AdminCommand::Users(users) => users,
        AdminCommand::Data(data) => return crate::data::run_admin(data),
    };
    match runtime.block_on(run_users(users)) {
        Ok(output) => {
            if !output.is_null() {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&output).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            e.print();
            ExitCode::FAILURE
        }
    }
}

async fn run_users(command: UsersCommand) -> Result<Value, ClientError> {
    match command {
        UsersCommand::List { server } => {
            connect(&server)?
                .call(Method::GET, "/api/users", None)
                .await
        }
        UsersCommand::Create {
            server,
            email,
            name,
            role,
            password,
        } => {
            let mut body = json!({"email": email, "name": name, "role": role.as_str()});
            if let Some(password) = read_password(&password, false)? {
                body["password"] = Value::String(password);
            }
            connect(&server)?
                .call(Method::POST, "/api/users", Some(&body))
                .await
        }
        UsersCommand::SetRole { server, id, role } => {
            let body = json!({"role": role.as_str()});
            connect(&server)?
                .call(Method::PATCH, &format!("/api/users/{id}"), Some(&body))
                .await
        }
        UsersCommand::Deactivate { server, id } => {
            connect(&server)?
                .call(Method::POST, &format!("/api/users/{id}/deactivate"), None)
                .await
        }
        UsersCommand::Activate { server, id } => {
            connect(&server)?
                .call(Method::POST, &format!("/api/users/{id}/activate"), None)
                .await
        }
        UsersCommand::ResetPassword {
            server,
            id,
            password,
        } => {
            let password = read_password(&password, true)?.unwrap_or_default();
            let body = json!({"password": password});
            connect(&server)?
                .call(
                    Method::POST,
                    &format!("/api/users/{id}/reset-password"),
                    Some(&body),
                )
                .await
        }
    }
}

fn connect(server: &ServerArgs) -> Result<Client, ClientError> {
    connect_with(server, Duration::from_secs(30))
}

/// Builds a client for `server` whose requests time out after `timeout`, with the token of
/// `--token`, `AGNES_TOKEN` or the stored login, in that order.
pub fn connect_with(server: &ServerArgs, timeout: Duration) -> Result<Client, ClientError> {
    let target = crate::login::resolve(server.server.as_deref(), server.token.as_deref())?;
    if target.token.is_none() {
        let other = target
            .other_login
            .as_ref()
            .map(|s| format!(" (the stored login is for {s})"))
            .unwrap_or_default();
        eprintln!(
            "warning: no --token, AGNES_TOKEN or stored login for {}{other}; run `agnes login --server {}` first, or the server will answer 401",
            target.server, target.server
        );
    }
    Client::new(&target.server, target.token.map(|(t, _)| t), timeout)
}

fn read_password(args: &PasswordArgs, required: bool) -> Result<Option<String>, ClientError> {
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            ClientError::from_message(format!("cannot read the password from standard input: {e}"))
        })?;
        return Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()));
    }
    if args.password.is_none() && required {
        return Err(ClientError::from_message(
            "no password given; pass --password-stdin, --password or AGNES_NEW_PASSWORD"
                .to_string(),
        ));
    }
    Ok(args.password.clone())
}
