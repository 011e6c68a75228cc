//! The signing key and the audit log across a restart.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::json;

use crate::fixture::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("state/.jwt_secret");

    let server = TestServer::start(dir.path()).await;
    let session = token(&server.bootstrap().await);
    let (status, created) = server
        .post("/auth/tokens", Some(&session), json!({"name": "restart"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let pat = created["token"].as_str().unwrap().to_string();
    let (status, _) = server.login(ADMIN_EMAIL, "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;

    let mode = std::fs::metadata(&secret_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let secret_before = std::fs::read(&secret_path).unwrap();

    let server = TestServer::start(dir.path()).await;
    let (status, body) = server.get("/auth/tokens", Some(&session)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "session token invalid after restart: {body}"
    );
    let (status, body) = server.get("/auth/tokens", Some(&pat)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "personal access token invalid after restart: {body}"
    );
    let (status, health) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["setup_required"], json!(false));
    let audit = audit_rows(&server);
    server.stop().await;

    assert_eq!(
        std::fs::read(&secret_path).unwrap(),
        secret_before,
        "the key changed on restart"
    );

    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|(action, result, _)| (action.as_str(), result.as_str()))
        .collect();
    assert!(
        actions.contains(&("auth.bootstrap", "success")),
        "{actions:?}"
    );
    assert!(actions.contains(&("auth.login", "failure")), "{actions:?}");
    assert!(
        actions.contains(&("token.create", "success")),
        "{actions:?}"
    );
    for (_, _, params) in &audit {
        assert!(
            !params.contains(ADMIN_PASSWORD),
            "audit row contains the password: {params}"
        );
        assert!(
            !params.contains("wrong password"),
            "audit row contains a password: {params}"
        );
        assert!(
            !params.contains(&pat),
            "audit row contains the token: {params}"
        );
        assert!(
            !params.contains(&session),
            "audit row contains the token: {params}"
        );
    }
}

fn audit_rows(server: &TestServer) -> Vec<(String, String, String)> {
    server
        .instance
        .state()
        .with_conn(|conn| {
            let mut statement = conn
                .prepare("SELECT action, result, coalesce(CAST(params AS VARCHAR), '') || coalesce(resource, '') FROM audit_log ORDER BY occurred_at")
                .unwrap();
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            Ok(rows)
        })
        .unwrap()
}
