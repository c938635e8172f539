//! What `train` and `evaluate` record: the run of each command, built from what it produced,
//! and where it goes (the local store, and MLflow when configured).

use super::{record, MlflowClient, RunKind, RunRecord, RunStatus, RunStore};
use crate::artifact::Manifest;
use crate::eval::bootstrap::Difference;
use crate::eval::EvaluationReport;
use crate::index::IndexKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable naming the local run store's directory.
pub const RUNS_DIR_ENV: &str = "MOVIEREC_RUNS_DIR";
/// The run store's directory when neither `--runs-dir` nor [`RUNS_DIR_ENV`] is given.
pub const DEFAULT_RUNS_DIR: &str = "runs";

/// The program's version for run records: the package version and, when built from a git
/// checkout, the commit.
pub fn code_version() -> String {
    let sha = env!("MOVIEREC_GIT_SHA");
    if sha.is_empty() {
        env!("CARGO_PKG_VERSION").to_string()
    } else {
        format!("{} (git {sha})", env!("CARGO_PKG_VERSION"))
    }
}

/// Where runs are recorded.
#[derive(Clone, Debug, Default)]
pub struct Tracking {
    /// The local store's directory (`None`: [`RUNS_DIR_ENV`], else [`DEFAULT_RUNS_DIR`]).
    pub runs_dir: Option<PathBuf>,
    /// An MLflow tracking URI (`None`: `$MLFLOW_TRACKING_URI`, if set).
    pub mlflow_uri: Option<String>,
    /// The MLflow experiment (`None`: `$MLFLOW_EXPERIMENT_NAME`, else `movierec`).
    pub experiment: Option<String>,
}

impl Tracking {
    /// The local store's directory.
    pub fn runs_dir(&self) -> PathBuf {
        self.runs_dir.clone().unwrap_or_else(|| {
            std::env::var_os(RUNS_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_RUNS_DIR), PathBuf::from)
        })
    }

    /// The MLflow client, if one is configured. A bad URI is an error.
    pub fn mlflow(&self) -> super::Result<Option<MlflowClient>> {
        let client = match &self.mlflow_uri {
            Some(uri) => Some(MlflowClient::new(uri)),
            None => MlflowClient::from_env(),
        };
        let client = client.transpose()?;
        Ok(client.map(|c| match &self.experiment {
            Some(name) => c.with_experiment(name.clone()),
            None => c,
        }))
    }

    /// Records `run`: MLflow first (a failure is a warning on stderr), then the local store.
    pub fn record(&self, run: RunRecord) -> crate::Result<RunRecord> {
        let store = RunStore::open(&self.runs_dir())?;
        let mlflow = match self.mlflow() {
            Ok(client) => client,
            Err(e) => {
                eprintln!("warning: MLflow is not used: {e}");
                None
            }
        };
        let stored = record(&store, mlflow.as_ref(), run, &mut |warning| {
            eprintln!("warning: {warning}");
        })?;
        Ok(stored)
    }
}

/// The run of `movierec train --data data_dir --out out_dir`, from its result.
pub fn train_run(
    data_dir: &Path,
    out_dir: &Path,
    started: RunRecord,
    result: &crate::Result<Manifest>,
) -> RunRecord {
    let mut run = started
        .param("data", data_dir.display())
        .param("out", out_dir.display());
    let Ok(manifest) = result else {
        if let Err(e) = result {
            run = run.tag("error", e);
        }
        return run.finish(RunStatus::Failed);
    };
    run.dataset.fingerprint = manifest.dataset.fingerprint.clone();
    run = run
        .metric("training_seconds", manifest.training_seconds)
        .metric("movies", manifest.dataset.movies as f64)
        .metric("ratings", manifest.dataset.ratings as f64)
        .metric("users", manifest.dataset.users as f64)
        .param("default_collaborative", manifest.default_collaborative)
        .param("personal_model", manifest.personal.model)
        .param(
            "personal_scoring",
            serde_json::to_string(&manifest.personal.scoring).unwrap_or_default(),
        );
    for (stage, seconds) in &manifest.stages {
        run = run.metric(format!("stage.{stage}.seconds"), *seconds);
    }
    if let Some(bytes) = manifest.peak_memory_bytes {
        run = run.metric("peak_memory_mb", bytes as f64 / (1024.0 * 1024.0));
    }
    // `--incremental`: where from, whether it could, and how much changed.
    let incremental = &manifest.incremental;
    if let Some(from) = incremental.get("from").and_then(|v| v.as_str()) {
        run = run.param("incremental_from", from);
        let started = incremental.get("incremental").and_then(|v| v.as_bool());
        run = run.param("incremental", started == Some(true));
        if let Some(reason) = incremental.get("reason").and_then(|v| v.as_str()) {
            run = run.param("incremental_reason", reason);
        }
        for key in [
            "added",
            "changed",
            "removed",
            "users_changed",
            "movies_changed",
        ] {
            if let Some(n) = incremental["delta"].get(key).and_then(|v| v.as_f64()) {
                run = run.metric(format!("incremental.{key}"), n);
            }
        }
    }
    for (kind, model) in &manifest.models {
        run = run.metric(format!("{kind}.dim"), model.dim as f64);
        for (index, entry) in &model.indexes {
            if *index != IndexKind::Exact {
                run = run.metric(
                    format!("{kind}.{index}.recall_at_10"),
                    entry.recall_at_10.into(),
                );
                run = run.param(format!("{kind}.{index}"), entry.params.to_string());
            }
        }
    }
    for (kind, lists) in &manifest.neighbour_lists {
        run = run.param(
            format!("{kind}.params"),
            lists.details["params"].to_string(),
        );
    }
    run.finish(RunStatus::Finished)
}

