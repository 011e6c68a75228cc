//! Personal access tokens: creation, use, listing and revocation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixture::{TestServer, code, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let session = token(&server.bootstrap().await);

    let (status, created) = server
        .post("/auth/tokens", Some(&session), json!({"name": "ci"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pat = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["prefix"].as_str().unwrap(), &id[..8]);
    assert!(created["expires_at"].is_string(), "default expiry missing");

    let (status, listed) = server.get("/auth/tokens", Some(&pat)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0].get("token").is_none(), "listing shows the token");
    assert!(!listed.to_string().contains(&pat));

    let (status, body) = server
        .post("/auth/tokens", Some(&pat), json!({"name": "nested"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body), "token.pat_cannot_create");

    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&session),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = server.get("/auth/tokens", Some(&pat)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.token_revoked");

    let (status, listed) = server.get("/auth/tokens", Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(listed[0]["revoked_at"].is_string());

    let (status, body) = server
        .request(Method::DELETE, "/auth/tokens/unknown", Some(&session), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "token.not_found");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_request_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let session = token(&server.bootstrap().await);

    let (status, body) = server
        .post("/auth/tokens", Some(&session), json!({"name": "  "}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "token.invalid_name");

    let (status, body) = server
        .post(
            "/auth/tokens",
            Some(&session),
            json!({"name": "x", "expires_in_days": 5000}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "token.invalid_expiry");

    let (status, body) = server
        .post(
            "/auth/tokens",
            Some(&session),
            json!({"name": "forever", "expires_in_days": null}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["expires_at"].is_null());
    let (status, _) = server
        .get("/auth/tokens", Some(body["token"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);

    server.stop().await;
}
