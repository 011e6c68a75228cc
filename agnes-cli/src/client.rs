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
}

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
        })
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
                Some(
                    "Check that the server runs and that --server, AGNES_SERVER or the stored login (`agnes login`) points to it."
                        .to_string(),
                ),
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
        let error = &json["error"];
        let message = error["message"]
            .as_str()
            .unwrap_or("the server returned no error message");
        let code = error["code"].as_str().unwrap_or("unknown");
        Err(ClientError::new(
            format!("{message} (HTTP {}, {code})", status.as_u16()),
            error["hint"].as_str().map(str::to_string),
        ))
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
                Some(
                    "Check that the server runs and that --server, AGNES_SERVER or the stored login (`agnes login`) points to it."
                        .to_string(),
                ),
            )
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let error = &json["error"];
            let message = error["message"].as_str().unwrap_or(text.as_str());
            let code = error["code"].as_str().unwrap_or("unknown");
            return Err(ClientError::new(
                format!("{message} (HTTP {}, {code})", status.as_u16()),
                error["hint"].as_str().map(str::to_string),
            ));
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
            out.write_all(&chunk)
                .map_err(|e| ClientError::new(format!("cannot write the result: {e}"), None))?;
            written += chunk.len() as u64;
        }
        out.flush()
            .map_err(|e| ClientError::new(format!("cannot write the result: {e}"), None))?;
        Ok((written, headers))
    }
}
