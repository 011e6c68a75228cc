//! The quick start end to end: `agnes serve --demo` and its printed commands, and the
//! nycflights13 data through `agnes bootstrap`, `login`, `admin configure files`, `admin
//! discover`, `sync` and `query`.

use serde_json::Value;

use crate::support::{ServerProcess, agnes, field, mode, ok, run};

/// Returns the SQL inside the printed `agnes query "..."` line.
fn printed_query(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains(" query \"SELECT"))
        .unwrap_or_else(|| panic!("no query command in:\n{output}"));
    let start = line.find('"').unwrap() + 1;
    line[start..line.len() - 1].to_string()
}

/// Returns the JSON body of the printed curl command.
fn printed_curl_body(output: &str) -> Value {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .unwrap_or_else(|| panic!("no curl command in:\n{output}"));
    let body = line.rsplit_once("-d '").unwrap().1.trim_end_matches('\'');
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// Runs the printed first query with the printed exports and returns its CSV lines.
fn run_first_query(config: &std::path::Path, output: &str) -> Vec<String> {
    let server = field(output, "export AGNES_SERVER=");
    let token = field(output, "export AGNES_TOKEN=");
    let text = ok(run(agnes(config)
        .args(["query", &printed_query(output), "--format", "csv"])
        .env("AGNES_SERVER", server)
        .env("AGNES_TOKEN", token)));
    text.lines().map(str::to_string).collect()
}

#[test]
fn demo_printed_query_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let config = dir.path().join("config");
    let server = ServerProcess::start(&data, &config, &["--demo"], &[]);
    let output = server.wait_for_output("login --server");

    assert!(
        output.starts_with(&format!("Agnes demo is serving on {}", server.url)),
        "{output}"
    );
    assert_eq!(field(&output, "admin email:"), "admin@example.com");
    let password = field(&output, "admin password:");
    assert_eq!(password.len(), 20, "{output}");
    let stored = field(&output, "stored in:");
    let file = data.join("state").join("demo-admin.json");
    assert_eq!(stored, format!("{} (mode 0600)", file.display()));
    assert_eq!(mode(&file), 0o600);
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(credentials["email"], "admin@example.com");
    assert_eq!(credentials["password"], password.as_str());
    assert_eq!(
        field(&output, "tables:"),
        "customers (120 rows), orders (2000 rows), products (24 rows)"
    );
    assert_eq!(field(&output, "export AGNES_SERVER="), server.url);

    // The printed query, run as printed: revenue of all 2000 orders by country.
    let lines = run_first_query(&config, &output);
    assert_eq!(lines[0], "country,orders,revenue");
    assert_eq!(lines.len(), 9, "{lines:?}");
    let orders: i64 = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(orders, 2000);
    // The curl command sends the same SQL as valid JSON.
    assert_eq!(
        printed_curl_body(&output)["sql"],
        printed_query(&output).as_str()
    );
    // The data is what the generator writes, on every machine.
    let total = ok(run(agnes(&config)
        .args([
            "query",
            "SELECT count(*), sum(quantity) FROM orders",
            "--format",
            "csv",
        ])
        .env("AGNES_SERVER", &server.url)
        .env("AGNES_TOKEN", field(&output, "export AGNES_TOKEN="))));
    let expected = {
        let text = std::fs::read_to_string(data.join("demo-data").join("orders.csv")).unwrap();
        let quantity: i64 = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(4).unwrap().parse::<i64>().unwrap())
            .sum();
        format!("2000,{quantity}")
    };
    assert_eq!(total.lines().nth(1), Some(expected.as_str()));

    // The printed login works with the printed password.
    ok(run(agnes(&config)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            "admin@example.com",
            "--password-env",
            "PW",
        ])
        .env("PW", &password)));
    server.stop();

    // Again on the same data directory: the admin, data and source are reused.
    let server = ServerProcess::start(&data, &config, &["--demo"], &[]);
    let again = server.wait_for_output("login --server");
    assert_eq!(field(&again, "admin password:"), password);
    assert_eq!(
        field(&again, "tables:"),
        "customers (120 rows), orders (2000 rows), products (24 rows)"
    );
    let lines_again = run_first_query(&config, &again);
    assert_eq!(lines_again, lines);
    server.stop();
}

