//! Exact (brute-force) search with FAISS `IndexFlat` semantics: the answer is that of scoring
//! every allowed row. One query at a time first scans int8 codes of the rows, a quarter of the
//! bytes, and then scores in f32 only the rows whose error bounds could reach the top `k`
//! ([`super::quantized`], which proves the result identical); many queries at once go through
//! one matrix product per block of rows ([`ExactIndex::search_batch`]), and every row as a query
//! through each tile of the symmetric score matrix once ([`ExactIndex::search_all`]).
//!
//! Also home of the two pieces both backends share: the [`dot`] kernel and the bounded [`TopK`]
//! selection, so that the forest's final re-ranking is exactly the brute force's ranking.

use super::distance::{dot, finish_scores, scored_dim, scoring_query, scoring_rows, TopK};
use super::quantized::{QuantizedRows, QuantizedView};
use super::{Metric, Neighbor, VectorIndex};
use crate::embeddings::ItemEmbeddings;
use crate::storage::shared_slice::SharedSlice;

/// Brute-force index: scores the query against every allowed row and keeps the best `k`.
#[derive(Clone, Debug)]
pub struct ExactIndex {
    /// The embeddings as given (what [`VectorIndex::embeddings`] returns).
    embeddings: ItemEmbeddings,
    /// The rows actually scored ([`scoring_rows`]): unit rows for cosine, the raw rows for inner
    /// product, rows with an extra coordinate for L2.
    scored: ItemEmbeddings,
    metric: Metric,
    /// Int8 codes of `scored`, scanned first by one-at-a-time searches (see [`super::quantized`]).
    codes: QuantizedCodes,
}

/// The arrays of [`QuantizedRows`], owned or mapped.
#[derive(Clone, Debug)]
struct QuantizedCodes {
    codes: SharedSlice<u8>,
    scales: SharedSlice<f32>,
    norms: SharedSlice<f32>,
    errors: SharedSlice<f32>,
}

impl QuantizedCodes {
    fn build(scored: &ItemEmbeddings) -> QuantizedCodes {
        let q = QuantizedRows::build(scored.as_slice(), scored.dim());
        QuantizedCodes {
            codes: q.codes().to_vec().into(),
            scales: q.scales().to_vec().into(),
            norms: q.norms().to_vec().into(),
            errors: q.errors().to_vec().into(),
        }
    }

    fn view(&self, scored: &ItemEmbeddings) -> Result<QuantizedView<'_>, String> {
        QuantizedView::from_parts(
            scored.dim(),
            scored.len(),
            &self.codes,
            &self.scales,
            &self.norms,
            &self.errors,
        )
    }
}

/// Current version of the exact index file ([`ExactIndex::to_bytes`]).
const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"MREXACT1";

impl ExactIndex {
    /// Builds the index: prepares the rows the metric scores ([`scoring_rows`]).
    pub fn build(embeddings: &ItemEmbeddings, metric: Metric) -> ExactIndex {
        let scored = scoring_rows(embeddings, metric);
        ExactIndex {
            embeddings: embeddings.clone(),
            codes: QuantizedCodes::build(&scored),
            scored,
            metric,
        }
    }

    /// The similarity this index ranks by.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The rows the metric scores (see [`scoring_rows`]); the forest scores its candidates
    /// against the same rows.
    pub(super) fn scored(&self) -> &ItemEmbeddings {
        &self.scored
    }

    /// The similarity of rows `a` and `b` under the index's metric, as a search ranks them (for
    /// cosine, the cosine similarity; for L2, `a·b − ‖b‖²/2`).
    pub fn similarity(&self, a: u32, b: u32) -> f32 {
        match self.metric {
            Metric::L2 => {
                let query = scoring_query(
                    self.embeddings.row(a as usize),
                    self.embeddings.dim(),
                    self.metric,
                );
                dot(&query, self.scored.row(b as usize))
            }
            // No copy of the query row: "more like this" asks this of 26 million pairs at
            // ml-latest's size, and a copy each was a tenth of its time.
            Metric::Cosine | Metric::InnerProduct => {
                dot(self.scored.row(a as usize), self.scored.row(b as usize))
            }
        }
    }

