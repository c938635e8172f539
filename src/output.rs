//! What the commands print: the evaluation's tables, recommendations as tables, the recorded
//! runs, the tuning stages. Everything goes through `out!` (standard output that a closed pipe
//! ends quietly).

use super::*;

/// The tuning stages of a manifest, one line each (nothing for `--no-tune`).
pub(super) fn print_tuning(tuning: &serde_json::Value) {
    let Some(stages) = tuning["stages"].as_array() else {
        eprintln!("  settings: the stored defaults (--no-tune)");
        return;
    };
    eprintln!(
        "  settings tuned on a validation split ({} ratings, {} pairs) in {:.2} s of a {:.1} s \
         budget:",
        tuning["validation_ratings"],
        tuning["validation_pairs"],
        tuning["seconds"].as_f64().unwrap_or(0.0),
        tuning["budget_seconds"].as_f64().unwrap_or(0.0)
    );
    for stage in stages {
        let name = stage["stage"].as_str().unwrap_or("?");
        if stage["tuned"].as_bool() == Some(true) {
            let score = stage["score"]
                .as_f64()
                .map_or(String::new(), |s| format!(", {s:.4}"));
            eprintln!(
                "    {name:<9} {} settings in {:.2} s ({}{score})",
                stage["tried"],
                stage["seconds"].as_f64().unwrap_or(0.0),
                stage["criterion"].as_str().unwrap_or("")
            );
        } else {
            eprintln!(
                "    {name:<9} default kept: {}",
                stage["skipped"].as_str().unwrap_or("not tuned")
            );
        }
    }
}

pub(super) fn year_suffix(year: Option<u16>) -> String {
    year.map(|y| format!(" ({y})")).unwrap_or_default()
}

/// `value [low, high]`, the bounds with `bound_digits` decimals.
pub(super) fn with_interval(
    value: f64,
    interval: Option<&[f64; 2]>,
    digits: usize,
    bound_digits: usize,
) -> String {
    match interval {
        Some([low, high]) => {
            format!("{value:.digits$} [{low:.bound_digits$}, {high:.bound_digits$}]")
        }
        None => format!("{value:.digits$}"),
    }
}

/// `+diff [low, high]`, starred when the interval excludes 0; `—` for none.
pub(super) fn difference(d: Option<&Difference>, digits: usize, bound_digits: usize) -> String {
    match d {
        Some(d) => format!(
            "{:+.digits$} [{:+.bound_digits$}, {:+.bound_digits$}]{}",
            d.diff,
            d.ci[0],
            d.ci[1],
            if d.excludes_zero() { "*" } else { "" }
        ),
        None => "—".to_string(),
    }
}

/// Prints one table row: the first cell left-aligned in 14 columns, the others in `width`.
pub(super) fn print_row(first: &str, cells: impl IntoIterator<Item = String>, width: usize) {
    let mut line = format!("{first:<14}");
    for cell in cells {
        line.push_str(&format!(" {cell:<width$}"));
    }
    out!("{}", line.trim_end());
}

