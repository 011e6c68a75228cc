//! A small HTTP client for the commands that talk to a running server.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A failure of a server call, printed as `error:` and `hint:` lines.
#[derive(Debug)]
pub struct ClientError {
    message: String,
    hint: Option<String>,
}

impl ClientError {
    pub fn new(message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            message: message.into(),
            hint,
        }
    }

    /// Creates an error without a hint.
    pub fn from_message(message: String) -> Self {
        Self::new(message, None)
    }

    /// Creates an error with a hint.
    pub fn with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(message, Some(hint.into()))
    }

    /// The message, without the hint.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if there is one.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Prints the error to stderr.
    pub fn print(&self) {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
    }
}

/// Prints a core error to stderr with its code and hint.
pub fn print_core_error(error: &agnes_core::Error) {
    eprintln!("error: {} ({})", error.message, error.code);
    if let Some(hint) = &error.hint {
        eprintln!("hint: {hint}");
    }
}

/// A server address and an optional bearer token.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// Hint of an error when the server cannot be reached.
    unreachable_hint: String,
}

/// Hint of an unreachable server for commands that take the server from `--server`.
const UNREACHABLE_HINT: &str = "Check that the server runs and that --server, AGNES_SERVER or the stored login (`agnes login`) points to it.";

impl Client {
    /// Creates a client for the server at `base` (such as `http://127.0.0.1:8000`).
    ///
    /// Fails when the HTTP client cannot be built (for example when TLS roots cannot load).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::new(format!("cannot build the HTTP client: {e}"), None))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            unreachable_hint: UNREACHABLE_HINT.to_string(),
        })
    }

    /// Returns the client with `hint` for errors when the server cannot be reached, for commands
    /// that take the server another way than from `--server`.
    pub fn with_unreachable_hint(mut self, hint: impl Into<String>) -> Self {
        self.unreachable_hint = hint.into();
        self
    }

    /// Sends a request with an optional JSON body and returns the status and the JSON body
    /// (`null` when empty).
    ///
    /// Fails when the server cannot be reached or the body is not JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ClientError::new(
                format!("{method} {url} failed: {e}"),
                Some(self.unreachable_hint.clone()),
            )
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            ClientError::new(
                format!("reading the response of {method} {url} failed: {e}"),
                None,
            )
        })?;
        if text.is_empty() {
            return Ok((status, Value::Null));
        }
        let json = serde_json::from_str(&text).map_err(|e| {
            ClientError::new(
                format!("{method} {url} returned {status} with a body that is not JSON: {e}"),
                None,
            )
        })?;
        Ok((status, json))
    }

    /// Sends a request and returns the JSON body of a 2xx response.
    ///
    /// Fails with the server's error message and hint for any other status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let (status, json) = self.send(method, path, body).await?;
        if status.is_success() {
            return Ok(json);
        }
        Err(self.server_error(status, &json, "the server returned no error message"))
    }

    /// Turns an error response into a [`ClientError`] with the server's message and code, and a
    /// hint for command-line users ([`cli_hint`]) or else the server's own.
    fn server_error(&self, status: StatusCode, json: &Value, fallback: &str) -> ClientError {
        let error = &json["error"];
        let message = error["message"].as_str().unwrap_or(fallback);
        let code = error["code"].as_str().unwrap_or("unknown");
        let hint =
            cli_hint(code, json, &self.base).or_else(|| error["hint"].as_str().map(str::to_string));
        ClientError::new(
            format!("{message} (HTTP {}, {code})", status.as_u16()),
            hint,
        )
    }

    /// Sends a request and copies the body of a 2xx response to `out` as it arrives; returns
    /// the bytes written and the response headers.
    ///
    /// Fails with the server's error message and hint for any other status, and when the
    /// transfer breaks off (the server aborts a result that fails half-way).
    pub async fn stream_to(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        out: &mut dyn std::io::Write,
    ) -> Result<(u64, reqwest::header::HeaderMap), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(|e| {
            ClientError::new(
                format!("{method} {url} failed: {e}"),
                Some(self.unreachable_hint.clone()),
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(self.server_error(status, &json, &text));
        }
        let headers = response.headers().clone();
        let mut written = 0u64;
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                ClientError::new(
                    format!("the result of {method} {url} broke off after {written} bytes: {e}"),
                    Some("The query failed while it was sent; run it again, or with a smaller limit, to see the error.".to_string()),
                )
            })?;
            let Some(chunk) = chunk else { break };
            out.write_all(&chunk).map_err(write_failed)?;
            written += chunk.len() as u64;
        }
        out.flush().map_err(write_failed)?;
        Ok((written, headers))
    }
}

