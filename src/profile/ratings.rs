//! The ratings, read in one parallel pass: their values, per-movie and per-year sums, each
//! user's count and first rating, and the timestamps.

use super::*;

/// What one parallel pass over the ratings gathers: values, per-movie and per-year sums, each
/// user's count and first rating, and the timestamps (for their column). The ratings are read
/// once: at ml-latest's size they are 800 MB, and reading them is most of the work.
pub(super) struct RatingsPass {
    pub(super) count: u64,
    pub(super) sum: f64,
    /// Counts of `k / 2` stars for k = 0..=10.
    pub(super) half_stars: [u64; 11],
    /// Values that are not half stars.
    pub(super) other: HashMap<u32, u64>,
    /// Per movie (position in `movies.csv`): (ratings, sum); genres are summed from these.
    pub(super) movies: Vec<(u32, f64)>,
    /// Ratings of movies not in `movies.csv` (none after loading).
    pub(super) unknown_movies: u64,
    /// Per year index: (ratings, sum).
    pub(super) years: Vec<(u64, f64)>,
    /// Ratings per user id, and each user's first timestamp (`i64::MAX`: no rating), grown as
    /// ids come; empty with `sparse_users` when an id is too large for an array.
    pub(super) users: Vec<u32>,
    pub(super) first_rated: Vec<i64>,
    pub(super) sparse_users: bool,
    /// The timestamps (32-bit, as the loader keeps them), for the radix sort.
    pub(super) timestamps: Vec<u32>,
}

impl RatingsPass {
    pub(super) fn empty(movies: usize, years: usize) -> RatingsPass {
        RatingsPass {
            count: 0,
            sum: 0.0,
            half_stars: [0; 11],
            other: HashMap::new(),
            movies: vec![(0, 0.0); movies],
            unknown_movies: 0,
            years: vec![(0, 0.0); years],
            users: Vec::new(),
            first_rated: Vec::new(),
            sparse_users: false,
            timestamps: Vec::new(),
        }
    }

    pub(super) fn run(ratings: &[Rating], movies: &MovieTable) -> RatingsPass {
        let starts = year_starts();
        let n_movies = movies.ids.len();
        let years = starts.len() - 1;
        // A few large parts, each with its own arrays, merged at the end.
        let part = ratings
            .len()
            .div_ceil(2 * rayon::current_num_threads())
            .max(1 << 16);
        ratings
            .par_chunks(part)
            .map(|part| {
                let mut acc = RatingsPass::empty(n_movies, years);
                acc.timestamps.reserve(part.len());
                for r in part {
                    acc.add(r, movies, &starts);
                }
                acc
            })
            .reduce_with(RatingsPass::merge)
            .unwrap_or_else(|| RatingsPass::empty(n_movies, years))
    }

    pub(super) fn add(&mut self, r: &Rating, movies: &MovieTable, starts: &[i64]) {
        self.count += 1;
        let value = f64::from(r.rating);
        self.sum += value;
        let doubled = r.rating * 2.0;
        if doubled.fract() == 0.0 && (0.0..=10.0).contains(&doubled) {
            self.half_stars[doubled as usize] += 1;
        } else {
            *self.other.entry(r.rating.to_bits()).or_default() += 1;
        }
        match movies.index.get(r.movie_id) {
            Some(m) => {
                self.movies[m].0 += 1;
                self.movies[m].1 += value;
            }
            None => self.unknown_movies += 1,
        }
        if let Some(y) = year_index(starts, i64::from(r.timestamp)) {
            self.years[y].0 += 1;
            self.years[y].1 += value;
        }
        let user = r.user_id as usize;
        if !self.sparse_users {
            if u64::from(r.user_id) >= DENSE_ID_LIMIT {
                self.sparse_users = true;
                self.users = Vec::new();
                self.first_rated = Vec::new();
            } else {
                if user >= self.users.len() {
                    let len = (user + 1).max(2 * self.users.len());
                    self.users.resize(len, 0);
                    self.first_rated.resize(len, i64::MAX);
                }
                self.users[user] += 1;
                self.first_rated[user] = self.first_rated[user].min(i64::from(r.timestamp));
            }
        }
        self.timestamps.push(r.timestamp);
    }

    pub(super) fn merge(mut a: RatingsPass, mut b: RatingsPass) -> RatingsPass {
        a.count += b.count;
        a.sum += b.sum;
        for (x, y) in a.half_stars.iter_mut().zip(b.half_stars) {
            *x += y;
        }
        for (k, v) in b.other {
            *a.other.entry(k).or_default() += v;
        }
        for (x, y) in a.movies.iter_mut().zip(&b.movies) {
            x.0 += y.0;
            x.1 += y.1;
        }
        a.unknown_movies += b.unknown_movies;
        for (x, y) in a.years.iter_mut().zip(&b.years) {
            x.0 += y.0;
            x.1 += y.1;
        }
        a.sparse_users |= b.sparse_users;
        if a.sparse_users {
            a.users = Vec::new();
            a.first_rated = Vec::new();
        } else {
            if a.users.len() < b.users.len() {
                std::mem::swap(&mut a.users, &mut b.users);
                std::mem::swap(&mut a.first_rated, &mut b.first_rated);
            }
            for (x, y) in a.users.iter_mut().zip(&b.users) {
                *x += y;
            }
            for (x, y) in a.first_rated.iter_mut().zip(&b.first_rated) {
                *x = (*x).min(*y);
            }
        }
        a.timestamps.extend_from_slice(&b.timestamps);
        a
    }

