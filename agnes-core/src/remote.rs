//! Attaching the external catalogs that `_remote_attach` rows name, under an allowlist.
//!
//! The orchestrator attaches them to build the analytics database, and every query connection
//! attaches them again, because an attachment lives only as long as its DuckDB instance. Both go
//! through [`attach`], so the two can never disagree about what is allowed.
//!
//! An extract is written by a connector, which may be third-party code, so its `_remote_attach`
//! rows are untrusted: only allowlisted extensions are loaded (never installed from the network),
//! and only allowlisted environment variables are read as secrets. Without the token allowlist, a
//! connector could name `JWT_SECRET_KEY` and point the url at a server it controls.

use std::collections::BTreeSet;
use std::path::PathBuf;

use contract_spec::identifier::{is_identifier, quote_identifier, quote_literal};
use duckdb::Connection;
use serde::{Deserialize, Serialize};

/// Extensions a `_remote_attach` row may name unless `AGNES_REMOTE_ATTACH_EXTENSIONS` replaces the list.
pub const DEFAULT_EXTENSIONS: &[&str] = &["postgres", "sqlite", "keboola", "bigquery"];

/// Variables a `token_env` may name unless `AGNES_REMOTE_ATTACH_TOKEN_ENVS` replaces the list.
pub const DEFAULT_TOKEN_ENVS: &[&str] = &[
    "KEBOOLA_STORAGE_TOKEN",
    "KBC_TOKEN",
    "KBC_STORAGE_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "PGPASSWORD",
];

/// Prefix of the secret names that Agnes itself stores for configured sources; always allowed.
pub const MANAGED_SECRET_PREFIX: &str = "AGNES_SECRET_";

/// One `_remote_attach` row of a published source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAttachment {
    /// Source whose extract declared the row.
    pub source: String,
    /// Catalog name the remote views use.
    pub alias: String,
    /// DuckDB extension that attaches it.
    pub extension: String,
    /// ATTACH target, without secrets.
    pub url: String,
    /// Name of the variable holding the secret, if any.
    pub token_env: Option<String>,
}

/// Looks up secrets by name: values that Agnes stored for configured sources, then the process
/// environment.
pub trait SecretLookup: Send + Sync {
    /// Returns the secret named `name`, or `None` when it is not set.
    fn secret(&self, name: &str) -> Option<String>;
}

/// A [`SecretLookup`] that reads only the process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl SecretLookup for EnvSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

/// What remote attachments may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePolicy {
    /// Extensions that may be loaded.
    pub extensions: BTreeSet<String>,
    /// Environment variables that may be read as secrets, besides `AGNES_SECRET_*`.
    pub token_envs: BTreeSet<String>,
    /// Folder DuckDB loads extension files from; `None` uses DuckDB's default.
    pub extension_directory: Option<PathBuf>,
}

impl Default for RemotePolicy {
    fn default() -> Self {
        Self {
            extensions: DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
            token_envs: DEFAULT_TOKEN_ENVS.iter().map(|s| s.to_string()).collect(),
            extension_directory: None,
        }
    }
}

impl RemotePolicy {
    /// Reads `AGNES_REMOTE_ATTACH_EXTENSIONS` and `AGNES_REMOTE_ATTACH_TOKEN_ENVS` (comma-separated
    /// lists that replace the defaults) and `AGNES_EXTENSION_DIR`.
    pub fn from_env() -> Self {
        let list = |name: &str| -> Option<BTreeSet<String>> {
            std::env::var(name).ok().map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
        };
        let mut policy = Self::default();
        if let Some(extensions) = list("AGNES_REMOTE_ATTACH_EXTENSIONS") {
            policy.extensions = extensions;
        }
        if let Some(token_envs) = list("AGNES_REMOTE_ATTACH_TOKEN_ENVS") {
            policy.token_envs = token_envs;
        }
        policy.extension_directory = std::env::var_os("AGNES_EXTENSION_DIR").map(PathBuf::from);
        policy
    }

    fn allows_token_env(&self, name: &str) -> bool {
        self.token_envs.contains(name) || name.starts_with(MANAGED_SECRET_PREFIX)
    }
}

