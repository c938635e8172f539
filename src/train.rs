//! The training pipeline: MovieLens directory → catalog → models → indexes → model directory.

use crate::artifact::{
    self, DatasetInfo, ExplanationsEntry, IndexEntry, ListsEntry, Manifest, ModelEntry, ModelFiles,
    PersonalEntry, CATALOG_FILE, FORMAT_NAME, FORMAT_VERSION,
};
use crate::catalog::Catalog;
use crate::data;
use crate::eval::tune;
pub use crate::fit::{fit, Settings, TrainedModels, DEFAULT_COLLABORATIVE};
use crate::index::{
    recall_at_k, ExactIndex, ForestIndex, ForestParams, HnswIndex, HnswParams, IndexKind, Metric,
};
use crate::interactions::UserHistories;
use crate::models::item_knn;
use crate::models::{projection, ModelKind, TrainedModel};
use crate::storage::section_file::SectionWriter;
use crate::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many movies (at most) are used as queries when measuring an index's recall at build time.
/// 500 queries × 10 neighbours put the standard error of a recall near 0.95 at about 0.003.
pub const RECALL_SAMPLE: usize = 500;
/// The recall@10 that training raises the search-time knobs towards (`ef_search` of HNSW,
/// `search_k` of the forest) when they were not given: doubling each, measured on the sample,
/// up to [`MAX_EF_SEARCH`] and a quarter of the catalog. The defaults reach it on the bundled
/// data; at ml-latest's size, 128-dimensional rows need wider searches.
pub const RECALL_TARGET: f32 = 0.95;
/// The widest `ef_search` training raises HNSW to.
pub const MAX_EF_SEARCH: usize = 512;

/// File name of the user histories in a model directory.
pub const USERS_FILE: &str = "users.ratings";

/// The neighbour lists whose entries explanations count co-likes on.
pub const EXPLANATION_LISTS: ModelKind = ModelKind::ItemKnn;
/// The rating from which a user "liked" a movie, for explanations (4 of 5 stars).
pub const LIKED_RATING: f32 = 4.0;
pub use crate::models::item_knn::{CO_LIKES_FILE, CO_LIKES_MAGIC};

/// Options for [`train`].
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Parameters of the Annoy-style forest.
    pub forest: ForestParams,
    /// Parameters of the HNSW graph.
    pub hnsw: HnswParams,
    /// How the release is loaded (strictness, progress bar, summary on stderr).
    pub load: data::LoadOptions,
    /// Keep `forest.search_k` as given (by default it is raised towards [`RECALL_TARGET`]).
    pub fixed_search_k: bool,
    /// Keep `hnsw.ef_search` as given (by default it is raised towards [`RECALL_TARGET`]).
    pub fixed_ef_search: bool,
    /// Choose the settings on a validation split of the data first, within this time budget
    /// ([`tune::tune`]); `None` trains with the defaults of [`crate::fit`] (`--no-tune`).
    pub tune_budget: Option<Duration>,
}

/// The default `--tune-budget`. A stage starts only while the budget lasts, so on the bundled
/// data on two cores this tunes "fans also liked" (its stage takes 1.5–3.3 s there) and "more
/// like this" only when that stage ended before the 3 s mark; a larger release tunes what fits,
/// in the order of [`tune`]. `--tune-budget 0` tunes nothing but still reports the validation
/// split; `--no-tune` skips it.
pub const DEFAULT_TUNE_BUDGET: Duration = Duration::from_secs(3);

/// Trains every model on the MovieLens release in `data_dir` and writes the model directory
/// `out_dir` atomically. Returns the manifest that was written.
pub fn train(data_dir: &Path, out_dir: &Path, options: &TrainOptions) -> Result<Manifest> {
    let started = Instant::now();
    let stage = Instant::now();
    let dataset = data::load_with(data_dir, &options.load)?;
    tracing::info!("loaded {} in {:.2?}", data_dir.display(), stage.elapsed());
    let (settings, tuning) = match options.tune_budget {
        Some(budget) => {
            let all = |_| true;
            let tuning = tune::tune(&dataset, &dataset.ratings, &all, Some(budget))?;
            (tuning.settings, Some(tuning))
        }
        None => (Settings::default(), None),
    };
    let TrainedModels {
        catalog,
        matrix,
        models: trained,
        lists,
    } = fit(&dataset, &settings, &|_| true)?;

    let mut files: ModelFiles = vec![(
        CATALOG_FILE.to_string(),
        serde_json::to_vec(catalog.movies()).expect("catalog serialises"),
    )];
    let mut models = BTreeMap::new();
    for model in trained {
        let stage = Instant::now();
        let (entry, model_files) = build_model_files(&model, &catalog, options);
        tracing::info!(
            "{} indexes and projection in {:.2?}",
            model.kind,
            stage.elapsed()
        );
        files.extend(model_files);
        models.insert(model.kind, entry);
    }
    let mut neighbour_lists = BTreeMap::new();
    let stage = Instant::now();
    let explained = lists
        .iter()
        .find(|l| l.kind == EXPLANATION_LISTS)
        .expect("the explanation lists are trained");
    let counts = item_knn::co_likes(&matrix, &explained.lists, LIKED_RATING);
    let mut w = SectionWriter::new(CO_LIKES_MAGIC, 1);
    w.add("counts", &counts);
    files.push((CO_LIKES_FILE.to_string(), w.finish()));
    tracing::info!("co-like counts in {:.2?}", stage.elapsed());
    let explanations = ExplanationsEntry {
        lists: EXPLANATION_LISTS,
        file: CO_LIKES_FILE.to_string(),
        liked_rating: LIKED_RATING,
    };
    for model in lists {
        let file = format!("{}.neighbours", model.kind);
        files.push((file.clone(), model.lists.to_bytes()));
        neighbour_lists.insert(
            model.kind,
            ListsEntry {
                file,
                neighbours: model.neighbours,
                details: model.details,
            },
        );
    }
    let users = UserHistories::from_matrix(&matrix);
    files.push((USERS_FILE.to_string(), users.to_bytes()));
    let personal = PersonalEntry {
        model: settings.personal_model,
        users_file: USERS_FILE.to_string(),
        scoring: settings.personal,
        users: users.user_ids.len(),
    };
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        movierec_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: crate::clock::now_rfc3339(),
        training_seconds: started.elapsed().as_secs_f64(),
        dataset: DatasetInfo {
            path: data_dir.display().to_string(),
            fingerprint: dataset.fingerprint.clone(),
            movies: catalog.len(),
            ratings: matrix.nnz(),
            users: matrix.n_users(),
            tags: dataset.tags.len(),
        },
        models,
        neighbour_lists,
        explanations,
        default_collaborative: DEFAULT_COLLABORATIVE,
        personal,
        // Through text, so that f32 settings read as written (0.35, not 0.3499999940395355).
        tuning: serde_json::from_str(&serde_json::to_string(&tuning).expect("serialisable"))
            .expect("JSON just written"),
        files: BTreeMap::new(),
    };
    let stage = Instant::now();
    artifact::save(out_dir, manifest.clone(), files)?;
    tracing::info!("saved {} in {:.2?}", out_dir.display(), stage.elapsed());
    artifact::load(out_dir).map(|saved| saved.manifest)
}

