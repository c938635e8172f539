//! The SVD model: a truncated SVD of the movie × user rating matrix.
//!
//! The matrix holds the raw star ratings (missing entries are 0). Centring each user's ratings on
//! their mean was tried and halves the item-to-item hit rate of the offline evaluation (HR@10
//! 0.037 against 0.083 on the bundled data, see docs/EVALUATION.md): *that* a user rated a movie
//! carries more of the signal than how far the rating sits from their mean. The item embedding is
//! `U_k Σ_k`: each movie's coordinates along the `k` strongest taste directions.
//!
//! **Choosing `k`.** The seed kept "95% of the variance" of a 2-component `TruncatedSVD`, which
//! collapsed to one dimension. Here `k` is the number of singular values above the Gavish–Donoho
//! optimal hard threshold for a matrix with unknown noise level, `τ = ω(β) · σ_median` with
//! `β = min(m, n) / max(m, n)` (Gavish & Donoho 2014, "The optimal hard threshold for singular
//! values is 4/√3"): singular values below it are indistinguishable from noise, those above carry
//! signal. The result is clamped to `[MIN_RANK, MAX_RANK]`. The full spectrum comes from the
//! eigen-decomposition of the smaller Gram matrix (`AᵀA`, users × users), exact and fast while
//! the smaller side has at most [`MAX_GRAM_SIDE`] rows.
//!
//! **Full releases** (ml-latest: 86,537 movies × 330,975 users) are beyond a dense Gram matrix.
//! There the leading [`MAX_RANK`] + [`OVERSAMPLING`] singular triplets come from a randomized
//! block SVD (Halko, Martinsson & Tropp 2011, algorithm 4.4: a Gaussian test matrix,
//! [`POWER_ITERATIONS`] subspace iterations re-orthonormalised by Cholesky QR, then the exact SVD
//! of the small projected matrix), which costs a few sparse-times-dense products of the 33.8M ratings.
//! Without the full spectrum there is no median singular value, so the rank comes from
//! Gavish–Donoho's threshold for a *known* noise level, `τ = λ*(β) · √max(m, n) · σ`, with the
//! noise level estimated from the energy the directions above the threshold leave unexplained,
//! `σ² ≈ (‖A‖²_F − Σ_{sᵢ > τ} sᵢ²) / (m · n)` (a fixed point: τ depends on σ). No crate offers a sparse randomized SVD over our CSR
//! layout with rayon (faer's sparse SVD is dense underneath), hence the short implementation.
//!
//! **Movies without ratings** have a zero row; they take the mean position of their
//! [`FALLBACK_NEIGHBOURS`] nearest content neighbours that have ratings, so they still get (and
//! appear in) sensible neighbours.

use super::linalg::sorted_eigen;
use super::{ModelKind, TrainedModel};
use crate::embeddings::ItemEmbeddings;
use crate::index::{ExactIndex, Metric, VectorIndex};
use crate::interactions::RatingMatrix;
use crate::Result;
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde_json::json;

/// Lower bound on the chosen rank.
pub const MIN_RANK: usize = 8;
/// Upper bound on the chosen rank.
pub const MAX_RANK: usize = 128;
/// Largest smaller side of the rating matrix for which the exact Gram spectrum is computed.
pub const MAX_GRAM_SIDE: usize = 6000;
/// How many content neighbours an unrated movie borrows its position from.
pub const FALLBACK_NEIGHBOURS: usize = 10;
/// Extra columns of the randomized SVD's test matrix beyond the largest rank kept.
pub const OVERSAMPLING: usize = 16;
/// Subspace iterations of the randomized SVD (each one product with `A` and one with `Aᵀ`).
pub const POWER_ITERATIONS: usize = 3;
/// Seed of the randomized SVD's Gaussian test matrix (training is deterministic).
const SKETCH_SEED: u64 = 0x5bd1_e995_2f3a_9c41;