#[test]
fn relative_data_dir_syncs() {
    // Extracts name their Parquet files by absolute path even when --data-dir is relative.
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_in(
        Some(dir.path()),
        std::path::Path::new("./demo"),
        &dir.path().join("config"),
        &["--demo"],
        &[],
    );
    let output = server.wait_for_output("login --server");
    assert_eq!(
        field(&output, "sample data:"),
        dir.path()
            .join("demo")
            .join("demo-data")
            .display()
            .to_string()
    );
    assert_eq!(
        run_first_query(&dir.path().join("config"), &output).len(),
        9
    );
    server.stop();
}

#[test]
fn demo_admin_from_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = ServerProcess::start(
        &dir.path().join("demo"),
        &config,
        &["--demo"],
        &[
            ("AGNES_DEMO_EMAIL", "analyst.lead@example.com"),
            ("AGNES_DEMO_PASSWORD", "chosen demo password"),
        ],
    );
    let output = server.wait_for_output("login --server");
    assert_eq!(field(&output, "admin email:"), "analyst.lead@example.com");
    assert_eq!(field(&output, "admin password:"), "chosen demo password");
    server.stop();

    // A password that is too short is refused with the reason.
    let output = run(agnes(&config)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("other"))
        .env("AGNES_DEMO_PASSWORD", "short"));
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("auth.password_too_short"), "{error}");
}

#[test]
fn nycflights_through_the_cli() {
    let Some(nyc) = agnes_tests::nycflights_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let server = ServerProcess::start(&dir.path().join("data"), &config, &[], &[]);
    let agnes = || agnes(&config);

    ok(run(agnes()
        .args([
            "bootstrap",
            "--server",
            &server.url,
            "--email",
            "admin@example.com",
            "--password-env",
            "PW",
        ])
        .env("PW", "nycflights admin password")));
    ok(run(agnes().arg("logout")));
    ok(run(agnes()
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            "admin@example.com",
            "--password-env",
            "PW",
        ])
        .env("PW", "nycflights admin password")));

    // Every later command finds the server and token in the stored login.
    let configured: Value = serde_json::from_str(&ok(run(agnes()
        .args(["admin", "configure", "files", "--name", "nyc", "--path"])
        .arg(&nyc))))
    .unwrap();
    assert_eq!(configured["connection"], "verified");
    assert_eq!(configured["tables_found"], 5);

    let discovered: Value =
        serde_json::from_str(&ok(run(agnes().args(["admin", "discover"])))).unwrap();
    assert_eq!(
        discovered["tables"],
        serde_json::json!(["airlines", "airports", "flights", "planes", "weather"])
    );

    let job: Value = serde_json::from_str(&ok(run(agnes().arg("sync")))).unwrap();
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["published_tables"], 5);

    let text = ok(run(agnes().args([
        "query",
        "SELECT count(*) FROM flights",
        "--format",
        "csv",
    ])));
    assert_eq!(text, "count_star()\n336776\n");

    let health: Value = serde_json::from_str(&ok(run(agnes().args(["admin", "health"])))).unwrap();
    assert_eq!(health["status"], "healthy", "{health:#}");
    assert_eq!(health["sources"][0]["name"], "nyc");
    assert_eq!(health["sources"][0]["tables"], 5);
    server.stop();
}

#[test]
fn unusable_setting_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(agnes(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("AGNES_STALE_AFTER_HOURS", "a day"));
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(
            "AGNES_STALE_AFTER_HOURS=\"a day\" is not a positive number of hours (settings.invalid)"
        ),
        "{error}"
    );
    assert!(
        error.contains("hint: Set AGNES_STALE_AFTER_HOURS to a number of hours"),
        "{error}"
    );
}
