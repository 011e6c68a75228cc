//! `agnes login`, `agnes logout` and `agnes bootstrap`, and the stored login every command that
//! talks to a server falls back on.
//!
//! The login is one JSON file, `credentials.json`, in the config folder: `$AGNES_CONFIG_DIR`,
//! else `$XDG_CONFIG_HOME/agnes`, else `~/.config/agnes`. The folder gets mode 0700 and the file
//! 0600. A command uses the stored token only for the server it was stored for, and only when
//! neither `--token` nor `AGNES_TOKEN` is given.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{Client, ClientError};

/// Server the commands talk to when neither `--server`, `AGNES_SERVER` nor a stored login names
/// one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";

/// File name of the stored login inside the config folder.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// A stored login: the server and a token for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    /// Base URL of the server.
    pub server: String,
    /// Bearer token for it.
    pub token: String,
    /// Email of the user the token belongs to.
    #[serde(default)]
    pub email: Option<String>,
    /// Role of that user.
    #[serde(default)]
    pub role: Option<String>,
}

/// Returns the config folder: `$AGNES_CONFIG_DIR`, `$XDG_CONFIG_HOME/agnes` or
/// `~/.config/agnes`.
///
/// Fails when none of these variables is set.
pub fn config_dir() -> Result<PathBuf, ClientError> {
    let read = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    read("AGNES_CONFIG_DIR")
        .or_else(|| read("XDG_CONFIG_HOME").map(|d| d.join("agnes")))
        .or_else(|| read("HOME").map(|d| d.join(".config").join("agnes")))
        .ok_or_else(|| {
            ClientError::with_hint(
                "cannot find a config folder: AGNES_CONFIG_DIR, XDG_CONFIG_HOME and HOME are all unset",
                "Set AGNES_CONFIG_DIR to a folder for the stored login, or pass --token.",
            )
        })
}

/// Path of the stored login file.
pub fn credentials_path() -> Result<PathBuf, ClientError> {
    Ok(config_dir()?.join(CREDENTIALS_FILE))
}

/// Reads the stored login, if there is a readable one. A file that others may read is narrowed
/// to mode 0600 with a warning.
pub fn load() -> Option<StoredLogin> {
    let path = credentials_path().ok()?;
    let text = std::fs::read_to_string(&path).ok()?;
    tighten(&path, 0o600);
    match serde_json::from_str(&text) {
        Ok(login) => Some(login),
        Err(e) => {
            eprintln!(
                "warning: ignoring the stored login in {}: {e}; run `agnes login` again",
                path.display()
            );
            None
        }
    }
}

/// Stores `login`, replacing any stored one; returns the file's path.
///
/// Fails when the folder or file cannot be written.
pub fn save(login: &StoredLogin) -> Result<PathBuf, ClientError> {
    let path = credentials_path()?;
    write_private(&path, &serde_json::to_value(login).unwrap_or(Value::Null))?;
    Ok(path)
}

/// Creates `dir` with mode 0700 if needed (and narrows it to 0700 if others may enter it).
pub fn ensure_private_dir(dir: &Path) -> Result<(), ClientError> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                ClientError::with_hint(
                    format!("cannot create the config folder {}: {e}", dir.display()),
                    "Set AGNES_CONFIG_DIR to a folder you can write.",
                )
            })?;
    }
    tighten(dir, 0o700);
    Ok(())
}

/// Narrows the mode of `path` to `mode` when group or others have any access.
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return;
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            eprintln!(
                "warning: {} is open to other users and its mode cannot be changed: {e}",
                path.display()
            );
        } else {
            eprintln!(
                "warning: {} was open to other users; its mode is now {mode:o}",
                path.display()
            );
        }
    }
}

/// Writes `value` as JSON to `path` with mode 0600 (its folder 0700), through a temporary file.
pub fn write_private(path: &Path, value: &Value) -> Result<(), ClientError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ClientError::with_hint(
            format!("cannot write {}: {e}", path.display()),
            "Check the permissions of the config folder, or set AGNES_CONFIG_DIR to another one.",
        )
    })
}

