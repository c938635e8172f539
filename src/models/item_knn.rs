//! Item-kNN on co-occurrence: two movies are similar when the same users rated them.
//!
//! Each movie is a sparse vector over users (weights: the rating, or BM25-weighted); similarity is
//! their inner product divided by `‖a‖ · ‖b‖^β`: β = 1 is the cosine, β < 1 penalises popular
//! candidates less. Optionally, two ratings by the same user count more when they were made close
//! together in that user's history (`exp(-ln 2 · gap / half_life)`, gap in positions, and 0 past
//! [`WINDOW_HALF_LIVES`] half-lives, where it is below 0.1%: those co-ratings are not read at
//! all): people rate related films in runs, the idea behind session-based kNN and Markov-chain
//! recommenders; and a co-rating in which the candidate came *before* the query movie can count
//! less than one in which it came after (what people watched next). For every movie the most
//! similar movies are kept, which is what item-to-item recommendations and personalised scoring
//! need. Parameters are chosen by `movierec evaluate` on a validation split.

use crate::interactions::RatingMatrix;
use crate::storage::section_file::{check_partition, SectionFile, SectionWriter};
use crate::storage::shared_slice::SharedSlice;
use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Neighbours kept per movie.
pub const DEFAULT_NEIGHBOURS: usize = 100;

/// With a half-life, co-ratings more than this many half-lives apart count 0 (their decay,
/// `2^-10`, is below 0.1% of adjacent ones) and are never read: at ml-latest's size a fifth of
/// all co-ratings, the far ends of the longest histories.
pub const WINDOW_HALF_LIVES: f32 = 10.0;

/// The largest gap, in positions, at which a co-rating still counts under `half_life`; `None`
/// when every gap does (no half-life).
fn window(half_life: Option<f32>) -> Option<usize> {
    half_life.map(|h| (WINDOW_HALF_LIVES * h.max(1e-3)).ceil() as usize)
}

/// Parameters of [`build`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemKnnParams {
    /// How ratings are weighted.
    pub weighting: Weighting,
    /// Neighbours kept per movie.
    pub neighbours: usize,
    /// Half-life, in positions of a user's history, of the weight of a co-rating; `None` counts
    /// every co-rating fully.
    pub half_life: Option<f32>,
    /// Exponent β of the candidate's norm in the denominator (1 = cosine).
    pub popularity_exponent: f32,
    /// Weight of a co-rating in which the candidate was rated *before* the query movie (1 =
    /// symmetric). Below 1, a movie's neighbours lean towards what people watched next.
    #[serde(default = "symmetric")]
    pub backward_weight: f32,
}

fn symmetric() -> f32 {
    1.0
}

impl ItemKnnParams {
    /// Plain cosine on ratings: no recency, no popularity or direction terms. The unit tests'
    /// reference setting.
    pub const PLAIN: ItemKnnParams = ItemKnnParams {
        weighting: Weighting::Rating,
        neighbours: DEFAULT_NEIGHBOURS,
        half_life: None,
        popularity_exponent: 1.0,
        backward_weight: 1.0,
    };
}

impl Default for ItemKnnParams {
    /// The setting `movierec evaluate` chose on the bundled data's validation split
    /// (docs/EVALUATION.md), with [`DEFAULT_NEIGHBOURS`] neighbours kept for scoring users: what
    /// `train --no-tune` uses and where tuning starts.
    fn default() -> Self {
        ItemKnnParams {
            weighting: Weighting::Rating,
            neighbours: DEFAULT_NEIGHBOURS,
            half_life: Some(100.0),
            popularity_exponent: 0.6,
            backward_weight: 0.5,
        }
    }
}

/// How a user's rating is weighted before the cosine.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Weighting {
    /// The raw rating.
    Rating,
    /// BM25 over users (rare users count more, heavy users are damped).
    Bm25 {
        /// Term-frequency saturation.
        k1: f32,
        /// Length normalisation.
        b: f32,
    },
}

/// The top neighbours of every movie, as parallel arrays per movie: owned after training,
/// memory-mapped in place when served (nothing is decoded or copied at open).
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourLists {
    /// Movie `i`'s neighbours span `indptr[i]..indptr[i + 1]`.
    pub indptr: SharedSlice<u64>,
    /// Neighbour movies, most similar first.
    pub items: SharedSlice<u32>,
    /// Their similarities.
    pub scores: SharedSlice<f32>,
}

impl NeighbourLists {
    /// Packs one best-first `(movie, similarity)` list per movie.
    pub fn from_lists(lists: Vec<Vec<(u32, f32)>>) -> NeighbourLists {
        let mut indptr = Vec::with_capacity(lists.len() + 1);
        indptr.push(0u64);
        let total = lists.iter().map(Vec::len).sum();
        let (mut items, mut scores) = (Vec::with_capacity(total), Vec::with_capacity(total));
        for list in lists {
            for (j, s) in list {
                items.push(j);
                scores.push(s);
            }
            indptr.push(items.len() as u64);
        }
        NeighbourLists {
            indptr: indptr.into(),
            items: items.into(),
            scores: scores.into(),
        }
    }

    /// The entries of movie `item`'s list (positions in `items` and `scores`).
    pub fn span(&self, item: u32) -> Range<usize> {
        self.indptr[item as usize] as usize..self.indptr[item as usize + 1] as usize
    }

    /// The `(movie, similarity)` neighbours of `item`, most similar first. A neighbour outside
    /// the catalog, which only a hand-made file could hold, is skipped (see
    /// [`NeighbourLists::from_bytes`]).
    pub fn of(&self, item: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        let span = self.span(item);
        let movies = self.len();
        self.items[span.clone()]
            .iter()
            .copied()
            .zip(self.scores[span].iter().copied())
            .filter(move |&(j, _)| (j as usize) < movies)
    }
}

const MAGIC: &[u8; 8] = b"MRNEIGHB";
const VERSION: u32 = 2;

impl NeighbourLists {
    /// Number of movies.
    pub fn len(&self) -> usize {
        self.indptr.len() - 1
    }

    /// True when there are no movies.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes the lists as a section file (docs/MODEL_FORMAT.md): magic `MRNEIGHB`, sections
    /// `offsets` (`u64 × (movies + 1)`), `neighbours` (`u32 × entries`) and `similarities`
    /// (`f32 × entries`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.sections().finish()
    }

    /// The file [`NeighbourLists::to_bytes`] gives, to be streamed
    /// (what `artifact::Staging::write_sections` takes).
    pub fn sections(&self) -> SectionWriter<'_> {
        let mut w = SectionWriter::new(MAGIC, VERSION);
        w.add("offsets", &self.indptr)
            .add("neighbours", &self.items)
            .add("similarities", &self.scores);
        w
    }

    /// Opens lists written by [`NeighbourLists::to_bytes`] for a catalog of `movies` movies, in
    /// place. The offsets are checked here; the neighbours are not scanned, which would page in
    /// the whole file (their checksum is verified with the directory's, and
    /// [`NeighbourLists::of`] skips one outside the catalog). Any inconsistency is an error
    /// naming `name`.
    pub fn from_bytes(name: &str, bytes: SharedSlice<u8>, movies: usize) -> Result<NeighbourLists> {
        let bad = |message: String| Error::data(name, message);
        let file = SectionFile::open(bytes, MAGIC, VERSION, "neighbour lists").map_err(bad)?;
        let indptr: SharedSlice<u64> = file.section("offsets").map_err(bad)?;
        if indptr.len() != movies + 1 {
            return Err(bad(format!(
                "has {} movies, the catalog {movies}",
                indptr.len().saturating_sub(1)
            )));
        }
        let items: SharedSlice<u32> = file.section("neighbours").map_err(bad)?;
        let scores = file
            .section_of_len::<f32>("similarities", items.len())
            .map_err(bad)?;
        check_partition(&indptr, items.len()).map_err(bad)?;
        Ok(NeighbourLists {
            indptr,
            items,
            scores,
        })
    }
}

/// The section of a "more like this" lists file that holds each movie's candidate pool floor
/// ([`crate::models::similar`]); files written before it have none.
pub const POOL_FLOORS_SECTION: &str = "pool_floors";

/// The pool floors of a lists file written by [`NeighbourLists::sections`] with a
/// [`POOL_FLOORS_SECTION`] added, for a catalog of `movies` movies; `None` when the file has none.
pub fn pool_floors_from_bytes(
    name: &str,
    bytes: SharedSlice<u8>,
    movies: usize,
) -> Result<Option<SharedSlice<f32>>> {
    let bad = |message: String| Error::data(name, message);
    let file = SectionFile::open(bytes, MAGIC, VERSION, "neighbour lists").map_err(bad)?;
    if !file.has(POOL_FLOORS_SECTION) {
        return Ok(None);
    }
    Ok(Some(
        file.section_of_len(POOL_FLOORS_SECTION, movies)
            .map_err(bad)?,
    ))
}

/// Builds the neighbour lists of every movie: [`build_one`] when the positions are ranks in each
/// user's history (as [`RatingMatrix::build`] makes them), else the general walk.
pub fn build(matrix: &RatingMatrix, params: &ItemKnnParams) -> NeighbourLists {
    build_counted(
        matrix,
        params,
        &crate::progress::Stage::start_unlined("item-kNN lists"),
    )
}

/// [`build`], counting each movie whose list is done in `progress` (train's setting only; the
/// general walk reports nothing).
pub fn build_counted(
    matrix: &RatingMatrix,
    params: &ItemKnnParams,
    progress: &crate::progress::Stage,
) -> NeighbourLists {
    if let Some(histories) = AnyHistories::of(matrix, params.weighting) {
        progress.set_total(matrix.n_items() as u64);
        return histories.build(matrix, params, progress, None);
    }
    let variant = (params.popularity_exponent, params.backward_weight);
    build_variants(
        matrix,
        params.weighting,
        params.half_life,
        params.neighbours,
        &[variant],
        None,
    )
    .pop()
    .expect("one variant asked, one built")
}

/// [`build_counted`] for the movies `changed` marks only; every other movie keeps its list of
/// `previous` (lists of the same catalog, from a training on fewer ratings). What an
/// incremental training does (`crate::incremental`) under a weighting [`update_lists`] cannot
/// update (BM25): a movie whose raters' histories did not change has the same co-ratings; what
/// its kept list does not see is a candidate's norm changed by other users' ratings, and, under
/// BM25, weights moved by the mean history length.
pub fn rebuild_changed(
    matrix: &RatingMatrix,
    params: &ItemKnnParams,
    progress: &crate::progress::Stage,
    previous: &NeighbourLists,
    changed: &[bool],
) -> NeighbourLists {
    let n_items = matrix.n_items();
    assert_eq!(changed.len(), n_items, "one flag per movie");
    assert_eq!(
        previous.len(),
        n_items,
        "previous lists of the same catalog"
    );
    let rows: Vec<u32> = (0..n_items as u32)
        .filter(|&i| changed[i as usize])
        .collect();
    let fresh = if let Some(histories) = AnyHistories::of(matrix, params.weighting) {
        progress.set_total(rows.len() as u64);
        histories.build(matrix, params, progress, Some(changed))
    } else {
        let variant = (params.popularity_exponent, params.backward_weight);
        build_variants(
            matrix,
            params.weighting,
            params.half_life,
            params.neighbours,
            &[variant],
            Some(&rows),
        )
        .pop()
        .expect("one variant asked, one built")
    };
    let lists = (0..n_items as u32)
        .map(|i| {
            let from = if changed[i as usize] {
                &fresh
            } else {
                previous
            };
            from.of(i).collect()
        })
        .collect();
    NeighbourLists::from_lists(lists)
}

