//! The *similarity* section of `movierec evaluate`: does "movies like X" return what a person
//! would call similar, and nothing they would not trust?
//!
//! Next-liked metrics (HR@10 of the movie a person rated next) reward what people watch next,
//! which is not what a person asking for films like *Toy Story* judges. With no human
//! judgements in a MovieLens release, two judged sets are built from what it does have, never
//! from the test targets of the next-liked protocol:
//!
//! - **Franchises** ([`crate::models::similar::Franchises`]): titles sharing their stem before
//!   a colon or a sequel number (all *Toy Story* films, all *Rocky* films...). *Franchise
//!   recall@10* is, for every franchise member with at least [`FRANCHISE_MIN_RATINGS`] ratings,
//!   the share of the other members (up to 10) found in its top 10.
//! - **Held-out judgements**: for every user of the hold-out, each of the last
//!   [`ANCHORS_PER_USER`] movies they liked (≥ 4 stars) before the cut is an anchor *A*, and the
//!   movies they rated after the cut are judged: good recommendations for someone who liked *A*
//!   when they rated them ≥ 4, bad ones when ≤ 2.5. *Judged AUC* is the probability that a model
//!   scores a good movie above a bad one for the same anchor and person (ties and movies a
//!   model cannot score count one half). These ratings were removed from training.
//!
//! Alongside: the *obscure share* (among top-10 results of queries with at least 20 ratings, the
//! share with fewer than 5, before the engine's default filter hides them), the *duplicate
//! share* (lists holding a movie with the query's own title and year) and the *cold share*
//! (lists holding a movie with no training ratings, and the largest share of lists any one such
//! movie appears in).

use crate::catalog::Catalog;
use crate::data::Rating;
use crate::engine::{KNOWN_MIN_RATINGS, KNOWN_QUERY_RATINGS};
use crate::models::similar::Franchises;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Franchise members with fewer ratings than this are not used as queries.
pub const FRANCHISE_MIN_RATINGS: u32 = 5;
/// Anchors per user for the held-out judgements.
pub const ANCHORS_PER_USER: usize = 3;
/// Judged movies kept per user and label (the most recent).
const JUDGED_PER_USER: usize = 10;

/// The similarity metrics of one model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimilarityReport {
    /// Model name.
    pub model: String,
    /// Share of the other franchise members found in the top 10.
    pub franchise_recall_at_10: f64,
    /// Probability of scoring a good held-out movie above a bad one for the same anchor.
    pub judged_auc: f64,
    /// The same on the triples whose two movies are about equally well known (rating counts
    /// within a factor of two): how well the model judges beyond popularity.
    pub judged_auc_matched: f64,
    /// Share of top-10 results of well-known queries that are obscure.
    pub obscure_share: f64,
    /// Share of lists holding the query's duplicate (same title and year).
    pub duplicate_share: f64,
    /// Share of lists holding a movie without training ratings.
    pub cold_share: f64,
    /// Largest share of lists that any one movie without training ratings appears in.
    pub max_cold_share: f64,
}

/// The judged sets of one split.
pub struct JudgedSets {
    franchises: Franchises,
    /// `(anchor, good, bad)` catalog rows.
    triples: Vec<(u32, u32, u32)>,
    /// The triples whose good and bad movies have rating counts within a factor of two.
    matched: Vec<(u32, u32, u32)>,
}

impl JudgedSets {
    /// Builds both judged sets: `train` is what the models were trained on, `all` the ratings
    /// before the split (the difference is the held-out part).
    pub fn new(catalog: &Catalog, train: &[Rating], all: &[Rating]) -> JudgedSets {
        let kept: HashSet<(u32, u32)> = train.iter().map(|r| (r.user_id, r.movie_id)).collect();
        let mut future: HashMap<u32, Vec<&Rating>> = HashMap::new();
        for r in all {
            if !kept.contains(&(r.user_id, r.movie_id)) {
                future.entry(r.user_id).or_default().push(r);
            }
        }
        let mut liked: HashMap<u32, Vec<&Rating>> = HashMap::new();
        for r in train.iter().filter(|r| r.rating >= 4.0) {
            if future.contains_key(&r.user_id) {
                liked.entry(r.user_id).or_default().push(r);
            }
        }
        let mut users: Vec<u32> = future.keys().copied().collect();
        users.sort_unstable();
        let row = |r: &&Rating| catalog.item_of(r.movie_id);
        let mut triples = Vec::new();
        for user in users {
            let Some(anchors) = liked.get_mut(&user) else {
                continue;
            };
            anchors.sort_by_key(|r| std::cmp::Reverse((r.timestamp, r.movie_id)));
            let mut later = future[&user].clone();
            later.sort_by_key(|r| (r.timestamp, r.movie_id));
            let good: Vec<u32> = later
                .iter()
                .filter(|r| r.rating >= 4.0)
                .filter_map(row)
                .take(JUDGED_PER_USER)
                .collect();
            let bad: Vec<u32> = later
                .iter()
                .filter(|r| r.rating <= 2.5)
                .filter_map(row)
                .take(JUDGED_PER_USER)
                .collect();
            for anchor in anchors.iter().filter_map(row).take(ANCHORS_PER_USER) {
                for &g in &good {
                    for &b in &bad {
                        triples.push((anchor, g, b));
                    }
                }
            }
        }
        let count = |i: u32| f64::from(catalog.movie(i).rating_count.max(1));
        let matched = triples
            .iter()
            .copied()
            .filter(|&(_, g, b)| (count(g) / count(b)).log2().abs() <= 1.0)
            .collect();
        JudgedSets {
            franchises: Franchises::new(catalog),
            triples,
            matched,
        }
    }