/// The text report of `movierec evaluate`, in tables that fit 120 columns.
pub(super) fn print_evaluation(report: &EvaluationReport) -> anyhow::Result<()> {
    let b = &report.bootstrap;
    out!(
        "{} users, {} (query, target) pairs, {} training ratings",
        report.users,
        report.pairs,
        report.train_ratings
    );
    out!(
        "[95% intervals: paired bootstrap over the {} users, {} draws, seed {}; {:.2} s]",
        b.user_units,
        b.draws,
        b.seed,
        b.seconds
    );
    let next_liked = [
        ("hr_at_10", "HR@10"),
        ("ndcg_at_10", "NDCG@10"),
        ("user_recall_at_10", "user Rec@10"),
        ("user_ndcg_at_10", "user NDCG@10"),
    ];
    let value = |m: &ModelReport, name: &str| match name {
        "hr_at_10" => m.hr_at_10,
        "ndcg_at_10" => m.ndcg_at_10,
        "user_recall_at_10" => m.user_recall_at_10,
        _ => m.user_ndcg_at_10,
    };
    print_row("model", next_liked.map(|(_, title)| title.to_string()), 22);
    for m in &report.models {
        let cells =
            next_liked.map(|(name, _)| with_interval(value(m, name), m.intervals.get(name), 4, 3));
        print_row(&m.model, cells, 22);
    }
    let why = |reference: &str| match reference {
        "popularity" => "the baseline, the default was not evaluated",
        "similar" => "\"more like this\", the default",
        _ => "the default collaborative model",
    };
    out!(
        "difference from {} ({}), paired 95% interval; * excludes 0:",
        b.reference,
        why(&b.reference)
    );
    print_row(
        "model",
        next_liked.map(|(_, title)| format!("Δ {title}")),
        25,
    );
    for m in report.models.iter().filter(|m| m.model != b.reference) {
        let cells = next_liked.map(|(name, _)| difference(m.vs_default.get(name), 4, 3));
        print_row(&m.model, cells, 25);
    }
    print_row(
        "model",
        [
            format!("{:>9}", "coverage"),
            format!("{:<22}", "mean popularity"),
            format!("Δ from {}", b.reference),
        ],
        9,
    );
    for m in &report.models {
        let popularity = m.intervals.get("mean_popularity");
        let gap = if m.model == b.reference {
            String::new()
        } else {
            difference(m.vs_default.get("mean_popularity"), 1, 1)
        };
        let cells = [
            format!("{:>9.3}", m.coverage),
            format!("{:<22}", with_interval(m.mean_popularity, popularity, 1, 1)),
            gap,
        ];
        print_row(&m.model, cells, 9);
    }
    out!(
        "settings chosen on the validation split ({} item-to-item, {} hybrid and {} \
         personal settings tried):",
        report.validation.len(),
        report.validation_hybrid.len(),
        report.validation_personal.len()
    );
    for m in report.models.iter().filter(|m| m.model != "popularity") {
        // The full details (spectra, feature names) are in --json.
        let shown = movierec::eval::json_without_arrays(&m.params);
        out!("  {:<13} {shown}", m.model);
    }
    if let Some(lists) = report.personal_model {
        out!(
            "  personal      {lists} lists, {}",
            serde_json::to_string(&report.personal_params)?
        );
    }
    out!(
        "similarity (\"more like this\"; {} franchises, {} held-out judged triples of {} users; \
         see docs/EVALUATION.md):",
        report.franchises,
        report.judged_triples,
        b.judged_user_units
    );
    out!(
        "[95% intervals: franchise recall resamples franchises, the AUCs users; differences from {}]",
        b.similarity_reference
    );
    let judged = [
        ("franchise_recall_at_10", "franchise R@10"),
        ("judged_auc", "judged AUC"),
        ("judged_auc_matched", "AUC (pop. matched)"),
    ];
    let similarity_value = |s: &SimilarityReport, name: &str| match name {
        "franchise_recall_at_10" => s.franchise_recall_at_10,
        "judged_auc" => s.judged_auc,
        _ => s.judged_auc_matched,
    };
    print_row("model", judged.map(|(_, title)| title.to_string()), 21);
    for s in &report.similarity {
        let cells = judged
            .map(|(name, _)| with_interval(similarity_value(s, name), s.intervals.get(name), 3, 3));
        print_row(&s.model, cells, 21);
    }
    out!(
        "difference from {} ({}), paired 95% interval; * excludes 0:",
        b.similarity_reference,
        why(&b.similarity_reference)
    );
    print_row("model", judged.map(|(_, title)| format!("Δ {title}")), 25);
    for s in report
        .similarity
        .iter()
        .filter(|s| s.model != b.similarity_reference)
    {
        let cells = judged.map(|(name, _)| difference(s.vs_default.get(name), 3, 3));
        print_row(&s.model, cells, 25);
    }
    out!(
        "{:<14} {:>9} {:>10} {:>10} {:>9}   (shares: every rated movie's list, no interval)",
        "model",
        "obscure",
        "duplicate",
        "with cold",
        "max cold"
    );
    for s in &report.similarity {
        out!(
            "{:<14} {:>9.4} {:>10.4} {:>10.4} {:>9.4}",
            s.model,
            s.obscure_share,
            s.duplicate_share,
            s.cold_share,
            s.max_cold_share
        );
    }
    if let Some(incremental) = &report.incremental {
        let d = &incremental.delta;
        out!(
            "incremental training: the latest {:.1}% of the training ratings ({} added, {} users, \
             {} of the movies' co-ratings changed) added to models trained on the rest; fitting \
             {:.2} s incrementally, {:.2} s in full:",
            100.0 * incremental.share,
            d.added,
            d.users_changed,
            d.movies_changed,
            incremental.incremental_seconds,
            incremental.full_seconds
        );
        print_row("model", next_liked.map(|(_, title)| title.to_string()), 22);
        for m in &incremental.models {
            let cells = next_liked
                .map(|(name, _)| with_interval(value(m, name), m.intervals.get(name), 4, 3));
            print_row(m.model.trim_end_matches(" incremental"), cells, 22);
        }
        out!("difference from the same model trained in full, paired 95% interval; * excludes 0:");
        print_row(
            "model",
            next_liked.map(|(_, title)| format!("Δ {title}")),
            25,
        );
        for m in &incremental.models {
            let cells = next_liked.map(|(name, _)| difference(m.vs_default.get(name), 4, 3));
            print_row(m.model.trim_end_matches(" incremental"), cells, 25);
        }
    }
    Ok(())
}

