//! Offline evaluation with a time-ordered hold-out.
//!
//! Protocol: a *liked* rating is ≥ [`LIKED_THRESHOLD`]. For every user with at least
//! `TARGETS_PER_USER + 1` liked ratings, the last [`TARGETS_PER_USER`] liked (by timestamp) are
//! targets, each paired with the liked rating just before it as its query; every rating of that
//! user from the first target's timestamp on is removed from training.
//!
//! Item-to-item metrics: HR@10 (the query's top 10 contains its target) and NDCG@10
//! (`1 / log2(rank + 2)` for a hit at 0-based `rank`), averaged over all pairs. Catalog coverage
//! (share of movies recommended at least once) and the mean popularity (number of training
//! ratings) of what is recommended are reported alongside. Popularity is always evaluated as a
//! baseline.
//!
//! Hyper-parameters are never chosen on the test targets: the same hold-out is applied again to
//! the training part, giving a validation split; each tunable model's grid is scored there (by
//! NDCG@10), and only the chosen setting is trained on the whole training part and scored on the
//! test targets.

pub mod bootstrap;
pub mod similarity;
pub mod tune;

use crate::data::{Dataset, Rating};
use crate::fit::{fit, Settings, DEFAULT_COLLABORATIVE};
use crate::index::{ExactIndex, Metric, VectorIndex};
use crate::interactions::UserHistories;
use crate::models::item_knn::NeighbourLists;
use crate::models::personal::{score_history, HistoryEntry, PersonalParams};
use crate::models::{FitInput, ModelKind, ModelShape, PairScorer, REGISTRY};
use crate::Result;
use bootstrap::{BootstrapSummary, Difference};
use rayon::prelude::*;
use serde::Serialize;
use similarity::{JudgedSets, SimilarityReport};
use std::collections::{BTreeMap, HashMap, HashSet};
pub use tune::{
    als_grid, balance_grid, choose_personal, item_knn_grid, personal_grid, similar_grid,
    similar_objective, PersonalTrial, SimilarTrial, Tuning, CONTENT_TAG_WEIGHTS, EASE_LAMBDAS,
    HYBRID_WEIGHTS, SIMILAR_CONTENT_WEIGHTS,
};

/// Ratings at or above this are "liked".
pub const LIKED_THRESHOLD: f32 = 4.0;
/// Held-out liked ratings per user.
pub const TARGETS_PER_USER: usize = 5;
/// The cut-off of every metric.
pub const CUTOFF: usize = 10;

/// A training set and the held-out (query, target) pairs, as MovieLens ids.
#[derive(Clone, Debug)]
pub struct HoldOut {
    /// Ratings left for training.
    pub train: Vec<Rating>,
    /// `(user, query movie, target movie)`.
    pub pairs: Vec<(u32, u32, u32)>,
}

/// Splits ratings by the protocol in the module documentation.
pub fn hold_out(ratings: &[Rating]) -> HoldOut {
    let mut by_user: HashMap<u32, Vec<&Rating>> = HashMap::new();
    for r in ratings {
        by_user.entry(r.user_id).or_default().push(r);
    }
    let mut cut_off: HashMap<u32, u32> = HashMap::new();
    let mut pairs = Vec::new();
    let mut users: Vec<u32> = by_user.keys().copied().collect();
    users.sort_unstable();
    for user in users {
        let mut liked: Vec<&Rating> = by_user[&user]
            .iter()
            .copied()
            .filter(|r| r.rating >= LIKED_THRESHOLD)
            .collect();
        if liked.len() <= TARGETS_PER_USER {
            continue;
        }
        liked.sort_by_key(|r| (r.timestamp, r.movie_id));
        let first = liked.len() - TARGETS_PER_USER;
        cut_off.insert(user, liked[first].timestamp);
        for i in first..liked.len() {
            pairs.push((user, liked[i - 1].movie_id, liked[i].movie_id));
        }
    }
    let train = ratings
        .iter()
        .filter(|r| cut_off.get(&r.user_id).is_none_or(|&t| r.timestamp < t))
        .copied()
        .collect();
    HoldOut { train, pairs }
}

