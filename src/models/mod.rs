//! Embedding models. Each turns the catalog (and ratings) into [`ItemEmbeddings`] whose rows are
//! in catalog order.
//!
//! - [`content`]: one-hot genres and decades reduced by PCA (components keeping 95% of variance).
//! - [`als`]: implicit-feedback ALS (conjugate gradient), item factors as embeddings.
//! - [`ease`]: EASE, a closed-form linear item-to-item model, as neighbour lists.
//! - [`svd`]: truncated SVD of the user-centred movie × user rating matrix, its rank
//!   chosen by the Gavish–Donoho optimal hard threshold; unrated movies borrow the position of
//!   their content neighbours.
//! - [`hybrid`]: the two blended, weight chosen by evaluation (cold start).
//! - [`similar`]: "more like this", the films a person would call similar (content and
//!   collaborative cosines blended, shrunk by confidence, same franchise first), as lists.
//! - [`item_knn`] and [`personal`]: item-kNN neighbour lists and personalised scoring.
//! - [`projection`]: the 2-D map of a model's embeddings shown on the Plot tab.

pub mod als;
pub mod content;
pub mod ease;
pub mod hybrid;
pub mod item_knn;
mod linalg;
pub mod personal;
pub mod projection;
pub mod similar;
pub mod svd;

use crate::catalog::Catalog;
use crate::data::{Tag, TagGenome};
use crate::embeddings::ItemEmbeddings;
use crate::interactions::RatingMatrix;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The models a user can choose. Every model except [`ModelKind::Collaborative`] is trained and
/// stored; `collaborative` names whichever collaborative model evaluates best (the model
/// directory's manifest says which, see [`ModelKind::resolve`]).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// "More like this": films a person would call similar (neighbour lists).
    Similar,
    /// Genres and decade.
    Content,
    /// The default collaborative model (an alias, resolved through the manifest).
    Collaborative,
    /// Content and a collaborative embedding blended (cold start).
    Hybrid,
    /// Truncated SVD of the rating matrix (embeddings).
    Svd,
    /// Implicit-feedback ALS (embeddings).
    Als,
    /// Item-kNN on co-occurrence (neighbour lists).
    ItemKnn,
    /// EASE (neighbour lists).
    Ease,
}

/// How a model answers "movies like X".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelShape {
    /// One vector per movie, searched by any index.
    Embeddings,
    /// Neighbour lists computed exactly at training time (no index to choose).
    NeighbourLists,
}

impl ModelKind {
    /// Every stored model, in the order they are listed to users.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Similar,
        ModelKind::Content,
        ModelKind::ItemKnn,
        ModelKind::Ease,
        ModelKind::Als,
        ModelKind::Svd,
        ModelKind::Hybrid,
    ];

    /// The models stored as embeddings.
    pub const EMBEDDINGS: [ModelKind; 4] = [
        ModelKind::Content,
        ModelKind::Als,
        ModelKind::Svd,
        ModelKind::Hybrid,
    ];

    /// Every name a user may give, aliases first.
    pub const NAMES: [&'static str; 8] = [
        "similar",
        "collaborative",
        "content",
        "hybrid",
        "item_knn",
        "ease",
        "als",
        "svd",
    ];

    /// The name used on the command line, in the API and on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Similar => "similar",
            ModelKind::Content => "content",
            ModelKind::Collaborative => "collaborative",
            ModelKind::Hybrid => "hybrid",
            ModelKind::Svd => "svd",
            ModelKind::Als => "als",
            ModelKind::ItemKnn => "item_knn",
            ModelKind::Ease => "ease",
        }
    }

    /// Embeddings or neighbour lists (the registered model's; the `collaborative` alias counts
    /// as embeddings).
    pub fn shape(self) -> ModelShape {
        registered(self).map_or(ModelShape::Embeddings, |m| m.shape())
    }

    /// The stored model this name stands for: `collaborative` becomes `default_collaborative`,
    /// every other model is itself.
    pub fn resolve(self, default_collaborative: ModelKind) -> ModelKind {
        match self {
            ModelKind::Collaborative => default_collaborative,
            other => other,
        }
    }

    /// Parses a user-supplied name (case-insensitive; `item-knn` and `itemknn` also work).
    pub fn parse(name: &str) -> crate::Result<Self> {
        match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "similar" | "more_like_this" | "morelikethis" => Ok(ModelKind::Similar),
            "content" => Ok(ModelKind::Content),
            "collaborative" => Ok(ModelKind::Collaborative),
            "hybrid" => Ok(ModelKind::Hybrid),
            "svd" => Ok(ModelKind::Svd),
            "als" => Ok(ModelKind::Als),
            "item_knn" | "itemknn" | "knn" => Ok(ModelKind::ItemKnn),
            "ease" => Ok(ModelKind::Ease),
            _ => Err(crate::Error::invalid(
                "model",
                format!(
                    "unknown model {name:?}; expected one of: {}",
                    ModelKind::NAMES.join(", ")
                ),
            )),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trained model: its embeddings and what training decided (recorded in the manifest).
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// Which model.
    pub kind: ModelKind,
    /// One row per catalog movie.
    pub embeddings: ItemEmbeddings,
    /// Parameters and diagnostics, as JSON for the manifest.
    pub details: serde_json::Value,
}

/// A trained neighbour-list model: every movie's most similar movies, best first.
#[derive(Clone, Debug)]
pub struct TrainedLists {
    /// Which model.
    pub kind: ModelKind,
    /// One list per catalog movie.
    pub lists: item_knn::NeighbourLists,
    /// Neighbours kept per movie.
    pub neighbours: usize,
    /// Parameters and diagnostics, as JSON for the manifest.
    pub details: serde_json::Value,
    /// "More like this" only: each movie's candidate pool floor (the blended cosine of the last
    /// of its nearest movies that were rescored), which an incremental training reads back.
    pub pool_floors: Option<Vec<f32>>,
}

