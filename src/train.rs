//! The training pipeline: MovieLens directory → catalog → models → indexes → model directory.

use crate::artifact::section_file::SectionWriter;
use crate::artifact::{
    self, DatasetInfo, ExplanationsEntry, IndexEntry, ListsEntry, Manifest, ModelEntry, ModelFiles,
    PersonalEntry, CATALOG_FILE, FORMAT_NAME, FORMAT_VERSION,
};
use crate::catalog::Catalog;
use crate::data::{self, Dataset};
use crate::index::{
    recall_at_k, ExactIndex, ForestIndex, ForestParams, HnswIndex, HnswParams, IndexKind, Metric,
};
use crate::interactions::{RatingMatrix, UserHistories};
use crate::models::als::{self, AlsParams};
use crate::models::ease::{self, EaseParams};
use crate::models::item_knn::{self, ItemKnnParams, Weighting};
use crate::models::personal::PersonalParams;
use crate::models::similar::{self, SimilarParams};
use crate::models::{content, hybrid, projection, svd, ModelKind, TrainedLists, TrainedModel};
use crate::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

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

/// The item-kNN model: the parameters `movierec evaluate` chose on the bundled data's validation
/// split (docs/EVALUATION.md), with 100 neighbours per movie kept for scoring users.
pub const ITEM_KNN: ItemKnnParams = ItemKnnParams {
    weighting: Weighting::Rating,
    neighbours: item_knn::DEFAULT_NEIGHBOURS,
    half_life: Some(100.0),
    popularity_exponent: 0.6,
    backward_weight: 0.5,
};

/// The EASE model: λ as chosen by `movierec evaluate` (docs/EVALUATION.md).
pub const EASE: EaseParams = EaseParams {
    lambda: 500.0,
    max_items: 3_000,
    neighbours: item_knn::DEFAULT_NEIGHBOURS,
};

/// The ALS model: the setting `movierec evaluate` chose (docs/EVALUATION.md).
pub const ALS: AlsParams = AlsParams {
    factors: 32,
    iterations: 15,
    regularization: 0.01,
    alpha: 1.0,
    cg_steps: 3,
    seed: 42,
};

/// Weight of the tags beside genres and decade in the content model, as chosen by
/// `movierec evaluate` (docs/EVALUATION.md).
pub const CONTENT_TAG_WEIGHT: f64 = 2.0;

/// The model `collaborative` stands for: the best item-to-item model of `movierec evaluate`.
pub const DEFAULT_COLLABORATIVE: ModelKind = ModelKind::ItemKnn;

/// The collaborative embedding the hybrid blends with content, as chosen by `movierec evaluate`.
pub const HYBRID_BASE: ModelKind = ModelKind::Svd;

/// The neighbour lists that score users, as chosen by `movierec evaluate`.
pub const PERSONAL_MODEL: ModelKind = ModelKind::ItemKnn;

/// How a user's history is scored, as chosen by `movierec evaluate` (docs/EVALUATION.md). The
/// balance is the most balanced setting within one standard error of the best on validation
/// per-user NDCG@10: γ 0.95 scored 0.1175 against 0.1189 unbalanced (standard error of the
/// per-user difference 0.0018); γ 0.9 0.1163 (0.0023) and 0.8 0.1107 (0.0027) fell outside, and
/// normalised lists cost 0.005 (0.1138). On the test split per-user Recall@10 / NDCG@10 went from
/// 0.1082 / 0.0942 to 0.1088 / 0.0936.
pub const PERSONAL_SCORING: PersonalParams = PersonalParams {
    pivot: 0.0,
    recency_half_life: Some(10.0),
    balance: 0.95,
    normalise: false,
};

/// File name of the user histories in a model directory.
pub const USERS_FILE: &str = "users.ratings";

/// The neighbour lists whose entries explanations count co-likes on.
pub const EXPLANATION_LISTS: ModelKind = ModelKind::ItemKnn;
/// The rating from which a user "liked" a movie, for explanations (4 of 5 stars).
pub const LIKED_RATING: f32 = 4.0;
/// The file of the co-like counts.
pub const CO_LIKES_FILE: &str = "item_knn.colikes";
/// Its section-file kind.
pub const CO_LIKES_MAGIC: &[u8; 8] = b"MRCOLIKE";

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
}

