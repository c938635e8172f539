//! Personalised scores from item-kNN neighbour lists: every movie a user rated votes for its
//! neighbours, weighted by the rating and by how recent it is in the user's history.
//!
//! `score(j) = Σ_i w(i) · sim(i, j)` over the user's rated movies `i`, where
//! `w(i) = (rating − pivot) · 2^(−age / half_life)`, `age` being how many ratings the user made
//! after `i`. Ratings below the pivot vote against their neighbours; for an ad-hoc list of liked
//! and disliked movies, a like counts as 5 stars and a dislike as 1, all of the same age.

use super::item_knn::NeighbourLists;
use serde::{Deserialize, Serialize};

/// Parameters of [`score_history`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonalParams {
    /// Ratings above this vote for their neighbours, below it against.
    pub pivot: f32,
    /// Half-life of a rating's weight, in ratings made after it; `None` weighs all alike.
    pub recency_half_life: Option<f32>,
}

impl Default for PersonalParams {
    fn default() -> Self {
        PersonalParams {
            pivot: 0.0,
            recency_half_life: None,
        }
    }
}

impl PersonalParams {
    /// Each history entry's vote, `(rating − pivot) · 2^(−age / half_life)`, in history order.
    pub fn vote_weights<'a>(&self, history: &'a [HistoryEntry]) -> impl Iterator<Item = f32> + 'a {
        let last = history.iter().map(|h| h.position).max().unwrap_or(0);
        let rate = self
            .recency_half_life
            .map_or(0.0, |h| std::f32::consts::LN_2 / h.max(1e-3));
        let pivot = self.pivot;
        history
            .iter()
            .map(move |h| (h.rating - pivot) * (-rate * (last - h.position) as f32).exp())
    }
}

/// One movie of a user's history: catalog row, rating, position in the user's history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistoryEntry {
    /// Catalog row.
    pub item: u32,
    /// Stars.
    pub rating: f32,
    /// 0 for the user's first rating.
    pub position: u32,
}

/// The `k` best movies for a history, best first, never one of the history's movies nor one for
/// which `allow` is false.
pub fn score_history(
    lists: &NeighbourLists,
    history: &[HistoryEntry],
    params: &PersonalParams,
    k: usize,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let mut scores: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
    for (h, weight) in history.iter().zip(params.vote_weights(history)) {
        for (j, sim) in lists.of(h.item) {
            *scores.entry(j).or_default() += weight * sim;
        }
    }
    let seen: std::collections::HashSet<u32> = history.iter().map(|h| h.item).collect();
    let mut ranked: Vec<(u32, f32)> = scores
        .into_iter()
        .filter(|&(j, s)| s > 0.0 && !seen.contains(&j) && allow(j))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Movie 0's neighbours are 1 (0.9) and 2 (0.5); movie 3's are 2 (0.8) and 4 (0.4).
    fn lists() -> NeighbourLists {
        NeighbourLists::from_lists(vec![
            vec![(1, 0.9), (2, 0.5)],
            vec![],
            vec![],
            vec![(2, 0.8), (4, 0.4)],
            vec![],
        ])
    }

    fn entry(item: u32, rating: f32, position: u32) -> HistoryEntry {
        HistoryEntry {
            item,
            rating,
            position,
        }
    }

    #[test]
    fn neighbours_of_several_liked_movies_add_up_and_seen_movies_are_excluded() {
        let history = [entry(0, 5.0, 0), entry(3, 5.0, 1)];
        let top = score_history(&lists(), &history, &PersonalParams::default(), 10, &|_| {
            true
        });
        // Movie 2 collects 5·0.5 + 5·0.8 = 6.5, movie 1 4.5, movie 4 2.0.
        let items: Vec<u32> = top.iter().map(|t| t.0).collect();
        assert_eq!(items, vec![2, 1, 4]);
        assert!((top[0].1 - 6.5).abs() < 1e-5);
        let filtered = score_history(&lists(), &history, &PersonalParams::default(), 10, &|j| {
            j != 2
        });
        assert_eq!(filtered.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 4]);
    }

    #[test]
    fn a_rating_below_the_pivot_votes_against_and_old_ratings_count_less() {
        let params = PersonalParams {
            pivot: 3.0,
            recency_half_life: None,
        };
        // Disliking movie 3 pushes its neighbours 2 and 4 below zero: only 1 remains.
        let history = [entry(0, 5.0, 0), entry(3, 1.0, 1)];
        let top = score_history(&lists(), &history, &params, 10, &|_| true);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1]);
        // With a short half-life, the recent like of 3 outweighs the old like of 0.
        let recent = PersonalParams {
            pivot: 0.0,
            recency_half_life: Some(1.0),
        };
        let history = [entry(0, 5.0, 0), entry(3, 5.0, 10)];
        let top = score_history(&lists(), &history, &recent, 1, &|_| true);
        assert_eq!(top[0].0, 2);
        let history = [entry(0, 5.0, 10), entry(3, 5.0, 0)];
        let top = score_history(&lists(), &history, &recent, 1, &|_| true);
        assert_eq!(top[0].0, 1);
    }
}