    /// The index as a [section file](crate::storage::section_file): `meta`; `scored`, the
    /// prepared rows; and their int8 codes `codes`, `code_scales`, `code_norms`, `code_errors`
    /// (see [`super::quantized`]), so that opening it reads nothing and copies nothing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = super::index_file_writer(
            (MAGIC, FORMAT_VERSION),
            self.metric,
            &self.embeddings,
            serde_json::json!({ "scored_dim": self.scored.dim() }),
        );
        w.add("scored", self.scored.as_slice())
            .add("codes", &self.codes.codes)
            .add("code_scales", &self.codes.scales)
            .add("code_norms", &self.codes.norms)
            .add("code_errors", &self.codes.errors);
        w.finish()
    }

    /// Opens an index written by [`ExactIndex::to_bytes`] over `embeddings`, in place.
    pub fn open(bytes: SharedSlice<u8>, embeddings: &ItemEmbeddings) -> crate::Result<ExactIndex> {
        #[derive(serde::Deserialize)]
        struct Extra {
            scored_dim: usize,
        }
        let (file, metric, extra) =
            super::open_index_file::<Extra>(bytes, (MAGIC, FORMAT_VERSION), "exact", embeddings)?;
        let invalid = |message: String| crate::Error::Index(format!("exact index: {message}"));
        if extra.scored_dim != scored_dim(embeddings.dim(), metric) {
            return Err(invalid(format!(
                "scored rows of dimension {} do not fit {metric} over dimension {}",
                extra.scored_dim,
                embeddings.dim()
            )));
        }
        let scored = file
            .section_of_len::<f32>("scored", embeddings.len() * extra.scored_dim)
            .map_err(invalid)?;
        let scored = ItemEmbeddings::from_shared(extra.scored_dim, scored)?;
        let codes = QuantizedCodes {
            codes: file.section("codes").map_err(invalid)?,
            scales: file.section("code_scales").map_err(invalid)?,
            norms: file.section("code_norms").map_err(invalid)?,
            errors: file.section("code_errors").map_err(invalid)?,
        };
        codes.view(&scored).map_err(invalid)?;
        Ok(ExactIndex {
            embeddings: embeddings.clone(),
            scored,
            metric,
            codes,
        })
    }

    /// The best `k` rows for each of many queries at once (each query a row of `queries`,
    /// excluding the rows `skip` names for it), as one matrix product per block of rows (faer's
    /// blocked, multithreaded GEMM) instead of one scan per query: for a thousand queries it
    /// reads the index once per block rather than once per query.
    ///
    /// # Panics
    /// If the queries' dimension is not the index's.
    pub fn search_batch(
        &self,
        queries: &ItemEmbeddings,
        k: usize,
        skip: &(dyn Fn(usize, u32) -> bool + Sync),
    ) -> Vec<Vec<Neighbor>> {
        use rayon::prelude::*;
        assert_eq!(
            queries.dim(),
            self.embeddings.dim(),
            "queries and index differ in dimension"
        );
        let dim = self.scored.dim();
        let prepared: Vec<f32> = (0..queries.len())
            .flat_map(|i| scoring_query(queries.row(i), self.embeddings.dim(), self.metric))
            .collect();
        let q = faer::MatRef::from_row_major_slice(&prepared, queries.len(), dim);
        let mut tops: Vec<TopK> = (0..queries.len())
            .map(|_| TopK::new(k, self.scored.len()))
            .collect();
        // One score matrix for every block (a fresh one per block had its pages zeroed each
        // time: tens of megabytes per block).
        let mut buffer =
            faer::Mat::<f32>::zeros(BATCH_BLOCK_ROWS.min(self.scored.len()), queries.len());
        for (block, rows) in self
            .scored
            .as_slice()
            .chunks(BATCH_BLOCK_ROWS * dim)
            .enumerate()
        {
            let n = rows.len() / dim;
            let r = faer::MatRef::from_row_major_slice(rows, n, dim);
            // scores = rows · queriesᵀ, column-major: column i holds query i's scores against
            // every row of the block, contiguous for the selection below.
            let mut scores = buffer.as_mut().subrows_mut(0, n);
            faer::linalg::matmul::matmul(
                scores.as_mut(),
                faer::Accum::Replace,
                r,
                q.transpose(),
                1.0,
                faer::Par::rayon(0),
            );
            let scores = scores.as_ref();
            let first = (block * BATCH_BLOCK_ROWS) as u32;
            // Once a top is full most chunks of its column hold nothing above its threshold,
            // which one vectorised comparison finds (a maximum instead, whose NaN handling kept
            // it scalar-ish, was a quarter of the "more like this" lists' time).
            tops.par_iter_mut().enumerate().for_each(|(i, top)| {
                let column = scores
                    .col(i)
                    .try_as_col_major()
                    .expect("columns are contiguous")
                    .as_slice();
                scan_column(column, first, top, &|row| skip(i, row));
            });
        }
        tops.into_iter()
            .enumerate()
            .map(|(i, top)| {
                finish_scores(
                    self.metric,
                    queries.row(i),
                    &self.embeddings,
                    top.into_sorted(),
                )
            })
            .collect()
    }

    /// The best `k` rows for every row of the index as the query (each never finding itself),
    /// what [`ExactIndex::search_batch`] over all rows returns, in half its arithmetic: for
    /// cosine and inner product the score matrix is symmetric, so each square tile of it is
    /// multiplied once and read twice, down its columns for one tile's queries and across its
    /// rows for the other's. The tiles go in rounds whose tiles share no rows
    /// ([`tile_rounds`]): each core multiplies and reads whole tiles on its own, with no wait
    /// between the product and the reading (a product shared by both cores, then both
    /// reading, waited twice per tile; 12.1–15.9 s against 12.6–17.4 s for the lists at
    /// ml-latest's size, alternated, docs/BENCHMARKS.md). Calls `progress` with the number of
    /// queries done so far, after each round.
    ///
    /// Every row's selection is kept until the end (at 86,537 rows and `k` 300, about 400 MB),
    /// which is the price of reading each tile twice.
    pub fn search_all(
        &self,
        k: usize,
        skip: &(dyn Fn(u32, u32) -> bool + Sync),
        progress: &(dyn Fn(usize) + Sync),
    ) -> Vec<Vec<Neighbor>> {
        self.search_all_tiled(k, skip, progress, ALL_PAIRS_TILE)
    }

    fn search_all_tiled(
        &self,
        k: usize,
        skip: &(dyn Fn(u32, u32) -> bool + Sync),
        progress: &(dyn Fn(usize) + Sync),
        tile: usize,
    ) -> Vec<Vec<Neighbor>> {
        use rayon::prelude::*;
        let n = self.scored.len();
        if self.metric == Metric::L2 {
            // The L2 query is not a scored row (its extra coordinate differs): not symmetric.
            let mut done = 0;
            let mut out = Vec::with_capacity(n);
            for first in (0..n).step_by(BATCH_QUERIES) {
                let rows = first..(first + BATCH_QUERIES).min(n);
                let d = self.embeddings.dim();
                let queries = ItemEmbeddings::new(
                    d,
                    self.embeddings.as_slice()[rows.start * d..rows.end * d].to_vec(),
                )
                .expect("rows of the index");
                out.extend(self.search_batch(&queries, k, &|q, row| skip((first + q) as u32, row)));
                done += rows.len();
                progress(done);
            }
            return out;
        }
        let dim = self.scored.dim();
        let tile = tile.clamp(1, n.max(1));
        let tiles = n.div_ceil(tile);
        let mut tops: Vec<TopK> = (0..n).map(|_| TopK::new(k, n)).collect();
        let rows_of = |t: usize| t * tile..((t + 1) * tile).min(n);
        let block = |t: usize| {
            let rows = rows_of(t);
            faer::MatRef::from_row_major_slice(
                &self.scored.as_slice()[rows.start * dim..rows.end * dim],
                rows.len(),
                dim,
            )
        };
        let rounds = tile_rounds(tiles);
        // A score tile per thread of the pool, reused by every tile it takes (a fresh one per
        // piece of work rayon splits off was 1,380 tiles of 4 MB zeroed at ml-latest's size).
        // The tile's work never waits on other work of the pool while it holds the lock.
        let buffers: Vec<std::sync::Mutex<faer::Mat<f32>>> = (0..rayon::current_num_threads())
            .map(|_| std::sync::Mutex::new(faer::Mat::<f32>::zeros(tile, tile)))
            .collect();
        let (pairs, mut pairs_done) = (tiles * (tiles + 1) / 2, 0);
        for round in &rounds {
            // The tiles of a round share no rows, so each is multiplied and read by one core,
            // on its own: no core waits for another between tiles, and the scores are read
            // from the cache of the core that wrote them.
            let mut blocks: Vec<Option<&mut [TopK]>> = tops.chunks_mut(tile).map(Some).collect();
            let jobs: Vec<TileJob<'_>> = round
                .iter()
                .map(|&(a, b)| {
                    let tops_b = blocks[b].take().expect("a block once per round");
                    // On the diagonal the tile is symmetric and its columns cover every pair.
                    let tops_a =
                        (a != b).then(|| blocks[a].take().expect("a block once per round"));
                    (a, b, tops_a, tops_b)
                })
                .collect();
            jobs.into_par_iter().for_each(|(a, b, tops_a, tops_b)| {
                let slot = rayon::current_thread_index().unwrap_or(0) % buffers.len();
                let mut buffer = buffers[slot]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (rows_a, rows_b) = (rows_of(a), rows_of(b));
                // scores = rows of a · rows of bᵀ, column-major: column j holds query b_j's
                // scores against the rows of a, contiguous; row i query a_i's against b's.
                let mut scores = buffer
                    .as_mut()
                    .submatrix_mut(0, 0, rows_a.len(), rows_b.len());
                faer::linalg::matmul::matmul(
                    scores.as_mut(),
                    faer::Accum::Replace,
                    block(a),
                    block(b).transpose(),
                    1.0,
                    faer::Par::Seq,
                );
                let scores = scores.as_ref();
                let column = |j: usize| {
                    scores
                        .col(j)
                        .try_as_col_major()
                        .expect("columns are contiguous")
                        .as_slice()
                };
                for (j, top) in tops_b.iter_mut().enumerate() {
                    let query = (rows_b.start + j) as u32;
                    scan_column(column(j), rows_a.start as u32, top, &|row| skip(query, row));
                }
                for (g, group) in tops_a
                    .into_iter()
                    .flat_map(|t| t.chunks_mut(SCAN_CHUNK))
                    .enumerate()
                {
                    scan_rows(
                        &column,
                        rows_b.len(),
                        g * SCAN_CHUNK,
                        rows_a.start as u32,
                        rows_b.start as u32,
                        group,
                        skip,
                    );
                }
            });
            pairs_done += round.len();
            progress(n * pairs_done / pairs);
        }
        tops.into_par_iter()
            .enumerate()
            .map(|(i, top)| {
                finish_scores(
                    self.metric,
                    self.embeddings.row(i),
                    &self.embeddings,
                    top.into_sorted(),
                )
            })
            .collect()
    }
}