/// The metrics of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// Model name.
    pub model: String,
    /// The parameters evaluated (chosen on the validation split for tunable models).
    pub params: serde_json::Value,
    /// Item-to-item hit rate at 10.
    pub hr_at_10: f64,
    /// Item-to-item NDCG at 10.
    pub ndcg_at_10: f64,
    /// Per-user Recall@10: hits among the user's targets / min(10, targets), already-rated
    /// movies excluded.
    pub user_recall_at_10: f64,
    /// Per-user NDCG@10.
    pub user_ndcg_at_10: f64,
    /// Share of the catalog recommended at least once.
    pub coverage: f64,
    /// Mean number of training ratings of the recommended movies.
    pub mean_popularity: f64,
    /// The 95% paired-bootstrap interval of each metric but coverage, by field name (test rows
    /// only; see [`bootstrap`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, [f64; 2]>,
    /// Each metric's difference from the reference model (`EvaluationReport::bootstrap`) with
    /// its paired 95% interval (test rows only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vs_default: BTreeMap<String, Difference>,
    /// Each (query, target) pair's outcome, in the order of the pairs scored: what the bootstrap
    /// resamples.
    #[serde(skip)]
    pub per_pair: Vec<PairOutcome>,
    /// Each evaluated user's (Recall@10, NDCG@10), in user order (test rows only).
    #[serde(skip)]
    pub per_user: Vec<(f64, f64)>,
}

/// What one (query, target) pair contributed to a [`ModelReport`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairOutcome {
    /// 1 when the target is in the top 10.
    pub hit: f64,
    /// `1 / log2(rank + 2)` for a hit, else 0.
    pub ndcg: f64,
    /// The summed training ratings of the movies shown.
    pub popularity: f64,
    /// How many movies were shown.
    pub shown: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationReport {
    /// Number of (query, target) pairs.
    pub pairs: usize,
    /// Number of users with targets.
    pub users: usize,
    /// Ratings left for training.
    pub train_ratings: usize,
    /// The settings chosen on the validation split (what `train` would choose on the training
    /// part).
    pub settings: Settings,
    /// What each tuning stage tried and how long it took.
    pub tuning: Vec<tune::StageOutcome>,
    /// One row per model on the test targets, popularity first.
    pub models: Vec<ModelReport>,
    /// Every item-to-item setting tried on the validation split, with its validation metrics.
    pub validation: Vec<ModelReport>,
    /// Every hybrid weight tried on the validation split.
    pub validation_hybrid: Vec<ModelReport>,
    /// Every (neighbour lists, personal-scoring setting) tried on the validation split.
    pub validation_personal: Vec<PersonalTrial>,
    /// The neighbour lists chosen to score users (none when no list model was evaluated).
    pub personal_model: Option<ModelKind>,
    /// The scoring chosen for them.
    pub personal_params: PersonalParams,
    /// Every "more like this" setting tried on the validation split, with its similarity
    /// metrics there.
    pub validation_similar: Vec<SimilarTrial>,
    /// The similarity section on the test split ([`similarity`]), one row per model.
    pub similarity: Vec<SimilarityReport>,
    /// Number of held-out judged triples behind `judged_auc`.
    pub judged_triples: usize,
    /// Number of franchises behind `franchise_recall_at_10`.
    pub franchises: usize,
    /// How the intervals were drawn, and the reference models of the differences.
    pub bootstrap: BootstrapSummary,
    /// `evaluate --incremental SHARE`: each model trained incrementally, against its full
    /// training (see [`IncrementalReport`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalReport>,
}

/// What an incremental training costs in quality (`evaluate --incremental SHARE`): the latest
/// `share` of the training part's ratings (by time) are held back, every model is trained on the
/// rest, then trained again incrementally from it on the whole training part (as `train
/// --incremental` does) and scored on the test targets beside its full training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IncrementalReport {
    /// The share of the training ratings held back and added.
    pub share: f64,
    /// How the ratings differ from those the previous models saw.
    pub delta: crate::incremental::Delta,
    /// Wall seconds of fitting every model in full on the training part.
    pub full_seconds: f64,
    /// Wall seconds of fitting them incrementally (the comparison of histories included).
    pub incremental_seconds: f64,
    /// One row per model trained incrementally, scored as the full rows; its `vs_default` is
    /// the difference from the same model's full training, with its paired interval.
    pub models: Vec<ModelReport>,
}

