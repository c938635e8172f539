//! Personalised scores from item-kNN neighbour lists: every movie a user rated votes for its
//! neighbours, weighted by the rating and by how recent it is in the user's history.
//!
//! `score(j) = Σ_i w(i) · sim(i, j)` over the user's rated movies `i`, where
//! `w(i) = (rating − pivot) · 2^(−age / half_life)`, `age` being how many ratings the user made
//! after `i`. Ratings below the pivot vote against their neighbours; for an ad-hoc list of liked
//! and disliked movies, a like counts as 5 stars and a dislike as 1, all of the same age.
//!
//! Balance: each candidate's *reason* is the history movie whose vote for it is the largest. The
//! top `k` is picked greedily, a candidate's score multiplied by `balance^n` where `n` is how many
//! movies already picked have the same reason (xQuAD/MMR-like), so that several liked films each
//! explain some of the list instead of the one with the largest similarities explaining all of it.
//! With `normalise`, each history movie's similarities are first divided by its best one.

use super::item_knn::NeighbourLists;
pub use crate::interactions::HistoryEntry;
use serde::{Deserialize, Serialize};

/// Parameters of [`score_history`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonalParams {
    /// Ratings above this vote for their neighbours, below it against.
    pub pivot: f32,
    /// Half-life of a rating's weight, in ratings made after it; `None` weighs all alike.
    pub recency_half_life: Option<f32>,
    /// Discount γ ∈ [0, 1] of a candidate whose reason already explains picked movies: its score
    /// is multiplied by `γ^n` for `n` such movies. 1 (the default, and what manifests without it
    /// mean) ranks by score alone.
    #[serde(default = "no_balance")]
    pub balance: f32,
    /// Divide each history movie's similarities by its best one, so that a movie with large raw
    /// similarities does not outvote the others.
    #[serde(default)]
    pub normalise: bool,
}

fn no_balance() -> f32 {
    1.0
}

/// The neighbour lists that score users by default, as chosen by `movierec evaluate`.
pub const DEFAULT_LISTS: super::ModelKind = super::ModelKind::ItemKnn;

impl PersonalParams {
    /// Every vote counted alike, ranked by score alone: the unit tests' reference, and where the
    /// tuning's grid starts.
    pub const NEUTRAL: PersonalParams = PersonalParams {
        pivot: 0.0,
        recency_half_life: None,
        balance: 1.0,
        normalise: false,
    };
}

impl Default for PersonalParams {
    /// How a user's history is scored, as chosen by `movierec evaluate` (docs/EVALUATION.md).
    /// The balance is the most balanced setting within one standard error of the best on
    /// validation per-user NDCG@10: γ 0.95 scored 0.1175 against 0.1189 unbalanced (standard
    /// error of the per-user difference 0.0018); γ 0.9 0.1163 (0.0023) and 0.8 0.1107 (0.0027)
    /// fell outside, and normalised lists cost 0.005 (0.1138). On the test split per-user
    /// Recall@10 / NDCG@10 went from 0.1082 / 0.0942 to 0.1088 / 0.0936.
    fn default() -> Self {
        PersonalParams {
            pivot: 0.0,
            recency_half_life: Some(10.0),
            balance: 0.95,
            normalise: false,
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

/// A recommended movie: catalog row, score, and its reason (the catalog row whose vote or
/// similarity for it was the largest).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick {
    /// Catalog row.
    pub item: u32,
    /// Score, after the balance discount.
    pub score: f32,
    /// The history (or query) movie that contributed most to it.
    pub reason: u32,
}

/// The `k` best of `candidates` (any order; scores undiscounted), picked greedily: each time the
/// candidate with the best `score · balance^n`, `n` being how many picks so far share its reason.
/// Returned best first with the discounted scores (which never increase down the list); with
/// `balance` 1 this is the top `k` by score. Equal scores go to the lower row.
pub fn pick_balanced(mut candidates: Vec<Pick>, balance: f32, k: usize) -> Vec<Pick> {
    let order = |a: &Pick, b: &Pick| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item));
    if balance >= 1.0 || candidates.len() <= 1 {
        if k < candidates.len() {
            candidates.select_nth_unstable_by(k, order);
            candidates.truncate(k);
        }
        candidates.sort_by(order);
        return candidates;
    }
    let balance = balance.max(0.0);
    // A candidate scoring below `s_k · balance^(k−1)` (`s_k` the k-th best score) never wins a
    // pick: until k are picked one of the k best is left, discounted at most that much. Only
    // the others are sorted (a long history has thousands of candidates).
    if k > 0 && k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, order);
        let floor = candidates[k - 1].score * balance.powi(k as i32 - 1);
        candidates.retain(|c| c.score >= floor);
    }
    candidates.sort_by(order);
    let mut used: std::collections::HashMap<u32, i32> = std::collections::HashMap::new();
    let mut taken = vec![false; candidates.len()];
    let mut picked = Vec::with_capacity(k.min(candidates.len()));
    let mut first = 0;
    while picked.len() < k {
        while first < candidates.len() && taken[first] {
            first += 1;
        }
        let mut best: Option<(usize, f32)> = None;
        for (i, c) in candidates.iter().enumerate().skip(first) {
            // Discounts only lower scores: nothing below the best discounted score can win.
            if best.is_some_and(|(_, b)| c.score <= b) {
                break;
            }
            if taken[i] {
                continue;
            }
            let n = used.get(&c.reason).copied().unwrap_or(0);
            let adjusted = c.score * balance.powi(n);
            if best.is_none_or(|(_, b)| adjusted > b) {
                best = Some((i, adjusted));
            }
        }
        let Some((i, score)) = best else { break };
        taken[i] = true;
        *used.entry(candidates[i].reason).or_default() += 1;
        picked.push(Pick {
            score,
            ..candidates[i]
        });
    }
    picked
}