/// One tile of a round of [`ExactIndex::search_all`]: its row blocks `a` and `b`, and the
/// selections of their rows (`a`'s `None` on the diagonal, where `b`'s columns cover it).
type TileJob<'t> = (usize, usize, Option<&'t mut [TopK]>, &'t mut [TopK]);

/// Every pair `(a, b)`, `a ≤ b`, of `tiles` tiles once, in rounds whose pairs share no tile
/// (the circle method of round-robin tournaments: fix the last tile, turn the others around it),
/// the diagonal pairs in a round of their own.
fn tile_rounds(tiles: usize) -> Vec<Vec<(usize, usize)>> {
    // An odd number of tiles plays against a missing one, whose pairs are left out.
    let players = tiles + tiles % 2;
    let turning = players.saturating_sub(1);
    let mut rounds: Vec<Vec<(usize, usize)>> = (0..turning)
        .map(|r| {
            let mut round = vec![(r, turning)];
            for k in 1..players / 2 {
                round.push(((r + k) % turning, (r + turning - k) % turning));
            }
            round
                .into_iter()
                .filter(|&(a, b)| a < tiles && b < tiles)
                .map(|(a, b)| (a.min(b), a.max(b)))
                .collect()
        })
        .collect();
    rounds.push((0..tiles).map(|t| (t, t)).collect());
    rounds.retain(|round| !round.is_empty());
    rounds
}

