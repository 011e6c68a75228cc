//! The key that signs session tokens and personal access tokens (HS256).
//!
//! The key comes from `JWT_SECRET_KEY` when set, else from `state/.jwt_secret`, else it is
//! generated (256 random bits, hex-encoded) and written to that file with mode 0600, so tokens
//! stay valid across restarts. The value is never logged.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Minimum key length in bytes; HS256 with a shorter key is weaker than its 256-bit hash.
pub const MIN_SECRET_LEN: usize = 32;

/// Origin of the signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// The `JWT_SECRET_KEY` environment variable (or the caller's configuration).
    Configured,
    /// The existing `state/.jwt_secret` file.
    File,
    /// Generated at this start and written to `state/.jwt_secret`.
    Generated,
}

impl SecretSource {
    /// Returns the name shown in diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "environment",
            Self::File => "file",
            Self::Generated => "generated",
        }
    }
}

/// A signing key and where it came from. Its `Debug` output hides the key.
#[derive(Clone)]
pub struct JwtSecret {
    key: Vec<u8>,
    source: SecretSource,
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSecret")
            .field("key", &"<hidden>")
            .field("source", &self.source)
            .finish()
    }
}

impl JwtSecret {
    /// Returns the key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Returns where the key came from.
    pub fn source(&self) -> SecretSource {
        self.source
    }
}

/// Loads the signing key: `configured` if given, else the file at `path`, else a new key written
/// to `path`.
///
/// Fails with `secret.too_short` when the configured key or the file's key is shorter than
/// [`MIN_SECRET_LEN`] bytes, and with `secret.io` when the file cannot be read or written.
pub fn load_or_generate(path: &Path, configured: Option<&str>) -> Result<JwtSecret> {
    if let Some(value) = configured {
        check_length(value, "JWT_SECRET_KEY")?;
        return Ok(JwtSecret {
            key: value.as_bytes().to_vec(),
            source: SecretSource::Configured,
        });
    }

    if let Some(value) = read_existing(path)? {
        check_length(&value, &path.display().to_string())?;
        return Ok(JwtSecret {
            key: value.into_bytes(),
            source: SecretSource::File,
        });
    }

    let value = hex::encode(rand::random::<[u8; 32]>());
    write_atomically(path, &value)?;
    tracing::info!(path = %path.display(), "generated a new token signing key");
    Ok(JwtSecret {
        key: value.into_bytes(),
        source: SecretSource::Generated,
    })
}

/// Reads the key file; a missing or empty file gives `None`, so a new key is generated.
fn read_existing(path: &Path) -> Result<Option<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "read", &e)),
    };
    let value = text.trim();
    if value.is_empty() {
        tracing::warn!(path = %path.display(), "token signing key file is empty; generating a new key");
        return Ok(None);
    }
    restrict_mode(path)?;
    Ok(Some(value.to_string()))
}

/// Sets the key file's mode back to 0600 when someone widened it.
fn restrict_mode(path: &Path) -> Result<()> {
    let mode = fs::metadata(path)
        .map_err(|e| io_error(path, "inspect", &e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "token signing key file was readable by others; setting mode 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(path, "set the mode of", &e))?;
    }
    Ok(())
}

fn check_length(value: &str, origin: &str) -> Result<()> {
    if value.len() >= MIN_SECRET_LEN {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        "secret.too_short",
        format!(
            "the token signing key from {origin} is {} bytes long; at least {MIN_SECRET_LEN} are required",
            value.len()
        ),
    )
    .with_hint(
        "Set JWT_SECRET_KEY to 32 or more random characters (for example the output of \
         `openssl rand -hex 32`), or unset it to let agnes generate and store a key.",
    ))
}

/// Writes `value` to a temporary file with mode 0600 and renames it over `path`, so a reader
/// never sees a partial key.
fn write_atomically(path: &Path, value: &str) -> Result<()> {
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| io_error(&temp, "create", &e))?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&temp, "write", &e))?;
    fs::rename(&temp, path).map_err(|e| io_error(path, "rename the new key to", &e))
}

fn io_error(path: &Path, action: &str, source: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        "secret.io",
        format!(
            "cannot {action} the token signing key file {}: {source}",
            path.display()
        ),
    )
    .with_hint("Check that the state folder of the data directory is writable by this user.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".jwt_secret");

        let first = load_or_generate(&path, None).unwrap();
        let second = load_or_generate(&path, None).unwrap();

        assert_eq!(first.source(), SecretSource::Generated);
        assert_eq!(first.key().len(), 64);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(second.source(), SecretSource::File);
        assert_eq!(second.key(), first.key());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
    }

    #[test]
    fn short_configured_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let error =
            load_or_generate(&dir.path().join(".jwt_secret"), Some("too-short")).unwrap_err();
        assert_eq!(error.code, "secret.too_short");
        assert!(error.message.contains("9 bytes"), "{}", error.message);
        assert!(!dir.path().join(".jwt_secret").exists());
    }

    #[test]
    fn short_key_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".jwt_secret");
        fs::write(&path, "short").unwrap();
        assert_eq!(
            load_or_generate(&path, None).unwrap_err().code,
            "secret.too_short"
        );
    }

    #[test]
    fn configured_key_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".jwt_secret");
        fs::write(&path, "f".repeat(40)).unwrap();
        let secret = load_or_generate(&path, Some(&"c".repeat(32))).unwrap();
        assert_eq!(secret.source(), SecretSource::Configured);
        assert_eq!(secret.key(), "c".repeat(32).as_bytes());
    }

    #[test]
    fn widened_mode_is_restricted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".jwt_secret");
        fs::write(&path, "k".repeat(64)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        load_or_generate(&path, None).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
