//! Choosing every model's settings on a validation split: what `movierec evaluate` does before
//! it scores the test split, and what `movierec train` does on its own data before it trains.
//!
//! The hold-out of [`super::hold_out`] is applied to the ratings given (the training part, for
//! `evaluate`; the whole release, for `train`), each tunable model's grid is scored on that
//! validation split, and the best setting of each is returned as [`Settings`]. The stages run in
//! the order of what a person sees first: "fans also liked" (item-kNN), "more like this",
//! personal scoring, then the content, ALS, hybrid and EASE models (the first two side by side).
//! With a time budget a stage only starts while the budget lasts; a stage that did not run keeps
//! the default setting and says so ([`StageOutcome::tuned`]). The budget also covers preparing
//! the validation split: on a release too large for it (ml-latest's 33.8M ratings with the
//! default 3 s) the preparation stops at the first check past the budget, before the split's
//! models are fitted, and every stage says so; without that check `train` spent about 45 s of
//! its two cores fitting four models no stage would read.
//!
//! Two things make a grid cheap enough to run inside `train`: item-kNN settings that share a
//! weighting and half-life come from one pass over the co-ratings
//! ([`item_knn::build_grid`]), and only the lists a trial reads are computed (the
//! validation queries; for "more like this" also the franchise members and the well-known
//! movies its objective reads). The choice is the same as computing every list.

use super::similarity::JudgedSets;
use super::{
    best_setting, each_user_with_lists, hold_out, json_without_arrays, paired_se, prepare,
    prepare_before, score_embeddings, score_lists, Prepared, UserCases, CUTOFF,
};
use crate::data::{Dataset, Rating};
use crate::engine::KNOWN_QUERY_RATINGS;
use crate::fit::Settings;
use crate::index::{ExactIndex, Metric};
use crate::models::als::{self, AlsParams};
use crate::models::ease::{self, EaseParams};
use crate::models::item_knn::{self, ItemKnnParams, NeighbourLists, Weighting};
use crate::models::personal::PersonalParams;
use crate::models::similar::{SimilarParams, SimilarScorer};
use crate::models::{content, hybrid, ModelKind};
use crate::Result;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::ModelReport;

/// One "more like this" setting tried on the validation split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimilarTrial {
    /// The setting.
    pub params: SimilarParams,
    /// Franchise recall@10 on the validation split.
    pub franchise_recall_at_10: f64,
    /// Judged AUC on the validation split's held-out ratings.
    pub judged_auc: f64,
    /// The same on popularity-matched triples.
    pub judged_auc_matched: f64,
    /// Share of obscure results of well-known queries.
    pub obscure_share: f64,
    /// Its item-to-item HR@10 on the validation split.
    pub hr_at_10: f64,
    /// The score the setting is chosen by ([`similar_objective`]).
    pub objective: f64,
}

/// What a "more like this" setting is chosen by on the validation split: the judged AUC (the
/// mean of all triples and of the popularity-matched ones), half the franchise recall, less the
/// share of obscure results.
pub fn similar_objective(
    judged_auc: f64,
    judged_auc_matched: f64,
    franchise_recall: f64,
    obscure_share: f64,
) -> f64 {
    (judged_auc + judged_auc_matched) / 2.0 + 0.5 * franchise_recall - obscure_share
}

/// The content weights of "more like this" tried on the validation split. Held-out behaviour
/// (the judged AUC) always prefers less content — it measures what the person liked next, not
/// what they would call similar — so the range is that of an answer about the kind of film:
/// content is at least a third of the blend, at most two thirds.
pub const SIMILAR_CONTENT_WEIGHTS: [f32; 3] = [0.35, 0.5, 0.65];
/// The confidence shrinkages β of "more like this" tried on the validation split.
pub const SIMILAR_CONFIDENCES: [f32; 3] = [20.0, 50.0, 150.0];
/// The franchise bonuses of "more like this" tried on the validation split.
pub const SIMILAR_FRANCHISE_BONUSES: [f32; 2] = [0.3, 0.6];

/// The "more like this" settings tried on the validation split.
pub fn similar_grid() -> Vec<SimilarParams> {
    let mut grid = Vec::new();
    for collaborative in [ModelKind::Svd, ModelKind::Als] {
        for content_weight in SIMILAR_CONTENT_WEIGHTS {
            for confidence in SIMILAR_CONFIDENCES {
                for franchise in SIMILAR_FRANCHISE_BONUSES {
                    grid.push(SimilarParams {
                        content_weight,
                        collaborative,
                        confidence,
                        franchise,
                        ..SimilarParams::default()
                    });
                }
            }
        }
    }
    grid
}