/// Offers one query's scores (a column of a score tile; row `first + r` scored `column[r]`) to
/// its selection: [`SCAN_CHUNK`] scores at a time are compared with its threshold at once, and
/// only those above it are looked at one by one.
fn scan_column(column: &[f32], first: u32, top: &mut TopK, skip: &dyn Fn(u32) -> bool) {
    match crate::simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` returned Avx512 only after detecting avx512f.
        crate::simd::Level::Avx512 => unsafe {
            masks::scan_column_avx512(column, first, top, skip)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` returned Avx2 only after detecting avx2.
        crate::simd::Level::Avx2 => unsafe { masks::scan_column_avx2(column, first, top, skip) },
        _ => scan_column_with::<masks::Portable>(column, first, top, skip),
    }
}

/// Offers the scores of up to [`SCAN_CHUNK`] consecutive queries, rows `offset..` of a
/// column-major score tile whose columns are the candidates `candidates_first..`, to their
/// selections: each column's scores for the group are adjacent (one cache line), so the group
/// reads the tile's rows without transposing it, comparing them with the group's thresholds at
/// once.
fn scan_rows<'a>(
    column: &dyn Fn(usize) -> &'a [f32],
    columns: usize,
    offset: usize,
    queries_first: u32,
    candidates_first: u32,
    group: &mut [TopK],
    skip: &(dyn Fn(u32, u32) -> bool + Sync),
) {
    let args = (column, columns, offset, queries_first, candidates_first);
    match crate::simd::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `scan_column`.
        crate::simd::Level::Avx512 => unsafe { masks::scan_rows_avx512(args, group, skip) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `scan_column`.
        crate::simd::Level::Avx2 => unsafe { masks::scan_rows_avx2(args, group, skip) },
        _ => scan_rows_with::<masks::Portable>(args, group, skip),
    }
}

/// [`scan_rows`]' arguments before the group: the tile's columns, their number, the group's
/// first row in the tile, the tile's first query and first candidate.
type RowsTile<'a, 'b> = (&'b dyn Fn(usize) -> &'a [f32], usize, usize, u32, u32);

/// The body of [`scan_column`], compiled once per instruction set ([`masks`]).
#[inline(always)]
fn scan_column_with<M: masks::GeMask>(
    column: &[f32],
    first: u32,
    top: &mut TopK,
    skip: &dyn Fn(u32) -> bool,
) {
    let offer = |score: f32, row: u32, top: &mut TopK, threshold: &mut f32| {
        if !skip(row) && top.admits(score, row) {
            top.insert(score, row);
            *threshold = top.threshold();
        }
    };
    let mut threshold = top.threshold();
    let mut chunks = column.chunks_exact(SCAN_CHUNK);
    for (c, chunk) in (&mut chunks).enumerate() {
        let chunk: &[f32; SCAN_CHUNK] = chunk.try_into().expect("a full chunk");
        // SAFETY: `M` is the portable comparison or the one of the instruction set the
        // function this body is compiled into was dispatched to after detecting it.
        let mut above = unsafe { M::ge(chunk, &[threshold; SCAN_CHUNK]) };
        while above != 0 {
            let l = above.trailing_zeros() as usize;
            above &= above - 1;
            offer(
                chunk[l],
                first + (c * SCAN_CHUNK + l) as u32,
                top,
                &mut threshold,
            );
        }
    }
    let done = column.len() - chunks.remainder().len();
    for (r, &score) in chunks.remainder().iter().enumerate() {
        if score >= threshold {
            offer(score, first + (done + r) as u32, top, &mut threshold);
        }
    }
}

