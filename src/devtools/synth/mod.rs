//! Synthetic MovieLens releases, for benchmarks: made-up movies, users, ratings and tags with
//! the shape of ml-latest, written in its CSV layout (`movierec synth`) or drawn in memory
//! ([`SynthModel`], used by `benches/als.rs` and `benches/title_search.rs`).
//!
//! # Scale
//! Scale `S` multiplies both the number of movies and the number of users of ml-latest (2023):
//! `round(86,537 · S)` movies and `round(330,975 · S)` users, at least 10 of each. Ratings
//! follow from user activity (about 102 per user), so they scale with `S` too: S = 1 gives about
//! 33.9M ratings (ml-latest has 33,832,162), S = 0.1 about 3.4M. Tags: about 2.3M at S = 1.
//!
//! # The model
//! - **Movies**: ids ascending with gaps (the largest about 3.3 × the count, like ml-latest's);
//!   titles built from word lists in MovieLens's spelling (`"Harbor, The (1987)"`, quoted when
//!   they contain a comma; some with an original-language or `a.k.a.` title in parentheses; about
//!   1% without a year), release years weighted towards recent decades, genres from MovieLens's
//!   19 drawn with their ml-latest frequencies (about 8% `(no genres listed)`), IMDb and TMDb ids
//!   (about 0.15% of TMDb ids missing).
//! - **Popularity**: Zipf–Mandelbrot (weight `1 / (rank + 10)`) over a random permutation of the
//!   movies, so a few hundred movies take a large share of all ratings and most have very few.
//! - **Activity**: ratings per user log-normal (σ = 1.3, mean about 102), at most half the
//!   movies; each user's movies drawn by popularity without replacement.
//! - **Taste** (`--taste T`, default 0): with `T` above 0 a user's taste also picks what they
//!   rate: each movie drawn by popularity is kept with probability `1 / (1 + exp(−T · ⟨user,
//!   movie⟩))`, the product (in stars) that moves their rating of it, and drawn again otherwise.
//!   At 0, popularity alone picks: then who rated what has one real direction (popularity) and
//!   an SVD of it is that direction plus noise, unlike real releases (docs/BENCHMARKS.md, "Why
//!   SVD's recall stays near 0.91"). Every benchmark figure before `--taste` is of `T = 0`, and
//!   so is the default, so that they stay comparable.
//! - **Ratings**: a latent-factor model: `3.6 + user bias + movie bias + ⟨user, movie⟩ + noise`
//!   (8 factors; a movie's factors lean towards its genres' and its bias grows with popularity;
//!   now and then a strong dislike, for MovieLens's fat tail of low ratings), rounded to half
//!   stars 0.5–5.0, or to whole stars 1–5 before 18 February 2003 (when MovieLens introduced
//!   half stars) and for a quarter of the users.
//! - **Timestamps**: each user starts at a uniform time between 1996 and July 2023 and rates over
//!   a log-normal span (a day for a typical user, years for the most active).
//! - **Tags**: 8% of users tag about half the movies they rate, from a vocabulary of genre-related
//!   and general tags (a few contain commas or quotes).
//!
//! `ratings.csv` and `tags.csv` are sorted by `userId`, then `timestamp` (then `movieId`); the
//! real releases order a user's rows by `movieId`, and nothing in movierec depends on the order.
//! There is no tag genome.
//!
//! # Determinism
//! Everything is a function of the seed and the scale: each user draws from its own random
//! stream (seeded by the seed and the user), so the files are byte-identical whatever the number
//! of threads. For the same seed and scale the rating matrix (who rated which movie) is the one
//! `cargo bench --bench als` has always trained on (the seed 7 is its default).

use crate::atomic::StagedDir;
use crate::{Error, Result};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, StandardNormal};
use rayon::prelude::*;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Movies of ml-latest (2023), the number at scale 1.
pub const FULL_SCALE_MOVIES: usize = 86_537;
/// Users of ml-latest (2023), the number at scale 1.
pub const FULL_SCALE_USERS: usize = 330_975;
/// The seed `movierec synth` uses unless told otherwise (also the ALS bench's).
pub const DEFAULT_SEED: u64 = 7;
/// Largest scale accepted (about 340M ratings, 9 GB of CSV).
pub const MAX_SCALE: f64 = 10.0;
/// Largest `--taste` accepted: at 16 a user keeps almost only the movies they would rate above
/// their mean.
pub const MAX_TASTE: f64 = 16.0;

