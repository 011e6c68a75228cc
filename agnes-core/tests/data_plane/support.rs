//! Shared set-up: an instance in a temporary folder with its data plane.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agnes_core::auth::{Principal, Role, TokenKind};
use agnes_core::instance::{Instance, Settings};
use agnes_core::query::EngineSettings;
use agnes_core::remote::RemotePolicy;
use agnes_core::sync::{DataPlane, Job, JobStatus, PlaneOptions};
use tempfile::TempDir;

/// An instance with its data plane in a temporary data directory.
pub struct Harness {
    pub dir: TempDir,
    pub plane: Arc<DataPlane>,
}

impl Harness {
    /// Opens a fresh instance; custom connectors are read from `<tmp>/connectors`.
    pub fn new() -> Harness {
        let dir = TempDir::new().unwrap();
        let plane = open_plane(dir.path(), None);
        Harness { dir, plane }
    }

    /// Opens a fresh instance that loads DuckDB extensions from `extensions`.
    pub fn new_with_extensions(extensions: &str) -> Harness {
        let dir = TempDir::new().unwrap();
        let plane = open_plane(dir.path(), Some(PathBuf::from(extensions)));
        Harness { dir, plane }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn connectors_dir(&self) -> PathBuf {
        self.dir.path().join("connectors")
    }

    /// Starts a sync and waits for it to finish.
    pub fn sync(&self, tables: Option<Vec<&str>>) -> Job {
        let tables = tables.map(|t| t.into_iter().map(str::to_string).collect());
        let job = self.plane.trigger(None, tables).expect("trigger");
        wait_for(&self.plane, &job.id)
    }

    /// Runs a query as an admin and returns the rows.
    pub fn query(&self, sql: &str) -> Vec<Vec<serde_json::Value>> {
        self.plane
            .query(&admin(), sql, 10_000)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .rows
    }

    /// Runs a query returning one integer.
    pub fn scalar(&self, sql: &str) -> i64 {
        self.query(sql)[0][0]
            .as_i64()
            .unwrap_or_else(|| panic!("{sql} is not an integer"))
    }
}

pub fn open_plane(root: &Path, extensions: Option<PathBuf>) -> Arc<DataPlane> {
    let settings = Settings {
        jwt_secret: Some("test-secret-that-is-long-enough-for-hs256".into()),
        ..Settings::from_env()
    };
    let instance = Instance::open_with(&root.join("data"), settings).expect("open instance");
    let options = PlaneOptions {
        connectors_dir: root.join("connectors"),
        engine: EngineSettings::default(),
        policy: RemotePolicy {
            extension_directory: extensions,
            ..RemotePolicy::default()
        },
    };
    DataPlane::open(Arc::new(instance), options).expect("open data plane")
}

pub fn admin() -> Principal {
    Principal {
        user_id: "admin".into(),
        email: "admin@example.com".into(),
        role: Role::Admin,
        token_kind: TokenKind::Session,
    }
}

/// Waits up to two minutes for job `id` to finish.
pub fn wait_for(plane: &DataPlane, id: &str) -> Job {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = plane.job(id).expect("job");
        if job.status != JobStatus::Running {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "sync job {id} did not finish: {job:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether tests that need an outside component must fail instead of skip.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
