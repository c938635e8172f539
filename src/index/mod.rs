//! Nearest-neighbour indexes over [`ItemEmbeddings`]: one trait, one file per backend.
//!
//! - [`ExactIndex`] (`exact`): brute force over every row, FAISS `IndexFlat` semantics.
//! - [`ForestIndex`] (`annoy`): Annoy's random-projection forest with its two knobs,
//!   `n_trees` and `search_k`.
//! - [`HnswIndex`] (`hnsw`): a hierarchical navigable small-world graph (`M`, `ef_construction`,
//!   `ef_search`), filters applied inside the search.
//!
//! - [`backend`]: the [`backend::IndexBackend`] trait and the registry of approximate backends
//!   ([`backend::APPROXIMATE`]) that training builds and serving opens.
//! - [`distance`]: the scoring every backend shares (metric rows and queries, the inner
//!   product, the top-k heap).
//! - [`quantized`]: the int8 scan with a provably exact re-ranking behind [`ExactIndex`]'s
//!   one-at-a-time search.
//!
//! Scores are similarities: higher is closer. With [`Metric::Cosine`] (the default) the score is
//! the cosine similarity in `[-1, 1]`.

pub mod backend;
pub mod distance;
mod exact;
mod forest;
mod hnsw;
pub mod quantized;

pub use exact::ExactIndex;
pub use forest::{ForestIndex, ForestParams};
pub use hnsw::{HnswIndex, HnswParams};

use crate::embeddings::ItemEmbeddings;
use crate::storage::section_file::SectionFile;
use crate::storage::shared_slice::SharedSlice;
use serde::{Deserialize, Serialize};

/// How closeness between two vectors is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity (vectors are normalised at build time; zero vectors score 0).
    #[default]
    Cosine,
    /// Raw inner product.
    InnerProduct,
    /// Euclidean distance; the score is its negative, `-‖q − x‖`, so that higher is closer.
    ///
    /// Every backend ranks by `q·x − ‖x‖²/2 = (‖q‖² − ‖q − x‖²) / 2`, which orders rows as the
    /// distance does: an inner product between the query `(q, 1)` and the rows `(x, −‖x‖²/2)`
    /// (one extra coordinate, see `distance::scoring_rows`). So L2 reuses each backend's
    /// inner-product search, and the `k` results' scores are then recomputed as distances.
    L2,
}

impl Metric {
    /// Every metric, in the order they are listed to users.
    pub const ALL: [Metric; 3] = [Metric::Cosine, Metric::InnerProduct, Metric::L2];

    /// The name used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::InnerProduct => "inner_product",
            Metric::L2 => "l2",
        }
    }

    /// Parses a user-supplied name (`cosine`, `inner_product` or `ip`, `l2`; case-insensitive).
    pub fn parse(name: &str) -> crate::Result<Metric> {
        match name.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "inner_product" | "ip" | "dot" => Ok(Metric::InnerProduct),
            "l2" | "euclidean" => Ok(Metric::L2),
            _ => Err(crate::Error::invalid(
                "metric",
                format!("unknown metric {name:?}; expected one of: cosine, inner_product, l2"),
            )),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `meta` section every index file starts with: the metric, the shape of the embeddings
/// it was built over, and the backend's own fields (`extra`).
#[derive(Serialize, Deserialize)]
struct FileMeta<P> {
    metric: Metric,
    rows: usize,
    dim: usize,
    #[serde(flatten)]
    extra: P,
}

/// Starts an index file of kind `magic`: its `meta` section.
fn index_file_writer<'a, P: Serialize>(
    (magic, version): (&[u8; 8], u32),
    metric: Metric,
    embeddings: &ItemEmbeddings,
    extra: P,
) -> crate::storage::section_file::SectionWriter<'a> {
    let mut w = crate::storage::section_file::SectionWriter::new(magic, version);
    w.add_json(
        "meta",
        &FileMeta {
            metric,
            rows: embeddings.len(),
            dim: embeddings.dim(),
            extra,
        },
    );
    w
}

/// Opens an index file written through [`index_file_writer`] and checks that it was built over
/// `embeddings`' shape; `what` names the backend in errors ("forest", "HNSW").
fn open_index_file<P: serde::de::DeserializeOwned>(
    bytes: SharedSlice<u8>,
    (magic, version): (&[u8; 8], u32),
    what: &str,
    embeddings: &ItemEmbeddings,
) -> crate::Result<(SectionFile, Metric, P)> {
    let invalid = |message: String| crate::Error::Index(format!("{what} index: {message}"));
    let file =
        SectionFile::open(bytes, magic, version, &format!("{what} index")).map_err(invalid)?;
    let meta: FileMeta<P> = file.json("meta").map_err(invalid)?;
    if meta.rows != embeddings.len() || meta.dim != embeddings.dim() {
        return Err(invalid(format!(
            "built over {} rows of dimension {} but the embeddings have {} rows of dimension {}",
            meta.rows,
            meta.dim,
            embeddings.len(),
            embeddings.dim()
        )));
    }
    Ok((file, meta.metric, meta.extra))
}

