//! An Agnes instance: its data directory, state database, signing key and auth state.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::auth::cache::AuthCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::{RateLimiter, RateLimits};
use crate::auth::users;
use crate::error::{Error, ErrorKind, Result};
use crate::secrets::{self, SecretSource};
use crate::state::StateDb;

/// The paths of a data directory; the layout matches the original server, so existing volumes
/// carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The data directory itself.
    pub root: PathBuf,
    /// `state/`: the state database and the signing key.
    pub state_dir: PathBuf,
    /// `analytics/`: the analytics database with a view per table.
    pub analytics_dir: PathBuf,
    /// `extracts/`: one folder per source.
    pub extracts_dir: PathBuf,
    /// `state/system.duckdb`.
    pub state_db: PathBuf,
    /// `state/.jwt_secret`.
    pub jwt_secret: PathBuf,
}

impl Layout {
    /// Returns the layout under `root` without touching the file system.
    pub fn new(root: &Path) -> Self {
        let state_dir = root.join("state");
        Self {
            root: root.to_path_buf(),
            analytics_dir: root.join("analytics"),
            extracts_dir: root.join("extracts"),
            state_db: state_dir.join("system.duckdb"),
            jwt_secret: state_dir.join(".jwt_secret"),
            state_dir,
        }
    }

    /// Returns the folders of the layout.
    pub fn folders(&self) -> [&Path; 3] {
        [&self.state_dir, &self.analytics_dir, &self.extracts_dir]
    }

    /// Creates the folders and checks that each is writable by writing and removing a probe file.
    ///
    /// Fails with `instance.not_writable` naming the folder and the user to give it to.
    pub fn create(&self) -> Result<()> {
        for folder in self.folders() {
            fs::create_dir_all(folder).map_err(|e| not_writable(folder, &e))?;
            let probe = folder.join(format!(".write-probe-{}", std::process::id()));
            fs::write(&probe, b"").map_err(|e| not_writable(folder, &e))?;
            fs::remove_file(&probe).map_err(|e| not_writable(folder, &e))?;
        }
        // The state folder holds password hashes, tokens and source secrets: only the server's
        // user may list or read it, whatever the umask made of its files.
        fs::set_permissions(&self.state_dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| not_writable(&self.state_dir, &e))?;
        Ok(())
    }
}

fn not_writable(folder: &Path, source: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "instance.not_writable",
        format!("cannot write to {}: {source}", folder.display()),
    )
    .with_hint(
        "Give the data directory to the user running agnes (for a container volume, \
         `chown -R <uid> <dir>` on the host), or pass another --data-dir.",
    )
}

/// Settings read at start; [`Settings::from_env`] reads them from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The token signing key from `JWT_SECRET_KEY`; `None` uses or creates `state/.jwt_secret`.
    pub jwt_secret: Option<String>,
    /// Release version shown by the health check (`AGNES_VERSION`, else the crate version).
    pub version: String,
    /// Release channel shown by the health check (`RELEASE_CHANNEL`, else `dev`).
    pub channel: String,
    /// Commit the build was made from: `AGNES_COMMIT` at run time, else `AGNES_COMMIT` at build
    /// time, else `unknown`.
    pub commit: String,
    /// File that lists deprecated versions and the version to move to (`AGNES_DEPRECATED_FILE`,
    /// else `deprecated.json` beside the executable when it exists).
    pub deprecated_file: Option<PathBuf>,
    /// Age of a table's last successful sync after which the health check calls it stale
    /// (`AGNES_STALE_AFTER_HOURS`, default 24).
    pub stale_after: Duration,
    /// Login and bootstrap attempts allowed per client address and minute.
    pub rate_limits: RateLimits,
}

/// Default of [`Settings::stale_after`]: one day, as in the original server.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for Settings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
            channel: "dev".to_string(),
            commit: option_env!("AGNES_COMMIT")
                .filter(|c| !c.trim().is_empty())
                .unwrap_or("unknown")
                .to_string(),
            deprecated_file: None,
            stale_after: DEFAULT_STALE_AFTER,
            rate_limits: RateLimits::default(),
        }
    }
}