/// One personal-scoring setting tried on the validation split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonalTrial {
    /// The neighbour lists that scored users.
    pub model: ModelKind,
    /// How histories were scored.
    pub params: PersonalParams,
    /// Per-user Recall@10.
    pub user_recall_at_10: f64,
    /// Per-user NDCG@10.
    pub user_ndcg_at_10: f64,
    /// The standard error of the mean per-user difference in NDCG@10 from the best setting of
    /// the same lists (0 for the best itself): what [`choose_personal`] compares with.
    pub ndcg_gap_se: f64,
}

/// The personal-scoring settings tried on the validation split.
pub fn personal_grid() -> Vec<PersonalParams> {
    let mut grid = Vec::new();
    for pivot in [0.0, 3.0] {
        for recency_half_life in [None, Some(10.0), Some(30.0), Some(100.0)] {
            grid.push(PersonalParams {
                pivot,
                recency_half_life,
                ..PersonalParams::NEUTRAL
            });
        }
    }
    grid
}

/// The balance settings tried, on validation, with the best pivot and half-life of each list
/// model's [`personal_grid`]: discount γ ∈ {0.95, 0.9, 0.8, 0.6} on raw similarities, and γ ∈
/// {1, 0.9} with each list normalised by its best similarity. Chosen by [`choose_personal`].
pub fn balance_grid(best: PersonalParams) -> Vec<PersonalParams> {
    let raw = [0.95, 0.9, 0.8, 0.6].map(|balance| (balance, false));
    let normalised = [1.0, 0.9].map(|balance| (balance, true));
    raw.into_iter()
        .chain(normalised)
        .map(|(balance, normalise)| PersonalParams {
            balance,
            normalise,
            ..best
        })
        .collect()
}

/// The setting chosen among `tried` (one list model's): the most balanced (lowest γ, then
/// normalised) whose validation per-user NDCG@10 is within one standard error of the per-user
/// difference (`ndcg_gap_se`) of the best's, so that balance costs nothing measurable.
pub fn choose_personal(tried: &[&PersonalTrial]) -> Option<PersonalParams> {
    let best = tried
        .iter()
        .max_by(|a, b| a.user_ndcg_at_10.total_cmp(&b.user_ndcg_at_10))?;
    tried
        .iter()
        .filter(|t| t.user_ndcg_at_10 >= best.user_ndcg_at_10 - t.ndcg_gap_se)
        .min_by(|a, b| {
            a.params
                .balance
                .total_cmp(&b.params.balance)
                .then(b.params.normalise.cmp(&a.params.normalise))
                .then(b.user_ndcg_at_10.total_cmp(&a.user_ndcg_at_10))
        })
        .map(|t| t.params)
}

/// The hybrid content weights tried on the validation split.
pub const HYBRID_WEIGHTS: [f32; 6] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5];

/// The ALS settings tried on the validation split.
pub fn als_grid() -> Vec<AlsParams> {
    let mut grid = Vec::new();
    for factors in [32, 64] {
        for alpha in [1.0, 4.0, 16.0] {
            grid.push(AlsParams {
                factors,
                alpha,
                ..AlsParams::default()
            });
        }
    }
    grid
}

/// The item-kNN weightings and half-lives tried on the validation split; each with every
/// variant of [`ITEM_KNN_VARIANTS`].
pub const ITEM_KNN_PASSES: [(Weighting, Option<f32>); 8] = [
    (Weighting::Rating, None),
    (Weighting::Rating, Some(100.0)),
    (Weighting::Rating, Some(300.0)),
    (Weighting::Rating, Some(1000.0)),
    (Weighting::Bm25 { k1: 1.2, b: 0.75 }, None),
    (Weighting::Bm25 { k1: 1.2, b: 0.75 }, Some(100.0)),
    (Weighting::Bm25 { k1: 1.2, b: 0.75 }, Some(300.0)),
    (Weighting::Bm25 { k1: 1.2, b: 0.75 }, Some(1000.0)),
];
/// The item-kNN `(popularity_exponent, backward_weight)` pairs tried with each pass.
pub const ITEM_KNN_VARIANTS: [(f32, f32); 9] = [
    (0.6, 1.0),
    (0.6, 0.5),
    (0.6, 0.25),
    (0.8, 1.0),
    (0.8, 0.5),
    (0.8, 0.25),
    (1.0, 1.0),
    (1.0, 0.5),
    (1.0, 0.25),
];

