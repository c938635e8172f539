//! The 2-D map of a model's embeddings for the Plot tab: the first two principal components of
//! the unit-length rows (cosine is the metric, so direction is what matters).

use super::linalg::sorted_eigen;
use crate::embeddings::ItemEmbeddings;
use nalgebra::DMatrix;
use rayon::prelude::*;

/// Rows whose products are summed into the covariance at once.
const BLOCK_ROWS: usize = 4096;

/// Projects every row to 2-D; rows in catalog order, `[x, y]` pairs flattened.
///
/// The covariance is summed block by block (each block of rows widened to f64 and multiplied
/// by faer, the blocks' sums added in order, so the result does not depend on the threads), and
/// each row is projected from its own values: no copy of all the rows in f64. The first version
/// made three such copies, column by column, and took about a second at 86,528 × 128.
pub fn project_2d(embeddings: &ItemEmbeddings) -> Vec<f32> {
    let unit = embeddings.normalized();
    let (n, d) = (unit.len(), unit.dim());
    let mut out = vec![0f32; n * 2];
    if n == 0 || d == 0 {
        return out;
    }
    let blocks: Vec<(Vec<f64>, faer::Mat<f64>)> = unit
        .as_slice()
        .par_chunks(BLOCK_ROWS * d)
        .map(|rows| {
            let block =
                faer::Mat::<f64>::from_fn(rows.len() / d, d, |r, c| f64::from(rows[r * d + c]));
            let sums = (0..d).map(|c| block.col(c).iter().sum()).collect();
            (sums, block.transpose() * &block)
        })
        .collect();
    let mut sums = vec![0f64; d];
    let mut gram = faer::Mat::<f64>::zeros(d, d);
    for (block_sums, block_gram) in &blocks {
        for (s, b) in sums.iter_mut().zip(block_sums) {
            *s += b;
        }
        gram += block_gram;
    }
    let means: Vec<f64> = sums.iter().map(|s| s / n as f64).collect();
    // The centred rows' XᵀX is Σ x xᵀ − n·μμᵀ.
    let denominator = (n.max(2) - 1) as f64;
    let covariance = DMatrix::from_fn(d, d, |i, j| {
        (gram[(i, j)] - n as f64 * means[i] * means[j]) / denominator
    });
    let (_, components) = sorted_eigen(covariance);
    let axes: Vec<Vec<f64>> = (0..2.min(d))
        .map(|c| components.column(c).iter().copied().collect())
        .collect();
    let offsets: Vec<f64> = axes
        .iter()
        .map(|axis| axis.iter().zip(&means).map(|(a, m)| a * m).sum())
        .collect();
    out.par_chunks_mut(2)
        .zip(unit.as_slice().par_chunks(d))
        .for_each(|(point, row)| {
            for ((value, axis), offset) in point.iter_mut().zip(&axes).zip(&offsets) {
                let dot: f64 = row.iter().zip(axis).map(|(&x, a)| f64::from(x) * a).sum();
                *value = (dot - offset) as f32;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::linalg::pca;

    #[test]
    fn the_map_is_the_rows_first_two_principal_components() {
        // Rows spread over three blocks, with a direction of large variance and a smaller one.
        let (n, d) = (2 * BLOCK_ROWS + 123, 5);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let data: Vec<f32> = (0..n)
            .flat_map(|_| {
                let (a, b) = (4.0 * next(), next());
                [1.0 + a, a - b, 0.5 + b, 0.1 * next(), 0.2]
            })
            .collect();
        let embeddings = ItemEmbeddings::new(d, data).unwrap();
        let map = project_2d(&embeddings);
        assert_eq!(map.len(), 2 * n);
        // The reference: centre every row (f64, all at once), then project on pca's axes.
        let unit = embeddings.normalized();
        let x = DMatrix::from_fn(n, d, |r, c| f64::from(unit.row(r)[c]));
        let (values, components, means) = pca(&x);
        assert!(values[0] > 2.0 * values[1] && values[1] > 2.0 * values[2]);
        for r in 0..n {
            for c in 0..2 {
                let want: f64 = (0..d)
                    .map(|j| (x[(r, j)] - means[j]) * components[(j, c)])
                    .sum();
                // An axis's sign is arbitrary; both come from the same solver on (almost) the
                // same covariance, so they agree.
                let got = f64::from(map[2 * r + c]);
                assert!(
                    (got - want).abs() < 1e-5,
                    "row {r}, axis {c}: {got} against {want}"
                );
            }
        }
    }

    #[test]
    fn one_dimension_maps_to_a_line_and_nothing_to_the_origin() {
        let line = ItemEmbeddings::new(1, vec![1.0, -2.0, 3.0]).unwrap();
        let map = project_2d(&line);
        assert_eq!(map.len(), 6);
        assert!(map.chunks(2).all(|p| p[1] == 0.0));
        let empty = ItemEmbeddings::new(3, vec![]).unwrap();
        assert!(project_2d(&empty).is_empty());
    }
}
