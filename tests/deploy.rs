//! The deployment files of deploy/ (Docker Compose, Kubernetes, nginx) are checked as far as
//! this machine can: `yamllint --strict` on every YAML file, `docker-compose config` on the
//! Compose file (it needs no Docker daemon), and every `serve` flag they use against the
//! binary's own `serve --help`.
//!
//! Needs `yamllint` and `docker-compose` (Debian's packages; `bash .ci/run` installs them).
//! `MOVIEREC_SKIP_DEPLOY_TOOLS=1` skips the checks that need them; without it a missing tool
//! fails the test, saying how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

const SKIP_ENV: &str = "MOVIEREC_SKIP_DEPLOY_TOOLS";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Runs `tool args…` in the repository, or `None` when skipped; panics if the tool is missing.
fn run(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipped: {SKIP_ENV}=1 (this check needs {tool})");
        return None;
    }
    match Command::new(tool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{tool} is not installed: `apt-get install {tool}` (`bash .ci/run` does), or set \
             {SKIP_ENV}=1 to skip this check"
        ),
        Err(e) => panic!("{tool}: {e}"),
    }
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_deployment_yaml_file_passes_yamllint() {
    let Some(output) = run(
        "yamllint",
        &["--strict", "-c", "deploy/.yamllint", "deploy/"],
    ) else {
        return;
    };
    assert_success("yamllint", &output);
}

#[test]
fn the_compose_file_is_valid_for_docker_compose() {
    let Some(output) = run(
        "docker-compose",
        &["-f", "deploy/compose.yaml", "config", "-q"],
    ) else {
        return;
    };
    assert_success("docker-compose config", &output);
}

/// The `--flags` of the `serve` commands in `text` (a YAML list of arguments).
fn serve_flags(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.trim().trim_start_matches("- ").trim_matches('"'))
        .filter(|item| {
            item.strip_prefix("--")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic()))
        })
        .map(|item| item.split('=').next().unwrap_or(item).to_string())
        .collect()
}

#[test]
fn every_serve_flag_the_deployment_uses_is_one_serve_has() {
    let help = Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    for file in ["compose.yaml", "k8s/movierec.yaml"] {
        let text = std::fs::read_to_string(deploy().join(file)).unwrap();
        let flags = serve_flags(&text);
        for needed in ["--database", "--model-store", "--host", "--port"] {
            assert!(flags.iter().any(|f| f == needed), "{file} has no {needed}");
        }
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{file} uses {flag}, which `movierec serve` does not have"
            );
        }
        // A PostgreSQL database, with the password kept out of the command line.
        assert!(text.contains("postgres://movierec@"), "{file}");
        assert!(text.contains("PGPASSWORD"), "{file}");
    }
}

#[test]
fn the_servers_share_one_model_store_and_are_probed_on_the_health_endpoint() {
    let compose = std::fs::read_to_string(deploy().join("compose.yaml")).unwrap();
    // The three servers are one anchored definition, which mounts the shared volume.
    for server in ["movierec-1:", "movierec-2:", "movierec-3:"] {
        let at = compose
            .find(server)
            .unwrap_or_else(|| panic!("no {server}"));
        assert!(compose[at..]
            .lines()
            .nth(1)
            .unwrap()
            .contains("<<: *movierec"));
    }
    assert!(compose.contains("- models:/models"));
    assert!(compose.contains("\n  models:") || compose.contains("\n  models:\n"));
    let nginx = std::fs::read_to_string(deploy().join("nginx.conf")).unwrap();
    for server in ["movierec-1:7860", "movierec-2:7860", "movierec-3:7860"] {
        assert!(nginx.contains(server), "nginx.conf has no {server}");
    }
    let k8s = std::fs::read_to_string(deploy().join("k8s/movierec.yaml")).unwrap();
    for probe in ["readinessProbe:", "livenessProbe:"] {
        let at = k8s.find(probe).unwrap_or_else(|| panic!("no {probe}"));
        let next: Vec<&str> = k8s[at..].lines().take(4).collect();
        assert!(
            next.iter().any(|l| l.contains("path: /api/health")),
            "{probe}: {next:?}"
        );
    }
    assert!(k8s.contains("ReadWriteMany"));
    assert!(k8s.contains("claimName: movierec-models"));
    assert!(k8s.contains("type: ExternalName"));
}
