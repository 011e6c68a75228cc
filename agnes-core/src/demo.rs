//! The quick-start demo: a small sample data set generated here, served by a files source.
//!
//! [`DataPlane::prepare_demo`] turns a data directory into a working instance in one step. It
//! creates the first admin (with a generated password unless one is given) and stores the
//! credentials in `state/demo-admin.json` with mode 0600. It then writes three CSV files with
//! fixed content into `demo-data/`, configures them as the files source `demo`, registers their
//! tables and syncs them. Run again on the same data directory, it reuses the stored admin, the
//! files and the source, and syncs again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::auth::password;
use crate::auth::session::{BootstrapRequest, LoginRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::registry;
use crate::sources::SourceConfig;
use crate::sync::{DataPlane, Job, JobStatus};

/// Name of the demo's files source.
pub const DEMO_SOURCE: &str = "demo";

/// Folder of the sample files inside the data directory.
pub const DEMO_FOLDER: &str = "demo-data";

/// File of the demo admin's credentials inside `state/`.
pub const CREDENTIALS_FILE: &str = "demo-admin.json";

/// Email of the demo admin unless `AGNES_DEMO_EMAIL` names another.
pub const DEFAULT_EMAIL: &str = "admin@example.com";

/// A first query over the sample data: revenue by country.
pub const FIRST_QUERY: &str = "SELECT c.country, count(*) AS orders, round(sum(o.amount), 2) AS revenue FROM orders o JOIN customers c ON c.customer_id = o.customer_id GROUP BY c.country ORDER BY revenue DESC";

/// Rows of the sample tables.
pub const CUSTOMERS: usize = 120;
/// Rows of the sample products table.
pub const PRODUCTS: usize = 24;
/// Rows of the sample orders table.
pub const ORDERS: usize = 2000;

/// How long the demo waits for its sync.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);

/// Identity of the demo admin.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Email of the admin created on a fresh instance.
    pub email: String,
    /// Password of that admin; `None` generates one.
    pub password: Option<String>,
}

impl DemoOptions {
    /// Reads `AGNES_DEMO_EMAIL` and `AGNES_DEMO_PASSWORD`; unset or empty variables keep the
    /// defaults (`admin@example.com`, a generated password).
    pub fn from_env() -> Self {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            email: read("AGNES_DEMO_EMAIL").unwrap_or_else(|| DEFAULT_EMAIL.to_string()),
            password: read("AGNES_DEMO_PASSWORD"),
        }
    }
}

/// The stored credentials of the demo admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoCredentials {
    /// Admin email.
    pub email: String,
    /// Admin password.
    pub password: String,
}

/// Result of [`DataPlane::prepare_demo`].
#[derive(Debug, Clone)]
pub struct DemoSetup {
    /// Admin email.
    pub email: String,
    /// Admin password; `None` when the instance had an admin the demo did not create.
    pub password: Option<String>,
    /// A session token of the admin, valid for a day; `None` when the password is unknown.
    pub token: Option<String>,
    /// File of the stored credentials (mode 0600); `None` when the demo did not create them.
    pub credentials_file: Option<PathBuf>,
    /// Whether this run created the admin.
    pub created_admin: bool,
    /// Folder of the sample files.
    pub data_folder: PathBuf,
    /// The published demo tables with their row counts.
    pub tables: Vec<(String, i64)>,
    /// The sync job that published them.
    pub job: Job,
}

impl DataPlane {
    /// Creates or reuses the demo admin, writes the sample data, configures it as source `demo`,
    /// registers its tables and syncs them. Blocks until the sync ends.
    ///
    /// Fails with `demo.write_failed` when the files cannot be written, `demo.sync_failed` when
    /// the sync does not succeed, and with the errors of bootstrap (such as
    /// `auth.password_too_short` for a short `AGNES_DEMO_PASSWORD`).
    pub fn prepare_demo(self: &Arc<Self>, options: &DemoOptions) -> Result<DemoSetup> {
        let instance = self.instance();
        let credentials_file = instance.layout().state_dir.join(CREDENTIALS_FILE);
        let (email, password, token, created_admin, stored) = if instance.is_setup_required() {
            let password = options.password.clone().unwrap_or_else(password::generate);
            password::validate(&password)?;
            let credentials = DemoCredentials {
                email: options.email.trim().to_lowercase(),
                password: password.clone(),
            };
            // The password is stored before the admin exists, so it is never lost.
            write_private(&credentials_file, &credentials)?;
            let request = BootstrapRequest {
                email: options.email.clone(),
                name: "Demo admin".to_string(),
                password: password.clone(),
            };
            let response = instance.bootstrap(&request, None).inspect_err(|_| {
                let _ = std::fs::remove_file(&credentials_file);
            })?;
            (
                response.email,
                Some(password),
                Some(response.access_token),
                true,
                true,
            )
        } else {
            match read_credentials(&credentials_file) {
                Some(credentials) => {
                    let login = instance.login(
                        &LoginRequest {
                            email: credentials.email.clone(),
                            password: credentials.password.clone(),
                        },
                        None,
                    );
                    match login {
                        Ok(response) => (
                            response.email,
                            Some(credentials.password),
                            Some(response.access_token),
                            false,
                            true,
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "the stored demo admin cannot log in; was the password changed?");
                            (credentials.email, None, None, false, true)
                        }
                    }
                }
                None => (options.email.clone(), None, None, false, false),
            }
        };

