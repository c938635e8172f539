//! The training pipeline: MovieLens directory → catalog → models → indexes → model directory.

use crate::artifact::{
    self, DatasetInfo, ExplanationsEntry, IndexEntry, ListsEntry, Manifest, ModelEntry,
    PersonalEntry, Staging, CATALOG_FILE, CO_LIKES_FILE, FORMAT_NAME, FORMAT_VERSION, USERS_FILE,
};
use crate::catalog::Catalog;
use crate::data;
use crate::eval::tune;
pub use crate::fit::{fit, Settings, TrainedModels, DEFAULT_COLLABORATIVE};
use crate::index::backend::{BuildOptions, APPROXIMATE};
pub use crate::index::backend::{MAX_EF_SEARCH, RECALL_TARGET};
use crate::index::{ExactIndex, ForestParams, HnswParams, IndexKind, Metric, RecallTruth};
use crate::interactions::UserHistories;
use crate::models::item_knn;
use crate::models::{projection, ModelKind, TrainedModel};
use crate::progress::Stage;
use crate::storage::section_file::SectionWriter;
use crate::Result;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How many movies (at most) are used as queries when measuring an index's recall at build time.
/// 500 queries × 10 neighbours put the standard error of a recall near 0.95 at about 0.003.
pub const RECALL_SAMPLE: usize = 500;

/// The neighbour lists whose entries explanations count co-likes on.
pub const EXPLANATION_LISTS: ModelKind = ModelKind::ItemKnn;
/// The rating from which a user "liked" a movie, for explanations (4 of 5 stars).
pub const LIKED_RATING: f32 = 4.0;
pub use crate::models::item_knn::CO_LIKES_MAGIC;

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
    /// Start from this previous model directory (`--incremental`, see [`crate::incremental`]):
    /// its settings, no tuning; a full training, with the reason on stderr, when it cannot be
    /// started from.
    pub incremental: Option<std::path::PathBuf>,
}

/// How many times the whole release's rating matrix the tuning's validation split takes to
/// prepare, at least: its own matrix of nine tenths of the ratings, then four models fitted on
/// it. Measured: 12.6 times on the bundled data (443 ms against 35 ms), and at ml-latest's size
/// not finished at 3.3 times (3.7 s against 1.1 s, stopped by the budget; two of its four
/// models, SVD and ALS, take over 20 times the whole matrix there when fitted on all of it).
/// `train` does not start a tuning whose budget this many matrices would use up.
const PREPARATION_PER_MATRIX: f64 = 8.0;

/// The default `--tune-budget`. A stage starts only while the budget lasts; "fans also liked"
/// and "more like this" start together, so on the bundled data on two cores both are tuned
/// (about 3.6 s side by side, beside the embedding models' build) and the later stages are not;
/// a larger release tunes what fits, in the order of [`tune`]. `--tune-budget 0` tunes nothing
/// but still reports the validation split; `--no-tune` skips it.
pub const DEFAULT_TUNE_BUDGET: Duration = Duration::from_secs(3);

