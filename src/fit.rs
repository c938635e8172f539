//! Fitting every model of a model directory from a dataset, with given [`Settings`]: what
//! `train` writes to disk and what offline evaluation scores. Training chooses the settings on
//! a validation split of its own data first (`crate::eval::tune`); the defaults here are what
//! `train --no-tune` uses, the settings `movierec evaluate` chose on the bundled data
//! (docs/EVALUATION.md).

use crate::catalog::Catalog;
use crate::data::Dataset;
use crate::interactions::RatingMatrix;
use crate::models::als::{self, AlsParams};
use crate::models::ease::{self, EaseParams};
use crate::models::item_knn::{self, ItemKnnParams, Weighting};
use crate::models::personal::PersonalParams;
use crate::models::similar::{self, SimilarParams};
use crate::models::{content, hybrid, svd, ModelKind, TrainedLists, TrainedModel};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The item-kNN model: the parameters `movierec evaluate` chose on the bundled data's validation
/// split (docs/EVALUATION.md), with 100 neighbours per movie kept for scoring users.
pub const ITEM_KNN: ItemKnnParams = ItemKnnParams {
    weighting: Weighting::Rating,
    neighbours: item_knn::DEFAULT_NEIGHBOURS,
    half_life: Some(100.0),
    popularity_exponent: 0.6,
    backward_weight: 0.5,
};

/// The EASE model: λ as chosen by `movierec evaluate` (docs/EVALUATION.md).
pub const EASE: EaseParams = EaseParams {
    lambda: 500.0,
    max_items: 3_000,
    neighbours: item_knn::DEFAULT_NEIGHBOURS,
};

/// The ALS model: the setting `movierec evaluate` chose (docs/EVALUATION.md).
pub const ALS: AlsParams = AlsParams {
    factors: 32,
    iterations: 15,
    regularization: 0.01,
    alpha: 1.0,
    cg_steps: 3,
    seed: 42,
};

/// Weight of the tags beside genres and decade in the content model, as chosen by
/// `movierec evaluate` (docs/EVALUATION.md).
pub const CONTENT_TAG_WEIGHT: f64 = 2.0;

/// The model `collaborative` stands for: the best item-to-item model of `movierec evaluate`.
pub const DEFAULT_COLLABORATIVE: ModelKind = ModelKind::ItemKnn;

/// The collaborative embedding the hybrid blends with content, as chosen by `movierec evaluate`.
pub const HYBRID_BASE: ModelKind = ModelKind::Svd;

/// The neighbour lists that score users, as chosen by `movierec evaluate`.
pub const PERSONAL_MODEL: ModelKind = ModelKind::ItemKnn;

/// How a user's history is scored, as chosen by `movierec evaluate` (docs/EVALUATION.md). The
/// balance is the most balanced setting within one standard error of the best on validation
/// per-user NDCG@10: γ 0.95 scored 0.1175 against 0.1189 unbalanced (standard error of the
/// per-user difference 0.0018); γ 0.9 0.1163 (0.0023) and 0.8 0.1107 (0.0027) fell outside, and
/// normalised lists cost 0.005 (0.1138). On the test split per-user Recall@10 / NDCG@10 went from
/// 0.1082 / 0.0942 to 0.1088 / 0.0936.
pub const PERSONAL_SCORING: PersonalParams = PersonalParams {
    pivot: 0.0,
    recency_half_life: Some(10.0),
    balance: 0.95,
    normalise: false,
};

/// The settings of every model, each chosen on a validation split by `crate::eval::tune` (or
/// the defaults when tuning was skipped).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Item-kNN ("fans also liked"); trained with [`item_knn::DEFAULT_NEIGHBOURS`] neighbours.
    pub item_knn: ItemKnnParams,
    /// EASE.
    pub ease: EaseParams,
    /// Weight of the tags beside genres and decade in the content model.
    pub content_tag_weight: f64,
    /// ALS.
    pub als: AlsParams,
    /// The collaborative embedding the hybrid blends with content.
    pub hybrid_base: ModelKind,
    /// The hybrid's content weight.
    pub hybrid_weight: f32,
    /// "More like this".
    pub similar: SimilarParams,
    /// The neighbour lists that score users.
    pub personal_model: ModelKind,
    /// How a user's history is scored.
    pub personal: PersonalParams,
}

