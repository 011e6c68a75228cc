//! `agnes smoke-test`: checks a running server end to end, the way a deploy pipeline does.
//!
//! The steps run in order: `health`, `token`, `catalog`, `query`, `sync_trigger`, `sync_wait`,
//! `health_after`. Each ends `passed` or `failed` with a message; a step that cannot run because
//! an earlier one failed is `not_run`, with the reason. The result is `passed` only when every
//! step passed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use agnes_core::error::join_sentences;

use crate::client::{Client, ClientError};
use crate::login::{self, TokenSource};

/// Hint of an unreachable server: the smoke test takes its URL as an argument.
const UNREACHABLE: &str = "Check that the server runs and that the URL given to `agnes smoke-test` (else AGNES_SERVER or the stored login's server) points to it.";

/// Email of the admin the smoke test creates on a fresh instance.
pub const SMOKE_ADMIN_EMAIL: &str = "smoke-admin@example.com";

/// Options of `agnes smoke-test`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// Base URL of the server; else AGNES_SERVER, the stored login's server, or
    /// http://127.0.0.1:8000.
    #[arg(env = "AGNES_SERVER")]
    url: Option<String>,

    /// Admin token. Without it: AGNES_TOKEN, the stored login for this server, the admin an
    /// earlier smoke test created on it, or a new admin when the instance has none yet.
    #[arg(long, env = "AGNES_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Seconds to wait for the sync job to finish.
    #[arg(long, default_value_t = 300)]
    timeout: u64,

    /// Print a JSON report for CI instead of lines for people.
    #[arg(long)]
    json: bool,
}

/// Outcome of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The step did what it checks.
    Passed,
    /// The step failed, and the message gives the cause.
    Failed,
    /// An earlier step failed, so this one could not run.
    NotRun,
}

/// One step of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Stable step name.
    pub name: &'static str,
    /// Outcome.
    pub status: StepStatus,
    /// Time it took.
    pub duration_ms: u64,
    /// Result, or the reason it did not run.
    pub message: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server tested.
    pub server: String,
    /// `passed` when every step passed, else `failed`.
    pub result: &'static str,
    /// Steps passed.
    pub passed: usize,
    /// Steps failed.
    pub failed: usize,
    /// Steps not run.
    pub not_run: usize,
    /// Time of the whole test.
    pub duration_ms: u64,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// Every step, in order.
const STEPS: [&str; 7] = [
    "health",
    "token",
    "catalog",
    "query",
    "sync_trigger",
    "sync_wait",
    "health_after",
];

struct Run {
    steps: Vec<Step>,
}

impl Run {
    fn record(&mut self, name: &'static str, started: Instant, outcome: Result<String, String>) {
        let (status, message) = match outcome {
            Ok(message) => (StepStatus::Passed, message),
            Err(message) => (StepStatus::Failed, message),
        };
        self.steps.push(Step {
            name,
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            message,
        });
    }

    fn not_run(&mut self, name: &'static str, reason: &str) {
        self.steps.push(Step {
            name,
            status: StepStatus::NotRun,
            duration_ms: 0,
            message: reason.to_string(),
        });
    }

    /// Marks every step not recorded yet as not run.
    fn rest_not_run(&mut self, reason: &str) {
        for name in STEPS {
            if !self.steps.iter().any(|s| s.name == name) {
                self.not_run(name, reason);
            }
        }
    }

    fn passed(&self, name: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.name == name && s.status == StepStatus::Passed)
    }
}

/// Runs `agnes smoke-test`; exit code 0 only when every step passed.
pub fn run(args: SmokeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(smoke(&args)) {
        Ok(report) => report,
        Err(error) => {
            error.print();
            return ExitCode::from(2);
        }
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_human(&report);
    }
    if report.result == "passed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_human(report: &Report) {
    let color = std::io::stdout().is_terminal();
    outln!("Smoke test of {}", report.server);
    for step in &report.steps {
        let (label, code) = match step.status {
            StepStatus::Passed => ("passed", "32"),
            StepStatus::Failed => ("failed", "31"),
            StepStatus::NotRun => ("not_run", "33"),
        };
        let label = if color {
            format!("\x1b[{code}m{label:<8}\x1b[0m")
        } else {
            format!("{label:<8}")
        };
        let time = match step.status {
            StepStatus::NotRun => "-".to_string(),
            _ => format!("{} ms", step.duration_ms),
        };
        outln!("  {label} {:<13} {time:>9}  {}", step.name, step.message);
    }
    outln!(
        "Result: {} ({} passed, {} failed, {} not run, {:.1} s)",
        report.result,
        report.passed,
        report.failed,
        report.not_run,
        report.duration_ms as f64 / 1000.0
    );
}

