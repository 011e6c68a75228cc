//! `agnes smoke-test` against real servers: a healthy one with data, one whose query engine
//! refuses every query, and a fresh one without tables.

use serde_json::Value;

use crate::support::{InProcessServer, ServerProcess, agnes, field, mode, ok, run, stderr, stdout};

const STEPS: [&str; 7] = [
    "health",
    "token",
    "catalog",
    "query",
    "sync_trigger",
    "sync_wait",
    "health_after",
];

/// Runs `agnes smoke-test URL --json` and returns the exit code and the report.
fn smoke_json(config: &std::path::Path, url: &str, token: Option<&str>) -> (Option<i32>, Value) {
    let mut command = agnes(config);
    command.args(["smoke-test", url, "--json", "--timeout", "120"]);
    if let Some(token) = token {
        command.env("AGNES_TOKEN", token);
    }
    let output = run(&mut command);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}):\n{}\nstderr:\n{}",
            stdout(&output),
            stderr(&output)
        )
    });
    (output.status.code(), report)
}

/// Step statuses by name, in order.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

fn expect(statuses: &[&str]) -> Vec<(String, String)> {
    STEPS
        .iter()
        .zip(statuses)
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

#[test]
fn healthy_instance_passes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = ServerProcess::start(&dir.path().join("data"), &config, &["--demo"], &[]);
    let output = server.wait_for_output("login --server");
    let token = field(&output, "export AGNES_TOKEN=");

    let (code, report) = smoke_json(&config, &server.url, Some(&token));

    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["result"], "passed");
    assert_eq!(report["server"], server.url.as_str());
    assert_eq!(statuses(&report), expect(&["passed"; 7]));
    for step in report["steps"].as_array().unwrap() {
        assert!(step["duration_ms"].is_u64(), "{step}");
        assert!(!step["message"].as_str().unwrap().is_empty(), "{step}");
    }
    assert_eq!(
        step(&report, "catalog")["message"],
        "3 tables: customers, orders, products"
    );
    assert_eq!(
        step(&report, "query")["message"],
        "SELECT 1 returned one row with 1"
    );
    let waited = step(&report, "sync_wait")["message"].as_str().unwrap();
    assert!(
        waited.contains(" succeeded in ") && waited.ends_with("; 3 tables published"),
        "{waited}"
    );
    assert_eq!(
        step(&report, "health_after")["message"],
        "healthy; no new warnings"
    );

    // The human output names every step and the result.
    let mut command = agnes(&config);
    command
        .args(["smoke-test", &server.url])
        .env("AGNES_TOKEN", &token);
    let text = ok(run(&mut command));
    for name in STEPS {
        assert!(text.contains(&format!("passed   {name}")), "{text}");
    }
    assert!(
        text.contains("Result: passed (7 passed, 0 failed, 0 not run"),
        "{text}"
    );

    // An analyst's token fails the token step instead of skipping the admin-only steps.
    ok(run(agnes(&config)
        .args([
            "admin",
            "users",
            "create",
            "--email",
            "analyst@example.com",
            "--role",
            "analyst",
        ])
        .args(["--server", &server.url])
        .env("AGNES_TOKEN", &token)
        .env("AGNES_NEW_PASSWORD", "analyst password")));
    let analyst_config = dir.path().join("analyst");
    ok(run(agnes(&analyst_config)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            "analyst@example.com",
        ])
        .args(["--password-env", "PW"])
        .env("PW", "analyst password")));
    let (code, report) = smoke_json(&analyst_config, &server.url, None);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        statuses(&report),
        expect(&[
            "passed", "failed", "not_run", "not_run", "not_run", "not_run", "not_run"
        ])
    );
    let message = step(&report, "token")["message"].as_str().unwrap();
    assert!(
        message.starts_with("token of the stored login but it is not an admin's token"),
        "{message}"
    );
    assert!(message.contains("HTTP 403"), "{message}");
    server.stop();
}

#[test]
fn refused_queries_fail_query_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    // A query engine allowed to run no query at once: every query is refused as busy.
    let server = InProcessServer::start(
        &dir.path().join("data"),
        agnes_core::query::EngineSettings {
            max_concurrent: 0,
            ..agnes_core::query::EngineSettings::default()
        },
    );
    let setup = server
        .plane
        .prepare_demo(&agnes_core::demo::DemoOptions {
            email: "admin@example.com".into(),
            password: None,
        })
        .unwrap();

    let (code, report) = smoke_json(&config, &server.url, setup.token.as_deref());

    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["result"], "failed");
    assert_eq!(
        statuses(&report),
        expect(&[
            "passed", "passed", "passed", "failed", "passed", "passed", "passed"
        ])
    );
    let message = step(&report, "query")["message"].as_str().unwrap();
    assert!(
        message.starts_with("SELECT 1 failed: HTTP 503 query.busy:"),
        "{message}"
    );
    assert_eq!(report["failed"], 1);
    // The health report shows the same problem before and after, so it is not new.
    assert!(
        step(&report, "health")["message"]
            .as_str()
            .unwrap()
            .contains("query_engine warning"),
        "{report:#}"
    );
    server.stop();
}

