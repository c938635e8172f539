//! `movierec bench-index`: every backend and setting on the same raw vectors, so that our
//! figures line up with FAISS's and Annoy's on identical data.
//!
//! Vectors are raw little-endian `f32` rows, `dim` per row, no header: what `numpy.tofile`
//! writes and FAISS and Annoy benchmarks read. [`clustered`] generates the data set of issue 5
//! (86,537 unit vectors around 256 Gaussian centres, noise 0.5, and 1,000 queries drawn the
//! same way). Recall@10 is measured against exact search under the chosen metric (inner product
//! by default, as the FAISS and Annoy figures are); QPS is the best of three passes over all
//! queries, one query at a time on `threads` threads (the row with `batch` in its parameters
//! answers all queries in one call, [`ExactIndex::search_batch`]). Each backend's file is also
//! written to a temporary directory and opened from it (memory-mapped, structure checked): the
//! best of five opens is `open_s`, and hashing the whole file (what `movierec verify` and serving's
//! start-up add) is `verify_s`.

use crate::embeddings::ItemEmbeddings;
use crate::index::{
    ExactIndex, ForestIndex, ForestParams, HnswIndex, HnswParams, Metric, VectorIndex,
};
use crate::storage::shared_slice::SharedSlice;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Rows of the generated base set (ml-latest's catalog size).
pub const GENERATED_BASE_ROWS: usize = 86_537;
/// Rows of the generated query set.
pub const GENERATED_QUERY_ROWS: usize = 1_000;

/// Reads raw little-endian `f32` rows of dimension `dim` from `path`.
pub fn read_vectors(path: &Path, dim: usize) -> Result<ItemEmbeddings> {
    if dim == 0 {
        return Err(Error::invalid("dim", "--dim must be at least 1"));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let row = 4 * dim;
    if bytes.is_empty() || bytes.len() % row != 0 {
        return Err(Error::data(
            path.display().to_string(),
            format!(
                "has {} bytes, not a whole number of rows of {dim} little-endian f32 ({row} bytes)",
                bytes.len()
            ),
        ));
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::data(
            path.display().to_string(),
            format!("row {} holds a value that is not finite", at / dim),
        ));
    }
    ItemEmbeddings::new(dim, values)
}

/// Writes `vectors` as raw little-endian `f32` rows to `path` (atomically: a temporary sibling,
/// then a rename).
pub fn write_vectors(path: &Path, vectors: &ItemEmbeddings) -> Result<()> {
    let bytes: Vec<u8> = vectors
        .as_slice()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A standard normal draw (Box–Muller).
pub fn gaussian(rng: &mut impl Rng) -> f32 {
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// `count` rows drawn around `centres`: each a random centre plus `noise`·N(0, 1), L2-normalised,
/// then, unless `unit`, scaled by a random norm in [0.5, 2]; the draws continue `rng`'s stream.
fn around(
    rng: &mut ChaCha8Rng,
    centres: &[Vec<f32>],
    count: usize,
    noise: f32,
    unit: bool,
) -> Vec<f32> {
    let dim = centres.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(count * dim);
    for _ in 0..count {
        let c = &centres[rng.random_range(0..centres.len())];
        let start = data.len();
        data.extend(c.iter().map(|&x| x + noise * gaussian(rng)));
        crate::index::distance::normalize(&mut data[start..]);
        if !unit {
            let scale = rng.random_range(0.5..2.0);
            data[start..].iter_mut().for_each(|x| *x *= scale);
        }
    }
    data
}

/// `count` centres of `dim` N(0, 1) coordinates.
fn centres(rng: &mut ChaCha8Rng, count: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..count)
        .map(|_| (0..dim).map(|_| gaussian(rng)).collect())
        .collect()
}

/// The test vectors of every index: `rows` vectors of dimension `dim` around `centres` random
/// centres (see [`around`]); deterministic for `seed`.
pub fn clustered_rows(
    rows: usize,
    dim: usize,
    centres_count: usize,
    noise: f32,
    unit: bool,
    seed: u64,
) -> ItemEmbeddings {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = centres(&mut rng, centres_count, dim);
    let data = around(&mut rng, &centres, rows, noise, unit);
    ItemEmbeddings::new(dim, data).expect("whole rows")
}

/// Issue 5's data set: `(base, queries)` of `dim`-dimensional unit vectors, each a random one of
/// 256 Gaussian centres plus 0.5·N(0, 1) noise, then L2-normalised; deterministic for `seed`.
pub fn clustered(
    base: usize,
    queries: usize,
    dim: usize,
    seed: u64,
) -> (ItemEmbeddings, ItemEmbeddings) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = centres(&mut rng, 256, dim);
    let mut draw = |count: usize| {
        let data = around(&mut rng, &centres, count, 0.5, true);
        ItemEmbeddings::new(dim.max(1), data).expect("whole rows")
    };
    let base = draw(base);
    let queries = draw(queries);
    (base, queries)
}

/// One backend and setting, measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// `exact`, `annoy` or `hnsw`.
    pub backend: &'static str,
    /// The setting.
    pub params: serde_json::Value,
    /// Seconds to build the index (0 for settings that reuse a built one).
    pub build_s: f64,
    /// Queries per second.
    pub qps: f64,
    /// Recall@k against exact inner-product search.
    pub recall_at_10: f64,
    /// Bytes of the index: its file plus the files it needs (the forest scores the exact
    /// index's rows).
    pub memory_bytes: usize,
    /// Seconds to open the index's file (memory-mapped, structure checked; best of five), on
    /// the row that built it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_s: Option<f64>,
    /// Seconds to hash the index's file against its checksums, on the row that built it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_s: Option<f64>,
}