/// Gavish–Donoho's ω(β) for an unknown noise level (their polynomial approximation).
fn omega(beta: f64) -> f64 {
    0.56 * beta.powi(3) - 0.95 * beta.powi(2) + 1.82 * beta + 1.43
}

/// The number of singular values above the Gavish–Donoho threshold, clamped.
pub fn gavish_donoho_rank(singular_values: &[f64], rows: usize, cols: usize) -> usize {
    let (small, large) = (rows.min(cols) as f64, rows.max(cols) as f64);
    let mut sorted = singular_values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = if sorted.is_empty() {
        0.0
    } else if sorted.len() % 2 == 1 {
        sorted[sorted.len() / 2]
    } else {
        (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
    };
    let threshold = omega(small / large) * median;
    let above = singular_values.iter().filter(|&&s| s > threshold).count();
    above.clamp(MIN_RANK.min(singular_values.len()), MAX_RANK)
}

/// Trains the collaborative model. `content` (rows in the same catalog order) positions movies
/// that have no ratings.
pub fn train(matrix: &RatingMatrix, content: &ItemEmbeddings) -> Result<TrainedModel> {
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    if n_users.min(n_items) > MAX_GRAM_SIDE {
        return train_randomized(matrix, content);
    }
    let values: Vec<f64> = matrix.values.iter().map(|&v| f64::from(v)).collect();

    // Gram matrix AᵀA (users × users), summed over movies.
    let gram = (0..n_items)
        .into_par_iter()
        .fold(
            || vec![0.0f64; n_users * n_users],
            |mut acc, item| {
                let span = matrix.indptr[item]..matrix.indptr[item + 1];
                let users = &matrix.users[span.clone()];
                let values = &values[span];
                for (a, &ua) in users.iter().enumerate() {
                    let row = &mut acc[ua as usize * n_users..(ua as usize + 1) * n_users];
                    for (b, &ub) in users.iter().enumerate() {
                        row[ub as usize] += values[a] * values[b];
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0.0f64; n_users * n_users],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let (eigenvalues, v) = sorted_eigen(DMatrix::from_row_slice(n_users, n_users, &gram));
    let singular: Vec<f64> = eigenvalues.iter().map(|l| l.sqrt()).collect();
    let rank = gavish_donoho_rank(&singular, n_items, n_users).max(1);

    // Item embeddings U_k Σ_k = A V_k.
    let mut data = vec![0.0f32; n_items * rank];
    data.par_chunks_mut(rank)
        .enumerate()
        .for_each(|(item, out)| {
            let span = matrix.indptr[item]..matrix.indptr[item + 1];
            for (&u, &value) in matrix.users[span.clone()].iter().zip(&values[span]) {
                for (c, o) in out.iter_mut().enumerate() {
                    *o += (value * v[(u as usize, c)]) as f32;
                }
            }
        });
    let unrated = fill_unrated(&mut data, rank, matrix, content);

    let total: f64 = eigenvalues.iter().sum();
    let kept: f64 = eigenvalues[..rank].iter().sum();
    Ok(TrainedModel {
        kind: ModelKind::Svd,
        embeddings: ItemEmbeddings::new(rank, data)?,
        details: json!({
            "method": "truncated SVD of user-values ratings",
            "rank": rank,
            "rank_rule": "Gavish-Donoho optimal hard threshold (unknown noise)",
            "energy_explained": if total > 0.0 { kept / total } else { 0.0 },
            "top_singular_values": singular.iter().take(rank).map(|s| (s * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "users": n_users,
            "ratings": matrix.nnz(),
            "unrated_movies_from_content": unrated,
        }),
    })
}

/// [`train`] for rating matrices too large for the exact Gram spectrum: a randomized block SVD
/// and the known-noise Gavish–Donoho rank (see the module doc).
fn train_randomized(matrix: &RatingMatrix, content: &ItemEmbeddings) -> Result<TrainedModel> {
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    let width = (MAX_RANK + OVERSAMPLING).min(n_items).min(n_users);
    let sketch = randomized_svd(matrix, width, POWER_ITERATIONS);
    let frobenius: f64 = matrix.values.iter().map(|&v| f64::from(v).powi(2)).sum();
    // The noise level from the energy outside the signal directions, and the signal directions
    // as those above the threshold that noise level gives: a fixed point reached from "all of it
    // is noise" (each round can only lower the level and add directions).
    let (small, large) = (n_items.min(n_users) as f64, n_items.max(n_users) as f64);
    let mut above = 0;
    let (noise, threshold) = loop {
        let signal: f64 = sketch.singular[..above].iter().map(|s| s * s).sum();
        let noise = ((frobenius - signal).max(0.0) / (n_items as f64 * n_users as f64)).sqrt();
        let threshold = lambda_star(small / large) * large.sqrt() * noise;
        let next = sketch.singular.iter().filter(|&&s| s > threshold).count();
        if next <= above {
            break (noise, threshold);
        }
        above = next;
    };
    let rank = above.clamp(MIN_RANK.min(width), MAX_RANK.min(width)).max(1);

    // Item embeddings U_k Σ_k, from the sketch's left vectors.
    let mut data = vec![0.0f32; n_items * rank];
    for (item, out) in data.chunks_mut(rank).enumerate() {
        for (c, o) in out.iter_mut().enumerate() {
            *o = (sketch.left[item * width + c] * sketch.singular[c]) as f32;
        }
    }
    let unrated = fill_unrated(&mut data, rank, matrix, content);
    Ok(TrainedModel {
        kind: ModelKind::Svd,
        embeddings: ItemEmbeddings::new(rank, data)?,
        details: json!({
            "method": "truncated SVD of user-values ratings (randomized block SVD)",
            "rank": rank,
            "rank_rule": "Gavish-Donoho optimal hard threshold (noise level estimated from the unexplained energy)",
            "energy_explained": if frobenius > 0.0 {
                sketch.singular[..rank].iter().map(|s| s * s).sum::<f64>() / frobenius
            } else {
                0.0
            },
            "noise_level": noise,
            "threshold": threshold,
            "power_iterations": POWER_ITERATIONS,
            "sketch_width": width,
            "top_singular_values": sketch.singular.iter().take(rank).map(|s| (s * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "users": n_users,
            "ratings": matrix.nnz(),
            "unrated_movies_from_content": unrated,
        }),
    })
}

/// Gavish–Donoho's λ*(β): the optimal hard threshold over `√n · σ` for a known noise level.
fn lambda_star(beta: f64) -> f64 {
    (2.0 * (beta + 1.0) + 8.0 * beta / ((beta + 1.0) + (beta * beta + 14.0 * beta + 1.0).sqrt()))
        .sqrt()
}

/// The leading singular triplets of the movie × user matrix, as found by [`randomized_svd`].
struct Sketch {
    /// Singular values, descending (`width` of them).
    singular: Vec<f64>,
    /// Left singular vectors, movies × `width`, row-major.
    left: Vec<f64>,
}

/// Rows of the Gaussian test matrix drawn from one stream of [`SKETCH_SEED`].
const SKETCH_STREAM_ROWS: usize = 4096;

/// Randomized block SVD of `matrix` (movies × users): Halko, Martinsson & Tropp's algorithm 4.4
/// with `width` columns and `iterations` subspace iterations.
fn randomized_svd(matrix: &RatingMatrix, width: usize, iterations: usize) -> Sketch {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    // The rating matrix by user (row `u`'s movies ascending), transposed on all cores.
    let transpose = super::als::transpose(super::als::Csr {
        n_cols: n_users,
        indptr: &matrix.indptr,
        cols: &matrix.users,
        values: &matrix.values,
    });
    // The Gaussian test matrix, on all cores: each block of rows from its own stream of the
    // seed, so it is the same whatever the number of threads.
    let mut omega = vec![0f32; n_users * width];
    omega
        .par_chunks_mut(SKETCH_STREAM_ROWS * width.max(1))
        .enumerate()
        .for_each(|(block, values)| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SKETCH_SEED);
            rng.set_stream(block as u64);
            for x in values {
                *x = StandardNormal.sample(&mut rng);
            }
        });
    // Each buffer is dropped as soon as the next is made (the users' side is 190 MB at
    // ml-latest's size), so at most two are held at once.
    let mut y = multiply(&matrix.indptr, &matrix.users, &matrix.values, &omega, width);
    drop(omega);
    for _ in 0..iterations {
        let q = orthonormal_tall(y, n_items, width);
        let z = multiply(
            &transpose.indptr,
            &transpose.cols,
            &transpose.values,
            &q,
            width,
        );
        drop(q);
        let basis = orthonormal_tall(z, n_users, width);
        y = multiply(&matrix.indptr, &matrix.users, &matrix.values, &basis, width);
    }
    let q = orthonormal(&y, n_items, width);
    drop(y);
    // Bᵀ = Aᵀ Q (users × width); B Bᵀ = W S² Wᵀ, and the left vectors of A are Q W.
    let bt = multiply(
        &transpose.indptr,
        &transpose.cols,
        &transpose.values,
        &q,
        width,
    );
    drop(transpose);
    let bt32 = bt;
    let bt = faer::Mat::<f64>::from_fn(n_users, width, |r, c| f64::from(bt32[r * width + c]));
    drop(bt32);
    let gram = bt.transpose() * &bt;
    drop(bt);
    let (eigenvalues, w) = sorted_eigen(DMatrix::from_fn(width, width, |r, c| gram[(r, c)]));
    let w = faer::Mat::<f64>::from_fn(width, width, |r, c| w[(r, c)]);
    let q = faer::Mat::<f64>::from_fn(n_items, width, |r, c| f64::from(q[r * width + c]));
    let u = &q * &w;
    Sketch {
        singular: eigenvalues.iter().map(|l| l.sqrt()).collect(),
        left: (0..n_items)
            .flat_map(|r| (0..width).map(move |c| (r, c)))
            .map(|(r, c)| u[(r, c)])
            .collect(),
    }
}

/// Bytes of the dense side one pass of [`multiply`] reads: a quarter of this machine's 32 MB L3,
/// so the rows gathered at random stay in cache while the two cores stream the sparse side.
const DENSE_BLOCK_BYTES: usize = 8 << 20;

/// Sparse (CSR: `indptr`, `columns` ascending within each row, `values`) times dense (`columns`
/// × `width`, row-major), on all cores: one output row per sparse row.
///
/// Blocked for cache: each entry gathers one dense row (576 bytes at width 144) at a random
/// place, and at ml-latest's size the dense side (330,975 users × 144 × 4 bytes = 190 MB) is far
/// larger than the cache, so a plain walk waits on memory for every entry (0.9 GFLOP/s measured).
/// Here the dense rows are taken [`DENSE_BLOCK_BYTES`] at a time, and every sparse row adds the
/// entries whose column falls in the block (a cursor per row moves on through its ascending
/// columns): the gathers hit the cache, at the cost of streaming the output once per block.
fn multiply(
    indptr: &[usize],
    columns: &[u32],
    values: &[f32],
    dense: &[f32],
    width: usize,
) -> Vec<f32> {
    multiply_in_blocks(indptr, columns, values, dense, width, DENSE_BLOCK_BYTES)
}

/// [`multiply`] with `block_bytes` of the dense side per pass.
fn multiply_in_blocks(
    indptr: &[usize],
    columns: &[u32],
    values: &[f32],
    dense: &[f32],
    width: usize,
    block_bytes: usize,
) -> Vec<f32> {
    let rows = indptr.len() - 1;
    let mut out = vec![0f32; rows * width];
    if width == 0 {
        return out;
    }
    let n_columns = dense.len() / width;
    let block = (block_bytes / (width * 4)).max(1);
    let mut cursor: Vec<usize> = indptr[..rows].to_vec();
    #[cfg(target_arch = "x86_64")]
    let avx2 = is_x86_feature_detected!("avx2");
    for block_start in (0..n_columns.max(1)).step_by(block) {
        let block_end = (block_start + block) as u64;
        out.par_chunks_mut(width)
            .zip(cursor.par_iter_mut())
            .enumerate()
            .for_each(|(r, (out, at))| {
                let row = BlockRow {
                    columns: &columns[..indptr[r + 1]],
                    values,
                    dense,
                    block_end,
                };
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: AVX2 was detected on this CPU, the only precondition.
                    unsafe { row.add_avx2(out, at) };
                    return;
                }
                row.add(out, at);
            });
    }
    out
}

/// One sparse row's entries within a block of dense rows, for [`multiply`].
struct BlockRow<'a> {
    /// The sparse columns up to the row's end.
    columns: &'a [u32],
    values: &'a [f32],
    dense: &'a [f32],
    /// The block's first column past it.
    block_end: u64,
}

impl BlockRow<'_> {
    /// `out += values[e] · dense[columns[e]]` for the entries from `*at` whose column is in the
    /// block, moving `*at` past them. Plain multiply and add (no fused multiply-add), so the
    /// AVX2 build of it gives the same bits, only eight lanes at a time instead of four.
    #[inline(always)]
    fn add(&self, out: &mut [f32], at: &mut usize) {
        let width = out.len();
        while *at < self.columns.len() && u64::from(self.columns[*at]) < self.block_end {
            let (c, v) = (self.columns[*at] as usize, self.values[*at]);
            for (o, &x) in out.iter_mut().zip(&self.dense[c * width..(c + 1) * width]) {
                *o += v * x;
            }
            *at += 1;
        }
    }

    /// [`BlockRow::add`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_avx2(&self, out: &mut [f32], at: &mut usize) {
        self.add(out, at)
    }
}

/// An orthonormal basis of the columns of `m` (`rows` × `width`, row-major), by faer's QR in
/// single precision (Householder QR is backward stable: the basis is orthonormal to about 1e-6,
/// ample for a subspace iteration), read in place and written back row-major. In f64 the two
/// copies of a 330,975 × 144 matrix cost more than the factorisation.
fn orthonormal(m: &[f32], rows: usize, width: usize) -> Vec<f32> {
    let q = faer::MatRef::from_row_major_slice(m, rows, width)
        .qr()
        .compute_thin_Q();
    let mut out = vec![0f32; rows * width];
    out.par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(r, row)| {
            for (c, x) in row.iter_mut().enumerate() {
                *x = q[(r, c)];
            }
        });
    out
}

/// An orthonormal basis of the columns of the tall `m` (`rows` × `width`, row-major) for the
/// subspace iteration, by Cholesky QR done twice (CholeskyQR2, Fukaya et al. 2014): the Gram
/// matrix `G = MᵀM`, its Cholesky factor `G = RᵀR`, `Q = M R⁻¹`, then the same on `Q`, which
/// restores the orthonormality the first pass loses to rounding. Two products of the tall
/// matrix per pass (full-speed matrix products) instead of a Householder factorisation, which
/// took 1.35 s each time on the users' side at ml-latest's size (330,975 × 144): the stage went
/// from 13.2 to 9.5 s (docs/BENCHMARKS.md).
///
/// The first pass needs `M` well conditioned (the Gram matrix squares its condition number);
/// when its Cholesky factor says otherwise (a pivot below [`CHOLESKY_QR_MIN_PIVOT`] of the
/// largest, which means a condition number above 1,000, or a Gram matrix that is not positive
/// definite), the basis comes from [`orthonormal`] instead.
fn orthonormal_tall(m: Vec<f32>, rows: usize, width: usize) -> Vec<f32> {
    let mut m = m;
    let mut out = Vec::new();
    for _ in 0..2 {
        let Some(r_inverse) = inverse_cholesky_factor(&m, rows, width) else {
            return orthonormal(&m, rows, width);
        };
        out.resize(rows * width, 0.0);
        faer::linalg::matmul::matmul(
            faer::MatMut::from_row_major_slice_mut(&mut out, rows, width),
            faer::Accum::Replace,
            faer::MatRef::from_row_major_slice(&m, rows, width),
            r_inverse.as_ref(),
            1.0f32,
            faer::Par::rayon(0),
        );
        std::mem::swap(&mut m, &mut out);
    }
    m
}

/// The smallest Cholesky pivot, relative to the largest, that [`orthonormal_tall`] accepts.
const CHOLESKY_QR_MIN_PIVOT: f64 = 1e-3;

/// `R⁻¹` for the Cholesky factor `R` of `MᵀM` (upper triangular, `MᵀM = RᵀR`), or `None` when
/// `M` is too ill-conditioned for Cholesky QR (see [`orthonormal_tall`]). The `width × width`
/// Gram matrix is summed in `f32` by the matrix product and factorised in `f64`.
fn inverse_cholesky_factor(m: &[f32], rows: usize, width: usize) -> Option<faer::Mat<f32>> {
    let z = faer::MatRef::from_row_major_slice(m, rows, width);
    let mut gram = faer::Mat::<f32>::zeros(width, width);
    faer::linalg::matmul::matmul(
        gram.as_mut(),
        faer::Accum::Replace,
        z.transpose(),
        z,
        1.0f32,
        faer::Par::rayon(0),
    );
    let gram = DMatrix::<f64>::from_fn(width, width, |r, c| {
        // The product fills both triangles; the average is exactly symmetric.
        0.5 * (f64::from(gram[(r, c)]) + f64::from(gram[(c, r)]))
    });
    let lower = gram.cholesky()?.unpack();
    let pivots = lower.diagonal();
    let (smallest, largest) = (pivots.min(), pivots.max());
    // NaN pivots fail the comparison too.
    let conditioned = smallest > CHOLESKY_QR_MIN_PIVOT * largest && largest.is_finite();
    if !conditioned {
        return None;
    }
    // R = Lᵀ, so R⁻¹ = (L⁻¹)ᵀ.
    let lower_inverse = lower.solve_lower_triangular(&DMatrix::identity(width, width))?;
    Some(faer::Mat::<f32>::from_fn(width, width, |r, c| {
        lower_inverse[(c, r)] as f32
    }))
}

/// Gives each movie without ratings the mean (unit-length) collaborative vector of its nearest
/// rated content neighbours. Returns how many movies were filled.
pub(crate) fn fill_unrated(
    data: &mut [f32],
    rank: usize,
    matrix: &RatingMatrix,
    content: &ItemEmbeddings,
) -> usize {
    let rated: Vec<bool> = (0..matrix.n_items())
        .map(|i| matrix.indptr[i + 1] > matrix.indptr[i])
        .collect();
    let unrated: Vec<usize> = (0..rated.len()).filter(|&i| !rated[i]).collect();
    if unrated.is_empty() || unrated.len() == rated.len() {
        return 0;
    }
    let index = ExactIndex::build(content, Metric::Cosine);
    let unit = ItemEmbeddings::new(rank, data.to_vec())
        .expect("rank > 0")
        .normalized();
    for &item in &unrated {
        let neighbours =
            index.search_item(item as u32, FALLBACK_NEIGHBOURS, &|row| rated[row as usize]);
        let out = &mut data[item * rank..(item + 1) * rank];
        for n in &neighbours {
            for (o, x) in out.iter_mut().zip(unit.row(n.item as usize)) {
                *o += x / neighbours.len() as f32;
            }
        }
    }
    unrated.len()
}

/// The SVD model in the [`super::REGISTRY`]: unrated movies borrow the position of their
/// content neighbours, so it reads the content model.
pub struct Svd;

impl super::Model for Svd {
    fn kind(&self) -> ModelKind {
        ModelKind::Svd
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::Embeddings
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let content = input.embeddings(ModelKind::Content)?;
        Ok(super::Fitted::Embeddings(train(input.matrix, content)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blocked_product_is_the_plain_product_whatever_the_block() {
        // A random sparse 50 × 40 matrix (columns ascending per row) times a dense 40 × 9.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (rows, cols, width) = (50, 40, 9);
        let (mut indptr, mut columns, mut values) = (vec![0usize], Vec::new(), Vec::new());
        for _ in 0..rows {
            for c in 0..cols as u32 {
                if next() % 4 == 0 {
                    columns.push(c);
                    values.push((next() % 100) as f32 / 10.0);
                }
            }
            indptr.push(columns.len());
        }
        let dense: Vec<f32> = (0..cols * width)
            .map(|_| (next() % 200) as f32 / 20.0 - 5.0)
            .collect();
        let mut plain = vec![0f32; rows * width];
        for r in 0..rows {
            for e in indptr[r]..indptr[r + 1] {
                for k in 0..width {
                    plain[r * width + k] += values[e] * dense[columns[e] as usize * width + k];
                }
            }
        }
        assert!(plain.iter().any(|&x| x != 0.0));
        // One column per block, three, seven, and all in one.
        for block_bytes in [1, 3 * width * 4, 7 * width * 4, 1 << 20] {
            let blocked =
                multiply_in_blocks(&indptr, &columns, &values, &dense, width, block_bytes);
            assert_eq!(blocked, plain, "{block_bytes} bytes a block");
        }
    }

    /// The largest entry of `|QᵀQ − I|`, and the largest distance of a column of `M` from the
    /// span of `Q` (`‖M_c − Q Qᵀ M_c‖`), relative to the column's length.
    fn basis_errors(q: &[f32], m: &[f32], rows: usize, width: usize) -> (f64, f64) {
        let dot = |x: &[f32], i: usize, y: &[f32], j: usize| -> f64 {
            (0..rows)
                .map(|r| f64::from(x[r * width + i]) * f64::from(y[r * width + j]))
                .sum()
        };
        let mut orthogonality = 0f64;
        for i in 0..width {
            for j in 0..width {
                let expected = if i == j { 1.0 } else { 0.0 };
                orthogonality = orthogonality.max((dot(q, i, q, j) - expected).abs());
            }
        }
        let mut outside = 0f64;
        for c in 0..width {
            let coefficients: Vec<f64> = (0..width).map(|k| dot(q, k, m, c)).collect();
            let length = dot(m, c, m, c).sqrt();
            let residual: f64 = (0..rows)
                .map(|r| {
                    let inside: f64 = (0..width)
                        .map(|k| coefficients[k] * f64::from(q[r * width + k]))
                        .sum();
                    (f64::from(m[r * width + c]) - inside).powi(2)
                })
                .sum::<f64>()
                .sqrt();
            outside = outside.max(residual / length);
        }
        (orthogonality, outside)
    }

    #[test]
    fn cholesky_qr_gives_an_orthonormal_basis_of_the_same_columns() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (rows, width) = (2_000, 24);
        // Columns of very different lengths (a condition number of 100, as a subspace
        // iteration's products have), sharing a common direction.
        let m: Vec<f32> = (0..rows * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                let x: f64 = StandardNormal.sample(&mut rng);
                ((x + (r % 7) as f64 * 0.3) * 10f64.powf(-2.0 * c as f64 / width as f64)) as f32
            })
            .collect();
        assert!(inverse_cholesky_factor(&m, rows, width).is_some());
        let q = orthonormal_tall(m.clone(), rows, width);
        let (orthogonality, outside) = basis_errors(&q, &m, rows, width);
        assert!(orthogonality < 1e-5, "QᵀQ − I up to {orthogonality}");
        assert!(outside < 1e-4, "a column {outside} outside the basis");
        // A column that is nearly another's: Cholesky QR refuses it and the Householder QR
        // gives the basis.
        let mut bad = m.clone();
        for r in 0..rows {
            bad[r * width + 1] = bad[r * width] * (1.0 + 1e-6 * (r % 3) as f32);
        }
        assert!(inverse_cholesky_factor(&bad, rows, width).is_none());
        let q = orthonormal_tall(bad.clone(), rows, width);
        let (orthogonality, outside) = basis_errors(&q, &bad, rows, width);
        assert!(
            orthogonality < 1e-5,
            "fallback: QᵀQ − I up to {orthogonality}"
        );
        assert!(
            outside < 1e-4,
            "fallback: a column {outside} outside the basis"
        );
    }

    #[test]
    fn gavish_donoho_keeps_values_above_the_noise_bulk() {
        // 20 noise-level singular values around 1 and 10 strong ones.
        let mut s: Vec<f64> = (0..20).map(|i| 1.0 + f64::from(i) * 0.01).collect();
        s.extend((0..10).map(|i| 50.0 + f64::from(i)));
        s.sort_by(|a, b| b.total_cmp(a));
        // Clamped below by MIN_RANK, so make it larger than that.
        assert_eq!(gavish_donoho_rank(&s, 1000, 30), 10);
    }

    /// A dense `items × users` matrix of rank `rank` plus Gaussian noise of level `noise`.
    fn planted(items: usize, users: usize, rank: usize, noise: f64) -> RatingMatrix {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
        let a: Vec<f64> = (0..items * rank).map(|_| normal()).collect();
        let b: Vec<f64> = (0..users * rank).map(|_| normal()).collect();
        let mut values = Vec::with_capacity(items * users);
        for i in 0..items {
            for u in 0..users {
                let signal: f64 = (0..rank).map(|c| a[i * rank + c] * b[u * rank + c]).sum();
                values.push((signal + noise * normal()) as f32);
            }
        }
        RatingMatrix {
            user_ids: (0..users as u32).collect(),
            indptr: (0..=items).map(|i| i * users).collect(),
            users: (0..items).flat_map(|_| 0..users as u32).collect(),
            values,
            positions: vec![0; items * users],
        }
    }

    #[test]
    fn the_randomized_svd_matches_the_exact_spectrum_and_subspace() {
        let matrix = planted(300, 200, 6, 0.5);
        let sketch = randomized_svd(&matrix, 20, POWER_ITERATIONS);
        // Exact: eigen-decomposition of A Aᵀ (items × items).
        let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
        let a = DMatrix::from_fn(n_items, n_users, |i, u| {
            f64::from(matrix.values[i * n_users + u])
        });
        let (eigenvalues, vectors) = sorted_eigen(&a * a.transpose());
        for k in 0..6 {
            let exact = eigenvalues[k].sqrt();
            assert!(
                (sketch.singular[k] - exact).abs() < 1e-3 * exact,
                "σ{k}: {} vs {exact}",
                sketch.singular[k]
            );
            // The exact left vector lies in the span of the sketch's leading six.
            let projected: f64 = (0..6)
                .map(|c| {
                    (0..n_items)
                        .map(|i| vectors[(i, k)] * sketch.left[i * 20 + c])
                        .sum::<f64>()
                        .powi(2)
                })
                .sum();
            assert!(projected > 0.999, "vector {k}: {projected}");
        }
    }

    #[test]
    fn the_known_noise_threshold_finds_the_planted_rank() {
        assert!((lambda_star(1.0) - 4.0 / 3f64.sqrt()).abs() < 1e-12);
        // Ten strong directions in noise: the estimated noise level puts the threshold between
        // the tenth and the eleventh singular value (MIN_RANK is 8, so 10 is not a clamp).
        let matrix = planted(400, 300, 10, 1.0);
        let content = ItemEmbeddings::new(1, vec![1.0; 400]).unwrap();
        let model = train_randomized(&matrix, &content).unwrap();
        assert_eq!(model.embeddings.dim(), 10, "{}", model.details);
        let noise = model.details["noise_level"].as_f64().unwrap();
        assert!((noise - 1.0).abs() < 0.05, "estimated noise {noise}");
    }
}
