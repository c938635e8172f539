//! How far two model directories agree on one model's neighbours: the share of their top-k
//! entries they share, and of movies whose first entry is the same. For a lists model (`similar`,
//! `item_knn`, `ease`) its stored lists of every movie are compared; for an embedding model
//! (`svd`, `als`, `hybrid`, `content`) each movie's exact nearest movies under its rows (cosine),
//! for a sample of about 2,000 movies. What docs/EVALUATION.md compares an incremental training
//! with a full one by, and docs/BENCHMARKS.md how far a retrained model's neighbours move:
//!
//! `cargo run --release --example compare_lists -- FULL_DIR OTHER_DIR similar 10`
use movierec::artifact::{self, LoadedModel, Verify};
use movierec::index::VectorIndex;
use movierec::models::ModelKind;
use std::path::Path;

/// Movies sampled for an embedding model (each an exact search over the catalog).
const SAMPLE: usize = 2000;

/// The top `k` of every movie of `sample` in `model`: its stored list for a lists model, its
/// exact nearest movies under the rows for an embedding model.
fn top(model: &LoadedModel, kind: ModelKind, sample: &[u32], k: usize) -> Vec<Vec<u32>> {
    if let Some(lists) = model.lists.get(&kind) {
        return (sample.iter())
            .map(|&i| lists.of(i).take(k).map(|(j, _)| j).collect())
            .collect();
    }
    let exact = &model.models[&kind].exact;
    (sample.iter())
        .map(|&i| {
            let found = exact.search_item(i, k + 1, &|j| j != i);
            found.iter().take(k).map(|n| n.item).collect()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!(
            "usage: compare_lists DIR_A DIR_B MODEL K   (MODEL: similar, item_knn, ease, svd, \
             als, hybrid or content)"
        );
        std::process::exit(2);
    }
    let kind = ModelKind::parse(&args[3]).unwrap();
    let k: usize = args[4].parse().unwrap();
    let open = |dir: &str| artifact::open(Path::new(dir), Verify::StructureOnly).unwrap();
    let (model_a, model_b) = (open(&args[1]), open(&args[2]));
    let n = model_a.catalog.len() as u32;
    let (sample, what): (Vec<u32>, &str) = if model_a.lists.contains_key(&kind) {
        ((0..n).collect(), "every movie's list")
    } else {
        let step = (n as usize / SAMPLE).max(1);
        (
            (0..n).step_by(step).collect(),
            "exact nearest of sampled movies",
        )
    };
    let (a, b) = (
        top(&model_a, kind, &sample, k),
        top(&model_b, kind, &sample, k),
    );
    let (mut same, mut total, mut first) = (0usize, 0usize, 0usize);
    for (x, y) in a.iter().zip(&b) {
        total += x.len().max(y.len());
        same += x.iter().filter(|j| y.contains(j)).count();
        first += usize::from(x.first() == y.first());
    }
    println!(
        "{kind} top {k} ({what}, {} movies): {same} of {total} entries shared ({:.4}); first \
         entry the same for {:.4}",
        a.len(),
        same as f64 / total.max(1) as f64,
        first as f64 / a.len().max(1) as f64
    );
}