/// A directory for the benchmark's index files, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir> {
        let dir = std::env::temp_dir().join(format!("movierec-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` to `name` in `dir`, then times opening it with `open` (best of five) and
/// hashing it whole: `(open_s, verify_s)`.
fn time_open(
    dir: &ScratchDir,
    name: &str,
    bytes: &[u8],
    open: &dyn Fn(SharedSlice<u8>) -> Result<()>,
) -> Result<(f64, f64)> {
    let path = dir.0.join(name);
    std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let mapped = SharedSlice::map_file(&path).map_err(|e| Error::io(&path, e))?;
        open(mapped)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    let start = Instant::now();
    let mapped = SharedSlice::map_file(&path).map_err(|e| Error::io(&path, e))?;
    std::hint::black_box(xxhash_rust::xxh3::xxh3_64(&mapped));
    Ok((best, start.elapsed().as_secs_f64()))
}

/// Times `search` over every query (best of three passes) and scores it against `truth`.
fn measure(
    queries: &ItemEmbeddings,
    truth: &[Vec<u32>],
    k: usize,
    search: &(dyn Fn(&[f32]) -> Vec<u32> + Sync),
) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut found = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        found = (0..queries.len())
            .into_par_iter()
            .map(|q| search(queries.row(q)))
            .collect();
        best = best.min(start.elapsed().as_secs_f64());
    }
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|i| t.contains(i)).count())
        .sum();
    let recall = hits as f64 / (truth.len() * k).max(1) as f64;
    (queries.len() as f64 / best.max(f64::MIN_POSITIVE), recall)
}