/// A user whose history changed since a previous training: `(movie, rating)` in history order,
/// before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangedHistory {
    /// The history the previous lists were built from.
    pub before: Vec<(u32, f32)>,
    /// The history now.
    pub after: Vec<(u32, f32)>,
}

impl ChangedHistory {
    /// Whether the history only grew at its end (the common case: new ratings are the latest),
    /// so that every co-rating it had is unchanged.
    fn appended(&self) -> bool {
        self.after.len() >= self.before.len()
            && self
                .before
                .iter()
                .zip(&self.after)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    }
}

/// The lists of [`build_counted`] on `matrix`, updated from `previous` (built with the same
/// `params` on the ratings before) instead of walking every co-rating again: only the co-ratings
/// of the users whose histories changed are walked (`changed`; for a history that only grew,
/// only the pairs with a new rating), their difference added to each movie's sums. A candidate
/// of a previous list has its sum back from its score (`score · ‖i‖ · ‖j‖^β` with the norms
/// before, `before_sq_norms` being each movie's sum of squared ratings then), so its new score,
/// with the new norms, is exact. A candidate that was not listed enters with the difference
/// alone (its earlier sum, below the list's last, is not kept): it is ranked no higher than it
/// should be. With lists long enough to hold every candidate, the update equals a full build
/// (a test checks it). Only for [`Weighting::Rating`] (a BM25 weight depends on every user's
/// history length and the mean); `None` for another weighting.
///
/// At `synth --scale 1` with the latest 4% of the ratings new (13,228 users), 1.9 s instead of
/// the 24 s of a full build (docs/BENCHMARKS.md).
pub fn update_lists(
    matrix: &RatingMatrix,
    params: &ItemKnnParams,
    progress: &crate::progress::Stage,
    previous: &NeighbourLists,
    before_sq_norms: &[f32],
    changed: &[ChangedHistory],
) -> Option<NeighbourLists> {
    if params.weighting != Weighting::Rating {
        return None;
    }
    let n_items = matrix.n_items();
    assert_eq!(
        previous.len(),
        n_items,
        "previous lists of the same catalog"
    );
    assert_eq!(before_sq_norms.len(), n_items, "one norm per movie");
    let rate = params
        .half_life
        .map_or(0.0, |h| std::f32::consts::LN_2 / h.max(1e-3));
    let longest = changed
        .iter()
        .map(|c| c.before.len().max(c.after.len()))
        .max()
        .unwrap_or(0);
    let reach = window(params.half_life).map_or(longest, |w| w.min(longest));
    let after_decay: Vec<f32> = (0..=reach).map(|gap| (-rate * gap as f32).exp()).collect();
    let before_decay: Vec<f32> = after_decay
        .iter()
        .map(|d| params.backward_weight * d)
        .collect();
    // The walks each movie's sums need: (changed user, position, kind).
    const GROWN: u8 = 0; // an old rating of a grown history: only the new ratings after it
    const ADDED: u8 = 1; // a rating of the new history: both sides, added
    const REMOVED: u8 = 2; // a rating of the old history: both sides, taken away
    let mut walks: Vec<(u32, u32, u32, u8)> = changed
        .par_iter()
        .enumerate()
        .flat_map_iter(|(c, h)| {
            let c = c as u32;
            let grown = h.appended();
            let old_len = h.before.len();
            let before: Vec<(u32, u32, u32, u8)> = if grown {
                // Old ratings more than the window before the first new one gain nothing.
                (old_len.saturating_sub(reach)..old_len)
                    .filter(|_| h.after.len() > old_len)
                    .map(|p| (h.before[p].0, c, p as u32, GROWN))
                    .collect()
            } else {
                (0..old_len)
                    .map(|p| (h.before[p].0, c, p as u32, REMOVED))
                    .collect()
            };
            let first_new = if grown { old_len } else { 0 };
            let after = (first_new..h.after.len()).map(move |p| (h.after[p].0, c, p as u32, ADDED));
            before.into_iter().chain(after.collect::<Vec<_>>())
        })
        .collect();
    walks.par_sort_unstable_by_key(|w| w.0);
    let starts = crate::interactions::offsets(walks.iter().map(|w| w.0), n_items);
    let norm_of = |sq: f32| sq.sqrt();
    let norms: Vec<f32> = (0..n_items)
        .map(|i| {
            norm_of(
                matrix.values[matrix.indptr[i]..matrix.indptr[i + 1]]
                    .iter()
                    .map(|v| v * v)
                    .sum(),
            )
        })
        .collect();
    let before_norms: Vec<f32> = before_sq_norms.iter().map(|&s| norm_of(s)).collect();
    let powered: Vec<f32> = norms
        .iter()
        .map(|n| n.powf(params.popularity_exponent))
        .collect();
    let before_powered: Vec<f32> = before_norms
        .iter()
        .map(|n| n.powf(params.popularity_exponent))
        .collect();
    let k = params.neighbours;
    progress.set_total(n_items as u64);
    let lists: Vec<Vec<(u32, f32)>> = (0..n_items)
        .into_par_iter()
        .map_init(
            || (vec![-0.0f32; n_items], vec![0u32; n_items + 1], Vec::new()),
            |(acc, touched, kept), i| {
                let (acc, touched) = (&mut acc[..], &mut touched[..]);
                let mut count = 0;
                for &(_, c, p, kind) in &walks[starts[i]..starts[i + 1]] {
                    let h = &changed[c as usize];
                    let p = p as usize;
                    let (history, sign) = match kind {
                        REMOVED => (&h.before, -1.0),
                        _ => (&h.after, 1.0),
                    };
                    let own = sign * history[p].1;
                    let after_from = if kind == GROWN { h.before.len() } else { p + 1 };
                    let after_to = history.len().min(p + reach + 1);
                    if after_from < after_to {
                        let side = history[after_from..after_to].iter();
                        let decays = &after_decay[after_from - p..];
                        count = accumulate(acc, touched, count, side, decays, own, &NO_TABLE);
                    }
                    if kind != GROWN {
                        let side = history[p.saturating_sub(reach)..p].iter().rev();
                        count = accumulate(
                            acc,
                            touched,
                            count,
                            side,
                            &before_decay[1..],
                            own,
                            &NO_TABLE,
                        );
                    }
                }
                let denominator = |norm: f32, powered: f32| (norm * powered).max(f32::MIN_POSITIVE);
                // A movie whose ratings were all removed is nobody's neighbour.
                let rated = |j: u32| norms[j as usize] > 0.0;
                let mut best = TopK::new(k, kept);
                for (j, score) in previous.of(i as u32) {
                    let slot = &mut acc[j as usize];
                    let difference = if slot.to_bits() == UNTOUCHED {
                        0.0
                    } else {
                        *slot
                    };
                    *slot = -0.0;
                    let sum = score * denominator(before_norms[i], before_powered[j as usize])
                        + difference;
                    if sum > 0.0 && rated(j) {
                        best.offer(j, sum / denominator(norms[i], powered[j as usize]));
                    }
                }
                for &j in &touched[..count] {
                    let slot = &mut acc[j as usize];
                    let sum = *slot;
                    *slot = -0.0;
                    if sum > 0.0 && rated(j) {
                        best.offer(j, sum / denominator(norms[i], powered[j as usize]));
                    }
                }
                progress.inc(1);
                if !rated(i as u32) {
                    // Every rating of it removed: no co-ratings, no list (what remains of its
                    // sums is rounding).
                    return Vec::new();
                }
                best.into_best()
            },
        )
        .collect();
    Some(NeighbourLists::from_lists(lists))
}

/// The lists of several settings that share their weighting and half-life, from one pass over
/// the co-ratings: one list set per `(popularity_exponent, backward_weight)` of `variants`. The
/// co-ratings in which the candidate came after the query movie and those in which it came
/// before are summed apart, so the backward weight and the popularity exponent only enter when
/// candidates are scored. With `queries`, only those movies get lists (the others are empty):
/// what tuning needs, since a trial only reads the lists of its validation queries.
fn build_variants(
    matrix: &RatingMatrix,
    weighting: Weighting,
    half_life: Option<f32>,
    neighbours: usize,
    variants: &[(f32, f32)],
    queries: Option<&[u32]>,
) -> Vec<NeighbourLists> {
    build_grid(
        matrix,
        &[weighting],
        &[half_life],
        neighbours,
        variants,
        queries,
    )
    .pop()
    .and_then(|mut by_half_life| by_half_life.pop())
    .expect("one weighting and one half-life asked, one built")
}

/// [`build_variants`] for several half-lives at once (tests compare it with separate builds):
/// see [`build_grid`]. Returns, per half-life of `half_lives`, one list set per variant.
#[cfg(test)]
fn build_passes(
    matrix: &RatingMatrix,
    weighting: Weighting,
    half_lives: &[Option<f32>],
    neighbours: usize,
    variants: &[(f32, f32)],
    queries: Option<&[u32]>,
) -> Vec<Vec<NeighbourLists>> {
    build_grid(
        matrix,
        &[weighting],
        half_lives,
        neighbours,
        variants,
        queries,
    )
    .pop()
    .expect("one weighting asked, one built")
}

/// `sums[w · H + h] += products[w] · decays[h]` for `H` half-lives.
#[inline(always)]
fn add_decayed<const H: usize>(sums: &mut [f32], products: &[f32], decays: &[f32]) {
    let decays: &[f32; H] = decays.try_into().expect("H decays");
    for (sums, &product) in sums.chunks_exact_mut(H).zip(products) {
        let sums: &mut [f32; H] = sums.try_into().expect("H sums");
        for h in 0..H {
            sums[h] += product * decays[h];
        }
    }
}

/// The user weights of `weighting` (one per rating, in the matrix's order).
fn weights_of(matrix: &RatingMatrix, weighting: Weighting) -> Vec<f32> {
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    match weighting {
        Weighting::Rating => matrix.values.clone(),
        Weighting::Bm25 { k1, b } => {
            let mut user_len = vec![0f32; n_users];
            for &u in &matrix.users {
                user_len[u as usize] += 1.0;
            }
            let avg = matrix.nnz() as f32 / n_users.max(1) as f32;
            let n = n_items as f32;
            (0..n_items)
                .flat_map(|i| matrix.indptr[i]..matrix.indptr[i + 1])
                .map(|e| {
                    let u = matrix.users[e] as usize;
                    let idf = ((n - user_len[u] + 0.5) / (user_len[u] + 0.5))
                        .max(1e-3)
                        .ln_1p();
                    let tf = matrix.values[e];
                    idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * user_len[u] / avg))
                })
                .collect()
        }
    }
}

