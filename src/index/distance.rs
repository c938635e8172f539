//! The scoring every backend shares: the rows and query a metric scores (unit rows for cosine,
//! an extra coordinate for L2), the inner product (the widest SIMD kernel this CPU runs), and the
//! bounded heap that keeps the best `k`.

use super::{Metric, Neighbor};
use crate::embeddings::ItemEmbeddings;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// The dimension of the rows a metric scores over embeddings of dimension `dim`.
pub fn scored_dim(dim: usize, metric: Metric) -> usize {
    match metric {
        Metric::L2 => dim + 1,
        Metric::Cosine | Metric::InnerProduct => dim,
    }
}

/// The rows a metric scores against: unit rows for cosine, the rows themselves for inner product,
/// and for L2 each row `x` followed by `−‖x‖²/2` (see [`Metric::L2`]).
pub fn scoring_rows(embeddings: &ItemEmbeddings, metric: Metric) -> ItemEmbeddings {
    match metric {
        Metric::Cosine => embeddings.normalized(),
        Metric::InnerProduct => embeddings.clone(),
        Metric::L2 => {
            let dim = embeddings.dim();
            let mut rows = Vec::with_capacity(embeddings.len() * (dim + 1));
            for i in 0..embeddings.len() {
                let row = embeddings.row(i);
                rows.extend_from_slice(row);
                rows.push(-0.5 * dot(row, row));
            }
            ItemEmbeddings::new(dim + 1, rows).expect("whole rows")
        }
    }
}

/// The query as scored against [`scoring_rows`]: normalised for cosine (a zero query stays zero,
/// so every row scores 0), followed by a 1 for L2.
///
/// # Panics
/// If `query.len() != dim`: a query of the wrong dimension is a caller bug, not bad data.
pub fn scoring_query(query: &[f32], dim: usize, metric: Metric) -> Vec<f32> {
    assert_eq!(
        query.len(),
        dim,
        "query has dimension {} but the index has dimension {dim}",
        query.len()
    );
    let mut query = query.to_vec();
    match metric {
        Metric::Cosine => normalize(&mut query),
        Metric::InnerProduct => {}
        Metric::L2 => query.push(1.0),
    }
    query
}

/// The scores users see for results ranked over [`scoring_rows`]: as ranked, except for L2,
/// whose `k` results get their distance recomputed from the embeddings (`-‖q − x‖`).
pub fn finish_scores(
    metric: Metric,
    query: &[f32],
    embeddings: &ItemEmbeddings,
    mut results: Vec<Neighbor>,
) -> Vec<Neighbor> {
    if metric == Metric::L2 {
        for n in &mut results {
            let row = embeddings.row(n.item as usize);
            let squared: f32 = row.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum();
            n.score = -squared.sqrt();
        }
    }
    results
}

/// Scales `v` to unit length in place; a zero vector is left unchanged.
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Inner product of two equal-length vectors (the widest SIMD kernel this CPU runs, see
/// [`crate::simd`]).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    crate::simd::dot(a, b)
}

/// A scored row ordered by rank: greater means better (higher score, then lower row).
/// A NaN score ranks below everything, so a corrupt row can never crowd out real neighbours.
#[derive(Clone, Copy, Debug)]
struct Ranked {
    score: f32,
    item: u32,
}

impl Ranked {
    fn key(self) -> f32 {
        if self.score.is_nan() {
            f32::NEG_INFINITY
        } else {
            self.score
        }
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .total_cmp(&other.key())
            .then_with(|| other.item.cmp(&self.item))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// The best `k` of a stream of scored rows: a bounded min-heap whose top is the worst kept row.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    /// Keeps the best `k` of at most `max_items` rows (the bound keeps a huge `k` from
    /// allocating a huge heap).
    pub fn new(k: usize, max_items: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(max_items)),
        }
    }

    /// Whether `(score, item)` would be kept if inserted now.
    #[inline]
    pub fn admits(&self, score: f32, item: u32) -> bool {
        if self.heap.len() < self.k {
            return true;
        }
        self.heap
            .peek()
            .is_some_and(|Reverse(worst)| Ranked { score, item } > *worst)
    }

    /// Inserts `(score, item)` if it ranks among the best `k` seen so far.
    pub fn insert(&mut self, score: f32, item: u32) {
        let entry = Ranked { score, item };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(entry));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if entry > worst.0 {
                *worst = Reverse(entry);
            }
        }
    }

    /// A score below which nothing can be kept any more: the k-th best score once there are
    /// `k` rows, −∞ before.
    pub fn threshold(&self) -> f32 {
        match self.heap.peek() {
            Some(Reverse(worst)) if self.heap.len() >= self.k => worst.key(),
            _ => f32::NEG_INFINITY,
        }
    }

    /// The kept rows, best first.
    pub fn into_sorted(self) -> Vec<Neighbor> {
        // Ascending `Reverse` order is descending rank.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(r)| Neighbor {
                item: r.item,
                score: r.score,
            })
            .collect()
    }
}