/// The item-kNN settings tried on the validation split.
pub fn item_knn_grid() -> Vec<ItemKnnParams> {
    ITEM_KNN_PASSES
        .iter()
        .flat_map(|&(weighting, half_life)| {
            ITEM_KNN_VARIANTS
                .iter()
                .map(
                    move |&(popularity_exponent, backward_weight)| ItemKnnParams {
                        weighting,
                        neighbours: CUTOFF,
                        half_life,
                        popularity_exponent,
                        backward_weight,
                    },
                )
        })
        .collect()
}

/// The content model's tag weights tried on the validation split (0: genres and decade only).
pub const CONTENT_TAG_WEIGHTS: [f64; 4] = [0.0, 0.5, 1.0, 2.0];

/// The EASE regularisations tried on the validation split.
pub const EASE_LAMBDAS: [f32; 5] = [50.0, 100.0, 200.0, 500.0, 1000.0];

/// What one stage of the tuning did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageOutcome {
    /// `item_knn`, `similar`, `personal`, `content`, `als`, `hybrid` or `ease`.
    pub stage: String,
    /// False when the stage did not run: its default setting is kept.
    pub tuned: bool,
    /// Why it did not run: the model was not asked for, the time budget was spent, or the
    /// validation split is too small to choose on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Settings tried.
    pub tried: usize,
    /// Wall time of the stage.
    pub seconds: f64,
    /// What the setting was chosen by, and the chosen setting's value of it on validation.
    pub criterion: String,
    /// That value (absent when the stage did not run).
    pub score: Option<f64>,
}

/// Everything the tuning tried and chose.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tuning {
    /// The chosen settings (defaults for the stages that did not run).
    pub settings: Settings,
    /// Each stage, in the order run.
    pub stages: Vec<StageOutcome>,
    /// The validation split: ratings trained on, (query, target) pairs, users with targets.
    pub validation_ratings: usize,
    /// (query, target) pairs of the validation split.
    pub validation_pairs: usize,
    /// The time budget given, if any.
    pub budget_seconds: Option<f64>,
    /// Wall time of the whole tuning, preparation included.
    pub seconds: f64,
    /// Every item-to-item setting tried (item-kNN, EASE, ALS, content), with its metrics.
    #[serde(skip)]
    pub validation: Vec<ModelReport>,
    /// Every hybrid weight tried.
    #[serde(skip)]
    pub validation_hybrid: Vec<ModelReport>,
    /// Every (neighbour lists, personal-scoring setting) tried.
    #[serde(skip)]
    pub validation_personal: Vec<PersonalTrial>,
    /// Every "more like this" setting tried.
    #[serde(skip)]
    pub validation_similar: Vec<SimilarTrial>,
    /// The chosen personal setting of each list model tried, with its validation NDCG@10.
    #[serde(skip)]
    chosen_personal: Vec<(ModelKind, PersonalParams, f64)>,
}

impl Tuning {
    /// The list model that scores users and its scoring: among `model` (any when `None`), the
    /// one whose chosen setting scored best; item-kNN with the neutral scoring when none was
    /// tried.
    pub fn personal_for(&self, model: Option<ModelKind>) -> (ModelKind, PersonalParams) {
        self.chosen_personal
            .iter()
            .filter(|t| model.is_none_or(|m| t.0 == m))
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|t| (t.0, t.1))
            .unwrap_or((ModelKind::ItemKnn, PersonalParams::NEUTRAL))
    }

    /// How users are scored with the lists of `model`: its own chosen setting when it was tuned,
    /// else the chosen lists' setting ([`Settings::personal`]).
    pub fn personal_of(&self, model: ModelKind) -> PersonalParams {
        self.chosen_personal
            .iter()
            .find(|t| t.0 == model)
            .map_or(self.settings.personal, |t| t.1)
    }

    /// True when some personal scoring was tried.
    pub fn personal_tried(&self) -> bool {
        !self.validation_personal.is_empty()
    }
}

/// Runs the stages in order while the budget lasts.
struct Stages {
    started: Instant,
    budget: Option<Duration>,
    /// Why no stage can run, if the validation split is too small.
    too_small: Option<String>,
    outcomes: Vec<StageOutcome>,
}

impl Stages {
    /// Runs `stage` when `wanted` and the budget is not spent; it returns how many settings it
    /// tried and the chosen one's score.
    fn run(
        &mut self,
        name: &str,
        criterion: &str,
        wanted: bool,
        stage: impl FnOnce() -> Result<(usize, Option<f64>)>,
    ) -> Result<bool> {
        let begun = Instant::now();
        let skipped = self.skip_reason(name, wanted);
        let (tried, score) = match &skipped {
            None => stage()?,
            Some(_) => (0, None),
        };
        Ok(self.record(name, criterion, skipped, tried, score, begun.elapsed()))
    }

