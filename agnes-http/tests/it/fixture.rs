//! A real server on 127.0.0.1 with its own data directory, and request helpers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agnes_core::{Instance, Settings};
use agnes_http::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A running server; call [`TestServer::stop`] at the end of each test.
pub struct TestServer {
    pub base: String,
    pub instance: Arc<Instance>,
    http: reqwest::Client,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, Settings::default()).await
    }

    pub async fn start_with(data_dir: &Path, settings: Settings) -> Self {
        let instance = Arc::new(Instance::open_with(data_dir, settings).expect("instance opens"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = oneshot::channel::<()>();
        let options = agnes_core::sync::PlaneOptions {
            connectors_dir: data_dir.join("connectors"),
            engine: agnes_core::query::EngineSettings::default(),
            policy: agnes_core::remote::RemotePolicy::default(),
        };
        let state = AppState::open(Arc::clone(&instance), options).expect("data plane opens");
        let task = tokio::spawn(agnes_http::serve(listener, state, async {
            let _ = signal.await;
        }));
        Self {
            base,
            instance,
            http: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    /// Stops the server, waits for it to finish and for the instance to be released, so the
    /// state database can be opened again.
    pub async fn stop(self) {
        drop(self.http);
        let _ = self.shutdown.send(());
        self.task.await.expect("server task").expect("server ran");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.instance) > 1 {
            assert!(
                Instant::now() < deadline,
                "the instance is still in use after shutdown"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    /// Creates the first admin and returns the bootstrap response.
    pub async fn bootstrap(&self) -> Value {
        let (status, body) = self
            .post(
                "/auth/bootstrap",
                None,
                json!({"email": ADMIN_EMAIL, "name": "Admin", "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/token",
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Creates a user with `role` as `admin` and returns the user's session token.
    pub async fn user_token(&self, admin: &str, email: &str, role: &str) -> String {
        let password = format!("{role}-password");
        let (status, body) = self
            .post(
                "/api/users",
                Some(admin),
                json!({"email": email, "password": password, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, login) = self.login(email, &password).await;
        assert_eq!(status, StatusCode::OK, "{login}");
        token(&login)
    }

    /// Waits up to two minutes for sync job `id` to finish and returns it.
    pub async fn wait_for_job(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, job) = self.get(&format!("/api/sync/jobs/{id}"), Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if job["status"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates the first admin, publishes the files of `folder` as source `files` with one
    /// sync, and returns the admin's token.
    pub async fn publish_folder(&self, folder: &Path) -> String {
        let admin = token(&self.bootstrap().await);
        let (status, body) = self
            .post(
                "/api/admin/configure",
                Some(&admin),
                json!({"data_source": "files", "name": "files", "path": folder}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, started) = self
            .post("/api/sync/trigger", Some(&admin), json!(null))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        let job = self
            .wait_for_job(&admin, started["job_id"].as_str().unwrap())
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        admin
    }
}

/// Returns the error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// Returns the session token of a login or bootstrap response.
pub fn token(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Whether a missing test component fails the test (under `CI=true`) instead of skipping it.
pub fn required_in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