impl Settings {
    /// Reads `JWT_SECRET_KEY`, `AGNES_VERSION`, `RELEASE_CHANNEL`, `AGNES_COMMIT`,
    /// `AGNES_DEPRECATED_FILE` and `AGNES_STALE_AFTER_HOURS`; unset or empty variables keep the
    /// defaults.
    ///
    /// Fails with `settings.invalid` naming a variable whose value cannot be used.
    pub fn try_from_env() -> Result<Self> {
        Self::read_env(true)
    }

    /// Like [`Settings::try_from_env`], but a variable that cannot be used is logged and its
    /// default kept.
    pub fn from_env() -> Self {
        Self::read_env(false).unwrap_or_default()
    }

    fn read_env(strict: bool) -> Result<Self> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        let stale_after = match read("AGNES_STALE_AFTER_HOURS") {
            Some(value) => match parse_hours("AGNES_STALE_AFTER_HOURS", &value) {
                Ok(duration) => duration,
                Err(error) if !strict => {
                    tracing::warn!(%error, "ignoring AGNES_STALE_AFTER_HOURS");
                    defaults.stale_after
                }
                Err(error) => return Err(error),
            },
            None => defaults.stale_after,
        };
        let deprecated_file = read("AGNES_DEPRECATED_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                let beside = std::env::current_exe()
                    .ok()?
                    .parent()?
                    .join("deprecated.json");
                beside.is_file().then_some(beside)
            });
        Ok(Self {
            jwt_secret: read("JWT_SECRET_KEY"),
            version: read("AGNES_VERSION").unwrap_or(defaults.version),
            channel: read("RELEASE_CHANNEL").unwrap_or(defaults.channel),
            commit: read("AGNES_COMMIT").unwrap_or(defaults.commit),
            deprecated_file,
            stale_after,
            rate_limits: defaults.rate_limits,
        })
    }
}

/// Parses a positive number of hours (fractions allowed) from variable `name`.
fn parse_hours(name: &str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|hours| hours.is_finite() && *hours > 0.0 && *hours < 1e6)
        .map(|hours| Duration::from_secs_f64(hours * 3600.0))
        .ok_or_else(|| {
            Error::invalid(
                "settings.invalid",
                format!("{name}={value:?} is not a positive number of hours"),
            )
            .with_hint(format!("Set {name} to a number of hours such as 24 or 0.5, or unset it for the default of 24."))
        })
}

/// An open instance. It owns the state database for its lifetime; drop it (after
/// [`Instance::close`]) to release the file lock.
#[derive(Debug)]
pub struct Instance {
    layout: Layout,
    settings: Settings,
    state: StateDb,
    jwt_keys: JwtKeys,
    secret_source: SecretSource,
    rate_limiter: RateLimiter,
    auth_cache: AuthCache,
    setup_required: AtomicBool,
    opened_at: Instant,
}

impl Instance {
    /// Opens the instance in `data_dir` with settings from the environment.
    ///
    /// Fails with `settings.invalid` for an unusable variable, and like [`Instance::open_with`].
    pub fn open(data_dir: &Path) -> Result<Self> {
        Self::open_with(data_dir, Settings::try_from_env()?)
    }

    /// Opens the instance in `data_dir`: creates the layout, loads or generates the signing key
    /// and opens (and migrates) the state database.
    ///
    /// Fails with `instance.not_writable` for a folder it cannot write, `secret.too_short` for a
    /// short key, and the `state.*` errors of [`StateDb::open`], among them `state.newer_schema`
    /// for a data directory written by a newer release and `state.locked` when another process
    /// uses it.
    pub fn open_with(data_dir: &Path, settings: Settings) -> Result<Self> {
        // Extracts name their files by absolute path, so a relative data directory would break
        // the contract on the first sync.
        let data_dir = std::path::absolute(data_dir).map_err(|e| not_writable(data_dir, &e))?;
        let layout = Layout::new(&data_dir);
        layout.create()?;
        let secret = secrets::load_or_generate(&layout.jwt_secret, settings.jwt_secret.as_deref())?;
        let state = StateDb::open(&layout.state_db)?;
        let setup_required = !state.with_conn(|conn| users::any_password_set(conn))?;
        if setup_required {
            tracing::warn!(
                "no user has a password yet; the instance is in setup mode and POST /auth/bootstrap is open"
            );
        }

        Ok(Self {
            rate_limiter: RateLimiter::new(settings.rate_limits),
            auth_cache: AuthCache::default(),
            jwt_keys: JwtKeys::new(&secret),
            secret_source: secret.source(),
            setup_required: AtomicBool::new(setup_required),
            opened_at: Instant::now(),
            layout,
            settings,
            state,
        })
    }