/// Builds the indexes and projection of one model and encodes its files.
fn build_model_files(
    model: &TrainedModel,
    catalog: &Catalog,
    options: &TrainOptions,
) -> (ModelEntry, ModelFiles) {
    let name = model.kind.as_str();
    let embeddings = &model.embeddings;
    let exact = ExactIndex::build(embeddings, Metric::Cosine);
    let mut forest = ForestIndex::build(embeddings, Metric::Cosine, options.forest);
    let mut hnsw = HnswIndex::build(embeddings, Metric::Cosine, options.hnsw);
    let step = (catalog.len() / RECALL_SAMPLE).max(1);
    let sample: Vec<u32> = (0..catalog.len() as u32).step_by(step).collect();
    let recalls = recall_at_k(&exact, &[&forest, &hnsw], &sample, 10);
    let (mut recall, mut hnsw_recall) = (recalls[0], recalls[1]);
    if !options.fixed_ef_search {
        while hnsw_recall < RECALL_TARGET && hnsw.params().ef_search < MAX_EF_SEARCH {
            hnsw.set_ef_search((hnsw.params().ef_search * 2).min(MAX_EF_SEARCH));
            hnsw_recall = recall_at_k(&exact, &[&hnsw], &sample, 10)[0];
        }
    }
    let widest_search_k = catalog.len() / 4;
    while let Some(search_k) = forest.params().search_k {
        if options.fixed_search_k || recall >= RECALL_TARGET || search_k >= widest_search_k {
            break;
        }
        forest.set_search_k(Some((search_k * 2).min(widest_search_k)));
        recall = recall_at_k(&exact, &[&forest], &sample, 10)[0];
    }
    tracing::info!(
        "{name}: recall@10 annoy {recall:.3} (search_k {:?}), hnsw {hnsw_recall:.3} (ef_search {})",
        forest.params().search_k,
        hnsw.params().ef_search
    );
    let projection = projection::project_2d(embeddings);

    let embeddings_file = format!("{name}.embeddings");
    let projection_file = format!("{name}.projection");
    let exact_file = format!("{name}.exact");
    let annoy_file = format!("{name}.annoy");
    let hnsw_file = format!("{name}.hnsw");
    let files = vec![
        (
            embeddings_file.clone(),
            artifact::encode_matrix(embeddings.len(), embeddings.dim(), embeddings.as_slice()),
        ),
        (
            projection_file.clone(),
            artifact::encode_matrix(catalog.len(), 2, &projection),
        ),
        (exact_file.clone(), exact.to_bytes()),
        (annoy_file.clone(), forest.to_bytes()),
        (hnsw_file.clone(), hnsw.to_bytes()),
    ];
    let indexes = BTreeMap::from([
        (
            IndexKind::Exact,
            IndexEntry {
                file: Some(exact_file),
                params: serde_json::json!({"metric": Metric::Cosine}),
                recall_at_10: 1.0,
            },
        ),
        (
            IndexKind::Annoy,
            IndexEntry {
                file: Some(annoy_file),
                params: serde_json::json!({"metric": Metric::Cosine, "forest": forest.params()}),
                recall_at_10: recall,
            },
        ),
        (
            IndexKind::Hnsw,
            IndexEntry {
                file: Some(hnsw_file),
                params: serde_json::json!({"metric": Metric::Cosine, "hnsw": hnsw.params()}),
                recall_at_10: hnsw_recall,
            },
        ),
    ]);
    let entry = ModelEntry {
        dim: embeddings.dim(),
        details: model.details.clone(),
        embeddings_file,
        projection_file,
        indexes,
    };
    (entry, files)
}