    /// Why a stage asked to start now does not run, if it does not.
    fn skip_reason(&self, name: &str, wanted: bool) -> Option<String> {
        let skipped = if !wanted {
            Some("not asked for".to_string())
        } else if let Some(reason) = &self.too_small {
            Some(reason.clone())
        } else if self.budget.is_some_and(|b| self.started.elapsed() >= b) {
            Some("the time budget was spent".to_string())
        } else {
            None
        };
        if let Some(reason) = &skipped {
            tracing::info!("tuning: {name} skipped: {reason}");
        }
        skipped
    }

    /// Records a stage's outcome; returns whether it ran.
    fn record(
        &mut self,
        name: &str,
        criterion: &str,
        skipped: Option<String>,
        tried: usize,
        score: Option<f64>,
        took: Duration,
    ) -> bool {
        self.outcomes.push(StageOutcome {
            stage: name.to_string(),
            tuned: skipped.is_none(),
            skipped,
            tried,
            seconds: took.as_secs_f64(),
            criterion: criterion.to_string(),
            score,
        });
        self.outcomes.last().is_some_and(|o| o.tuned)
    }
}

/// Runs `stage` if it is to run (`skipped` is `None`), timing it.
fn timed<T>(
    skipped: &Option<String>,
    stage: impl FnOnce() -> Result<T>,
) -> Result<Option<(T, Duration)>> {
    if skipped.is_some() {
        return Ok(None);
    }
    let begun = Instant::now();
    stage().map(|out| Some((out, begun.elapsed())))
}

/// The stages of [`tune`] in order, with the criterion each chooses by and the model it tunes.
const STAGES: [(&str, &str, ModelKind); 7] = [
    ("item_knn", NDCG, ModelKind::ItemKnn),
    ("similar", SIMILAR_OBJECTIVE, ModelKind::Similar),
    ("personal", PER_USER, ModelKind::ItemKnn),
    ("content", NDCG, ModelKind::Content),
    ("als", NDCG, ModelKind::Als),
    ("hybrid", NDCG, ModelKind::Hybrid),
    ("ease", NDCG, ModelKind::Ease),
];
const NDCG: &str = "item-to-item NDCG@10";
const SIMILAR_OBJECTIVE: &str =
    "(judged AUC + matched AUC) / 2 + franchise recall / 2 − obscure share";
const PER_USER: &str = "per-user NDCG@10 (most balanced within one standard error)";

/// What [`tune`] returns when the time budget ran out while the validation split was being
/// prepared (a release too large for the budget): every stage skipped, the defaults kept.
fn out_of_time(
    settings: Settings,
    split: &super::HoldOut,
    budget: Duration,
    started: Instant,
    wanted: &dyn Fn(ModelKind) -> bool,
) -> Tuning {
    let seconds = started.elapsed().as_secs_f64();
    let reason = format!(
        "the time budget ({:.1} s) was spent preparing the validation split ({} ratings; \
         stopped after {seconds:.1} s)",
        budget.as_secs_f64(),
        split.train.len()
    );
    let mut tuning = not_run(settings, budget, &reason, wanted);
    tuning.validation_ratings = split.train.len();
    tuning.validation_pairs = split.pairs.len();
    tuning.seconds = seconds;
    tuning
}

/// The tuning's report when it does not run at all: every stage skipped for `reason` (or as not
/// asked for), the defaults kept, no validation split made. `train` gives this when building
/// the whole release's rating matrix already took half the budget or more: the split's own
/// preparation (a matrix of nine tenths of the ratings, then four models) could not fit in it.
pub fn not_run(
    settings: Settings,
    budget: Duration,
    reason: &str,
    wanted: &dyn Fn(ModelKind) -> bool,
) -> Tuning {
    tracing::info!("tuning: nothing tuned: {reason}");
    let stages = STAGES
        .iter()
        .map(|&(stage, criterion, model)| StageOutcome {
            stage: stage.to_string(),
            tuned: false,
            skipped: Some(
                if wanted(model) || (stage == "als" && wanted(ModelKind::Hybrid)) {
                    reason.to_string()
                } else {
                    "not asked for".to_string()
                },
            ),
            tried: 0,
            seconds: 0.0,
            criterion: criterion.to_string(),
            score: None,
        })
        .collect();
    Tuning {
        settings,
        stages,
        validation_ratings: 0,
        validation_pairs: 0,
        budget_seconds: Some(budget.as_secs_f64()),
        seconds: 0.0,
        validation: Vec::new(),
        validation_hybrid: Vec::new(),
        validation_personal: Vec::new(),
        validation_similar: Vec::new(),
        chosen_personal: Vec::new(),
    }
}