pub(super) fn print_personal(answer: &PersonalRecommendations) {
    match answer.user {
        Some(user) => out!(
            "Recommended for user {user} (who rated {} movies) — {} model",
            answer.rated,
            answer.model
        ),
        None => {
            let names: Vec<String> = answer
                .liked
                .iter()
                .map(|m| format!("{}{}", m.title, year_suffix(m.year)))
                .collect();
            out!(
                "Recommended for someone who liked {} — {} model",
                names.join("; "),
                answer.model
            );
        }
    }
    print_results(&answer.results);
}

pub(super) fn print_results(results: &[ScoredMovie]) {
    for (rank, r) in results.iter().enumerate() {
        let m = &r.movie;
        out!(
            "{:>3}. {}{}  [{}]  {:.3}  {}",
            rank + 1,
            m.title,
            year_suffix(m.year),
            m.genres.join(", "),
            r.score,
            m.imdb_url.as_deref().unwrap_or(&m.movielens_url)
        );
        if let Some(why) = &r.why {
            out!("       why: {}", why.text);
        }
    }
}

pub(super) fn print_table(answer: &Recommendations) {
    let q = &answer.query;
    let year = |y: Option<u16>| y.map(|y| format!(" ({y})")).unwrap_or_default();
    out!(
        "Movies like {}{} — {} model, {} index",
        q.title,
        year(q.year),
        answer.model,
        answer.index
    );
    let loose = answer.r#match == MatchKind::Loose;
    if loose {
        out!("(a loose match for the title typed; it may not be the film meant)");
    }
    print_results(&answer.results);
    if !answer.alternatives.is_empty() {
        let names: Vec<String> = answer
            .alternatives
            .iter()
            .map(|m| format!("{}{}", m.title, year(m.year)))
            .collect();
        let lead = if loose {
            "Not what you meant? Try"
        } else {
            "Also matching"
        };
        out!("{lead}: {}", names.join("; "));
    }
}

/// One line on stderr saying where a run was recorded.
pub(super) fn report_run(run: &RunRecord) {
    match &run.mlflow {
        Some(m) => eprintln!(
            "movierec: run {} recorded (MLflow run {} at {})",
            run.id, m.run_id, m.tracking_uri
        ),
        None => eprintln!("movierec: run {} recorded", run.id),
    }
}