/// Trains every model on the MovieLens release in `data_dir` and writes the model directory
/// `out_dir` atomically. Returns the manifest that was written.
pub fn train(data_dir: &Path, out_dir: &Path, options: &TrainOptions) -> Result<Manifest> {
    let started = Instant::now();
    let stage = Instant::now();
    let mut dataset = data::load_with(data_dir, &options.load)?;
    tracing::info!(
        "loaded {} in {:.2?}{}",
        data_dir.display(),
        stage.elapsed(),
        crate::progress::memory_note()
    );
    // Each file is written into the model directory's temporary sibling as soon as it is made
    // (and its bytes dropped), rather than all at the end: at ml-latest's size the files are
    // 1.1 GB, which holding them until saving added to the peak memory. A `--out` that cannot be
    // written is refused here, before the training.
    let staging = Staging::begin(out_dir)?;
    let defaults = Settings::default();
    let mut stages = BTreeMap::from([("load".to_string(), stage.elapsed().as_secs_f64())]);
    // On a terminal, a line per stage from here on: running, then its time and the memory after.
    let _lines = crate::progress::StageLines::show(options.load.progress);
    // The catalog and rating matrix first: then the raw ratings (16 bytes each, 540 MB at
    // ml-latest's size) are read only by the tuning, which frees them when it is done, and not
    // at all without it, so they are gone before the models' largest buffers are.
    let matrix_stage = Stage::start("catalog and rating matrix");
    let catalog = Catalog::from_dataset(&dataset);
    let matrix = crate::interactions::RatingMatrix::build(&catalog, &dataset.ratings);
    let ratings = std::mem::take(&mut dataset.ratings);
    let matrix_seconds = matrix_stage.done().as_secs_f64();
    let (previous, mut incremental) = match &options.incremental {
        None => (None, serde_json::Value::Null),
        Some(from) => {
            let stage = Stage::start(format!("comparing with {}", from.display()));
            let opened = crate::incremental::open(from, &catalog, &matrix)?;
            stages.insert("compare".to_string(), stage.done().as_secs_f64());
            match opened {
                Ok(previous) => {
                    let record = serde_json::json!({
                        "from": from.display().to_string(),
                        "incremental": true,
                        "chain": previous.chain + 1,
                        "delta": previous.changes.delta,
                    });
                    (Some(previous), record)
                }
                Err(reason) => {
                    eprintln!(
                        "movierec: training in full, not incrementally from {}: {reason}",
                        from.display()
                    );
                    let record = serde_json::json!({
                        "from": from.display().to_string(),
                        "incremental": false,
                        "reason": reason,
                    });
                    (None, record)
                }
            }
        }
    };
    let previous = previous.as_ref();
    // What the default settings give for the embedding models (with their indexes) and EASE is
    // built while the tuning runs: the tuning reaches their stages last, so within the default
    // budget it keeps their defaults and this work is kept; when it does tune them, they are
    // built again below. The two halves share the cores (each is parallel inside), which fills
    // the moments one of them runs on a single thread.
    let timed = |f: Box<dyn FnOnce() -> Result<Early> + Send + '_>| {
        let begun = Instant::now();
        f().map(|early| (early, begun.elapsed().as_secs_f64()))
    };
    let tune_budget = options.tune_budget.filter(|_| previous.is_none());
    let (tuning, (early, early_seconds)) = match tune_budget {
        // The validation split's preparation builds a matrix of nine tenths of these ratings and
        // fits four models on it: [`PREPARATION_PER_MATRIX`] times the whole matrix's time or
        // more. When that is past the budget the split cannot be prepared within it, and
        // starting would only hold a second copy of the ratings beside the models being built
        // (at ml-latest's size, a matrix built in 1.1 s of a 3 s budget started it: 3.7 s spent
        // on a split that tuned nothing, and the run's peak went from 1.9 to 3.0 GB).
        Some(budget) if PREPARATION_PER_MATRIX * matrix_seconds >= budget.as_secs_f64() => {
            drop(ratings);
            let reason = format!(
                "the time budget ({:.1} s) is shorter than {PREPARATION_PER_MATRIX} times the \
                 time building the rating matrix took ({matrix_seconds:.1} s): the validation \
                 split (a matrix of nine tenths of the ratings, then four models fitted on it) \
                 could not be prepared within it",
                budget.as_secs_f64()
            );
            let tuning = tune::not_run(defaults, budget, &reason, &|_| true);
            stages.insert("tune".to_string(), 0.0);
            let build = || {
                Early::build(
                    &dataset, catalog, matrix, &defaults, options, &staging, None,
                )
            };
            (Some(tuning), timed(Box::new(build))?)
        }
        Some(budget) => {
            let all = |_| true;
            let (dataset, staging) = (&dataset, &staging);
            let (tuning, early) = rayon::join(
                move || {
                    let stage = Stage::start("tuning on a validation split");
                    let tuning = tune::tune(dataset, &ratings, &all, Some(budget));
                    let seconds = stage.done().as_secs_f64();
                    drop(ratings);
                    tuning.map(|t| (t, seconds))
                },
                || {
                    timed(Box::new(|| {
                        Early::build(dataset, catalog, matrix, &defaults, options, staging, None)
                    }))
                },
            );
            let (tuning, seconds) = tuning?;
            stages.insert("tune".to_string(), seconds);
            (Some(tuning), early?)
        }
        None => {
            drop(ratings);
            // An incremental training keeps the settings it starts from.
            let settings = previous.map_or(defaults, |p| p.settings);
            let build = || {
                Early::build(
                    &dataset, catalog, matrix, &settings, options, &staging, previous,
                )
            };
            (None, timed(Box::new(build))?)
        }
    };
    let settings = match (&tuning, previous) {
        (Some(t), _) => t.settings,
        (None, Some(p)) => p.settings,
        (None, None) => defaults,
    };
    // What the early models were built with: the defaults, or an incremental training's.
    let early_settings = previous.map_or(defaults, |p| p.settings);
    let (
        Early {
            trained: mut fitted,
            entries: model_entries,
        },
        early_seconds,
    ) = if settings.same_embeddings(&early_settings) && settings.ease == early_settings.ease {
        (early, early_seconds)
    } else {
        // Built again on the same catalog and matrix, with the tuned settings (their files
        // replace those written).
        let TrainedModels {
            catalog, matrix, ..
        } = early.trained;
        let build = || {
            Early::build(
                &dataset, catalog, matrix, &settings, options, &staging, None,
            )
        };
        let (early, again) = timed(Box::new(build))?;
        (early, early_seconds + again)
    };
    stages.insert("embeddings".to_string(), early_seconds);
    // The lists whose settings the tuning chose.
    let stage = Instant::now();
    crate::fit::fit_into(
        &dataset,
        &settings,
        &mut fitted,
        &|_| false,
        &|kind| !EARLY_LISTS.contains(&kind),
        previous,
    )?;
    if let (Some(record), Some(_)) = (incremental.as_object_mut(), previous) {
        for (kind, key, field) in [
            (ModelKind::ItemKnn, "item_knn", "incremental"),
            (
                ModelKind::ItemKnn,
                "item_knn_lists_changed",
                "lists_changed",
            ),
            (ModelKind::Similar, "similar", "incremental"),
            (ModelKind::Similar, "similar_moved_movies", "moved_movies"),
        ] {
            let lists = fitted.lists.iter().find(|l| l.kind == kind);
            let value = lists.and_then(|l| l.details.get(field).cloned());
            record.insert(key.into(), value.unwrap_or_default());
        }
        let reused = fitted
            .models
            .iter()
            .any(|m| reused_content(m, previous).is_some());
        record.insert("content_reused".into(), reused.into());
    }
    stages.insert("lists".to_string(), stage.elapsed().as_secs_f64());
    let TrainedModels {
        catalog,
        matrix,
        models: _,
        lists,
    } = fitted;

    staging.write(
        CATALOG_FILE,
        &serde_json::to_vec(catalog.movies()).expect("catalog serialises"),
    )?;
    let models: BTreeMap<ModelKind, ModelEntry> = model_entries.into_iter().collect();
    let stage = Instant::now();
    // What the manifest needs of the matrix.
    let (ratings, users_in_matrix) = (matrix.nnz(), matrix.n_users());
    // The co-like counts (on all cores) beside the user histories (their transpose and the
    // writing of their 400 MB at ml-latest's size run on one). Not in an incremental training:
    // it still holds the previous model's lists and the changed users' histories, and both at
    // once took its peak from 2.29 to 2.53 GB at ml-latest's size (docs/BENCHMARKS.md).
    let explained = || -> Result<_> {
        let co_likes = Stage::start("co-like counts");
        let explained = lists
            .iter()
            .find(|l| l.kind == EXPLANATION_LISTS)
            .expect("the explanation lists are trained");
        // An incremental training updates the previous counts by the likes that changed.
        let before =
            previous.and_then(|p| Some((p.lists(EXPLANATION_LISTS)?, p.co_likes.as_ref()?)));
        let (counts, how) = match (before, previous) {
            (Some((lists, counts)), Some(previous)) if lists.len() == explained.lists.len() => {
                let counts = item_knn::co_likes_updated(
                    &matrix,
                    &explained.lists,
                    LIKED_RATING,
                    lists,
                    counts,
                    &previous.changes.histories,
                );
                (counts, "updated")
            }
            _ => {
                let counts = item_knn::co_likes(&matrix, &explained.lists, LIKED_RATING);
                (counts, "counted")
            }
        };
        let mut w = SectionWriter::new(CO_LIKES_MAGIC, 1);
        w.add("counts", &counts);
        staging.write_sections(CO_LIKES_FILE, &w)?;
        co_likes.done();
        let mut neighbour_lists = BTreeMap::new();
        for model in lists {
            let file = artifact::lists_file(model.kind);
            let mut sections = model.lists.sections();
            if let Some(floors) = &model.pool_floors {
                sections.add(item_knn::POOL_FLOORS_SECTION, floors);
            }
            staging.write_sections(&file, &sections)?;
            neighbour_lists.insert(
                model.kind,
                ListsEntry {
                    file,
                    neighbours: model.neighbours,
                    details: model.details,
                },
            );
        }
        Ok((neighbour_lists, how))
    };
    let histories = || -> Result<usize> {
        let users_stage = Stage::start("user histories");
        let users = UserHistories::from_matrix(&matrix);
        staging.write_sections(USERS_FILE, &users.sections())?;
        let n_users = users.user_ids.len();
        drop(users);
        users_stage.done();
        Ok(n_users)
    };
    let (explained_files, n_users) = match previous {
        None => rayon::join(explained, histories),
        Some(_) => (explained(), histories()),
    };
    drop(matrix);
    let (neighbour_lists, how) = explained_files?;
    let n_users = n_users?;
    if let (Some(record), Some(_)) = (incremental.as_object_mut(), previous) {
        record.insert("co_likes".into(), how.into());
    }
    let explanations = ExplanationsEntry {
        lists: EXPLANATION_LISTS,
        file: CO_LIKES_FILE.to_string(),
        liked_rating: LIKED_RATING,
    };
    let (fingerprint, tags) = (dataset.fingerprint.clone(), dataset.tags.len());
    drop(dataset);
    stages.insert("explanations".to_string(), stage.elapsed().as_secs_f64());
    let personal = PersonalEntry {
        model: settings.personal_model,
        users_file: USERS_FILE.to_string(),
        scoring: settings.personal,
        users: n_users,
    };
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        movierec_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: crate::clock::now_rfc3339(),
        training_seconds: started.elapsed().as_secs_f64(),
        dataset: DatasetInfo {
            path: data_dir.display().to_string(),
            fingerprint,
            movies: catalog.len(),
            ratings,
            users: users_in_matrix,
            tags,
        },
        models,
        neighbour_lists,
        explanations,
        default_collaborative: DEFAULT_COLLABORATIVE,
        personal,
        // Through text, so that f32 settings read as written (0.35, not 0.3499999940395355).
        // An incremental training records the tuning of the training it started from, whose
        // settings it kept.
        tuning: match previous.and_then(|p| p.source.as_ref()) {
            Some((_, saved)) if tuning.is_none() => saved.manifest.tuning.clone(),
            _ => serde_json::from_str(&serde_json::to_string(&tuning).expect("serialisable"))
                .expect("JSON just written"),
        },
        incremental,
        stages,
        peak_memory_bytes: crate::progress::peak_resident_bytes(),
        files: BTreeMap::new(),
    };
    let publishing = Stage::start(format!("publishing {}", out_dir.display()));
    staging.publish(manifest)?;
    publishing.done();
    artifact::load(out_dir).map(|saved| saved.manifest)
}