/// Fewer validation pairs than this and nothing is tuned: the defaults are kept, since a
/// choice among dozens of settings on a few hundred pairs is mostly noise.
pub const MIN_VALIDATION_PAIRS: usize = 200;

/// Chooses the settings of the models `wanted` says on a validation split of `ratings` (rows of
/// `dataset`'s catalog: `dataset` gives the movies, tags and genome), within `budget` if given.
pub fn tune(
    dataset: &Dataset,
    ratings: &[Rating],
    wanted: &dyn Fn(ModelKind) -> bool,
    budget: Option<Duration>,
) -> Result<Tuning> {
    let started = Instant::now();
    let defaults = Settings::default();
    let mut settings = defaults;
    let split = hold_out(ratings);
    let validation = match budget {
        None => prepare(dataset, split.train.clone(), &split.pairs)?,
        Some(budget) if started.elapsed() >= budget => {
            return Ok(out_of_time(settings, &split, budget, started, wanted))
        }
        Some(budget) => {
            match prepare_before(dataset, split.train.clone(), &split.pairs, started + budget)? {
                Some(validation) => validation,
                None => return Ok(out_of_time(settings, &split, budget, started, wanted)),
            }
        }
    };
    tracing::info!(
        "tuning: validation split prepared in {:.2?}",
        started.elapsed()
    );
    let too_small = (validation.pairs.len() < MIN_VALIDATION_PAIRS).then(|| {
        format!(
            "the validation split has {} (query, target) pairs, fewer than {MIN_VALIDATION_PAIRS}",
            validation.pairs.len()
        )
    });
    let mut stages = Stages {
        started,
        budget,
        too_small,
        outcomes: Vec::new(),
    };
    let users = UserCases::new(&validation, &split.pairs);
    let mut knn_tried = Vec::new();
    let mut personal_tried = Vec::new();
    let mut similar_tried = Vec::new();
    let mut content_tried = Vec::new();
    let mut als_tried = Vec::new();
    let mut hybrid_tried = Vec::new();
    let mut ease_tried = Vec::new();
    let ndcg = NDCG;

    // The two answers a person sees first are tuned side by side: neither reads the other's
    // setting, both start at once (so the budget decides about both alike), and each fills the
    // moments the other runs on one thread.
    let objective = SIMILAR_OBJECTIVE;
    let knn_skipped = stages.skip_reason("item_knn", wanted(ModelKind::ItemKnn));
    let similar_skipped = stages.skip_reason("similar", wanted(ModelKind::Similar));
    let (knn, similar) = rayon::join(
        || timed(&knn_skipped, || Ok(item_knn_trials(&validation))),
        || {
            timed(&similar_skipped, || {
                similar_trials(&validation, &split.train, ratings)
            })
        },
    );
    let (knn, similar) = (knn?, similar?);
    let knn_took = knn.as_ref().map_or(Duration::ZERO, |r| r.1);
    let similar_took = similar.as_ref().map_or(Duration::ZERO, |r| r.1);
    let mut knn_score = None;
    if let Some((tried, _)) = knn {
        knn_tried = tried;
        settings.item_knn = best_setting(&knn_tried).unwrap_or(defaults.item_knn);
        knn_score = chosen_score(&knn_tried, settings.item_knn);
    }
    stages.record(
        "item_knn",
        ndcg,
        knn_skipped,
        knn_tried.len(),
        knn_score,
        knn_took,
    );
    let mut similar_score = None;
    if let Some((tried, _)) = similar {
        similar_tried = tried;
        let best = similar_tried
            .iter()
            .max_by(|a, b| a.objective.total_cmp(&b.objective));
        settings.similar = best.map_or(defaults.similar, |t| t.params);
        similar_score = best.map(|t| t.objective);
    }
    stages.record(
        "similar",
        objective,
        similar_skipped,
        similar_tried.len(),
        similar_score,
        similar_took,
    );

    let per_user = PER_USER;
    stages.run("personal", per_user, wanted(ModelKind::ItemKnn), || {
        let lists = item_knn::build(&validation.trained.matrix, &for_users(settings.item_knn));
        personal_trials(ModelKind::ItemKnn, &users, &lists, &mut personal_tried);
        Ok((personal_tried.len(), None))
    })?;

    stages.run("content", ndcg, wanted(ModelKind::Content), || {
        for weight in CONTENT_TAG_WEIGHTS {
            let model = content::train(
                &validation.trained.catalog,
                &dataset.tags,
                dataset.genome.as_ref(),
                weight,
            )?;
            let index = ExactIndex::build(&model.embeddings, Metric::Cosine);
            let mut report = score_embeddings("content", &validation, &index);
            report.params = json_without_arrays(&model.details);
            content_tried.push((weight, report));
        }
        settings.content_tag_weight =
            best_setting(&content_tried).unwrap_or(defaults.content_tag_weight);
        let score = chosen_score(&content_tried, settings.content_tag_weight);
        Ok((content_tried.len(), score))
    })?;

    let tune_als = wanted(ModelKind::Als) || wanted(ModelKind::Hybrid);
    stages.run("als", ndcg, tune_als, || {
        for params in als_grid() {
            let model = als::train_embeddings(
                &validation.trained.matrix,
                validation.trained.embeddings(ModelKind::Content),
                &params,
                &crate::progress::Stage::start_unlined("als on the validation split"),
            )?;
            let index = ExactIndex::build(&model.embeddings, Metric::Cosine);
            let mut report = score_embeddings("als", &validation, &index);
            report.params = serde_json::to_value(params).expect("serialisable");
            als_tried.push((params, report));
        }
        settings.als = best_setting(&als_tried).unwrap_or(defaults.als);
        Ok((als_tried.len(), chosen_score(&als_tried, settings.als)))
    })?;

    stages.run("hybrid", ndcg, wanted(ModelKind::Hybrid), || {
        for base in [ModelKind::Svd, ModelKind::Als] {
            for weight in HYBRID_WEIGHTS {
                let model = hybrid::blend(
                    validation.trained.embeddings(ModelKind::Content),
                    validation.trained.embeddings(base),
                    base,
                    weight,
                )?;
                let index = ExactIndex::build(&model.embeddings, Metric::Cosine);
                let mut report = score_embeddings("hybrid", &validation, &index);
                report.params = model.details;
                hybrid_tried.push(((base, weight), report));
            }
        }
        let chosen =
            best_setting(&hybrid_tried).unwrap_or((defaults.hybrid_base, defaults.hybrid_weight));
        (settings.hybrid_base, settings.hybrid_weight) = chosen;
        Ok((hybrid_tried.len(), chosen_score(&hybrid_tried, chosen)))
    })?;

    stages.run("ease", ndcg, wanted(ModelKind::Ease), || {
        for lambda in EASE_LAMBDAS {
            let params = EaseParams {
                lambda,
                ..defaults.ease
            };
            let model = ease::train(&validation.trained.matrix, &params)?;
            let mut report = score_lists("ease", &validation, &model.lists);
            report.params = serde_json::json!({"lambda": lambda, "covered": model.covered});
            ease_tried.push((params, report));
        }
        settings.ease = best_setting(&ease_tried).unwrap_or(defaults.ease);
        let lists = ease::train(&validation.trained.matrix, &for_users_ease(settings.ease))?.lists;
        personal_trials(ModelKind::Ease, &users, &lists, &mut personal_tried);
        Ok((ease_tried.len(), chosen_score(&ease_tried, settings.ease)))
    })?;

    // The chosen setting of each list model, and the list model whose chosen setting scores best.
    let chosen_personal: Vec<(ModelKind, PersonalParams, f64)> =
        [ModelKind::ItemKnn, ModelKind::Ease]
            .into_iter()
            .filter_map(|model| {
                let tried: Vec<&PersonalTrial> =
                    personal_tried.iter().filter(|t| t.model == model).collect();
                let params = choose_personal(&tried)?;
                let ndcg = tried
                    .iter()
                    .find(|t| t.params == params)
                    .map_or(0.0, |t| t.user_ndcg_at_10);
                Some((model, params, ndcg))
            })
            .collect();
    let mut tuning = Tuning {
        settings,
        stages: stages.outcomes,
        validation_ratings: split.train.len(),
        validation_pairs: validation.pairs.len(),
        budget_seconds: budget.map(|b| b.as_secs_f64()),
        seconds: 0.0,
        validation: knn_tried
            .into_iter()
            .map(|t| t.1)
            .chain(ease_tried.into_iter().map(|t| t.1))
            .chain(als_tried.into_iter().map(|t| t.1))
            .chain(content_tried.into_iter().map(|t| t.1))
            .collect(),
        validation_hybrid: hybrid_tried.into_iter().map(|t| t.1).collect(),
        validation_personal: personal_tried,
        validation_similar: similar_tried,
        chosen_personal,
    };
    if tuning.personal_tried() {
        let (model, personal) = tuning.personal_for(None);
        tuning.settings.personal_model = model;
        tuning.settings.personal = personal;
        if let Some(stage) = tuning.stages.iter_mut().find(|s| s.stage == "personal") {
            stage.score = tuning
                .chosen_personal
                .iter()
                .find(|t| t.0 == model)
                .map(|t| t.2);
        }
    }
    tuning.seconds = started.elapsed().as_secs_f64();
    tracing::info!("tuning in {:.2}s", tuning.seconds);
    Ok(tuning)
}

