//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a linear
//! item-to-item model with a closed-form solution.
//!
//! With `X` the binary user × movie matrix (1 where the user rated the movie) and
//! `P = (XᵀX + λI)⁻¹`, the weights are `B_ij = −P_ij / P_jj` for `i ≠ j` and `B_ii = 0`; a user
//! with history `x` scores movie `j` as `Σ_i x_i B_ij`. Movie `i`'s neighbours are therefore the
//! largest entries of row `i` of `B`: how much having rated `i` predicts `j`.
//!
//! The inverse is dense, `n²` floats and `n³/3` flops for `n` movies, so EASE is fitted on the
//! `max_items` most-rated movies only (3,000 by default: 36 MB and about half a second here); the
//! other movies have no EASE neighbours and are never recommended by it. `details` says how many
//! movies were covered. The linear algebra is `faer`'s blocked, multithreaded Cholesky: a naive
//! inverse would take minutes at this size.

use super::item_knn::{keep_best, NeighbourLists};
use crate::interactions::RatingMatrix;
use crate::{Error, Result};
use faer::linalg::solvers::DenseSolveCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of [`train`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EaseParams {
    /// L2 regularisation λ added to the Gram matrix's diagonal.
    pub lambda: f32,
    /// The model is fitted on at most this many movies, the most rated.
    pub max_items: usize,
    /// Neighbours kept per movie.
    pub neighbours: usize,
}

/// Largest `max_items` accepted: the dense inverse needs `4 · max_items²` bytes (1.6 GB here).
pub const MAX_DENSE_ITEMS: usize = 20_000;

impl Default for EaseParams {
    /// λ as `movierec evaluate` chose it on the bundled data (docs/EVALUATION.md), fitted on
    /// the 3,000 most rated movies.
    fn default() -> Self {
        EaseParams {
            lambda: 500.0,
            max_items: 3_000,
            neighbours: super::item_knn::DEFAULT_NEIGHBOURS,
        }
    }
}

/// What [`train`] produces.
pub struct EaseModel {
    /// The best `neighbours` entries of each row of `B` (empty for movies outside the model).
    pub lists: NeighbourLists,
    /// Movies the model covers.
    pub covered: usize,
}

/// How many raters ahead the Gram matrix's walk prefetches the movies of.
const PREFETCH_AHEAD: usize = 4;

/// Fits EASE on `matrix` (rows: catalog movies).
pub fn train(matrix: &RatingMatrix, params: &EaseParams) -> Result<EaseModel> {
    if !(params.lambda.is_finite() && params.lambda > 0.0) {
        return Err(Error::invalid(
            "lambda",
            format!("EASE's lambda must be positive, got {}", params.lambda),
        ));
    }
    if params.max_items == 0 || params.max_items > MAX_DENSE_ITEMS {
        return Err(Error::invalid(
            "max_items",
            format!(
                "EASE's max_items must be between 1 and {MAX_DENSE_ITEMS} (a dense {0}×{0} \
                 inverse), got {1}",
                MAX_DENSE_ITEMS, params.max_items
            ),
        ));
    }
    let n_items = matrix.n_items();
    let count = |i: usize| matrix.indptr[i + 1] - matrix.indptr[i];
    let mut chosen: Vec<usize> = (0..n_items).filter(|&i| count(i) > 0).collect();
    chosen.sort_by_key(|&i| (std::cmp::Reverse(count(i)), i));
    chosen.truncate(params.max_items);
    chosen.sort_unstable();
    let n = chosen.len();
    let mut local = vec![u32::MAX; n_items];
    for (l, &i) in chosen.iter().enumerate() {
        local[i] = l as u32;
    }
    // Each user's chosen movies, ascending, for the Gram matrix G = XᵀX (co-rating counts):
    // user `u`'s are `movies[starts[u]..starts[u + 1]]`.
    let (starts, movies) = matrix.items_by_user(&chosen, |_| true);
    // Only the lower triangle (`b ≤ a`), the half the Cholesky factorisation reads: each
    // user's movies up to `a`, half the co-ratings of the whole matrix (at ml-latest's size
    // this product was nearly all of EASE's time).
    let mut gram = vec![0f32; n * n];
    gram.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(a, row)| {
            let i = chosen[a];
            let raters = &matrix.users[matrix.indptr[i]..matrix.indptr[i + 1]];
            for (at, &u) in raters.iter().enumerate() {
                // The next raters' movies start at random places: fetched while these are read.
                if let Some(&ahead) = raters.get(at + PREFETCH_AHEAD) {
                    let from = starts[ahead as usize];
                    let to = starts[ahead as usize + 1].min(from + 16);
                    crate::simd::prefetch(&movies[from..to]);
                }
                for &b in &movies[starts[u as usize]..starts[u as usize + 1]] {
                    if b as usize > a {
                        break;
                    }
                    row[b as usize] += 1.0;
                }
            }
            row[a] += params.lambda;
        });
    let g = faer::Mat::<f32>::from_fn(n, n, |i, j| gram[i * n + j]);
    drop(gram);
    let p = g
        .llt(faer::Side::Lower)
        .map_err(|e| Error::invalid("lambda", format!("EASE's Gram matrix is singular: {e:?}")))?
        .inverse();
    let lists: Vec<Vec<(u32, f32)>> = (0..n_items)
        .into_par_iter()
        .map(|i| {
            let a = local[i];
            if a == u32::MAX {
                return Vec::new();
            }
            let a = a as usize;
            let mut scored: Vec<(u32, f32)> = (0..n)
                .filter(|&b| b != a)
                .map(|b| (chosen[b] as u32, -p[(a, b)] / p[(b, b)]))
                .collect();
            keep_best(&mut scored, params.neighbours);
            scored
        })
        .collect();
    Ok(EaseModel {
        lists: NeighbourLists::from_lists(lists),
        covered: n,
    })
}

