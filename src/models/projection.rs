//! The 2-D map of a model's embeddings for the Plot tab: the first two principal components of
//! the unit-length rows (cosine is the metric, so direction is what matters).

use super::linalg::pca;
use crate::embeddings::ItemEmbeddings;
use nalgebra::DMatrix;

/// Projects every row to 2-D; rows in catalog order, `[x, y]` pairs flattened.
pub fn project_2d(embeddings: &ItemEmbeddings) -> Vec<f32> {
    let unit = embeddings.normalized();
    let (n, d) = (unit.len(), unit.dim());
    let x = DMatrix::from_fn(n, d, |r, c| f64::from(unit.row(r)[c]));
    let (_, components, means) = pca(&x);
    let mut out = Vec::with_capacity(n * 2);
    for r in 0..n {
        for c in 0..2 {
            let value: f64 = if c < d {
                (0..d)
                    .map(|j| (x[(r, j)] - means[j]) * components[(j, c)])
                    .sum()
            } else {
                0.0
            };
            out.push(value as f32);
        }
    }
    out
}
