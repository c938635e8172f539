//! Embedding models. Each turns the catalog (and ratings) into [`ItemEmbeddings`] whose rows are
//! in catalog order.
//!
//! - [`content`]: one-hot genres and decades reduced by PCA (components keeping 95% of variance).
//! - [`collaborative`]: truncated SVD of the user-centred movie × user rating matrix, its rank
//!   chosen by the Gavish–Donoho optimal hard threshold; unrated movies borrow the position of
//!   their content neighbours.
//! - [`hybrid`]: the two blended, weight chosen by evaluation (cold start).
//! - [`item_knn`] and [`personal`]: item-kNN neighbour lists and personalised scoring.
//! - [`projection`]: the 2-D map of a model's embeddings shown on the Plot tab.

pub mod collaborative;
pub mod content;
pub mod hybrid;
pub mod item_knn;
mod linalg;
pub mod personal;
pub mod projection;

use crate::embeddings::ItemEmbeddings;
use serde::{Deserialize, Serialize};

/// The embedding models a user can choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Genres and decade.
    Content,
    /// What people rated.
    Collaborative,
    /// Content and collaborative blended (cold start).
    Hybrid,
}

impl ModelKind {
    /// Every model, in the order they are listed to users.
    pub const ALL: [ModelKind; 3] = [
        ModelKind::Content,
        ModelKind::Collaborative,
        ModelKind::Hybrid,
    ];

    /// The name used on the command line, in the API and on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Content => "content",
            ModelKind::Collaborative => "collaborative",
            ModelKind::Hybrid => "hybrid",
        }
    }

    /// Parses a user-supplied name (case-insensitive).
    pub fn parse(name: &str) -> crate::Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "content" => Ok(ModelKind::Content),
            "collaborative" => Ok(ModelKind::Collaborative),
            "hybrid" => Ok(ModelKind::Hybrid),
            _ => Err(crate::Error::invalid(
                "model",
                format!("unknown model {name:?}; expected one of: content, collaborative, hybrid"),
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
