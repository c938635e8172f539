//! How far two model directories' neighbour lists of one model agree: the share of their top-k
//! entries they share, and of movies whose first entry is the same. What docs/EVALUATION.md
//! compares an incremental training with a full one by:
//!
//! `cargo run --release --example compare_lists -- FULL_DIR OTHER_DIR similar 10`
use movierec::artifact;
use movierec::models::item_knn::NeighbourLists;
use movierec::models::ModelKind;
use std::path::Path;

fn lists(dir: &Path, kind: ModelKind) -> NeighbourLists {
    let saved = artifact::load(dir).unwrap();
    let n = saved.manifest.dataset.movies;
    let file = &saved.manifest.neighbour_lists[&kind].file;
    NeighbourLists::from_bytes(file, saved.file(dir, file).unwrap(), n).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: compare_lists DIR_A DIR_B MODEL K   (MODEL: similar, item_knn or ease)");
        std::process::exit(2);
    }
    let kind = ModelKind::parse(&args[3]).unwrap();
    let k: usize = args[4].parse().unwrap();
    let (a, b) = (
        lists(Path::new(&args[1]), kind),
        lists(Path::new(&args[2]), kind),
    );
    let (mut same, mut total, mut first) = (0usize, 0usize, 0usize);
    for i in 0..a.len() as u32 {
        let x: Vec<u32> = a.of(i).take(k).map(|(j, _)| j).collect();
        let y: Vec<u32> = b.of(i).take(k).map(|(j, _)| j).collect();
        total += x.len().max(y.len());
        same += x.iter().filter(|j| y.contains(j)).count();
        first += usize::from(x.first() == y.first());
    }
    println!(
        "{kind} top {k}: {same} of {total} entries shared ({:.4}); first entry the same for {:.4}",
        same as f64 / total.max(1) as f64,
        first as f64 / a.len() as f64
    );
}
