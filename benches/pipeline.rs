//! Benchmarks of the seed-parity targets: `train` on the bundled data (< 3 s) and one
//! recommendation inside the process (< 1 ms), for every model and index.
//!
//! Run: `cargo bench --bench pipeline` (release build). Prints one line per figure.

use movierec::catalog::MovieQuery;
use movierec::engine::{Engine, SimilarRequest};
use movierec::index::IndexKind;
use movierec::models::{ModelKind, ModelShape};
use movierec::train::{train, TrainOptions};
use std::path::Path;
use std::time::Instant;

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("model");

    let mut train_seconds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        train(&data, &out, &TrainOptions::default()).expect("train");
        train_seconds.push(started.elapsed().as_secs_f64());
    }
    train_seconds.sort_by(f64::total_cmp);
    println!(
        "train (bundled data, wall, median of 3): {:.2} s  (min {:.2}, max {:.2})",
        train_seconds[1], train_seconds[0], train_seconds[2]
    );

    let started = Instant::now();
    let engine = Engine::open(&out).expect("open");
    println!(
        "open model directory: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // Queries: the 500 most-rated movies, by id (title matching is measured separately).
    let mut ids: Vec<(u32, u32)> = engine
        .catalog()
        .movies()
        .iter()
        .map(|m| (m.rating_count, m.movie_id))
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let ids: Vec<u32> = ids.iter().take(500).map(|&(_, id)| id).collect();
    for model in ModelKind::ALL {
        // Neighbour-list models answer exactly; annoy and hnsw search the embedding models.
        let indexes: &[IndexKind] = match model.shape() {
            ModelShape::Embeddings => &IndexKind::ALL,
            ModelShape::NeighbourLists => &[IndexKind::Exact],
        };
        for &index in indexes {
            let mut times: Vec<f64> = ids
                .iter()
                .map(|&id| {
                    let request = SimilarRequest {
                        movie: MovieQuery::Id(id),
                        also: Vec::new(),
                        k: 10,
                        model,
                        index,
                        filter: Default::default(),
                    };
                    let started = Instant::now();
                    let answer = engine.similar(&request).expect("similar");
                    let elapsed = started.elapsed().as_secs_f64();
                    assert_eq!(answer.results.len(), 10);
                    elapsed
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "recommend k=10 by id, {model}/{index}: median {:.1} µs, p99 {:.1} µs",
                times[times.len() / 2] * 1e6,
                times[times.len() * 99 / 100] * 1e6
            );
        }
    }
    let titles = [
        "toy stroy",
        "the matrix",
        "hamlet 1996",
        "godfahter",
        "star wars",
    ];
    let mut times = Vec::new();
    for _ in 0..100 {
        for title in titles {
            let request = SimilarRequest {
                movie: MovieQuery::Title(title.to_string()),
                also: Vec::new(),
                k: 10,
                model: ModelKind::Collaborative,
                index: IndexKind::Exact,
                filter: Default::default(),
            };
            let started = Instant::now();
            engine.similar(&request).expect("similar");
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "recommend k=10 by fuzzy title, collaborative (item_knn)/exact: median {:.1} µs, p99 {:.1} µs",
        times[times.len() / 2] * 1e6,
        times[times.len() * 99 / 100] * 1e6
    );
}
