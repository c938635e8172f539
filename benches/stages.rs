//! Times single stages of `train` on a MovieLens-layout directory, apart from the rest:
//! - `knn`: the item-kNN lists ("fans also liked") of the default setting (the walk `train`
//!   runs) and, with `--grid`, the general walk the tuning uses, run on the same setting, with
//!   how many list entries the two share;
//! - `svd`: the SVD model (at this size the randomized block SVD), with its rank and energy;
//! - `colikes`: the co-like counts of the item-kNN lists (the explanations' "N people who liked
//!   both"), after the lists, which are timed as `knn`;
//! - `similar`: the "more like this" lists of the default setting (after the content and SVD
//!   models they blend, which are not timed as this stage).
//!
//! - `histories`: every user's history (the transpose `train` writes for personal scoring);
//! - `indexes` (with `--model DIR`, a trained model directory; no data is loaded): for each
//!   embedding model, what its "indexes and projection" stage of `train` spends, part by part:
//!   the exact index, the exact answers of the recall sample, the 2-D projection, each
//!   approximate index's build and then its search-width hunt.
//!
//! `cargo bench --bench stages -- DATA_DIR [--stages knn,svd,similar] [--grid]`, e.g. on `movierec synth --scale 1`
//! (86,537 movies, 330,975 users, 33.9M ratings). Prints one line per figure; the peer figure
//! (`implicit`'s `CosineRecommender(K=100).fit` on the same ratings) is printed by
//! `benches/python_stack.py DATA_DIR --stages load,knn`.

use movierec::catalog::Catalog;
use movierec::data;
use movierec::interactions::RatingMatrix;
use movierec::models::item_knn::{self, ItemKnnParams};
use movierec::models::similar::{self, SimilarParams};
use movierec::models::{content, svd};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let grid = args.iter().any(|a| a == "--grid");
    let stages: Vec<String> = args
        .iter()
        .position(|a| a == "--stages")
        .and_then(|at| args.get(at + 1))
        .map_or("knn,svd", String::as_str)
        .split(',')
        .map(str::to_string)
        .collect();
    let data_dir = args
        .iter()
        .enumerate()
        .find(|&(at, a)| !a.starts_with("--") && (at == 0 || args[at - 1] != "--stages"))
        .map(|(_, a)| a)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small"));
    if let Some(model) = args
        .iter()
        .position(|a| a == "--model")
        .and_then(|at| args.get(at + 1))
    {
        indexes(std::path::Path::new(model));
        return;
    }
    let started = Instant::now();
    let dataset = data::load(&data_dir).expect("load");
    let loaded = started.elapsed().as_secs_f64();
    let catalog = Catalog::from_dataset(&dataset);
    let cataloged = started.elapsed().as_secs_f64();
    let matrix = RatingMatrix::build(&catalog, &dataset.ratings);
    println!(
        "load {loaded:.2} s, catalog {:.2} s, rating matrix {:.2} s",
        cataloged - loaded,
        started.elapsed().as_secs_f64() - cataloged
    );
    let wants = |stage: &str| stages.iter().any(|s| s == stage);
    if wants("histories") {
        let begun = Instant::now();
        let users = movierec::interactions::UserHistories::from_matrix(&matrix);
        println!(
            "user histories: {:.2} s, {} entries",
            begun.elapsed().as_secs_f64(),
            users.items.len()
        );
    }
    let content = (wants("svd") || wants("similar"))
        .then(|| content::train(&catalog, &dataset.tags, dataset.genome.as_ref(), 0.0));
    drop(dataset);
    let mut per_user = vec![0u64; matrix.n_users()];
    for &u in &matrix.users {
        per_user[u as usize] += 1;
    }
    let pairs: u64 = per_user.iter().map(|n| n * n.saturating_sub(1)).sum();
    println!(
        "{}: {} movies, {} users, {} ratings, {:.3e} co-rated pairs (ordered), loaded in {:.1} s, {} threads",
        data_dir.display(),
        matrix.n_items(),
        matrix.n_users(),
        matrix.nnz(),
        pairs as f64,
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    if let Some(content) = content {
        let content = content.expect("content model").embeddings;
        let cpu = cpu_seconds();
        let begun = Instant::now();
        let model = svd::train(&matrix, &content).expect("svd");
        println!(
            "svd: {:.2} s wall, {:.2} s CPU; rank {}, energy explained {}",
            begun.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            model.embeddings.dim(),
            model.details["energy_explained"]
        );
        if wants("similar") {
            let params = SimilarParams::default();
            let cpu = cpu_seconds();
            let begun = Instant::now();
            let lists = similar::build(&catalog, &content, &model.embeddings, params)
                .expect("similar lists");
            println!(
                "more like this (similar, {params:?}): {:.2} s wall, {:.2} s CPU, {} entries",
                begun.elapsed().as_secs_f64(),
                cpu_seconds() - cpu,
                lists.items.len()
            );
        }
    }
    if !wants("knn") && !wants("colikes") {
        return;
    }
    let params = ItemKnnParams::default();
    let cpu = cpu_seconds();
    let begun = Instant::now();
    let lists = item_knn::build(&matrix, &params);
    let seconds = begun.elapsed().as_secs_f64();
    println!(
        "item-kNN lists (train's walk, {params:?}): {seconds:.2} s wall, {:.2} s CPU, {:.2} ns per pair per core, {} entries",
        cpu_seconds() - cpu,
        (cpu_seconds() - cpu) * 1e9 / pairs.max(1) as f64,
        lists.items.len()
    );
    if wants("colikes") {
        let cpu = cpu_seconds();
        let begun = Instant::now();
        let counts = item_knn::co_likes(&matrix, &lists, movierec::train::LIKED_RATING);
        println!(
            "co-like counts of the item-kNN lists: {:.2} s wall, {:.2} s CPU, {} counts, {} users in all",
            begun.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            counts.len(),
            counts.iter().map(|&c| u64::from(c)).sum::<u64>()
        );
    }
    if grid {
        let begun = Instant::now();
        let general = item_knn::build_grid(
            &matrix,
            &[params.weighting],
            &[params.half_life],
            params.neighbours,
            &[(params.popularity_exponent, params.backward_weight)],
            None,
        )
        .pop()
        .and_then(|mut h| h.pop())
        .and_then(|mut v| v.pop())
        .expect("one list set");
        let seconds = begun.elapsed().as_secs_f64();
        let same = (0..lists.len() as u32)
            .map(|i| {
                let theirs: std::collections::HashSet<u32> =
                    general.of(i).map(|(j, _)| j).collect();
                lists.of(i).filter(|(j, _)| theirs.contains(j)).count()
            })
            .sum::<usize>();
        println!(
            "item-kNN lists (the tuning's general walk, same setting): {seconds:.2} s wall; entries in both: {same} of {} ({:.4})",
            general.items.len(),
            same as f64 / general.items.len().max(1) as f64
        );
    }
}

