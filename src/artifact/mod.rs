//! The model directory: the contract between training and serving.
//!
//! ```text
//! models/default/
//!   manifest.json              format name + version, parameters, dataset fingerprint, build
//!                              time, and the size and XXH3 checksum of every other file
//!   catalog.json               the cleaned movies in internal-index order
//!   <model>.embeddings         item embeddings   (matrix file, rows = catalog order)
//!   <model>.projection         2-D map for the plot (matrix file, rows × 2)
//!   <model>.exact              the rows exact search scores (see `index::ExactIndex::to_bytes`)
//!   <model>.annoy              the Annoy-style forest (see `index::ForestIndex::to_bytes`)
//!   <model>.hnsw               the HNSW graph (see `index::HnswIndex::to_bytes`)
//!   <model>.neighbours         neighbour lists of the list models (item_knn, ease)
//!   users.ratings              every user's ratings, in history order
//! ```
//!
//! The binary files are [section files](crate::storage::section_file), opened by memory-mapping and read in
//! place: opening a directory checks every manifest, header and structure but hashes nothing,
//! so it takes milliseconds at any scale; [`SavedModel::verify`] checks the contents.
//!
//! A directory is written beside its destination under a temporary name and renamed into place
//! only once complete, so a crash or Ctrl-C mid-way never leaves a half model where `serve`
//! looks. Loading refuses (with a message saying why) a directory without a manifest, of another
//! format or version, or whose files are missing, truncated or fail their checksum.
//! The layout is documented for users in `docs/MODEL_FORMAT.md`.

mod reader;
mod store;

pub use reader::{open, CoLikes, EmbeddingModel, LoadedModel, PersonalLists, Verify};

pub use crate::storage::{encode_matrix, open_matrix};
pub use store::{
    load, outdated_dataset, remove_stale_temporaries, save, ModelFiles, SavedModel, Staging,
};

use crate::index::IndexKind;
use crate::models::ModelKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `format` field every manifest carries.
pub const FORMAT_NAME: &str = "movierec-model";
/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 5;
/// File name of the manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the catalog inside a model directory.
pub const CATALOG_FILE: &str = "catalog.json";
/// File name of the user histories inside a model directory.
pub const USERS_FILE: &str = "users.ratings";
/// File name of the co-like counts explanations read (`item_knn::co_likes`).
pub const CO_LIKES_FILE: &str = "item_knn.colikes";

/// The file of a model's embeddings: `<model>.embeddings`.
pub fn embeddings_file(model: ModelKind) -> String {
    format!("{model}.embeddings")
}

/// The file of a model's 2-D map: `<model>.projection`.
pub fn projection_file(model: ModelKind) -> String {
    format!("{model}.projection")
}

/// The file of a model's index: `<model>.<index>` (`svd.hnsw`).
pub fn index_file(model: ModelKind, index: IndexKind) -> String {
    format!("{model}.{index}")
}

/// The file of a neighbour-list model's lists: `<model>.neighbours`.
pub fn lists_file(model: ModelKind) -> String {
    format!("{model}.neighbours")
}

/// `manifest.json`: what training decided, for serving to trust without re-deriving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// On-disk format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The movierec version that wrote it.
    pub movierec_version: String,
    /// When training finished (RFC 3339, UTC).
    pub created_at: String,
    /// Seconds the training took.
    pub training_seconds: f64,
    /// What it was trained on.
    pub dataset: DatasetInfo,
    /// Each embedding model's parameters and files.
    pub models: BTreeMap<ModelKind, ModelEntry>,
    /// Each neighbour-list model's parameters and file.
    pub neighbour_lists: BTreeMap<ModelKind, ListsEntry>,
    /// The model `collaborative` stands for.
    pub default_collaborative: ModelKind,
    /// The personalised recommender.
    pub personal: PersonalEntry,
    /// What explanations of results count on.
    pub explanations: ExplanationsEntry,
    /// How the settings were chosen: the tuning on a validation split of the training data
    /// (stages, what each tried and scored, the chosen settings), or null for `--no-tune`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub tuning: serde_json::Value,
    /// For `train --incremental`: the directory it started from, whether it could (else the
    /// reason), how the ratings differed and what was reused; null otherwise.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub incremental: serde_json::Value,
    /// Wall seconds of each stage of the training (`load`, `tune`, `embeddings`, `lists`,
    /// `explanations`; `tune` and `embeddings` run side by side), so a regression shows in
    /// `movierec runs`. Saving is not counted, as in `training_seconds`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<String, f64>,
    /// The process's peak resident memory when the training ended, in bytes (where the system
    /// says: `VmHWM` of `/proc/self/status` on Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// Size and checksum of every file besides the manifest.
    pub files: BTreeMap<String, FileEntry>,
}

/// The training data's identity and size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Directory it was read from.
    pub path: String,
    /// Content hash of its files.
    pub fingerprint: String,
    /// Number of movies.
    pub movies: usize,
    /// Number of ratings used.
    pub ratings: usize,
    /// Number of users.
    pub users: usize,
    /// Number of tags.
    pub tags: usize,
}

/// One model's entry in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Embedding dimension.
    pub dim: usize,
    /// Model parameters and diagnostics.
    pub details: serde_json::Value,
    /// The embeddings file.
    pub embeddings_file: String,
    /// The 2-D projection file.
    pub projection_file: String,
    /// Each index over these embeddings.
    pub indexes: BTreeMap<IndexKind, IndexEntry>,
}

/// One index's entry in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Its file.
    pub file: Option<String>,
    /// Build parameters.
    pub params: serde_json::Value,
    /// Recall@10 against `exact`, measured at build time on a sample of movies.
    pub recall_at_10: f32,
}

/// A neighbour-list model's entry in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListsEntry {
    /// The lists (see `models::item_knn::NeighbourLists::to_bytes`).
    pub file: String,
    /// Neighbours kept per movie.
    pub neighbours: usize,
    /// Model parameters and diagnostics.
    pub details: serde_json::Value,
}

/// The data behind "people who liked X also liked Y: N of them": for every entry of one
/// neighbour-list model's lists, the users who rated both movies at least `liked_rating`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplanationsEntry {
    /// The neighbour-list model whose entries are counted (a key of `neighbour_lists`).
    pub lists: ModelKind,
    /// The counts (see `models::item_knn::co_likes`), one `u32` per list entry.
    pub file: String,
    /// The rating from which a user "liked" a movie.
    pub liked_rating: f32,
}

/// The personalised recommender's entry in the manifest: which neighbour lists score a history,
/// and every user's ratings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonalEntry {
    /// The neighbour-list model that scores users (a key of `neighbour_lists`).
    pub model: ModelKind,
    /// Every user's ratings (see `interactions::UserHistories::to_bytes`).
    pub users_file: String,
    /// How a history is scored.
    pub scoring: crate::models::personal::PersonalParams,
    /// Number of users.
    pub users: usize,
}

/// Size and checksum of a file in the model directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Length in bytes.
    pub bytes: u64,
    /// XXH3-64 of the contents, 16 hexadecimal digits.
    pub xxh3: String,
}
