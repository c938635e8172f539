//! Fitting the models of a model directory from a dataset, with given [`Settings`]: what
//! `train` writes to disk and what offline evaluation scores. Each model is fitted through the
//! [`crate::models::REGISTRY`], in its order. Training chooses the settings on a validation
//! split of its own data first (the tuning in `eval/tune.rs`); each model's `Default` settings are what
//! `train --no-tune` uses, the settings `movierec evaluate` chose on the bundled data
//! (docs/EVALUATION.md).

use crate::catalog::Catalog;
use crate::data::Dataset;
use crate::incremental::Previous;
use crate::interactions::RatingMatrix;
use crate::models::{
    FitInput, Fitted, ModelKind, ModelShape, TrainedLists, TrainedModel, REGISTRY,
};
use crate::Result;
use std::time::Instant;

pub use crate::models::{Settings, DEFAULT_COLLABORATIVE};

/// Everything training learns from a dataset, before indexes are built.
pub struct TrainedModels {
    /// The cleaned catalog (internal movie order).
    pub catalog: Catalog,
    /// The rating matrix in catalog order.
    pub matrix: RatingMatrix,
    /// The embedding models, in registry order: content, svd, als, hybrid.
    pub models: Vec<TrainedModel>,
    /// The neighbour-list models fitted, in registry order: item_knn, ease, similar.
    pub lists: Vec<TrainedLists>,
}

impl TrainedModels {
    /// The embeddings of `kind` (an embedding model).
    pub fn embeddings(&self, kind: ModelKind) -> &crate::embeddings::ItemEmbeddings {
        &self
            .models
            .iter()
            .find(|m| m.kind == kind)
            .unwrap_or_else(|| panic!("{kind} is not an embedding model"))
            .embeddings
    }
}

/// Fits the models of the registry on an in-memory dataset, in registry order: every embedding
/// model (the others read them), and the neighbour-list models `lists` accepts.
pub fn fit(
    dataset: &Dataset,
    settings: &Settings,
    lists: &dyn Fn(ModelKind) -> bool,
) -> Result<TrainedModels> {
    let catalog = Catalog::from_dataset(dataset);
    let matrix = RatingMatrix::build(&catalog, &dataset.ratings);
    fit_built(dataset, catalog, matrix, settings, lists, None)
}

/// What [`fit_into`] starts from: the catalog and matrix, no model yet.
fn unfitted(catalog: Catalog, matrix: RatingMatrix) -> TrainedModels {
    TrainedModels {
        catalog,
        matrix,
        models: Vec::new(),
        lists: Vec::new(),
    }
}

/// [`fit`] from a catalog and rating matrix already built from `dataset` (whose raw ratings are
/// then not read: `train` frees them first), starting from `previous` when given (an
/// incremental training, see [`crate::incremental`]).
pub fn fit_built(
    dataset: &Dataset,
    catalog: Catalog,
    matrix: RatingMatrix,
    settings: &Settings,
    lists: &dyn Fn(ModelKind) -> bool,
    previous: Option<&Previous>,
) -> Result<TrainedModels> {
    let mut trained = unfitted(catalog, matrix);
    fit_into(dataset, settings, &mut trained, &|_| true, lists, previous)?;
    Ok(trained)
}

/// [`fit`] given up as soon as `deadline` passes (checked after the catalog, after the rating
/// matrix and after each model): `None` then. The tuning prepares its validation split this
/// way, so that on a release too large for its time budget it stops early instead of fitting
/// four models that no stage would use.
pub fn fit_before(
    dataset: &Dataset,
    settings: &Settings,
    lists: &dyn Fn(ModelKind) -> bool,
    deadline: Instant,
) -> Result<Option<TrainedModels>> {
    let catalog = Catalog::from_dataset(dataset);
    if Instant::now() >= deadline {
        return Ok(None);
    }
    let matrix = RatingMatrix::build(&catalog, &dataset.ratings);
    let late = std::cell::Cell::new(Instant::now() >= deadline);
    let in_time = || {
        late.set(late.get() || Instant::now() >= deadline);
        !late.get()
    };
    let mut trained = unfitted(catalog, matrix);
    let lists = |kind| in_time() && lists(kind);
    fit_models(
        dataset,
        settings,
        &mut trained,
        &|_| in_time(),
        &lists,
        false,
        None,
    )?;
    Ok((!late.get()).then_some(trained))
}

/// Fits, into `trained` (whose catalog and matrix are `dataset`'s), the embedding models
/// `embeddings` names and then the neighbour-list models `lists` names, in the registry's order;
/// list models read the embeddings `trained` already holds. `train` fits the lists whose
/// settings the tuning chose this way, after the rest. Models start from `previous` when given.
pub fn fit_into(
    dataset: &Dataset,
    settings: &Settings,
    trained: &mut TrainedModels,
    embeddings: &dyn Fn(ModelKind) -> bool,
    lists: &dyn Fn(ModelKind) -> bool,
    previous: Option<&Previous>,
) -> Result<()> {
    fit_models(
        dataset, settings, trained, embeddings, lists, true, previous,
    )
}

/// [`fit_into`]; each model's fit gets a line of its own on a terminal when `lined` (not the
/// tuning's validation split: see [`crate::progress::Stage`]).
fn fit_models(
    dataset: &Dataset,
    settings: &Settings,
    trained: &mut TrainedModels,
    embeddings: &dyn Fn(ModelKind) -> bool,
    lists: &dyn Fn(ModelKind) -> bool,
    lined: bool,
    previous: Option<&Previous>,
) -> Result<()> {
    for model in REGISTRY {
        let wanted = match model.shape() {
            ModelShape::Embeddings => embeddings(model.kind()),
            ModelShape::NeighbourLists => lists(model.kind()),
        };
        if !wanted {
            continue;
        }
        let label = format!("{} model", model.kind());
        let stage = if lined {
            crate::progress::Stage::start(label)
        } else {
            crate::progress::Stage::start_unlined(label)
        };
        let input = FitInput {
            catalog: &trained.catalog,
            matrix: &trained.matrix,
            tags: &dataset.tags,
            genome: dataset.genome.as_ref(),
            settings,
            fitted: &trained.models,
            progress: &stage,
            previous,
        };
        let one = model.fit(&input)?;
        stage.done();
        match one {
            Fitted::Embeddings(m) => trained.models.push(m),
            Fitted::Lists(l) => trained.lists.push(l),
        }
    }
    Ok(())
}

/// Fits the embedding models only (what the tuning's validation split starts from).
pub fn train_models(dataset: &Dataset, settings: &Settings) -> Result<TrainedModels> {
    fit(dataset, settings, &|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fitting_before_a_deadline_gives_up_once_it_passes() {
        let dataset = crate::data::bundled();
        let settings = Settings::default();
        let past = Instant::now();
        let none = fit_before(&dataset, &settings, &|_| true, past).expect("fit");
        assert!(none.is_none(), "a deadline already passed");
        let later = Instant::now() + Duration::from_secs(3600);
        let all = fit_before(&dataset, &settings, &|_| false, later)
            .expect("fit")
            .expect("in time");
        let everything = fit(&dataset, &settings, &|_| false).expect("fit");
        assert_eq!(all.models.len(), everything.models.len());
        assert_eq!(all.models.len(), 4, "content, svd, als, hybrid");
        assert!(all.lists.is_empty());
    }
}
