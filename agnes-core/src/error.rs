//! The one error type of `agnes-core`.
//!
//! Every failure a caller can see carries a stable machine-readable code (`auth.invalid_credentials`,
//! `setup.required`, ...), a message in plain words and, where there is one, a hint with the next
//! step. Adapters map [`ErrorKind`] to their own status model once (HTTP status, exit code) and
//! pass code, message and hint through unchanged.

use std::time::Duration;

/// Result alias used throughout `agnes-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Class of a failure, which decides the HTTP status or exit code an adapter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or a value is invalid (HTTP 422).
    InvalidInput,
    /// The SQL of a query is invalid or not allowed, or DuckDB rejected it (HTTP 400).
    InvalidQuery,
    /// Credentials are missing, wrong, expired or revoked (HTTP 401).
    Unauthenticated,
    /// The caller is known but not allowed to do this (HTTP 403).
    Forbidden,
    /// The named thing does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with existing state, such as a duplicate email (HTTP 409).
    Conflict,
    /// Too many attempts from one client; retry after the given delay (HTTP 429).
    RateLimited {
        /// Time until the client may try again.
        retry_after: Duration,
    },
    /// The instance has no admin yet and only setup routes work (HTTP 503).
    SetupRequired,
    /// The instance cannot serve this now, for example its state database is locked (HTTP 503).
    Unavailable,
    /// The server is at its limit of concurrent work; retry after the given delay (HTTP 503).
    Busy {
        /// Time after which a retry is likely to be accepted.
        retry_after: Duration,
    },
    /// The client accepts no representation the server can send (HTTP 406).
    NotAcceptable,
    /// The request is valid but exceeds a limit of the server, such as a query's time or
    /// memory limit (HTTP 422).
    LimitExceeded,
    /// A bug or an unexpected failure of the machine (HTTP 500).
    Internal,
}

/// Joins two texts as sentences: `first`, a full stop unless it already ends in `.`, `!`, `?` or
/// `:`, a space, then `second`. An empty part is left out.
pub fn join_sentences(first: &str, second: &str) -> String {
    let first = first.trim_end();
    let second = second.trim();
    if first.is_empty() {
        return second.to_string();
    }
    if second.is_empty() {
        return first.to_string();
    }
    if first.ends_with(['.', '!', '?', ':']) {
        format!("{first} {second}")
    } else {
        format!("{first}. {second}")
    }
}

/// Closes `text` with a full stop unless it already ends in `.`, `!` or `?`.
pub fn end_sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// A failure with a stable code, a message and an optional hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Class of the failure.
    pub kind: ErrorKind,
    /// Stable machine-readable code, such as `auth.token_expired`.
    pub code: &'static str,
    /// What failed, in plain words.
    pub message: String,
    /// The next step for the reader, if there is one.
    pub hint: Option<String>,
}

impl Error {
    /// Creates an error of `kind` with `code` and `message` and no hint.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Returns the error with `hint` as its next step.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message and the hint as one text, with a full stop between them where the message
    /// has no closing punctuation; the message alone when there is no hint.
    pub fn message_and_hint(&self) -> String {
        match &self.hint {
            Some(hint) => join_sentences(&self.message, hint),
            None => self.message.clone(),
        }
    }

    /// Creates an [`ErrorKind::InvalidInput`] error.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, code, message)
    }

    /// Creates an [`ErrorKind::Unauthenticated`] error.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, code, message)
    }

    /// Creates an [`ErrorKind::Forbidden`] error.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    /// Creates an [`ErrorKind::NotFound`] error.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    /// Creates an [`ErrorKind::Conflict`] error.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// Creates an [`ErrorKind::Internal`] error with the code `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", message)
    }

    /// Creates the error for a failed state-database call, naming the step that failed.
    pub fn state_db(step: &str, source: &duckdb::Error) -> Self {
        Self::new(
            ErrorKind::Internal,
            "state.query_failed",
            format!("state database call failed while {step}: {source}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_join_with_one_full_stop() {
        assert_eq!(
            join_sentences("the folder /x does not exist", "Create it."),
            "the folder /x does not exist. Create it."
        );
        assert_eq!(join_sentences("done.", "Next."), "done. Next.");
        assert_eq!(join_sentences("", "Next."), "Next.");
        assert_eq!(join_sentences("alone", ""), "alone");
        assert_eq!(end_sentence("another path."), "another path.");
        assert_eq!(end_sentence("no stop"), "no stop.");
        let error =
            Error::invalid("x.y", "this action requires the admin role").with_hint("Ask an admin.");
        assert_eq!(
            error.message_and_hint(),
            "this action requires the admin role. Ask an admin."
        );
    }
}