async fn smoke(args: &SmokeArgs) -> Result<Report, ClientError> {
    let started = Instant::now();
    let target = login::resolve(args.url.as_deref(), args.token.as_deref())?;
    let server = target.server.clone();
    let anonymous =
        Client::new(&server, None, Duration::from_secs(30))?.with_unreachable_hint(UNREACHABLE);
    let mut run = Run { steps: Vec::new() };

    // 1. The public health report.
    let step = Instant::now();
    let health = anonymous.send(Method::GET, "/api/health", None).await;
    let setup_required = match &health {
        Ok((_, body)) => body["setup_required"] == true,
        Err(_) => false,
    };
    run.record("health", step, check_public_health(&health));
    if !run.passed("health") {
        run.rest_not_run("step health failed: the server is unreachable or unhealthy");
        return Ok(finish(server, run, started));
    }

    // 2. An admin token, checked on the detailed report, which is the baseline for the end.
    let step = Instant::now();
    let token = match obtain_token(&target, &anonymous, setup_required).await {
        Ok(token) => token,
        Err(message) => {
            run.record("token", step, Err(message));
            run.rest_not_run("step token failed: no admin token to run the other steps with");
            return Ok(finish(server, run, started));
        }
    };
    let client = Client::new(&server, Some(token.value.clone()), Duration::from_secs(60))?
        .with_unreachable_hint(UNREACHABLE);
    let baseline = match detailed_health(&client).await {
        Ok(report) => {
            run.record(
                "token",
                step,
                Ok(format!("{}; it is an admin's", token.origin)),
            );
            report
        }
        Err(message) => {
            run.record(
                "token",
                step,
                Err(format!("{} but {message}", token.origin)),
            );
            run.rest_not_run("step token failed: no admin token to run the other steps with");
            return Ok(finish(server, run, started));
        }
    };

    // 3. The catalog lists tables.
    let step = Instant::now();
    let catalog = client.send(Method::GET, "/api/catalog/tables", None).await;
    run.record(
        "catalog",
        step,
        check_catalog(catalog, token.login_hint.as_deref()),
    );

    // 4. SELECT 1 runs.
    let step = Instant::now();
    let query = client
        .send(
            Method::POST,
            "/api/query",
            Some(&json!({"sql": "SELECT 1 AS smoke", "limit": 10})),
        )
        .await;
    run.record("query", step, check_query(query));

    // 5. A sync starts.
    let step = Instant::now();
    let trigger = client
        .send(Method::POST, "/api/sync/trigger", Some(&Value::Null))
        .await;
    let job_id = match trigger {
        Ok((StatusCode::ACCEPTED | StatusCode::OK, body)) => match body["job_id"].as_str() {
            Some(id) => {
                run.record("sync_trigger", step, Ok(format!("sync job {id} started")));
                Some(id.to_string())
            }
            None => {
                run.record(
                    "sync_trigger",
                    step,
                    Err(format!("the answer has no job_id: {body}")),
                );
                None
            }
        },
        Ok((StatusCode::CONFLICT, body)) if body["job_id"].is_string() => {
            let id = body["job_id"].as_str().unwrap_or_default().to_string();
            run.record(
                "sync_trigger",
                step,
                Ok(format!(
                    "sync job {id} was already running; the test follows it"
                )),
            );
            Some(id)
        }
        Ok((status, body)) => {
            run.record("sync_trigger", step, Err(server_error(status, &body)));
            None
        }
        Err(e) => {
            run.record("sync_trigger", step, Err(client_error(&e)));
            None
        }
    };

    // 6. The sync finishes and succeeds.
    match job_id {
        Some(id) => {
            let step = Instant::now();
            let outcome = wait_for_job(&client, &id, Duration::from_secs(args.timeout)).await;
            run.record("sync_wait", step, outcome);
        }
        None => run.not_run("sync_wait", "step sync_trigger failed: no job to wait for"),
    }

    // 7. No new problems since the baseline.
    let step = Instant::now();
    let outcome = match detailed_health(&client).await {
        Ok(after) => compare_health(&baseline, &after),
        Err(message) => Err(message),
    };
    run.record("health_after", step, outcome);

    Ok(finish(server, run, started))
}

fn finish(server: String, run: Run, started: Instant) -> Report {
    let count = |status| run.steps.iter().filter(|s| s.status == status).count();
    let passed = count(StepStatus::Passed);
    let failed = count(StepStatus::Failed);
    let not_run = count(StepStatus::NotRun);
    Report {
        server,
        result: if passed == run.steps.len() {
            "passed"
        } else {
            "failed"
        },
        passed,
        failed,
        not_run,
        duration_ms: started.elapsed().as_millis() as u64,
        steps: run.steps,
    }
}

