//! The scoring every backend shares: the rows and query a metric scores (unit rows for cosine,
//! an extra coordinate for L2), the inner product (the widest SIMD kernel this CPU runs), and the
//! bounded heap that keeps the best `k`.

use super::{Metric, Neighbor};
use crate::embeddings::ItemEmbeddings;
use std::cmp::Ordering;

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

/// The best `k` of a stream of scored rows.
///
/// Candidates go into an unsorted buffer of up to `2k` (at least [`TOPK_MIN_SLACK`] over `k`);
/// when it fills, one `select_nth_unstable` keeps the best `k` and the `k`-th best becomes the
/// floor that later candidates must beat. This costs O(1) per candidate plus a linear selection
/// per `k` admitted ones, where a binary heap pays O(log k) for every admitted candidate: with
/// `k` in the hundreds (the candidate search of "more like this"), the heap's sifting was a
/// fifth of the whole training.
#[derive(Clone)]
pub struct TopK {
    k: usize,
    buffer: Vec<Ranked>,
    /// The `k`-th best row at the last selection: nothing ranking at or below it can be kept.
    floor: Option<Ranked>,
}

/// The least room a [`TopK`] buffer has over its `k` rows.
pub const TOPK_MIN_SLACK: usize = 32;

impl TopK {
    /// Keeps the best `k` of at most `max_items` rows (the bound keeps a huge `k` from
    /// allocating a huge buffer).
    pub fn new(k: usize, max_items: usize) -> TopK {
        TopK {
            k,
            buffer: Vec::with_capacity(Self::room(k).min(max_items)),
            floor: None,
        }
    }

    fn room(k: usize) -> usize {
        k.saturating_add(k.max(TOPK_MIN_SLACK))
    }

    /// Whether `(score, item)` would be kept if inserted now.
    #[inline]
    pub fn admits(&self, score: f32, item: u32) -> bool {
        self.k > 0
            && self
                .floor
                .is_none_or(|floor| Ranked { score, item } > floor)
    }

    /// Inserts `(score, item)` if it may rank among the best `k` seen so far.
    #[inline]
    pub fn insert(&mut self, score: f32, item: u32) {
        if !self.admits(score, item) {
            return;
        }
        self.buffer.push(Ranked { score, item });
        if self.buffer.len() >= Self::room(self.k) {
            self.select();
        }
    }

    /// Keeps the best `k` of the buffer and raises the floor to the `k`-th of them.
    fn select(&mut self) {
        let k = self.k;
        if self.buffer.len() > k {
            self.buffer.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
            self.buffer.truncate(k);
        }
        if k > 0 && self.buffer.len() == k {
            self.floor = Some(self.buffer[k - 1]);
        }
    }

    /// A score below which nothing can be kept any more: the `k`-th best score at the last
    /// selection (a lower bound of the `k`-th best so far), −∞ before.
    pub fn threshold(&self) -> f32 {
        self.floor.map_or(f32::NEG_INFINITY, Ranked::key)
    }

    /// The kept rows, best first.
    pub fn into_sorted(mut self) -> Vec<Neighbor> {
        self.buffer.sort_unstable_by(|a, b| b.cmp(a));
        self.buffer.truncate(self.k);
        self.buffer
            .into_iter()
            .map(|r| Neighbor {
                item: r.item,
                score: r.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best `k` by sorting everything: higher score first, then lower item, NaN last.
    fn sorted_best(rows: &[(f32, u32)], k: usize) -> Vec<(f32, u32)> {
        let mut all: Vec<Ranked> = rows
            .iter()
            .map(|&(score, item)| Ranked { score, item })
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        all.truncate(k);
        all.into_iter().map(|r| (r.score, r.item)).collect()
    }

    #[test]
    fn top_k_keeps_exactly_what_a_full_sort_keeps() {
        for (n, k) in [
            (0, 5),
            (3, 0),
            (3, 5),
            (50, 1),
            (500, 10),
            (5_000, 300),
            (2_000, 2_000),
        ] {
            let rows: Vec<(f32, u32)> = (0..n as u32)
                .map(|item| {
                    let r = crate::rng::splitmix64(u64::from(item) + 1_000 * n as u64);
                    // Few distinct scores, so ties are common; now and then a NaN.
                    let score = if r.is_multiple_of(97) {
                        f32::NAN
                    } else {
                        (r % 41) as f32 / 8.0
                    };
                    (score, item)
                })
                .collect();
            let mut top = TopK::new(k, n);
            for &(score, item) in &rows {
                if score >= top.threshold() || score.is_nan() {
                    top.insert(score, item);
                }
            }
            let got: Vec<(f32, u32)> = top
                .into_sorted()
                .into_iter()
                .map(|r| (r.score, r.item))
                .collect();
            let want = sorted_best(&rows, k);
            assert_eq!(got.len(), want.len(), "n {n}, k {k}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.1, w.1, "n {n}, k {k}");
                assert!(g.0 == w.0 || (g.0.is_nan() && w.0.is_nan()));
            }
        }
    }
}