/// The lists of every `(weighting, half-life, variant)` of a grid from one walk over the
/// co-ratings: each co-rated pair is summed under every weighting and half-life side by side
/// (their sums share a cache line, and the half-lives of one weighting are contiguous, so the
/// sums vectorise), which is what the tuning's 72 settings cost once instead of eight times.
/// Returns `[weighting][half-life][variant]`.
pub fn build_grid(
    matrix: &RatingMatrix,
    weightings: &[Weighting],
    half_lives: &[Option<f32>],
    neighbours: usize,
    variants: &[(f32, f32)],
    queries: Option<&[u32]>,
) -> Vec<Vec<Vec<NeighbourLists>>> {
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    let (n_w, n_h, n_v) = (weightings.len(), half_lives.len(), variants.len());
    // `per_weighting[w][e]`: rating e under weighting w.
    let per_weighting: Vec<Vec<f32>> = weightings.iter().map(|&w| weights_of(matrix, w)).collect();
    // The transpose (user → items) for co-occurrence counting, with each rating's weights.
    let user_ptr = matrix.user_offsets();
    let mut fill = user_ptr.clone();
    let mut by_user: Vec<(u32, u32)> = vec![(0, 0); matrix.nnz()];
    let mut user_weights = vec![0f32; matrix.nnz() * n_w];
    for i in 0..n_items {
        for e in matrix.indptr[i]..matrix.indptr[i + 1] {
            let u = matrix.users[e] as usize;
            let at = fill[u];
            fill[u] += 1;
            by_user[at] = (i as u32, matrix.positions[e]);
            for (w, weights) in per_weighting.iter().enumerate() {
                user_weights[at * n_w + w] = weights[e];
            }
        }
    }
    // The decay of a co-rating by the gap between its two positions, looked up rather than
    // computed: an `exp` per co-rated pair would dominate the build. `decay[gap · n_h + h]`.
    let longest = (0..n_users)
        .map(|u| user_ptr[u + 1] - user_ptr[u])
        .max()
        .unwrap_or(0);
    // Past a half-life's window the decay is 0: such a co-rating adds nothing, and a candidate
    // with nothing else (both sums 0, as weights are positive) is not listed, as `build_one`,
    // which does not read it, never sees it.
    let decay: Vec<f32> = (0..=longest)
        .flat_map(|gap| {
            half_lives.iter().map(move |&half_life| {
                let rate = half_life.map_or(0.0, |h| std::f32::consts::LN_2 / h.max(1e-3));
                if window(half_life).is_some_and(|w| gap > w) {
                    0.0
                } else {
                    (-rate * gap as f32).exp()
                }
            })
        })
        .collect();
    // `norms[i · n_w + w]`.
    let norms: Vec<f32> = (0..n_items)
        .flat_map(|i| {
            per_weighting.iter().map(move |weights| {
                weights[matrix.indptr[i]..matrix.indptr[i + 1]]
                    .iter()
                    .map(|w| w * w)
                    .sum::<f32>()
                    .sqrt()
            })
        })
        .collect();
    // The candidates' norms raised to each variant's exponent, once, side by side:
    // `powered[(j · n_w + w) · n_v + v]`.
    let powered: Vec<f32> = norms
        .iter()
        .flat_map(|n| variants.iter().map(move |&(exponent, _)| n.powf(exponent)))
        .collect();
    let backward: Vec<f32> = variants.iter().map(|&(_, backward)| backward).collect();
    let rows: Vec<u32> = match queries {
        Some(queries) => queries.to_vec(),
        None => (0..n_items as u32).collect(),
    };
    // A candidate's sums: `[before][weighting][half-life]`, `before` 1 for co-ratings where it
    // came before the query movie.
    let half = n_w * n_h;
    let stride = 2 * half;
    type Lists = Vec<Vec<(u32, f32)>>;
    // Per row: its lists, `[weighting · n_h + half-life][variant]`.
    let built: Vec<(u32, Vec<Lists>)> = rows
        .into_par_iter()
        .map_init(
            // `seen[j] == i + 1` once j is in `touched` for row i.
            || {
                (
                    vec![0f32; stride * n_items],
                    vec![0u32; n_items],
                    Vec::new(),
                    vec![0f32; n_w],
                    (Vec::new(), Vec::new()),
                )
            },
            |(acc, seen, touched, products, (worst, scores)), i| {
                let i = i as usize;
                let stamp = i as u32 + 1;
                for e in matrix.indptr[i]..matrix.indptr[i + 1] {
                    let p = matrix.positions[e];
                    let u = matrix.users[e] as usize;
                    for at in user_ptr[u]..user_ptr[u + 1] {
                        let (j, pj) = by_user[at];
                        let j = j as usize;
                        if seen[j] != stamp {
                            seen[j] = stamp;
                            touched.push(j as u32);
                        }
                        for (w, (product, weights)) in
                            products.iter_mut().zip(&per_weighting).enumerate()
                        {
                            *product = weights[e] * user_weights[at * n_w + w];
                        }
                        let gap = pj.abs_diff(p) as usize * n_h;
                        let decays = &decay[gap..gap + n_h];
                        let base = stride * j + usize::from(pj < p) * half;
                        let sums = &mut acc[base..base + half];
                        match n_h {
                            // The tuning's four half-lives and the model's one, with their
                            // lengths known, so the sums compile to vector operations.
                            4 => add_decayed::<4>(sums, products, decays),
                            1 => add_decayed::<1>(sums, products, decays),
                            _ => {
                                for (sums, &product) in
                                    sums.chunks_exact_mut(n_h).zip(products.iter())
                                {
                                    for (sum, &d) in sums.iter_mut().zip(decays) {
                                        *sum += product * d;
                                    }
                                }
                            }
                        }
                    }
                }
                touched.retain(|&j| j as usize != i);
                let score = |sum: f32, j: usize, w: usize, v: usize| {
                    let denominator = norms[i * n_w + w] * powered[(j * n_w + w) * n_v + v];
                    sum / denominator.max(f32::MIN_POSITIVE)
                };
                let lists: Vec<Lists> = if neighbours <= SMALL_K {
                    // One walk over the candidates offers each to every list: its sums and
                    // powers are read once, not once per list. A candidate's scores for the
                    // variants are computed together (they vectorise) and compared with each
                    // list's worst kept score in one flat array; only those not below it go to
                    // the list, which decides as before (ties by id), so the lists are the same.
                    let mut few: Vec<Few> = (0..half * n_v).map(|_| Few::new(neighbours)).collect();
                    let worst = &mut *worst;
                    worst.clear();
                    worst.resize(half * n_v, f32::NEG_INFINITY);
                    scores.resize(n_v, 0.0);
                    for &j in touched.iter() {
                        let j = j as usize;
                        let sums = &acc[stride * j..stride * j + stride];
                        for wh in 0..half {
                            let (after, before) = (sums[wh], sums[half + wh]);
                            if after == 0.0 && before == 0.0 {
                                continue; // co-rated only past this half-life's window
                            }
                            let w = wh / n_h;
                            let norm = norms[i * n_w + w];
                            let powers = &powered[(j * n_w + w) * n_v..(j * n_w + w + 1) * n_v];
                            for ((score, &power), &back) in
                                scores.iter_mut().zip(powers).zip(&backward)
                            {
                                *score =
                                    (after + back * before) / (norm * power).max(f32::MIN_POSITIVE);
                            }
                            let at = wh * n_v;
                            for (v, &score) in scores.iter().enumerate() {
                                if score.partial_cmp(&worst[at + v])
                                    != Some(std::cmp::Ordering::Less)
                                {
                                    let list = &mut few[at + v];
                                    list.offer(j as u32, score);
                                    if let Some(last) = list.full_worst() {
                                        worst[at + v] = last;
                                    }
                                }
                            }
                        }
                    }
                    let mut few = few.into_iter().map(Few::into_best);
                    (0..half)
                        .map(|_| few.by_ref().take(n_v).collect())
                        .collect()
                } else {
                    (0..half)
                        .map(|wh| {
                            variants
                                .iter()
                                .enumerate()
                                .map(|(v, &(_, backward))| {
                                    let mut scored: Vec<(u32, f32)> = touched
                                        .iter()
                                        .filter_map(|&j| {
                                            let slot = stride * j as usize + wh;
                                            let (after, before) = (acc[slot], acc[slot + half]);
                                            if after == 0.0 && before == 0.0 {
                                                return None; // past the window only
                                            }
                                            let sum = after + backward * before;
                                            Some((j, score(sum, j as usize, wh / n_h, v)))
                                        })
                                        .collect();
                                    keep_best(&mut scored, neighbours);
                                    scored
                                })
                                .collect()
                        })
                        .collect()
                };
                for j in touched.drain(..) {
                    acc[stride * j as usize..stride * (j as usize + 1)].fill(0.0);
                }
                acc[stride * i..stride * (i + 1)].fill(0.0);
                (i as u32, lists)
            },
        )
        .collect();
    let mut grid: Vec<Lists> = vec![vec![Vec::new(); n_items]; half * n_v];
    for (i, lists) in built {
        for (wh, pass) in lists.into_iter().enumerate() {
            for (v, list) in pass.into_iter().enumerate() {
                grid[wh * n_v + v][i as usize] = list;
            }
        }
    }
    let mut grid = grid.into_iter().map(NeighbourLists::from_lists);
    (0..n_w)
        .map(|_| {
            (0..n_h)
                .map(|_| grid.by_ref().take(n_v).collect())
                .collect()
        })
        .collect()
}

/// One rating of a user's history as [`build_one`] reads it: the movie (renumbered, see
/// [`Histories::original`]) and the rating's weight.
trait Entry: Copy + Send + Sync {
    fn movie(self) -> u32;
    fn weight(self, table: &[f32; 256]) -> f32;
}

/// A movie and its weight side by side (8 bytes): any weighting.
impl Entry for (u32, f32) {
    #[inline(always)]
    fn movie(self) -> u32 {
        self.0
    }
    #[inline(always)]
    fn weight(self, _: &[f32; 256]) -> f32 {
        self.1
    }
}

/// A movie in the low 24 bits and the index of its weight in [`Histories::table`] in the high 8
/// (4 bytes): when the weights take at most 256 values, as the ratings themselves do (ten half
/// stars). The walk reads a history entry per co-rating (1.8e10 at `synth --scale 1`) from far
/// more histories than the caches hold: half the bytes, half the cache lines to wait for.
#[derive(Clone, Copy)]
struct Packed(u32);

impl Entry for Packed {
    #[inline(always)]
    fn movie(self) -> u32 {
        self.0 & PACKED_MOVIE
    }
    #[inline(always)]
    fn weight(self, table: &[f32; 256]) -> f32 {
        table[(self.0 >> 24) as usize]
    }
}

/// The movie bits of a [`Packed`] entry.
const PACKED_MOVIE: u32 = (1 << 24) - 1;

/// The weight table of wide entries, which do not read it.
static NO_TABLE: [f32; 256] = [0.0; 256];

/// Every user's ratings in the order they were made, with their weights: user `u`'s rating at
/// position `p` is entry `start[u] + p`. The positions of a rating matrix are ranks (0, 1, 2…
/// per user), so the gap between two co-ratings is the distance between their entries and a
/// user's co-ratings before and after a movie are the two sides of its entry.
/// One [`Entry`] per rating.
struct Histories<E> {
    start: Vec<usize>,
    /// One stream to read per side of a history.
    ratings: Vec<E>,
    /// Where each rating of the matrix (in its order) sits in `ratings` (4 bytes each: 135 MB
    /// at 33.9M ratings).
    entry: Vec<u32>,
    /// The weights of [`Packed`] entries (unused by wide ones).
    table: Box<[f32; 256]>,
    /// The catalog index of each movie number in `ratings`: movies are numbered most rated
    /// first, so the accumulators the walk adds into most often are a few contiguous kilobytes
    /// (the first level cache) rather than spread over all of them.
    original: Vec<u32>,
}