/// Loads the row's extension and attaches its catalog read-only to `conn`.
///
/// Returns a message that names the problem and the fix, with any secret value removed, when the
/// extension or variable is not allowed, the secret is missing, or DuckDB fails.
pub fn attach(
    conn: &Connection,
    row: &RemoteAttachment,
    policy: &RemotePolicy,
    secrets: &dyn SecretLookup,
) -> Result<(), String> {
    if !is_identifier(&row.alias) || !is_identifier(&row.extension) {
        return Err(format!(
            "alias {:?} or extension {:?} is not an identifier",
            row.alias, row.extension
        ));
    }
    if !policy.extensions.contains(&row.extension) {
        return Err(format!(
            "extension {} is not allowed for remote attach; add it to AGNES_REMOTE_ATTACH_EXTENSIONS \
             (now: {}) if you trust it",
            row.extension,
            policy
                .extensions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        ));
    }

    let secret = match row.token_env.as_deref().filter(|name| !name.is_empty()) {
        None => None,
        Some(name) if !policy.allows_token_env(name) => {
            return Err(format!(
                "token_env {name} is not an allowed secret name; add it to AGNES_REMOTE_ATTACH_TOKEN_ENVS \
                 or configure the source through the API so Agnes stores its secret"
            ));
        }
        Some(name) => match secrets.secret(name) {
            Some(value) => Some(value),
            None => {
                return Err(format!(
                    "the secret {name} is not set; set it in the server's environment or configure the \
                     source again with POST /api/admin/configure"
                ));
            }
        },
    };

    let redact = |message: String| match &secret {
        Some(value) if !value.is_empty() => message.replace(value.as_str(), "***"),
        _ => message,
    };
    conn.execute_batch(&format!("LOAD {}", row.extension))
        .map_err(|e| {
            redact(format!(
                "cannot load extension {}: {e}; install its file into the extension directory",
                row.extension
            ))
        })?;

    let (url, options) = target_with_secret(row, secret.as_deref());
    let sql = format!(
        "ATTACH {} AS {} (TYPE {}, READ_ONLY{options})",
        quote_literal(&url),
        quote_identifier(&row.alias),
        row.extension
    );
    conn.execute_batch(&sql).map_err(|e| {
        redact(format!(
            "cannot attach {} for source {}: {e}",
            row.alias, row.source
        ))
    })
}

/// Puts the secret where the extension expects it: a postgres password into the connection
/// string, any other extension's token into a `TOKEN` option.
fn target_with_secret(row: &RemoteAttachment, secret: Option<&str>) -> (String, String) {
    let Some(secret) = secret else {
        return (row.url.clone(), String::new());
    };
    if row.extension != "postgres" {
        return (
            row.url.clone(),
            format!(", TOKEN {}", quote_literal(secret)),
        );
    }
    let url = if row.url.contains("://") {
        let separator = if row.url.contains('?') { '&' } else { '?' };
        format!("{}{separator}password={}", row.url, percent_encode(secret))
    } else {
        let escaped = secret.replace('\\', "\\\\").replace('\'', "\\'");
        format!("{} password='{escaped}'", row.url)
    };
    (url, String::new())
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(extension: &str, url: &str, token_env: Option<&str>) -> RemoteAttachment {
        RemoteAttachment {
            source: "crm".into(),
            alias: "pg".into(),
            extension: extension.into(),
            url: url.into(),
            token_env: token_env.map(str::to_string),
        }
    }

    #[test]
    fn password_goes_into_libpq_string() {
        let (url, options) =
            target_with_secret(&row("postgres", "host=db dbname=crm", None), Some("it's"));
        assert_eq!(url, "host=db dbname=crm password='it\\'s'");
        assert_eq!(options, "");
    }

    #[test]
    fn password_goes_into_uri() {
        let (url, _) = target_with_secret(
            &row("postgres", "postgresql://agnes@db/crm", None),
            Some("p@ss word"),
        );
        assert_eq!(url, "postgresql://agnes@db/crm?password=p%40ss%20word");
    }

    #[test]
    fn other_extensions_get_token_option() {
        let (url, options) = target_with_secret(
            &row("keboola", "https://connection.keboola.com", None),
            Some("t"),
        );
        assert_eq!(url, "https://connection.keboola.com");
        assert_eq!(options, ", TOKEN 't'");
    }

    struct NoSecrets;
    impl SecretLookup for NoSecrets {
        fn secret(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn disallowed_extension_rejected() {
        let conn = Connection::open_in_memory().unwrap();
        let error = attach(
            &conn,
            &row("httpfs", "x", None),
            &RemotePolicy::default(),
            &NoSecrets,
        )
        .unwrap_err();
        assert!(error.contains("AGNES_REMOTE_ATTACH_EXTENSIONS"), "{error}");
    }

    #[test]
    fn server_secret_names_rejected() {
        let conn = Connection::open_in_memory().unwrap();
        let error = attach(
            &conn,
            &row("postgres", "host=x", Some("JWT_SECRET_KEY")),
            &RemotePolicy::default(),
            &NoSecrets,
        )
        .unwrap_err();
        assert!(error.contains("not an allowed secret name"), "{error}");
    }

    #[test]
    fn missing_secret_named() {
        let conn = Connection::open_in_memory().unwrap();
        let error = attach(
            &conn,
            &row("postgres", "host=x", Some("AGNES_SECRET_CRM")),
            &RemotePolicy::default(),
            &NoSecrets,
        )
        .unwrap_err();
        assert!(error.contains("AGNES_SECRET_CRM is not set"), "{error}");
    }
}
