//! The hybrid model: content and collaborative embeddings blended, so that movies with few or no
//! ratings still get sensible neighbours (cold start) while well-rated movies follow what people
//! rated.
//!
//! Each movie's row is `[√w · content_unit, √(1 − w) · collaborative_unit]`, the two unit rows
//! scaled and concatenated; the cosine of two such rows is `w · cos_content + (1 − w) ·
//! cos_collaborative`. Being an embedding, it works with every index. The weight `w` is chosen by
//! `movierec evaluate` on a validation split.

use super::{ModelKind, TrainedModel};
use crate::embeddings::ItemEmbeddings;
use crate::Result;
use serde_json::json;

/// Content weight chosen by `movierec evaluate` on the bundled data's validation split
/// (docs/EVALUATION.md).
pub const DEFAULT_CONTENT_WEIGHT: f32 = 0.05;

/// The collaborative embedding blended with content, as chosen by `movierec evaluate`.
pub const DEFAULT_BASE: ModelKind = ModelKind::Svd;

/// Blends `content` and `collaborative` (the embeddings of model `base`, rows in the same catalog
/// order) with `content_weight` in `[0, 1]` for the content side.
pub fn blend(
    content: &ItemEmbeddings,
    collaborative: &ItemEmbeddings,
    base: ModelKind,
    content_weight: f32,
) -> Result<TrainedModel> {
    let w = content_weight.clamp(0.0, 1.0);
    let (a, b) = (content.normalized(), collaborative.normalized());
    let (sa, sb) = (w.sqrt(), (1.0 - w).sqrt());
    let dim = a.dim() + b.dim();
    let mut data = Vec::with_capacity(a.len() * dim);
    for i in 0..a.len() {
        data.extend(a.row(i).iter().map(|x| x * sa));
        data.extend(b.row(i).iter().map(|x| x * sb));
    }
    Ok(TrainedModel {
        kind: ModelKind::Hybrid,
        embeddings: ItemEmbeddings::new(dim, data)?,
        details: json!({
            "method": "unit content and collaborative rows, weighted and concatenated",
            "content_weight": w,
            "collaborative_model": base,
            "content_dim": a.dim(),
            "collaborative_dim": b.dim(),
        }),
    })
}

/// The hybrid model in the [`super::REGISTRY`]: it reads the content model and its base.
pub struct Hybrid;

impl super::Model for Hybrid {
    fn kind(&self) -> ModelKind {
        ModelKind::Hybrid
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::Embeddings
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let settings = input.settings;
        let model = blend(
            input.embeddings(ModelKind::Content)?,
            input.embeddings(settings.hybrid_base)?,
            settings.hybrid_base,
            settings.hybrid_weight,
        )?;
        Ok(super::Fitted::Embeddings(model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blend_cosine_is_the_weighted_sum_of_the_two_cosines() {
        let content = ItemEmbeddings::new(2, vec![1.0, 0.0, 0.6, 0.8]).unwrap();
        let collaborative = ItemEmbeddings::new(3, vec![0.0, 2.0, 0.0, 0.0, 0.0, 5.0]).unwrap();
        let hybrid = blend(&content, &collaborative, ModelKind::Svd, 0.25)
            .unwrap()
            .embeddings;
        assert_eq!(hybrid.dim(), 5);
        let dot: f32 = hybrid
            .row(0)
            .iter()
            .zip(hybrid.row(1))
            .map(|(x, y)| x * y)
            .sum();
        // 0.25 · 0.6 + 0.75 · 0.
        assert!((dot - 0.15).abs() < 1e-6, "{dot}");
        let norm: f32 = hybrid.row(1).iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-6);
    }
}
