//! "More like this": the films a person would call similar to a movie.
//!
//! The next-liked models (`item_knn`, `ease`) answer "what did people who liked X watch next",
//! which is what their hit rate measures, but a person asking for movies like *Toy Story* judges
//! similarity: the same franchise, the same kind of film, liked by the same people, and known
//! well enough to trust. This model answers that, as neighbour lists computed at training time:
//!
//! `score(q, c) = confidence(c) · (w · cos_content(q, c) + (1 − w) · cos_collaborative(q, c))
//!  + franchise · same_franchise(q, c)`
//!
//! - `cos_content` is the content model's cosine (genres, decade, tags, and the tag genome where
//!   the release has one); `cos_collaborative` the cosine of a collaborative embedding (SVD or
//!   ALS). Their weight `w` is a setting.
//! - `confidence(c) = (n_c + 1) / (n_c + 1 + β)` for a candidate with `n_c` ratings: a movie
//!   with a handful of ratings has a noisy embedding (its few raters make it look like anything
//!   they watched), so it is shrunk towards zero and cannot outrank well-known similar films;
//!   a cold movie (no ratings) keeps a small score from its content, so it is still placed.
//! - `same_franchise` is 1 when the two titles share their franchise stem
//!   ([`franchise_key`]: *Toy Story* and *Toy Story 2*, *Die Hard* and *Die Hard: With a
//!   Vengeance*) and are not the same title (remakes are not sequels).
//!
//! Candidates for each movie are its [`SimilarParams::candidates`] nearest movies under the
//! blended cosine (one exact search of every movie against every movie, each tile of the
//! symmetric score matrix computed once: [`ExactIndex::search_all`]) plus its franchise; they are
//! rescored and the best [`SimilarParams::neighbours`] kept, equal scores ordered by popularity,
//! then id.

use crate::catalog::Catalog;
use crate::embeddings::ItemEmbeddings;
use crate::index::{ExactIndex, Metric, VectorIndex};
use crate::models::item_knn::NeighbourLists;
use crate::models::{hybrid, ModelKind};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The settings of the "more like this" model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarParams {
    /// Weight `w` of the content cosine (the collaborative one gets `1 − w`).
    pub content_weight: f32,
    /// The collaborative embedding blended in (`svd` or `als`).
    pub collaborative: ModelKind,
    /// The shrinkage `β` of the confidence `(n + 1) / (n + 1 + β)`.
    pub confidence: f32,
    /// Bonus added for a movie of the same franchise.
    pub franchise: f32,
    /// Candidates rescored per movie.
    pub candidates: usize,
    /// Neighbours kept per movie.
    pub neighbours: usize,
}

impl Default for SimilarParams {
    /// The setting chosen on the bundled data's validation split (docs/EVALUATION.md).
    fn default() -> Self {
        SimilarParams {
            content_weight: 0.35,
            collaborative: ModelKind::Svd,
            confidence: 150.0,
            franchise: 0.6,
            candidates: 300,
            neighbours: crate::models::item_knn::DEFAULT_NEIGHBOURS,
        }
    }
}

impl SimilarParams {
    /// The confidence weight of a movie with `ratings` ratings.
    pub fn confidence_of(&self, ratings: u32) -> f32 {
        let n = ratings as f32 + 1.0;
        n / (n + self.confidence.max(0.0))
    }
}

/// The scorer behind the lists: usable for any pair (offline evaluation scores pairs that are
/// not on the lists).
pub struct SimilarScorer<'a> {
    params: SimilarParams,
    blended: ExactIndex,
    catalog: &'a Catalog,
    franchises: Franchises,
}