/// Scores every (query, target) pair with `top10(query item)`.
fn score(
    name: &str,
    pairs: &[(u32, u32)],
    popularity: &[u32],
    top10: impl Fn(u32) -> Vec<u32>,
) -> ModelReport {
    let (mut hits, mut ndcg, mut pop_sum, mut shown) = (0.0, 0.0, 0.0, 0usize);
    let mut recommended = HashSet::new();
    let mut per_pair = Vec::with_capacity(pairs.len());
    for &(query, target) in pairs {
        let list = top10(query);
        let mut outcome = PairOutcome {
            shown: list.len() as f64,
            ..PairOutcome::default()
        };
        if let Some(rank) = list.iter().position(|&i| i == target) {
            outcome.hit = 1.0;
            outcome.ndcg = 1.0 / ((rank + 2) as f64).log2();
            hits += 1.0;
            ndcg += outcome.ndcg;
        }
        for &i in &list {
            outcome.popularity += f64::from(popularity[i as usize]);
            pop_sum += f64::from(popularity[i as usize]);
            shown += 1;
            recommended.insert(i);
        }
        per_pair.push(outcome);
    }
    let n = pairs.len().max(1) as f64;
    ModelReport {
        model: name.to_string(),
        params: serde_json::Value::Null,
        hr_at_10: hits / n,
        ndcg_at_10: ndcg / n,
        user_recall_at_10: 0.0,
        user_ndcg_at_10: 0.0,
        coverage: recommended.len() as f64 / popularity.len().max(1) as f64,
        mean_popularity: pop_sum / shown.max(1) as f64,
        intervals: BTreeMap::new(),
        vs_default: BTreeMap::new(),
        per_pair,
        per_user: Vec::new(),
    }
}

/// Sets the per-user metrics of `report` from each user's (Recall@10, NDCG@10).
fn set_per_user(report: &mut ModelReport, per_user: Vec<(f64, f64)>) {
    let n = per_user.len().max(1) as f64;
    report.user_recall_at_10 = per_user.iter().map(|p| p.0).sum::<f64>() / n;
    report.user_ndcg_at_10 = per_user.iter().map(|p| p.1).sum::<f64>() / n;
    report.per_user = per_user;
}

/// Each evaluated user's training history and held-out targets, as catalog rows.
struct UserCases {
    /// The users, sorted; `cases` is in this order.
    users: Vec<u32>,
    cases: Vec<(Vec<HistoryEntry>, Vec<u32>)>,
}

impl UserCases {
    fn new(prepared: &Prepared, pairs: &[(u32, u32, u32)]) -> UserCases {
        let histories = UserHistories::from_matrix(&prepared.trained.matrix);
        let mut targets: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(user, _, target) in pairs {
            if let Some(item) = prepared.trained.catalog.item_of(target) {
                targets.entry(user).or_default().push(item);
            }
        }
        let mut users: Vec<u32> = targets.keys().copied().collect();
        users.sort_unstable();
        let cases = users
            .iter()
            .map(|u| {
                let history = histories.history(*u).map(Iterator::collect);
                (history.unwrap_or_default(), targets[u].clone())
            })
            .collect();
        UserCases { users, cases }
    }

    /// Each user's Recall@10 and NDCG@10 of `recommend(history)` (which must exclude the
    /// history), in user order.
    fn score_each(
        &self,
        recommend: impl Fn(&[HistoryEntry]) -> Vec<u32> + Sync,
    ) -> Vec<(f64, f64)> {
        self.cases
            .par_iter()
            .map(|(history, targets)| {
                let top = recommend(history);
                let ideal = targets.len().min(CUTOFF);
                let hits: Vec<usize> = top
                    .iter()
                    .take(CUTOFF)
                    .enumerate()
                    .filter(|(_, j)| targets.contains(j))
                    .map(|(rank, _)| rank)
                    .collect();
                let dcg: f64 = hits.iter().map(|&r| 1.0 / ((r + 2) as f64).log2()).sum();
                let idcg: f64 = (0..ideal).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
                (
                    hits.len() as f64 / ideal.max(1) as f64,
                    dcg / idcg.max(f64::MIN_POSITIVE),
                )
            })
            .collect()
    }
}