/// The EASE model in the [`super::REGISTRY`], fitted with
/// [`super::item_knn::DEFAULT_NEIGHBOURS`] neighbours per movie.
pub struct Ease;

impl super::Model for Ease {
    fn kind(&self) -> super::ModelKind {
        super::ModelKind::Ease
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::NeighbourLists
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let params = EaseParams {
            neighbours: super::item_knn::DEFAULT_NEIGHBOURS,
            ..input.settings.ease
        };
        let model = train(input.matrix, &params)?;
        Ok(super::Fitted::Lists(super::TrainedLists {
            pool_floors: None,
            kind: super::ModelKind::Ease,
            lists: model.lists,
            neighbours: params.neighbours,
            details: serde_json::json!({
                "method": "EASE (closed form) on the binary rating matrix",
                "params": params,
                "covered_movies": model.covered,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::numbered_catalog as catalog;
    use crate::data::Rating;

    fn ratings(pairs: &[(u32, u32)]) -> Vec<Rating> {
        pairs
            .iter()
            .enumerate()
            .map(|(t, &(user_id, movie_id))| Rating {
                user_id,
                movie_id,
                rating: 4.0,
                timestamp: t as u32,
            })
            .collect()
    }

    #[test]
    fn weights_match_the_closed_form_on_a_small_matrix() {
        // Users: {1,2}, {1,2}, {2,3}, {1,3}.
        let r = ratings(&[
            (1, 1),
            (1, 2),
            (2, 1),
            (2, 2),
            (3, 2),
            (3, 3),
            (4, 1),
            (4, 3),
        ]);
        let matrix = RatingMatrix::build(&catalog(3), &r);
        let lambda = 1.0;
        let model = train(
            &matrix,
            &EaseParams {
                lambda,
                ..EaseParams::default()
            },
        )
        .unwrap();
        assert_eq!(model.covered, 3);
        // G + λI = [[4,2,1],[2,4,1],[1,1,3]]; invert it by nalgebra and compare every weight.
        let g = nalgebra::Matrix3::new(4.0, 2.0, 1.0, 2.0, 4.0, 1.0, 1.0, 1.0, 3.0f64);
        let p = g.try_inverse().unwrap();
        for i in 0..3u32 {
            let got: Vec<(u32, f32)> = model.lists.of(i).collect();
            assert_eq!(got.len(), 2);
            for (j, w) in got {
                let want = -p[(i as usize, j as usize)] / p[(j as usize, j as usize)];
                assert!(
                    (f64::from(w) - want).abs() < 1e-5,
                    "B[{i}][{j}] {w} vs {want}"
                );
            }
        }
        // Movies 1 and 2 are co-rated most, so each is the other's first neighbour.
        assert_eq!(model.lists.of(0).next().unwrap().0, 1);
    }

    #[test]
    fn only_the_most_rated_movies_are_covered_and_bad_parameters_are_refused() {
        let r = ratings(&[(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 3)]);
        let matrix = RatingMatrix::build(&catalog(4), &r);
        let params = EaseParams {
            max_items: 2,
            ..EaseParams::default()
        };
        let model = train(&matrix, &params).unwrap();
        assert_eq!(model.covered, 2);
        assert_eq!(model.lists.of(2).count(), 0, "movie 3 is outside the model");
        assert_eq!(model.lists.of(3).count(), 0, "movie 4 has no ratings");
        assert!(model.lists.of(0).all(|(j, _)| j == 1));
        for bad in [
            EaseParams {
                lambda: 0.0,
                ..params
            },
            EaseParams {
                max_items: MAX_DENSE_ITEMS + 1,
                ..params
            },
        ] {
            let err = train(&matrix, &bad).err().expect("refused").to_string();
            assert!(err.contains("lambda") || err.contains("max_items"), "{err}");
        }
    }
}
