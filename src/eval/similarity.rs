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
//!
//! Confidence intervals ([`super::bootstrap`]): the judged AUCs resample the users the triples
//! belong to, franchise recall resamples franchises (a cluster bootstrap: the members of a
//! franchise are queries about the same series); the shares are counts over every rated movie of
//! the catalog, the whole population rather than a sample, and have none.

use super::bootstrap::{self, Difference, UnitSums};
use crate::catalog::Catalog;
use crate::data::Rating;
use crate::engine::{KNOWN_MIN_RATINGS, KNOWN_QUERY_RATINGS};
use crate::models::similar::Franchises;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// The 95% bootstrap interval of the franchise recall and the judged AUCs, by field name
    /// (test rows only; the shares have none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub intervals: BTreeMap<String, [f64; 2]>,
    /// Their differences from the reference model with paired 95% intervals (test rows only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub vs_default: BTreeMap<String, Difference>,
    /// The per-unit sums the intervals are drawn from.
    #[serde(skip)]
    pub units: SimilarityUnits,
}

/// The per-unit sums behind a [`SimilarityReport`]'s intervals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimilarityUnits {
    /// Franchise recall per franchise (the sum over its queries, and their number).
    pub franchise_recall_at_10: UnitSums,
    /// Judged AUC per user (won comparisons, and triples).
    pub judged_auc: UnitSums,
    /// Popularity-matched judged AUC per user.
    pub judged_auc_matched: UnitSums,
}

/// The judged sets of one split.
pub struct JudgedSets {
    franchises: Franchises,
    /// `(anchor, good, bad)` catalog rows.
    triples: Vec<(u32, u32, u32)>,
    /// The user each triple belongs to, numbered 0.. among the users with triples.
    triple_users: Vec<u32>,
    /// The triples whose good and bad movies have rating counts within a factor of two.
    matched: Vec<(u32, u32, u32)>,
    /// Their users, as `triple_users`.
    matched_users: Vec<u32>,
    /// How many users the triples belong to.
    users: usize,
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
        let (mut triples, mut triple_users) = (Vec::new(), Vec::new());
        let mut judged_users = 0;
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
            let before = triples.len();
            for anchor in anchors.iter().filter_map(row).take(ANCHORS_PER_USER) {
                for &g in &good {
                    for &b in &bad {
                        triples.push((anchor, g, b));
                    }
                }
            }
            if triples.len() > before {
                triple_users.resize(triples.len(), judged_users);
                judged_users += 1;
            }
        }
        let count = |i: u32| f64::from(catalog.movie(i).rating_count.max(1));
        let (matched, matched_users) = triples
            .iter()
            .zip(&triple_users)
            .filter(|(&(_, g, b), _)| (count(g) / count(b)).log2().abs() <= 1.0)
            .unzip();
        JudgedSets {
            franchises: Franchises::new(catalog),
            triples,
            triple_users,
            matched,
            matched_users,
            users: judged_users as usize,
        }
    }

    /// Number of franchises (groups of at least two different titles).
    pub fn franchises(&self) -> usize {
        self.franchises.groups().len()
    }

    /// The franchise members franchise recall is measured on (those with at least
    /// [`FRANCHISE_MIN_RATINGS`] ratings).
    /// Each as `(movie, its franchise group)`.
    pub fn franchise_queries(&self, catalog: &Catalog) -> Vec<(u32, usize)> {
        self.franchises
            .groups()
            .iter()
            .enumerate()
            .flat_map(|(g, members)| members.iter().map(move |&m| (m, g)))
            .filter(|&(m, _)| catalog.movie(m).rating_count >= FRANCHISE_MIN_RATINGS)
            .collect()
    }

    /// Number of judged `(anchor, good, bad)` triples.
    pub fn triples(&self) -> usize {
        self.triples.len()
    }

    /// How many users the judged triples belong to (the units of the AUCs' intervals).
    pub fn judged_users(&self) -> usize {
        self.users
    }

    /// The judged AUC of `score(anchor, movie)` (`None`: the model cannot score the pair) on
    /// `triples`, and each user's won comparisons and triples (`users`: the user of each triple).
    fn auc(
        &self,
        triples: &[(u32, u32, u32)],
        users: &[u32],
        score: &(dyn Fn(u32, u32) -> Option<f32> + Sync),
    ) -> (f64, UnitSums) {
        let won: Vec<f64> = triples
            .par_iter()
            .map(|&(a, g, b)| match (score(a, g), score(a, b)) {
                (Some(x), Some(y)) if x > y => 1.0,
                (Some(x), Some(y)) if x < y => 0.0,
                (Some(_), None) => 1.0,
                (None, Some(_)) => 0.0,
                _ => 0.5,
            })
            .collect();
        let mut per_user = UnitSums::new(self.users);
        for (&user, &w) in users.iter().zip(&won) {
            per_user.add(user as usize, w);
        }
        if triples.is_empty() {
            return (0.5, per_user);
        }
        // Sums of halves are exact: the order of the sum does not matter.
        (won.iter().sum::<f64>() / triples.len() as f64, per_user)
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
        let queries = self.franchise_queries(catalog);
        let recalls: Vec<f64> = queries
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
            .collect();
        let recall: f64 = recalls.iter().sum();
        let mut franchise_recall = UnitSums::new(self.franchises());
        for (&(_, g), &r) in queries.iter().zip(&recalls) {
            franchise_recall.add(g, r);
        }
        let (judged_auc, judged) = self.auc(&self.triples, &self.triple_users, score);
        let (judged_auc_matched, matched) = self.auc(&self.matched, &self.matched_users, score);
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
            judged_auc,
            judged_auc_matched,
            obscure_share: obscure as f64 / shown_known.max(1) as f64,
            duplicate_share: duplicates as f64 / n,
            cold_share: cold_lists as f64 / n,
            max_cold_share: cold_counts.values().copied().max().unwrap_or(0) as f64 / n,
            intervals: BTreeMap::new(),
            vs_default: BTreeMap::new(),
            units: SimilarityUnits {
                franchise_recall_at_10: franchise_recall,
                judged_auc: judged,
                judged_auc_matched: matched,
            },
        }
    }
}

/// Fills the intervals and differences from `reports[reference]` of the franchise recall
/// (resampling franchises) and the judged AUCs (resampling users). Returns the numbers of users
/// and of franchises resampled.
pub fn bootstrap(reports: &mut [SimilarityReport], reference: usize) -> (usize, usize) {
    let Some(first) = reports.first() else {
        return (0, 0);
    };
    let users = first.units.judged_auc.sums.len();
    let franchises = first.units.franchise_recall_at_10.sums.len();
    let by_users = bootstrap::Resampler::new(users, bootstrap::DRAWS, bootstrap::SEED);
    let by_franchises = bootstrap::Resampler::new(franchises, bootstrap::DRAWS, bootstrap::SEED);
    let theirs = reports[reference].units.clone();
    for report in reports.iter_mut() {
        let own = &report.units;
        let (ci, vs) = (&mut report.intervals, &mut report.vs_default);
        let metrics = [
            (
                "franchise_recall_at_10",
                &by_franchises,
                &own.franchise_recall_at_10,
                &theirs.franchise_recall_at_10,
            ),
            ("judged_auc", &by_users, &own.judged_auc, &theirs.judged_auc),
            (
                "judged_auc_matched",
                &by_users,
                &own.judged_auc_matched,
                &theirs.judged_auc_matched,
            ),
        ];
        for (name, resampler, sums, reference) in metrics {
            bootstrap::fill(resampler, name, sums, Some(reference), ci, vs);
        }
    }
    (users, franchises)
}
