//! The movie × user rating matrix, aligned with the catalog's internal movie order.

use crate::catalog::Catalog;
use crate::data::Rating;

/// Ratings as a sparse movie × user matrix (compressed rows: one row per catalog movie).
#[derive(Clone, Debug)]
pub struct RatingMatrix {
    /// Dense user index → MovieLens user id.
    pub user_ids: Vec<u32>,
    /// Row `i` spans `indptr[i]..indptr[i + 1]` of `users` and `values`.
    pub indptr: Vec<usize>,
    /// Dense user index of each entry.
    pub users: Vec<u32>,
    /// Rating of each entry.
    pub values: Vec<f32>,
    /// Position of each entry in its user's history (0 = the user's first rating, by timestamp).
    pub positions: Vec<u32>,
}

impl RatingMatrix {
    /// Builds the matrix from ratings; ratings of movies not in the catalog are ignored. When a
    /// user rated a movie twice, the latest rating counts.
    pub fn build(catalog: &Catalog, ratings: &[Rating]) -> RatingMatrix {
        let mut user_ids: Vec<u32> = ratings.iter().map(|r| r.user_id).collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let mut triples: Vec<(u32, u32, i64, f32)> = ratings
            .iter()
            .filter_map(|r| {
                let item = catalog.item_of(r.movie_id)?;
                let user = user_ids.binary_search(&r.user_id).ok()? as u32;
                Some((item, user, r.timestamp, r.rating))
            })
            .collect();
        triples.sort_unstable_by_key(|&(item, user, ts, _)| (item, user, std::cmp::Reverse(ts)));
        triples.dedup_by_key(|&mut (item, user, _, _)| (item, user));
        let mut indptr = vec![0usize; catalog.len() + 1];
        for &(item, ..) in &triples {
            indptr[item as usize + 1] += 1;
        }
        for i in 0..catalog.len() {
            indptr[i + 1] += indptr[i];
        }
        // Each rating's rank in its user's time-ordered history.
        let mut order: Vec<usize> = (0..triples.len()).collect();
        order.sort_unstable_by_key(|&e| (triples[e].1, triples[e].2, triples[e].0));
        let mut positions = vec![0u32; triples.len()];
        let mut previous_user = u32::MAX;
        let mut position = 0u32;
        for e in order {
            if triples[e].1 != previous_user {
                previous_user = triples[e].1;
                position = 0;
            }
            positions[e] = position;
            position += 1;
        }
        RatingMatrix {
            user_ids,
            indptr,
            users: triples.iter().map(|t| t.1).collect(),
            values: triples.iter().map(|t| t.3).collect(),
            positions,
        }
    }

    /// Number of movies (rows).
    pub fn n_items(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of users (columns).
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    /// Number of stored ratings.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The `(user, rating)` entries of movie `item`.
    pub fn row(&self, item: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let span = self.indptr[item]..self.indptr[item + 1];
        self.users[span.clone()]
            .iter()
            .copied()
            .zip(self.values[span].iter().copied())
    }
}