/// The run of `movierec evaluate --data data_dir`, from its result.
pub fn evaluate_run(
    data_dir: &Path,
    fingerprint: &str,
    started: RunRecord,
    result: &crate::Result<EvaluationReport>,
) -> RunRecord {
    let mut run = started.param("data", data_dir.display());
    run.dataset.fingerprint = fingerprint.to_string();
    let Ok(report) = result else {
        if let Err(e) = result {
            run = run.tag("error", e);
        }
        return run.finish(RunStatus::Failed);
    };
    run = run
        .metric("pairs", report.pairs as f64)
        .metric("users", report.users as f64)
        .metric("train_ratings", report.train_ratings as f64)
        .param(
            "personal_scoring",
            serde_json::to_string(&report.personal_params).unwrap_or_default(),
        );
    if let Some(lists) = report.personal_model {
        run = run.param("personal_model", lists);
    }
    for m in &report.models {
        let name = &m.model;
        run = run
            .metric(format!("{name}.hr_at_10"), m.hr_at_10)
            .metric(format!("{name}.ndcg_at_10"), m.ndcg_at_10)
            .metric(format!("{name}.user_recall_at_10"), m.user_recall_at_10)
            .metric(format!("{name}.user_ndcg_at_10"), m.user_ndcg_at_10)
            .metric(format!("{name}.coverage"), m.coverage)
            .metric(format!("{name}.mean_popularity"), m.mean_popularity);
        if !m.params.is_null() {
            let shown = crate::eval::json_without_arrays(&m.params);
            run = run.param(format!("{name}.params"), shown);
        }
        run = intervals(run, name, &m.intervals, &m.vs_default);
    }
    if let Some(incremental) = &report.incremental {
        run = run
            .metric("incremental.full_seconds", incremental.full_seconds)
            .metric("incremental.seconds", incremental.incremental_seconds)
            .metric("incremental.new_share", incremental.delta.new_share())
            .metric(
                "incremental.movies_changed",
                incremental.delta.movies_changed as f64,
            );
        // `vs_full`: the difference from the same model's full training.
        for m in &incremental.models {
            let name = m.model.replace(' ', "_");
            run = run
                .metric(format!("{name}.hr_at_10"), m.hr_at_10)
                .metric(format!("{name}.ndcg_at_10"), m.ndcg_at_10)
                .metric(format!("{name}.user_recall_at_10"), m.user_recall_at_10)
                .metric(format!("{name}.user_ndcg_at_10"), m.user_ndcg_at_10);
            for (metric, d) in &m.vs_default {
                run = run
                    .metric(format!("{name}.{metric}.vs_full"), d.diff)
                    .metric(format!("{name}.{metric}.vs_full.ci_low"), d.ci[0])
                    .metric(format!("{name}.{metric}.vs_full.ci_high"), d.ci[1]);
            }
        }
    }
    for s in &report.similarity {
        let name = &s.model;
        run = run
            .metric(
                format!("{name}.franchise_recall_at_10"),
                s.franchise_recall_at_10,
            )
            .metric(format!("{name}.judged_auc"), s.judged_auc)
            .metric(format!("{name}.judged_auc_matched"), s.judged_auc_matched)
            .metric(format!("{name}.obscure_share"), s.obscure_share);
        run = intervals(run, name, &s.intervals, &s.vs_default);
    }
    let b = &report.bootstrap;
    run.param("bootstrap.reference", &b.reference)
        .param("bootstrap.similarity_reference", &b.similarity_reference)
        .param("bootstrap.draws", b.draws)
        .param("bootstrap.seed", b.seed)
        .metric("bootstrap_seconds", b.seconds)
        .finish(RunStatus::Finished)
}

/// A model's interval bounds (`{model}.{metric}.ci_low` / `.ci_high`) and its difference from
/// the reference model with that difference's bounds (`.vs_default`, `.vs_default.ci_low`...).
fn intervals(
    mut run: RunRecord,
    model: &str,
    intervals: &BTreeMap<String, [f64; 2]>,
    differences: &BTreeMap<String, Difference>,
) -> RunRecord {
    for (metric, [low, high]) in intervals {
        run = run
            .metric(format!("{model}.{metric}.ci_low"), *low)
            .metric(format!("{model}.{metric}.ci_high"), *high);
    }
    for (metric, d) in differences {
        run = run
            .metric(format!("{model}.{metric}.vs_default"), d.diff)
            .metric(format!("{model}.{metric}.vs_default.ci_low"), d.ci[0])
            .metric(format!("{model}.{metric}.vs_default.ci_high"), d.ci[1]);
    }
    run
}

/// A new run of `kind` reading `data_dir`, starting now.
pub fn start(kind: RunKind, data_dir: &Path) -> RunRecord {
    RunRecord::start(kind, code_version(), data_dir.display().to_string(), "")
}