impl Default for Settings {
    /// The settings chosen on the bundled data (the constants of this module).
    fn default() -> Self {
        Settings {
            item_knn: ITEM_KNN,
            ease: EASE,
            content_tag_weight: CONTENT_TAG_WEIGHT,
            als: ALS,
            hybrid_base: HYBRID_BASE,
            hybrid_weight: hybrid::DEFAULT_CONTENT_WEIGHT,
            similar: SimilarParams::default(),
            personal_model: PERSONAL_MODEL,
            personal: PERSONAL_SCORING,
        }
    }
}

/// Everything training learns from a dataset, before indexes are built.
pub struct TrainedModels {
    /// The cleaned catalog (internal movie order).
    pub catalog: Catalog,
    /// The rating matrix in catalog order.
    pub matrix: RatingMatrix,
    /// The embedding models: content, svd, als, hybrid.
    pub models: Vec<TrainedModel>,
}

impl TrainedModels {
    /// The embeddings of `kind` (an embedding model).
    pub fn embeddings(&self, kind: ModelKind) -> &crate::embeddings::ItemEmbeddings {
        &self
            .models
            .iter()
            .find(|m| m.kind == kind)
            .unwrap_or_else(|| panic!("{kind} is not an embedding model"))
            .embeddings
    }
}

/// Trains the embedding models on an in-memory dataset (used by `train` and by offline
/// evaluation, which builds the neighbour lists itself with the settings it tries).
pub fn train_models(dataset: &Dataset, settings: &Settings) -> Result<TrainedModels> {
    let catalog = Catalog::from_dataset(dataset);
    let matrix = RatingMatrix::build(&catalog, &dataset.ratings);
    let timed = |name: &str, stage: Instant| tracing::info!("{name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let content = content::train(
        &catalog,
        &dataset.tags,
        dataset.genome.as_ref(),
        settings.content_tag_weight,
    )?;
    timed("content model", stage);
    let stage = Instant::now();
    let svd = svd::train(&matrix, &content.embeddings)?;
    timed("SVD model", stage);
    let stage = Instant::now();
    let als = als::train_embeddings(&matrix, &content.embeddings, &settings.als)?;
    timed("ALS model", stage);
    let base = if settings.hybrid_base == ModelKind::Als {
        &als
    } else {
        &svd
    };
    let hybrid = hybrid::blend(
        &content.embeddings,
        &base.embeddings,
        settings.hybrid_base,
        settings.hybrid_weight,
    )?;
    Ok(TrainedModels {
        catalog,
        matrix,
        models: vec![content, svd, als, hybrid],
    })
}

/// Trains the neighbour-list models (item-kNN and EASE) on the rating matrix.
pub fn train_lists(matrix: &RatingMatrix, settings: &Settings) -> Result<Vec<TrainedLists>> {
    let knn_params = ItemKnnParams {
        neighbours: item_knn::DEFAULT_NEIGHBOURS,
        ..settings.item_knn
    };
    let ease_params = EaseParams {
        neighbours: item_knn::DEFAULT_NEIGHBOURS,
        ..settings.ease
    };
    let timed = |name: &str, stage: Instant| tracing::info!("{name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let knn = TrainedLists {
        kind: ModelKind::ItemKnn,
        lists: item_knn::build(matrix, &knn_params),
        neighbours: knn_params.neighbours,
        details: serde_json::json!({
            "method": "item-kNN on co-occurrence",
            "params": knn_params,
        }),
    };
    timed("item-kNN lists", stage);
    let stage = Instant::now();
    let ease = ease::train(matrix, &ease_params)?;
    timed("EASE model", stage);
    let ease = TrainedLists {
        kind: ModelKind::Ease,
        lists: ease.lists,
        neighbours: ease_params.neighbours,
        details: serde_json::json!({
            "method": "EASE (closed form) on the binary rating matrix",
            "params": ease_params,
            "covered_movies": ease.covered,
        }),
    };
    Ok(vec![knn, ease])
}

/// Trains the "more like this" lists (see [`similar`]) from the content and collaborative
/// embeddings of `models`.
pub fn train_similar(models: &TrainedModels, params: SimilarParams) -> Result<TrainedLists> {
    let stage = Instant::now();
    let lists = similar::build(
        &models.catalog,
        models.embeddings(ModelKind::Content),
        models.embeddings(params.collaborative),
        params,
    )?;
    tracing::info!("more-like-this lists in {:.2?}", stage.elapsed());
    Ok(TrainedLists {
        kind: ModelKind::Similar,
        lists,
        neighbours: params.neighbours,
        details: serde_json::json!({
            "method": "content and collaborative cosines blended, shrunk by confidence, same franchise first",
            "params": params,
        }),
    })
}