/// The `k` best movies for a history, best first, never one of the history's movies nor one for
/// which `allow` is false, each with its reason (see the module's description of balance).
pub fn score_history(
    lists: &NeighbourLists,
    history: &[HistoryEntry],
    params: &PersonalParams,
    k: usize,
    allow: &dyn Fn(u32) -> bool,
) -> Vec<Pick> {
    // Per candidate: the summed score, its largest single vote and whose vote that was; in a
    // map for a short history, in an array over the catalog for a long one (where the map's
    // hashing would dominate).
    let dense = history.len().saturating_mul(1_600) > lists.len();
    accumulate(lists, history, params, k, allow, dense)
}

/// [`score_history`] with its votes summed in an array over the catalog (`dense`) or a map.
fn accumulate(
    lists: &NeighbourLists,
    history: &[HistoryEntry],
    params: &PersonalParams,
    k: usize,
    allow: &dyn Fn(u32) -> bool,
    dense: bool,
) -> Vec<Pick> {
    let mut sparse: std::collections::HashMap<u32, (f32, f32, u32)> =
        std::collections::HashMap::new();
    let mut array: Vec<(f32, f32, u32)> = if dense {
        vec![(0.0, f32::NEG_INFINITY, u32::MAX); lists.len()]
    } else {
        Vec::new()
    };
    for (h, weight) in history.iter().zip(params.vote_weights(history)) {
        let scale = if params.normalise {
            let top = lists.of(h.item).map(|(_, s)| s).fold(0.0, f32::max);
            if top > 0.0 {
                1.0 / top
            } else {
                1.0
            }
        } else {
            1.0
        };
        let weight = weight * scale;
        for (j, sim) in lists.of(h.item) {
            let vote = weight * sim;
            let entry = if dense {
                &mut array[j as usize]
            } else {
                sparse.entry(j).or_insert((0.0, f32::NEG_INFINITY, h.item))
            };
            entry.0 += vote;
            if vote > entry.1 {
                (entry.1, entry.2) = (vote, h.item);
            }
        }
    }
    let seen: std::collections::HashSet<u32> = history.iter().map(|h| h.item).collect();
    let touched = array
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.2 != u32::MAX)
        .map(|(j, e)| (j as u32, e));
    let candidates: Vec<Pick> = sparse
        .into_iter()
        .chain(touched)
        .filter(|&(j, (s, _, _))| s > 0.0 && !seen.contains(&j) && allow(j))
        .map(|(item, (score, _, reason))| Pick {
            item,
            score,
            reason,
        })
        .collect();
    pick_balanced(candidates, params.balance, k)
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
        let top = score_history(&lists(), &history, &PersonalParams::NEUTRAL, 10, &|_| true);
        // Movie 2 collects 5·0.5 + 5·0.8 = 6.5, movie 1 4.5, movie 4 2.0.
        let items: Vec<u32> = top.iter().map(|t| t.item).collect();
        assert_eq!(items, vec![2, 1, 4]);
        assert!((top[0].score - 6.5).abs() < 1e-5);
        let filtered = score_history(&lists(), &history, &PersonalParams::NEUTRAL, 10, &|j| {
            j != 2
        });
        assert_eq!(
            filtered.iter().map(|t| t.item).collect::<Vec<_>>(),
            vec![1, 4]
        );
    }

    #[test]
    fn a_rating_below_the_pivot_votes_against_and_old_ratings_count_less() {
        let params = PersonalParams {
            pivot: 3.0,
            recency_half_life: None,
            ..PersonalParams::NEUTRAL
        };
        // Disliking movie 3 pushes its neighbours 2 and 4 below zero: only 1 remains.
        let history = [entry(0, 5.0, 0), entry(3, 1.0, 1)];
        let top = score_history(&lists(), &history, &params, 10, &|_| true);
        assert_eq!(top.iter().map(|t| t.item).collect::<Vec<_>>(), vec![1]);
        // With a short half-life, the recent like of 3 outweighs the old like of 0.
        let recent = PersonalParams {
            pivot: 0.0,
            recency_half_life: Some(1.0),
            ..PersonalParams::NEUTRAL
        };
        let history = [entry(0, 5.0, 0), entry(3, 5.0, 10)];
        let top = score_history(&lists(), &history, &recent, 1, &|_| true);
        assert_eq!(top[0].item, 2);
        let history = [entry(0, 5.0, 10), entry(3, 5.0, 0)];
        let top = score_history(&lists(), &history, &recent, 1, &|_| true);
        assert_eq!(top[0].item, 1);
    }

    /// Movie 0 ("blockbuster") has large similarities to 10..20, movie 1 small ones to 20..25.
    fn lopsided() -> NeighbourLists {
        let mut lists = vec![Vec::new(); 25];
        lists[0] = (10..20).map(|j| (j, 3.0 - 0.1 * (j - 10) as f32)).collect();
        lists[1] = (20..25)
            .map(|j| (j, 0.5 - 0.05 * (j - 20) as f32))
            .collect();
        NeighbourLists::from_lists(lists)
    }

    #[test]
    fn balance_lets_every_liked_movie_explain_some_of_the_list() {
        let history = [entry(0, 5.0, 0), entry(1, 5.0, 0)];
        let plain = PersonalParams::NEUTRAL;
        let top = score_history(&lopsided(), &history, &plain, 5, &|_| true);
        // Without balance the blockbuster's neighbours fill the list, in score order.
        assert_eq!(
            top.iter().map(|t| t.item).collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        assert!(top.iter().all(|t| t.reason == 0));
        let balance_one = PersonalParams {
            balance: 1.0,
            ..plain
        };
        assert_eq!(
            score_history(&lopsided(), &history, &balance_one, 5, &|_| true),
            top
        );
        // With balance, the other liked movie's neighbours come in, explained by it.
        for params in [
            PersonalParams {
                balance: 0.5,
                ..plain
            },
            PersonalParams {
                balance: 0.8,
                normalise: true,
                ..plain
            },
        ] {
            let balanced = score_history(&lopsided(), &history, &params, 5, &|_| true);
            assert_eq!(balanced.len(), 5);
            assert!(balanced.iter().any(|t| t.reason == 1), "{params:?}");
            assert!(balanced
                .iter()
                .all(|t| (t.reason == 1) == (20..25).contains(&t.item)));
            assert!(balanced.windows(2).all(|w| w[0].score >= w[1].score));
            // Each movie's own neighbours keep their order.
            assert_eq!(balanced[0].item, 10);
        }
    }

    #[test]
    fn the_array_and_the_map_sum_votes_alike() {
        let history = [entry(0, 5.0, 0), entry(3, 2.0, 1), entry(1, 4.0, 2)];
        for balance in [1.0, 0.9, 0.5] {
            let params = PersonalParams {
                balance,
                pivot: 3.0,
                ..PersonalParams::NEUTRAL
            };
            let dense = accumulate(&lists(), &history, &params, 3, &|j| j != 1, true);
            let sparse = accumulate(&lists(), &history, &params, 3, &|j| j != 1, false);
            assert_eq!(dense, sparse);
            assert!(!dense.is_empty());
        }
    }
}