    /// Number of franchises (groups of at least two different titles).
    pub fn franchises(&self) -> usize {
        self.franchises.groups().len()
    }

    /// The franchise members franchise recall is measured on (those with at least
    /// [`FRANCHISE_MIN_RATINGS`] ratings).
    pub fn franchise_queries(&self, catalog: &Catalog) -> Vec<u32> {
        self.franchises
            .groups()
            .iter()
            .flatten()
            .copied()
            .filter(|&m| catalog.movie(m).rating_count >= FRANCHISE_MIN_RATINGS)
            .collect()
    }

    /// Number of judged `(anchor, good, bad)` triples.
    pub fn triples(&self) -> usize {
        self.triples.len()
    }

    /// The judged AUC of `score(anchor, movie)` (`None`: the model cannot score the pair) on
    /// `triples`.
    fn auc(triples: &[(u32, u32, u32)], score: &(dyn Fn(u32, u32) -> Option<f32> + Sync)) -> f64 {
        if triples.is_empty() {
            return 0.5;
        }
        let total: f64 = triples
            .par_iter()
            .map(|&(a, g, b)| match (score(a, g), score(a, b)) {
                (Some(x), Some(y)) if x > y => 1.0,
                (Some(x), Some(y)) if x < y => 0.0,
                (Some(_), None) => 1.0,
                (None, Some(_)) => 0.0,
                _ => 0.5,
            })
            .sum();
        total / triples.len() as f64
    }

    /// Every metric of a model given its top 10 per query (`top10(row)`, never the row itself)
    /// and its pair score.
    pub fn report(
        &self,
        model: &str,
        catalog: &Catalog,
        top10: &(dyn Fn(u32) -> Vec<u32> + Sync),
        score: &(dyn Fn(u32, u32) -> Option<f32> + Sync),
    ) -> SimilarityReport {
        let count = |i: u32| catalog.movie(i).rating_count;
        // Franchise recall.
        let queries: Vec<(u32, usize)> = self
            .franchises
            .groups()
            .iter()
            .enumerate()
            .flat_map(|(g, members)| {
                members
                    .iter()
                    .filter(|&&m| count(m) >= FRANCHISE_MIN_RATINGS)
                    .map(move |&m| (m, g))
            })
            .collect();
        let recall: f64 = queries
            .par_iter()
            .map(|&(q, g)| {
                let others: Vec<u32> = self.franchises.groups()[g]
                    .iter()
                    .copied()
                    .filter(|&m| m != q && self.franchises.same(q, m))
                    .collect();
                if others.is_empty() {
                    return 1.0;
                }
                let top = top10(q);
                let found = others.iter().filter(|m| top.contains(m)).count();
                found as f64 / others.len().min(10) as f64
            })
            .sum();
        // Lists of every rated movie.
        let rated: Vec<u32> = (0..catalog.len() as u32)
            .filter(|&i| count(i) > 0)
            .collect();
        let lists: Vec<(u32, Vec<u32>)> = rated.par_iter().map(|&q| (q, top10(q))).collect();
        let (mut obscure, mut shown_known) = (0usize, 0usize);
        let (mut duplicates, mut cold_lists) = (0usize, 0usize);
        let mut cold_counts: HashMap<u32, usize> = HashMap::new();
        for (q, top) in &lists {
            let query = catalog.movie(*q);
            if query.rating_count >= KNOWN_QUERY_RATINGS {
                shown_known += top.len();
                obscure += top
                    .iter()
                    .filter(|&&i| count(i) < KNOWN_MIN_RATINGS)
                    .count();
            }
            if top.iter().any(|&i| {
                let m = catalog.movie(i);
                m.year == query.year && m.title.eq_ignore_ascii_case(&query.title)
            }) {
                duplicates += 1;
            }
            let mut any_cold = false;
            for &i in top.iter().filter(|&&i| count(i) == 0) {
                *cold_counts.entry(i).or_default() += 1;
                any_cold = true;
            }
            cold_lists += usize::from(any_cold);
        }
        let n = lists.len().max(1) as f64;
        SimilarityReport {
            model: model.to_string(),
            franchise_recall_at_10: recall / queries.len().max(1) as f64,
            judged_auc: JudgedSets::auc(&self.triples, score),
            judged_auc_matched: JudgedSets::auc(&self.matched, score),
            obscure_share: obscure as f64 / shown_known.max(1) as f64,
            duplicate_share: duplicates as f64 / n,
            cold_share: cold_lists as f64 / n,
            max_cold_share: cold_counts.values().copied().max().unwrap_or(0) as f64 / n,
        }
    }
}