impl<'a> SimilarScorer<'a> {
    /// Prepares the scorer from the content embeddings and the collaborative embeddings named
    /// by `params.collaborative` (rows in catalog order).
    pub fn new(
        catalog: &'a Catalog,
        content: &ItemEmbeddings,
        collaborative: &ItemEmbeddings,
        params: SimilarParams,
    ) -> Result<SimilarScorer<'a>> {
        let blended = hybrid::blend(
            content,
            collaborative,
            params.collaborative,
            params.content_weight,
        )?
        .embeddings;
        Ok(SimilarScorer {
            params,
            blended: ExactIndex::build(&blended, Metric::Cosine),
            catalog,
            franchises: Franchises::new(catalog),
        })
    }

    /// `score(q, c)` of the module documentation.
    pub fn score(&self, query: u32, candidate: u32) -> f32 {
        self.score_with(query, candidate, self.blended.similarity(query, candidate))
    }

    /// `score(q, c)` given the blended cosine of the two.
    fn score_with(&self, query: u32, candidate: u32, cosine: f32) -> f32 {
        let confidence = self
            .params
            .confidence_of(self.catalog.movie(candidate).rating_count);
        let franchise = if self.franchises.same(query, candidate) {
            self.params.franchise
        } else {
            0.0
        };
        confidence * cosine + franchise
    }

    /// Every movie's best neighbours (never itself), best first; each movie whose candidates
    /// are found is counted in `progress`.
    pub fn lists(&self, progress: &crate::progress::Stage) -> NeighbourLists {
        self.lists_and_floors(progress).0
    }

    /// [`SimilarScorer::lists`] and each movie's candidate pool floor: the blended cosine of the
    /// last of its nearest movies (−∞ when the catalog is smaller than the pool), below which
    /// no movie outside its franchise was a candidate.
    pub fn lists_and_floors(
        &self,
        progress: &crate::progress::Stage,
    ) -> (NeighbourLists, Vec<f32>) {
        use rayon::prelude::*;
        let all: Vec<u32> = (0..self.catalog.len() as u32).collect();
        progress.set_total(all.len() as u64);
        let counted = std::sync::atomic::AtomicU64::new(0);
        // Every movie is a query: one search over the symmetric score matrix, half the
        // arithmetic of searching them as a batch.
        let nearest = self
            .blended
            .search_all(self.want(), &|query, row| row == query, &|done| {
                let done = done as u64;
                let before = counted.fetch_max(done, std::sync::atomic::Ordering::Relaxed);
                progress.inc(done.saturating_sub(before));
            });
        let (candidates, floors): (Vec<Vec<(u32, f32)>>, Vec<f32>) = all
            .par_iter()
            .zip(nearest)
            .map(|(&query, nearest)| {
                (
                    self.with_franchise(query, &nearest),
                    self.floor_of(&nearest),
                )
            })
            .unzip();
        (
            self.lists_of(&all, &candidates, self.params.neighbours),
            floors,
        )
    }

    /// The pool floor of a movie whose `nearest` movies were found (best first).
    fn floor_of(&self, nearest: &[crate::index::Neighbor]) -> f32 {
        match nearest.last() {
            Some(last) if nearest.len() >= self.want() => last.score,
            _ => f32::NEG_INFINITY,
        }
    }

    /// The same settings with another shrinkage `β` and franchise bonus: the candidates (which
    /// depend on the blend only) can be reused, which is how tuning tries them.
    pub fn set_shrinkage(&mut self, confidence: f32, franchise: f32) {
        self.params.confidence = confidence;
        self.params.franchise = franchise;
    }

    /// The settings.
    pub fn params(&self) -> SimilarParams {
        self.params
    }

    /// The candidates of each of `queries` with their blended cosine to it, each once, by id:
    /// its nearest movies under the blended cosine (one batched exact search per 1,024 queries)
    /// and its franchise, never itself. The cosine is kept so that rescoring under other shrinkages (tuning tries
    /// 18 per blend) does not compute it again.
    pub fn candidates(&self, queries: &[u32]) -> Vec<Vec<(u32, f32)>> {
        self.candidates_counted(
            queries,
            &crate::progress::Stage::start_unlined("candidates"),
        )
    }

    /// [`SimilarScorer::candidates`], counting the queries done in `progress`.
    fn candidates_counted(
        &self,
        queries: &[u32],
        progress: &crate::progress::Stage,
    ) -> Vec<Vec<(u32, f32)>> {
        (self.pools_counted(queries, progress).into_iter())
            .map(|(candidates, _)| candidates)
            .collect()
    }

    /// [`SimilarScorer::candidates_counted`] with each query's pool floor.
    fn pools_counted(
        &self,
        queries: &[u32],
        progress: &crate::progress::Stage,
    ) -> Vec<(Vec<(u32, f32)>, f32)> {
        use rayon::prelude::*;
        let want = self.want();
        let embeddings = self.blended.embeddings();
        queries
            .par_chunks(1024)
            .flat_map_iter(|chunk| {
                let rows: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| embeddings.row(i as usize).iter().copied())
                    .collect();
                let batch = ItemEmbeddings::new(embeddings.dim(), rows).expect("rows of the index");
                let found = self
                    .blended
                    .search_batch(&batch, want, &|q, row| row == chunk[q]);
                progress.inc(chunk.len() as u64);
                chunk
                    .iter()
                    .zip(found)
                    .map(|(&query, nearest)| {
                        (
                            self.with_franchise(query, &nearest),
                            self.floor_of(&nearest),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many nearest movies under the blended cosine each movie's candidates start from.
    fn want(&self) -> usize {
        let n = self.catalog.len();
        self.params.candidates.min(n.saturating_sub(1)).max(1)
    }

    /// The candidates of `query`: its `nearest` and its franchise, each once, by id, never
    /// itself, with their blended cosine to it. The nearest keep the cosine their search
    /// computed (the matrix product's, which may differ from [`ExactIndex::similarity`]'s in the
    /// last bits); only franchise members not among them are scored here (scoring all 300
    /// candidates of every movie again took 1.7–2.5 s of the lists' 13–15 s at ml-latest's
    /// size, docs/BENCHMARKS.md).
    fn with_franchise(&self, query: u32, nearest: &[crate::index::Neighbor]) -> Vec<(u32, f32)> {
        let mut candidates: Vec<(u32, f32)> = nearest
            .iter()
            .filter(|c| c.item != query)
            .map(|c| (c.item, c.score))
            .collect();
        // (A search returns each row once, and a franchise lists each movie once.)
        candidates.sort_unstable_by_key(|&(item, _)| item);
        let found = candidates.len();
        for member in self.franchises.members(query) {
            if member != query
                && candidates[..found]
                    .binary_search_by_key(&member, |&(item, _)| item)
                    .is_err()
            {
                candidates.push((member, self.blended.similarity(query, member)));
            }
        }
        if candidates.len() > found {
            candidates.sort_unstable_by_key(|&(item, _)| item);
        }
        candidates
    }

    /// The lists of `queries` (every other movie's is empty) from their `candidates`: rescored,
    /// the best `keep` kept (tuning reads ten; the model keeps [`SimilarParams::neighbours`]),
    /// equal scores ordered by popularity, then id.
    pub fn lists_of(
        &self,
        queries: &[u32],
        candidates: &[Vec<(u32, f32)>],
        keep: usize,
    ) -> NeighbourLists {
        use rayon::prelude::*;
        let popularity = |i: u32| self.catalog.movie(i).rating_count;
        let order = |a: &(u32, f32), b: &(u32, f32)| {
            b.1.total_cmp(&a.1)
                .then(popularity(b.0).cmp(&popularity(a.0)))
                .then(a.0.cmp(&b.0))
        };
        let scored: Vec<Vec<(u32, f32)>> = queries
            .par_iter()
            .zip(candidates)
            .map(|(&query, candidates)| {
                let mut scored: Vec<(u32, f32)> = candidates
                    .iter()
                    .map(|&(c, cosine)| (c, self.score_with(query, c, cosine)))
                    .collect();
                if keep == 0 {
                    return Vec::new();
                }
                if keep < scored.len() {
                    scored.select_nth_unstable_by(keep - 1, order);
                    scored.truncate(keep);
                }
                scored.sort_by(order);
                scored
            })
            .collect();
        let mut lists = vec![Vec::new(); self.catalog.len()];
        for (&query, list) in queries.iter().zip(scored) {
            lists[query as usize] = list;
        }
        NeighbourLists::from_lists(lists)
    }
}

impl SimilarScorer<'_> {
    /// The lists and pool floors of an incremental training, from `previous` lists and their
    /// `floors` ([`SimilarScorer::lists_and_floors`] of a training of this catalog on fewer
    /// ratings, with the same settings), rescored under today's embeddings and counts.
    ///
    /// Only the `moved` movies (those whose collaborative row or confidence moved,
    /// [`moved_movies`]) are searched against every movie: their candidates and floor are
    /// those of a full training. Every other movie keeps its previous floor, and its candidates
    /// are its previous list, its franchise, and the moved movies that found it among their
    /// nearest (the cosine is symmetric) whose cosine to it is not below that floor. Adding
    /// every moved movie that found it, or the previous list to a moved movie's own pool,
    /// brought in movies from outside the pool and lowered per-user Recall@10 by 0.001–0.003 on
    /// `synth --scale 0.2`: the pool is part of the model (docs/EVALUATION.md, "Incremental
    /// training"). Dropping the previous list's movies that fell below the floor left lists
    /// short of their length. The cost is the moved movies' searches, not the all-pairs product
    /// of [`SimilarScorer::lists`].
    pub fn update_lists(
        &self,
        previous: &NeighbourLists,
        floors: &[f32],
        moved: &[u32],
        progress: &crate::progress::Stage,
    ) -> (NeighbourLists, Vec<f32>) {
        use rayon::prelude::*;
        let n = self.catalog.len();
        assert_eq!(previous.len(), n, "previous lists of the same catalog");
        assert_eq!(floors.len(), n, "one floor per movie");
        progress.set_total(moved.len() as u64);
        let found = self.pools_counted(moved, progress);
        // Each moved movie's own pool, and it as a candidate of every movie it found.
        let mut own: Vec<Option<usize>> = vec![None; n];
        let mut reverse: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for (k, (&m, (pool, _))) in moved.iter().zip(&found).enumerate() {
            own[m as usize] = Some(k);
            for &(c, cosine) in pool {
                reverse[c as usize].push((m, cosine));
            }
        }
        let all: Vec<u32> = (0..n as u32).collect();
        let (candidates, floors): (Vec<Vec<(u32, f32)>>, Vec<f32>) = all
            .par_iter()
            .map(|&query| {
                let q = query as usize;
                if let Some(k) = own[q] {
                    return found[k].clone();
                }
                let floor = floors[q];
                let mut pool: Vec<(u32, f32)> = reverse[q]
                    .iter()
                    .copied()
                    .filter(|&(_, cosine)| cosine >= floor)
                    .collect();
                let others = previous.of(query).map(|(item, _)| item);
                for item in others.chain(self.franchises.members(query)) {
                    if item != query {
                        pool.push((item, self.blended.similarity(query, item)));
                    }
                }
                pool.sort_unstable_by_key(|&(item, _)| item);
                pool.dedup_by_key(|&mut (item, _)| item);
                (pool, floor)
            })
            .unzip();
        (
            self.lists_of(&all, &candidates, self.params.neighbours),
            floors,
        )
    }
}

/// How much further than the typical movie's (the median) a movie's collaborative row must move
/// between two trainings ([`drift`]) for an incremental training to search its "more like
/// this" candidates again. A retrained SVD's rows all move (median 0.14 on the bundled data,
/// 0.34 at ml-latest's size for 4–5% more ratings: its weaker directions are re-drawn), which
/// shuffles every list a little and is left to the rescoring; a row that moved twice as far
/// as that has neighbours of its own to find.
pub const MOVED_DRIFT: f32 = 2.0;
/// The smallest drift that counts as moved whatever the median (when the rows barely moved, as
/// after a handful of new ratings, twice the median is within the rotation's own error).
pub const MOVED_DRIFT_MIN: f32 = 0.02;
/// How much a movie's confidence `(n + 1) / (n + 1 + β)` must change, relatively, for an
/// incremental training to search its candidates again (a movie whose ratings grew enough to
/// rise in every list it is a candidate of).
pub const MOVED_CONFIDENCE: f32 = 0.05;

/// Per movie, how far its unit row moved from `old` to `new` (two trainings of one model on the
/// same catalog). The bases differ (a retrained SVD's or ALS's directions come out rotated and
/// sign-flipped even when nothing changed), so the new unit rows are first rotated onto the old
/// by the orthogonal matrix that fits them best over every movie (orthogonal Procrustes:
/// `R = U Vᵀ` for the SVD `U Σ Vᵀ` of `newᵀ old`), then each movie's distance is measured. A row
/// that is zero in one and not the other has moved by 2.
pub fn drift(new: &ItemEmbeddings, old: &ItemEmbeddings) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(new.len(), old.len(), "two trainings of one catalog");
    let (a, b) = (new.normalized(), old.normalized());
    let (n, da, db) = (a.len(), a.dim(), b.dim());
    let am = faer::MatRef::from_row_major_slice(a.as_slice(), n, da);
    let bm = faer::MatRef::from_row_major_slice(b.as_slice(), n, db);
    let mut cross = faer::Mat::<f32>::zeros(da, db);
    faer::linalg::matmul::matmul(
        cross.as_mut(),
        faer::Accum::Replace,
        am.transpose(),
        bm,
        1.0f32,
        faer::Par::rayon(0),
    );
    let cross = nalgebra::DMatrix::<f64>::from_fn(da, db, |r, c| f64::from(cross[(r, c)]));
    let svd = cross.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return vec![2.0; n];
    };
    let rotation = u * v_t;
    let rotation = faer::Mat::<f32>::from_fn(da, db, |r, c| rotation[(r, c)] as f32);
    let mut rotated = faer::Mat::<f32>::zeros(n, db);
    faer::linalg::matmul::matmul(
        rotated.as_mut(),
        faer::Accum::Replace,
        am,
        rotation.as_ref(),
        1.0f32,
        faer::Par::rayon(0),
    );
    (0..n)
        .into_par_iter()
        .map(|i| {
            let old = b.row(i);
            let norm = (0..db)
                .map(|c| rotated[(i, c)] * rotated[(i, c)])
                .sum::<f32>()
                .sqrt();
            match (norm > 0.0, old.iter().any(|&x| x != 0.0)) {
                (false, false) => 0.0,
                (true, true) => (0..db)
                    .map(|c| (rotated[(i, c)] / norm - old[c]).powi(2))
                    .sum::<f32>()
                    .sqrt(),
                _ => 2.0,
            }
        })
        .collect()
}

/// The movies whose "more like this" candidates an incremental training searches again: those
/// whose collaborative row moved more than [`MOVED_DRIFT`] times the median movie's and more
/// than [`MOVED_DRIFT_MIN`] (`drift`, per movie), or whose confidence changed by more than
/// [`MOVED_CONFIDENCE`] of itself since their `before_counts` ratings.
pub fn moved_movies(
    catalog: &Catalog,
    params: &SimilarParams,
    drift: &[f32],
    before_counts: &[u32],
) -> Vec<u32> {
    let mut scratch = drift.to_vec();
    let typical = match scratch.len() {
        0 => 0.0,
        len => *scratch.select_nth_unstable_by(len / 2, f32::total_cmp).1,
    };
    let far = (MOVED_DRIFT * typical).max(MOVED_DRIFT_MIN);
    (0..catalog.len())
        .filter(|&i| {
            let now = params.confidence_of(catalog.movie(i as u32).rating_count);
            let then = params.confidence_of(before_counts[i]);
            drift[i] > far || (now - then).abs() > MOVED_CONFIDENCE * then
        })
        .map(|i| i as u32)
        .collect()
}

/// Builds the "more like this" lists of every movie.
pub fn build(
    catalog: &Catalog,
    content: &ItemEmbeddings,
    collaborative: &ItemEmbeddings,
    params: SimilarParams,
) -> Result<NeighbourLists> {
    let quiet = crate::progress::Stage::start_unlined("more like this");
    build_counted(catalog, content, collaborative, params, &quiet)
}

/// [`build`], counting in `progress` each movie whose candidates are found.
pub fn build_counted(
    catalog: &Catalog,
    content: &ItemEmbeddings,
    collaborative: &ItemEmbeddings,
    params: SimilarParams,
    progress: &crate::progress::Stage,
) -> Result<NeighbourLists> {
    Ok(SimilarScorer::new(catalog, content, collaborative, params)?.lists(progress))
}

/// Movies grouped by franchise stem ([`franchise_key`]).
pub struct Franchises {
    key_of: Vec<Option<u32>>,
    members: Vec<Vec<u32>>,
    titles: Vec<String>,
}

impl Franchises {
    /// Groups the catalog's movies; only stems shared by at least two different titles count.
    pub fn new(catalog: &Catalog) -> Franchises {
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        // Titles compared without a leading article: *The Hunger* and *Hunger* are one title
        // twice (remakes or namesakes), not a sequel.
        let titles: Vec<String> = catalog
            .movies()
            .iter()
            .map(|m| {
                let title = normalise(&m.title);
                match title.split_once(' ') {
                    Some(("the" | "a" | "an", rest)) => rest.to_string(),
                    _ => title,
                }
            })
            .collect();
        for (i, movie) in catalog.movies().iter().enumerate() {
            if let Some(key) = franchise_key(&movie.title) {
                groups.entry(key).or_default().push(i as u32);
            }
        }
        let mut key_of = vec![None; catalog.len()];
        let mut members = Vec::new();
        let mut keys: Vec<(String, Vec<u32>)> = groups.into_iter().collect();
        keys.sort();
        for (_, group) in keys {
            let first = &titles[group[0] as usize];
            if group.len() < 2 || group.iter().all(|&i| &titles[i as usize] == first) {
                continue;
            }
            for &i in &group {
                key_of[i as usize] = Some(members.len() as u32);
            }
            members.push(group);
        }
        Franchises {
            key_of,
            members,
            titles,
        }
    }

    /// Whether `a` and `b` are different titles of one franchise.
    pub fn same(&self, a: u32, b: u32) -> bool {
        let (ka, kb) = (self.key_of[a as usize], self.key_of[b as usize]);
        ka.is_some() && ka == kb && self.titles[a as usize] != self.titles[b as usize]
    }

    /// The movies of `item`'s franchise (itself included; empty when it has none).
    pub fn members(&self, item: u32) -> impl Iterator<Item = u32> + '_ {
        self.key_of[item as usize]
            .map(|k| self.members[k as usize].as_slice())
            .unwrap_or_default()
            .iter()
            .copied()
    }

    /// Every franchise, as catalog rows.
    pub fn groups(&self) -> &[Vec<u32>] {
        &self.members
    }
}