/// The neighbour-list models built with the embedding models, before the tuning has chosen:
/// those it tunes last (see [`train`]).
const EARLY_LISTS: [ModelKind; 1] = [ModelKind::Ease];

/// The embedding models with their manifest entries (their files are written), and the lists
/// of [`EARLY_LISTS`].
struct Early {
    trained: TrainedModels,
    entries: Vec<(ModelKind, ModelEntry)>,
}

impl Early {
    fn build(
        dataset: &data::Dataset,
        catalog: Catalog,
        matrix: crate::interactions::RatingMatrix,
        settings: &Settings,
        options: &TrainOptions,
        staging: &Staging,
        previous: Option<&crate::incremental::Previous>,
    ) -> Result<Early> {
        let trained = crate::fit::fit_built(
            dataset,
            catalog,
            matrix,
            settings,
            &|kind| EARLY_LISTS.contains(&kind),
            previous,
        )?;
        let entries = trained
            .models
            .iter()
            .map(|model| {
                let copied = reused_content(model, previous)
                    .filter(|(_, saved)| same_index_options(saved, model.kind, options));
                if let Some((dir, saved)) = copied {
                    let stage = Stage::start(format!("{} files copied", model.kind));
                    let entry = copy_model_files(model.kind, dir, saved, staging)?;
                    stage.done();
                    return Ok((model.kind, entry));
                }
                let stage = Stage::start(format!("{} indexes and projection", model.kind));
                let entry = build_model_files(model, &trained.catalog, options, staging)?;
                stage.done();
                Ok((model.kind, entry))
            })
            .collect::<Result<_>>()?;
        Ok(Early { trained, entries })
    }
}

