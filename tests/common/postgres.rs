//! Test support: a real PostgreSQL server (Debian's `postgresql` package), made by `initdb` in a
//! temporary directory, listening on 127.0.0.1 only, run as an unprivileged user (`nobody` when
//! the tests run as root: PostgreSQL refuses to run as root), with password authentication over
//! TCP. One server per test binary ([`shared`]); each test takes a database of its own
//! ([`Postgres::create_database`]). It stops when the test binary exits: `pg_ctl stop` at exit,
//! and the kernel's parent-death signal if the binary is killed.
//!
//! Needs PostgreSQL's server binaries (`apt-get install postgresql`; `bash .ci/run` installs it):
//! found in `MOVIEREC_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`.
//! `MOVIEREC_SKIP_POSTGRES=1` skips the tests that need it; without that variable a missing
//! PostgreSQL makes them fail, saying how to install it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Set to `1` to skip the tests that need a real PostgreSQL server.
pub const SKIP_ENV: &str = "MOVIEREC_SKIP_POSTGRES";
/// The directory of `initdb`, `postgres` and `pg_ctl` to use.
pub const BIN_ENV: &str = "MOVIEREC_POSTGRES_BIN";
/// The role the tests connect as, and its password.
pub const USER: &str = "movierec";
pub const PASSWORD: &str = "movierec-test-password";

/// A running PostgreSQL server.
pub struct Postgres {
    /// The temporary directory holding `data/`, `socket/` and `server.log`.
    pub dir: PathBuf,
    /// The server binaries.
    pub bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The server's process id.
    pub pid: u32,
    databases: AtomicU32,
}

/// Whether the tests that need PostgreSQL are skipped (saying so).
pub fn skipped() -> bool {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipped: {SKIP_ENV}=1 (this test needs a real PostgreSQL server)");
        return true;
    }
    false
}

/// The server of this test binary, started on first use; `None` when skipped.
pub fn shared() -> Option<&'static Postgres> {
    if skipped() {
        return None;
    }
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    Some(SERVER.get_or_init(|| {
        // Started from a thread that lives as long as the process: the server's parent-death
        // signal fires when that thread ends, i.e. when the test binary exits or is killed.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-keeper".into())
            .spawn(move || {
                let _ = tx.send(std::panic::catch_unwind(Postgres::start));
                loop {
                    std::thread::park();
                }
            })
            .expect("a thread");
        let server = match rx.recv().expect("the keeper thread answers") {
            Ok(server) => server,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        STOP.get_or_init(|| (server.bin.clone(), server.dir.clone()));
        // SAFETY: registers a plain function with the C library, run once at exit.
        unsafe { libc::atexit(stop_at_exit) };
        server
    }))
}

static STOP: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_at_exit() {
    if let Some((bin, dir)) = STOP.get() {
        let _ = as_server_user(Command::new(bin.join("pg_ctl")))
            .args([
                "-D",
                &dir.join("data").display().to_string(),
                "-m",
                "immediate",
            ])
            .args(["-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The directory holding PostgreSQL's server binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var(BIN_ENV) {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server is not installed (no initdb in /usr/lib/postgresql/*/bin or on \
             PATH): `apt-get install postgresql` (`bash .ci/run` does), set {BIN_ENV}, or set \
             {SKIP_ENV}=1 to skip the tests that need it"
        )
    })
}

/// When the tests run as root: the unprivileged user and group PostgreSQL runs as (`nobody`).
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } == 0).then_some((65534, 65534))
}

/// `command` run as [`server_user`] (when root), and killed when the thread that started it ends.
fn as_server_user(mut command: Command) -> Command {
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn chown(path: &Path) {
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to the server's user");
    }
}

impl Postgres {
    /// `initdb`, then the server on a free port; waits until it accepts connections.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("movierec-postgres-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // The unprivileged server must reach its files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("data");
        let socket = dir.join("socket");
        for d in [&data, &socket] {
            std::fs::create_dir(d).unwrap();
            chown(d);
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let password_file = dir.join("password");
        std::fs::write(&password_file, PASSWORD).unwrap();
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let initdb = as_server_user(Command::new(bin.join("initdb")))
            .args(["-D", data.to_str().unwrap(), "-U", USER])
            .arg(format!("--pwfile={}", password_file.display()))
            .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
            .args(["--encoding=UTF8", "--no-locale", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut server = as_server_user(Command::new(bin.join("postgres")));
        server
            .args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", socket.display()),
            ])
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            server.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = server.spawn().expect("start postgres");
        let postgres = Postgres {
            dir,
            bin,
            port,
            pid: child.id(),
            databases: AtomicU32::new(0),
        };
        std::mem::forget(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(postgres.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return postgres;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start within 60 s: {}",
                postgres.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The URL of database `name`, with the password.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// The URL of database `name` without the password (given as `PGPASSWORD`).
    pub fn url_without_password(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` in database `name` with `psql`; its output.
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let psql = [self.bin.join("psql"), PathBuf::from("/usr/bin/psql")]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let output = Command::new(psql)
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", name, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }
}
