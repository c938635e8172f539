//! Nearest-neighbour indexes over [`ItemEmbeddings`]: one trait, one file per backend.
//!
//! - [`ExactIndex`] (`exact`): brute force over every row, FAISS `IndexFlat` semantics.
//! - [`ForestIndex`] (`annoy`): Annoy's random-projection forest with its two knobs,
//!   `n_trees` and `search_k`.
//! - [`HnswIndex`] (`hnsw`): a hierarchical navigable small-world graph (`M`, `ef_construction`,
//!   `ef_search`), filters applied inside the search.
//!
//! - [`kernels`]: the inner-product kernels every backend uses, chosen at run time for the CPU.
//! - [`bench`]: `movierec bench-index`, every backend on the same raw vectors.
//!
//! Scores are similarities: higher is closer. With [`Metric::Cosine`] (the default) the score is
//! the cosine similarity in `[-1, 1]`.

pub mod bench;
mod exact;
mod forest;
mod hnsw;
pub mod kernels;

pub use exact::ExactIndex;
pub use forest::{ForestIndex, ForestParams};
pub use hnsw::{HnswIndex, HnswParams};

use crate::embeddings::ItemEmbeddings;
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
}

impl Metric {
    /// The metric's code in index files.
    fn code(self) -> u32 {
        match self {
            Metric::Cosine => 0,
            Metric::InnerProduct => 1,
        }
    }
}

/// Writes the start every index file shares: `magic`, format `version`, metric code, row count
/// (`u64`) and dimension (`u32`), little-endian.
fn write_file_header(
    out: &mut Vec<u8>,
    magic: &[u8; 8],
    version: u32,
    metric: Metric,
    rows: usize,
    dim: usize,
) {
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&metric.code().to_le_bytes());
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    let dim = u32::try_from(dim).expect("dimensions were checked at build");
    out.extend_from_slice(&dim.to_le_bytes());
}

/// Reads the header [`write_file_header`] wrote and checks it against `embeddings`: the
/// `kind` of index (`forest`, `HNSW`) and the noun `built` (`forest`, `index`) name it in the
/// errors, which `invalid` turns into the backend's error.
fn read_file_header(
    r: &mut crate::artifact::codec::Reader<'_>,
    (magic, version): (&[u8; 8], u32),
    (kind, built): (&str, &str),
    embeddings: &ItemEmbeddings,
    invalid: fn(String) -> crate::Error,
) -> crate::Result<Metric> {
    if r.take(magic.len(), "magic")? != magic {
        return Err(invalid(format!("bad magic: not a movierec {kind} index")));
    }
    let found = r.u32("format version")?;
    if found != version {
        return Err(invalid(format!(
            "unsupported format version {found} (this build reads version {version})"
        )));
    }
    let metric = match r.u32("metric")? {
        0 => Metric::Cosine,
        1 => Metric::InnerProduct,
        other => return Err(invalid(format!("unknown metric code {other}"))),
    };
    let rows = r.u64("row count")?;
    if rows != embeddings.len() as u64 {
        return Err(invalid(format!(
            "{built} was built over {rows} rows but the embeddings have {}",
            embeddings.len()
        )));
    }
    let dim = r.u32("dimension")? as usize;
    if dim != embeddings.dim() {
        return Err(invalid(format!(
            "{built} was built over dimension {dim} but the embeddings have dimension {}",
            embeddings.dim()
        )));
    }
    Ok(metric)
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Brute force (FAISS `IndexFlat` semantics).
    Exact,
    /// Annoy-style random-projection forest.
    Annoy,
    /// Hierarchical navigable small-world graph.
    Hnsw,
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
        }
    }

    /// Parses a user-supplied name (case-insensitive).
    pub fn parse(name: &str) -> crate::Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "exact" => Ok(IndexKind::Exact),
            "annoy" => Ok(IndexKind::Annoy),
            "hnsw" => Ok(IndexKind::Hnsw),
            _ => Err(crate::Error::invalid(
                "index",
                format!("unknown index {name:?}; expected one of: exact, annoy, hnsw"),
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
/// finds. The exact results are computed once for all of them.
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
    use rayon::prelude::*;
    const TIE: f32 = 1e-6;
    let zero = || vec![(0usize, 0usize); approximate.len()];
    let totals = items
        .par_iter()
        .map(|&item| {
            let truth = exact.search_item(item, k, &|_| true);
            let Some(kth) = truth.last().map(|n| n.score) else {
                return zero();
            };
            approximate
                .iter()
                .map(|index| {
                    let got = index.search_item(item, k, &|_| true);
                    let found = got.iter().filter(|g| g.score >= kth - TIE).count();
                    (found.min(truth.len()), truth.len())
                })
                .collect()
        })
        .reduce(zero, |a, b| {
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x.0 + y.0, x.1 + y.1))
                .collect()
        });
    totals
        .iter()
        .map(|&(found, wanted)| {
            if wanted == 0 {
                1.0
            } else {
                found as f32 / wanted as f32
            }
        })
        .collect()
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
}