/// The `indexes` stage: each part of every embedding model's "indexes and projection" stage of
/// `train`, on the embeddings of the model directory `dir`, with `train`'s default settings.
fn indexes(dir: &std::path::Path) {
    use movierec::artifact::{open, Verify};
    use movierec::index::backend::{BuildOptions, APPROXIMATE};
    use movierec::index::{ExactIndex, ForestIndex, HnswIndex, Metric, RecallTruth, VectorIndex};
    let model = open(dir, Verify::StructureOnly).expect("model directory");
    let options = movierec::train::TrainOptions::default();
    let build = BuildOptions {
        forest: options.forest,
        fixed_search_k: false,
        hnsw: options.hnsw,
        fixed_ef_search: false,
    };
    for (kind, entry) in &model.models {
        let embeddings = entry.exact.embeddings();
        let time = |what: &str, begun: Instant| {
            println!(
                "{kind} ({} × {}): {what} {:.2} s",
                embeddings.len(),
                embeddings.dim(),
                begun.elapsed().as_secs_f64()
            );
        };
        let begun = Instant::now();
        let exact = ExactIndex::build(embeddings, Metric::Cosine);
        time("exact index", begun);
        let begun = Instant::now();
        let step = (embeddings.len() / movierec::train::RECALL_SAMPLE).max(1);
        let sample: Vec<u32> = (0..embeddings.len() as u32).step_by(step).collect();
        let truth = RecallTruth::batched(&exact, &sample, 10);
        time("exact answers of the recall sample", begun);
        let begun = Instant::now();
        std::hint::black_box(movierec::models::projection::project_2d(embeddings));
        time("2-D projection", begun);
        let begun = Instant::now();
        std::hint::black_box(ForestIndex::build(embeddings, Metric::Cosine, build.forest));
        time("forest build", begun);
        let begun = Instant::now();
        let mut hnsw = HnswIndex::build(embeddings, Metric::Cosine, build.hnsw);
        time("HNSW build", begun);
        let recalls: Vec<String> = [64, 128, 256, 512]
            .iter()
            .map(|&ef| {
                hnsw.set_ef_search(ef);
                format!("{:.3} at {ef}", truth.recall(&hnsw))
            })
            .collect();
        println!("{kind}: HNSW recall@10 {}", recalls.join(", "));
        for backend in APPROXIMATE {
            let begun = Instant::now();
            let built = backend.build(&exact, &truth, &build);
            time(
                &format!(
                    "{} build and width hunt (recall@10 {:.3}, {})",
                    backend.kind(),
                    built.recall_at_10,
                    built.params
                ),
                begun,
            );
        }
    }
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