/// MovieLens's 19 genres, in the order of [`SynthMovie::genres`] bits.
pub const GENRES: [&str; 19] = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Share of movies with each genre, among movies with genres (ml-latest's proportions; about
/// 1.8 genres per movie).
const GENRE_SHARE: [f64; 19] = [
    0.120, 0.068, 0.058, 0.056, 0.290, 0.090, 0.116, 0.425, 0.049, 0.0045, 0.108, 0.0025, 0.013,
    0.050, 0.130, 0.061, 0.148, 0.029, 0.018,
];
/// Share of movies with `(no genres listed)`.
const NO_GENRES_SHARE: f64 = 0.08;
/// Share of movies without a year in the title.
const NO_YEAR_SHARE: f64 = 0.01;
/// Release decades from 1890 and their weights (more films every decade, as in ml-latest).
const DECADE_WEIGHTS: [f64; 14] = [
    0.2, 0.8, 1.5, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 8.0, 11.0, 20.0, 30.0, 6.5,
];
/// Latent factors of the rating model.
const FACTORS: usize = 8;
/// Global mean of the rating model before rounding.
const RATING_MEAN: f32 = 3.6;
/// First and last moment a rating can have (1996-01-01, 2023-07-20 UTC).
const TIME_START: i64 = 820_454_400;
const TIME_END: i64 = 1_689_811_200;
/// Half stars exist from 2003-02-18 on.
const HALF_STARS_FROM: i64 = 1_045_526_400;
/// Users per block generated by one task.
const BLOCK_USERS: usize = 1024;

/// How large a synthetic release to make, and from which seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthParams {
    /// 1.0 is ml-latest's size (see the module docs for what scales).
    pub scale: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// How much taste picks what a user rates (0: popularity alone; see the module docs).
    pub taste: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            scale: 1.0,
            seed: DEFAULT_SEED,
            taste: 0.0,
        }
    }
}

impl SynthParams {
    /// Number of movies: `round(86,537 · scale)`, at least 10.
    pub fn movies(&self) -> usize {
        ((FULL_SCALE_MOVIES as f64 * self.scale).round() as usize).max(10)
    }

    /// Number of users: `round(330,975 · scale)`, at least 10.
    pub fn users(&self) -> usize {
        ((FULL_SCALE_USERS as f64 * self.scale).round() as usize).max(10)
    }

    /// Refuses a scale that is not a number in `(0, MAX_SCALE]` and a taste outside
    /// `[0, MAX_TASTE]`.
    pub fn check(&self) -> Result<()> {
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= MAX_SCALE) {
            return Err(Error::invalid(
                "scale",
                format!(
                    "--scale must be above 0 and at most {MAX_SCALE} (1 is ml-latest's size), not {}",
                    self.scale
                ),
            ));
        }
        if !(self.taste >= 0.0 && self.taste <= MAX_TASTE) {
            return Err(Error::invalid(
                "taste",
                format!(
                    "--taste must be from 0 (popularity alone) to {MAX_TASTE}, not {}",
                    self.taste
                ),
            ));
        }
        Ok(())
    }
}

/// A made-up movie.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthMovie {
    /// MovieLens-style id (ascending with gaps).
    pub movie_id: u32,
    /// The title as `movies.csv` spells it: `Harbor, The (Port tranquille, Le) (1987)`.
    pub title: String,
    /// Bit `g` set for genre [`GENRES`]`[g]`; 0 is `(no genres listed)`.
    pub genres: u32,
    /// Release year (also at the end of `title`), if any.
    pub year: Option<u16>,
    /// IMDb numeric id.
    pub imdb_id: u32,
    /// TMDb id, missing for a few movies.
    pub tmdb_id: Option<u32>,
}

impl SynthMovie {
    /// Genre names, in [`GENRES`] order.
    pub fn genre_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        GENRES
            .iter()
            .enumerate()
            .filter(|(g, _)| self.genres & (1 << g) != 0)
            .map(|(_, name)| *name)
    }

    /// The `genres` field of `movies.csv`: names joined by `|`, or `(no genres listed)`.
    pub fn genres_field(&self) -> String {
        if self.genres == 0 {
            "(no genres listed)".to_string()
        } else {
            self.genre_names().collect::<Vec<_>>().join("|")
        }
    }
}

/// One rating drawn for a user; `movie` indexes [`SynthModel::movies`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthRating {
    /// Index of the movie in [`SynthModel::movies`].
    pub movie: u32,
    /// Half or whole stars.
    pub rating: f32,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// One tag drawn for a user; `tag` indexes [`SynthModel::tag_text`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SynthTag {
    /// Index of the movie in [`SynthModel::movies`].
    pub movie: u32,
    /// Index of the tag in the vocabulary.
    pub tag: u16,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// A user's ratings and tags, each sorted by timestamp, then movie.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserHistory {
    /// The user's ratings.
    pub ratings: Vec<SynthRating>,
    /// The user's tags (empty for most users).
    pub tags: Vec<SynthTag>,
}

/// The generative model: movies with their popularity and latent factors, from which any
/// user's history can be drawn independently of the others.
#[derive(Clone, Debug)]
pub struct SynthModel {
    users: usize,
    seed: u64,
    movies: Vec<SynthMovie>,
    /// Popularity rank -> movie index.
    by_rank: Vec<u32>,
    /// Movie index -> popularity rank.
    rank_of: Vec<u32>,
    /// Weight of each rank, and their running share (for drawing by popularity).
    weights: Vec<f64>,
    cdf: Vec<f64>,
    activity: LogNormal<f64>,
    /// Row-major `movies × FACTORS`.
    movie_factors: Vec<f32>,
    movie_bias: Vec<f32>,
    /// How much taste picks what a user rates (see [`SynthModel::with_taste`]).
    taste: f32,
    /// The scale of a factor product, `(0.25 / FACTORS)^¼`, computed once: [`SynthModel::affinity`]
    /// runs for every drawn movie and every rating.
    factor_scale: f32,
    /// Tags by genre (indexes into `tags`), and the general ones.
    tags: Vec<&'static str>,
    genre_tags: Vec<Vec<u16>>,
    general_tags: Vec<u16>,
}

