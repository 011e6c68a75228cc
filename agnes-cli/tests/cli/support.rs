//! Running the `agnes` binary: one-shot commands with a clean environment, and servers on a free
//! loopback port, in a child process or in this process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Variables of the test runner that would change what a command does.
const CLEARED: &[&str] = &[
    "AGNES_TOKEN",
    "AGNES_SERVER",
    "AGNES_CONFIG_DIR",
    "XDG_CONFIG_HOME",
    "AGNES_DEMO_EMAIL",
    "AGNES_DEMO_PASSWORD",
    "AGNES_LISTEN",
    "DATA_DIR",
    "RELEASE_CHANNEL",
    "AGNES_VERSION",
    "AGNES_DEPRECATED_FILE",
    "AGNES_STALE_AFTER_HOURS",
];

/// `agnes` with a clean environment whose stored login lives in `config`.
pub fn agnes(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agnes"));
    for name in CLEARED {
        command.env_remove(name);
    }
    command.env("AGNES_CONFIG_DIR", config);
    command
}

/// Runs `command` and returns its output.
pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run agnes")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the command succeeded and returns its stdout.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// `agnes serve` in a child process on a free loopback port; stopped with SIGTERM when dropped.
pub struct ServerProcess {
    child: Child,
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `agnes serve --data-dir <data> --listen 127.0.0.1:0 <extra>` and waits until it
    /// prints the address it serves on.
    pub fn start(data: &Path, config: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_in(None, data, config, extra, envs)
    }

    /// Like [`ServerProcess::start`], in working directory `cwd` (so `data` may be relative).
    pub fn start_in(
        cwd: Option<&Path>,
        data: &Path,
        config: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let log = match cwd {
            Some(cwd) => cwd.join(data).with_extension("log"),
            None => data.with_extension("log"),
        };
        let mut command = agnes(config);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("start agnes serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = BufReader::new(child.stdout.take().expect("stdout"));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
            lines,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let found = server.output().lines().find_map(|line| {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://127.0.0.1:"))
                    .map(str::to_string)
            });
            if let Some(url) = found {
                server.url = url;
                break;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "agnes serve exited with {status}\nstdout:\n{}\nlog:\n{}",
                    server.output(),
                    server.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "agnes serve did not start\nlog:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Waits until the server's stdout contains `needle`, and returns all of it.
    pub fn wait_for_output(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the output:\n{output}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server printed on stdout so far.
    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The server's log (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server with SIGTERM and waits for it; SIGKILL after ten seconds.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A server in this process, for settings the binary does not expose.
pub struct InProcessServer {
    pub url: String,
    pub plane: Arc<agnes_core::sync::DataPlane>,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl InProcessServer {
    pub fn start(data: &Path, engine: agnes_core::query::EngineSettings) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let settings = agnes_core::Settings {
            jwt_secret: Some("cli-test-secret-that-is-long-enough-for-hs256".into()),
            ..agnes_core::Settings::default()
        };
        let instance = Arc::new(agnes_core::Instance::open_with(data, settings).unwrap());
        let options = agnes_core::sync::PlaneOptions {
            connectors_dir: data.join("connectors"),
            engine,
            policy: agnes_core::remote::RemotePolicy::default(),
        };
        let state = agnes_http::AppState::open(instance, options).unwrap();
        let plane = state.plane().clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(agnes_http::serve(listener, state, async {
            let _ = signal.await;
        }));
        Self {
            url,
            plane,
            runtime,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(task);
        }
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Mode bits of a file or folder.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The value after `label` on a line of `text`, such as the password after `admin password:`.
pub fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .trim()
        .to_string()
}