/// A user's taste vector in an embedding space: the history's unit rows weighted as in
/// [`crate::models::personal`], then the nearest unseen movies.
fn embedding_user_top(
    index: &ExactIndex,
    history: &[HistoryEntry],
    params: &PersonalParams,
) -> Vec<u32> {
    let embeddings = index.embeddings();
    let mut query = vec![0f32; embeddings.dim()];
    for (h, weight) in history.iter().zip(params.vote_weights(history)) {
        for (q, x) in query.iter_mut().zip(embeddings.row(h.item as usize)) {
            *q += weight * x;
        }
    }
    let seen: HashSet<u32> = history.iter().map(|h| h.item).collect();
    index
        .search(&query, CUTOFF, &|row| !seen.contains(&row))
        .iter()
        .map(|n| n.item)
        .collect()
}

/// Item-to-item metrics of an embedding model searched exactly.
fn score_embeddings(name: &str, prepared: &Prepared, index: &ExactIndex) -> ModelReport {
    score(name, &prepared.pairs, &prepared.popularity, |query| {
        top_of_index(index, query, &|i| prepared.popularity[i as usize])
    })
}

/// An embedding model's top 10 for `query` as the engine answers it: equal scores ordered by
/// `popularity` ([`crate::engine::popular_ties_first`]).
fn top_of_index(index: &ExactIndex, query: u32, popularity: &dyn Fn(u32) -> u32) -> Vec<u32> {
    crate::engine::popular_ties_first(
        CUTOFF,
        |n| index.search_item(query, n, &|_| true),
        |n| (n.item, n.score),
        popularity,
    )
    .into_iter()
    .map(|n| n.item)
    .collect()
}

/// Ratings and (query, target) pairs resolved to catalog rows, with popularity per row.
struct Prepared {
    trained: crate::fit::TrainedModels,
    pairs: Vec<(u32, u32)>,
    /// The user of each of `pairs`.
    pair_users: Vec<u32>,
    popularity: Vec<u32>,
}

fn prepare(dataset: &Dataset, train: Vec<Rating>, pairs: &[(u32, u32, u32)]) -> Result<Prepared> {
    prepare_with(dataset, train, pairs, &Settings::default(), &|_| false)
}

/// [`prepare`], given up (`None`) once `deadline` passes (see [`crate::fit::fit_before`]).
fn prepare_before(
    dataset: &Dataset,
    train: Vec<Rating>,
    pairs: &[(u32, u32, u32)],
    deadline: std::time::Instant,
) -> Result<Option<Prepared>> {
    let settings = Settings::default();
    let Some(trained) = crate::fit::fit_before(
        &dataset.with_ratings(train),
        &settings,
        &|_| false,
        deadline,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(prepared(trained, pairs)))
}

/// [`prepare`] with `settings`, fitting also the neighbour-list models `lists` accepts.
fn prepare_with(
    dataset: &Dataset,
    train: Vec<Rating>,
    pairs: &[(u32, u32, u32)],
    settings: &Settings,
    lists: &dyn Fn(ModelKind) -> bool,
) -> Result<Prepared> {
    let trained = fit(&dataset.with_ratings(train), settings, lists)?;
    Ok(prepared(trained, pairs))
}

/// The pairs resolved to the rows of `trained`'s catalog.
fn prepared(trained: crate::fit::TrainedModels, pairs: &[(u32, u32, u32)]) -> Prepared {
    let catalog = &trained.catalog;
    let (pair_users, pairs) = pairs
        .iter()
        .filter_map(|&(u, q, t)| Some((u, (catalog.item_of(q)?, catalog.item_of(t)?))))
        .unzip();
    let popularity = catalog.movies().iter().map(|m| m.rating_count).collect();
    Prepared {
        trained,
        pairs,
        pair_users,
        popularity,
    }
}

