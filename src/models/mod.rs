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

use crate::embeddings::ItemEmbeddings;
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

    /// Embeddings or neighbour lists.
    pub fn shape(self) -> ModelShape {
        match self {
            ModelKind::Similar | ModelKind::ItemKnn | ModelKind::Ease => ModelShape::NeighbourLists,
            _ => ModelShape::Embeddings,
        }
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
}