/// The validation NDCG@10 of `chosen` among `tried`.
fn chosen_score<P: PartialEq>(tried: &[(P, ModelReport)], chosen: P) -> Option<f64> {
    tried.iter().find(|t| t.0 == chosen).map(|t| t.1.ndcg_at_10)
}

/// The item-kNN setting with the neighbours kept for scoring users.
fn for_users(params: ItemKnnParams) -> ItemKnnParams {
    ItemKnnParams {
        neighbours: item_knn::DEFAULT_NEIGHBOURS,
        ..params
    }
}

/// The EASE setting with the neighbours kept for scoring users.
fn for_users_ease(params: EaseParams) -> EaseParams {
    EaseParams {
        neighbours: item_knn::DEFAULT_NEIGHBOURS,
        ..params
    }
}

/// Every setting of [`item_knn_grid`] scored on the validation pairs, in the grid's order.
fn item_knn_trials(validation: &Prepared) -> Vec<(ItemKnnParams, ModelReport)> {
    let queries: Vec<u32> = validation
        .pairs
        .iter()
        .map(|p| p.0)
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    let mut tried = Vec::new();
    // One walk over the co-ratings gives the whole grid (every weighting and half-life); the
    // trials keep the grid's order.
    let mut weightings: Vec<Weighting> = Vec::new();
    let mut half_lives: Vec<Option<f32>> = Vec::new();
    for (weighting, half_life) in ITEM_KNN_PASSES {
        if !weightings.contains(&weighting) {
            weightings.push(weighting);
        }
        if !half_lives.contains(&half_life) {
            half_lives.push(half_life);
        }
    }
    let grid = item_knn::build_grid(
        &validation.trained.matrix,
        &weightings,
        &half_lives,
        CUTOFF,
        &ITEM_KNN_VARIANTS,
        Some(&queries),
    );
    for (weighting, half_life) in ITEM_KNN_PASSES {
        let w = weightings
            .iter()
            .position(|&x| x == weighting)
            .expect("listed");
        let h = half_lives
            .iter()
            .position(|&x| x == half_life)
            .expect("listed");
        for (&(popularity_exponent, backward_weight), lists) in
            ITEM_KNN_VARIANTS.iter().zip(&grid[w][h])
        {
            let params = ItemKnnParams {
                weighting,
                neighbours: CUTOFF,
                half_life,
                popularity_exponent,
                backward_weight,
            };
            let mut report = score_lists("item_knn", validation, lists);
            report.params = serde_json::to_value(params).expect("serialisable");
            tried.push((params, report));
        }
    }
    tried
}