/// Item-to-item metrics of neighbour lists.
fn score_lists(name: &str, prepared: &Prepared, lists: &NeighbourLists) -> ModelReport {
    score(name, &prepared.pairs, &prepared.popularity, |query| {
        lists.of(query).take(CUTOFF).map(|(j, _)| j).collect()
    })
}

/// Each user's Recall@10 and NDCG@10 of scoring histories with `lists`, in user order.
fn each_user_with_lists(
    users: &UserCases,
    lists: &NeighbourLists,
    params: &PersonalParams,
) -> Vec<(f64, f64)> {
    users.score_each(|history| {
        score_history(lists, history, params, CUTOFF, &|_| true)
            .iter()
            .map(|s| s.item)
            .collect()
    })
}

/// An embedding model's item-to-item and per-user metrics (users scored with `personal`),
/// through an exact index of its embeddings, which is returned too.
fn score_embedding_model(
    kind: ModelKind,
    prepared: &Prepared,
    users: &UserCases,
    personal: &PersonalParams,
    embeddings: &crate::embeddings::ItemEmbeddings,
) -> (ModelReport, ExactIndex) {
    let index = ExactIndex::build(embeddings, Metric::Cosine);
    let mut report = score_embeddings(kind.as_str(), prepared, &index);
    let each = users.score_each(|history| embedding_user_top(&index, history, personal));
    set_per_user(&mut report, each);
    (report, index)
}

/// A neighbour-list model's item-to-item and per-user metrics (users scored with `scoring`).
fn score_list_model(
    kind: ModelKind,
    prepared: &Prepared,
    users: &UserCases,
    scoring: &PersonalParams,
    lists: &NeighbourLists,
) -> ModelReport {
    let mut report = score_lists(kind.as_str(), prepared, lists);
    set_per_user(&mut report, each_user_with_lists(users, lists, scoring));
    report
}

/// The standard error of the mean of `b − a` (per user).
fn paired_se(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt()
}

/// The setting whose validation report has the best item-to-item NDCG@10.
fn best_setting<P: Copy>(tried: &[(P, ModelReport)]) -> Option<P> {
    tried
        .iter()
        .max_by(|a, b| a.1.ndcg_at_10.total_cmp(&b.1.ndcg_at_10))
        .map(|t| t.0)
}

/// `details` without its arrays (spectra, feature names), for reports and run records.
pub fn json_without_arrays(details: &serde_json::Value) -> serde_json::Value {
    let mut shown = details.clone();
    if let Some(map) = shown.as_object_mut() {
        map.retain(|_, v| !v.is_array());
    }
    shown
}