    /// Ratings per user id (counted again by sorting if an id was too large for an array).
    pub(super) fn user_counts(&self, ratings: &[Rating]) -> IdCounts {
        if self.sparse_users {
            return count_ids(ratings.len(), |i| ratings[i].user_id);
        }
        let (ids, counts) = self
            .users
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(id, &c)| (id as u32, c))
            .unzip();
        IdCounts { ids, counts }
    }

    /// Ratings per movie id (counted again if some rating's movie is not in `movies.csv`).
    pub(super) fn movie_counts(&self, ratings: &[Rating], movies: &MovieTable) -> IdCounts {
        if self.unknown_movies > 0 {
            return count_ids(ratings.len(), |i| ratings[i].movie_id);
        }
        let mut pairs: Vec<(u32, u32)> = movies
            .ids
            .iter()
            .zip(&self.movies)
            .filter(|(_, m)| m.0 > 0)
            .map(|(&id, m)| (id, m.0))
            .collect();
        pairs.sort_unstable();
        let (ids, counts) = pairs.into_iter().unzip();
        IdCounts { ids, counts }
    }

    /// The timestamps, sorted.
    pub(super) fn sorted_timestamps(&mut self) -> Vec<i64> {
        let mut keys = std::mem::take(&mut self.timestamps);
        radix_sort(&mut keys);
        keys.into_iter().map(i64::from).collect()
    }

    pub(super) fn histogram(&self) -> Vec<(f32, u64)> {
        let mut histogram: Vec<(f32, u64)> = self
            .half_stars
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (k as f32 / 2.0, c))
            .chain(
                self.other
                    .iter()
                    .map(|(&bits, &c)| (f32::from_bits(bits), c)),
            )
            .collect();
        histogram.sort_by(|a, b| a.0.total_cmp(&b.0));
        histogram
    }

    pub(super) fn ratings_view(&self) -> RatingsView {
        RatingsView {
            count: self.count,
            mean: if self.count > 0 {
                self.sum / self.count as f64
            } else {
                0.0
            },
            histogram: self.histogram(),
        }
    }

    pub(super) fn rating_column(&self) -> ColumnProfile {
        let histogram = self.histogram();
        let top = top_by_count(
            histogram.iter().map(|&(v, c)| (OrderedF32(v), c)),
            TOP_VALUES,
        );
        ColumnProfile {
            name: "rating".into(),
            kind: ColumnKind::Decimal,
            count: self.count,
            missing: 0,
            distinct: histogram.len() as u64,
            min: histogram.first().map(|h| format_decimal(h.0)),
            max: histogram.last().map(|h| format_decimal(h.0)),
            mean: (self.count > 0).then(|| self.sum / self.count as f64),
            top: top
                .into_iter()
                .map(|(v, c)| (format_decimal(v.0), c))
                .collect(),
        }
    }

    pub(super) fn genre_rows(&self, movies: &MovieTable) -> Vec<GenreRow> {
        let mut per_genre = vec![(0u64, 0.0f64); movies.genres.len().min(64)];
        for (&mask, &(ratings, sum)) in movies.masks.iter().zip(&self.movies) {
            let mut mask = mask;
            while mask != 0 {
                let g = mask.trailing_zeros() as usize;
                per_genre[g].0 += u64::from(ratings);
                per_genre[g].1 += sum;
                mask &= mask - 1;
            }
        }
        let mut rows: Vec<GenreRow> = movies
            .genres
            .iter()
            .take(64)
            .enumerate()
            .map(|(g, genre)| {
                let (ratings, sum) = per_genre[g];
                GenreRow {
                    genre: genre.clone(),
                    movies: movies.masks.iter().filter(|m| (*m >> g) & 1 == 1).count() as u64,
                    ratings,
                    mean_rating: if ratings > 0 {
                        sum / ratings as f64
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        rows.sort_by(|a, b| b.movies.cmp(&a.movies).then_with(|| a.genre.cmp(&b.genre)));
        rows
    }

    pub(super) fn year_rows(&self, ratings: &[Rating]) -> Vec<YearRow> {
        let starts = year_starts();
        let mut new_users = vec![0u64; self.years.len()];
        let firsts = if self.sparse_users {
            first_rating_times(ratings)
        } else {
            self.first_rated
                .iter()
                .copied()
                .filter(|&t| t != i64::MAX)
                .collect()
        };
        for t in firsts {
            if let Some(y) = year_index(&starts, t) {
                new_users[y] += 1;
            }
        }
        self.years
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(y, &(ratings, sum))| YearRow {
                year: FIRST_YEAR + y as i32,
                ratings,
                mean_rating: sum / ratings as f64,
                new_users: new_users[y],
            })
            .collect()
    }
}

/// The time of each user's first rating (in no particular order), for user ids too large for
/// [`RatingsPass`]'s arrays.
pub(super) fn first_rating_times(ratings: &[Rating]) -> Vec<i64> {
    let mut firsts: HashMap<u32, i64> = HashMap::new();
    for r in ratings {
        let e = firsts.entry(r.user_id).or_insert(i64::MAX);
        *e = (*e).min(i64::from(r.timestamp));
    }
    firsts.into_values().collect()
}