/// Histories packed when the weights allow, else wide.
enum AnyHistories {
    Packed(Histories<Packed>),
    Wide(Histories<(u32, f32)>),
}

impl AnyHistories {
    /// `None` when the positions are not ranks (a hand-built matrix), or beyond `u32` ratings.
    fn of(matrix: &RatingMatrix, weighting: Weighting) -> Option<AnyHistories> {
        AnyHistories::packed_if(matrix, weighting, true)
    }

    /// [`AnyHistories::of`], wide whatever the weights when `pack` is false.
    fn packed_if(matrix: &RatingMatrix, weighting: Weighting, pack: bool) -> Option<AnyHistories> {
        if u32::try_from(matrix.nnz()).is_err() {
            return None;
        }
        let n_items = matrix.n_items();
        let start = matrix.user_offsets();
        let weights_by_rating = weights_of(matrix, weighting);
        let counts: Vec<usize> = matrix.indptr.windows(2).map(|w| w[1] - w[0]).collect();
        let (original, number) = crate::interactions::most_counted_first(&counts);
        // Where each rating sits in its user's history; every place taken once. On all cores
        // (33.9M ratings at ml-latest's size: about a second on one).
        let taken: Vec<AtomicU64> = (0..matrix.nnz().div_ceil(64))
            .into_par_iter()
            .map(|_| AtomicU64::new(0))
            .collect();
        let not_ranks = AtomicBool::new(false);
        let entry: Vec<u32> = matrix
            .users
            .par_iter()
            .zip(&matrix.positions)
            .with_min_len(1 << 14)
            .map(|(&u, &position)| {
                let u = u as usize;
                let at = start[u] + position as usize;
                let bit = 1u64 << (at % 64);
                if at >= start[u + 1] || taken[at / 64].fetch_or(bit, Ordering::Relaxed) & bit != 0
                {
                    not_ranks.store(true, Ordering::Relaxed);
                }
                at as u32
            })
            .collect();
        drop(taken);
        if not_ranks.into_inner() {
            return None;
        }
        // The weights' table, when they take at most 256 values, sorted.
        let distinct: Option<Vec<u32>> = if pack && n_items <= PACKED_MOVIE as usize + 1 {
            /// `into` with `more`'s values added, `None` past 256 values.
            fn add(mut into: Vec<u32>, more: impl IntoIterator<Item = u32>) -> Option<Vec<u32>> {
                for bits in more {
                    if !into.contains(&bits) {
                        if into.len() == 256 {
                            return None;
                        }
                        into.push(bits);
                    }
                }
                Some(into)
            }
            weights_by_rating
                .par_chunks(1 << 16)
                .map(|chunk| add(Vec::new(), chunk.iter().map(|w| w.to_bits())))
                .try_reduce(Vec::new, add)
        } else {
            None
        };
        let packable = distinct.is_some();
        let mut table = Box::new([0f32; 256]);
        let distinct = distinct.map_or(0, |bits| {
            for (t, &b) in table.iter_mut().zip(&bits) {
                *t = f32::from_bits(b);
            }
            bits.len()
        });
        table[..distinct].sort_by(f32::total_cmp);
        let code = |w: f32| {
            table[..distinct]
                .binary_search_by(|t| t.total_cmp(&w))
                .expect("every weight is in the table") as u32
        };
        /// Each rating `(movie, matrix entry)` made into its place.
        fn fill<E: Copy>(
            matrix: &RatingMatrix,
            entry: &[u32],
            empty: E,
            make: impl Fn(usize, usize) -> E,
        ) -> Vec<E> {
            let mut ratings = vec![empty; matrix.nnz()];
            for i in 0..matrix.n_items() {
                for e in matrix.indptr[i]..matrix.indptr[i + 1] {
                    ratings[entry[e] as usize] = make(i, e);
                }
            }
            ratings
        }
        Some(if packable {
            // Each place written once (checked above), by whichever core has its movie.
            let slots = crate::interactions::atomics(matrix.nnz(), 0);
            (0..n_items).into_par_iter().with_min_len(64).for_each(|i| {
                for e in matrix.indptr[i]..matrix.indptr[i + 1] {
                    let packed = number[i] | code(weights_by_rating[e]) << 24;
                    slots[entry[e] as usize].store(packed, Ordering::Relaxed);
                }
            });
            let ratings = crate::interactions::plain(slots)
                .into_iter()
                .map(Packed)
                .collect();
            AnyHistories::Packed(Histories {
                start,
                ratings,
                entry,
                table,
                original,
            })
        } else {
            let ratings = fill(matrix, &entry, (0, 0.0), |i, e| {
                (number[i], weights_by_rating[e])
            });
            AnyHistories::Wide(Histories {
                start,
                ratings,
                entry,
                table,
                original,
            })
        })
    }

    /// [`build_one`] on whichever histories these are.
    fn build(
        &self,
        matrix: &RatingMatrix,
        params: &ItemKnnParams,
        progress: &crate::progress::Stage,
        only: Option<&[bool]>,
    ) -> NeighbourLists {
        match self {
            AnyHistories::Packed(h) => build_one(matrix, h, params, progress, only),
            AnyHistories::Wide(h) => build_one(matrix, h, params, progress, only),
        }
    }
}