/// The directory and files of `previous` when `model` is its content model kept as it was
/// (what it reads unchanged): its files can be copied rather than built again.
fn reused_content<'a>(
    model: &TrainedModel,
    previous: Option<&'a crate::incremental::Previous>,
) -> Option<(&'a Path, &'a artifact::SavedModel)> {
    let previous = previous?;
    let key = crate::models::content::INPUTS_KEY;
    let before = previous.model(ModelKind::Content)?.details.get(key)?;
    let (dir, saved) = previous.source.as_ref()?;
    (model.kind == ModelKind::Content && model.details.get(key) == Some(before))
        .then_some((dir.as_path(), saved))
}

/// Whether the indexes of model `kind` in `saved` were built with the index options of
/// `options` (trees, links, beam widths, seeds, and the search widths when they are given): then
/// the same rows give the same indexes, and its files can be copied.
fn same_index_options(
    saved: &artifact::SavedModel,
    kind: ModelKind,
    options: &TrainOptions,
) -> bool {
    let Some(entry) = saved.manifest.models.get(&kind) else {
        return false;
    };
    let param = |index: IndexKind, group: &str, name: &str| {
        let params = &entry.indexes.get(&index)?.params;
        params.get(group)?.get(name)?.as_u64()
    };
    let n = |v: usize| Some(v as u64);
    let (forest, hnsw) = (&options.forest, &options.hnsw);
    param(IndexKind::Annoy, "forest", "n_trees") == n(forest.n_trees)
        && param(IndexKind::Annoy, "forest", "seed") == Some(forest.seed)
        && (!options.fixed_search_k
            || param(IndexKind::Annoy, "forest", "search_k") == forest.search_k.map(|k| k as u64))
        && param(IndexKind::Hnsw, "hnsw", "m") == n(hnsw.m)
        && param(IndexKind::Hnsw, "hnsw", "ef_construction") == n(hnsw.ef_construction)
        && param(IndexKind::Hnsw, "hnsw", "seed") == Some(hnsw.seed)
        && (!options.fixed_ef_search
            || param(IndexKind::Hnsw, "hnsw", "ef_search") == n(hnsw.ef_search))
}