/// The model `collaborative` stands for: the best item-to-item model of `movierec evaluate`.
pub const DEFAULT_COLLABORATIVE: ModelKind = ModelKind::ItemKnn;

/// The settings of every model, each chosen on a validation split by the tuning (`eval/tune.rs`; or
/// each model's `Default`, the setting chosen on the bundled data, when tuning was skipped).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Item-kNN ("fans also liked"); trained with [`item_knn::DEFAULT_NEIGHBOURS`] neighbours.
    pub item_knn: item_knn::ItemKnnParams,
    /// EASE.
    pub ease: ease::EaseParams,
    /// Weight of the tags beside genres and decade in the content model.
    pub content_tag_weight: f64,
    /// ALS.
    pub als: als::AlsParams,
    /// The collaborative embedding the hybrid blends with content.
    pub hybrid_base: ModelKind,
    /// The hybrid's content weight.
    pub hybrid_weight: f32,
    /// "More like this".
    pub similar: similar::SimilarParams,
    /// The neighbour lists that score users.
    pub personal_model: ModelKind,
    /// How a user's history is scored.
    pub personal: personal::PersonalParams,
}

impl Default for Settings {
    /// Each model's own default: the settings chosen on the bundled data.
    fn default() -> Self {
        Settings {
            item_knn: item_knn::ItemKnnParams::default(),
            ease: ease::EaseParams::default(),
            content_tag_weight: content::DEFAULT_TAG_WEIGHT,
            als: als::AlsParams::default(),
            hybrid_base: hybrid::DEFAULT_BASE,
            hybrid_weight: hybrid::DEFAULT_CONTENT_WEIGHT,
            similar: similar::SimilarParams::default(),
            personal_model: personal::DEFAULT_LISTS,
            personal: personal::PersonalParams::default(),
        }
    }
}

impl Settings {
    /// Whether the embedding models (content, SVD, ALS, hybrid) come out the same under `self`
    /// and `other`: whether one's embeddings and indexes can stand for the other's.
    pub fn same_embeddings(&self, other: &Settings) -> bool {
        self.content_tag_weight == other.content_tag_weight
            && self.als == other.als
            && self.hybrid_base == other.hybrid_base
            && self.hybrid_weight == other.hybrid_weight
    }
}

/// A fitted model: embeddings (searched through an index) or neighbour lists.
#[derive(Clone, Debug)]
pub enum Fitted {
    /// One vector per movie.
    Embeddings(TrainedModel),
    /// Every movie's most similar movies, computed exactly.
    Lists(TrainedLists),
}

/// What a model is fitted from: the data, the chosen settings, and the models fitted before it.
pub struct FitInput<'a> {
    /// The catalog (internal movie order).
    pub catalog: &'a Catalog,
    /// The ratings in catalog order.
    pub matrix: &'a RatingMatrix,
    /// Users' free-text tags.
    pub tags: &'a [Tag],
    /// The tag genome, when the release has one.
    pub genome: Option<&'a TagGenome>,
    /// Every model's settings.
    pub settings: &'a Settings,
    /// The embedding models fitted before this one, in [`REGISTRY`] order.
    pub fitted: &'a [TrainedModel],
    /// The stage this fit runs in: a model that knows its steps (movies, batches) counts them
    /// there, which a terminal shows as a bar.
    pub progress: &'a crate::progress::Stage,
    /// A previous training of the same catalog on fewer ratings, to start from (incremental
    /// training); `None` fits from scratch.
    pub previous: Option<&'a crate::incremental::Previous>,
}

impl<'a> FitInput<'a> {
    /// The embeddings of `kind`, fitted earlier; an error names a registry out of order.
    pub fn embeddings(&self, kind: ModelKind) -> Result<&'a ItemEmbeddings> {
        self.fitted
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| &m.embeddings)
            .ok_or_else(|| {
                Error::invalid(
                    "model",
                    format!("{kind} must be fitted before the models that read its embeddings"),
                )
            })
    }
}

/// A model movierec trains and serves. Each model's file implements it on a unit struct, keeps
/// its settings type (with a `Default` that is the chosen setting) beside it, and is listed once
/// in [`REGISTRY`].
pub trait Model: Sync {
    /// Which model.
    fn kind(&self) -> ModelKind;
    /// Embeddings or neighbour lists.
    fn shape(&self) -> ModelShape;
    /// Fits the model. It may read the embeddings of models listed before it in [`REGISTRY`].
    fn fit(&self, input: &FitInput<'_>) -> Result<Fitted>;
    /// The similarity of any two movies (catalog rows), for a model that has one beyond its
    /// lists: `evaluate`'s judged AUC compares pairs a list need not hold. `None` (the default):
    /// a pair scores only when one lists the other.
    fn pair_scorer<'a>(&self, _input: &FitInput<'a>) -> Result<Option<PairScorer<'a>>> {
        Ok(None)
    }
}

/// A similarity of any two movies (catalog rows); see [`Model::pair_scorer`].
pub type PairScorer<'a> = Box<dyn Fn(u32, u32) -> f32 + Sync + 'a>;

/// Every model, in the order they are fitted: each after the models whose embeddings it reads.
pub static REGISTRY: [&dyn Model; 7] = [
    &content::Content,
    &svd::Svd,
    &als::Als,
    &hybrid::Hybrid,
    &item_knn::ItemKnn,
    &ease::Ease,
    &similar::Similar,
];

/// The registered model of `kind`; `None` for the `collaborative` alias.
pub fn registered(kind: ModelKind) -> Option<&'static dyn Model> {
    REGISTRY.iter().copied().find(|m| m.kind() == kind)
}
