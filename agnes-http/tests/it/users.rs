//! User management by admins, and the effect of roles and deactivation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixture::{TestServer, code, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let bootstrap = server.bootstrap().await;
    let admin = token(&bootstrap);
    let admin_id = bootstrap["user_id"].as_str().unwrap().to_string();

    let (status, created) = server
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "Ana@Example.com", "name": "Ana", "password": "analyst password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "ana@example.com");
    assert_eq!(created["role"], "analyst");
    assert_eq!(created["active"], json!(true));
    assert_eq!(created["has_password"], json!(true));
    assert!(created.get("password_hash").is_none());
    let ana_id = created["id"].as_str().unwrap().to_string();

    let (status, body) = server
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "ana@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "user.email_taken");

    let (status, body) = server
        .post(
            "/api/users",
            Some(&admin),
            json!({"email": "x@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, login) = server.login("ana@example.com", "analyst password").await;
    assert_eq!(status, StatusCode::OK);
    let ana = token(&login);

    let (status, body) = server.get("/api/users", Some(&ana)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "auth.forbidden");

    let (status, updated) = server
        .request(
            Method::PATCH,
            &format!("/api/users/{ana_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["role"], "viewer");

    let (status, _) = server
        .post(
            &format!("/api/users/{ana_id}/reset-password"),
            Some(&admin),
            json!({"password": "new analyst password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.login("ana@example.com", "analyst password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, login) = server
        .login("ana@example.com", "new analyst password")
        .await;
    assert_eq!(status, StatusCode::OK);
    let ana = token(&login);
    let (status, _) = server.get("/auth/tokens", Some(&ana)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, deactivated) = server
        .post(
            &format!("/api/users/{ana_id}/deactivate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deactivated}");
    assert_eq!(deactivated["active"], json!(false));
    let (status, body) = server.get("/auth/tokens", Some(&ana)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.account_deactivated");
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("/api/users/{id}/activate"),
        "{body}"
    );
    let (status, body) = server
        .login("ana@example.com", "new analyst password")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Activated again, the user logs in and the earlier session works again.
    let (status, activated) = server
        .post(
            &format!("/api/users/{ana_id}/activate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{activated}");
    assert_eq!(activated["active"], json!(true));
    assert_eq!(activated["deactivated_at"], json!(null));
    let (status, _) = server.get("/auth/tokens", Some(&ana)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, login) = server
        .login("ana@example.com", "new analyst password")
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let ana_again = token(&login);
    // Activating an active user changes nothing; only admins may activate.
    let (status, same) = server
        .post(
            &format!("/api/users/{ana_id}/activate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["active"], json!(true));
    let (status, body) = server
        .post(
            &format!("/api/users/{ana_id}/activate"),
            Some(&ana_again),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code(&body), "auth.forbidden");
    let (status, body) = server
        .post("/api/users/unknown/activate", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "user.not_found");

    let (status, body) = server
        .post(
            &format!("/api/users/{admin_id}/deactivate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&body), "user.last_admin");

    let (status, body) = server
        .post("/api/users/unknown/deactivate", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "user.not_found");

    let (status, listed) = server.get("/api/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    server.stop().await;
}
