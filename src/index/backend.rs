//! The index backends a model directory holds, behind one trait: how each is built (its search
//! width raised until it reaches a recall target against exact search), written and opened.
//!
//! Exact search is the reference every embedding model has ([`ExactIndex`]); the approximate
//! backends are listed in [`APPROXIMATE`]. Adding one is a file in `index/` implementing
//! [`IndexBackend`] (and [`VectorIndex`] for its searches), its [`IndexKind`] name, and one line
//! in [`APPROXIMATE`]: training builds and records it for every embedding model, serving opens
//! and searches it, and the page lists it from `/api/health`.

use super::{ExactIndex, ForestIndex, ForestParams, HnswIndex, HnswParams, RecallTruth};
use super::{IndexKind, Metric, VectorIndex};
use crate::embeddings::ItemEmbeddings;
use crate::storage::shared_slice::SharedSlice;

/// The recall@10 that building raises an approximate index's search width towards.
pub const RECALL_TARGET: f32 = 0.95;
/// The widest HNSW `ef_search` building raises it to.
pub const MAX_EF_SEARCH: usize = 512;

/// How the approximate indexes are built: each backend's parameters, and whether its search
/// width is kept as given or raised towards [`RECALL_TARGET`].
#[derive(Clone, Copy, Debug)]
pub struct BuildOptions {
    /// The forest's parameters.
    pub forest: ForestParams,
    /// Keep `forest.search_k` as given.
    pub fixed_search_k: bool,
    /// The HNSW graph's parameters.
    pub hnsw: HnswParams,
    /// Keep `hnsw.ef_search` as given.
    pub fixed_ef_search: bool,
}

/// An index built for a model directory.
pub struct BuiltIndex {
    /// Its file's bytes.
    pub bytes: Vec<u8>,
    /// Its parameters, for the manifest.
    pub params: serde_json::Value,
    /// Its recall@10 against exact search on the sample it was built with.
    pub recall_at_10: f32,
}

/// An approximate index backend.
pub trait IndexBackend: Sync {
    /// Which backend.
    fn kind(&self) -> IndexKind;
    /// Builds it over `exact`'s embeddings (cosine), its search width raised (unless
    /// `options` fix it) until its recall against `truth` (exact search's answers for a sample
    /// of queries) reaches [`RECALL_TARGET`].
    fn build(&self, exact: &ExactIndex, truth: &RecallTruth, options: &BuildOptions) -> BuiltIndex;
    /// Opens it from its file, built over `exact`'s embeddings.
    fn open(
        &self,
        bytes: SharedSlice<u8>,
        exact: &ExactIndex,
    ) -> crate::Result<Box<dyn VectorIndex>>;
}

/// Every approximate backend, in the order they are listed.
pub static APPROXIMATE: [&dyn IndexBackend; 2] = [&Forest, &Hnsw];

/// The Annoy-style forest ([`ForestIndex`]).
pub struct Forest;

impl IndexBackend for Forest {
    fn kind(&self) -> IndexKind {
        IndexKind::Annoy
    }

    fn build(&self, exact: &ExactIndex, truth: &RecallTruth, options: &BuildOptions) -> BuiltIndex {
        let embeddings: &ItemEmbeddings = exact.embeddings();
        let mut forest = ForestIndex::build(embeddings, Metric::Cosine, options.forest);
        let mut recall = truth.recall(&forest);
        // Doubled up to a quarter of the catalog: every wider width measured from one walk as
        // wide as the widest (at 86,528 movies, 21,632 candidates a query instead of the
        // 49,632 of four walks one after the other).
        let widest = embeddings.len() / 4;
        let mut widths = Vec::new();
        if let Some(mut search_k) = forest.params().search_k {
            while !options.fixed_search_k && recall < RECALL_TARGET && search_k < widest {
                search_k = (search_k * 2).min(widest);
                widths.push(search_k);
            }
        }
        if !widths.is_empty() {
            let recalls = truth.recall_each(widths.len(), &|item, k| {
                forest.search_item_widths(item, k, &widths)
            });
            let first = recalls.iter().position(|&r| r >= RECALL_TARGET);
            let chosen = first.unwrap_or(widths.len() - 1);
            forest.set_search_k(Some(widths[chosen]));
            recall = recalls[chosen];
        }
        BuiltIndex {
            bytes: forest.to_bytes(),
            params: serde_json::json!({"metric": Metric::Cosine, "forest": forest.params()}),
            recall_at_10: recall,
        }
    }

    fn open(
        &self,
        bytes: SharedSlice<u8>,
        exact: &ExactIndex,
    ) -> crate::Result<Box<dyn VectorIndex>> {
        Ok(Box::new(ForestIndex::open(bytes, exact)?))
    }
}

/// The HNSW graph ([`HnswIndex`]).
pub struct Hnsw;

impl IndexBackend for Hnsw {
    fn kind(&self) -> IndexKind {
        IndexKind::Hnsw
    }

    fn build(&self, exact: &ExactIndex, truth: &RecallTruth, options: &BuildOptions) -> BuiltIndex {
        let mut hnsw = HnswIndex::build(exact.embeddings(), Metric::Cosine, options.hnsw);
        let mut recall = truth.recall(&hnsw);
        if !options.fixed_ef_search {
            while recall < RECALL_TARGET && hnsw.params().ef_search < MAX_EF_SEARCH {
                hnsw.set_ef_search((hnsw.params().ef_search * 2).min(MAX_EF_SEARCH));
                recall = truth.recall(&hnsw);
            }
        }
        BuiltIndex {
            bytes: hnsw.to_bytes(),
            params: serde_json::json!({"metric": Metric::Cosine, "hnsw": hnsw.params()}),
            recall_at_10: recall,
        }
    }

    fn open(
        &self,
        bytes: SharedSlice<u8>,
        exact: &ExactIndex,
    ) -> crate::Result<Box<dyn VectorIndex>> {
        Ok(Box::new(HnswIndex::open(bytes, exact.embeddings())?))
    }
}
