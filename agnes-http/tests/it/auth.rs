//! Login, token checks and rate limiting.

use chrono::Utc;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::fixture::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, code, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_session_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let bootstrap = server.bootstrap().await;

    let (status, body) = server.login("  Admin@Example.com ", ADMIN_PASSWORD).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["email"], ADMIN_EMAIL);
    assert_eq!(body["role"], "admin");
    assert_eq!(body["user_id"], bootstrap["user_id"]);
    let (status, _) = server.get("/api/users", Some(&token(&body))).await;
    assert_eq!(status, StatusCode::OK);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let bootstrap = server.bootstrap().await;
    let valid = token(&bootstrap);

    let (status, body) = server.login(ADMIN_EMAIL, "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.invalid_credentials");

    let (status, body) = server.login("nobody@example.com", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.invalid_credentials");

    // A changed payload no longer matches the signature.
    let mut parts: Vec<String> = valid.split('.').map(str::to_string).collect();
    let payload = parts[1].clone();
    let flipped = if payload.ends_with('A') { 'B' } else { 'A' };
    parts[1] = format!("{}{flipped}", &payload[..payload.len() - 1]);
    let tampered = parts.join(".");
    let (status, body) = server.get("/auth/tokens", Some(&tampered)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.invalid_token");

    // A token signed with the instance's own key but expired a minute ago.
    let key = std::fs::read(dir.path().join("state/.jwt_secret")).unwrap();
    let now = Utc::now().timestamp();
    let claims = json!({
        "sub": bootstrap["user_id"], "role": "admin", "typ": "session",
        "jti": "expired-test", "iat": now - 3600, "exp": now - 60,
    });
    let expired = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(&key).unwrap(),
    )
    .unwrap();
    let (status, body) = server.get("/auth/tokens", Some(&expired)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.token_expired");

    // The same claims with a future expiry pass, so the rejection above was the expiry.
    let claims = json!({
        "sub": bootstrap["user_id"], "role": "admin", "typ": "session",
        "jti": "fresh-test", "iat": now, "exp": now + 600,
    });
    let fresh = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(&key).unwrap(),
    )
    .unwrap();
    let (status, _) = server.get("/auth/tokens", Some(&fresh)).await;
    assert_eq!(status, StatusCode::OK);

    let other_key = EncodingKey::from_secret(&[7u8; 32]).unwrap();
    let forged = jsonwebtoken::encode(&Header::default(), &claims, &other_key).unwrap();
    let (status, body) = server.get("/auth/tokens", Some(&forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "auth.invalid_token");

    let response = server
        .raw()
        .get(format!("{}/auth/tokens", server.base))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    server.bootstrap().await;
    let limit = agnes_core::auth::rate_limit::RateLimits::default().login;

    for attempt in 0..limit {
        let (status, _) = server.login(ADMIN_EMAIL, "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let response = server
        .raw()
        .post(format!("{}/auth/token", server.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = format!("{}/api/health", server.base);

    let response = server
        .raw()
        .get(&url)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");

    let response = server.raw().get(&url).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "not a UUID: {generated}");

    server.stop().await;
}