#[test]
fn fresh_instance_fails_catalog_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = ServerProcess::start(&dir.path().join("data"), &config, &[], &[]);

    let (code, report) = smoke_json(&config, &server.url, None);

    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        statuses(&report),
        expect(&[
            "passed", "passed", "failed", "passed", "passed", "passed", "passed"
        ])
    );
    let token = step(&report, "token")["message"].as_str().unwrap();
    assert!(
        token.contains("the instance was fresh: created admin smoke-admin@example.com"),
        "{token}"
    );
    let saved = std::fs::read_dir(&config)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("smoke-admin-")
        })
        .expect("saved admin credentials");
    assert!(
        token.contains(&saved.display().to_string()),
        "{token} does not name {}",
        saved.display()
    );
    assert_eq!(mode(&saved), 0o600);
    assert_eq!(mode(&config), 0o700);
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(credentials["email"], "smoke-admin@example.com");
    assert_eq!(credentials["server"], server.url.as_str());
    assert!(credentials["password"].as_str().unwrap().len() >= 20);
    assert!(
        step(&report, "catalog")["message"]
            .as_str()
            .unwrap()
            .starts_with("the catalog lists no tables: configure a source"),
        "{report:#}"
    );
    // No login was stored, so the new admin's token is stored as the login, and the command the
    // catalog step suggests works as it is.
    let credentials_file = config.join("credentials.json");
    assert!(
        token.contains(&format!(
            "stored as the login for {} in {}",
            server.url,
            credentials_file.display()
        )),
        "{token}"
    );
    assert_eq!(mode(&credentials_file), 0o600);
    let login: Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials_file).unwrap()).unwrap();
    assert_eq!(login["server"], server.url.as_str());
    assert_eq!(login["email"], "smoke-admin@example.com");
    assert_eq!(login["role"], "admin");
    let folder = dir.path().join("csv");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("orders.csv"), "id\n1\n").unwrap();
    let configured = ok(run(agnes(&config)
        .args(["admin", "configure", "files", "--path"])
        .arg(&folder)));
    assert!(configured.contains("\"verified\""), "{configured}");
    std::fs::remove_file(&credentials_file).unwrap();

    // A second run logs in with the saved admin instead of failing for lack of a token.
    let (code, again) = smoke_json(&config, &server.url, None);
    assert_eq!(code, Some(1));
    let token = step(&again, "token")["message"].as_str().unwrap();
    assert!(
        token.starts_with("logged in as smoke-admin@example.com with the credentials in"),
        "{token}"
    );
    assert_eq!(step(&again, "token")["status"], "passed");

    // A bad token fails the token step, and every later step is not run, with the reason.
    let (code, bad) = smoke_json(&config, &server.url, Some("not-a-token"));
    assert_eq!(code, Some(1));
    assert_eq!(
        statuses(&bad),
        expect(&[
            "passed", "failed", "not_run", "not_run", "not_run", "not_run", "not_run"
        ])
    );
    assert!(
        step(&bad, "token")["message"]
            .as_str()
            .unwrap()
            .contains("auth.invalid_token"),
        "{bad:#}"
    );
    assert_eq!(
        step(&bad, "query")["message"],
        "step token failed: no admin token to run the other steps with"
    );
    // Server messages and hints are joined as sentences.
    let message = step(&bad, "token")["message"].as_str().unwrap();
    assert!(message.contains("the token is invalid. "), "{message}");
    server.stop();
}

#[test]
fn fresh_instance_keeps_a_login_for_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let other = r#"{"server": "http://127.0.0.1:9", "token": "kept"}"#;
    std::fs::write(config.join("credentials.json"), other).unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &config, &[], &[]);

    let (code, report) = smoke_json(&config, &server.url, None);

    assert_eq!(code, Some(1), "{report:#}");
    let token = step(&report, "token")["message"].as_str().unwrap();
    assert!(
        token.contains("; the stored login is for http://127.0.0.1:9 and stays;"),
        "{token}"
    );
    assert_eq!(
        std::fs::read_to_string(config.join("credentials.json")).unwrap(),
        other
    );
    let catalog = step(&report, "catalog")["message"].as_str().unwrap();
    let expected = format!(
        "the catalog lists no tables: log in as that admin first with `agnes login --server {} --email smoke-admin@example.com` (the password is in ",
        server.url
    );
    assert!(catalog.starts_with(&expected), "{catalog}");
    server.stop();
}

#[test]
fn unreachable_server_fails_health_step() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago and has nothing listening now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, report) = smoke_json(dir.path(), &format!("http://127.0.0.1:{port}"), None);
    assert_eq!(code, Some(1));
    assert_eq!(
        statuses(&report),
        expect(&[
            "failed", "not_run", "not_run", "not_run", "not_run", "not_run", "not_run"
        ])
    );
    assert_eq!(report["not_run"], 6);
    let message = step(&report, "health")["message"].as_str().unwrap();
    assert!(
        message.contains("the URL given to `agnes smoke-test`"),
        "{message}"
    );
    assert!(!message.contains("--server"), "{message}");
}
