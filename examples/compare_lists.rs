//! How far two model directories agree on one model's neighbours: the share of their top-k
//! entries they share, and of movies whose first entry is the same. For a lists model (`similar`,
//! `item_knn`, `ease`) its stored lists of every movie are compared; for an embedding model
//! (`svd`, `als`, `hybrid`, `content`) each movie's exact nearest movies under its rows (cosine),
//! for a sample of about 2,000 movies. What docs/EVALUATION.md compares an incremental training
//! with a full one by, and docs/BENCHMARKS.md how far a retrained model's neighbours move:
//!
//! `cargo run --release --example compare_lists -- FULL_DIR OTHER_DIR similar 10`
use movierec::artifact::{self, Verify};
use movierec::index::VectorIndex;
use movierec::models::item_knn::NeighbourLists;
use movierec::models::{ModelKind, ModelShape};
use std::path::Path;

/// Movies sampled for an embedding model (each an exact search over the catalog).
const SAMPLE: usize = 2000;

fn lists(dir: &Path, kind: ModelKind) -> NeighbourLists {
    let saved = artifact::load(dir).unwrap();
    let n = saved.manifest.dataset.movies;
    let file = &saved.manifest.neighbour_lists[&kind].file;
    NeighbourLists::from_bytes(file, saved.file(dir, file).unwrap(), n).unwrap()
}

/// The `k` nearest movies of each movie of `sample` under the rows of model `kind` in `dir`.
fn nearest(dir: &Path, kind: ModelKind, sample: &[u32], k: usize) -> Vec<Vec<u32>> {
    let model = artifact::open(dir, Verify::StructureOnly).unwrap();
    let exact = &model.models[&kind].exact;
    sample
        .iter()
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
    let (dir_a, dir_b) = (Path::new(&args[1]), Path::new(&args[2]));
    let (a, b, what): (Vec<Vec<u32>>, Vec<Vec<u32>>, &str) = match kind.shape() {
        ModelShape::NeighbourLists => {
            let (a, b) = (lists(dir_a, kind), lists(dir_b, kind));
            let top = |l: &NeighbourLists, i: u32| l.of(i).take(k).map(|(j, _)| j).collect();
            let movies = 0..a.len() as u32;
            (
                movies.clone().map(|i| top(&a, i)).collect(),
                movies.map(|i| top(&b, i)).collect(),
                "every movie's list",
            )
        }
        ModelShape::Embeddings => {
            let n = artifact::load(dir_a).unwrap().manifest.dataset.movies;
            let sample: Vec<u32> = (0..n as u32).step_by((n / SAMPLE).max(1)).collect();
            (
                nearest(dir_a, kind, &sample, k),
                nearest(dir_b, kind, &sample, k),
                "exact nearest of sampled movies",
            )
        }
    };
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
