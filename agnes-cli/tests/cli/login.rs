//! `agnes login`, `agnes logout` and `agnes bootstrap`: the stored login's file modes, where it
//! is kept, and the order in which commands pick a token.

use serde_json::Value;

use crate::support::{ServerProcess, agnes, mode, ok, run, stderr};

const EMAIL: &str = "owner@example.com";
const PASSWORD: &str = "a long enough password";

#[test]
fn login_file_and_token_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nested").join("config");
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("unused"),
        &[],
        &[],
    );

    // Bootstrap stores the first admin's token.
    let text = ok(run(agnes(&config)
        .args([
            "bootstrap",
            "--server",
            &server.url,
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", PASSWORD)));
    assert!(
        text.starts_with(&format!("Created the first admin of {}", server.url)),
        "{text}"
    );
    let file = config.join("credentials.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&config), 0o700);

    ok(run(agnes(&config).arg("logout")));
    assert!(!file.exists());
    let text = ok(run(agnes(&config).arg("logout")));
    assert!(text.starts_with("No stored login at"), "{text}");

    // A wrong password stores nothing.
    let output = run(agnes(&config)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", "wrong password"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("auth.invalid_credentials"),
        "{}",
        stderr(&output)
    );
    assert!(!file.exists());
    // A password variable that is not set is named.
    let output = run(agnes(&config).args([
        "login",
        "--server",
        &server.url,
        "--email",
        EMAIL,
        "--password-env",
        "NOT_SET_ANYWHERE",
    ]));
    assert!(
        stderr(&output).contains("environment variable NOT_SET_ANYWHERE is not set"),
        "{}",
        stderr(&output)
    );

    let text = ok(run(agnes(&config)
        .args([
            "login",
            "--server",
            &format!("{}/", server.url),
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", PASSWORD)));
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert_eq!(mode(&file), 0o600);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(stored["server"], server.url.as_str());
    assert_eq!(stored["email"], EMAIL);
    assert_eq!(stored["role"], "admin");
    let token = stored["token"].as_str().unwrap().to_string();

    // No --server and no token: the stored server and token are used.
    let text = ok(run(agnes(&config).args(["admin", "users", "list"])));
    assert!(text.contains(EMAIL), "{text}");

    // AGNES_TOKEN comes before the stored login.
    let output = run(agnes(&config)
        .args(["admin", "users", "list"])
        .env("AGNES_TOKEN", "not-a-token"));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("auth.invalid_token"),
        "{}",
        stderr(&output)
    );
    // So does --token.
    let output = run(agnes(&config).args(["admin", "users", "list", "--token", "not-a-token"]));
    assert!(
        stderr(&output).contains("auth.invalid_token"),
        "{}",
        stderr(&output)
    );
    // And a valid token given explicitly works without the stored one.
    let elsewhere = dir.path().join("empty-config");
    let text = ok(run(agnes(&elsewhere)
        .args(["admin", "users", "list", "--server", &server.url])
        .env("AGNES_TOKEN", &token)));
    assert!(text.contains(EMAIL), "{text}");

    // The stored token is not sent to another server.
    let output = run(agnes(&config).args(["catalog", "--server", "http://127.0.0.1:9"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "no --token, AGNES_TOKEN or stored login for http://127.0.0.1:9 (the stored login is for {})",
            server.url
        )),
        "{}",
        stderr(&output)
    );
    // A server URL without a scheme is refused with the fix.
    let output = run(agnes(&config).args(["catalog", "--server", "127.0.0.1:8000"]));
    assert!(
        stderr(&output).contains("does not start with http:// or https://"),
        "{}",
        stderr(&output)
    );

    // A stored login that others can read is narrowed back to 0600.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(agnes(&config).args(["catalog", "--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("was open to other users"),
        "{}",
        stderr(&output)
    );
    assert_eq!(mode(&file), 0o600);

    let text = ok(run(agnes(&config).arg("logout")));
    assert!(
        text.contains(&format!("Removed the stored login for {}", server.url)),
        "{text}"
    );
    assert!(!file.exists());
    server.stop();
}

#[test]
fn config_folder_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &dir.path().join("unused"),
        &[],
        &[],
    );
    ok(run(agnes(&dir.path().join("first"))
        .args([
            "bootstrap",
            "--server",
            &server.url,
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", PASSWORD)));

    let xdg = dir.path().join("xdg");
    ok(run(agnes(dir.path())
        .env_remove("AGNES_CONFIG_DIR")
        .env("XDG_CONFIG_HOME", &xdg)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", PASSWORD)));
    assert_eq!(mode(&xdg.join("agnes").join("credentials.json")), 0o600);
    assert_eq!(mode(&xdg.join("agnes")), 0o700);

    let home = dir.path().join("home");
    ok(run(agnes(dir.path())
        .env_remove("AGNES_CONFIG_DIR")
        .env("HOME", &home)
        .args([
            "login",
            "--server",
            &server.url,
            "--email",
            EMAIL,
            "--password-env",
            "PW",
        ])
        .env("PW", PASSWORD)));
    let file = home.join(".config").join("agnes").join("credentials.json");
    assert_eq!(mode(&file), 0o600);
    let text = ok(run(agnes(dir.path())
        .env_remove("AGNES_CONFIG_DIR")
        .env("HOME", &home)
        .args(["admin", "users", "list"])));
    assert!(text.contains(EMAIL), "{text}");
    server.stop();
}