fn client_error(error: &ClientError) -> String {
    join_sentences(error.message(), error.hint().unwrap_or_default())
}

/// Renders an error response: status, code, message and hint.
fn server_error(status: StatusCode, body: &Value) -> String {
    let error = &body["error"];
    match error["code"].as_str() {
        Some(code) => format!(
            "HTTP {} {code}: {}",
            status.as_u16(),
            join_sentences(
                error["message"].as_str().unwrap_or(""),
                error["hint"].as_str().unwrap_or("")
            )
        ),
        None => format!("HTTP {}: {body}", status.as_u16()),
    }
}

fn check_public_health(
    answer: &Result<(StatusCode, Value), ClientError>,
) -> Result<String, String> {
    let (status, body) = answer.as_ref().map_err(client_error)?;
    let health = body["status"].as_str().unwrap_or("unknown");
    let release = format!(
        "version {}, channel {}",
        body["version"].as_str().unwrap_or("?"),
        body["channel"].as_str().unwrap_or("?")
    );
    let not_ok: Vec<String> = body["checks"]
        .as_object()
        .map(|checks| {
            checks
                .iter()
                .filter(|(_, c)| c["status"] != "ok")
                .map(|(name, c)| format!("{name} {}", c["status"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    let detail = if not_ok.is_empty() {
        String::new()
    } else {
        format!("; checks not ok: {}", not_ok.join(", "))
    };
    match health {
        "healthy" | "degraded" => Ok(format!("{health}, {release}{detail}")),
        _ => Err(format!(
            "status {health} (HTTP {}), {release}{detail}; GET /api/health/detailed with an admin token says why",
            status.as_u16()
        )),
    }
}

struct Token {
    value: String,
    origin: String,
    /// How to run `agnes` commands as this admin, when they would not use its token by
    /// themselves.
    login_hint: Option<String>,
}

/// Finds an admin token: `--token`/`AGNES_TOKEN`, the stored login, the admin an earlier smoke
/// test created, or a new admin on a fresh instance.
async fn obtain_token(
    target: &login::Target,
    anonymous: &Client,
    setup_required: bool,
) -> Result<Token, String> {
    if let Some((value, source)) = &target.token {
        let origin = match source {
            TokenSource::Given => "token from --token or AGNES_TOKEN",
            TokenSource::Stored => "token of the stored login",
        };
        return Ok(Token {
            value: value.clone(),
            origin: origin.to_string(),
            login_hint: None,
        });
    }
    let file = smoke_admin_file(&target.server).map_err(|e| client_error(&e))?;
    if !setup_required {
        if let Some((email, password)) = read_smoke_admin(&file) {
            let answer = anonymous
                .send(
                    Method::POST,
                    "/auth/token",
                    Some(&json!({"email": email, "password": password})),
                )
                .await
                .map_err(|e| client_error(&e))?;
            return match answer {
                (StatusCode::OK, body) => Ok(Token {
                    value: body["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    origin: format!(
                        "logged in as {email} with the credentials in {}",
                        file.display()
                    ),
                    login_hint: Some(login_command(&target.server, &email, &file)),
                }),
                (status, body) => Err(format!(
                    "logging in with the credentials in {} failed: {}",
                    file.display(),
                    server_error(status, &body)
                )),
            };
        }
        return Err(format!(
            "no admin token: pass --token, set AGNES_TOKEN, or run `agnes login --server {}` first",
            target.server
        ));
    }

    // A fresh instance: create its first admin and keep the credentials.
    let password = agnes_core::auth::password::generate();
    let credentials = json!({
        "server": target.server,
        "email": SMOKE_ADMIN_EMAIL,
        "password": password,
    });
    login::write_private(&file, &credentials).map_err(|e| client_error(&e))?;
    let answer = anonymous
        .send(
            Method::POST,
            "/auth/bootstrap",
            Some(&json!({"email": SMOKE_ADMIN_EMAIL, "name": "Smoke test admin", "password": password})),
        )
        .await;
    match answer {
        Ok((StatusCode::OK, body)) => {
            let value = body["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let created = format!(
                "the instance was fresh: created admin {SMOKE_ADMIN_EMAIL}, credentials saved in {} (mode 0600)",
                file.display()
            );
            let (origin, login_hint) = match store_login(&target.server, &value) {
                Ok(path) => (
                    format!(
                        "{created}; stored as the login for {} in {}, so agnes commands run as this admin",
                        target.server,
                        path.display()
                    ),
                    None,
                ),
                Err(reason) => (
                    format!("{created}; {reason}"),
                    Some(login_command(&target.server, SMOKE_ADMIN_EMAIL, &file)),
                ),
            };
            Ok(Token {
                value,
                origin,
                login_hint,
            })
        }
        Ok((status, body)) => {
            let _ = std::fs::remove_file(&file);
            Err(format!(
                "the instance was fresh but bootstrap failed: {}",
                server_error(status, &body)
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            Err(format!(
                "the instance was fresh but bootstrap failed: {}",
                client_error(&e)
            ))
        }
    }
}

/// Stores the token of the admin the smoke test created as the login, as `agnes login` does,
/// unless a login for another server is stored; returns the file, or why it was not stored.
fn store_login(server: &str, token: &str) -> Result<std::path::PathBuf, String> {
    if let Some(stored) = login::load() {
        return Err(format!(
            "the stored login is for {} and stays",
            stored.server
        ));
    }
    let stored = login::StoredLogin {
        server: server.to_string(),
        token: token.to_string(),
        email: Some(SMOKE_ADMIN_EMAIL.to_string()),
        role: Some("admin".to_string()),
    };
    login::save(&stored).map_err(|e| {
        format!(
            "the login was not stored: {}",
            join_sentences(e.message(), e.hint().unwrap_or_default())
        )
    })
}

/// The command that logs in as the admin whose credentials are in `file`.
fn login_command(server: &str, email: &str, file: &std::path::Path) -> String {
    format!(
        "log in as that admin first with `agnes login --server {server} --email {email}` (the password is in {})",
        file.display()
    )
}

/// File of the admin a smoke test creates on the server at `server`, in the config folder.
fn smoke_admin_file(server: &str) -> Result<std::path::PathBuf, ClientError> {
    let slug: String = server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(login::config_dir()?.join(format!("smoke-admin-{slug}.json")))
}

fn read_smoke_admin(file: &std::path::Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    Some((
        value["email"].as_str()?.to_string(),
        value["password"].as_str()?.to_string(),
    ))
}

async fn detailed_health(client: &Client) -> Result<Value, String> {
    match client.send(Method::GET, "/api/health/detailed", None).await {
        Ok((StatusCode::OK, body)) => Ok(body),
        Ok((status @ StatusCode::FORBIDDEN, body)) => Err(format!(
            "it is not an admin's token (the test triggers a sync, which needs an admin): {}",
            server_error(status, &body)
        )),
        Ok((status, body)) => Err(format!(
            "GET /api/health/detailed failed: {}",
            server_error(status, &body)
        )),
        Err(e) => Err(format!(
            "GET /api/health/detailed failed: {}",
            client_error(&e)
        )),
    }
}

fn check_catalog(
    answer: Result<(StatusCode, Value), ClientError>,
    login_hint: Option<&str>,
) -> Result<String, String> {
    let (status, body) = answer.map_err(|e| client_error(&e))?;
    if status != StatusCode::OK {
        return Err(server_error(status, &body));
    }
    let names: Vec<&str> = body["tables"]
        .as_array()
        .map(|tables| tables.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        let login = login_hint
            .map(|h| format!("{h}, then "))
            .unwrap_or_default();
        return Err(format!(
            "the catalog lists no tables: {login}configure a source (`agnes admin configure files --path DIR`), register its tables (`agnes admin discover`) and run `agnes sync`"
        ));
    }
    let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 5 { ", ..." } else { "" };
    Ok(format!("{} tables: {shown}{more}", names.len()))
}

fn check_query(answer: Result<(StatusCode, Value), ClientError>) -> Result<String, String> {
    let (status, body) = answer.map_err(|e| client_error(&e))?;
    if status != StatusCode::OK {
        return Err(format!("SELECT 1 failed: {}", server_error(status, &body)));
    }
    if body["rows"] == json!([[1]]) {
        Ok("SELECT 1 returned one row with 1".to_string())
    } else {
        Err(format!(
            "SELECT 1 returned {} instead of one row with 1",
            body["rows"]
        ))
    }
}

async fn wait_for_job(client: &Client, id: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let job = match client
            .send(Method::GET, &format!("/api/sync/jobs/{id}"), None)
            .await
        {
            Ok((StatusCode::OK, job)) => job,
            Ok((status, body)) => return Err(server_error(status, &body)),
            Err(e) => return Err(client_error(&e)),
        };
        match job["status"].as_str().unwrap_or("unknown") {
            "running" if Instant::now() >= deadline => {
                return Err(format!(
                    "sync job {id} still runs after {} s (phase {}); raise --timeout, or follow it with `agnes admin jobs {id}`",
                    timeout.as_secs(),
                    job["progress"]["phase"].as_str().unwrap_or("?")
                ));
            }
            "running" => tokio::time::sleep(Duration::from_millis(500)).await,
            "succeeded" => {
                return Ok(format!(
                    "sync job {id} succeeded in {} ms; {} tables published",
                    job["duration_ms"], job["published_tables"]
                ));
            }
            other => {
                let problems = crate::data::job_problems(&job);
                return Err(format!(
                    "sync job {id} ended {other}: {}; `agnes admin jobs {id}` shows the whole job",
                    if problems.is_empty() {
                        "no details recorded".to_string()
                    } else {
                        problems.join("; ")
                    }
                ));
            }
        }
    }
}

/// Passes when `after` has no warning (by code and subject) that `before` lacks, no check in a
/// worse state, and is not unhealthy.
fn compare_health(before: &Value, after: &Value) -> Result<String, String> {
    let warnings = |report: &Value| -> BTreeMap<(String, String), String> {
        report["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| {
                (
                    (
                        w["code"].as_str().unwrap_or("").to_string(),
                        w["subject"].as_str().unwrap_or("").to_string(),
                    ),
                    w["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let rank = |status: &Value| match status.as_str() {
        Some("ok") => 0,
        Some("warning") => 1,
        _ => 2,
    };
    let old = warnings(before);
    let known: BTreeSet<&(String, String)> = old.keys().collect();
    let new: Vec<((String, String), String)> = warnings(after)
        .into_iter()
        .filter(|(key, _)| !known.contains(key))
        .collect();
    let mut problems: Vec<String> = new
        .iter()
        .map(|((code, subject), message)| {
            if subject.is_empty() {
                format!("new warning {code}: {message}")
            } else {
                format!("new warning {code} ({subject}): {message}")
            }
        })
        .collect();
    for (name, check) in after["checks"].as_object().into_iter().flatten() {
        let was = &before["checks"][name]["status"];
        let warned = new
            .iter()
            .any(|((code, _), _)| code.starts_with(&format!("{name}.")));
        if rank(&check["status"]) > rank(was) && !warned {
            problems.push(format!(
                "check {name} went from {} to {}: {}",
                was.as_str().unwrap_or("missing"),
                check["status"].as_str().unwrap_or("?"),
                check["message"].as_str().unwrap_or("")
            ));
        }
    }
    let status = after["status"].as_str().unwrap_or("unknown");
    if status == "unhealthy" && problems.is_empty() {
        problems.push("the instance is unhealthy".to_string());
    }
    if problems.is_empty() {
        let standing = if old.is_empty() {
            String::new()
        } else {
            format!(
                "; {} warnings were there before the test: {}",
                old.len(),
                old.keys()
                    .map(|(code, subject)| if subject.is_empty() {
                        code.clone()
                    } else {
                        format!("{code} ({subject})")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Ok(format!("{status}; no new warnings{standing}"))
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_warnings_fail_and_old_ones_pass() {
        let before = json!({"status": "degraded", "checks": {"sources": {"status": "warning"}, "query_engine": {"status": "ok"}},
            "warnings": [{"code": "sources.skipped", "subject": "crm", "message": "old"}]});
        let same = json!({"status": "degraded", "checks": {"sources": {"status": "warning"}, "query_engine": {"status": "ok"}},
            "warnings": [{"code": "sources.skipped", "subject": "crm", "message": "old, reworded"}]});
        let message = compare_health(&before, &same).unwrap();
        assert!(message.contains("sources.skipped (crm)"), "{message}");

        let worse = json!({"status": "unhealthy", "checks": {"sources": {"status": "warning"}, "query_engine": {"status": "error", "message": "SELECT 1 failed"}},
            "warnings": [{"code": "sources.skipped", "subject": "crm", "message": "old"},
                         {"code": "sources.skipped", "subject": "erp", "message": "source erp is not published"}]});
        let error = compare_health(&before, &worse).unwrap_err();
        assert!(
            error.contains("new warning sources.skipped (erp): source erp is not published"),
            "{error}"
        );
        assert!(
            error.contains("check query_engine went from ok to error: SELECT 1 failed"),
            "{error}"
        );
    }

    #[test]
    fn server_errors_show_code_and_hint() {
        let body = json!({"error": {"code": "query.busy", "message": "full", "hint": "Retry."}});
        assert_eq!(
            server_error(StatusCode::SERVICE_UNAVAILABLE, &body),
            "HTTP 503 query.busy: full. Retry."
        );
    }
}
