//! Setup mode: what works before the first admin exists, and bootstrap.

use reqwest::StatusCode;
use serde_json::json;

use crate::fixture::{ADMIN_EMAIL, TestServer, code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_mode_blocks_other_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;

    let (status, body) = server.get("/api/users", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "setup.required");
    let hint = body["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("/setup"), "{hint}");
    assert!(hint.contains("curl -X POST"), "{hint}");
    assert!(hint.contains("/auth/bootstrap"), "{hint}");

    let (status, body) = server
        .post(
            "/auth/token",
            None,
            json!({"email": ADMIN_EMAIL, "password": "whatever1"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "setup.required");

    let (status, body) = server.get("/no/such/route", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "setup.required");

    let (status, body) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["setup_required"], json!(true));

    let page = server
        .raw()
        .get(format!("{}/setup", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form"));
    assert!(html.contains("/auth/bootstrap"));

    let (status, _) = server.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_validates_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;

    let (status, body) = server
        .post(
            "/auth/bootstrap",
            None,
            json!({"email": ADMIN_EMAIL, "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "auth.password_too_short");

    let (status, body) = server
        .post(
            "/auth/bootstrap",
            None,
            json!({"email": "not-an-email", "password": "long enough"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "user.invalid_email");

    let (status, body) = server
        .post("/auth/bootstrap", None, json!({"name": "no email"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "request.invalid_body");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;

    let body = server.bootstrap().await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["email"], ADMIN_EMAIL);
    assert_eq!(body["role"], "admin");
    assert!(body["user_id"].as_str().is_some_and(|id| !id.is_empty()));
    let token = body["access_token"].as_str().unwrap();

    let (status, body) = server
        .post(
            "/auth/bootstrap",
            None,
            json!({"email": "second@example.com", "password": "another password"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "setup.already_done");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("/auth/token")
    );

    let (status, body) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["setup_required"], json!(false));

    let (status, users) = server.get("/api/users", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users.as_array().unwrap().len(), 1);

    let (status, body) = server.get("/api/users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.missing_token");

    let page = server
        .raw()
        .get(format!("{}/setup", server.base))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("already has an admin"));

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_hides_details_from_public() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let admin = crate::fixture::token(&server.bootstrap().await);

    let (status, body) = server.get("/api/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["channel"], "dev");
    assert_eq!(
        body["schema_version"],
        json!(agnes_core::state::CURRENT_SCHEMA_VERSION)
    );
    assert_eq!(body["checks"]["state_db"]["status"], "ok");
    assert_eq!(body["checks"]["data_dir"]["status"], "ok");
    assert!(body.get("diagnostics").is_none());
    let text = body.to_string();
    assert!(
        !text.contains(&dir.path().display().to_string()),
        "public health shows a path"
    );

    let (status, body) = server.get("/api/health/detailed", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, body) = server.get("/api/health/detailed", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["diagnostics"]["users"], json!(1));
    assert_eq!(body["diagnostics"]["active_admins"], json!(1));
    assert_eq!(body["diagnostics"]["jwt_secret_source"], "generated");

    server.stop().await;
}

/// Fetches `path` without following redirects and returns the status, headers and body.
async fn fetch_page(base: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(format!("{base}{path}")).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_load_before_setup() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;

    for (path, script) in [
        ("/setup", "/assets/setup.js"),
        ("/dashboard", "/assets/dashboard.js"),
    ] {
        let (status, headers, html) = fetch_page(&server.base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        let policy = header(&headers, "content-security-policy");
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(header(&headers, "x-frame-options"), "DENY");
        assert!(html.contains(&format!(r#"<script type="module" src="{script}">"#)));
        // The policy blocks inline code, so the pages must have none.
        assert!(!html.contains("<script>"), "{path} has an inline script");
        assert!(!html.contains(" style="), "{path} has an inline style");
        assert!(!html.contains(" onclick="), "{path} has an inline handler");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} loads from elsewhere"
        );
    }

    for (path, content_type) in [
        ("/assets/agnes.css", "text/css; charset=utf-8"),
        ("/assets/common.js", "text/javascript; charset=utf-8"),
        ("/assets/setup.js", "text/javascript; charset=utf-8"),
        ("/assets/dashboard.js", "text/javascript; charset=utf-8"),
    ] {
        let (status, headers, body) = fetch_page(&server.base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "content-type"), content_type, "{path}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        for parser in [
            "innerHTML =",
            "outerHTML =",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!body.contains(parser), "{path} parses markup with {parser}");
        }
    }

    let (status, headers, _) = fetch_page(&server.base, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/setup");

    server.bootstrap().await;
    let (status, headers, _) = fetch_page(&server.base, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/dashboard");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_list_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let admin = crate::fixture::token(&server.bootstrap().await);

    let (status, body) = server.get("/api/admin/connectors", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let (status, body) = server.get("/api/admin/connectors", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let connectors = body["connectors"].as_array().unwrap();
    let kinds: Vec<&str> = connectors
        .iter()
        .map(|c| c["data_source"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["files", "postgres"]);

    let files = &connectors[0];
    assert_eq!(files["aliases"], json!(["local", "csv"]));
    let path = files["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "path")
        .unwrap();
    assert_eq!(path["required"], true);
    assert_eq!(path["input"], "path");
    assert!(
        path["error_codes"]
            .as_array()
            .unwrap()
            .contains(&json!("configure.path_not_found"))
    );

    let postgres_fields: Vec<(&str, &str, bool)> = connectors[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["input"].as_str().unwrap(),
                f["secret"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        postgres_fields,
        [
            ("name", "text", false),
            ("url", "text", false),
            ("password", "password", true),
            ("mode", "choice", false),
            ("schemas", "list", false),
        ]
    );

    let (status, _) = server
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "ana@example.com", "password": "analyst password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, login) = server.login("ana@example.com", "analyst password").await;
    let analyst = crate::fixture::token(&login);
    let (status, body) = server.get("/api/admin/connectors", Some(&analyst)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    server.stop().await;
}
