//! Custom connectors (tier A): programs in `connectors/custom/<name>/` that write an extract.
//!
//! Each folder holds a manifest, `connector.json`:
//!
//! ```json
//! {"entrypoint": ["python3", "extractor.py"], "timeout_seconds": 600, "env": ["SNOWFLAKE_TOKEN"]}
//! ```
//!
//! The program runs with the folder as its working directory, in a process group of its own,
//! with an environment that holds only `PATH`, `LANG`, `AGNES_SOURCE`, `AGNES_OUTPUT_DIR` and the
//! variables the manifest lists, never the server's other secrets. It writes `extract.duckdb`
//! (and `data/`) into `AGNES_OUTPUT_DIR`, a fresh hidden version folder. On exit 0 the folder is
//! validated and published; on a non-zero exit, a timeout (the whole process group is killed) or
//! an invalid extract, the folder is deleted and the previous data keeps serving. The program's
//! output goes into the sync job's log.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::extract::{ExtractStore, PendingExtract};
use crate::remote::SecretLookup;

/// File name of the manifest inside a connector folder.
pub const MANIFEST_FILE: &str = "connector.json";

/// Timeout when the manifest gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes of a program's output kept for the job log (the last ones).
const OUTPUT_LIMIT: usize = 64 * 1024;

/// The manifest of a custom connector.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Program and arguments; a program with a `/` or present in the folder runs from the folder.
    pub entrypoint: Vec<String>,
    /// Seconds before the program's process group is killed.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Environment variables the program needs; their values come from the server's environment
    /// or Agnes's stored secrets.
    #[serde(default)]
    pub env: Vec<String>,
    /// Description for operators.
    #[serde(default)]
    pub description: Option<String>,
}

/// A custom connector found on disk.
#[derive(Debug, Clone)]
pub struct CustomConnector {
    /// Source name: the folder name.
    pub name: String,
    /// The connector's folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Finds the connectors under `root`; folders with a missing or broken manifest, or an unsafe
/// name, are returned as problems.
pub fn scan(root: &Path) -> (Vec<CustomConnector>, Vec<String>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return (Vec::new(), Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut connectors = Vec::new();
    let mut problems = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if let Some(problem) = contract_spec::identifier::identifier_problem(&name) {
            problems.push(format!("custom connector folder {name:?} {problem}; rename it to letters, digits and underscores"));
            continue;
        }
        match read_manifest(&dir) {
            Ok(manifest) => connectors.push(CustomConnector {
                name,
                dir,
                manifest,
            }),
            Err(problem) => problems.push(format!("custom connector {name}: {problem}")),
        }
    }
    (connectors, problems)
}

fn read_manifest(dir: &Path) -> std::result::Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {MANIFEST_FILE}: {e}"))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| format!("{MANIFEST_FILE} is invalid: {e}"))?;
    if manifest.entrypoint.is_empty() {
        return Err(format!(
            "{MANIFEST_FILE} has an empty entrypoint; give the program and its arguments"
        ));
    }
    if let Some(bad) = manifest
        .env
        .iter()
        .find(|name| !contract_spec::identifier::is_env_var_name(name))
    {
        return Err(format!(
            "{MANIFEST_FILE} lists {bad:?} in env, which is not a variable name"
        ));
    }
    if let Some(reserved) = manifest.env.iter().find(|name| is_server_secret(name)) {
        return Err(format!(
            "{MANIFEST_FILE} lists {reserved} in env, a secret of the Agnes server itself; \
             a connector never gets it, so give the connector its own variable"
        ));
    }
    Ok(manifest)
}

/// Whether `name` is one of the server's own secrets, which no connector may receive: the token
/// signing key, and the secrets Agnes stores for configured sources (`AGNES_*`).
fn is_server_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper == "JWT_SECRET_KEY" || upper == "SESSION_SECRET" || upper.starts_with("AGNES_")
}

/// What one run of a custom connector produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The written version, ready to validate and publish.
    pub pending: PendingExtract,
    /// The program's output (stdout and stderr, the last 64 KiB).
    pub log: String,
}