impl SynthModel {
    /// The model of a release of `params`'s size.
    pub fn from_params(params: &SynthParams) -> SynthModel {
        SynthModel::new(params.users(), params.movies(), params.seed).with_taste(params.taste)
    }

    /// The same model where taste also picks what users rate: a movie drawn by popularity is
    /// kept with probability `1 / (1 + exp(−taste · ⟨user, movie⟩))`, the same product (in
    /// stars) that moves the user's rating of it. 0 (the default) keeps every draw: popularity
    /// alone, the matrix every benchmark before `--taste` measured. Users' factors are symmetric
    /// about 0, so every movie keeps half its draws on average and popularity is unchanged.
    pub fn with_taste(mut self, taste: f64) -> SynthModel {
        self.taste = taste as f32;
        self
    }

    /// The model of `users` users and `movies` movies (each at least 2).
    pub fn new(users: usize, movies: usize, seed: u64) -> SynthModel {
        let n_movies = movies.max(2);
        // Popularity rank -> movie: the permutation and weights `benches/als.rs` has always used.
        let mut by_rank: Vec<u32> = (0..n_movies as u32).collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        for k in (1..n_movies).rev() {
            by_rank.swap(k, rng.random_range(0..=k));
        }
        let mut rank_of = vec![0u32; n_movies];
        for (rank, &movie) in by_rank.iter().enumerate() {
            rank_of[movie as usize] = rank as u32;
        }
        let weights: Vec<f64> = (0..n_movies).map(|r| 1.0 / (r as f64 + 10.0)).collect();
        let total: f64 = weights.iter().sum();
        let mut cdf = Vec::with_capacity(n_movies);
        let mut acc = 0.0;
        for w in &weights {
            acc += w / total;
            cdf.push(acc);
        }
        // Mean exp(mu + sigma²/2) = 102.
        let sigma = 1.3f64;
        let activity = LogNormal::new(102f64.ln() - sigma * sigma / 2.0, sigma)
            .expect("valid log-normal parameters");

        let mut rng = SmallRng::seed_from_u64(seed ^ 0x6d6f_7669_6573);
        let movies = titles::movies(n_movies, &mut rng);

        // Movie factors lean towards their genres' directions.
        let scale = (0.25f32 / FACTORS as f32).powf(0.25);
        let genre_factors: Vec<f32> = (0..GENRES.len() * FACTORS)
            .map(|_| normal(&mut rng))
            .collect();
        let mut movie_factors = Vec::with_capacity(n_movies * FACTORS);
        let mut movie_bias = Vec::with_capacity(n_movies);
        for (index, movie) in movies.iter().enumerate() {
            let count = movie.genres.count_ones().max(1) as f32;
            for f in 0..FACTORS {
                let genre_part: f32 = (0..GENRES.len())
                    .filter(|g| movie.genres & (1 << g) != 0)
                    .map(|g| genre_factors[g * FACTORS + f])
                    .sum::<f32>()
                    / count;
                movie_factors.push(scale * (0.6 * genre_part + 0.8 * normal(&mut rng)));
            }
            // Popular movies are rated higher, obscure ones lower.
            let rank = rank_of[index] as f32;
            movie_bias.push(0.35 * normal(&mut rng) + 0.3 - 0.1 * (1.0 + rank / 100.0).ln());
        }

        let (tags, genre_tags, general_tags) = titles::tag_vocabulary();
        SynthModel {
            users,
            seed,
            movies,
            by_rank,
            rank_of,
            weights,
            cdf,
            activity,
            movie_factors,
            movie_bias,
            taste: 0.0,
            factor_scale: scale,
            tags,
            genre_tags,
            general_tags,
        }
    }

    /// The movies, in `movieId` order.
    pub fn movies(&self) -> &[SynthMovie] {
        &self.movies
    }

    /// Number of users (ids `1..=users`).
    pub fn users(&self) -> usize {
        self.users
    }

