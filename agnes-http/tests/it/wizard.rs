//! The setup wizard in a real browser: `tests/browser/wizard.mjs` drives headless Chromium
//! through the five steps on a fresh instance, then this test checks the result through the API.
//!
//! It needs Chromium (`AGNES_TEST_CHROMIUM`, default `/usr/bin/chromium`), a `node_modules`
//! folder with playwright-core (`AGNES_TEST_NODE_PATH`) and `node`; `scripts/test-services.sh`
//! installs and exports them. Without them the test skips, or fails under `CI=true`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::fixture::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, required_in_ci, token};

/// Screenshots the script takes, one per step and state.
const SCREENSHOTS: &[&str] = &[
    "01-admin",
    "02-source",
    "03-connection-error",
    "04-tables",
    "05-sync-progress",
    "06-sync-done",
    "07-dashboard",
];

/// Maximum run time of the script. The sync of nycflights13 takes a few seconds of it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

struct BrowserTools {
    chromium: PathBuf,
    node_modules: PathBuf,
}

/// Finds Chromium, playwright-core and node; skips (or fails under CI) when one is missing.
fn browser_tools() -> Option<BrowserTools> {
    let chromium = std::env::var_os("AGNES_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node_modules = std::env::var_os("AGNES_TEST_NODE_PATH").map(PathBuf::from);

    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!(
            "Chromium at {} (install Debian's chromium or set AGNES_TEST_CHROMIUM)",
            chromium.display()
        ));
    }
    let has_playwright = node_modules
        .as_ref()
        .is_some_and(|dir| dir.join("playwright-core/package.json").is_file());
    if !has_playwright {
        missing.push(
            "playwright-core (set AGNES_TEST_NODE_PATH to a node_modules folder that has it; \
             scripts/test-services.sh installs one)"
                .to_string(),
        );
    }
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_node {
        missing.push("node on PATH".to_string());
    }

    if missing.is_empty() {
        return Some(BrowserTools {
            chromium,
            node_modules: node_modules.expect("checked above"),
        });
    }
    let note = format!(
        "the wizard browser test needs {}; run `source scripts/test-services.sh` first",
        missing.join(", ")
    );
    assert!(!required_in_ci(), "{note}");
    eprintln!("skipped: {note}");
    None
}

/// Folder for the screenshots and the script's log: `AGNES_TEST_ARTIFACTS`, or
/// `test-artifacts/wizard` in the cargo target folder. Emptied first.
fn artifact_dir() -> PathBuf {
    let dir = std::env::var_os("AGNES_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("the target folder")
                .join("test-artifacts")
        })
        .join("wizard");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("old artifacts removed");
    }
    std::fs::create_dir_all(&dir).expect("artifact folder created");
    dir
}

/// The node process of the script. Dropping it, also when an assert fails, ends the process and
/// the browser it started.
struct ScriptRun {
    child: Child,
}

impl ScriptRun {
    fn start(tools: &BrowserTools, base: &str, data: &Path, artifacts: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/wizard.mjs");
        let log = File::create(artifacts.join("wizard.log")).expect("log file created");
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new("node")
                .arg(&script)
                .arg(base)
                .arg(data)
                .arg(artifacts)
                .env("AGNES_TEST_CHROMIUM", &tools.chromium)
                .env("AGNES_TEST_NODE_PATH", &tools.node_modules)
                .env("AGNES_TEST_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("AGNES_TEST_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file handle"))
                .stderr(log),
            0,
        )
        .spawn()
        .expect("node starts");
        Self { child }
    }

    /// Waits for the script to exit; `None` when it ran past `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("node status") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

impl Drop for ScriptRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.child.id();
        // Playwright starts Chromium in a process group of its own, so note its children before
        // node goes and they lose their parent.
        let browsers = child_pids(pid);
        // SIGTERM lets Playwright close the browser and delete its profile folder.
        signal_group(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal_group(pid, rustix::process::Signal::KILL);
        let _ = self.child.wait();
        for browser in browsers {
            signal_group(browser, rustix::process::Signal::KILL);
        }
    }
}

/// Sends `signal` to the process group led by `pid`; a group that is gone is ignored.
fn signal_group(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, signal);
}

/// Returns the ids of the processes whose parent is `parent`, read from `/proc`.
fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // The parent id is the second field after the command name, which is in brackets
            // and may contain spaces.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after_name.split_whitespace().nth(1) == Some(parent.to_string().as_str())
        })
        .collect()
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path)
        .unwrap_or_else(|e| panic!("screenshot {} is missing: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert!(
        bytes.len() > 5_000,
        "{} is only {} bytes",
        path.display(),
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_sets_up_nycflights_in_chromium() {
    let Some(tools) = browser_tools() else { return };
    let Some(data) = crate::data::nycflights_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let artifacts = artifact_dir();

    let base = server.base.clone();
    let script_artifacts = artifacts.clone();
    let status = tokio::task::spawn_blocking(move || {
        let mut run = ScriptRun::start(&tools, &base, &data, &script_artifacts);
        run.wait(SCRIPT_TIMEOUT)
    })
    .await
    .expect("the script runner");
    let log = std::fs::read_to_string(artifacts.join("wizard.log")).unwrap_or_default();
    let status = status.unwrap_or_else(|| {
        panic!("the wizard script ran past {SCRIPT_TIMEOUT:?}; its output:\n{log}")
    });
    assert!(
        status.success(),
        "the wizard script failed ({status}):\n{log}"
    );
    assert!(log.contains("all steps passed"), "{log}");

    let (status, login) = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let admin = token(&login);
    let (status, catalog) = server.get("/api/catalog/tables", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    let names: Vec<&str> = catalog["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["airlines", "airports", "flights", "planes", "weather"]
    );
    let flights = catalog["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "flights")
        .unwrap();
    assert_eq!(flights["rows"], 336_776);

    let (_, sources) = server.get("/api/admin/sources", Some(&admin)).await;
    assert_eq!(sources["sources"][0]["name"], "files", "{sources}");
    let (_, jobs) = server.get("/api/sync/jobs", Some(&admin)).await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "the wizard started one sync: {jobs:?}");
    assert_eq!(jobs[0]["status"], "succeeded");
    assert_eq!(jobs[0]["published_tables"], 5);

    for name in SCREENSHOTS {
        assert_png(&artifacts.join(format!("{name}.png")));
    }
    println!("wizard screenshots: {}", artifacts.display());
    server.stop().await;
}
