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
        let candidates: Vec<Vec<(u32, f32)>> = all
            .par_iter()
            .zip(nearest)
            .map(|(&query, nearest)| self.with_franchise(query, &nearest))
            .collect();
        self.lists_of(&all, &candidates, self.params.neighbours)
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
                    .map(|(&query, nearest)| self.with_franchise(query, &nearest))
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
        let lists = build_counted(
            input.catalog,
            input.embeddings(ModelKind::Content)?,
            input.embeddings(params.collaborative)?,
            params,
            input.progress,
        )?;
        Ok(super::Fitted::Lists(super::TrainedLists {
            kind: ModelKind::Similar,
            lists,
            neighbours: params.neighbours,
            details: serde_json::json!({
                "method": "content and collaborative cosines blended, shrunk by confidence, same franchise first",
                "params": params,
            }),
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