    /// Returns the data directory layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Returns the settings the instance was opened with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Returns the state database.
    pub fn state(&self) -> &StateDb {
        &self.state
    }

    /// Returns the memory of recently verified tokens.
    pub(crate) fn auth_cache(&self) -> &AuthCache {
        &self.auth_cache
    }

    /// Returns where the signing key came from.
    pub fn secret_source(&self) -> SecretSource {
        self.secret_source
    }

    /// Returns whether the instance still needs its first admin (no user has a password).
    pub fn is_setup_required(&self) -> bool {
        self.setup_required.load(Ordering::Acquire)
    }

    /// Returns the time since the instance was opened.
    pub fn uptime(&self) -> std::time::Duration {
        self.opened_at.elapsed()
    }

    /// Writes pending changes into the database files before the process stops.
    ///
    /// Fails with `state.query_failed` when the checkpoint fails.
    pub fn close(&self) -> Result<()> {
        self.state.checkpoint()?;
        tracing::info!("state database checkpointed");
        Ok(())
    }

    pub(crate) fn jwt_keys(&self) -> &JwtKeys {
        &self.jwt_keys
    }

    pub(crate) fn rate_limiter(&self) -> &RateLimiter {
        &self.rate_limiter
    }

    pub(crate) fn mark_setup_done(&self) {
        self.setup_required.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_layout() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open_with(dir.path(), Settings::default()).unwrap();

        for folder in ["state", "analytics", "extracts"] {
            assert!(dir.path().join(folder).is_dir(), "{folder} missing");
        }
        assert!(dir.path().join("state/system.duckdb").is_file());
        let mode = fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the state folder is open to others");
        assert!(dir.path().join("state/.jwt_secret").is_file());
        assert!(instance.is_setup_required());
    }

    #[test]
    fn relative_data_dir_becomes_absolute() {
        let instance = Instance::open_with(Path::new(""), Settings::default());
        // An empty path is not a folder anyone means; it fails instead of using the cwd.
        assert!(instance.is_err());

        let dir = tempfile::tempdir().unwrap();
        let relative = pathdiff(dir.path());
        let instance = Instance::open_with(&relative, Settings::default()).unwrap();
        assert!(instance.layout().root.is_absolute());
        assert_eq!(
            instance.layout().root.canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }

    #[test]
    fn stale_hours_are_checked() {
        assert_eq!(
            parse_hours("X", "24").unwrap(),
            Duration::from_secs(24 * 3600)
        );
        assert_eq!(
            parse_hours("X", " 0.5 ").unwrap(),
            Duration::from_secs(1800)
        );
        for bad in ["0", "-1", "a day", "inf", "NaN"] {
            let error = parse_hours("X", bad).unwrap_err();
            assert_eq!(error.code, "settings.invalid", "{bad}");
            assert!(error.message.contains(bad), "{}", error.message);
        }
    }

    /// `path` relative to the working directory, through `..` as needed.
    fn pathdiff(path: &Path) -> PathBuf {
        let cwd = std::env::current_dir().unwrap();
        let mut relative = PathBuf::new();
        for _ in cwd.components().skip(1) {
            relative.push("..");
        }
        relative.join(path.strip_prefix("/").unwrap())
    }

    #[test]
    fn unwritable_data_dir_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        fs::write(&file, "").unwrap();

        let error = Instance::open_with(&file, Settings::default()).unwrap_err();

        assert_eq!(error.code, "instance.not_writable");
        assert!(error.message.contains("not-a-folder"), "{}", error.message);
        assert!(error.hint.is_some());
    }

    #[test]
    fn short_secret_stops_open() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            jwt_secret: Some("x".repeat(31)),
            ..Settings::default()
        };
        let error = Instance::open_with(dir.path(), settings).unwrap_err();
        assert_eq!(error.code, "secret.too_short");
        assert!(
            !dir.path().join("state/system.duckdb").exists(),
            "state database created before the key check"
        );
    }
}