/// The lists of one setting, what `train` builds: for each movie, its users' histories are read
/// on both sides of its entry (as far as the half-life's window), every co-rating's weight (the
/// two weights, the decay of its gap, the backward weight when it came before) is added into one
/// accumulator per candidate, and the candidates are scored and the best kept. The backward weight and the decay are folded into one
/// table per side, so a co-rating costs one sequential read (its `(movie, weight)`), a table read
/// and one add into an accumulator array (4 bytes a movie: 346 KB at 86,537 movies, which stays
/// in a core's L2 cache); the next histories' first lines are prefetched. Untouched
/// accumulators hold −0.0, so the first touch is seen in the value itself, with no second array.
/// At `synth --scale 1` (1.8e10 co-ratings) this is 3 ns a co-rating per core, 4× faster than the
/// general walk (docs/BENCHMARKS.md). Gives the lists of [`build_grid`] (up to the order of float
/// additions; a test compares them).
///
/// With `only`, the movies it marks get lists and the others empty ones.
fn build_one<E: Entry>(
    matrix: &RatingMatrix,
    histories: &Histories<E>,
    params: &ItemKnnParams,
    progress: &crate::progress::Stage,
    only: Option<&[bool]>,
) -> NeighbourLists {
    let n_items = matrix.n_items();
    let Histories {
        start,
        ratings,
        entry,
        table,
        original,
    } = histories;
    let longest = start.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let rate = params
        .half_life
        .map_or(0.0, |h| std::f32::consts::LN_2 / h.max(1e-3));
    // `after[gap]`, `before[gap]`: what a co-rating `gap` positions after (before) counts, up to
    // the half-life's window: the walk below stops where its table ends.
    let reach = window(params.half_life).map_or(longest, |w| w.min(longest));
    let after_decay: Vec<f32> = (0..=reach).map(|gap| (-rate * gap as f32).exp()).collect();
    let before_decay: Vec<f32> = after_decay
        .iter()
        .map(|d| params.backward_weight * d)
        .collect();
    let norms: Vec<f32> = (0..n_items)
        .map(|i| {
            (matrix.indptr[i]..matrix.indptr[i + 1])
                .map(|e| ratings[entry[e] as usize].weight(table).powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect();
    // By movie number, as the accumulators are.
    let powered: Vec<f32> = original
        .iter()
        .map(|&i| norms[i as usize].powf(params.popularity_exponent))
        .collect();
    let k = params.neighbours;
    let lists: Vec<Vec<(u32, f32)>> = (0..n_items)
        .into_par_iter()
        .map_init(
            || (vec![-0.0f32; n_items], vec![0u32; n_items + 1], Vec::new()),
            |(acc, touched, kept), i| {
                if only.is_some_and(|only| !only[i]) {
                    return Vec::new();
                }
                let (acc, touched) = (&mut acc[..], &mut touched[..]);
                let rows = matrix.indptr[i]..matrix.indptr[i + 1];
                // Co-ratings this walk reads, at most: past a few per movie, the accumulators
                // are scanned afterwards instead of the walk noting which it touched.
                let walked: usize = rows
                    .clone()
                    .map(|e| {
                        let u = matrix.users[e] as usize;
                        (start[u + 1] - start[u]).min(2 * reach + 1)
                    })
                    .sum();
                let scan = walked >= SCAN_SHARE * n_items;
                let mut count = 0;
                for e in rows.clone() {
                    // The next histories' first lines are fetched while this one is read: each
                    // starts at a random place, the hardware prefetcher only follows a stream.
                    if e + PREFETCH_AHEAD < rows.end {
                        prefetch_around(ratings, entry[e + PREFETCH_AHEAD] as usize);
                    }
                    let u = matrix.users[e] as usize;
                    let at = entry[e] as usize;
                    let own = ratings[at].weight(table);
                    let (first, end) = (start[u], start[u + 1]);
                    // Before: nearest first, so the decay table is read forwards.
                    let before = ratings[first..at].iter().rev();
                    let after = ratings[at + 1..end].iter();
                    if scan {
                        add_all(acc, before, &before_decay[1..], own, table);
                        add_all(acc, after, &after_decay[1..], own, table);
                    } else {
                        let decays = &before_decay[1..];
                        count = accumulate(acc, touched, count, before, decays, own, table);
                        let decays = &after_decay[1..];
                        count = accumulate(acc, touched, count, after, decays, own, table);
                    }
                }
                let norm = norms[i];
                let mut best = TopK::new(k, kept);
                let mut take = |j: usize, slot: &mut f32| {
                    let score = *slot / (norm * powered[j]).max(f32::MIN_POSITIVE);
                    *slot = -0.0;
                    best.offer(original[j], score);
                };
                if scan {
                    for (block, slots) in acc.chunks_mut(SCAN_BLOCK).enumerate() {
                        // All untouched (the common case) in one vector comparison.
                        let any = slots
                            .iter()
                            .fold(0, |any, s| any | (s.to_bits() ^ UNTOUCHED));
                        if any == 0 {
                            continue;
                        }
                        for (at, slot) in slots.iter_mut().enumerate() {
                            if slot.to_bits() != UNTOUCHED {
                                take(block * SCAN_BLOCK + at, slot);
                            }
                        }
                    }
                } else {
                    for &j in &touched[..count] {
                        take(j as usize, &mut acc[j as usize]);
                    }
                }
                progress.inc(1);
                best.into_best()
            },
        )
        .collect();
    NeighbourLists::from_lists(lists)
}

/// The bits of −0.0, what an accumulator of [`build_one`] holds until a co-rating is added.
const UNTOUCHED: u32 = 0x8000_0000;

/// Adds `own · weight · decay` into `acc[item]` for each `(item, weight)` of one side of a
/// user's history and its decays, appending each item touched for the first time to
/// `touched[count..]`; returns the new count. Branch-free: the item is always written at
/// `touched[count]` and the count moves on only when the accumulator held −0.0 (`touched` has
/// room for every movie and one more). The accumulator and the list are plain slices, so
/// nothing is reloaded per co-rating; this loop is where `train` spends most of its time.
#[inline(always)]
fn accumulate<'a, E: Entry + 'a>(
    acc: &mut [f32],
    touched: &mut [u32],
    mut count: usize,
    side: impl Iterator<Item = &'a E>,
    decays: &[f32],
    own: f32,
    table: &[f32; 256],
) -> usize {
    for (&rating, &decay) in side.zip(decays) {
        let (j, weight) = (rating.movie(), rating.weight(table));
        let slot = &mut acc[j as usize];
        let bits = slot.to_bits();
        touched[count] = j;
        count += usize::from(bits == UNTOUCHED);
        *slot = f32::from_bits(bits) + own * weight * decay;
    }
    count
}

/// A movie whose walk reads at least this many co-ratings per movie of the catalog has its
/// accumulators scanned after the walk ([`add_all`]) rather than noted as touched
/// ([`accumulate`]): the scan reads the accumulators 16 at a time, the noting costs a store and a
/// comparison per co-rating (docs/BENCHMARKS.md; from one co-rating per movie it was no faster).
const SCAN_SHARE: usize = 2;

/// Accumulators compared at once by the scan of [`build_one`].
const SCAN_BLOCK: usize = 16;

/// [`accumulate`] without noting what it touches: the accumulators are scanned afterwards.
/// −0.0 plus a weight is the weight, and −0.0 plus +0.0 is +0.0, so a touched accumulator never
/// holds the bits of an untouched one.
#[inline(always)]
fn add_all<'a, E: Entry + 'a>(
    acc: &mut [f32],
    side: impl Iterator<Item = &'a E>,
    decays: &[f32],
    own: f32,
    table: &[f32; 256],
) {
    for (&rating, &decay) in side.zip(decays) {
        acc[rating.movie() as usize] += own * rating.weight(table) * decay;
    }
}

/// How many ratings of a movie ahead [`build_one`] prefetches the histories of.
const PREFETCH_AHEAD: usize = 4;

/// Asks for the cache lines around `ratings[at]` (both sides: a history is read outwards from
/// there). Only a hint: it reads nothing and cannot fault.
#[inline(always)]
fn prefetch_around<E>(ratings: &[E], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = ratings.as_ptr().wrapping_add(at) as *const i8;
        for line in [-128isize, -64, 0, 64] {
            // SAFETY: SSE is baseline on x86_64, and a prefetch never faults, whatever the
            // address (it may fall outside `ratings`: then it only wastes a fetch).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_offset(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ratings, at);
}

/// The `k` best of a stream of `(item, score)` in the order of [`keep_best`], for any `k`:
/// candidates not below the worst of the best `k` found so far are buffered, and when `4k` are
/// held the buffer is cut back to its best `k`. Most candidates of a long stream cost one float
/// comparison, and the buffer (reused across calls) never grows past `4k`.
struct TopK<'a> {
    k: usize,
    buffer: &'a mut Vec<(u32, f32)>,
    threshold: f32,
}

impl<'a> TopK<'a> {
    fn new(k: usize, buffer: &'a mut Vec<(u32, f32)>) -> TopK<'a> {
        buffer.clear();
        TopK {
            k,
            buffer,
            threshold: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, item: u32, score: f32) {
        if self.k == 0 {
            return;
        }
        // NaN is compared as `total_cmp` orders it, by the final cut.
        if score >= self.threshold || score.is_nan() {
            self.buffer.push((item, score));
            if self.buffer.len() >= 4 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = self.k.min(self.buffer.len());
        if k == 0 {
            self.buffer.clear();
            return;
        }
        self.buffer.select_nth_unstable_by(k - 1, order);
        self.buffer.truncate(k);
        let worst = self.buffer[k - 1].1;
        if !worst.is_nan() {
            self.threshold = worst;
        }
    }

    /// The best `k`, best first (ties: lower item first).
    fn into_best(self) -> Vec<(u32, f32)> {
        let mut best = self.buffer.clone();
        keep_best(&mut best, self.k);
        best
    }
}

/// The file of the co-like counts.
/// Its section-file kind.
pub const CO_LIKES_MAGIC: &[u8; 8] = b"MRCOLIKE";

/// For every entry of `lists` (movie `i`, neighbour `j`), how many users rated both `i` and `j`
/// at least `liked`: the "people who liked X also liked Y: N of them" of an explanation.
/// Counted per movie against its own list only, whichever of two ways reads fewer entries
/// ([`co_likes_by`]); walked, the cost is that of the liked co-ratings, as the lists' build
/// pays. Each step of the walk tests the co-rated movie against a bit
/// set of the list (one bit per movie: 11 KB at ml-latest's size, held in L1) and looks up its
/// slot only when it is listed (looking up every co-rated movie's slot in a table of the whole
/// catalog, 346 KB, in L2, took 6.4 s at ml-latest's size against 5.2 s with this and the
/// prefetch below: docs/BENCHMARKS.md).
pub fn co_likes(matrix: &RatingMatrix, lists: &NeighbourLists, liked: f32) -> Vec<u32> {
    co_likes_by(matrix, lists, liked, |walk, probe| probe < walk)
}

/// [`co_likes`], each movie counted whichever of two ways reads fewer entries, as
/// `probe_if(walk, probe)` decides:
/// - the walk: every movie each of its likers liked, tested against the movie's list (a bit
///   set of the catalog): `walk` entries, the sum of its likers' likes. This is what a
///   movie liked by many heavy users pays most for: at ml-latest's size every movie walked
///   reads 3.8e9 entries.
/// - the probe: the likers of each movie of its list, tested against its own likers (a bit set
///   of the users, 41 KB at 331k users): `probe` entries, its likers and those of its list.
fn co_likes_by(
    matrix: &RatingMatrix,
    lists: &NeighbourLists,
    liked: f32,
    probe_if: impl Fn(usize, usize) -> bool + Sync,
) -> Vec<u32> {
    let (n_items, n_users) = (matrix.n_items(), matrix.n_users());
    let (starts, liked_movies) = liked_by_user(matrix, liked);
    // Each movie's likers, in the matrix's order.
    let rows = |i: usize| matrix.indptr[i]..matrix.indptr[i + 1];
    let liker_counts: Vec<usize> = (0..n_items)
        .into_par_iter()
        .map(|i| rows(i).filter(|&e| matrix.values[e] >= liked).count())
        .collect();
    let liker_starts: Vec<usize> = std::iter::once(0)
        .chain(liker_counts.iter().scan(0, |end, &n| {
            *end += n;
            Some(*end)
        }))
        .collect();
    drop(liker_counts);
    let likers: Vec<u32> = (0..n_items)
        .into_par_iter()
        .flat_map_iter(|i| {
            rows(i)
                .filter(|&e| matrix.values[e] >= liked)
                .map(|e| matrix.users[e])
        })
        .collect();
    let likers_of = |i: usize| &likers[liker_starts[i]..liker_starts[i + 1]];
    let per_item: Vec<Vec<u32>> = (0..n_items)
        .into_par_iter()
        .map_init(
            || {
                let listed = vec![0u64; n_items.div_ceil(64)];
                (
                    listed,
                    vec![0u32; n_items],
                    vec![0u64; n_users.div_ceil(64)],
                )
            },
            |(listed, slot_of, liker_bits), i| {
                let span = lists.span(i as u32);
                let list = &lists.items[span.clone()];
                let mine = likers_of(i);
                let walk: usize = mine
                    .iter()
                    .map(|&u| starts[u as usize + 1] - starts[u as usize])
                    .sum();
                let probe = mine.len()
                    + list
                        .iter()
                        .map(|&j| likers_of(j as usize).len())
                        .sum::<usize>();
                if probe_if(walk, probe) {
                    for &u in mine {
                        liker_bits[u as usize / 64] |= 1 << (u % 64);
                    }
                    let counts = list
                        .iter()
                        .map(|&j| {
                            likers_of(j as usize)
                                .iter()
                                .map(|&u| (liker_bits[u as usize / 64] >> (u % 64)) as u32 & 1)
                                .sum()
                        })
                        .collect();
                    for &u in mine {
                        liker_bits[u as usize / 64] = 0;
                    }
                    return counts;
                }
                for (slot, &j) in list.iter().enumerate() {
                    listed[j as usize / 64] |= 1 << (j % 64);
                    slot_of[j as usize] = slot as u32;
                }
                let mut counts = vec![0u32; span.len()];
                for (k, &u) in mine.iter().enumerate() {
                    // The next likers' lists start at random places: their first lines are
                    // fetched while this one is read.
                    if let Some(&ahead) = mine.get(k + PREFETCH_AHEAD) {
                        let from = starts[ahead as usize];
                        let to = starts[ahead as usize + 1].min(from + 32);
                        crate::simd::prefetch(&liked_movies[from..to]);
                    }
                    let u = u as usize;
                    for &j in &liked_movies[starts[u]..starts[u + 1]] {
                        if listed[j as usize / 64] >> (j % 64) & 1 != 0 {
                            counts[slot_of[j as usize] as usize] += 1;
                        }
                    }
                }
                for &j in list {
                    listed[j as usize / 64] = 0;
                }
                counts
            },
        )
        .collect();
    per_item.concat()
}

/// Each user's liked movies (rated at least `liked`), ascending, in compressed rows: user `u`'s
/// are `movies[starts[u]..starts[u + 1]]`.
fn liked_by_user(matrix: &RatingMatrix, liked: f32) -> (Vec<usize>, Vec<u32>) {
    let every: Vec<usize> = (0..matrix.n_items()).collect();
    matrix.items_by_user(&every, |value| value >= liked)
}

/// [`co_likes`] of `lists`, from the counts `previous_counts` of the lists `previous` on the
/// ratings before (an incremental training): an entry that was in the previous list keeps its
/// count, changed by the users in `changed` who liked both movies then or now (−1, +1); an entry
/// new to its list is counted in full (the users who liked its movie, marked, against those who
/// liked the neighbour). Equal to [`co_likes`] (a test checks it); at ml-latest's size with 4%
/// new ratings, 1.1 s instead of 7 s (docs/BENCHMARKS.md).
pub fn co_likes_updated(
    matrix: &RatingMatrix,
    lists: &NeighbourLists,
    liked: f32,
    previous: &NeighbourLists,
    previous_counts: &[u32],
    changed: &[ChangedHistory],
) -> Vec<u32> {
    let n_items = matrix.n_items();
    assert_eq!(
        previous.len(),
        n_items,
        "previous lists of the same catalog"
    );
    assert_eq!(
        previous_counts.len(),
        previous.items.len(),
        "a count per entry"
    );
    // The liked movies of each changed user, then and now, and per movie the (user, now) pairs
    // that hold it.
    let liked_of =
        |h: &[(u32, f32)]| -> Vec<u32> { h.iter().filter(|r| r.1 >= liked).map(|r| r.0).collect() };
    let sides: Vec<[Vec<u32>; 2]> = changed
        .par_iter()
        .map(|c| [liked_of(&c.before), liked_of(&c.after)])
        .collect();
    let mut holders: Vec<(u32, u32, u8)> = sides
        .iter()
        .enumerate()
        .flat_map(|(c, [then, now])| {
            let then = then.iter().map(move |&i| (i, c as u32, 0u8));
            then.chain(now.iter().map(move |&i| (i, c as u32, 1u8)))
        })
        .collect();
    holders.par_sort_unstable_by_key(|h| h.0);
    let starts = crate::interactions::offsets(holders.iter().map(|h| h.0), n_items);
    // The liked (movie → users) side of the matrix, for the entries counted in full.
    let per_item: Vec<Vec<u32>> = (0..n_items)
        .into_par_iter()
        .map_init(
            || (vec![u32::MAX; n_items], vec![u32::MAX; matrix.n_users()]),
            |(slot_of, marked), i| {
                let span = lists.span(i as u32);
                let old = previous.span(i as u32);
                for (slot, &j) in previous.items[old.clone()].iter().enumerate() {
                    slot_of[j as usize] = slot as u32;
                }
                // Previous counts where the neighbour was listed before, else to be counted.
                let mut counts = vec![0u32; span.len()];
                let mut fresh = Vec::new();
                for (slot, &j) in lists.items[span.clone()].iter().enumerate() {
                    match slot_of[j as usize] {
                        u32::MAX => fresh.push(slot),
                        before => counts[slot] = previous_counts[old.start + before as usize],
                    }
                    slot_of[j as usize] = u32::MAX;
                }
                for &j in &previous.items[old] {
                    slot_of[j as usize] = u32::MAX;
                }
                // The changed users' likes, through the new list's slots (the fresh ones are
                // counted below, on today's ratings only).
                for (slot, &j) in lists.items[span.clone()].iter().enumerate() {
                    slot_of[j as usize] = slot as u32;
                }
                for &slot in &fresh {
                    slot_of[lists.items[span.start + slot] as usize] = u32::MAX;
                }
                for &(_, c, now) in &holders[starts[i]..starts[i + 1]] {
                    for &j in &sides[c as usize][now as usize] {
                        let slot = slot_of[j as usize];
                        if slot != u32::MAX {
                            let count = &mut counts[slot as usize];
                            *count = if now == 1 {
                                *count + 1
                            } else {
                                count.saturating_sub(1)
                            };
                        }
                    }
                }
                for &j in &lists.items[span.clone()] {
                    slot_of[j as usize] = u32::MAX;
                }
                if !fresh.is_empty() {
                    let stamp = i as u32;
                    for e in matrix.indptr[i]..matrix.indptr[i + 1] {
                        if matrix.values[e] >= liked {
                            marked[matrix.users[e] as usize] = stamp;
                        }
                    }
                    for &slot in &fresh {
                        let j = lists.items[span.start + slot] as usize;
                        counts[slot] = (matrix.indptr[j]..matrix.indptr[j + 1])
                            .filter(|&e| {
                                matrix.values[e] >= liked
                                    && marked[matrix.users[e] as usize] == stamp
                            })
                            .count() as u32;
                    }
                }
                counts
            },
        )
        .collect();
    per_item.concat()
}

/// Up to this many neighbours, [`best_few`] picks them (tuning keeps 10 per list).
const SMALL_K: usize = 32;

/// The `k` best of `scored` in the order of [`keep_best`], for a small `k` ([`Few`]).
#[cfg(test)]
fn best_few(scored: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    let mut few = Few::new(k);
    for (item, score) in scored {
        few.offer(item, score);
    }
    few.into_best()
}

/// The `k` best of a stream of `(item, score)` in the order of [`keep_best`], for a small `k`:
/// kept sorted in a buffer of `k`, so most candidates cost one float comparison with the worst
/// kept and nothing is collected (tuning offers every candidate of every query to 36 lists).
struct Few {
    k: usize,
    kept: Vec<(u32, f32)>,
}

impl Few {
    fn new(k: usize) -> Few {
        Few {
            k,
            kept: Vec::with_capacity(k + 1),
        }
    }

    #[inline]
    fn offer(&mut self, item: u32, score: f32) {
        let better = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)) == std::cmp::Ordering::Less
        };
        let k = self.k;
        if k == 0 {
            return;
        }
        let candidate = (item, score);
        if self.kept.len() == k {
            // Strictly below the worst kept: out, at the cost of one comparison.
            if score < self.kept[k - 1].1 || !better(&candidate, &self.kept[k - 1]) {
                return;
            }
        }
        let at = self.kept.partition_point(|kept| better(kept, &candidate));
        self.kept.insert(at, candidate);
        self.kept.truncate(k);
    }

    /// The worst score kept, once `k` are kept (below it, nothing gets in).
    #[inline]
    fn full_worst(&self) -> Option<f32> {
        (self.k > 0 && self.kept.len() == self.k).then(|| self.kept[self.k - 1].1)
    }

    fn into_best(self) -> Vec<(u32, f32)> {
        self.kept
    }
}

/// Keeps the `k` highest-scoring `(item, score)` pairs, best first (ties: lower item first), and
/// gives back the rest of the allocation: a movie's candidates can number the whole catalog, and
/// 86,537 lists each holding room for 86,537 pairs would not fit in memory.
pub fn keep_best(scored: &mut Vec<(u32, f32)>, k: usize) {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let keep = k.min(scored.len());
    if keep > 0 && keep < scored.len() {
        scored.select_nth_unstable_by(keep - 1, order);
    }
    scored.truncate(keep);
    scored.shrink_to_fit();
    scored.sort_by(order);
}

/// The item-kNN model ("fans also liked") in the [`super::REGISTRY`], fitted with
/// [`DEFAULT_NEIGHBOURS`] neighbours per movie whatever the tuning kept.
pub struct ItemKnn;

impl super::Model for ItemKnn {
    fn kind(&self) -> super::ModelKind {
        super::ModelKind::ItemKnn
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::NeighbourLists
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let params = ItemKnnParams {
            neighbours: DEFAULT_NEIGHBOURS,
            ..input.settings.item_knn
        };
        // An incremental training rebuilds only the lists of movies whose co-ratings changed.
        let previous = input
            .previous
            .and_then(|p| {
                Some((
                    p.lists(super::ModelKind::ItemKnn)?,
                    p.changes.changed.as_slice(),
                ))
            })
            .filter(|(lists, changed)| {
                lists.len() == input.matrix.n_items() && changed.len() == lists.len()
            });
        // Updated by the co-ratings that changed where the weighting allows, else the lists
        // of the movies those touch rebuilt.
        let mut how = None;
        let lists = match (previous, input.previous) {
            (Some((lists, changed)), Some(p)) => {
                let updated = (p.changes.before_sq_norms.len() == lists.len())
                    .then(|| {
                        update_lists(
                            input.matrix,
                            &params,
                            input.progress,
                            lists,
                            &p.changes.before_sq_norms,
                            &p.changes.histories,
                        )
                    })
                    .flatten();
                match updated {
                    Some(updated) => {
                        how = Some("updated");
                        updated
                    }
                    None => {
                        how = Some("rebuilt");
                        rebuild_changed(input.matrix, &params, input.progress, lists, changed)
                    }
                }
            }
            _ => build_counted(input.matrix, &params, input.progress),
        };
        let mut details = serde_json::json!({
            "method": "item-kNN on co-occurrence",
            "params": params,
        });
        if let (Some((_, changed)), Some(how)) = (previous, how) {
            details["incremental"] = how.into();
            details["lists_changed"] = changed.iter().filter(|&&c| c).count().into();
        }
        Ok(super::Fitted::Lists(super::TrainedLists {
            pool_floors: None,
            kind: super::ModelKind::ItemKnn,
            lists,
            neighbours: params.neighbours,
            details,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::numbered_catalog as catalog;
    use crate::data::Rating;

    /// 30 movies' ratings by 50 users with 5–25 ratings each, then the same after some
    /// histories grew at their end, one rating changed, one was dated before the rest (moving
    /// the others), one user left and one came.
    fn before_and_after() -> (Vec<Rating>, Vec<Rating>) {
        let n_movies = 30;
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = crate::rng::splitmix64(state);
            state % n
        };
        let mut before = Vec::new();
        for user in 1..=50u32 {
            let len = 5 + next(21) as u32;
            let mut movies: Vec<u32> = (1..=n_movies).collect();
            for t in 0..len {
                let m = movies.swap_remove(next(movies.len() as u64) as usize);
                let stars = 0.5 * (1 + next(10)) as f32;
                before.push(Rating {
                    rating: stars,
                    ..rating(user, m, 100 * t)
                });
            }
        }
        let mut after: Vec<Rating> = before.iter().filter(|r| r.user_id != 9).cloned().collect();
        for user in [1u32, 2, 3, 20, 40] {
            let rated: Vec<u32> = after
                .iter()
                .filter(|r| r.user_id == user)
                .map(|r| r.movie_id)
                .collect();
            let new: Vec<u32> = (1..=n_movies)
                .filter(|m| !rated.contains(m))
                .take(3)
                .collect();
            for (k, m) in new.into_iter().enumerate() {
                after.push(Rating {
                    rating: 4.5,
                    ..rating(user, m, 10_000 + k as u32)
                });
            }
        }
        let r = after.iter().position(|r| r.user_id == 5).unwrap();
        after[r].rating = if after[r].rating == 5.0 { 1.0 } else { 5.0 };
        let r = after.iter().position(|r| r.user_id == 6).unwrap();
        let moved = after
            .iter()
            .filter(|x| x.user_id == 6)
            .map(|x| x.timestamp)
            .max();
        after[r].timestamp = moved.unwrap() + 1;
        after.extend((1..=6).map(|m| rating(77, m, m)));
        (before, after)
    }

    /// The matrices of [`before_and_after`] and how they differ.
    fn changed_matrices() -> (RatingMatrix, RatingMatrix, crate::incremental::Comparison) {
        let (before, after) = before_and_after();
        let catalog = catalog(30);
        let old = RatingMatrix::build(&catalog, &before);
        let new = RatingMatrix::build(&catalog, &after);
        let comparison = crate::incremental::compare(
            &crate::interactions::UserHistories::from_matrix(&old),
            &crate::interactions::UserHistories::from_matrix(&new),
        );
        (old, new, comparison)
    }

    #[test]
    fn an_update_that_removes_every_rating_of_a_movie_leaves_it_listless_and_unlisted() {
        let catalog = catalog(3);
        let before = vec![
            rating(1, 1, 0),
            rating(1, 2, 1),
            rating(2, 2, 0),
            rating(2, 3, 1),
        ];
        let after = before[..2].to_vec();
        let (old, new) = (
            RatingMatrix::build(&catalog, &before),
            RatingMatrix::build(&catalog, &after),
        );
        let quiet = crate::progress::Stage::start_unlined("test");
        let params = ItemKnnParams::default();
        let comparison = crate::incremental::compare(
            &crate::interactions::UserHistories::from_matrix(&old),
            &crate::interactions::UserHistories::from_matrix(&new),
        );
        let updated = update_lists(
            &new,
            &params,
            &quiet,
            &build_counted(&old, &params, &quiet),
            &comparison.before_sq_norms,
            &comparison.histories,
        )
        .unwrap();
        let full = build_counted(&new, &params, &quiet);
        for i in 0..3 {
            let ids = |l: &NeighbourLists| l.of(i).map(|e| e.0).collect::<Vec<_>>();
            assert_eq!(ids(&updated), ids(&full), "movie {i}");
        }
        assert_eq!(updated.of(2).count(), 0);
    }

    #[test]
    fn lists_rebuilt_for_the_changed_movies_are_a_full_build_s_and_the_others_kept() {
        let (old, new, comparison) = changed_matrices();
        let quiet = crate::progress::Stage::start_unlined("test");
        let params = ItemKnnParams {
            weighting: Weighting::Bm25 { k1: 1.2, b: 0.75 },
            ..ItemKnnParams::default()
        };
        let previous = build_counted(&old, &params, &quiet);
        let full = build_counted(&new, &params, &quiet);
        let mut changed = comparison.changed.clone();
        // Keep two movies' old lists whatever changed, to see them kept.
        changed[0] = false;
        changed[1] = false;
        let rebuilt = rebuild_changed(&new, &params, &quiet, &previous, &changed);
        for i in 0..30u32 {
            let list = |l: &NeighbourLists| l.of(i).collect::<Vec<_>>();
            let expected = if changed[i as usize] {
                &full
            } else {
                &previous
            };
            assert_eq!(list(&rebuilt), list(expected), "movie {i}");
        }
        assert!(changed.iter().filter(|&&c| c).count() > 20);
    }

    #[test]
    fn co_like_counts_updated_by_the_changed_likes_equal_those_counted_in_full() {
        let (old, new, comparison) = changed_matrices();
        let quiet = crate::progress::Stage::start_unlined("test");
        // Short lists, so that the new lists hold neighbours the old ones did not.
        let params = ItemKnnParams {
            neighbours: 6,
            ..ItemKnnParams::default()
        };
        let (lists_before, lists_after) = (
            build_counted(&old, &params, &quiet),
            build_counted(&new, &params, &quiet),
        );
        let entries = |l: &NeighbourLists, i: u32| l.of(i).map(|e| e.0).collect::<Vec<_>>();
        let moved = (0..30).filter(|&i| entries(&lists_before, i) != entries(&lists_after, i));
        assert!(moved.count() > 5, "lists that changed");
        for liked in [3.0, 4.0] {
            let counts_before = co_likes(&old, &lists_before, liked);
            let full = co_likes(&new, &lists_after, liked);
            let updated = co_likes_updated(
                &new,
                &lists_after,
                liked,
                &lists_before,
                &counts_before,
                &comparison.histories,
            );
            assert_eq!(updated, full, "liked from {liked}");
            assert!(full.iter().any(|&c| c > 1));
        }
    }

    #[test]
    fn lists_updated_by_the_changed_co_ratings_equal_a_full_build_when_they_hold_every_candidate() {
        let (old, new, comparison) = changed_matrices();
        let n_movies = 30;
        let quiet = crate::progress::Stage::start_unlined("test");
        for half_life in [None, Some(2.0)] {
            let params = ItemKnnParams {
                neighbours: n_movies as usize,
                half_life,
                ..ItemKnnParams::default()
            };
            let previous = build_counted(&old, &params, &quiet);
            assert_eq!(
                comparison.histories.len(),
                9,
                "users 1, 2, 3, 5, 6, 20, 40, 77 and 9"
            );
            let updated = update_lists(
                &new,
                &params,
                &quiet,
                &previous,
                &comparison.before_sq_norms,
                &comparison.histories,
            )
            .expect("rating weighting");
            let full = build_counted(&new, &params, &quiet);
            assert_ne!(full, previous, "the changes change the lists");
            for i in 0..n_movies {
                let (a, b): (Vec<_>, Vec<_>) = (updated.of(i).collect(), full.of(i).collect());
                assert_eq!(a.len(), b.len(), "movie {i}, half-life {half_life:?}");
                for ((ja, sa), (jb, sb)) in a.iter().zip(&b) {
                    assert!(
                        (sa - sb).abs() <= 1e-4 * sb.abs().max(1e-3),
                        "movie {i}: {a:?} vs {b:?}"
                    );
                    assert!(ja == jb || (sa - sb).abs() <= 1e-4, "{a:?} vs {b:?}");
                }
            }
        }
        let bm25 = ItemKnnParams {
            weighting: Weighting::Bm25 { k1: 1.2, b: 0.75 },
            ..ItemKnnParams::default()
        };
        let lists = build_counted(&old, &bm25, &quiet);
        assert!(update_lists(&new, &bm25, &quiet, &lists, &[0.0; 30], &[]).is_none());
    }

    fn rating(user_id: u32, movie_id: u32, timestamp: u32) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating: 4.0,
            timestamp,
        }
    }

    #[test]
    fn co_likes_equal_a_count_of_every_user_on_a_catalog_of_several_bit_words() {
        // 150 movies (three words of the list's bit set, the last partly used), 120 users
        // with 10–60 ratings of every star.
        let n_movies = 150u32;
        let mut state = 11u64;
        let mut next = |n: u64| {
            state = crate::rng::splitmix64(state);
            state % n
        };
        let mut ratings = Vec::new();
        for user in 1..=120u32 {
            let mut movies: Vec<u32> = (1..=n_movies).collect();
            for t in 0..10 + next(51) as u32 {
                let m = movies.swap_remove(next(movies.len() as u64) as usize);
                ratings.push(Rating {
                    rating: 0.5 * (1 + next(10)) as f32,
                    ..rating(user, m, t)
                });
            }
        }
        let matrix = RatingMatrix::build(&catalog(n_movies), &ratings);
        let params = ItemKnnParams {
            neighbours: 40,
            ..ItemKnnParams::PLAIN
        };
        let lists = build(&matrix, &params);
        // Each movie walked, each probed, and each the cheaper way.
        let ways: [fn(usize, usize) -> bool; 3] = [|_, _| false, |_, _| true, |w, p| p < w];
        for (liked, way) in [3.5, 4.0, 0.5]
            .into_iter()
            .flat_map(|liked| ways.map(|way| (liked, way)))
        {
            let counts = co_likes_by(&matrix, &lists, liked, way);
            assert_eq!(counts.len(), lists.items.len());
            let likes = |movie: u32, user: u32| {
                ratings
                    .iter()
                    .any(|r| r.user_id == user && r.movie_id == movie + 1 && r.rating >= liked)
            };
            let mut nonzero = 0;
            for i in 0..n_movies {
                for ((j, _), &count) in lists.of(i).zip(&counts[lists.span(i).start..]) {
                    let both = (1..=120).filter(|&u| likes(i, u) && likes(j, u)).count();
                    assert_eq!(count as usize, both, "movies {i} and {j}, liked {liked}");
                    nonzero += usize::from(count > 0);
                }
            }
            assert!(nonzero > 1000, "{nonzero} entries with a count");
        }
    }

    #[test]
    fn co_likes_count_the_users_who_liked_both_movies_of_each_entry() {
        // Users 1–3 liked movies 1 and 2; user 4 liked 1 and only rated 3 at 2 stars; user 5
        // liked 2 and 3.
        let mut ratings = Vec::new();
        for user in 1..=3 {
            ratings.push(rating(user, 1, 0));
            ratings.push(rating(user, 2, 1));
        }
        ratings.push(rating(4, 1, 0));
        ratings.push(Rating {
            rating: 2.0,
            ..rating(4, 3, 1)
        });
        ratings.push(rating(5, 2, 0));
        ratings.push(rating(5, 3, 1));
        let matrix = RatingMatrix::build(&catalog(3), &ratings);
        let lists = build(&matrix, &ItemKnnParams::PLAIN);
        let counts = co_likes(&matrix, &lists, 4.0);
        assert_eq!(counts.len(), lists.items.len());
        let count = |i: u32, j: u32| {
            lists
                .of(i)
                .zip(&counts[lists.span(i).start..])
                .find(|((n, _), _)| *n == j)
                .map(|(_, &c)| c)
        };
        assert_eq!(count(0, 1), Some(3));
        assert_eq!(count(1, 0), Some(3));
        assert_eq!(
            count(0, 2),
            Some(0),
            "user 4 rated movie 3 but did not like it"
        );
        assert_eq!(count(1, 2), Some(1));
        assert_eq!(count(2, 1), Some(1));
    }

    #[test]
    fn movies_rated_by_the_same_users_are_neighbours_and_cosine_is_exact() {
        // Users 1–3 rated movies 1 and 2; user 4 rated 1 and 3.
        let mut ratings = Vec::new();
        for user in 1..=3 {
            ratings.push(rating(user, 1, 0));
            ratings.push(rating(user, 2, 1));
        }
        ratings.push(rating(4, 1, 0));
        ratings.push(rating(4, 3, 1));
        let catalog = catalog(3);
        let matrix = RatingMatrix::build(&catalog, &ratings);
        let lists = build(&matrix, &ItemKnnParams::PLAIN);
        let of_first: Vec<(u32, f32)> = lists.of(0).collect();
        assert_eq!(of_first.iter().map(|n| n.0).collect::<Vec<_>>(), vec![1, 2]);
        // cos(1, 2) = 3·16 / (sqrt(4·16) · sqrt(3·16)) = sqrt(3)/2.
        assert!(
            (of_first[0].1 - 3f32.sqrt() / 2.0).abs() < 1e-5,
            "{of_first:?}"
        );
        assert!((of_first[1].1 - 0.5).abs() < 1e-5, "{of_first:?}");
        assert!(
            lists.of(1).all(|(j, _)| j != 1),
            "a movie is not its own neighbour"
        );
    }

    #[test]
    fn pool_floors_are_read_back_when_written_and_absent_from_older_files() {
        let lists = NeighbourLists::from_lists(vec![vec![(1, 0.5)], vec![(0, 0.5)]]);
        let floors = [0.25f32, f32::NEG_INFINITY];
        let mut with = lists.sections();
        with.add(POOL_FLOORS_SECTION, &floors);
        let bytes = SharedSlice::copy_aligned(&with.finish());
        let read = pool_floors_from_bytes("l", bytes.clone(), 2)
            .unwrap()
            .unwrap();
        assert_eq!(read[..], floors);
        assert_eq!(
            NeighbourLists::from_bytes("l", bytes.clone(), 2).unwrap(),
            lists
        );
        let err = pool_floors_from_bytes("l", bytes, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pool_floors"), "{err}");
        let without = SharedSlice::copy_aligned(&lists.to_bytes());
        assert!(pool_floors_from_bytes("l", without, 2).unwrap().is_none());
    }

    #[test]
    fn neighbour_lists_round_trip_and_reject_every_truncation() {
        let lists =
            NeighbourLists::from_lists(vec![vec![(1, 0.5), (2, 0.25)], vec![], vec![(0, 1.0)]]);
        assert_eq!(lists.indptr[..], [0, 2, 2, 3]);
        let bytes = lists.to_bytes();
        let open = |bytes: &[u8], movies| {
            NeighbourLists::from_bytes("n", SharedSlice::copy_aligned(bytes), movies)
        };
        assert_eq!(open(&bytes, 3).unwrap(), lists);
        for len in 0..bytes.len() {
            assert!(open(&bytes[..len], 3).is_err(), "{len}");
        }
        let err = open(&bytes, 4).unwrap_err().to_string();
        assert!(err.contains("has 3 movies, the catalog 4"), "{err}");
        // A neighbour outside the catalog is never handed out.
        let mut bad = bytes.clone();
        let at = bytes
            .windows(4)
            .rposition(|w| w == 2u32.to_le_bytes())
            .unwrap();
        bad[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        let file = SectionFile::open(SharedSlice::copy_aligned(&bad), MAGIC, VERSION, "lists");
        assert!(file.unwrap().verify().is_err(), "the checksum catches it");
        let lists = open(&bad, 3).unwrap();
        assert_eq!(lists.of(0).map(|(j, _)| j).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn a_half_life_favours_movies_rated_close_together() {
        // One user rated 1, 2, then 50 others, then 3: with a half-life, 2 beats 3 as 1's
        // neighbour, and 3, past the half-life's window, is not one at all; without, they tie
        // (and the lower row wins).
        let mut ratings = vec![rating(1, 1, 0), rating(1, 2, 1)];
        ratings.extend((10..60).map(|m| rating(1, m, m)));
        ratings.push(rating(1, 3, 100));
        let catalog = catalog(60);
        let matrix = RatingMatrix::build(&catalog, &ratings);
        assert_eq!(
            matrix.positions[matrix.indptr[2]], 52,
            "52 ratings come before movie 3"
        );
        let with_half_life = |h| {
            build(
                &matrix,
                &ItemKnnParams {
                    half_life: Some(h),
                    ..ItemKnnParams::PLAIN
                },
            )
        };
        let with = with_half_life(5.0);
        let scores: Vec<(u32, f32)> = with.of(0).collect();
        assert!(scores.iter().any(|n| n.0 == 1), "{scores:?}");
        assert!(
            scores.iter().all(|n| n.0 != 2),
            "52 positions apart, past 10 half-lives of 5: {scores:?}"
        );
        let longer = with_half_life(20.0);
        let scores: Vec<(u32, f32)> = longer.of(0).collect();
        let score_of = |item| scores.iter().find(|n| n.0 == item).unwrap().1;
        // 1 position apart against 52: 2^(51/20) ≈ 5.9 times more.
        assert!(score_of(1) > 5.0 * score_of(2), "{scores:?}");
        let without = build(&matrix, &ItemKnnParams::PLAIN);
        let flat: Vec<(u32, f32)> = without.of(0).collect();
        assert!((flat[0].1 - flat[1].1).abs() < 1e-6);
    }

    /// The same lists up to the order of float additions: equal scores within a relative 1e-5,
    /// and the same movies except where two scores are that close (a tie broken either way).
    fn assert_close(a: &NeighbourLists, b: &NeighbourLists, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: movies");
        for i in 0..a.len() as u32 {
            let (x, y): (Vec<_>, Vec<_>) = (a.of(i).collect(), b.of(i).collect());
            assert_eq!(x.len(), y.len(), "{what}: movie {i}: {x:?} / {y:?}");
            let near = |p: f32, q: f32| (p - q).abs() <= 1e-5 * p.abs().max(q.abs()).max(1e-6);
            for (&(xi, xs), &(yi, ys)) in x.iter().zip(&y) {
                assert!(near(xs, ys), "{what}: movie {i}: {x:?} / {y:?}");
                let tied = |item: u32| x.iter().chain(&y).any(|&(o, s)| o != item && near(s, xs));
                assert!(xi == yi || tied(xi), "{what}: movie {i}: {x:?} / {y:?}");
            }
        }
    }

    #[test]
    fn positions_that_are_not_ranks_are_walked_by_the_general_walk() {
        let ratings: Vec<Rating> = (1..=6u32)
            .flat_map(|u| (1..=5u32).map(move |m| rating(u, (m + u) % 5 + 1, m)))
            .collect();
        let ranked = RatingMatrix::build(&catalog(5), &ratings);
        assert!(AnyHistories::of(&ranked, Weighting::Rating).is_some());
        // Two ratings of a user at one position, then one past the end of its history.
        let mut twice = ranked.clone();
        twice.positions.iter_mut().for_each(|p| *p /= 2);
        let mut past = ranked.clone();
        let last_user = ranked.n_users() as u32 - 1;
        let e = ranked.users.iter().position(|&u| u == last_user).unwrap();
        past.positions[e] = 5;
        for matrix in [twice, past] {
            assert!(AnyHistories::of(&matrix, Weighting::Rating).is_none());
            let lists = build(&matrix, &ItemKnnParams::PLAIN);
            assert_eq!(lists.len(), 5);
            assert!(
                lists.items.len() > 10,
                "the general walk still lists neighbours"
            );
        }
    }

    /// Histories are packed while the weights take at most 256 values (the table of a
    /// [`Packed`] entry), and each packed entry decodes to its movie and weight.
    #[test]
    fn histories_pack_up_to_256_distinct_weights() {
        for (users, packs) in [(256u32, true), (257, false)] {
            // Each user rates movies 1..=3 with a value of its own: `users` distinct weights.
            let ratings: Vec<Rating> = (1..=users)
                .flat_map(|u| {
                    (1..=3u32).map(move |m| {
                        let mut r = rating(u, m, m);
                        r.rating = 0.5 + u as f32 / 1024.0;
                        r
                    })
                })
                .collect();
            let matrix = RatingMatrix::build(&catalog(3), &ratings);
            match AnyHistories::of(&matrix, Weighting::Rating) {
                Some(AnyHistories::Packed(h)) => {
                    assert!(packs, "{users} weights packed");
                    for i in 0..3 {
                        for e in matrix.indptr[i]..matrix.indptr[i + 1] {
                            let entry = h.ratings[h.entry[e] as usize];
                            assert_eq!(h.original[entry.movie() as usize], i as u32);
                            assert_eq!(entry.weight(&h.table), matrix.values[e]);
                        }
                    }
                }
                Some(AnyHistories::Wide(_)) => assert!(!packs, "{users} weights left wide"),
                None => panic!("the positions are ranks"),
            }
        }
    }

    #[test]
    fn the_one_setting_walk_gives_the_grid_walks_lists() {
        // Random histories: 60 users, 50 movies, popular and rare ones, many co-ratings at
        // every gap, every weighting and both sides of the backward weight.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut ratings = Vec::new();
        for u in 1..=60u32 {
            let length = 1 + next(30) as u32;
            let mut seen = std::collections::HashSet::new();
            for t in 0..length {
                let m = 1 + (next(50) * next(50) / 50) as u32;
                if seen.insert(m) {
                    ratings.push(Rating {
                        rating: 0.5 * (1 + next(10)) as f32,
                        ..rating(u, m, t)
                    });
                }
            }
        }
        let matrix = RatingMatrix::build(&catalog(50), &ratings);
        for weighting in [Weighting::Rating, Weighting::Bm25 { k1: 1.2, b: 0.75 }] {
            // Some(1.0): a window of 10 positions, shorter than many of these histories.
            for half_life in [None, Some(1.0), Some(3.0), Some(100.0)] {
                for (popularity_exponent, backward_weight) in [(1.0, 1.0), (0.6, 0.5), (0.3, 0.0)] {
                    for neighbours in [0, 5, 40, 100] {
                        let params = ItemKnnParams {
                            weighting,
                            neighbours,
                            half_life,
                            popularity_exponent,
                            backward_weight,
                        };
                        let grid = build_variants(
                            &matrix,
                            weighting,
                            half_life,
                            neighbours,
                            &[(popularity_exponent, backward_weight)],
                            None,
                        );
                        for pack in [true, false] {
                            let histories =
                                AnyHistories::packed_if(&matrix, weighting, pack).expect("ranks");
                            // Ten half stars, and the BM25 weights of 60 users, are few values.
                            assert_eq!(matches!(histories, AnyHistories::Packed(_)), pack);
                            let quiet = crate::progress::Stage::start_unlined("test");
                            let one = histories.build(&matrix, &params, &quiet, None);
                            assert_eq!(quiet.done_steps(), matrix.n_items() as u64);
                            assert_close(&one, &grid[0], &format!("{params:?}, packed {pack}"));
                            assert_eq!(
                                one.items.is_empty(),
                                neighbours == 0,
                                "{params:?}: lists are empty only when none are kept"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn variants_from_one_pass_match_separate_builds_and_queries_restrict_the_rows() {
        // Three users rating overlapping movies in different orders, so forward and backward
        // co-ratings, weights and popularity all matter.
        let mut ratings = Vec::new();
        for (u, order) in [
            (1, [1, 2, 3, 4, 5]),
            (2, [5, 3, 1, 6, 2]),
            (3, [2, 6, 4, 1, 7]),
        ] {
            for (t, m) in order.into_iter().enumerate() {
                let r = 1.0 + (m as f32 * 0.7 + u as f32) % 4.0;
                ratings.push(Rating {
                    rating: r,
                    ..rating(u, m, t as u32)
                });
            }
        }
        let matrix = RatingMatrix::build(&catalog(8), &ratings);
        let variants = [(1.0, 1.0), (0.6, 0.5), (0.8, 0.25)];
        for weighting in [Weighting::Rating, Weighting::Bm25 { k1: 1.2, b: 0.75 }] {
            let half_life = Some(2.0);
            let all = build_variants(&matrix, weighting, half_life, 4, &variants, None);
            let some = build_variants(&matrix, weighting, half_life, 4, &variants, Some(&[2, 5]));
            for (v, &(popularity_exponent, backward_weight)) in variants.iter().enumerate() {
                let alone = build(
                    &matrix,
                    &ItemKnnParams {
                        weighting,
                        neighbours: 4,
                        half_life,
                        popularity_exponent,
                        backward_weight,
                    },
                );
                assert_close(&all[v], &alone, &format!("variant {v}"));
                for item in 0..8 {
                    let expected: Vec<(u32, f32)> = if [2, 5].contains(&item) {
                        all[v].of(item).collect()
                    } else {
                        Vec::new()
                    };
                    assert_eq!(some[v].of(item).collect::<Vec<_>>(), expected);
                }
                assert!(!alone.of(2).collect::<Vec<_>>().is_empty());
            }
            // Several half-lives in one walk give each half-life's own lists, exactly.
            let half_lives = [None, Some(2.0), Some(0.5)];
            let passes = build_passes(&matrix, weighting, &half_lives, 4, &variants, Some(&[2, 5]));
            assert_eq!(passes.len(), half_lives.len());
            for (pass, &half_life) in passes.iter().zip(&half_lives) {
                let alone =
                    build_variants(&matrix, weighting, half_life, 4, &variants, Some(&[2, 5]));
                assert_eq!(pass, &alone, "half-life {half_life:?}");
            }
            assert_ne!(passes[0], passes[2], "the half-lives change the lists");
            // And several weightings in the same walk give each weighting's own lists.
            let weightings = [Weighting::Rating, Weighting::Bm25 { k1: 1.2, b: 0.75 }];
            let grid = build_grid(
                &matrix,
                &weightings,
                &half_lives,
                4,
                &variants,
                Some(&[2, 5]),
            );
            for (by_weighting, &weighting) in grid.iter().zip(&weightings) {
                let alone =
                    build_passes(&matrix, weighting, &half_lives, 4, &variants, Some(&[2, 5]));
                assert_eq!(by_weighting, &alone, "{weighting:?}");
            }
            // The variants differ: the backward weight and the exponent change the scores.
            assert_ne!(all[0], all[1]);
        }
    }

    #[test]
    fn the_small_top_k_keeps_what_keep_best_keeps() {
        // Scores with many ties (quantised), so the id order of equal scores is exercised.
        let scored: Vec<(u32, f32)> = (0..500u32)
            .map(|j| {
                let hashed = j.wrapping_mul(2_654_435_761u32) >> 24;
                (j * 7 % 500, hashed as f32 / 16.0)
            })
            .collect();
        for k in [0, 1, 2, 10, 32, 499, 500, 600] {
            let mut expected = scored.clone();
            keep_best(&mut expected, k);
            assert_eq!(best_few(scored.iter().copied(), k), expected, "k = {k}");
        }
    }
}