/// Checks a server URL and drops trailing slashes.
///
/// Fails when it does not start with `http://` or `https://`.
pub fn normalize_server(server: &str) -> Result<String, ClientError> {
    let trimmed = server.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(ClientError::with_hint(
            format!("server URL {server:?} does not start with http:// or https://"),
            "Pass the server's base URL, for example --server http://127.0.0.1:8000.",
        ));
    }
    Ok(trimmed.to_string())
}

/// Origin of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `--token` or `AGNES_TOKEN`.
    Given,
    /// The stored login.
    Stored,
}

/// The server to talk to and the token to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// Base URL without a trailing slash.
    pub server: String,
    /// Token and where it came from.
    pub token: Option<(String, TokenSource)>,
    /// The stored login, when it is for another server than the one chosen.
    pub other_login: Option<String>,
}

/// Picks the server (`server`, else the stored login's, else [`DEFAULT_SERVER`]) and the token
/// (`token`, else the stored login's when it is for that server).
///
/// Fails when the server URL is not http or https.
pub fn resolve(server: Option<&str>, token: Option<&str>) -> Result<Target, ClientError> {
    let stored = load();
    let server = match server {
        Some(server) => normalize_server(server)?,
        None => stored
            .as_ref()
            .map(|s| s.server.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    let given = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_string(), TokenSource::Given));
    let for_server = stored
        .as_ref()
        .filter(|s| s.server.trim_end_matches('/') == server);
    Ok(Target {
        token: given.or_else(|| for_server.map(|s| (s.token.clone(), TokenSource::Stored))),
        other_login: stored
            .filter(|s| s.server.trim_end_matches('/') != server)
            .map(|s| s.server),
        server,
    })
}

/// Server address shared by login and bootstrap.
#[derive(Debug, Args)]
pub struct LoginServer {
    /// Base URL of the server; else AGNES_SERVER, the stored login's server, or
    /// http://127.0.0.1:8000.
    #[arg(long, env = "AGNES_SERVER")]
    server: Option<String>,
}

/// Source of a password.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Name of an environment variable that contains the password.
    #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
    password_env: Option<String>,

    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

/// Options of `agnes login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    server: LoginServer,
    /// Email; asked for when omitted and the terminal is interactive.
    #[arg(long)]
    email: Option<String>,
    #[command(flatten)]
    password: PasswordSource,
}

/// Options of `agnes bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    server: LoginServer,
    /// Email of the first admin.
    #[arg(long)]
    email: String,
    /// Display name.
    #[arg(long, default_value = "Admin")]
    name: String,
    #[command(flatten)]
    password: PasswordSource,
}

/// Reads a password from the environment variable, standard input, or an echo-free prompt.
pub fn read_password(source: &PasswordSource, prompt: &str) -> Result<String, ClientError> {
    if let Some(var) = &source.password_env {
        return std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ClientError::with_hint(
                    format!("environment variable {var} is not set or empty"),
                    format!("Export the password in {var} first, or use --password-stdin."),
                )
            });
    }
    let stdin = std::io::stdin();
    if source.password_stdin {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| {
            ClientError::from_message(format!("cannot read the password from standard input: {e}"))
        })?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !stdin.is_terminal() {
        return Err(ClientError::with_hint(
            "no password given and standard input is not a terminal to ask on",
            "Pass --password-env VAR (a variable holding the password) or --password-stdin.",
        ));
    }
    prompt_hidden(prompt)
}

/// Asks for a line on the terminal with echo turned off, and turns echo back on.
fn prompt_hidden(prompt: &str) -> Result<String, ClientError> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};

    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();

    let original = tcgetattr(&stdin).ok();
    if let Some(original) = &original {
        let mut silent = original.clone();
        silent.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &silent);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(original) = &original {
        let _ = tcsetattr(&stdin, OptionalActions::Now, original);
    }
    eprintln!();

    read.map_err(|e| ClientError::from_message(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn ask(prompt: &str) -> Result<String, ClientError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(ClientError::with_hint(
            "no --email given and standard input is not a terminal to ask on",
            "Pass --email.",
        ));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::from_message(format!("cannot read the email: {e}")))?;
    Ok(line.trim().to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::from_message(format!("cannot start the async runtime: {e}")))
}