impl CustomConnector {
    /// Runs the program and returns its version folder for publishing.
    ///
    /// Fails with `connector.failed` (non-zero exit), `connector.timed_out` or
    /// `connector.start_failed`; the message carries the end of the program's output, and the
    /// version folder is deleted.
    pub fn run(&self, store: &ExtractStore, secrets: &dyn SecretLookup) -> Result<RunOutput> {
        let output_dir = store.new_version_dir(&self.name)?;
        match self.run_in(&output_dir, secrets) {
            Ok(log) => Ok(RunOutput {
                pending: PendingExtract::from_dir(&self.name, output_dir),
                log,
            }),
            Err(error) => {
                let _ = std::fs::remove_dir_all(&output_dir);
                Err(error)
            }
        }
    }

    fn run_in(&self, output_dir: &Path, secrets: &dyn SecretLookup) -> Result<String> {
        let program = &self.manifest.entrypoint[0];
        let local = self.dir.join(program);
        let program_path = if program.contains('/') || local.is_file() {
            local
        } else {
            PathBuf::from(program)
        };

        let mut command = Command::new(&program_path);
        command
            .args(&self.manifest.entrypoint[1..])
            .current_dir(&self.dir)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH")
                    .unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_string()),
            )
            .env("LANG", "C.UTF-8")
            .env("AGNES_SOURCE", &self.name)
            .env("AGNES_OUTPUT_DIR", output_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for name in &self.manifest.env {
            if let Some(value) = secrets.secret(name) {
                command.env(name, value);
            }
        }

        let mut child = command.spawn().map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "connector.start_failed",
                format!("cannot start {}: {e}", program_path.display()),
            )
            .with_hint(format!(
                "Check the entrypoint in {MANIFEST_FILE} and that the program is executable."
            ))
        })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || collect_output(stream, &log))
        })
        .collect();

        let timeout = self
            .manifest
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => {
                    return Err(Error::internal(format!(
                        "cannot wait for connector {}: {error}",
                        self.name
                    )));
                }
            }
        };
        if status.is_none() {
            kill_group(child.id());
            let _ = child.wait();
        }
        for reader in readers {
            let _ = reader.join();
        }
        let log = String::from_utf8_lossy(&log.lock().expect("log lock")).into_owned();

        match status {
            None => Err(Error::new(
                ErrorKind::Unavailable,
                "connector.timed_out",
                format!("connector {} ran longer than {} s and was stopped; output: {}", self.name, timeout.as_secs(), tail(&log)),
            )
            .with_hint(format!("Make it faster or raise timeout_seconds in its {MANIFEST_FILE}."))),
            Some(status) if !status.success() => Err(Error::new(
                ErrorKind::InvalidInput,
                "connector.failed",
                format!("connector {} exited with {status}; output: {}", self.name, tail(&log)),
            )
            .with_hint("Run the program by hand with AGNES_OUTPUT_DIR set to an empty folder to see the whole output.")),
            Some(_) => Ok(log),
        }
    }
}

/// Appends a stream to the shared log, keeping only its last [`OUTPUT_LIMIT`] bytes.
fn collect_output(mut stream: Box<dyn Read + Send>, log: &Mutex<Vec<u8>>) {
    let mut buffer = [0u8; 8192];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        let mut log = log.lock().expect("log lock");
        log.extend_from_slice(&buffer[..read]);
        if log.len() > OUTPUT_LIMIT {
            let excess = log.len() - OUTPUT_LIMIT;
            log.drain(..excess);
        }
    }
}

/// The last 2,000 characters of `log`, for error messages.
fn tail(log: &str) -> String {
    let chars: Vec<char> = log.trim_end().chars().collect();
    let start = chars.len().saturating_sub(2000);
    let text: String = chars[start..].iter().collect();
    if text.is_empty() {
        "(none)".to_string()
    } else {
        text
    }
}

/// Kills every process of the group the connector leads.
fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(error) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::warn!(%error, "cannot kill a connector's process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_secrets_refused_in_manifest() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["JWT_SECRET_KEY", "agnes_secret_crm_password", "AGNES_TOKEN"] {
            let manifest = format!(r#"{{"entrypoint": ["./run.sh"], "env": ["{name}"]}}"#);
            std::fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
            let problem = read_manifest(dir.path()).unwrap_err();
            assert!(
                problem.contains("secret of the Agnes server"),
                "{name}: {problem}"
            );
        }
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"entrypoint": ["./run.sh"], "env": ["SNOWFLAKE_TOKEN"]}"#,
        )
        .unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap().env, ["SNOWFLAKE_TOKEN"]);
    }
}
