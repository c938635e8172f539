//! Offline evaluation with a time-ordered hold-out.
//!
//! Protocol: a *liked* rating is ≥ [`LIKED_THRESHOLD`]. For every user with at least
//! `TARGETS_PER_USER + 1` liked ratings, the last [`TARGETS_PER_USER`] liked (by timestamp) are
//! targets, each paired with the liked rating just before it as its query; every rating of that
//! user from the first target's timestamp on is removed from training.
//!
//! Item-to-item metrics: HR@10 (the query's top 10 contains its target) and NDCG@10
//! (`1 / log2(rank + 2)` for a hit at 0-based `rank`), averaged over all pairs. Catalog coverage
//! (share of movies recommended at least once) and the mean popularity (number of training
//! ratings) of what is recommended are reported alongside. Popularity is always evaluated as a
//! baseline.

use crate::data::{Dataset, Rating};
use crate::index::{ExactIndex, Metric, VectorIndex};
use crate::train::train_models;
use crate::Result;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Ratings at or above this are "liked".
pub const LIKED_THRESHOLD: f32 = 4.0;
/// Held-out liked ratings per user.
pub const TARGETS_PER_USER: usize = 5;
/// The cut-off of every metric.
pub const CUTOFF: usize = 10;

/// A training set and the held-out (query, target) pairs, as MovieLens ids.
#[derive(Clone, Debug)]
pub struct HoldOut {
    /// Ratings left for training.
    pub train: Vec<Rating>,
    /// `(user, query movie, target movie)`.
    pub pairs: Vec<(u32, u32, u32)>,
}

/// Splits ratings by the protocol in the module documentation.
pub fn hold_out(ratings: &[Rating]) -> HoldOut {
    let mut by_user: HashMap<u32, Vec<&Rating>> = HashMap::new();
    for r in ratings {
        by_user.entry(r.user_id).or_default().push(r);
    }
    let mut cut_off: HashMap<u32, i64> = HashMap::new();
    let mut pairs = Vec::new();
    let mut users: Vec<u32> = by_user.keys().copied().collect();
    users.sort_unstable();
    for user in users {
        let mut liked: Vec<&Rating> = by_user[&user]
            .iter()
            .copied()
            .filter(|r| r.rating >= LIKED_THRESHOLD)
            .collect();
        if liked.len() <= TARGETS_PER_USER {
            continue;
        }
        liked.sort_by_key(|r| (r.timestamp, r.movie_id));
        let first = liked.len() - TARGETS_PER_USER;
        cut_off.insert(user, liked[first].timestamp);
        for i in first..liked.len() {
            pairs.push((user, liked[i - 1].movie_id, liked[i].movie_id));
        }
    }
    let train = ratings
        .iter()
        .filter(|r| cut_off.get(&r.user_id).is_none_or(|&t| r.timestamp < t))
        .copied()
        .collect();
    HoldOut { train, pairs }
}

/// The metrics of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// Model name.
    pub model: String,
    /// Item-to-item hit rate at 10.
    pub hr_at_10: f64,
    /// Item-to-item NDCG at 10.
    pub ndcg_at_10: f64,
    /// Share of the catalog recommended at least once.
    pub coverage: f64,
    /// Mean number of training ratings of the recommended movies.
    pub mean_popularity: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvaluationReport {
    /// Number of (query, target) pairs.
    pub pairs: usize,
    /// Number of users with targets.
    pub users: usize,
    /// Ratings left for training.
    pub train_ratings: usize,
    /// One row per model, popularity first.
    pub models: Vec<ModelReport>,
}

/// Scores every (query, target) pair with `top10(query item)`.
fn score(
    name: &str,
    pairs: &[(u32, u32)],
    popularity: &[u32],
    top10: impl Fn(u32) -> Vec<u32>,
) -> ModelReport {
    let (mut hits, mut ndcg, mut pop_sum, mut shown) = (0.0, 0.0, 0.0, 0usize);
    let mut recommended = HashSet::new();
    for &(query, target) in pairs {
        let list = top10(query);
        if let Some(rank) = list.iter().position(|&i| i == target) {
            hits += 1.0;
            ndcg += 1.0 / ((rank + 2) as f64).log2();
        }
        for &i in &list {
            pop_sum += f64::from(popularity[i as usize]);
            shown += 1;
            recommended.insert(i);
        }
    }
    let n = pairs.len().max(1) as f64;
    ModelReport {
        model: name.to_string(),
        hr_at_10: hits / n,
        ndcg_at_10: ndcg / n,
        coverage: recommended.len() as f64 / popularity.len().max(1) as f64,
        mean_popularity: pop_sum / shown.max(1) as f64,
    }
}

/// Trains every model on the training part of `dataset` and evaluates it, with popularity as
/// the baseline.
pub fn evaluate(dataset: &Dataset) -> Result<EvaluationReport> {
    let split = hold_out(&dataset.ratings);
    let users: HashSet<u32> = split.pairs.iter().map(|p| p.0).collect();
    let train_ratings = split.train.len();
    let train_set = Dataset {
        ratings: split.train,
        ..dataset.clone()
    };
    let trained = train_models(&train_set)?;
    let catalog = &trained.catalog;
    let pairs: Vec<(u32, u32)> = split
        .pairs
        .iter()
        .filter_map(|&(_, q, t)| Some((catalog.item_of(q)?, catalog.item_of(t)?)))
        .collect();
    let popularity: Vec<u32> = catalog.movies().iter().map(|m| m.rating_count).collect();

    let mut by_popularity: Vec<u32> = (0..catalog.len() as u32).collect();
    by_popularity.sort_by_key(|&i| (std::cmp::Reverse(popularity[i as usize]), i));
    let mut models = vec![score("popularity", &pairs, &popularity, |query| {
        by_popularity
            .iter()
            .copied()
            .filter(|&i| i != query)
            .take(CUTOFF)
            .collect()
    })];
    for model in &trained.models {
        let index = ExactIndex::build(&model.embeddings, Metric::Cosine);
        models.push(score(model.kind.as_str(), &pairs, &popularity, |query| {
            index
                .search_item(query, CUTOFF, &|_| true)
                .iter()
                .map(|n| n.item)
                .collect()
        }));
    }
    Ok(EvaluationReport {
        pairs: pairs.len(),
        users: users.len(),
        train_ratings,
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: i64) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        }
    }

    #[test]
    fn hold_out_keeps_the_last_five_liked_as_targets_and_drops_later_ratings() {
        let mut ratings: Vec<Rating> = (0..8)
            .map(|i| rating(1, 10 + i, 4.5, i64::from(i)))
            .collect();
        ratings.push(rating(1, 99, 1.0, 5)); // disliked, after the first target: removed
        ratings.push(rating(1, 98, 2.0, 0)); // disliked, before: kept
        ratings.extend((0..5).map(|i| rating(2, 10 + i, 5.0, i64::from(i)))); // too few liked
        let split = hold_out(&ratings);
        let expected: Vec<(u32, u32, u32)> = (13..18).map(|t| (1, t - 1, t)).collect();
        assert_eq!(split.pairs, expected);
        let kept: Vec<(u32, u32)> = split
            .train
            .iter()
            .map(|r| (r.user_id, r.movie_id))
            .collect();
        assert!(kept.contains(&(1, 12)) && kept.contains(&(1, 98)));
        assert!(!kept.contains(&(1, 13)) && !kept.contains(&(1, 99)));
        assert_eq!(kept.iter().filter(|k| k.0 == 2).count(), 5);
    }
}