fn finish(result: Result<(), ClientError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.print();
            ExitCode::FAILURE
        }
    }
}

/// Stores the token of a login or bootstrap response and prints where.
fn store_answer(server: &str, answer: &Value, verb: &str) -> Result<(), ClientError> {
    let token = answer["access_token"].as_str().ok_or_else(|| {
        ClientError::from_message(format!(
            "the server's response has no access_token: {answer}"
        ))
    })?;
    let login = StoredLogin {
        server: server.to_string(),
        token: token.to_string(),
        email: answer["email"].as_str().map(str::to_string),
        role: answer["role"].as_str().map(str::to_string),
    };
    let path = save(&login)?;
    outln!(
        "{verb} {server} as {} ({}). The token is stored in {} (mode 0600) and is valid for 24 hours; agnes commands use it when --token and AGNES_TOKEN are not set.",
        login.email.as_deref().unwrap_or("?"),
        login.role.as_deref().unwrap_or("?"),
        path.display()
    );
    Ok(())
}

/// Runs `agnes login`.
pub fn run_login(args: LoginArgs) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(login(args))))
}

async fn login(args: LoginArgs) -> Result<(), ClientError> {
    let stored = load();
    let server = match args.server.server.as_deref() {
        Some(server) => normalize_server(server)?,
        None => stored
            .as_ref()
            .map(|s| s.server.clone())
            .unwrap_or_else(|| DEFAULT_SERVER.to_string()),
    };
    let email = match args.email {
        Some(email) => email,
        None => ask(&format!("Email for {server}: "))?,
    };
    let password = read_password(&args.password, &format!("Password for {email}: "))?;
    let client = Client::new(&server, None, Duration::from_secs(30))?;
    let answer = client
        .call(
            Method::POST,
            "/auth/token",
            Some(&json!({"email": email, "password": password})),
        )
        .await?;
    store_answer(&server, &answer, "Logged in to")
}

/// Runs `agnes bootstrap`.
pub fn run_bootstrap(args: BootstrapArgs) -> ExitCode {
    finish(runtime().and_then(|rt| rt.block_on(bootstrap(args))))
}

async fn bootstrap(args: BootstrapArgs) -> Result<(), ClientError> {
    let server = normalize_server(args.server.server.as_deref().unwrap_or(DEFAULT_SERVER))?;
    let password = read_password(
        &args.password,
        &format!("Password for the new admin {}: ", args.email),
    )?;
    let client = Client::new(&server, None, Duration::from_secs(30))?;
    let answer = client
        .call(
            Method::POST,
            "/auth/bootstrap",
            Some(&json!({"email": args.email, "name": args.name, "password": password})),
        )
        .await?;
    store_answer(&server, &answer, "Created the first admin of")
}

/// Runs `agnes logout`: deletes the stored login.
pub fn run_logout() -> ExitCode {
    let outcome = credentials_path().and_then(|path| {
        let stored = load();
        match std::fs::remove_file(&path) {
            Ok(()) => {
                let server = stored.map(|s| s.server).unwrap_or_else(|| "?".to_string());
                outln!(
                    "Removed the stored login for {server} ({}).",
                    path.display()
                );
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                outln!("No stored login at {}.", path.display());
                Ok(())
            }
            Err(e) => Err(ClientError::from_message(format!(
                "cannot delete {}: {e}",
                path.display()
            ))),
        }
    });
    finish(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_checked_and_trimmed() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            normalize_server(" https://agnes.example.com ").unwrap(),
            "https://agnes.example.com"
        );
        assert!(normalize_server("127.0.0.1:8000").is_err());
    }
}