/// Trains every model on the MovieLens release in `data_dir` and writes the model directory
/// `out_dir` atomically. Returns the manifest that was written.
pub fn train(data_dir: &Path, out_dir: &Path, options: &TrainOptions) -> Result<Manifest> {
    let started = Instant::now();
    let stage = Instant::now();
    let dataset = data::load_with(data_dir, &options.load)?;
    tracing::info!("loaded {} in {:.2?}", data_dir.display(), stage.elapsed());
    let models = train_models(&dataset)?;
    let mut lists = train_lists(&models.matrix)?;
    lists.push(train_similar(&models, SimilarParams::default())?);
    let TrainedModels {
        catalog,
        matrix,
        models: trained,
    } = models;

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
        model: PERSONAL_MODEL,
        users_file: USERS_FILE.to_string(),
        scoring: PERSONAL_SCORING,
        users: users.user_ids.len(),
    };
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        movierec_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: now_rfc3339(),
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
        files: BTreeMap::new(),
    };
    let stage = Instant::now();
    artifact::save(out_dir, manifest.clone(), files)?;
    tracing::info!("saved {} in {:.2?}", out_dir.display(), stage.elapsed());
    artifact::load(out_dir).map(|saved| saved.manifest)
}

/// Everything training learns from a dataset, before indexes are built.
pub struct TrainedModels {
    /// The cleaned catalog (internal movie order).
    pub catalog: Catalog,
    /// The rating matrix in catalog order.
    pub matrix: RatingMatrix,
    /// The embedding models: content, svd, als, hybrid.
    pub models: Vec<TrainedModel>,
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

/// Trains the embedding models on an in-memory dataset (used by `train` and by offline
/// evaluation, which builds the neighbour lists itself with the settings it tries).
pub fn train_models(dataset: &Dataset) -> Result<TrainedModels> {
    let catalog = Catalog::from_dataset(dataset);
    let matrix = RatingMatrix::build(&catalog, &dataset.ratings);
    let timed = |name: &str, stage: Instant| tracing::info!("{name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let content = content::train(
        &catalog,
        &dataset.tags,
        dataset.genome.as_ref(),
        CONTENT_TAG_WEIGHT,
    )?;
    timed("content model", stage);
    let stage = Instant::now();
    let svd = svd::train(&matrix, &content.embeddings)?;
    timed("SVD model", stage);
    let stage = Instant::now();
    let als = als::train_embeddings(&matrix, &content.embeddings, &ALS)?;
    timed("ALS model", stage);
    let base = if HYBRID_BASE == ModelKind::Als {
        &als
    } else {
        &svd
    };
    let hybrid = hybrid::blend(
        &content.embeddings,
        &base.embeddings,
        HYBRID_BASE,
        hybrid::DEFAULT_CONTENT_WEIGHT,
    )?;
    Ok(TrainedModels {
        catalog,
        matrix,
        models: vec![content, svd, als, hybrid],
    })
}

/// Trains the neighbour-list models (item-kNN and EASE) on the rating matrix.
pub fn train_lists(matrix: &RatingMatrix) -> Result<Vec<TrainedLists>> {
    let timed = |name: &str, stage: Instant| tracing::info!("{name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let knn = TrainedLists {
        kind: ModelKind::ItemKnn,
        lists: item_knn::build(matrix, &ITEM_KNN),
        neighbours: ITEM_KNN.neighbours,
        details: serde_json::json!({
            "method": "item-kNN on co-occurrence",
            "params": ITEM_KNN,
        }),
    };
    timed("item-kNN lists", stage);
    let stage = Instant::now();
    let ease = ease::train(matrix, &EASE)?;
    timed("EASE model", stage);
    let ease = TrainedLists {
        kind: ModelKind::Ease,
        lists: ease.lists,
        neighbours: EASE.neighbours,
        details: serde_json::json!({
            "method": "EASE (closed form) on the binary rating matrix",
            "params": EASE,
            "covered_movies": ease.covered,
        }),
    };
    Ok(vec![knn, ease])
}

/// Trains the "more like this" lists (see [`similar`]) from the content and collaborative
/// embeddings of `models`.
pub fn train_similar(models: &TrainedModels, params: SimilarParams) -> Result<TrainedLists> {
    let stage = Instant::now();
    let lists = similar::build(
        &models.catalog,
        models.embeddings(ModelKind::Content),
        models.embeddings(params.collaborative),
        params,
    )?;
    tracing::info!("more-like-this lists in {:.2?}", stage.elapsed());
    Ok(TrainedLists {
        kind: ModelKind::Similar,
        lists,
        neighbours: params.neighbours,
        details: serde_json::json!({
            "method": "content and collaborative cosines blended, shrunk by confidence, same franchise first",
            "params": params,
        }),
    })
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

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
