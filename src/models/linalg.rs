//! Small dense linear-algebra helpers shared by the models (nalgebra underneath).

use nalgebra::{DMatrix, SymmetricEigen};

/// Eigen-decomposition of a symmetric matrix, eigenvalues sorted in descending order (negative
/// round-off clamped to zero), eigenvectors as the matching columns. Computed by faer's
/// self-adjoint solver (several times faster than nalgebra's at the sizes used here, 500–600).
pub fn sorted_eigen(matrix: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let n = matrix.nrows();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| matrix[(i, j)]);
    let Ok(evd) = m.self_adjoint_eigen(faer::Side::Lower) else {
        // faer only fails on non-finite input; nalgebra's solver then says what it can.
        return nalgebra_sorted_eigen(matrix);
    };
    let (values, vectors) = (evd.S().column_vector(), evd.U());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let sorted = order.iter().map(|&i| values[i].max(0.0)).collect();
    let vectors = DMatrix::from_fn(n, n, |r, c| vectors[(r, order[c])]);
    (sorted, vectors)
}

fn nalgebra_sorted_eigen(matrix: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let n = matrix.nrows();
    let eigen = SymmetricEigen::new(matrix);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let values = order
        .iter()
        .map(|&i| eigen.eigenvalues[i].max(0.0))
        .collect();
    let vectors = DMatrix::from_fn(n, n, |r, c| eigen.eigenvectors[(r, order[c])]);
    (values, vectors)
}

/// Principal components of the rows of `x` (`n × d`): the eigenvalues of the covariance in
/// descending order, the components as columns, and the column means.
#[cfg(test)]
pub fn pca(x: &DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>, Vec<f64>) {
    let n = x.nrows().max(2) as f64;
    let means: Vec<f64> = x.column_iter().map(|c| c.mean()).collect();
    let mut centred = x.clone();
    for (j, mut col) in centred.column_iter_mut().enumerate() {
        col.add_scalar_mut(-means[j]);
    }
    // XᵀX through faer's blocked, multithreaded product: nalgebra's takes ~10× longer on the
    // ~500-column content matrix.
    let f = faer::Mat::<f64>::from_fn(centred.nrows(), centred.ncols(), |i, j| centred[(i, j)]);
    let gram = f.transpose() * &f;
    let d = x.ncols();
    let covariance = DMatrix::from_fn(d, d, |i, j| gram[(i, j)] / (n - 1.0));
    let (values, vectors) = sorted_eigen(covariance);
    (values, vectors, means)
}

/// The smallest number of leading components whose eigenvalues keep at least `share` of the
/// total (at least 1).
pub fn components_for_variance(eigenvalues: &[f64], share: f64) -> usize {
    let total: f64 = eigenvalues.iter().sum();
    if total <= 0.0 {
        return 1;
    }
    let mut kept = 0.0;
    for (i, v) in eigenvalues.iter().enumerate() {
        kept += v;
        if kept / total >= share - 1e-12 {
            return i + 1;
        }
    }
    eigenvalues.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_direction_of_largest_variance() {
        // Points spread along (1, 1) with a little noise along (1, -1).
        let rows: Vec<f64> = (0..50)
            .flat_map(|i| {
                let t = f64::from(i) - 25.0;
                let e = if i % 2 == 0 { 0.1 } else { -0.1 };
                [t + e, t - e]
            })
            .collect();
        let x = DMatrix::from_row_slice(50, 2, &rows);
        let (values, vectors, _) = pca(&x);
        assert!(values[0] > 100.0 * values[1]);
        let first = vectors.column(0);
        assert!((first[0].abs() - first[1].abs()).abs() < 1e-3);
        assert_eq!(components_for_variance(&values, 0.95), 1);
        assert_eq!(components_for_variance(&values, 1.0), 2);
    }
}