    /// The text of tag `tag` of a [`SynthTag`].
    pub fn tag_text(&self, tag: u16) -> &'static str {
        self.tags[tag as usize]
    }

    /// Expected number of ratings of movie `movie` (an index into [`SynthModel::movies`]) over
    /// all users, ignoring the cap on a user's activity.
    pub fn expected_ratings(&self, movie: usize) -> f64 {
        let first = self.cdf.first().copied().unwrap_or(0.0);
        let share = first * self.weights[self.rank_of[movie] as usize] / self.weights[0];
        share * self.users as f64 * self.activity_mean()
    }

    fn activity_mean(&self) -> f64 {
        102.0
    }

    /// The product of a movie's and a user's factors, in stars: what the user's taste adds to
    /// their rating of it.
    fn affinity(&self, movie: usize, factors: &[f32; FACTORS]) -> f32 {
        let scale = self.factor_scale;
        self.movie_factors[movie * FACTORS..(movie + 1) * FACTORS]
            .iter()
            .zip(factors)
            .map(|(a, b)| a * b * scale)
            .sum()
    }

    /// The chance that a movie of `affinity` drawn by popularity is kept (1 without taste).
    fn keep_chance(&self, affinity: f32) -> f64 {
        1.0 / (1.0 + (-(self.taste * affinity) as f64).exp())
    }

    /// Movie indexes user `user` (0-based) rates, ascending, the user's random stream positioned
    /// after drawing them, and, when taste picks the movies, the user's factors it used (drawn
    /// from a stream of their own; otherwise [`SynthModel::user_history`] draws them after the
    /// movies, as it always has).
    fn user_movies(&self, user: usize) -> (Vec<u32>, SmallRng, Option<[f32; FACTORS]>) {
        let n_movies = self.movies.len();
        let mut rng =
            SmallRng::seed_from_u64(self.seed ^ (user as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let n = (self.activity.sample(&mut rng).round() as usize).clamp(1, n_movies / 2);
        let factors: Option<[f32; FACTORS]> = (self.taste > 0.0).then(|| {
            let mut own = SmallRng::seed_from_u64(
                self.seed ^ 0x7461_7374_6573 ^ (user as u64).wrapping_mul(0xd6e8_feb8_6659_fd93),
            );
            std::array::from_fn(|_| normal(&mut own))
        });
        let keep = |movie: u32| match &factors {
            Some(f) => self.keep_chance(self.affinity(movie as usize, f)),
            None => 1.0,
        };
        let mut items: Vec<u32> = if n > 2000 {
            // Weighted sampling without replacement (Efraimidis–Spirakis keys), each movie's
            // weight its popularity times its keep chance.
            let mut keys: Vec<(f64, u32)> = self
                .weights
                .iter()
                .enumerate()
                .map(|(r, w)| {
                    let movie = self.by_rank[r];
                    (-rng.random::<f64>().ln() / (w * keep(movie)), movie)
                })
                .collect();
            keys.select_nth_unstable_by(n - 1, |a, b| a.0.total_cmp(&b.0));
            keys[..n].iter().map(|k| k.1).collect()
        } else {
            let mut v = Vec::with_capacity(n + n / 4);
            loop {
                while v.len() < n + n / 8 {
                    let x: f64 = rng.random();
                    let r = self.cdf.partition_point(|&c| c < x).min(n_movies - 1);
                    let movie = self.by_rank[r];
                    // Without taste nothing is drawn here, so the stream (and every file) is the
                    // one popularity alone has always given.
                    if factors.is_some() && !rng.random_bool(keep(movie)) {
                        continue;
                    }
                    v.push(movie);
                }
                v.sort_unstable();
                v.dedup();
                if v.len() >= n {
                    break;
                }
            }
            // Drop a random surplus (not the largest ids).
            while v.len() > n {
                let k = rng.random_range(0..v.len());
                v.swap_remove(k);
            }
            v
        };
        items.sort_unstable();
        (items, rng, factors)
    }

    /// The ratings and tags of user `user` (0-based; the file's `userId` is `user + 1`).
    pub fn user_history(&self, user: usize) -> UserHistory {
        let (items, mut rng, taste_factors) = self.user_movies(user);
        let n = items.len();
        let bias = 0.4 * normal(&mut rng);
        let drawn: [f32; FACTORS] = std::array::from_fn(|_| normal(&mut rng));
        let factors = taste_factors.unwrap_or(drawn);
        let whole_stars_only = rng.random_bool(0.25);
        let tagger = rng.random_bool(0.08);

        // When: a start, then a log-normal span (longer for more active users).
        let start = rng.random_range(TIME_START..TIME_END);
        let span = 3600.0 * (2.5 * normal(&mut rng) as f64 + 1.0 + 0.6 * (n as f64).ln()).exp();
        let span = (span as i64).clamp(0, TIME_END - start);
        let mut times: Vec<i64> = (0..n)
            .map(|k| {
                if k == 0 {
                    start
                } else {
                    start + rng.random_range(0..=span)
                }
            })
            .collect();
        times.sort_unstable();
        // The order the movies were rated in: a random one.
        let mut order = items;
        for k in (1..n).rev() {
            order.swap(k, rng.random_range(0..=k));
        }

        let mut ratings: Vec<SynthRating> = order
            .iter()
            .zip(&times)
            .map(|(&movie, &timestamp)| {
                let m = movie as usize;
                let dot = self.affinity(m, &factors);
                // Now and then a strong dislike: MovieLens's low ratings are a fat tail.
                let dislike = if rng.random_bool(0.1) {
                    1.8 * normal(&mut rng).abs()
                } else {
                    0.0
                };
                let value = RATING_MEAN + bias + self.movie_bias[m] + dot - dislike
                    + 0.55 * normal(&mut rng);
                let rating = if whole_stars_only || timestamp < HALF_STARS_FROM {
                    value.round().clamp(1.0, 5.0)
                } else {
                    ((value * 2.0).round() / 2.0).clamp(0.5, 5.0)
                };
                SynthRating {
                    movie,
                    rating,
                    timestamp,
                }
            })
            .collect();
        ratings.sort_unstable_by_key(|r| (r.timestamp, r.movie));

        let mut tags = Vec::new();
        if tagger {
            for r in &ratings {
                if !rng.random_bool(0.5) {
                    continue;
                }
                let first = tags.len();
                let count = 1 + (rng.random::<f64>().ln() / 0.4f64.ln()) as usize;
                for _ in 0..count.min(6) {
                    let tag = self.draw_tag(r.movie, &mut rng);
                    if !tags[first..].iter().any(|t: &SynthTag| t.tag == tag) {
                        tags.push(SynthTag {
                            movie: r.movie,
                            tag,
                            timestamp: r.timestamp + rng.random_range(0..600),
                        });
                    }
                }
            }
            tags.sort_unstable_by_key(|t| (t.timestamp, t.movie, t.tag));
        }
        UserHistory { ratings, tags }
    }

    /// A tag for a movie: one of its genres' tags (55%) or a general one, common ones likelier.
    fn draw_tag(&self, movie: u32, rng: &mut SmallRng) -> u16 {
        let genres = self.movies[movie as usize].genres;
        let zipf = |rng: &mut SmallRng, n: usize| {
            // Roughly Zipf: the k-th tag with probability ∝ 1/(k+1).
            let x: f64 = rng.random();
            (((n as f64 + 1.0).powf(x) - 1.0) as usize).min(n - 1)
        };
        if genres != 0 && rng.random_bool(0.55) {
            let mut pick = rng.random_range(0..genres.count_ones());
            for (g, list) in self.genre_tags.iter().enumerate() {
                if genres & (1 << g) != 0 {
                    if pick == 0 {
                        return list[zipf(rng, list.len())];
                    }
                    pick -= 1;
                }
            }
        }
        self.general_tags[zipf(rng, self.general_tags.len())]
    }

    /// Every rating as a user-major sparse matrix (users × movie indexes, movies ascending in
    /// each row): `(indptr, movie indexes, ratings)`. Drawn in parallel; memory is about 8
    /// bytes per rating.
    pub fn rating_matrix(&self) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
        let rows: Vec<Vec<(u32, f32)>> = (0..self.users)
            .into_par_iter()
            .map(|u| {
                let mut row: Vec<(u32, f32)> = self
                    .user_history(u)
                    .ratings
                    .iter()
                    .map(|r| (r.movie, r.rating))
                    .collect();
                row.sort_unstable_by_key(|r| r.0);
                row
            })
            .collect();
        let mut indptr = Vec::with_capacity(self.users + 1);
        indptr.push(0usize);
        for r in &rows {
            indptr.push(indptr.last().copied().unwrap_or(0) + r.len());
        }
        let nnz = indptr.last().copied().unwrap_or(0);
        let mut cols = Vec::with_capacity(nnz);
        let mut values = Vec::with_capacity(nnz);
        for r in rows {
            for (c, v) in r {
                cols.push(c);
                values.push(v);
            }
        }
        (indptr, cols, values)
    }
}