/// Runs every backend and setting on `base` with `queries` under `metric`, on a pool of
/// `threads` threads (builds and queries), calling `report` after each row.
pub fn run(
    base: &ItemEmbeddings,
    queries: &ItemEmbeddings,
    k: usize,
    threads: usize,
    metric: Metric,
    report: &mut (dyn FnMut(&BenchRow) + Send),
) -> Result<Vec<BenchRow>> {
    if base.dim() != queries.dim() {
        return Err(Error::invalid(
            "dim",
            format!(
                "base rows have {} values, queries {}",
                base.dim(),
                queries.dim()
            ),
        ));
    }
    if !(1..=1000).contains(&k) {
        return Err(Error::invalid(
            "k",
            format!("--k must be between 1 and 1000, got {k}"),
        ));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::invalid("threads", format!("--threads: {e}")))?;
    let scratch = ScratchDir::new()?;
    pool.install(|| {
        let ids =
            |found: Vec<crate::index::Neighbor>| found.iter().map(|n| n.item).collect::<Vec<_>>();
        let mut rows = Vec::new();
        let mut push = |row: BenchRow, rows: &mut Vec<BenchRow>| {
            report(&row);
            rows.push(row);
        };
        let start = Instant::now();
        let exact = ExactIndex::build(base, metric);
        let build = start.elapsed().as_secs_f64();
        let exact_bytes = exact.to_bytes();
        let vectors = exact_bytes.len();
        let (open_s, verify_s) = time_open(&scratch, "exact", &exact_bytes, &|bytes| {
            ExactIndex::open(bytes, base).map(drop)
        })?;
        let truth: Vec<Vec<u32>> = (0..queries.len())
            .into_par_iter()
            .map(|q| ids(exact.search(queries.row(q), k, &|_| true)))
            .collect();
        let (qps, recall) = measure(queries, &truth, k, &|q| ids(exact.search(q, k, &|_| true)));
        push(
            BenchRow {
                backend: "exact",
                params: serde_json::json!({"metric": metric}),
                build_s: build,
                qps,
                recall_at_10: recall,
                memory_bytes: vectors,
                open_s: Some(open_s),
                verify_s: Some(verify_s),
            },
            &mut rows,
        );
        // The batched path: every query at once, one matrix product per block of rows.
        let mut best = f64::INFINITY;
        let mut found = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            found = exact.search_batch(queries, k, &|_, _| false);
            best = best.min(start.elapsed().as_secs_f64());
        }
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|n| t.contains(&n.item)).count())
            .sum();
        push(
            BenchRow {
                backend: "exact",
                params: serde_json::json!({"metric": metric, "batch": queries.len()}),
                build_s: 0.0,
                qps: queries.len() as f64 / best.max(f64::MIN_POSITIVE),
                recall_at_10: hits as f64 / (truth.len() * k).max(1) as f64,
                memory_bytes: vectors,
                open_s: None,
                verify_s: None,
            },
            &mut rows,
        );
        for n_trees in [20, 50] {
            let start = Instant::now();
            let mut forest = ForestIndex::build(
                base,
                metric,
                ForestParams {
                    n_trees,
                    search_k: None,
                    ..ForestParams::default()
                },
            );
            let build = start.elapsed().as_secs_f64();
            let bytes = forest.to_bytes();
            let memory = bytes.len() + vectors;
            let (open_s, verify_s) = time_open(&scratch, "annoy", &bytes, &|bytes| {
                ForestIndex::open(bytes, &exact).map(drop)
            })?;
            for (i, search_k) in [None, Some(2_000)].into_iter().enumerate() {
                forest.set_search_k(search_k);
                let (qps, recall) =
                    measure(queries, &truth, k, &|q| ids(forest.search(q, k, &|_| true)));
                push(
                    BenchRow {
                        backend: "annoy",
                        params: serde_json::json!({"n_trees": n_trees, "search_k": search_k}),
                        build_s: if i == 0 { build } else { 0.0 },
                        qps,
                        recall_at_10: recall,
                        memory_bytes: memory,
                        open_s: (i == 0).then_some(open_s),
                        verify_s: (i == 0).then_some(verify_s),
                    },
                    &mut rows,
                );
            }
        }
        let start = Instant::now();
        let params = HnswParams::default();
        let mut hnsw = HnswIndex::build(base, metric, params);
        let build = start.elapsed().as_secs_f64();
        let bytes = hnsw.to_bytes();
        let memory = bytes.len();
        let (open_s, verify_s) = time_open(&scratch, "hnsw", &bytes, &|bytes| {
            HnswIndex::open(bytes, base).map(drop)
        })?;
        for (i, ef) in [16, 20, 32, 64, 128, 256, 512].into_iter().enumerate() {
            hnsw.set_ef_search(ef);
            let (qps, recall) = measure(queries, &truth, k, &|q| ids(hnsw.search(q, k, &|_| true)));
            push(
                BenchRow {
                    backend: "hnsw",
                    params: serde_json::json!({
                        "m": params.m, "ef_construction": params.ef_construction, "ef_search": ef
                    }),
                    build_s: if i == 0 { build } else { 0.0 },
                    qps,
                    recall_at_10: recall,
                    memory_bytes: memory,
                    open_s: (i == 0).then_some(open_s),
                    verify_s: (i == 0).then_some(verify_s),
                },
                &mut rows,
            );
        }
        Ok(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (base, _) = clustered(50, 0, 8, 3);
        let path = dir.path().join("base.f32");
        write_vectors(&path, &base).unwrap();
        assert_eq!(read_vectors(&path, 8).unwrap(), base);
        let err = read_vectors(&path, 7).unwrap_err().to_string();
        assert!(err.contains("not a whole number of rows of 7"), "{err}");
        std::fs::write(&path, f32::NAN.to_le_bytes()).unwrap();
        let err = read_vectors(&path, 1).unwrap_err().to_string();
        assert!(
            err.contains("row 0 holds a value that is not finite"),
            "{err}"
        );
    }

    #[test]
    fn every_backend_reports_a_row_and_exact_recall_is_one() {
        let (base, queries) = clustered(2_000, 50, 16, 5);
        let mut seen = 0;
        let rows = run(&base, &queries, 10, 1, Metric::InnerProduct, &mut |_| {
            seen += 1
        })
        .unwrap();
        assert_eq!(rows.len(), 2 + 4 + 7);
        let opened: Vec<&str> = rows
            .iter()
            .filter(|r| r.open_s.is_some_and(|s| s > 0.0) && r.verify_s.is_some())
            .map(|r| r.backend)
            .collect();
        assert_eq!(opened, ["exact", "annoy", "annoy", "hnsw"]);
        assert_eq!(rows[1].recall_at_10, 1.0, "the batched exact path is exact");
        assert_eq!(seen, rows.len());
        assert_eq!(rows[0].backend, "exact");
        assert_eq!(rows[0].recall_at_10, 1.0);
        for row in &rows {
            assert!(
                row.qps > 0.0 && row.memory_bytes >= 2_000 * 16 * 4,
                "{row:?}"
            );
        }
        // HNSW with a wide beam on 2,000 clustered points finds nearly everything.
        assert!(
            rows.last().unwrap().recall_at_10 > 0.95,
            "{:?}",
            rows.last()
        );
        let (_, wrong) = clustered(10, 5, 8, 5);
        assert!(run(&base, &wrong, 10, 1, Metric::InnerProduct, &mut |_| {}).is_err());
        // Every metric runs; exact search is exact under each.
        for metric in [Metric::Cosine, Metric::L2] {
            let rows = run(&base, &queries, 10, 1, metric, &mut |_| {}).unwrap();
            assert_eq!(rows[0].recall_at_10, 1.0, "{metric}");
            assert!(rows.last().unwrap().recall_at_10 > 0.95, "{metric}");
        }
    }
}