/// The runs as a table: the headline metrics of each kind of run.
pub(super) fn print_runs(dir: &Path, runs: &[RunRecord]) {
    if runs.is_empty() {
        out!("no runs recorded in {}", dir.display());
        return;
    }
    out!(
        "{:<12} {:<8} {:<20} {:>8} {:<8} {:<16} headline",
        "run",
        "kind",
        "started (UTC)",
        "seconds",
        "status",
        "dataset"
    );
    for run in runs {
        let metric = |name: &str| run.metrics.get(name).copied();
        let headline = match run.kind {
            _ if run.status == RunStatus::Failed => run
                .tags
                .get("error")
                .map(|e| format!("error: {e}"))
                .unwrap_or_default(),
            RunKind::Train => metric("training_seconds")
                .map(|s| format!("trained in {s:.2} s"))
                .unwrap_or_default(),
            RunKind::Evaluate => match (
                metric("item_knn.hr_at_10"),
                metric("item_knn.ndcg_at_10"),
                metric("item_knn.user_recall_at_10"),
            ) {
                (Some(hr), Some(ndcg), Some(recall)) => {
                    format!("item_knn HR@10 {hr:.4}, NDCG@10 {ndcg:.4}, user Recall@10 {recall:.4}")
                }
                _ => String::new(),
            },
        };
        let mlflow = run
            .mlflow
            .as_ref()
            .map(|m| format!(" [MLflow {}]", m.run_id))
            .unwrap_or_default();
        out!(
            "{:<12} {:<8} {:<20} {:>8.2} {:<8} {:<16} {headline}{mlflow}",
            &run.id[..run.id.len().min(12)],
            run.kind.as_str(),
            run.started_at.get(..19).unwrap_or(&run.started_at),
            run.duration_seconds,
            run.status.as_str(),
            run.dataset
                .fingerprint
                .get(..run.dataset.fingerprint.len().min(16))
                .unwrap_or_default(),
        );
    }
}

/// The `--incremental` lines of `train`'s summary: what changed since the model it started
/// from and what was reused, or why it trained in full.
pub(super) fn print_incremental(record: &serde_json::Value) {
    let Some(from) = record.get("from").and_then(|f| f.as_str()) else {
        return;
    };
    if record.get("incremental").and_then(|v| v.as_bool()) != Some(true) {
        let reason = record.get("reason").and_then(|r| r.as_str()).unwrap_or("");
        eprintln!("  trained in full, not incrementally from {from}: {reason}");
        return;
    }
    let n = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_u64()).unwrap_or(0);
    let delta = &record["delta"];
    eprintln!(
        "  incremental from {from} (chain {}): {} ratings added, {} changed, {} removed ({} \
         users); content {}; item-kNN lists {} ({} movies' co-ratings \
         changed); \"more like this\" {} ({} movies moved)",
        n(record, "chain"),
        n(delta, "added"),
        n(delta, "changed"),
        n(delta, "removed"),
        n(delta, "users_changed"),
        if record.get("content_reused").and_then(|v| v.as_bool()) == Some(true) {
            "reused"
        } else {
            "trained again (its inputs changed)"
        },
        match record.get("item_knn").and_then(|v| v.as_str()) {
            Some("updated") => "updated by the changed co-ratings",
            _ => "of those movies rebuilt",
        },
        n(record, "item_knn_lists_changed"),
        match record.get("similar").and_then(|v| v.as_str()) {
            Some("updated") => "updated",
            Some(_) => "searched in full",
            None => "searched in full (its previous lists could not be updated)",
        },
        n(record, "similar_moved_movies"),
    );
}

/// The `stages:` line of `train`'s summary: each stage's time in the pipeline's order, and the
/// peak memory.
pub(super) fn print_stages(manifest: &movierec::artifact::Manifest) {
    // In the pipeline's order (tune and embeddings run side by side).
    let order = [
        "load",
        "compare",
        "tune",
        "embeddings",
        "lists",
        "explanations",
    ];
    let rank = |stage: &str| {
        order
            .iter()
            .position(|&o| o == stage)
            .unwrap_or(order.len())
    };
    let mut stages: Vec<(&String, &f64)> = manifest.stages.iter().collect();
    stages.sort_by_key(|(stage, _)| rank(stage));
    let stages: Vec<String> = stages
        .into_iter()
        .map(|(stage, seconds)| format!("{stage} {seconds:.2} s"))
        .collect();
    if !stages.is_empty() {
        eprintln!(
            "  stages: {}{}",
            stages.join(", "),
            manifest
                .peak_memory_bytes
                .map_or(String::new(), |b| format!("; peak memory {} MB", b >> 20))
        );
    }
}