/// A standard normal draw as `f32`.
fn normal(rng: &mut SmallRng) -> f32 {
    let x: f64 = StandardNormal.sample(rng);
    x as f32
}

/// What [`write_release`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSummary {
    /// Movies in `movies.csv` (and `links.csv`).
    pub movies: usize,
    /// Distinct users in `ratings.csv`.
    pub users: usize,
    /// Rows of `ratings.csv`.
    pub ratings: u64,
    /// Rows of `tags.csv`.
    pub tags: u64,
    /// Bytes of all files together.
    pub bytes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Writes a synthetic release of `params`'s size into the directory `out`, atomically (a
/// temporary sibling renamed into place; an existing MovieLens directory at `out` is replaced,
/// anything else refused): `movies.csv`, `links.csv`, `ratings.csv`, `tags.csv` in the
/// ml-latest layout and a `README.txt` saying how it was made. Users are drawn in parallel
/// blocks on rayon's threads while another thread writes.
pub fn write_release(out: &Path, params: &SynthParams) -> Result<SynthSummary> {
    params.check()?;
    let started = Instant::now();
    let staged = StagedDir::new(out, |dir| {
        dir.join("movies.csv").is_file() && dir.join("ratings.csv").is_file()
    })?;
    let dir = staged.path().to_path_buf();
    let model = SynthModel::from_params(params);
    let mut bytes = 0u64;

    let mut movies = Vec::with_capacity(model.movies.len() * 48);
    let mut links = Vec::with_capacity(model.movies.len() * 24);
    movies.extend_from_slice(b"movieId,title,genres\n");
    links.extend_from_slice(b"movieId,imdbId,tmdbId\n");
    for movie in &model.movies {
        push_u64(&mut movies, movie.movie_id.into());
        movies.push(b',');
        push_csv_field(&mut movies, &movie.title);
        movies.push(b',');
        movies.extend_from_slice(movie.genres_field().as_bytes());
        movies.push(b'\n');
        push_u64(&mut links, movie.movie_id.into());
        links.extend_from_slice(format!(",{:07},", movie.imdb_id).as_bytes());
        if let Some(tmdb) = movie.tmdb_id {
            push_u64(&mut links, tmdb.into());
        }
        links.push(b'\n');
    }
    for (name, content) in [("movies.csv", &movies), ("links.csv", &links)] {
        write_synced(&dir.join(name), content)?;
        bytes += content.len() as u64;
    }

    let (ratings, tags, written) = write_histories(&model, &dir)?;
    bytes += written;

    let readme = format!(
        "Synthetic MovieLens-shaped data written by `movierec synth --scale {} --seed {}` \
         (movierec {}), for benchmarks.\nThe movies, users, ratings and tags are made up; \
         see src/devtools/synth/ in movierec for the model.\n\nmovies: {}\nusers: {}\nratings: {ratings}\n\
         tags: {tags}\n",
        params.scale,
        params.seed,
        env!("CARGO_PKG_VERSION"),
        model.movies.len(),
        model.users,
    );
    write_synced(&dir.join("README.txt"), readme.as_bytes())?;
    bytes += readme.len() as u64;
    staged.publish()?;
    Ok(SynthSummary {
        movies: model.movies.len(),
        users: model.users,
        ratings,
        tags,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Draws every user's history in parallel blocks and streams `ratings.csv` and `tags.csv` to
/// `dir` on a writer thread; returns `(ratings, tags, bytes)`.
fn write_histories(model: &SynthModel, dir: &Path) -> Result<(u64, u64, u64)> {
    let ratings_path = dir.join("ratings.csv");
    let tags_path = dir.join("tags.csv");
    let mut ratings_file = File::create(&ratings_path).map_err(|e| Error::io(&ratings_path, e))?;
    let mut tags_file = File::create(&tags_path).map_err(|e| Error::io(&tags_path, e))?;
    ratings_file
        .write_all(b"userId,movieId,rating,timestamp\n")
        .map_err(|e| Error::io(&ratings_path, e))?;
    tags_file
        .write_all(b"userId,movieId,tag,timestamp\n")
        .map_err(|e| Error::io(&tags_path, e))?;

    let tag_fields: Vec<Vec<u8>> = model
        .tags
        .iter()
        .map(|t| {
            let mut field = Vec::new();
            push_csv_field(&mut field, t);
            field
        })
        .collect();
    let blocks = model.users.div_ceil(BLOCK_USERS);
    let per_round = 4 * rayon::current_num_threads().max(1);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Block>>(1);

    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(u64, u64, u64)> {
            let (mut ratings, mut tags, mut bytes) = (0u64, 0u64, 64u64);
            for round in receiver {
                for block in round {
                    ratings_file
                        .write_all(&block.ratings)
                        .map_err(|e| Error::io(&ratings_path, e))?;
                    tags_file
                        .write_all(&block.tags)
                        .map_err(|e| Error::io(&tags_path, e))?;
                    ratings += block.rating_rows;
                    tags += block.tag_rows;
                    bytes += (block.ratings.len() + block.tags.len()) as u64;
                }
            }
            ratings_file
                .sync_all()
                .map_err(|e| Error::io(&ratings_path, e))?;
            tags_file.sync_all().map_err(|e| Error::io(&tags_path, e))?;
            Ok((ratings, tags, bytes))
        });
        for first in (0..blocks).step_by(per_round) {
            let round: Vec<Block> = (first..(first + per_round).min(blocks))
                .into_par_iter()
                .map(|b| {
                    let users = b * BLOCK_USERS..((b + 1) * BLOCK_USERS).min(model.users);
                    render_block(model, users, &tag_fields)
                })
                .collect();
            if sender.send(round).is_err() {
                break; // The writer failed; its error is reported below.
            }
        }
        drop(sender);
        writer.join().expect("the writer thread does not panic")
    })
}