/// The body of [`scan_rows`], compiled once per instruction set ([`masks`]).
#[inline(always)]
fn scan_rows_with<M: masks::GeMask>(
    (column, columns, offset, queries_first, candidates_first): RowsTile<'_, '_>,
    group: &mut [TopK],
    skip: &(dyn Fn(u32, u32) -> bool + Sync),
) {
    let width = group.len().min(SCAN_CHUNK);
    // Past the group's width a threshold of +∞ admits nothing.
    let mut thresholds = [f32::INFINITY; SCAN_CHUNK];
    for (t, top) in thresholds.iter_mut().zip(group.iter()) {
        *t = top.threshold();
    }
    let mut padded = [f32::NEG_INFINITY; SCAN_CHUNK];
    for j in 0..columns {
        let scores: &[f32; SCAN_CHUNK] = match column(j).get(offset..offset + SCAN_CHUNK) {
            Some(full) => full.try_into().expect("a full chunk"),
            None => {
                padded[..width].copy_from_slice(&column(j)[offset..offset + width]);
                &padded
            }
        };
        // SAFETY: as in `scan_column_with`.
        let mut above = unsafe { M::ge(scores, &thresholds) };
        while above != 0 {
            let l = above.trailing_zeros() as usize;
            above &= above - 1;
            let (query, row) = (
                queries_first + (offset + l) as u32,
                candidates_first + j as u32,
            );
            if skip(query, row) || !group[l].admits(scores[l], row) {
                continue;
            }
            group[l].insert(scores[l], row);
            thresholds[l] = group[l].threshold();
        }
    }
}

/// The one vector operation of the selections above, `scores[l] ≥ thresholds[l]` for 16 lanes
/// as a bit mask (a NaN score compares false: it ranks last, so passing over it is right), and
/// the scans compiled around it per instruction set. Compiled for the x86-64 baseline the scans
/// were SSE2 emulating a variable shift per lane, a third of the "more like this" lists' time.
mod masks {
    use super::{scan_column_with, scan_rows_with, RowsTile, TopK, SCAN_CHUNK};

    /// `scores[l] ≥ thresholds[l]`, lane `l` as bit `l`.
    pub(super) trait GeMask {
        /// # Safety
        /// The CPU must have the instruction set the implementation is named after.
        unsafe fn ge(scores: &[f32; SCAN_CHUNK], thresholds: &[f32; SCAN_CHUNK]) -> u32;
    }

    /// Any CPU: one comparison per lane.
    pub(super) struct Portable;

    impl GeMask for Portable {
        #[inline(always)]
        unsafe fn ge(scores: &[f32; SCAN_CHUNK], thresholds: &[f32; SCAN_CHUNK]) -> u32 {
            let mut above = 0;
            for (l, (s, t)) in scores.iter().zip(thresholds).enumerate() {
                above |= u32::from(s >= t) << l;
            }
            above
        }
    }

    #[cfg(target_arch = "x86_64")]
    pub(super) use x86::*;

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::*;
        use std::arch::x86_64::*;

        /// One AVX-512 comparison into a mask register.
        pub(in super::super) struct Avx512;

        impl GeMask for Avx512 {
            #[inline(always)]
            unsafe fn ge(scores: &[f32; SCAN_CHUNK], thresholds: &[f32; SCAN_CHUNK]) -> u32 {
                // SAFETY: the caller runs on a CPU with AVX-512F; both arrays hold 16 floats.
                unsafe {
                    let s = _mm512_loadu_ps(scores.as_ptr());
                    let t = _mm512_loadu_ps(thresholds.as_ptr());
                    u32::from(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(s, t))
                }
            }
        }

        /// Two AVX comparisons and their sign masks.
        pub(in super::super) struct Avx2;

        impl GeMask for Avx2 {
            #[inline(always)]
            unsafe fn ge(scores: &[f32; SCAN_CHUNK], thresholds: &[f32; SCAN_CHUNK]) -> u32 {
                // SAFETY: the caller runs on a CPU with AVX2; both arrays hold 16 floats, read
                // as two halves of 8.
                unsafe {
                    let half = |i: usize| {
                        let s = _mm256_loadu_ps(scores.as_ptr().add(i));
                        let t = _mm256_loadu_ps(thresholds.as_ptr().add(i));
                        _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(s, t)) as u32
                    };
                    half(0) | (half(8) << 8)
                }
            }
        }

        #[target_feature(enable = "avx512f")]
        pub(in super::super) unsafe fn scan_column_avx512(
            column: &[f32],
            first: u32,
            top: &mut TopK,
            skip: &dyn Fn(u32) -> bool,
        ) {
            scan_column_with::<Avx512>(column, first, top, skip)
        }

        #[target_feature(enable = "avx2")]
        pub(in super::super) unsafe fn scan_column_avx2(
            column: &[f32],
            first: u32,
            top: &mut TopK,
            skip: &dyn Fn(u32) -> bool,
        ) {
            scan_column_with::<Avx2>(column, first, top, skip)
        }

        #[target_feature(enable = "avx512f")]
        pub(in super::super) unsafe fn scan_rows_avx512(
            tile: RowsTile<'_, '_>,
            group: &mut [TopK],
            skip: &(dyn Fn(u32, u32) -> bool + Sync),
        ) {
            scan_rows_with::<Avx512>(tile, group, skip)
        }

        #[target_feature(enable = "avx2")]
        pub(in super::super) unsafe fn scan_rows_avx2(
            tile: RowsTile<'_, '_>,
            group: &mut [TopK],
            skip: &(dyn Fn(u32, u32) -> bool + Sync),
        ) {
            scan_rows_with::<Avx2>(tile, group, skip)
        }
    }
}

/// Queries per [`ExactIndex::search_batch`] where [`ExactIndex::search_all`] cannot use the
/// symmetric tiles (L2).
const BATCH_QUERIES: usize = 1_024;