/// The personal grid, then the balance grid around its best, on `lists`; each trial's standard
/// error against the best is filled in.
fn personal_trials(
    model: ModelKind,
    users: &UserCases,
    lists: &NeighbourLists,
    out: &mut Vec<PersonalTrial>,
) {
    let mut tried: Vec<(PersonalTrial, Vec<f64>)> = Vec::new();
    let run = |params: PersonalParams, tried: &mut Vec<(PersonalTrial, Vec<f64>)>| {
        let each = each_user_with_lists(users, lists, &params);
        let n = each.len().max(1) as f64;
        let recall = each.iter().map(|p| p.0).sum::<f64>() / n;
        let ndcg = each.iter().map(|p| p.1).sum::<f64>() / n;
        let ndcgs = each.into_iter().map(|p| p.1).collect();
        tried.push((
            PersonalTrial {
                model,
                params,
                user_recall_at_10: recall,
                user_ndcg_at_10: ndcg,
                ndcg_gap_se: 0.0,
            },
            ndcgs,
        ));
    };
    for params in personal_grid() {
        run(params, &mut tried);
    }
    let best = |tried: &[(PersonalTrial, Vec<f64>)]| {
        tried
            .iter()
            .max_by(|a, b| a.0.user_ndcg_at_10.total_cmp(&b.0.user_ndcg_at_10))
            .map(|t| (t.0.params, t.1.clone()))
            .expect("a non-empty grid")
    };
    for params in balance_grid(best(&tried).0) {
        run(params, &mut tried);
    }
    let (_, best_ndcgs) = best(&tried);
    for (trial, ndcgs) in &mut tried {
        trial.ndcg_gap_se = paired_se(&best_ndcgs, ndcgs);
    }
    out.extend(tried.into_iter().map(|t| t.0));
}

