//! `GET /api/health` and `GET /api/health/detailed` over HTTP. The public report shows no names,
//! counts or messages, and the detailed one gives the next step for each problem.

use agnes_core::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fixture::{TestServer, code, token};

const CHECKS: [&str; 8] = [
    "data_dir",
    "disk_space",
    "last_sync",
    "query_engine",
    "release",
    "sources",
    "stale_tables",
    "state_db",
];

fn names(checks: &Value) -> Vec<String> {
    checks.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detailed_report_has_every_check_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let admin = token(&server.bootstrap().await);

    let (status, public) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&public["checks"]), CHECKS);
    for (name, check) in public["checks"].as_object().unwrap() {
        assert_eq!(check, &json!({"status": "ok"}), "{name}");
    }
    assert_eq!(public["warnings"], json!([]));

    let (status, detailed) = server.get("/api/health/detailed", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{detailed}");
    assert_eq!(detailed["status"], "healthy");
    assert_eq!(names(&detailed["checks"]), CHECKS);
    for (name, check) in detailed["checks"].as_object().unwrap() {
        assert_eq!(check["status"], "ok", "{name}: {check}");
        assert!(!check["message"].as_str().unwrap().is_empty(), "{name}");
    }
    assert_eq!(detailed["warnings"], json!([]));
    assert_eq!(detailed["commit"], Settings::default().commit.as_str());
    assert!(detailed["uptime_seconds"].is_u64());
    assert!(detailed["disk"]["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(detailed["sources"], json!([]));
    assert_eq!(detailed["stale_tables"], json!([]));
    assert_eq!(detailed["last_sync"], Value::Null);

    // A registered table that was never synced is named in the detailed report only.
    let (status, body) = server
        .post(
            "/api/admin/registry",
            Some(&admin),
            json!({"name": "secret_payroll", "source": "hr"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, public) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public["status"], "degraded");
    assert_eq!(public["checks"]["stale_tables"]["status"], "warning");
    assert!(!public.to_string().contains("secret_payroll"), "{public}");
    let (_, detailed) = server.get("/api/health/detailed", Some(&admin)).await;
    assert_eq!(
        detailed["warnings"][0]["code"], "stale_tables.never_synced",
        "{detailed:#}"
    );
    assert_eq!(detailed["warnings"][0]["subject"], "secret_payroll");
    assert_eq!(detailed["stale_tables"][0]["name"], "secret_payroll");

    // Only admins see it.
    let (status, body) = server.get("/api/health/detailed", Some("nonsense")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(&body), "auth.invalid_token");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_release_warns_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        channel: "deprecated".into(),
        version: "2026.04.3".into(),
        ..Settings::default()
    };
    let server = TestServer::start_with(dir.path(), settings).await;

    let (status, public) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public["status"], "degraded");
    assert_eq!(public["checks"]["release"]["status"], "warning");
    assert_eq!(public["warnings"][0]["code"], "release.deprecated");
    assert!(
        public["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Running deprecated version 2026.04.3. Update to"),
        "{public}"
    );
    server.stop().await;
}