/// Rows per side of [`ExactIndex::search_all`]'s square score tiles: 1,024 × 1,024 scores is
/// 4 MB, within the last-level cache the selections read it from (2,048 was 3% slower at
/// ml-latest's size, 512 as fast; the products are as fast at all three).
const ALL_PAIRS_TILE: usize = 1_024;

/// Scores [`ExactIndex::search_batch`] checks against a query's threshold at once.
const SCAN_CHUNK: usize = 16;

/// Index rows per matrix product of [`ExactIndex::search_batch`]: 4,096 rows × 1,000 queries of
/// scores is 16 MB.
const BATCH_BLOCK_ROWS: usize = 4_096;

impl VectorIndex for ExactIndex {
    fn kind(&self) -> super::IndexKind {
        super::IndexKind::Exact
    }

    fn embeddings(&self) -> &ItemEmbeddings {
        &self.embeddings
    }

    /// Scans the int8 codes and re-ranks the candidates their error bounds leave (exactly the
    /// brute force's answer, see [`super::quantized`]) where the CPU has the SIMD kernels for it;
    /// otherwise scores every row in f32.
    ///
    /// # Panics
    /// If `query.len()` is not the embedding dimension.
    fn search(&self, query: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<Neighbor> {
        let prepared = scoring_query(query, self.embeddings.dim(), self.metric);
        let found = match self.codes.view(&self.scored) {
            Ok(view) if k > 0 && super::quantized::accelerated() => view
                .search(&prepared, None, k, allow, &|row| {
                    dot(self.scored.row(row as usize), &prepared)
                })
                .into_iter()
                .map(|(item, score)| Neighbor { item, score })
                .collect(),
            _ => self.scan(&prepared, k, allow),
        };
        finish_scores(self.metric, query, &self.embeddings, found)
    }
}

impl ExactIndex {
    /// Scores every row in f32 (the search without codes).
    fn scan(&self, prepared: &[f32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<Neighbor> {
        let dim = prepared.len();
        let mut top = TopK::new(k, self.scored.len());
        // Blocks of rows are scored by the SIMD kernel in one call; then most rows lose to the
        // current k-th best at a single float comparison, and only the rest pay for the exact
        // rank test and for `allow`.
        let mut threshold = f32::NEG_INFINITY;
        let mut scores = [0.0f32; BLOCK_ROWS];
        for (block, rows) in self.scored.as_slice().chunks(BLOCK_ROWS * dim).enumerate() {
            let scores = &mut scores[..rows.len() / dim];
            crate::simd::dot_many(rows, prepared, scores);
            let first = (block * BLOCK_ROWS) as u32;
            for (row, &score) in (first..).zip(scores.iter()) {
                if score < threshold {
                    continue;
                }
                if top.admits(score, row) && allow(row) {
                    top.insert(score, row);
                    threshold = top.threshold();
                }
            }
        }
        top.into_sorted()
    }
}

/// Rows scored per kernel call: enough to amortise the dispatch, few enough to stay in L1.
const BLOCK_ROWS: usize = 256;

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `rows × dim` standard-normal-ish random embeddings (sum of uniforms; no extra deps).
    pub(crate) fn random_embeddings(rows: usize, dim: usize, seed: u64) -> ItemEmbeddings {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = (0..rows * dim)
            .map(|_| (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0)
            .collect();
        ItemEmbeddings::new(dim, data).unwrap()
    }

    /// The obvious brute force in f64: score everything, sort, filter, truncate.
    fn naive(
        emb: &ItemEmbeddings,
        metric: Metric,
        query: &[f32],
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let mut scored: Vec<(u32, f64)> = (0..emb.len() as u32)
            .filter(|&r| allow(r))
            .map(|r| {
                let row = emb.row(r as usize);
                let ip: f64 = row
                    .iter()
                    .zip(query)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let score = match metric {
                    Metric::InnerProduct => ip,
                    Metric::L2 => -row
                        .iter()
                        .zip(query)
                        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                        .sum::<f64>()
                        .sqrt(),
                    Metric::Cosine if norm(row) == 0.0 || norm(query) == 0.0 => 0.0,
                    Metric::Cosine => ip / (norm(row) * norm(query)),
                };
                (r, score)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }

    #[test]
    fn exact_matches_naive_sorted_brute_force_for_every_metric_with_filter() {
        let emb = random_embeddings(2_000, 19, 7);
        let queries = random_embeddings(20, 19, 8);
        let allow = |r: u32| r % 3 != 1;
        for metric in Metric::ALL {
            let index = ExactIndex::build(&emb, metric);
            assert_eq!(index.metric(), metric);
            for q in 0..queries.len() {
                let query = queries.row(q);
                let got = index.search(query, 15, &allow);
                let want = naive(&emb, metric, query, 15, &allow);
                let got_items: Vec<u32> = got.iter().map(|n| n.item).collect();
                let want_items: Vec<u32> = want.iter().map(|w| w.0).collect();
                assert_eq!(got_items, want_items, "{metric:?} query {q}");
                for (g, w) in got.iter().zip(&want) {
                    assert!((f64::from(g.score) - w.1).abs() < 1e-4, "{g:?} vs {w:?}");
                }
            }
        }
    }

    #[test]
    fn exact_breaks_ties_by_lower_row_and_scores_zero_rows_zero() {
        let dim = 3;
        let data = vec![
            0.0, 0.0, 0.0, // row 0: zero vector
            1.0, 0.0, 0.0, // row 1
            2.0, 0.0, 0.0, // row 2: same direction as row 1
            0.0, 1.0, 0.0, // row 3
            1.0, 0.0, 0.0, // row 4: duplicate of row 1
        ];
        let emb = ItemEmbeddings::new(dim, data).unwrap();
        let index = ExactIndex::build(&emb, Metric::Cosine);
        let got = index.search(&[5.0, 0.0, 0.0], 5, &|_| true);
        let items: Vec<u32> = got.iter().map(|n| n.item).collect();
        assert_eq!(items, vec![1, 2, 4, 0, 3]);
        assert!((got[0].score - 1.0).abs() < 1e-6);
        assert_eq!(got[3].score, 0.0);
        // A zero query scores every row 0, so the order is plain row order.
        let zero = index.search(&[0.0; 3], 3, &|_| true);
        assert_eq!(
            zero.iter().map(|n| n.item).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(zero.iter().all(|n| n.score == 0.0));
    }

    #[test]
    fn exact_search_item_excludes_itself_returns_k_sorted_descending() {
        let emb = random_embeddings(500, 8, 1);
        for metric in Metric::ALL {
            let index = ExactIndex::build(&emb, metric);
            for item in [0u32, 17, 499] {
                let got = index.search_item(item, 10, &|_| true);
                assert_eq!(got.len(), 10);
                assert!(got.iter().all(|n| n.item != item));
                assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
            }
            // Fewer allowed rows than k: all of them, and never the item itself.
            let got = index.search_item(3, 10, &|r| r < 5);
            let mut items: Vec<u32> = got.iter().map(|n| n.item).collect();
            items.sort_unstable();
            assert_eq!(items, vec![0, 1, 2, 4]);
        }
    }

    #[test]
    fn exact_handles_k_zero_huge_k_and_empty_index() {
        let emb = random_embeddings(50, 4, 2);
        let index = ExactIndex::build(&emb, Metric::Cosine);
        assert!(index.search(emb.row(0), 0, &|_| true).is_empty());
        assert_eq!(index.search(emb.row(0), usize::MAX, &|_| true).len(), 50);
        let empty = ExactIndex::build(&ItemEmbeddings::new(4, vec![]).unwrap(), Metric::Cosine);
        assert!(empty.search(&[1.0; 4], 5, &|_| true).is_empty());
    }

    #[test]
    fn dot_matches_a_plain_sum_for_every_length() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for len in 0..40 {
            let a: Vec<f32> = (0..len).map(|_| rng.random::<f32>() - 0.5).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.random::<f32>() - 0.5).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "len {len}");
        }
    }

    #[test]
    fn exact_files_open_in_place_and_refuse_other_embeddings() {
        let emb = random_embeddings(300, 6, 5);
        for metric in Metric::ALL {
            let built = ExactIndex::build(&emb, metric);
            let bytes = built.to_bytes();
            let opened = ExactIndex::open(SharedSlice::copy_aligned(&bytes), &emb).unwrap();
            assert_eq!(opened.metric(), metric);
            assert_eq!(opened.scored(), built.scored());
            let query = emb.row(7);
            assert_eq!(
                opened.search(query, 5, &|_| true),
                built.search(query, 5, &|_| true)
            );
            let other = random_embeddings(301, 6, 5);
            let err = ExactIndex::open(SharedSlice::copy_aligned(&bytes), &other).unwrap_err();
            assert!(err.to_string().contains("301 rows"), "{err}");
            for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
                assert!(ExactIndex::open(SharedSlice::copy_aligned(&bytes[..len]), &emb).is_err());
            }
        }
    }

    #[test]
    fn the_int8_scan_returns_exactly_what_the_f32_scan_returns() {
        let emb = random_embeddings(3_000, 24, 9);
        let queries = random_embeddings(30, 24, 10);
        for metric in Metric::ALL {
            let index = ExactIndex::build(&emb, metric);
            for q in 0..queries.len() {
                let query = queries.row(q);
                let prepared = scoring_query(query, 24, metric);
                for (k, allow) in [
                    (10, &(|_: u32| true) as &dyn Fn(u32) -> bool),
                    (25, &|r: u32| r % 50 == 3),
                    (100, &|r: u32| r < 40),
                ] {
                    let want = finish_scores(metric, query, &emb, index.scan(&prepared, k, allow));
                    assert_eq!(
                        index.search(query, k, allow),
                        want,
                        "{metric} query {q} k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn nan_scores_rank_last() {
        let emb = ItemEmbeddings::new(2, vec![f32::NAN, 0.0, 1.0, 0.0, -1.0, 0.0]).unwrap();
        let index = ExactIndex::build(&emb, Metric::InnerProduct);
        let got = index.search(&[1.0, 0.0], 3, &|_| true);
        assert_eq!(
            got.iter().map(|n| n.item).collect::<Vec<_>>(),
            vec![1, 2, 0]
        );
        assert_eq!(index.search(&[1.0, 0.0], 2, &|_| true).len(), 2);
    }
}

#[cfg(test)]
mod batch_tests {
    use super::tests::random_embeddings;
    use super::*;

    #[test]
    fn a_batch_finds_what_one_query_at_a_time_finds_for_every_metric() {
        let rows = random_embeddings(9_000, 24, 3);
        let queries = random_embeddings(40, 24, 4);
        for metric in Metric::ALL {
            let index = ExactIndex::build(&rows, metric);
            let skip = |q: usize, row: u32| row as usize == q * 7;
            let batch = index.search_batch(&queries, 10, &skip);
            for (q, got) in batch.iter().enumerate() {
                let one = index.search(queries.row(q), 10, &|row| !skip(q, row));
                let ids = |v: &[Neighbor]| v.iter().map(|n| n.item).collect::<Vec<_>>();
                assert_eq!(ids(got), ids(&one), "query {q}, {metric:?}");
                for (a, b) in got.iter().zip(&one) {
                    assert!((a.score - b.score).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn every_row_searched_through_symmetric_tiles_finds_what_one_search_each_finds() {
        // 301 rows in tiles of 64 (the last one short) and of 512 (one tile); k below and
        // above the tile, and above the catalog; a skip that is not only the query itself.
        let rows = random_embeddings(301, 12, 5);
        for metric in Metric::ALL {
            let index = ExactIndex::build(&rows, metric);
            let skip = |q: u32, row: u32| row == q || row == (q * 3) % 301;
            for (k, tile) in [(10, 64), (100, 64), (400, 64), (10, 512), (7, 1)] {
                let reported = std::sync::Mutex::new(Vec::new());
                let all = index.search_all_tiled(
                    k,
                    &skip,
                    &|done| reported.lock().unwrap().push(done),
                    tile,
                );
                assert_eq!(all.len(), 301);
                for (q, got) in all.iter().enumerate() {
                    let q = q as u32;
                    let one = index.search_item(q, k, &|row| !skip(q, row));
                    let ids = |v: &[Neighbor]| v.iter().map(|n| n.item).collect::<Vec<_>>();
                    assert_eq!(
                        ids(got),
                        ids(&one),
                        "query {q}, k {k}, tile {tile}, {metric:?}"
                    );
                    for (a, b) in got.iter().zip(&one) {
                        assert!((a.score - b.score).abs() < 1e-4);
                    }
                }
                let reported = reported.into_inner().unwrap();
                assert!(reported.windows(2).all(|w| w[0] <= w[1]), "{reported:?}");
                assert_eq!(reported.last(), Some(&301), "{metric:?}, tile {tile}");
            }
        }
        let empty = ExactIndex::build(&ItemEmbeddings::new(3, vec![]).unwrap(), Metric::Cosine);
        assert!(empty.search_all(5, &|_, _| false, &|_| {}).is_empty());
    }

    #[test]
    fn tile_rounds_pair_every_two_tiles_once_and_share_no_tile_within_a_round() {
        for tiles in 0..24 {
            let rounds = super::tile_rounds(tiles);
            let mut seen = std::collections::BTreeSet::new();
            for round in &rounds {
                let mut used = vec![false; tiles];
                for &(a, b) in round {
                    assert!(a <= b && b < tiles, "{tiles} tiles: ({a}, {b})");
                    assert!(seen.insert((a, b)), "{tiles} tiles: ({a}, {b}) twice");
                    for t in [a, b] {
                        assert!(
                            !used[t] || a == b && t == b,
                            "{tiles} tiles: tile {t} twice in {round:?}"
                        );
                        used[t] = true;
                    }
                }
            }
            assert_eq!(seen.len(), tiles * (tiles + 1) / 2, "{tiles} tiles");
            // As many rounds as a tournament needs, plus the diagonal's.
            assert!(
                rounds.len() <= tiles + tiles % 2,
                "{tiles} tiles: {} rounds",
                rounds.len()
            );
        }
    }

    #[test]
    fn every_instruction_set_compares_scores_with_thresholds_alike() {
        use super::masks::GeMask;
        let mut counter = 0u64;
        let mut value = || {
            counter += 1;
            let x = crate::rng::splitmix64(counter);
            match x % 8 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                2 => 0.25,
                _ => (x >> 8) as f32 / (1u64 << 56) as f32 * 2.0 - 1.0,
            }
        };
        for _ in 0..2_000 {
            let scores: [f32; SCAN_CHUNK] = std::array::from_fn(|_| value());
            let thresholds: [f32; SCAN_CHUNK] = std::array::from_fn(|_| value());
            let want = (0..SCAN_CHUNK)
                .filter(|&l| scores[l] >= thresholds[l])
                .fold(0u32, |m, l| m | 1 << l);
            // SAFETY: the portable comparison runs anywhere; the others only after their
            // instruction set is detected.
            assert_eq!(
                unsafe { super::masks::Portable::ge(&scores, &thresholds) },
                want
            );
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") {
                    let got = unsafe { super::masks::Avx2::ge(&scores, &thresholds) };
                    assert_eq!(got, want);
                }
                if std::is_x86_feature_detected!("avx512f") {
                    let got = unsafe { super::masks::Avx512::ge(&scores, &thresholds) };
                    assert_eq!(got, want);
                }
            }
        }
    }
}