/// CSV rows of a block of users.
struct Block {
    ratings: Vec<u8>,
    tags: Vec<u8>,
    rating_rows: u64,
    tag_rows: u64,
}

/// `"0.5"` … `"5.0"`, by half stars minus one.
const RATING_TEXT: [&[u8]; 10] = [
    b"0.5", b"1.0", b"1.5", b"2.0", b"2.5", b"3.0", b"3.5", b"4.0", b"4.5", b"5.0",
];

fn render_block(
    model: &SynthModel,
    users: std::ops::Range<usize>,
    tag_fields: &[Vec<u8>],
) -> Block {
    let mut block = Block {
        ratings: Vec::with_capacity(users.len() * 110 * 28),
        tags: Vec::new(),
        rating_rows: 0,
        tag_rows: 0,
    };
    for user in users {
        let history = model.user_history(user);
        let user_id = user as u64 + 1;
        for r in &history.ratings {
            let out = &mut block.ratings;
            push_u64(out, user_id);
            out.push(b',');
            push_u64(out, model.movies[r.movie as usize].movie_id.into());
            out.push(b',');
            let half_stars = ((r.rating * 2.0) as usize).clamp(1, 10);
            out.extend_from_slice(RATING_TEXT[half_stars - 1]);
            out.push(b',');
            push_u64(out, r.timestamp as u64);
            out.push(b'\n');
        }
        for t in &history.tags {
            let out = &mut block.tags;
            push_u64(out, user_id);
            out.push(b',');
            push_u64(out, model.movies[t.movie as usize].movie_id.into());
            out.push(b',');
            out.extend_from_slice(&tag_fields[t.tag as usize]);
            out.push(b',');
            push_u64(out, t.timestamp as u64);
            out.push(b'\n');
        }
        block.rating_rows += history.ratings.len() as u64;
        block.tag_rows += history.tags.len() as u64;
    }
    block
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Two-digit pairs `00` … `99`, for formatting numbers two digits at a time.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Appends `value` in decimal.
fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + value as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends a CSV field, quoted (quotes doubled) when it contains a comma, quote or line break.
fn push_csv_field(out: &mut Vec<u8>, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

/// Made-up titles and tags.
mod titles;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::title::clean_title;

    #[test]
    fn scale_sets_movies_and_users() {
        let full = SynthParams::default();
        assert_eq!((full.movies(), full.users()), (86_537, 330_975));
        let tenth = SynthParams {
            scale: 0.1,
            seed: 1,
            taste: 0.0,
        };
        assert_eq!((tenth.movies(), tenth.users()), (8_654, 33_098));
        let tiny = SynthParams {
            scale: 1e-9,
            seed: 1,
            taste: 0.0,
        };
        assert_eq!((tiny.movies(), tiny.users()), (10, 10));
        for bad in [0.0, -1.0, f64::NAN, 11.0] {
            let params = SynthParams {
                scale: bad,
                seed: 1,
                taste: 0.0,
            };
            assert!(params.check().is_err(), "{bad}");
        }
        for bad in [-0.5, f64::NAN, 16.5, f64::INFINITY] {
            let params = SynthParams {
                taste: bad,
                ..SynthParams::default()
            };
            let err = params.check().unwrap_err().to_string();
            assert!(err.contains("--taste must be from 0"), "{bad}: {err}");
        }
        for good in [0.0, 4.0, 16.0] {
            let params = SynthParams {
                taste: good,
                ..SynthParams::default()
            };
            assert!(params.check().is_ok(), "{good}");
        }
    }

    #[test]
    fn numbers_and_fields_are_formatted_like_the_csv_files() {
        let mut out = Vec::new();
        for v in [0, 7, 10, 99, 100, 12_345, 964_982_703, u64::MAX] {
            out.clear();
            push_u64(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), v.to_string());
        }
        out.clear();
        push_csv_field(&mut out, "Harbor, The (1987)");
        push_csv_field(&mut out, " \"masterpiece\"");
        push_csv_field(&mut out, "plain");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"Harbor, The (1987)\"\" \"\"masterpiece\"\"\"plain"
        );
    }

    #[test]
    fn movies_look_like_movielens_and_clean_well() {
        let model = SynthModel::new(100, 5_000, 3);
        let movies = model.movies();
        assert_eq!(movies.len(), 5_000);
        assert!(movies.windows(2).all(|w| w[0].movie_id < w[1].movie_id));
        let last = movies.last().unwrap().movie_id as f64;
        assert!((2.5..4.0).contains(&(last / 5_000.0)), "{last}");
        let with_year = movies.iter().filter(|m| m.year.is_some()).count();
        assert!(with_year > 4_850 && with_year < 5_000, "{with_year}");
        let no_genres = movies.iter().filter(|m| m.genres == 0).count();
        assert!((250..550).contains(&no_genres), "{no_genres}");
        let drama = movies.iter().filter(|m| m.genres & (1 << 7) != 0).count();
        assert!((1_750..2_150).contains(&drama), "{drama}");
        let mut aliases = 0;
        for m in movies {
            let clean = clean_title(&m.title);
            assert_eq!(clean.year, m.year, "{}", m.title);
            assert!(
                !clean.title.is_empty() && !clean.title.contains(", The"),
                "{}",
                m.title
            );
            aliases += usize::from(!clean.aliases.is_empty());
        }
        assert!((120..400).contains(&aliases), "{aliases}");
        assert!(movies.iter().any(|m| m.title.contains(", The")));
        assert!(movies.iter().any(|m| m.title.contains("a.k.a.")));
    }

    #[test]
    fn histories_are_deterministic_sorted_and_plausible() {
        let model = SynthModel::new(2_000, 3_000, 11);
        let again = SynthModel::new(2_000, 3_000, 11);
        let mut counts = [0u64; 10];
        let mut total = 0usize;
        let mut taggers = 0;
        for u in 0..2_000 {
            let history = model.user_history(u);
            assert_eq!(history, again.user_history(u));
            assert!(!history.ratings.is_empty());
            let keys: Vec<_> = history
                .ratings
                .iter()
                .map(|r| (r.timestamp, r.movie))
                .collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "user {u}");
            let mut movies: Vec<u32> = history.ratings.iter().map(|r| r.movie).collect();
            movies.sort_unstable();
            movies.dedup();
            assert_eq!(movies.len(), history.ratings.len(), "a movie rated twice");
            for r in &history.ratings {
                assert!((TIME_START..=TIME_END).contains(&r.timestamp));
                let half_stars = r.rating * 2.0;
                assert_eq!(half_stars.fract(), 0.0);
                counts[half_stars as usize - 1] += 1;
                if r.timestamp < HALF_STARS_FROM {
                    assert_eq!(r.rating.fract(), 0.0, "half star before 2003");
                }
            }
            total += history.ratings.len();
            taggers += usize::from(!history.tags.is_empty());
        }
        let mean = total as f64 / 2_000.0;
        assert!((80.0..125.0).contains(&mean), "{mean}");
        // 4.0 is the most common rating, as in MovieLens; every value occurs.
        let most = counts.iter().enumerate().max_by_key(|c| c.1).unwrap().0;
        assert_eq!(most, 7, "{counts:?}");
        assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
        assert!((80..250).contains(&taggers), "{taggers}");
        assert_ne!(
            model.user_history(0),
            SynthModel::new(2_000, 3_000, 12).user_history(0)
        );
    }

    #[test]
    fn taste_picks_what_users_rate_and_keeps_popularity_and_activity() {
        let plain = SynthModel::new(4_000, 2_000, 5);
        let tasteful = SynthModel::new(4_000, 2_000, 5).with_taste(4.0);
        let (mut with_taste, mut without) = (0.0f64, 0.0f64);
        let mut counts = [vec![0u32; 2_000], vec![0u32; 2_000]];
        let mut rated = 0usize;
        let mut stars = [0.0f64; 2];
        for user in 0..4_000 {
            let (liked, _, factors) = tasteful.user_movies(user);
            let factors = factors.expect("taste draws the user's factors first");
            let (any, _, none) = plain.user_movies(user);
            assert!(none.is_none());
            // The same activity: taste changes which movies, not how many.
            assert_eq!(liked.len(), any.len());
            rated += liked.len();
            for &m in &liked {
                with_taste += tasteful.affinity(m as usize, &factors) as f64;
                counts[0][m as usize] += 1;
            }
            for &m in &any {
                without += plain.affinity(m as usize, &factors) as f64;
                counts[1][m as usize] += 1;
            }
            // The user rates the movies taste picked, with the factors that picked them: what
            // they rate, they like more.
            let history = tasteful.user_history(user);
            assert_eq!(history.ratings.len(), liked.len());
            stars[0] += history.ratings.iter().map(|r| r.rating as f64).sum::<f64>();
            stars[1] += plain
                .user_history(user)
                .ratings
                .iter()
                .map(|r| r.rating as f64)
                .sum::<f64>();
        }
        let lift = (stars[0] - stars[1]) / rated as f64;
        assert!(lift > 0.1, "{lift}");
        let (with_taste, without) = (with_taste / rated as f64, without / rated as f64);
        // About a fifth of a star of affinity (its spread is 0.46) on what a user rates at taste
        // 4, none by popularity alone.
        assert!(with_taste > 0.15, "{with_taste}");
        assert!(without.abs() < 0.03, "{without}");
        // Popularity holds: the 100 most rated movies are nearly the same with and without.
        let top = |c: &[u32]| {
            let mut order: Vec<usize> = (0..c.len()).collect();
            order.sort_by_key(|&m| std::cmp::Reverse(c[m]));
            order[..100]
                .iter()
                .copied()
                .collect::<std::collections::HashSet<_>>()
        };
        let shared = top(&counts[0]).intersection(&top(&counts[1])).count();
        assert!(shared >= 80, "{shared}");
    }

    #[test]
    fn popular_movies_get_most_ratings() {
        let model = SynthModel::new(3_000, 2_000, 5);
        let (indptr, cols, values) = model.rating_matrix();
        assert_eq!(indptr.len(), 3_001);
        assert_eq!(cols.len(), values.len());
        let mut counts = vec![0u32; 2_000];
        for &c in &cols {
            counts[c as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..20].iter().sum();
        // The 1% most popular movies take a large share; many have few ratings.
        assert!(top as f64 / cols.len() as f64 > 0.08);
        assert!(counts[1_000] < counts[0] / 20);
    }

    #[test]
    fn written_release_loads_and_is_byte_identical_for_a_seed() {
        let root = tempfile::tempdir().unwrap();
        let params = SynthParams {
            scale: 0.002,
            seed: 42,
            taste: 0.0,
        };
        let a = root.path().join("a");
        let summary = write_release(&a, &params).unwrap();
        assert_eq!(summary.movies, 173);
        assert_eq!(summary.users, 662);
        let dataset = crate::data::load(&a).unwrap();
        assert_eq!(dataset.movies.len(), 173);
        assert_eq!(dataset.ratings.len() as u64, summary.ratings);
        assert_eq!(dataset.tags.len() as u64, summary.tags);
        assert_eq!(dataset.links.len(), 173);
        assert_eq!(dataset.report.skipped_rows(), 0);
        let users: std::collections::HashSet<u32> =
            dataset.ratings.iter().map(|r| r.user_id).collect();
        assert_eq!(users.len(), 662);

        // Same seed on another thread count: the same bytes.
        let b = root.path().join("b");
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| write_release(&b, &params))
            .unwrap();
        for file in ["movies.csv", "links.csv", "ratings.csv", "tags.csv"] {
            assert_eq!(
                std::fs::read(a.join(file)).unwrap(),
                std::fs::read(b.join(file)).unwrap(),
                "{file}"
            );
        }
        // The bytes every benchmark figure was measured on (popularity alone, `--taste 0`):
        // a change to the generator shows here, and must say which figures it moves.
        use sha2::Digest;
        for (file, sha256) in [
            (
                "ratings.csv",
                "8e880532bbfcad402c86713d25491d265c3eacf3f58b8d81c3136c4902ccb69f",
            ),
            (
                "tags.csv",
                "f1c763f576fd3423f72bbcf4fda47fae86150b87636f66661e1fdea62d2a49ae",
            ),
            (
                "movies.csv",
                "713e0a9a76bfdf5cfac8f1ca7454fcb843bcbb0fab27d157e12735d886aae2f0",
            ),
        ] {
            let digest = sha2::Sha256::digest(std::fs::read(a.join(file)).unwrap());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, sha256, "{file}");
        }
        // Written again over itself: replaced, nothing left beside it.
        write_release(&a, &params).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a", "b"]);
    }
}
