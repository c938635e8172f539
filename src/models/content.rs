//! The content model: each movie's genres and decade, one-hot encoded, reduced by PCA to the
//! components that keep 95% of the variance (as the seed did).

use super::linalg::{components_for_variance, pca};
use super::{ModelKind, TrainedModel};
use crate::catalog::Catalog;
use crate::embeddings::ItemEmbeddings;
use crate::Result;
use nalgebra::DMatrix;
use serde_json::json;

/// Share of the one-hot features' variance the kept components must explain.
pub const VARIANCE_KEPT: f64 = 0.95;

/// The one-hot feature names: every genre, then every decade, each sorted.
pub fn feature_names(catalog: &Catalog) -> Vec<String> {
    let mut genres: Vec<String> = catalog
        .movies()
        .iter()
        .flat_map(|m| m.genres.iter().cloned())
        .collect();
    genres.sort();
    genres.dedup();
    let mut decades: Vec<String> = catalog.movies().iter().filter_map(|m| m.decade()).collect();
    decades.sort();
    decades.dedup();
    genres.into_iter().chain(decades).collect()
}

/// Trains the content model over every movie of the catalog.
pub fn train(catalog: &Catalog) -> Result<TrainedModel> {
    let names = feature_names(catalog);
    let column = |name: &str| names.iter().position(|n| n == name);
    let mut x = DMatrix::<f64>::zeros(catalog.len(), names.len().max(1));
    for (i, movie) in catalog.movies().iter().enumerate() {
        for genre in &movie.genres {
            if let Some(j) = column(genre) {
                x[(i, j)] = 1.0;
            }
        }
        if let Some(j) = movie.decade().and_then(|d| column(&d)) {
            x[(i, j)] = 1.0;
        }
    }
    let (eigenvalues, components, means) = pca(&x);
    let dim = components_for_variance(&eigenvalues, VARIANCE_KEPT);
    let mut data = Vec::with_capacity(catalog.len() * dim);
    for i in 0..catalog.len() {
        for c in 0..dim {
            let value: f64 = (0..names.len())
                .map(|j| (x[(i, j)] - means[j]) * components[(j, c)])
                .sum();
            data.push(value as f32);
        }
    }
    let total: f64 = eigenvalues.iter().sum();
    let kept: f64 = eigenvalues[..dim].iter().sum();
    Ok(TrainedModel {
        kind: ModelKind::Content,
        embeddings: ItemEmbeddings::new(dim, data)?,
        details: json!({
            "features": names,
            "method": "one-hot genres and decades, PCA",
            "variance_target": VARIANCE_KEPT,
            "components": dim,
            "variance_explained": if total > 0.0 { kept / total } else { 0.0 },
        }),
    })
}
