//! Shared set-up for the integration tests: one model trained on the bundled data per test
//! binary.
#![allow(dead_code)]

pub mod http;
pub mod postgres;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The bundled MovieLens release.
pub fn bundled_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small")
}

/// A model directory trained (once per test binary) on the bundled data.
pub fn trained_model() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tempfile::tempdir().expect("temp dir").keep();
        let out = root.join("model");
        let output = movierec(&[
            "train",
            "--data",
            bundled_data().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            // The stored defaults: the fixture is the same on every machine (tuning stops on a
            // time budget; tests/cli.rs covers it).
            "--no-tune",
        ]);
        assert!(
            output.status.success(),
            "train failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// The run store every command of this test binary records into (never the repository's).
pub fn runs_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir").keep().join("runs"))
}

/// Runs the movierec binary with `args` (runs recorded in [`runs_dir`], MLflow off).
pub fn movierec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(args)
        .env("MOVIEREC_RUNS_DIR", runs_dir())
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("run movierec")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
/// A real MLflow tracking server for the tracking tests.
pub mod mlflow;