/// The error of a failed write of a result; a closed pipe (`agnes query ... | head`) ends the
/// program quietly instead.
fn write_failed(error: std::io::Error) -> ClientError {
    if crate::out::is_broken_pipe(&error) {
        crate::out::stop_on_write_error(&error);
    }
    ClientError::new(format!("cannot write the result: {error}"), None)
}

/// The next step for a command-line user for the server's error `code`, where the server's hint
/// names an HTTP route instead of an `agnes` command; `None` keeps the server's hint.
pub fn cli_hint(code: &str, body: &Value, server: &str) -> Option<String> {
    let hint = match code {
        "auth.missing_token" | "auth.invalid_token" | "auth.token_expired" => format!(
            "Log in with `agnes login --server {server}`, or pass a valid token with --token or AGNES_TOKEN."
        ),
        "auth.token_revoked" => format!(
            "Log in again with `agnes login --server {server}`, or create a new personal access token with `agnes tokens create NAME`."
        ),
        "auth.account_deactivated" => {
            "Ask an admin of this instance to activate it again (`agnes admin users activate ID`)."
                .to_string()
        }
        "setup.required" => format!(
            "Create the first admin with `agnes bootstrap --server {server} --email EMAIL`."
        ),
        "setup.already_done" => format!("Log in with `agnes login --server {server}`."),
        "sync.already_running" => {
            let id = body["job_id"].as_str().filter(|id| !id.is_empty());
            match id {
                Some(id) => format!(
                    "Follow it with `agnes admin jobs {id}`, then run `agnes sync` again if you still need to."
                ),
                None => "List the jobs with `agnes admin jobs`, then run `agnes sync` again when the running one is done.".to_string(),
            }
        }
        "sync.job_not_found" => "List recent jobs with `agnes admin jobs`.".to_string(),
        "sync.unknown_tables" => "List the registered tables with `agnes admin registry list`; without --table, `agnes sync` syncs every table.".to_string(),
        "user.not_found" => "List users with `agnes admin users list` to find the id.".to_string(),
        "token.not_found" => "List your tokens with `agnes tokens list` to find the id.".to_string(),
        "registry.not_found" => {
            "List the registered tables with `agnes admin registry list`.".to_string()
        }
        "registry.already_registered" => "Change it with `agnes admin registry update ID`, or choose another name.".to_string(),
        "sources.not_found" => {
            "List the configured sources with `agnes admin sources`.".to_string()
        }
        "configure.unknown_data_source" => "List the connectors and their fields with `agnes admin connectors`; Keboola and BigQuery are not built in yet, and a custom connector can read them (see docs/connectors.md).".to_string(),
        "data.table_not_found" | "query.table_denied" => {
            "List the tables you may read with `agnes catalog`.".to_string()
        }
        "data.download_forbidden" => {
            "Query it with `agnes query`, or ask an admin for the analyst role.".to_string()
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_hints_name_commands() {
        let server = "http://127.0.0.1:8000";
        let hint = cli_hint("auth.invalid_token", &Value::Null, server).unwrap();
        assert_eq!(
            hint,
            "Log in with `agnes login --server http://127.0.0.1:8000`, or pass a valid token with --token or AGNES_TOKEN."
        );
        let running =
            serde_json::json!({"error": {"code": "sync.already_running"}, "job_id": "j1"});
        assert!(
            cli_hint("sync.already_running", &running, server)
                .unwrap()
                .starts_with("Follow it with `agnes admin jobs j1`")
        );
        assert_eq!(
            cli_hint("user.not_found", &Value::Null, server).unwrap(),
            "List users with `agnes admin users list` to find the id."
        );
        assert_eq!(cli_hint("query.timeout", &Value::Null, server), None);
        for code in [
            "auth.missing_token",
            "sync.unknown_tables",
            "registry.not_found",
        ] {
            let hint = cli_hint(code, &Value::Null, server).unwrap();
            assert!(
                !hint.contains("GET /") && !hint.contains("POST /"),
                "{hint}"
            );
        }
    }
}