/// Trains every model on the training part of `dataset` and evaluates those in `models` (all
/// when empty; `collaborative` stands for the default collaborative model), with popularity as
/// the baseline; tunable models are tuned on a validation split first.
///
/// With `incremental` (a share of the training ratings, at most
/// [`crate::incremental::MAX_NEW_SHARE`]), also trains every model incrementally and compares
/// it with its full training ([`IncrementalReport`]).
pub fn evaluate(
    dataset: &Dataset,
    models: &[ModelKind],
    incremental: Option<f64>,
) -> Result<EvaluationReport> {
    if let Some(share) = incremental {
        if !(share > 0.0 && share <= crate::incremental::MAX_NEW_SHARE) {
            return Err(crate::Error::invalid(
                "incremental",
                format!(
                    "the share of ratings held back must be above 0 and at most {}, got {share}",
                    crate::incremental::MAX_NEW_SHARE
                ),
            ));
        }
    }
    let wanted = |kind: ModelKind| {
        models.is_empty()
            || models
                .iter()
                .any(|&m| m.resolve(DEFAULT_COLLABORATIVE) == kind)
    };
    let split = hold_out(&dataset.ratings);
    let users: HashSet<u32> = split.pairs.iter().map(|p| p.0).collect();
    let train_ratings = split.train.len();

    let tuning = tune::tune(dataset, &split.train, &wanted, None)?;
    let settings = tuning.settings;
    let (personal_model, personal) = tuning.personal_for(None);
    let personal_model = tuning.personal_tried().then_some(personal_model);

    // Every model of the registry the user asked for, fitted with the chosen settings on the
    // training part (embedding models always: the others read them).
    let fitting = std::time::Instant::now();
    let test = prepare_with(
        dataset,
        split.train.clone(),
        &split.pairs,
        &settings,
        &wanted,
    )?;
    let full_seconds = fitting.elapsed().as_secs_f64();
    let users_test = UserCases::new(&test, &split.pairs);
    let (pairs, popularity) = (&test.pairs, &test.popularity);
    let mut by_popularity: Vec<u32> = (0..popularity.len() as u32).collect();
    by_popularity.sort_by_key(|&i| (std::cmp::Reverse(popularity[i as usize]), i));
    let mut models = vec![score("popularity", pairs, popularity, |query| {
        by_popularity
            .iter()
            .copied()
            .filter(|&i| i != query)
            .take(CUTOFF)
            .collect()
    })];
    let each = users_test.score_each(|history| {
        let seen: HashSet<u32> = history.iter().map(|h| h.item).collect();
        by_popularity
            .iter()
            .copied()
            .filter(|i| !seen.contains(i))
            .take(CUTOFF)
            .collect()
    });
    set_per_user(&mut models[0], each);
    // Every model the registry fits, scored the same way by its shape: embeddings through an
    // exact index, neighbour lists as they are (users scored with the list's chosen scoring).
    let catalog = &test.trained.catalog;
    let input = FitInput {
        catalog,
        matrix: &test.trained.matrix,
        tags: &dataset.tags,
        genome: dataset.genome.as_ref(),
        settings: &settings,
        fitted: &test.trained.models,
        progress: &crate::progress::Stage::start_unlined("evaluated models"),
        previous: None,
    };
    let mut indexes = Vec::new();
    let mut lists_tested: Vec<(ModelKind, &NeighbourLists, Option<PairScorer>)> = Vec::new();
    for model in REGISTRY.iter().filter(|m| wanted(m.kind())) {
        let kind = model.kind();
        match model.shape() {
            ModelShape::Embeddings => {
                let fitted = test
                    .trained
                    .models
                    .iter()
                    .find(|m| m.kind == kind)
                    .expect("every embedding model is fitted");
                let (mut report, index) =
                    score_embedding_model(kind, &test, &users_test, &personal, &fitted.embeddings);
                report.params = fitted.details.clone();
                if let Some(features) = report.params.get_mut("features") {
                    *features = serde_json::json!(features.as_array().map_or(0, Vec::len));
                }
                models.push(report);
                indexes.push((kind, index));
            }
            ModelShape::NeighbourLists => {
                let fitted = test
                    .trained
                    .lists
                    .iter()
                    .find(|l| l.kind == kind)
                    .expect("every wanted list model is fitted");
                let scoring = tuning.personal_of(kind);
                let mut report =
                    score_list_model(kind, &test, &users_test, &scoring, &fitted.lists);
                report.params = serde_json::json!({
                    "model": json_without_arrays(&fitted.details),
                    "personal": scoring,
                });
                models.push(report);
                lists_tested.push((kind, &fitted.lists, model.pair_scorer(&input)?));
            }
        }
    }

    // Every model again, trained incrementally from a training on all but the latest ratings.
    let mut incremental_rows = match incremental {
        None => None,
        Some(share) => {
            let mut older = split.train.clone();
            older.sort_by_key(|r| r.timestamp);
            older.truncate(older.len() - (share * older.len() as f64).floor() as usize);
            // The list models an incremental training starts from.
            let updated = |kind: ModelKind| matches!(kind, ModelKind::ItemKnn | ModelKind::Similar);
            let before = fit(&dataset.with_ratings(older), &settings, &updated)?;
            let started = std::time::Instant::now();
            let previous = crate::incremental::Previous::in_memory(
                before,
                settings,
                &test.trained.catalog,
                &test.trained.matrix,
            )
            .map_err(|reason| crate::Error::invalid("incremental", reason))?;
            let now = dataset.with_ratings(split.train.clone());
            let catalog = crate::catalog::Catalog::from_dataset(&now);
            let matrix = test.trained.matrix.clone();
            let again =
                crate::fit::fit_built(&now, catalog, matrix, &settings, &wanted, Some(&previous))?;
            let incremental_seconds = started.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            for model in REGISTRY.iter().filter(|m| wanted(m.kind())) {
                let kind = model.kind();
                let mut report = match model.shape() {
                    ModelShape::Embeddings => {
                        let fitted = again.embeddings(kind);
                        score_embedding_model(kind, &test, &users_test, &personal, fitted).0
                    }
                    ModelShape::NeighbourLists => {
                        let fitted = again
                            .lists
                            .iter()
                            .find(|l| l.kind == kind)
                            .expect("every wanted list model is fitted");
                        let scoring = tuning.personal_of(kind);
                        score_list_model(kind, &test, &users_test, &scoring, &fitted.lists)
                    }
                };
                report.model = format!("{kind} incremental");
                rows.push(report);
            }
            Some(IncrementalReport {
                share,
                delta: previous.changes.delta.clone(),
                full_seconds,
                incremental_seconds,
                models: rows,
            })
        }
    };

    // The similarity section: every model against the judged sets of the test split.
    let judged = JudgedSets::new(catalog, &split.train, &dataset.ratings);
    let mut similarity = vec![judged.report(
        "popularity",
        catalog,
        &|q| {
            by_popularity
                .iter()
                .copied()
                .filter(|&i| i != q)
                .take(CUTOFF)
                .collect()
        },
        &|_, b| Some(popularity[b as usize] as f32),
    )];
    for (kind, lists, scorer) in &lists_tested {
        similarity.push(judged.report(
            kind.as_str(),
            catalog,
            &|q| lists.of(q).take(CUTOFF).map(|(j, _)| j).collect(),
            &|a, b| match scorer {
                Some(scorer) => Some(scorer(a, b)),
                None => lists.of(a).find(|&(j, _)| j == b).map(|(_, s)| s),
            },
        ));
    }
    for (kind, index) in &indexes {
        similarity.push(judged.report(
            kind.as_str(),
            catalog,
            &|q| top_of_index(index, q, &|i| catalog.movie(i).rating_count),
            &|a, b| Some(index.similarity(a, b)),
        ));
    }

    // Intervals: the same bootstrap draws of users (of franchises for franchise recall) for
    // every model, and the differences from each question's default.
    let started = std::time::Instant::now();
    let reference = DEFAULT_COLLABORATIVE.as_str();
    let reference = models
        .iter()
        .position(|m| m.model == reference)
        .unwrap_or(0);
    let references = vec![reference; models.len()];
    let user_units = bootstrap_next_liked(
        &mut models,
        &references,
        &test.pair_users,
        &users_test.users,
    );
    // Each incremental row against its model's full row, on the same draws.
    if let Some(report) = incremental_rows.as_mut() {
        let mut both: Vec<ModelReport> = Vec::new();
        let mut references = Vec::new();
        for row in &report.models {
            let full = row.model.trim_end_matches(" incremental");
            let full = models.iter().find(|m| m.model == full).expect("scored");
            references.push(both.len());
            both.push(full.clone());
        }
        references.extend(0..report.models.len());
        both.append(&mut report.models);
        bootstrap_next_liked(&mut both, &references, &test.pair_users, &users_test.users);
        report.models = both.split_off(references.len() / 2);
    }
    let similarity_reference = similarity
        .iter()
        .position(|s| s.model == ModelKind::Similar.as_str())
        .unwrap_or(0);
    let judged_units = similarity::bootstrap(&mut similarity, similarity_reference);
    let bootstrap = BootstrapSummary {
        draws: bootstrap::DRAWS,
        seed: bootstrap::SEED,
        level: bootstrap::LEVEL,
        reference: models[reference].model.clone(),
        similarity_reference: similarity[similarity_reference].model.clone(),
        user_units,
        judged_user_units: judged_units.0,
        franchise_units: judged_units.1,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(EvaluationReport {
        pairs: test.pairs.len(),
        users: users.len(),
        train_ratings,
        settings,
        tuning: tuning.stages,
        models,
        validation: tuning.validation,
        validation_hybrid: tuning.validation_hybrid,
        validation_personal: tuning.validation_personal,
        personal_model,
        personal_params: personal,
        validation_similar: tuning.validation_similar,
        judged_triples: judged.triples(),
        franchises: judged.franchises(),
        similarity,
        bootstrap,
        incremental: incremental_rows,
    })
}

/// Fills the intervals and the differences from `models[references[m]]` of every model's
/// next-liked metrics (per pair, resampled by the pair's user: `pair_users`) and per-user metrics
/// (`users`: the users of each model's `per_user`, sorted). Coverage gets none: a count of
/// distinct movies over the sample shrinks with the repeated users of a draw, so its bootstrap
/// is biased. Returns the number of users resampled.
fn bootstrap_next_liked(
    models: &mut [ModelReport],
    references: &[usize],
    pair_users: &[u32],
    users: &[u32],
) -> usize {
    let mut universe: Vec<u32> = pair_users.iter().chain(users).copied().collect();
    universe.sort_unstable();
    universe.dedup();
    let unit = |user: u32| {
        universe
            .binary_search(&user)
            .expect("a user of the universe")
    };
    let n = universe.len();
    let metrics: Vec<Vec<(&str, bootstrap::UnitSums)>> = models
        .iter()
        .map(|m| {
            assert_eq!(
                m.per_pair.len(),
                pair_users.len(),
                "{}: one per pair",
                m.model
            );
            let (mut hr, mut ndcg, mut popularity) = (
                bootstrap::UnitSums::new(n),
                bootstrap::UnitSums::new(n),
                bootstrap::UnitSums::new(n),
            );
            for (outcome, &user) in m.per_pair.iter().zip(pair_users) {
                let u = unit(user);
                hr.add(u, outcome.hit);
                ndcg.add(u, outcome.ndcg);
                popularity.add_weighted(u, outcome.popularity, outcome.shown);
            }
            let mut metrics = vec![
                ("hr_at_10", hr),
                ("ndcg_at_10", ndcg),
                ("mean_popularity", popularity),
            ];
            if m.per_user.len() == users.len() {
                let per_user = |f: fn(&(f64, f64)) -> f64| {
                    let values = users.iter().zip(&m.per_user).map(|(&u, p)| (unit(u), f(p)));
                    bootstrap::UnitSums::per_unit(values, n)
                };
                metrics.push(("user_recall_at_10", per_user(|p| p.0)));
                metrics.push(("user_ndcg_at_10", per_user(|p| p.1)));
            }
            metrics
        })
        .collect();
    let resampler = bootstrap::Resampler::new(n, bootstrap::DRAWS, bootstrap::SEED);
    for ((model, own), &reference) in models.iter_mut().zip(&metrics).zip(references) {
        for (name, sums) in own {
            let theirs = metrics[reference].iter().find(|(n, _)| n == name);
            let (ci, vs) = (&mut model.intervals, &mut model.vs_default);
            bootstrap::fill(&resampler, name, sums, theirs.map(|t| &t.1), ci, vs);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: u32) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        }
    }

    #[test]
    fn hold_out_keeps_the_last_five_liked_as_targets_and_drops_later_ratings() {
        let mut ratings: Vec<Rating> = (0..8).map(|i| rating(1, 10 + i, 4.5, i)).collect();
        ratings.push(rating(1, 99, 1.0, 5)); // disliked, after the first target: removed
        ratings.push(rating(1, 98, 2.0, 0)); // disliked, before: kept
        ratings.extend((0..5).map(|i| rating(2, 10 + i, 5.0, i))); // too few liked
        let split = hold_out(&ratings);
        let expected: Vec<(u32, u32, u32)> = (13..18).map(|t| (1, t - 1, t)).collect();
        assert_eq!(split.pairs, expected);
        let kept: Vec<(u32, u32)> = split
            .train
            .iter()
            .map(|r| (r.user_id, r.movie_id))
            .collect();
        assert!(kept.contains(&(1, 12)) && kept.contains(&(1, 98)));
        assert!(!kept.contains(&(1, 13)) && !kept.contains(&(1, 99)));
        assert_eq!(kept.iter().filter(|k| k.0 == 2).count(), 5);
    }
}
