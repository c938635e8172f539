//! Loading a MovieLens release into typed tables ([`Dataset`]), with validation that names the
//! file and line of every problem.
//!
//! The CSV layout (ml-latest, ml-latest-small, ml-20m/25m/32m) is read here: `movies.csv` and
//! `ratings.csv` are required, `links.csv` and `tags.csv` are optional (a release without links
//! simply has no IMDb/TMDb URLs), and so is the tag genome (`genome-tags.csv` with
//! `genome-scores.csv`, in ml-latest and ml-20m/25m/32m).
//!
//! [`synth`] writes made-up releases of ml-latest's shape and size, for benchmarks.

pub mod synth;
pub mod title;

mod csv_release;

pub use csv_release::load;

use std::collections::HashMap;
use std::path::PathBuf;

/// A movie as listed in `movies.csv`, before cleaning.
#[derive(Clone, Debug, PartialEq)]
pub struct RawMovie {
    /// MovieLens id.
    pub movie_id: u32,
    /// The title as written, e.g. `Matrix, The (1999)`.
    pub title: String,
    /// Genres, `(no genres listed)` already turned into none.
    pub genres: Vec<String>,
}

/// External ids of a movie from `links.csv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// IMDb numeric id (`tt` + zero-padded digits in URLs).
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
}

/// One rating from `ratings.csv`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rating {
    /// MovieLens user id.
    pub user_id: u32,
    /// MovieLens movie id.
    pub movie_id: u32,
    /// Stars, 0.5 to 5.0.
    pub rating: f32,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// One tag from `tags.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// MovieLens user id.
    pub user_id: u32,
    /// MovieLens movie id.
    pub movie_id: u32,
    /// The tag text.
    pub tag: String,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// The tag genome: for each movie that has one, the relevance (0–1) of every genome tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TagGenome {
    /// Tag names, in `tagId` order (the columns of `relevance`).
    pub tags: Vec<String>,
    /// Movies with a genome, ascending.
    pub movie_ids: Vec<u32>,
    /// Row-major `movie_ids.len() × tags.len()` relevances.
    pub relevance: Vec<f32>,
}

impl TagGenome {
    /// The relevance row of `movie_id`, if it has a genome.
    pub fn row(&self, movie_id: u32) -> Option<&[f32]> {
        let i = self.movie_ids.binary_search(&movie_id).ok()?;
        let n = self.tags.len();
        Some(&self.relevance[i * n..(i + 1) * n])
    }
}

/// Rows that were read but not used, counted by reason, with the first few examples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// `(reason, count, first examples as "file:line: reason")`.
    pub skipped: Vec<(String, usize, Vec<String>)>,
}

impl LoadReport {
    fn skip(&mut self, reason: &str, example: String) {
        match self.skipped.iter_mut().find(|(r, _, _)| r == reason) {
            Some((_, count, examples)) => {
                *count += 1;
                if examples.len() < 3 {
                    examples.push(example);
                }
            }
            None => self.skipped.push((reason.to_string(), 1, vec![example])),
        }
    }

    /// Total number of skipped rows.
    pub fn skipped_rows(&self) -> usize {
        self.skipped.iter().map(|(_, n, _)| n).sum()
    }
}

/// A whole MovieLens release in memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Where it was read from.
    pub dir: PathBuf,
    /// Movies in file order.
    pub movies: Vec<RawMovie>,
    /// Links by movie id (empty when the release has no links file).
    pub links: HashMap<u32, Link>,
    /// Ratings whose movie is in `movies`.
    pub ratings: Vec<Rating>,
    /// Tags whose movie is in `movies`.
    pub tags: Vec<Tag>,
    /// The tag genome, when the release has one.
    pub genome: Option<TagGenome>,
    /// A hash of the files' contents: identical data gives an identical fingerprint.
    pub fingerprint: String,
    /// What was skipped while loading.
    pub report: LoadReport,
}

impl Dataset {
    /// The same release with `ratings` in place of its own (for training on a hold-out split);
    /// the original ratings are not copied.
    pub fn with_ratings(&self, ratings: Vec<Rating>) -> Dataset {
        Dataset {
            dir: self.dir.clone(),
            movies: self.movies.clone(),
            links: self.links.clone(),
            ratings,
            tags: self.tags.clone(),
            genome: self.genome.clone(),
            fingerprint: self.fingerprint.clone(),
            report: self.report.clone(),
        }
    }
}
