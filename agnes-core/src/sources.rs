//! Configured data sources and their secrets, kept in the state folder.
//!
//! `state/sources.json` holds each source's settings and `state/source-secrets.json` its
//! passwords; both are written atomically with mode 0600. No API returns a secret: callers get
//! [`SourceView`]s, which only say whether a password is set. Connectors and remote attachments
//! read secrets through [`SourceStore`]'s [`SecretLookup`] implementation, under the names
//! `AGNES_SECRET_<SOURCE>_PASSWORD`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use contract_spec::QueryMode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::remote::{MANAGED_SECRET_PREFIX, SecretLookup};

/// File name of the source settings inside `state/`.
pub const SOURCES_FILE: &str = "sources.json";

/// File name of the source secrets inside `state/`.
pub const SECRETS_FILE: &str = "source-secrets.json";

/// Settings of one configured source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    /// A folder of CSV, TSV, Parquet or JSON files.
    Files {
        /// Folder path on the server.
        #[schema(value_type = String)]
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// libpq connection string or URI, without the password.
        url: String,
        /// Schemas to offer; empty offers every non-system schema.
        #[serde(default)]
        schemas: Vec<String>,
        /// `remote` (query PostgreSQL live) or `local` (copy to Parquet).
        #[schema(value_type = String)]
        mode: QueryMode,
    },
}

impl SourceConfig {
    /// Connector type name.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Files { .. } => "files",
            SourceConfig::Postgres { .. } => "postgres",
        }
    }
}

/// A configured source as APIs show it: settings, and whether a password is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// Source name.
    pub name: String,
    /// Settings.
    pub config: SourceConfig,
    /// Whether Agnes stores a password for it.
    pub has_password: bool,
}

/// The name under which a source's password is stored.
pub fn password_secret_name(source: &str) -> String {
    format!("{MANAGED_SECRET_PREFIX}{}_PASSWORD", source.to_uppercase())
}

/// The configured sources of an instance.
#[derive(Debug)]
pub struct SourceStore {
    settings_path: PathBuf,
    secrets_path: PathBuf,
    lock: Mutex<()>,
}

impl SourceStore {
    /// Opens the store in `state_dir`; the files are created on the first write.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            settings_path: state_dir.join(SOURCES_FILE),
            secrets_path: state_dir.join(SECRETS_FILE),
            lock: Mutex::new(()),
        }
    }

    /// Every configured source, by name.
    ///
    /// Fails with `sources.unreadable` when the file exists but cannot be parsed.
    pub fn list(&self) -> Result<BTreeMap<String, SourceConfig>> {
        read_json(&self.settings_path)
    }

    /// Every configured source, without secrets.
    pub fn views(&self) -> Result<Vec<SourceView>> {
        let secrets: BTreeMap<String, String> = read_json(&self.secrets_path)?;
        Ok(self
            .list()?
            .into_iter()
            .map(|(name, config)| SourceView {
                has_password: secrets.contains_key(&password_secret_name(&name)),
                name,
                config,
            })
            .collect())
    }

    /// Adds or replaces source `name`. A `password` of `Some` replaces the stored one, `None` keeps it.
    ///
    /// Fails with `sources.invalid_name` when `name` is not an identifier, and with
    /// `sources.write_failed` when the files cannot be written.
    pub fn configure(
        &self,
        name: &str,
        config: SourceConfig,
        password: Option<&str>,
    ) -> Result<()> {
        if let Some(problem) = contract_spec::identifier::identifier_problem(name) {
            return Err(Error::invalid("sources.invalid_name", format!("source name {name:?} {problem}"))
                .with_hint("Use letters, digits and underscores, starting with a letter, for example crm or sales_files."));
        }
        let _guard = self.lock.lock().expect("sources lock");
        let mut sources = self.list()?;
        sources.insert(name.to_string(), config);
        write_json(&self.settings_path, &sources)?;
        if let Some(password) = password {
            let mut secrets: BTreeMap<String, String> = read_json(&self.secrets_path)?;
            secrets.insert(password_secret_name(name), password.to_string());
            write_json(&self.secrets_path, &secrets)?;
        }
        Ok(())
    }

    /// Removes source `name` and its secret. Returns whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool> {
        let _guard = self.lock.lock().expect("sources lock");
        let mut sources = self.list()?;
        let existed = sources.remove(name).is_some();
        write_json(&self.settings_path, &sources)?;
        let mut secrets: BTreeMap<String, String> = read_json(&self.secrets_path)?;
        if secrets.remove(&password_secret_name(name)).is_some() {
            write_json(&self.secrets_path, &secrets)?;
        }
        Ok(existed)
    }
}

impl SecretLookup for SourceStore {
    fn secret(&self, name: &str) -> Option<String> {
        let stored: BTreeMap<String, String> = read_json(&self.secrets_path).unwrap_or_default();
        stored
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|value| !value.is_empty())
    }
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                "sources.unreadable",
                format!("{} is not valid: {e}", path.display()),
            )
            .with_hint(
                "Restore the file from a backup, or delete it and configure the sources again.",
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(error) => Err(Error::new(
            ErrorKind::Internal,
            "sources.unreadable",
            format!("cannot read {}: {error}", path.display()),
        )),
    }
}

/// Writes `value` as JSON to a temporary file with mode 0600 and renames it over `path`.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::new(
            ErrorKind::Internal,
            "sources.write_failed",
            format!("cannot write {}: {e}", path.display()),
        )
        .with_hint("Check free disk space and the permissions of the state folder.")
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secrets_stored_private_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let store = SourceStore::new(dir.path());
        let config = SourceConfig::Postgres {
            url: "host=db dbname=crm".into(),
            schemas: vec![],
            mode: QueryMode::Remote,
        };
        store
            .configure("crm", config.clone(), Some("hunter2"))
            .unwrap();

        for file in [SOURCES_FILE, SECRETS_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
        let views = store.views().unwrap();
        assert_eq!(
            views,
            vec![SourceView {
                name: "crm".into(),
                config,
                has_password: true
            }]
        );
        assert!(!serde_json::to_string(&views).unwrap().contains("hunter2"));
        assert_eq!(
            store.secret("AGNES_SECRET_CRM_PASSWORD").as_deref(),
            Some("hunter2")
        );
        assert!(
            !std::fs::read_to_string(dir.path().join(SOURCES_FILE))
                .unwrap()
                .contains("hunter2")
        );
    }

    #[test]
    fn bad_names_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let store = SourceStore::new(dir.path());
        let error = store
            .configure("my source", SourceConfig::Files { path: "/x".into() }, None)
            .unwrap_err();
        assert_eq!(error.code, "sources.invalid_name");
    }
}
