//! Test support: a real MLflow tracking server, started for a test and stopped when dropped.
//!
//! Needs the `mlflow` command (`pip install mlflow`), or `MOVIEREC_MLFLOW_BIN` naming one.
//! `MOVIEREC_SKIP_MLFLOW=1` skips the tests that need it; without that variable a missing
//! `mlflow` makes them fail, saying how to install it.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set to `1` to skip the tests that need a real MLflow server.
pub const SKIP_ENV: &str = "MOVIEREC_SKIP_MLFLOW";
/// The `mlflow` command to run instead of the one on `PATH`.
pub const BIN_ENV: &str = "MOVIEREC_MLFLOW_BIN";
/// Seconds to wait for the server to answer `/health` (default 60).
pub const START_TIMEOUT_ENV: &str = "MOVIEREC_MLFLOW_START_SECS";

/// A running `mlflow server` on 127.0.0.1 with a SQLite store in a temporary directory. Dropping
/// it stops the server's whole process group (the server, its uvicorn workers and job runner).
pub struct MlflowServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub uri: String,
    /// The exact command line it was started with.
    pub command_line: String,
    /// Holds `mlflow.db`, `artifacts/` and `server.log`.
    pub dir: tempfile::TempDir,
}

impl MlflowServer {
    /// Starts a server for a test, or returns `None` (after saying so) when `MOVIEREC_SKIP_MLFLOW=1`.
    /// Panics, naming the fix, when `mlflow` is not installed or the server does not come up.
    pub fn start_or_skip() -> Option<MlflowServer> {
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            eprintln!("skipped: {SKIP_ENV}=1 (this test needs a real MLflow server)");
            return None;
        }
        Some(MlflowServer::start())
    }

    /// Starts a server and waits until `GET /health` answers; see [`MlflowServer::start_or_skip`].
    pub fn start() -> MlflowServer {
        let mut attempt = 1;
        loop {
            match MlflowServer::try_start() {
                Ok(server) => return server,
                // Another process took the free port between our probe and the server's bind.
                Err(log)
                    if attempt < 3 && log.to_lowercase().contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(log) => panic!("{log}"),
            }
        }
    }

    fn try_start() -> Result<MlflowServer, String> {
        let bin = std::env::var(BIN_ENV).unwrap_or_else(|_| "mlflow".to_string());
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let db = dir.path().join("mlflow.db");
        let artifacts = dir.path().join("artifacts");
        let args = [
            "server".to_string(),
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--backend-store-uri".to_string(),
            format!("sqlite:///{}", db.display()),
            "--default-artifact-root".to_string(),
            artifacts.display().to_string(),
            "--no-serve-artifacts".to_string(),
            "--workers".to_string(),
            "1".to_string(),
        ];
        let command_line = format!(
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false {bin} {}",
            args.join(" ")
        );
        let log_path = dir.path().join("server.log");
        let log = File::create(&log_path).expect("server log");
        let spawned = Command::new(&bin)
            .args(&args)
            .current_dir(dir.path())
            // No job runner (seven huey consumer processes and a /dev/shm directory): runs and
            // metrics do not need it.
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            // Let Python cache compiled modules: without the cache (a common CI setting) every
            // start compiles all of mlflow again, which takes tens of seconds.
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            // Its own process group, so that dropping the server stops its workers too.
            .process_group(0)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "`{bin}` was not found: this test needs a real MLflow tracking server. Run \
                     `pip install mlflow` (or set {BIN_ENV} to an mlflow command), or set \
                     {SKIP_ENV}=1 to skip the MLflow tests"
                ))
            }
            Err(e) => return Err(format!("cannot run `{command_line}`: {e}")),
        };
        let mut server = MlflowServer {
            child,
            uri: format!("http://127.0.0.1:{port}"),
            command_line,
            dir,
        };
        let timeout = std::env::var(START_TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(60), Duration::from_secs);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .proxy(None)
            .build()
            .into();
        let health = format!("{}/health", server.uri);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "`{}` exited with {status} before answering; is mlflow installed (`pip \
                     install mlflow`)? Its output:\n{}",
                    server.command_line,
                    tail(&log_path)
                ));
            }
            if agent
                .get(&health)
                .call()
                .is_ok_and(|r| r.status().is_success())
            {
                eprintln!(
                    "mlflow server up after {:.1} s: {}",
                    started.elapsed().as_secs_f64(),
                    server.command_line
                );
                return Ok(server);
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "`{}` did not answer GET /health within {} s ({START_TIMEOUT_ENV} sets the \
                     limit). Its output:\n{}",
                    server.command_line,
                    timeout.as_secs(),
                    tail(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The last lines of the server's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path())
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        use rustix::process::{kill_process_group, Pid, Signal};
        let Some(group) = Pid::from_raw(self.child.id() as i32) else {
            return;
        };
        let _ = kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // Workers may outlive the server process by a moment: make sure.
                std::thread::sleep(Duration::from_millis(200));
                let _ = kill_process_group(group, Signal::KILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