/// One search result: a catalog row and its similarity to the query (higher is closer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// The catalog row (internal movie index).
    pub item: u32,
    /// Similarity to the query under the index's metric.
    pub score: f32,
}

/// The index backends a user can choose.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Brute force (FAISS `IndexFlat` semantics).
    Exact,
    /// Annoy-style random-projection forest.
    Annoy,
    /// Hierarchical navigable small-world graph.
    Hnsw,
    /// No index: a neighbour-list model answered from the lists it computed exactly at
    /// training time (reported in answers; asking for it is the same as asking for `exact`).
    Lists,
}

impl IndexKind {
    /// Every backend, in the order they are listed to users.
    pub const ALL: [IndexKind; 3] = [IndexKind::Exact, IndexKind::Annoy, IndexKind::Hnsw];

    /// The name used on the command line, in the API and on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::Exact => "exact",
            IndexKind::Annoy => "annoy",
            IndexKind::Hnsw => "hnsw",
            IndexKind::Lists => "lists",
        }
    }

    /// Parses a user-supplied name (case-insensitive).
    pub fn parse(name: &str) -> crate::Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "exact" => Ok(IndexKind::Exact),
            "annoy" => Ok(IndexKind::Annoy),
            "hnsw" => Ok(IndexKind::Hnsw),
            "lists" => Ok(IndexKind::Lists),
            _ => Err(crate::Error::invalid(
                "index",
                format!("unknown index {name:?}; expected one of: exact, annoy, hnsw, lists"),
            )),
        }
    }
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A nearest-neighbour index over one model's item embeddings.
pub trait VectorIndex: Send + Sync {
    /// Which backend this is.
    fn kind(&self) -> IndexKind;

    /// The embeddings the index was built over (rows in catalog order).
    fn embeddings(&self) -> &ItemEmbeddings;

    /// Up to `k` rows most similar to `query`, best first, among the rows for which
    /// `allow(row)` is true. Ties are broken by the lower row index, so results are deterministic.
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<Neighbor>;

    /// Up to `k` rows most similar to row `item`, never including `item` itself.
    fn search_item(&self, item: u32, k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<Neighbor> {
        let query = self.embeddings().row(item as usize).to_vec();
        self.search(&query, k, &|row| row != item && allow(row))
    }
}

/// Recall@k of each of `approximate` against `exact`: over `items` used as queries (each
/// excluded from its own results), the share of the exact top-k that the approximate index also
/// finds. The exact results are computed once for all of them ([`RecallTruth`]).
///
/// Ties count as found: an approximate result scoring at least the exact k-th score is as good as
/// the exact one it displaced (the content model has thousands of identical vectors, and which of
/// several equally similar movies comes back is arbitrary).
pub fn recall_at_k(
    exact: &dyn VectorIndex,
    approximate: &[&dyn VectorIndex],
    items: &[u32],
    k: usize,
) -> Vec<f32> {
    let truth = RecallTruth::new(exact, items, k);
    approximate
        .iter()
        .map(|index| truth.recall(*index))
        .collect()
}

/// The exact answers recall is measured against, kept so that measuring several indexes, or one
/// index at several search widths (building raises widths until [`backend::RECALL_TARGET`]), does
/// not search exactly again each time: at ml-latest's size an exact search of the 500-movie
/// sample is a third of a second per model, and building measured it up to nine times.
pub struct RecallTruth {
    k: usize,
    /// Each query item with its exact k-th score and how many exact results it has (fewer than
    /// `k` in a tiny catalog; none leaves it out).
    queries: Vec<(u32, f32, usize)>,
}

impl RecallTruth {
    /// The exact top-`k` of each of `items` (itself excluded) under `exact`.
    pub fn new(exact: &dyn VectorIndex, items: &[u32], k: usize) -> RecallTruth {
        use rayon::prelude::*;
        let queries = items
            .par_iter()
            .filter_map(|&item| {
                let truth = exact.search_item(item, k, &|_| true);
                truth.last().map(|kth| (item, kth.score, truth.len()))
            })
            .collect();
        RecallTruth { k, queries }
    }

    /// [`RecallTruth::new`] for an exact index, every query in one batch
    /// ([`ExactIndex::search_batch`]: one matrix product instead of a scan per query, 0.34 →
    /// 0.06 s for 500 queries of the 128-dimensional rows of 86,528 movies).
    pub fn batched(exact: &ExactIndex, items: &[u32], k: usize) -> RecallTruth {
        let embeddings = exact.embeddings();
        let dim = embeddings.dim();
        let rows = items
            .iter()
            .flat_map(|&item| embeddings.row(item as usize))
            .copied()
            .collect();
        let queries = ItemEmbeddings::new(dim, rows).expect("rows of the index");
        let found = exact.search_batch(&queries, k, &|q, row| row == items[q]);
        let queries = items
            .iter()
            .zip(found)
            .filter_map(|(&item, truth)| truth.last().map(|kth| (item, kth.score, truth.len())))
            .collect();
        RecallTruth { k, queries }
    }