/// Every setting of [`similar_grid`], judged on the validation split's own held-out ratings
/// (`train` is the validation training part, `all` the ratings it was carved from). The
/// candidates of a blend are searched once and rescored for every shrinkage and franchise
/// bonus; lists are computed for the movies the objective and the hit rate read.
fn similar_trials(
    validation: &Prepared,
    train: &[Rating],
    all: &[Rating],
) -> Result<Vec<SimilarTrial>> {
    let catalog = &validation.trained.catalog;
    let judged = JudgedSets::new(catalog, train, all);
    let mut queries: BTreeSet<u32> = judged
        .franchise_queries(catalog)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    queries.extend(
        (0..catalog.len() as u32).filter(|&i| catalog.movie(i).rating_count >= KNOWN_QUERY_RATINGS),
    );
    queries.extend(validation.pairs.iter().map(|p| p.0));
    let queries: Vec<u32> = queries.into_iter().collect();
    let grid = similar_grid();
    let mut tried = Vec::new();
    let mut blends: Vec<SimilarParams> = grid.clone();
    blends.dedup_by_key(|p| (p.collaborative, p.content_weight.to_bits()));
    for blend in blends {
        let mut scorer = SimilarScorer::new(
            catalog,
            validation.trained.embeddings(ModelKind::Content),
            validation.trained.embeddings(blend.collaborative),
            blend,
        )?;
        let candidates = scorer.candidates(&queries);
        for params in grid.iter().filter(|p| {
            p.collaborative == blend.collaborative && p.content_weight == blend.content_weight
        }) {
            scorer.set_shrinkage(params.confidence, params.franchise);
            let lists = scorer.lists_of(&queries, &candidates, CUTOFF);
            let report = judged.report(
                "similar",
                catalog,
                &|q| lists.of(q).take(CUTOFF).map(|(j, _)| j).collect(),
                &|a, b| Some(scorer.score(a, b)),
            );
            tried.push(SimilarTrial {
                params: *params,
                franchise_recall_at_10: report.franchise_recall_at_10,
                judged_auc: report.judged_auc,
                judged_auc_matched: report.judged_auc_matched,
                obscure_share: report.obscure_share,
                hr_at_10: score_lists("similar", validation, &lists).hr_at_10,
                objective: similar_objective(
                    report.judged_auc,
                    report.judged_auc_matched,
                    report.franchise_recall_at_10,
                    report.obscure_share,
                ),
            });
        }
    }
    Ok(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_spent_while_preparing_skips_every_stage_and_says_so() {
        let dataset = crate::data::bundled();
        let budget = Duration::from_nanos(1);
        let tuning = tune(&dataset, &dataset.ratings, &|_| true, Some(budget)).expect("tune");
        assert_eq!(tuning.settings, Settings::default());
        assert_eq!(tuning.stages.len(), STAGES.len());
        for stage in &tuning.stages {
            assert!(!stage.tuned, "{stage:?}");
            let reason = stage.skipped.as_deref().unwrap_or_default();
            assert!(
                reason.contains("was spent preparing the validation split"),
                "{stage:?}"
            );
        }
        assert!(tuning.validation_pairs > MIN_VALIDATION_PAIRS, "{tuning:?}");
        // What `train` reports when even its own rating matrix outlasted the budget.
        let not = not_run(Settings::default(), budget, "too slow", &|kind| {
            kind == ModelKind::Ease
        });
        let skipped: Vec<(&str, &str)> = not
            .stages
            .iter()
            .map(|s| (s.stage.as_str(), s.skipped.as_deref().unwrap_or_default()))
            .collect();
        assert!(skipped.contains(&("ease", "too slow")), "{skipped:?}");
        assert!(
            skipped.contains(&("item_knn", "not asked for")),
            "{skipped:?}"
        );
        assert_eq!(not.validation_pairs, 0);
    }
}
