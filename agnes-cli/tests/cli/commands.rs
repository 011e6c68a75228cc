//! Everyday commands against a demo server: sync with and without waiting, a partial sync's
//! summary, hints that name commands, a deleted extract file in the health report, output that
//! ends cleanly in a closed pipe, user activation and personal access tokens.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::{ServerProcess, agnes, field, ok, run, stderr, stdout};

/// `agnes` with the demo server and its admin token.
fn with_token(config: &Path, server: &ServerProcess, token: &str) -> Command {
    let mut command = agnes(config);
    command
        .env("AGNES_SERVER", &server.url)
        .env("AGNES_TOKEN", token);
    command
}

/// Runs `command` with the reading end of its stdout closed before it writes anything.
fn run_into_closed_pipe(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start agnes");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for agnes")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn sync_health_and_output_on_a_demo_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config");
    let server = ServerProcess::start(&data, &config, &["--demo"], &[]);
    let output = server.wait_for_output("login --server");
    let token = field(&output, "export AGNES_TOKEN=");
    let agnes_ = || with_token(&config, &server, &token);

    // --no-wait exits 0 once the job started.
    let started = run(agnes_().args(["sync", "--no-wait"]));
    let text = ok(started);
    let reply = json(&text);
    assert_eq!(reply["status"], "triggered", "{reply}");
    let id = reply["job_id"].as_str().unwrap().to_string();
    // Follow it to the end, so the next sync does not meet it still running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let job = json(&ok(run(agnes_().args(["admin", "jobs", &id]))));
        if job["status"] != "running" {
            assert_eq!(job["status"], "succeeded", "{job}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{job}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // A partial sync exits 1 and says which table failed and why.
    std::fs::remove_file(data.join("demo-data").join("orders.csv")).unwrap();
    let partial = run(agnes_().arg("sync"));
    assert_eq!(partial.status.code(), Some(1), "{}", stderr(&partial));
    let job = json(&stdout(&partial));
    assert_eq!(job["status"], "partial", "{job}");
    let errors = stderr(&partial);
    let summary = errors
        .lines()
        .find(|l| l.starts_with("error: sync job "))
        .unwrap_or_else(|| panic!("no summary in:\n{errors}"));
    assert!(
        summary.starts_with(&format!(
            "error: sync job {} ended partial: table orders of source demo: ",
            job["id"].as_str().unwrap()
        )),
        "{summary}"
    );
    assert!(
        errors.contains("hint: fix the cause, then run `agnes sync` again"),
        "{errors}"
    );

    // A deleted extract file shows in the health report until a sync writes it again.
    let file = data.join("extracts/demo/data/customers.parquet");
    std::fs::remove_file(&file).unwrap();
    let health = json(&ok(run(agnes_().args(["admin", "health"]))));
    let warning = health["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "sources.file_missing")
        .unwrap_or_else(|| panic!("no sources.file_missing in {health:#}"));
    assert_eq!(warning["subject"], "customers");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("`agnes sync --table customers`"),
        "{warning}"
    );
    let partial_warning = health["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "last_sync.partial")
        .unwrap_or_else(|| panic!("no last_sync.partial in {health:#}"));
    assert_eq!(partial_warning["subject"], job["id"]);
    assert!(
        !partial_warning["message"].as_str().unwrap().contains(".."),
        "{partial_warning}"
    );
    // --server is the option's name; --url still works.
    for option in ["--server", "--url"] {
        let probe = ok(run(agnes(&config).args([
            "healthcheck",
            option,
            &server.url,
        ])));
        assert_eq!(probe.trim(), "degraded");
    }

    // One row is "1 row"; JSON on stdout ends with a line end, in a file it does not.
    let one = run(agnes_().args(["query", "SELECT 1 AS x"]));
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(stderr(&one).trim(), "1 row");
    let printed = ok(run(agnes_().args([
        "query",
        "--format",
        "json",
        "SELECT 1 AS x",
    ])));
    assert!(printed.ends_with("}\n"), "{printed:?}");
    assert_eq!(json(&printed)["rows"], serde_json::json!([[1]]));
    let saved = dir.path().join("result.json");
    ok(run(agnes_()
        .args(["query", "--format", "json", "-o"])
        .arg(&saved)
        .arg("SELECT 1 AS x")));
    assert!(std::fs::read_to_string(&saved).unwrap().ends_with('}'));

    // A closed pipe ends every kind of output quietly.
    for args in [
        vec!["admin", "connectors"],
        vec!["catalog"],
        vec!["query", "--format", "csv", "SELECT * FROM range(100000)"],
        vec!["contract", "show"],
    ] {
        let closed = run_into_closed_pipe(agnes_().args(&args));
        let errors = stderr(&closed);
        assert_eq!(closed.status.code(), Some(0), "{args:?}: {errors}");
        assert!(!errors.contains("panicked"), "{args:?}: {errors}");
        assert!(!errors.contains("Broken pipe"), "{args:?}: {errors}");
    }

    // Hints name agnes commands, not HTTP routes.
    let bad = run(agnes(&config).args(["catalog", "--server", &server.url, "--token", "garbage"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains(&format!(
            "hint: Log in with `agnes login --server {}`",
            server.url
        )),
        "{}",
        stderr(&bad)
    );
    let unknown = run(agnes_().args(["admin", "users", "deactivate", "nobody"]));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("hint: List users with `agnes admin users list` to find the id."),
        "{}",
        stderr(&unknown)
    );

    // The server log has no colour codes when it goes to a file.
    let log = server.log();
    assert!(log.contains("instance opened"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    server.stop();
}

#[test]
fn users_are_activated_again_and_tokens_are_managed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = ServerProcess::start(&dir.path().join("data"), &config, &["--demo"], &[]);
    let output = server.wait_for_output("login --server");
    let token = field(&output, "export AGNES_TOKEN=");
    let admin = || with_token(&config, &server, &token);

    let created = json(&ok(run(admin()
        .args(["admin", "users", "create", "--email", "ana@example.com"])
        .env("AGNES_NEW_PASSWORD", "analyst password"))));
    let id = created["id"].as_str().unwrap().to_string();

    // Ana logs in; her stored login is what `agnes tokens` uses.
    let ana = dir.path().join("ana");
    ok(run(agnes(&ana)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            "ana@example.com",
        ])
        .args(["--password-env", "PW"])
        .env("PW", "analyst password")));
    let made = run(agnes(&ana).args(["tokens", "create", "nightly", "--expires-in-days", "7"]));
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(
        stderr(&made).contains("shown this once"),
        "{}",
        stderr(&made)
    );
    let made = json(&stdout(&made));
    let personal = made["token"].as_str().unwrap().to_string();
    let token_id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["name"], "nightly");
    assert!(made["expires_at"].is_string(), "{made}");

    let listed = json(&ok(run(agnes(&ana).args(["tokens", "list"]))));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], token_id.as_str());
    assert!(listed[0].get("token").is_none(), "{listed:?}");
    let catalog = || {
        run(agnes(dir.path())
            .args(["catalog", "--server", &server.url])
            .env("AGNES_TOKEN", &personal))
    };
    ok(catalog());

    // Deactivated, Ana's token fails with a hint to the activate command; activated, it works.
    ok(run(admin().args(["admin", "users", "deactivate", &id])));
    let refused = catalog();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("`agnes admin users activate ID`"),
        "{}",
        stderr(&refused)
    );
    let activated = json(&ok(run(admin().args(["admin", "users", "activate", &id]))));
    assert_eq!(activated["active"], true);
    ok(catalog());

    ok(run(agnes(&ana).args(["tokens", "revoke", &token_id])));
    let revoked = catalog();
    assert_eq!(revoked.status.code(), Some(1));
    assert!(
        stderr(&revoked).contains("auth.token_revoked"),
        "{}",
        stderr(&revoked)
    );
    let missing = run(agnes(&ana).args(["tokens", "revoke", "no-such-token"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("hint: List your tokens with `agnes tokens list`"),
        "{}",
        stderr(&missing)
    );
    server.stop();
}