    /// Recall@k of `index`: the share of the exact results it finds, ties counted as found
    /// ([`recall_at_k`]); 1 when there is nothing to find.
    pub fn recall(&self, index: &dyn VectorIndex) -> f32 {
        self.recall_each(1, &|item, k| vec![index.search_item(item, k, &|_| true)])[0]
    }

    /// The recall of each of `n` searches at once: `search(item, k)` answers a query item (itself
    /// excluded) with `n` result lists, such as an index's at `n` search widths.
    pub fn recall_each(
        &self,
        n: usize,
        search: &(dyn Fn(u32, usize) -> Vec<Vec<Neighbor>> + Sync),
    ) -> Vec<f32> {
        use rayon::prelude::*;
        const TIE: f32 = 1e-6;
        let (found, wanted) = self
            .queries
            .par_iter()
            .map(|&(item, kth, wanted)| {
                let answers = search(item, self.k);
                assert_eq!(answers.len(), n, "one answer per search");
                let found: Vec<usize> = answers
                    .iter()
                    .map(|got| {
                        got.iter()
                            .filter(|g| g.score >= kth - TIE)
                            .count()
                            .min(wanted)
                    })
                    .collect();
                (found, wanted)
            })
            .reduce(
                || (vec![0; n], 0),
                |(mut a, x), (b, y)| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    (a, x + y)
                },
            );
        found
            .iter()
            .map(|&f| {
                if wanted == 0 {
                    1.0
                } else {
                    f as f32 / wanted as f32
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_tied_results_as_found_and_misses_as_missed() {
        // Rows 1..=3 are identical; row 4 points elsewhere.
        let rows = vec![1.0, 0.0, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.0, 1.0];
        let embeddings = ItemEmbeddings::new(2, rows).unwrap();
        let exact = ExactIndex::build(&embeddings, Metric::Cosine);
        // Any forest over 5 rows with an unbounded search is exact: recall 1.
        let forest = ForestIndex::build(
            &embeddings,
            Metric::Cosine,
            ForestParams {
                n_trees: 1,
                search_k: Some(1000),
                seed: 1,
            },
        );
        assert_eq!(recall_at_k(&exact, &[&forest], &[0, 1, 4], 2), vec![1.0]);

        /// An index that returns the right number of results, all far away.
        struct Wrong(ItemEmbeddings);
        impl VectorIndex for Wrong {
            fn kind(&self) -> IndexKind {
                IndexKind::Annoy
            }
            fn embeddings(&self) -> &ItemEmbeddings {
                &self.0
            }
            fn search(&self, _: &[f32], k: usize, _: &dyn Fn(u32) -> bool) -> Vec<Neighbor> {
                (0..k as u32)
                    .map(|item| Neighbor { item, score: -1.0 })
                    .collect()
            }
        }
        let wrong = Wrong(embeddings);
        assert_eq!(
            recall_at_k(&exact, &[&forest, &wrong], &[0, 1], 2),
            vec![1.0, 0.0]
        );
    }

    #[test]
    fn batched_truth_is_the_truth_of_one_search_per_query() {
        // 400 rows in 12 dimensions, with some repeated rows (ties at the k-th place).
        let random = crate::index::exact::tests::random_embeddings(400, 12, 11);
        let mut rows = random.as_slice().to_vec();
        rows.copy_within(0..12 * 20, 12 * 100);
        let embeddings = ItemEmbeddings::new(12, rows).unwrap();
        let exact = ExactIndex::build(&embeddings, Metric::Cosine);
        let items: Vec<u32> = (0..400).step_by(7).chain([100, 105]).collect();
        let (one, batched) = (
            RecallTruth::new(&exact, &items, 10),
            RecallTruth::batched(&exact, &items, 10),
        );
        assert_eq!(one.k, batched.k);
        assert_eq!(one.queries.len(), items.len());
        assert_eq!(batched.queries.len(), items.len());
        for (a, b) in one.queries.iter().zip(&batched.queries) {
            assert_eq!((a.0, a.2), (b.0, b.2));
            assert!((a.1 - b.1).abs() < 1e-6, "{a:?} / {b:?}");
        }
        // In a catalog smaller than k, everything but the query itself.
        let small = ItemEmbeddings::new(2, vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        let exact = ExactIndex::build(&small, Metric::Cosine);
        let truth = RecallTruth::batched(&exact, &[0, 2], 10);
        assert_eq!(
            truth.queries.iter().map(|q| q.2).collect::<Vec<_>>(),
            [2, 2]
        );
    }
}
