//! The movie × user rating matrix, aligned with the catalog's internal movie order.

use crate::artifact::codec::{check_offsets, Reader, Writer};
use crate::catalog::Catalog;
use crate::data::Rating;
use crate::models::personal::HistoryEntry;
use crate::Result;

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
        let mut triples: Vec<(u32, u32, u32, f32)> = ratings
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

/// Every user's ratings, by user: what personalised recommendations start from.
#[derive(Clone, Debug, PartialEq)]
pub struct UserHistories {
    /// MovieLens user ids, ascending.
    pub user_ids: Vec<u32>,
    /// User `u`'s entries span `indptr[u]..indptr[u + 1]`.
    pub indptr: Vec<usize>,
    /// Catalog rows rated.
    pub items: Vec<u32>,
    /// The ratings.
    pub ratings: Vec<f32>,
    /// Each rating's position in its user's history (0 = first).
    pub positions: Vec<u32>,
}

const USERS_MAGIC: &[u8; 8] = b"MRUSERS1";
const USERS_VERSION: u32 = 1;

impl UserHistories {
    /// Transposes the rating matrix; each user's entries are in history order.
    pub fn from_matrix(matrix: &RatingMatrix) -> UserHistories {
        let mut entries: Vec<(u32, u32, u32, f32)> = Vec::with_capacity(matrix.nnz());
        for item in 0..matrix.n_items() {
            for e in matrix.indptr[item]..matrix.indptr[item + 1] {
                entries.push((
                    matrix.users[e],
                    matrix.positions[e],
                    item as u32,
                    matrix.values[e],
                ));
            }
        }
        entries.sort_unstable_by_key(|&(u, p, i, _)| (u, p, i));
        let mut indptr = vec![0usize; matrix.n_users() + 1];
        for &(u, ..) in &entries {
            indptr[u as usize + 1] += 1;
        }
        for u in 0..matrix.n_users() {
            indptr[u + 1] += indptr[u];
        }
        UserHistories {
            user_ids: matrix.user_ids.clone(),
            indptr,
            items: entries.iter().map(|e| e.2).collect(),
            ratings: entries.iter().map(|e| e.3).collect(),
            positions: entries.iter().map(|e| e.1).collect(),
        }
    }

    /// The history of MovieLens user `user_id` in order, if they rated anything.
    pub fn history(&self, user_id: u32) -> Option<impl Iterator<Item = HistoryEntry> + '_> {
        let u = self.user_ids.binary_search(&user_id).ok()?;
        let span = self.indptr[u]..self.indptr[u + 1];
        Some(span.map(move |e| HistoryEntry {
            item: self.items[e],
            rating: self.ratings[e],
            position: self.positions[e],
        }))
    }

    /// Encodes: magic `MRUSERS1`, version `u32`, users `u64`, entries `u64`, user ids
    /// `u32 × users`, offsets `u64 × (users + 1)`, rows `u32`, ratings `f32` and positions `u32`
    /// (each `× entries`), little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(USERS_MAGIC, USERS_VERSION);
        w.u64(self.user_ids.len() as u64);
        w.u64(self.items.len() as u64);
        self.user_ids.iter().for_each(|&u| w.u32(u));
        self.indptr.iter().for_each(|&o| w.u64(o as u64));
        self.items.iter().for_each(|&i| w.u32(i));
        self.ratings.iter().for_each(|&r| w.f32(r));
        self.positions.iter().for_each(|&p| w.u32(p));
        w.bytes
    }

    /// Decodes histories written by [`UserHistories::to_bytes`] for a catalog of `movies`
    /// movies; any inconsistency is an error naming `name`.
    pub fn from_bytes(name: &str, bytes: &[u8], movies: usize) -> Result<UserHistories> {
        let mut r = Reader::new(name, bytes, USERS_MAGIC, USERS_VERSION)?;
        let users = r.count("user count", 4)?;
        let total = r.count("entry count", 12)?;
        let user_ids = r.u32s(users, "user ids")?;
        if user_ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(r.invalid("user ids are not strictly ascending"));
        }
        let indptr = r.u64s(users + 1, "offsets")?;
        let indptr = check_offsets(&r, &indptr, total)?;
        let items = r.u32s(total, "rows")?;
        let ratings = r.f32s(total, "ratings")?;
        let positions = r.u32s(total, "positions")?;
        if items.iter().any(|&i| i as usize >= movies) {
            return Err(r.invalid("a rated movie is outside the catalog"));
        }
        r.finish()?;
        Ok(UserHistories {
            user_ids,
            indptr,
            items,
            ratings,
            positions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::numbered_catalog as catalog;

    fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: u32) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        }
    }

    #[test]
    fn the_latest_of_duplicate_ratings_counts_and_histories_are_in_time_order() {
        let ratings = [
            rating(7, 2, 1.0, 10),
            rating(7, 1, 4.0, 5),
            rating(7, 2, 5.0, 20), // re-rated later: this one counts
            rating(3, 3, 2.5, 1),
        ];
        let matrix = RatingMatrix::build(&catalog(3), &ratings);
        assert_eq!(matrix.nnz(), 3);
        let users = UserHistories::from_matrix(&matrix);
        let seven: Vec<_> = users.history(7).unwrap().collect();
        let seven: Vec<(u32, f32, u32)> = seven
            .iter()
            .map(|h| (h.item, h.rating, h.position))
            .collect();
        assert_eq!(seven, vec![(0, 4.0, 0), (1, 5.0, 1)]);
        assert!(users.history(99).is_none());
        let bytes = users.to_bytes();
        assert_eq!(UserHistories::from_bytes("u", &bytes, 3).unwrap(), users);
        for len in 0..bytes.len() {
            assert!(
                UserHistories::from_bytes("u", &bytes[..len], 3).is_err(),
                "{len}"
            );
        }
        assert!(
            UserHistories::from_bytes("u", &bytes, 1).is_err(),
            "rows outside the catalog"
        );
    }
}
