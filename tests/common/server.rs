//! `movierec serve` as a real process on a free port, for the tests that talk HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long the server may take to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `movierec serve`; killed on drop.
pub struct Server {
    /// The process (its id is for signals).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    log: Arc<Mutex<String>>,
    /// The server's own database directory, unless the test named a `--database`.
    _state: Option<tempfile::TempDir>,
}

impl Server {
    /// Serves `model_dir` (runs recorded in the test binary's run store).
    pub fn start(model_dir: &Path) -> Server {
        Server::start_with(model_dir, &[])
    }

    /// The same with extra environment variables.
    pub fn start_with(model_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_command(model_dir, &[], env, None)
    }

    /// The same with extra `serve` arguments, started through `sh -c` after `shell_prefix`
    /// (e.g. `ulimit -n 100`) when one is given.
    pub fn start_command(
        model_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        shell_prefix: Option<&str>,
    ) -> Server {
        let binary = env!("CARGO_BIN_EXE_movierec");
        let mut command = match shell_prefix {
            Some(prefix) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix} && exec \"$0\" \"$@\""))
                    .arg(binary);
                c
            }
            None => Command::new(binary),
        };
        // Each server gets a database of its own unless the test names one.
        let state = (!args.iter().any(|a| a.starts_with("--database")))
            .then(|| tempfile::tempdir().expect("temp dir"));
        let database = state
            .as_ref()
            .map(|dir| format!("sqlite:{}", dir.path().join("movierec.db").display()));
        // Background retraining would replace the shared model directory: off unless asked for.
        let retrain = if args.iter().any(|a| a.starts_with("--retrain")) {
            Vec::new()
        } else {
            vec!["--retrain-after", "0", "--retrain-every", "0"]
        };
        let mut child = command
            .args(["serve", "--port", "0"])
            .args(retrain)
            .args(args)
            .args(database.iter().flat_map(|d| ["--database", d.as_str()]))
            .arg("--model-dir")
            .arg(model_dir)
            .env("MOVIEREC_RUNS_DIR", super::runs_dir())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start movierec serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        // Keep draining stderr after the address line, so the server never blocks on a full pipe.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.trim().strip_prefix("movierec: serving on ") {
                    tx.send(rest.to_string()).ok();
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            log,
            _state: state,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => server.url = url,
            Err(_) => panic!(
                "movierec serve did not report its address; its stderr:\n{}",
                server.log()
            ),
        }
        server
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