        let data_folder = instance.layout().root.join(DEMO_FOLDER);
        write_sample_data(&data_folder)?;
        let config = SourceConfig::Files {
            path: data_folder.clone(),
        };
        if self.sources().list()?.get(DEMO_SOURCE) != Some(&config) {
            self.sources().configure(DEMO_SOURCE, config, None)?;
        }
        let found = self.discover_and_register(Some("demo"), false)?;
        for problem in &found.errors {
            tracing::warn!(%problem, "demo discovery problem");
        }
        let tables: Vec<String> = registry::list(instance.state())?
            .into_iter()
            .filter(|t| t.source == DEMO_SOURCE)
            .map(|t| t.id)
            .collect();
        if tables.is_empty() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "demo.no_tables",
                "none of the demo tables could be registered",
            )
            .with_hint(format!(
                "Other sources already publish tables named customers, orders and products; start the demo with a new --data-dir. Problems: {}",
                found.errors.join("; ")
            )));
        }

        let job = self.trigger(None, Some(tables))?;
        let job = self.wait_for_job(&job.id, SYNC_TIMEOUT)?;
        if job.status != JobStatus::Succeeded {
            return Err(Error::new(
                ErrorKind::Internal,
                "demo.sync_failed",
                format!(
                    "the demo sync {} did not succeed: {}",
                    job.id,
                    job.sources
                        .iter()
                        .filter_map(|s| s.error.clone())
                        .chain(job.publication_errors.iter().cloned())
                        .chain(job.error.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .with_hint("Check the server log; delete the demo data directory to start over."));
        }
        let tables = self
            .publication()
            .map(|p| {
                p.tables
                    .iter()
                    .filter(|t| t.source == DEMO_SOURCE)
                    .map(|t| (t.name.clone(), t.rows.unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();

        Ok(DemoSetup {
            email,
            password,
            token,
            credentials_file: stored.then_some(credentials_file),
            created_admin,
            data_folder,
            tables,
            job,
        })
    }

    /// Waits until job `id` ends, or fails with `sync.timeout` after `timeout`.
    pub fn wait_for_job(&self, id: &str, timeout: Duration) -> Result<Job> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id)?;
            if job.status != JobStatus::Running {
                return Ok(job);
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "sync.timeout",
                    format!(
                        "sync job {id} still runs after {} seconds",
                        timeout.as_secs()
                    ),
                )
                .with_hint(format!("Follow it with GET /api/sync/jobs/{id}.")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Reads the demo credentials stored in `file`, if they are there and readable.
pub fn read_credentials(file: &Path) -> Option<DemoCredentials> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes `value` as JSON to `path` with mode 0600, through a temporary file.
fn write_private<T: Serialize>(path: &Path, value: &T) -> Result<()> {
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
        write_failed(path, &e)
    })
}

fn write_failed(path: &Path, error: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        "demo.write_failed",
        format!("cannot write {}: {error}", path.display()),
    )
    .with_hint("Check free disk space and the permissions of the data directory.")
}

/// Writes `customers.csv`, `products.csv` and `orders.csv` into `folder` (created if needed) and
/// returns each file name with its row count. The content is the same on every call; files that
/// already hold it are not rewritten.
///
/// Fails with `demo.write_failed`.
pub fn write_sample_data(folder: &Path) -> Result<Vec<(String, usize)>> {
    std::fs::create_dir_all(folder).map_err(|e| write_failed(folder, &e))?;
    let files = [
        ("customers.csv", customers_csv(), CUSTOMERS),
        ("products.csv", products_csv(), PRODUCTS),
        ("orders.csv", orders_csv(), ORDERS),
    ];
    let mut written = Vec::new();
    for (name, text, rows) in files {
        let path = folder.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
            std::fs::write(&path, &text).map_err(|e| write_failed(&path, &e))?;
        }
        written.push((name.to_string(), rows));
    }
    Ok(written)
}

/// A small linear congruential generator, so the sample data is the same everywhere.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len() as u64) as usize]
    }
}