/// Lower case, apostrophes dropped, every other non-alphanumeric character a single space.
fn normalise(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if c != '\'' && c != '’' && !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

/// Whether `word` marks a place in a series: a number 2–10, or a Roman numeral II–XX (larger
/// numbers are usually part of the name: *Apollo 13*, *Ocean's 11*).
fn is_sequel_number(word: &str) -> bool {
    const ROMAN: [&str; 19] = [
        "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv", "xv",
        "xvi", "xvii", "xviii", "xix", "xx",
    ];
    word.parse::<u32>().is_ok_and(|n| (2..=10).contains(&n)) || ROMAN.contains(&word)
}

/// The franchise stem of a clean title (article in front, year removed): the part before a
/// colon or ` - `, without a trailing sequel number (`2`, `II`, `Part 2`, `Chapter 3`,
/// `Episode IV`, `Vol. 2`) or a leading article. `Toy Story 2` → `toy story`;
/// `The Godfather: Part II` → `godfather`; `Star Wars: Episode IV - A New Hope` → `star wars`.
/// `None` for stems under four letters (too generic to group by).
pub fn franchise_key(title: &str) -> Option<String> {
    let head = title
        .split([':', '—'])
        .next()
        .unwrap_or(title)
        .split(" - ")
        .next()
        .unwrap_or(title);
    let normal = normalise(head);
    let mut words: Vec<&str> = normal.split(' ').filter(|w| !w.is_empty()).collect();
    if words.len() > 1 && is_sequel_number(words[words.len() - 1]) {
        words.pop();
        if words.len() > 1
            && matches!(
                words[words.len() - 1],
                "part" | "chapter" | "episode" | "vol" | "volume"
            )
        {
            words.pop();
        }
    }
    if words.len() > 1 && matches!(words[0], "the" | "a" | "an") {
        words.remove(0);
    }
    let key = words.join(" ");
    (key.chars().filter(|c| c.is_alphanumeric()).count() >= 4).then_some(key)
}

/// The "more like this" model in the [`super::REGISTRY`]: it reads the content model and the
/// collaborative embedding its settings name.
pub struct Similar;

impl super::Model for Similar {
    fn kind(&self) -> ModelKind {
        ModelKind::Similar
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::NeighbourLists
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let params = input.settings.similar;
        let (content, collaborative) = (
            input.embeddings(ModelKind::Content)?,
            input.embeddings(params.collaborative)?,
        );
        let n = input.catalog.len();
        // An incremental training starts from the previous lists when they were made from the
        // same content rows (the content model reused) and it kept the collaborative rows.
        let previous = match input.previous {
            Some(p) => {
                let same_content = p.model(ModelKind::Content).is_some_and(|old| {
                    old.embeddings.dim() == content.dim()
                        && old.embeddings.as_slice() == content.as_slice()
                });
                match p.similar_lists() {
                    Some((lists, floors))
                        if same_content
                            && lists.len() == n
                            && floors.len() == n
                            && p.changes.before_counts.len() == n =>
                    {
                        p.embeddings(params.collaborative)?
                            .filter(|old| old.len() == n)
                            .map(|old| (lists, floors, old, p.changes.before_counts.as_slice()))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        let scorer = SimilarScorer::new(input.catalog, content, collaborative, params)?;
        let (lists, floors, incremental) = match previous {
            Some((lists, floors, old_collaborative, before_counts)) => {
                let drift = drift(collaborative, &old_collaborative);
                let moved = moved_movies(input.catalog, &params, &drift, before_counts);
                // Searching more than half the movies costs more than the all-pairs product,
                // which computes each pair once.
                let (lists, floors, how) = if moved.len() * 2 <= n {
                    let (lists, floors) =
                        scorer.update_lists(lists, floors, &moved, input.progress);
                    (lists, floors, "updated")
                } else {
                    let (lists, floors) = scorer.lists_and_floors(input.progress);
                    (
                        lists,
                        floors,
                        "searched in full (more than half the movies moved)",
                    )
                };
                (lists, floors, Some((how, moved.len())))
            }
            None => {
                let (lists, floors) = scorer.lists_and_floors(input.progress);
                (lists, floors, None)
            }
        };
        let mut details = serde_json::json!({
            "method": "content and collaborative cosines blended, shrunk by confidence, same franchise first",
            "params": params,
        });
        if let Some((how, moved)) = incremental {
            details["incremental"] = how.into();
            details["moved_movies"] = moved.into();
        }
        Ok(super::Fitted::Lists(super::TrainedLists {
            kind: ModelKind::Similar,
            lists,
            neighbours: params.neighbours,
            details,
            pool_floors: Some(floors),
        }))
    }
    fn pair_scorer<'a>(
        &self,
        input: &super::FitInput<'a>,
    ) -> Result<Option<super::PairScorer<'a>>> {
        let params = input.settings.similar;
        let scorer = SimilarScorer::new(
            input.catalog,
            input.embeddings(ModelKind::Content)?,
            input.embeddings(params.collaborative)?,
            params,
        )?;
        Ok(Some(Box::new(move |a, b| scorer.score(a, b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn franchise_stems_drop_subtitles_sequel_numbers_and_articles() {
        let key = |t: &str| franchise_key(t);
        assert_eq!(key("Toy Story 2").as_deref(), Some("toy story"));
        assert_eq!(key("Toy Story").as_deref(), Some("toy story"));
        assert_eq!(key("The Godfather: Part II").as_deref(), Some("godfather"));
        assert_eq!(key("The Godfather").as_deref(), Some("godfather"));
        assert_eq!(
            key("Star Wars: Episode IV - A New Hope").as_deref(),
            Some("star wars")
        );
        assert_eq!(
            key("Die Hard: With a Vengeance").as_deref(),
            Some("die hard")
        );
        assert_eq!(key("Rocky III").as_deref(), Some("rocky"));
        assert_eq!(
            key("The Lord of the Rings: The Two Towers").as_deref(),
            Some("lord of the rings")
        );
        // Numbers that are the title, not a place in a series, stay.
        assert_eq!(key("Apollo 13").as_deref(), Some("apollo 13"));
        assert_eq!(key("Police Academy 4").as_deref(), Some("police academy"));
        assert_eq!(key("2001: A Space Odyssey").as_deref(), Some("2001"));
        assert_eq!(
            key("Blade Runner 2049").as_deref(),
            Some("blade runner 2049")
        );
        // Too short to group by.
        assert_eq!(key("Up"), None);
        assert_eq!(key("X2: X-Men United"), None);
    }

    #[test]
    fn candidates_are_the_nearest_and_the_franchise_once_each_by_id() {
        let titles = [
            "Alpha Quest",
            "Alpha Quest 2",
            "Quiet Harbor",
            "Red Meadow",
            "Deep Canyon",
            "Cold Glacier",
        ];
        let catalog = crate::catalog::titled_catalog(titles);
        // The sequel points the other way from its first film: the least similar movie.
        let rows = vec![1.0, 0.0, -1.0, 0.0, 0.9, 0.1, 0.8, 0.3, 0.7, 0.5, 0.2, 0.9];
        let embeddings = ItemEmbeddings::new(2, rows).unwrap();
        let scorer = |candidates| {
            let params = SimilarParams {
                candidates,
                ..SimilarParams::default()
            };
            SimilarScorer::new(&catalog, &embeddings, &embeddings, params).unwrap()
        };
        let narrow = scorer(2);
        let found = narrow.candidates(&[0]).remove(0);
        let ids: Vec<u32> = found.iter().map(|c| c.0).collect();
        // Its two nearest (2 and 3), and its sequel though far away.
        assert_eq!(ids, vec![1, 2, 3]);
        for &(item, cosine) in &found {
            assert!((cosine - narrow.blended.similarity(0, item)).abs() < 1e-6);
        }
        // The full search gives the same candidates, and the sequel first on the list.
        let lists = narrow.lists(&crate::progress::Stage::start_unlined("test"));
        assert_eq!(lists.of(0).next().map(|(item, _)| item), Some(1));
        assert_eq!(lists.of(0).count(), 3);
        // Every other movie a candidate, the sequel among the nearest: listed once.
        let wide = scorer(5).candidates(&[0, 1]);
        assert_eq!(
            wide[0].iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            wide[1].iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![0, 2, 3, 4, 5]
        );
    }

    /// Rows of `n` movies × `dim` from a fixed xorshift stream, in [-1, 1).
    fn random_rows(n: usize, dim: usize, seed: u64) -> ItemEmbeddings {
        let mut state = seed;
        let rows = (0..n * dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        ItemEmbeddings::new(dim, rows).unwrap()
    }

    fn ids(lists: &NeighbourLists, item: u32) -> Vec<u32> {
        lists.of(item).map(|(j, _)| j).collect()
    }

    #[test]
    fn an_update_searches_the_moved_movies_and_keeps_the_others_lists() {
        let n = 300;
        // One-word titles: no franchises.
        let catalog = crate::catalog::titled_catalog((0..n).map(|i| format!("Picture{i}")));
        let content = random_rows(n, 6, 0x9e37_79b9_7f4a_7c15);
        let before = random_rows(n, 8, 0x2545_f491_4f6c_dd1d);
        let params = SimilarParams {
            candidates: 30,
            neighbours: 10,
            ..SimilarParams::default()
        };
        let quiet = crate::progress::Stage::start_unlined("test");
        let old = SimilarScorer::new(&catalog, &content, &before, params).unwrap();
        let (lists, floors) = old.lists_and_floors(&quiet);
        assert!(
            floors.iter().all(|f| f.is_finite()),
            "30 of 300 in each pool"
        );
        // Nothing moved and nothing changed: the same lists and floors.
        let (same, same_floors) = old.update_lists(&lists, &floors, &[], &quiet);
        assert_eq!(same_floors, floors);
        for i in 0..n as u32 {
            assert_eq!(ids(&same, i), ids(&lists, i), "movie {i}");
        }
        // Every movie moved: a full training's lists.
        let all: Vec<u32> = (0..n as u32).collect();
        let (searched, _) = old.update_lists(&lists, &floors, &all, &quiet);
        for i in 0..n as u32 {
            assert_eq!(ids(&searched, i), ids(&lists, i), "movie {i}");
        }
        // Movie 7 takes movie 0's collaborative row: it enters movie 0's list (which is not
        // searched again) as a full training puts it there, and its own list is a full one.
        let mut rows = before.as_slice().to_vec();
        rows.copy_within(0..8, 7 * 8);
        let after = ItemEmbeddings::new(8, rows).unwrap();
        let new = SimilarScorer::new(&catalog, &content, &after, params).unwrap();
        let full = new.lists(&quiet);
        assert!(ids(&full, 0).contains(&7) && !ids(&lists, 0).contains(&7));
        let drift = drift(&after, &before);
        let moved = moved_movies(&catalog, &params, &drift, &vec![0; n]);
        assert_eq!(moved, vec![7], "only movie 7 moved");
        let (updated, _) = new.update_lists(&lists, &floors, &moved, &quiet);
        assert_eq!(ids(&updated, 0), ids(&full, 0));
        assert_eq!(ids(&updated, 7), ids(&full, 7));
    }

    #[test]
    fn drift_is_zero_for_a_rotated_copy_and_large_for_a_moved_row() {
        let rows = random_rows(200, 4, 0x1234_5678_9abc_def1);
        // The same rows in another basis: coordinates 0 and 1 turned by 30°, 2 flipped, scaled.
        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        let mut turned: Vec<f32> = rows
            .as_slice()
            .chunks(4)
            .flat_map(|r| {
                [
                    3.0 * (c * r[0] - s * r[1]),
                    3.0 * (s * r[0] + c * r[1]),
                    -3.0 * r[2],
                    3.0 * r[3],
                ]
            })
            .collect();
        let still = drift(&ItemEmbeddings::new(4, turned.clone()).unwrap(), &rows);
        assert!(still.iter().all(|&d| d < 1e-3), "{still:?}");
        // Movie 5 now points the other way.
        for x in &mut turned[20..24] {
            *x = -*x;
        }
        let moved = drift(&ItemEmbeddings::new(4, turned).unwrap(), &rows);
        assert!((moved[5] - 2.0).abs() < 1e-2, "{}", moved[5]);
        assert!(moved.iter().enumerate().all(|(i, &d)| i == 5 || d < 0.05));
    }

    #[test]
    fn confidence_shrinks_rarely_rated_movies() {
        let p = SimilarParams {
            confidence: 20.0,
            ..SimilarParams::default()
        };
        assert!(p.confidence_of(0) < 0.05);
        assert!(p.confidence_of(3) < 0.2);
        assert!(p.confidence_of(200) > 0.9);
        // Shrinkage off: every movie counts fully.
        let off = SimilarParams {
            confidence: 0.0,
            ..p
        };
        assert_eq!(off.confidence_of(0), 1.0);
        assert!(p.confidence_of(10) < p.confidence_of(11));
    }
}