/// Copies the files of embedding model `kind` (embeddings, 2-D map, indexes) from the model
/// directory `dir` and returns its manifest entry there.
fn copy_model_files(
    kind: ModelKind,
    dir: &Path,
    saved: &artifact::SavedModel,
    staging: &Staging,
) -> Result<ModelEntry> {
    let entry =
        saved
            .manifest
            .models
            .get(&kind)
            .cloned()
            .ok_or_else(|| crate::Error::Artifact {
                dir: dir.to_path_buf(),
                message: format!("the manifest has no {kind} model"),
            })?;
    let files = [&entry.embeddings_file, &entry.projection_file]
        .into_iter()
        .chain(entry.indexes.values().filter_map(|i| i.file.as_ref()));
    for file in files {
        staging.write(file, &saved.file(dir, file)?)?;
    }
    Ok(entry)
}

/// Builds the indexes and projection of one model and writes its files.
fn build_model_files(
    model: &TrainedModel,
    catalog: &Catalog,
    options: &TrainOptions,
    staging: &Staging,
) -> Result<ModelEntry> {
    let name = model.kind.as_str();
    let embeddings = &model.embeddings;
    let exact = ExactIndex::build(embeddings, Metric::Cosine);
    let step = (catalog.len() / RECALL_SAMPLE).max(1);
    let sample: Vec<u32> = (0..catalog.len() as u32).step_by(step).collect();
    // Exact answers for the sample, searched once for every backend and width tried.
    let truth = RecallTruth::batched(&exact, &sample, 10);
    let build = BuildOptions {
        forest: options.forest,
        fixed_search_k: options.fixed_search_k,
        hnsw: options.hnsw,
        fixed_ef_search: options.fixed_ef_search,
    };
    let projection = projection::project_2d(embeddings);
    let embeddings_file = artifact::embeddings_file(model.kind);
    let projection_file = artifact::projection_file(model.kind);
    let exact_file = artifact::index_file(model.kind, IndexKind::Exact);
    staging.write(
        &embeddings_file,
        &artifact::encode_matrix(embeddings.len(), embeddings.dim(), embeddings.as_slice()),
    )?;
    staging.write(
        &projection_file,
        &artifact::encode_matrix(catalog.len(), 2, &projection),
    )?;
    staging.write(&exact_file, &exact.to_bytes())?;
    let mut indexes = BTreeMap::from([(
        IndexKind::Exact,
        IndexEntry {
            file: Some(exact_file),
            params: serde_json::json!({"metric": Metric::Cosine}),
            recall_at_10: 1.0,
        },
    )]);
    for backend in APPROXIMATE {
        let built = backend.build(&exact, &truth, &build);
        tracing::info!(
            "{name}: recall@10 {} {:.3} ({})",
            backend.kind(),
            built.recall_at_10,
            built.params
        );
        let file = artifact::index_file(model.kind, backend.kind());
        staging.write(&file, &built.bytes)?;
        indexes.insert(
            backend.kind(),
            IndexEntry {
                file: Some(file),
                params: built.params,
                recall_at_10: built.recall_at_10,
            },
        );
    }
    let entry = ModelEntry {
        dim: embeddings.dim(),
        details: model.details.clone(),
        embeddings_file,
        projection_file,
        indexes,
    };
    Ok(entry)
}