const FIRST_NAMES: &[&str] = &[
    "Anna", "Boris", "Clara", "David", "Eva", "Filip", "Greta", "Hugo", "Ines", "Jan", "Karin",
    "Lukas", "Marta", "Noah", "Olga", "Petr",
];
const LAST_NAMES: &[&str] = &[
    "Novak", "Schmidt", "Martin", "Garcia", "Rossi", "Kowalski", "Larsen", "Smith", "Dvorak",
    "Weber",
];
const COUNTRIES: &[&str] = &[
    "Czechia",
    "Germany",
    "France",
    "Spain",
    "Italy",
    "Poland",
    "Sweden",
    "United Kingdom",
];
const SEGMENTS: &[&str] = &["consumer", "small business", "enterprise"];

/// Products: name, category and unit price in cents.
const PRODUCT_LIST: [(&str, &str, u64); PRODUCTS] = [
    ("Espresso beans 1 kg", "coffee", 2490),
    ("Filter coffee 500 g", "coffee", 1190),
    ("Decaf beans 500 g", "coffee", 1390),
    ("Green tea 100 g", "tea", 690),
    ("Black tea 250 g", "tea", 890),
    ("Herbal tea sampler", "tea", 1490),
    ("Pour-over kettle", "equipment", 5990),
    ("Hand grinder", "equipment", 7490),
    ("French press", "equipment", 3290),
    ("Espresso machine", "equipment", 44900),
    ("Milk frother", "equipment", 8990),
    ("Digital scale", "equipment", 2790),
    ("Paper filters (100)", "supplies", 490),
    ("Descaler", "supplies", 990),
    ("Cleaning tablets", "supplies", 1290),
    ("Travel mug", "accessories", 1990),
    ("Ceramic cup set", "accessories", 2990),
    ("Glass teapot", "accessories", 3490),
    ("Tea infuser", "accessories", 790),
    ("Coffee canister", "accessories", 1890),
    ("Barista course", "services", 12900),
    ("Machine service", "services", 8900),
    ("Gift card 50", "services", 5000),
    ("Monthly subscription", "services", 2900),
];

fn customers_csv() -> String {
    let mut random = Sequence(7);
    let start = NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date");
    let mut text = String::from("customer_id,name,country,segment,signup_date\n");
    for id in 1..=CUSTOMERS {
        let name = format!("{} {}", random.pick(FIRST_NAMES), random.pick(LAST_NAMES));
        let country = random.pick(COUNTRIES);
        let segment = random.pick(SEGMENTS);
        let signup = start + chrono::Days::new(random.next(730));
        text.push_str(&format!("{id},{name},{country},{segment},{signup}\n"));
    }
    text
}

fn products_csv() -> String {
    let mut text = String::from("product_id,name,category,unit_price\n");
    for (index, (name, category, cents)) in PRODUCT_LIST.iter().enumerate() {
        text.push_str(&format!(
            "{},{name},{category},{}.{:02}\n",
            index + 1,
            cents / 100,
            cents % 100
        ));
    }
    text
}

fn orders_csv() -> String {
    let mut random = Sequence(42);
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid date");
    let mut text = String::from("order_id,order_date,customer_id,product_id,quantity,amount\n");
    for id in 1..=ORDERS {
        let date = start + chrono::Days::new(random.next(366));
        let customer = random.next(CUSTOMERS as u64) + 1;
        let product = random.next(PRODUCTS as u64) as usize;
        let quantity = random.next(4) + 1;
        let cents = PRODUCT_LIST[product].2 * quantity;
        text.push_str(&format!(
            "{id},{date},{customer},{},{quantity},{}.{:02}\n",
            product + 1,
            cents / 100,
            cents % 100
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_data_is_fixed_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_sample_data(dir.path()).unwrap();
        assert_eq!(
            files,
            [
                ("customers.csv".to_string(), CUSTOMERS),
                ("products.csv".to_string(), PRODUCTS),
                ("orders.csv".to_string(), ORDERS)
            ]
        );
        for (name, rows) in &files {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert_eq!(text.lines().count(), rows + 1, "{name}");
        }
        let first = std::fs::read_to_string(dir.path().join("orders.csv")).unwrap();
        write_sample_data(dir.path()).unwrap();
        let second = std::fs::read_to_string(dir.path().join("orders.csv")).unwrap();
        assert_eq!(first, second);
        assert_eq!(customers_csv(), customers_csv());
    }
}
