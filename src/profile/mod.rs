//! Profiling a MovieLens release: what is in each file and column, and the views that matter
//! for recommendations (`movierec profile`).
//!
//! [`profile`] takes a loaded [`Dataset`] (read by [`crate::data::load`]) and computes a
//! [`Profile`]:
//! - **per file and column** (as pandas-profiling or funModeling's `status`): type, values
//!   present, missing share, distinct values, minimum, maximum, mean and most frequent values.
//!   A column is read as the loader typed it: `(no genres listed)` is a missing genre list, a
//!   title without a year a missing `year (from title)`, an empty link a missing id;
//! - **MovieLens views**: the ratings histogram; ratings per user and per movie (quantiles, the
//!   share of ratings taken by the most active 1% and 10%, a log-binned histogram of the long
//!   tail); genres (movies, ratings, mean rating); movies per decade; ratings per year (with
//!   the mean rating and the users who rated for the first time); tags (most used, taggers).
//!
//! [`text::render`] prints it as tables for a terminal, [`html::render`] as one self-contained
//! HTML page with inline SVG charts (no script, nothing fetched). Rows the loader skipped are
//! listed from its report. Heavy passes over the ratings run in parallel on rayon's threads.

mod columns;
mod files;
pub mod html;
mod ratings;
mod svg;
pub mod text;

use columns::*;
use files::*;
use ratings::*;

use crate::data::title::clean_title;
use crate::data::{Dataset, Rating, Reason};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Most frequent values kept per column.
const TOP_VALUES: usize = 5;
/// Most used tags kept.
const TOP_TAGS: usize = 20;
/// Ids up to this are counted in a dense array; larger ones by sorting.
const DENSE_ID_LIMIT: u64 = 1 << 26;
/// Quantiles reported for activity distributions.
const QUANTILES: [f64; 7] = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0];

/// The profile of a whole release.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// The directory profiled.
    pub dir: PathBuf,
    /// The dataset fingerprint (as recorded by training).
    pub fingerprint: String,
    /// One entry per file present.
    pub files: Vec<FileProfile>,
    /// Rows the loader skipped: `(reason, count)`.
    pub skipped: Vec<(String, usize)>,
    /// Titles and years listed under two ids: `(what, count)`, merged and kept apart.
    pub same_title: Vec<(String, usize)>,
    /// Every film merged from several listings, by kept id.
    pub merged: Vec<MergedFilm>,
    /// Ratings by value.
    pub ratings: RatingsView,
    /// How many ratings each user gave.
    pub per_user: ActivityView,
    /// How many ratings each movie received (movies without any counted).
    pub per_movie: ActivityView,
    /// Per genre, most movies first.
    pub genres: Vec<GenreRow>,
    /// Movies per release decade, oldest first; the last row is movies without a year.
    pub decades: Vec<DecadeRow>,
    /// Ratings per calendar year (UTC), oldest first.
    pub years: Vec<YearRow>,
    /// Tags, when the release has `tags.csv`.
    pub tags: Option<TagsView>,
}

/// A film the release listed under several ids, merged into one movie when loading.
#[derive(Clone, Debug, Serialize)]
pub struct MergedFilm {
    /// The id kept (the listing with the most ratings).
    pub movie_id: u32,
    /// The title as listed.
    pub title: String,
    /// The other ids, merged into it.
    pub merged_ids: Vec<u32>,
}

/// One file's columns.
#[derive(Clone, Debug, Serialize)]
pub struct FileProfile {
    /// File name, e.g. `ratings.csv`.
    pub file: String,
    /// Rows loaded (skipped rows are not counted).
    pub rows: u64,
    /// Its columns, in file order (derived columns last).
    pub columns: Vec<ColumnProfile>,
}

/// What kind of values a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Whole numbers (ids, years).
    Integer,
    /// Real numbers (ratings, relevances).
    Decimal,
    /// Free text.
    Text,
    /// `|`-separated names (genres); counted per name.
    List,
    /// Seconds since the Unix epoch; minimum and maximum shown as dates.
    Timestamp,
}

impl ColumnKind {
    /// The name shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            ColumnKind::Integer => "integer",
            ColumnKind::Decimal => "decimal",
            ColumnKind::Text => "text",
            ColumnKind::List => "list",
            ColumnKind::Timestamp => "timestamp",
        }
    }
}

/// One column's summary.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnProfile {
    /// Column name as in the header (derived columns say where they come from).
    pub name: String,
    /// Kind of values.
    pub kind: ColumnKind,
    /// Values present (for a list column: rows with at least one name).
    pub count: u64,
    /// Values missing.
    pub missing: u64,
    /// Distinct values (for a list column: distinct names).
    pub distinct: u64,
    /// Smallest value, formatted (dates for timestamps); none for text and lists.
    pub min: Option<String>,
    /// Largest value, formatted.
    pub max: Option<String>,
    /// Mean of numeric values.
    pub mean: Option<f64>,
    /// Most frequent values with their counts, most frequent first (ties: smaller value
    /// first); empty when every value is distinct.
    pub top: Vec<(String, u64)>,
}

impl ColumnProfile {
    /// Share of rows with the value missing, 0–1.
    pub fn missing_share(&self) -> f64 {
        share(self.missing, self.count + self.missing)
    }

    /// Whether every present value occurs once.
    pub fn all_distinct(&self) -> bool {
        self.count > 0 && self.distinct == self.count && self.kind != ColumnKind::List
    }
}

/// The ratings by value.
#[derive(Clone, Debug, Serialize)]
pub struct RatingsView {
    /// Number of ratings.
    pub count: u64,
    /// Mean rating.
    pub mean: f64,
    /// `(value, count)`, ascending by value.
    pub histogram: Vec<(f32, u64)>,
}

/// How ratings spread over users or movies.
#[derive(Clone, Debug, Serialize)]
pub struct ActivityView {
    /// Users (who rated) or movies (in `movies.csv`).
    pub entities: u64,
    /// Of them, with no rating (movies only).
    pub without_ratings: u64,
    /// Mean ratings per entity.
    pub mean: f64,
    /// `(quantile, ratings)` for 10%, 25%, 50%, 75%, 90%, 99%, 100% (the maximum).
    pub quantiles: Vec<(f64, u64)>,
    /// The fewest ratings of an entity.
    pub min: u64,
    /// Share of all ratings given to (or by) the most active 1% of entities.
    pub top_1_percent_share: f64,
    /// Same for the most active 10%.
    pub top_10_percent_share: f64,
    /// Log-binned histogram: `(lowest, highest, entities)` for 0, 1, 2–3, 4–7, 8–15, …
    pub bins: Vec<(u64, u64, u64)>,
}

impl ActivityView {
    /// The histogram without the empty bins below the least active entity (MovieLens users
    /// have at least 20 ratings, so bins 1 to 8–15 would be empty).
    pub fn shown_bins(&self) -> &[(u64, u64, u64)] {
        let first = self.bins.iter().position(|b| b.2 > 0).unwrap_or(0);
        &self.bins[first..]
    }
}

/// One genre.
#[derive(Clone, Debug, Serialize)]
pub struct GenreRow {
    /// Genre name.
    pub genre: String,
    /// Movies with it.
    pub movies: u64,
    /// Ratings of those movies.
    pub ratings: u64,
    /// Their mean rating (0 without ratings).
    pub mean_rating: f64,
}

/// Movies of one release decade.
#[derive(Clone, Debug, Serialize)]
pub struct DecadeRow {
    /// First year of the decade (1990 for the 1990s); none for movies without a year.
    pub decade: Option<u16>,
    /// Movies.
    pub movies: u64,
}

/// Ratings of one calendar year.
#[derive(Clone, Debug, Serialize)]
pub struct YearRow {
    /// The year (UTC).
    pub year: i32,
    /// Ratings given.
    pub ratings: u64,
    /// Their mean.
    pub mean_rating: f64,
    /// Users whose first rating falls in this year.
    pub new_users: u64,
}

/// The tags.
#[derive(Clone, Debug, Serialize)]
pub struct TagsView {
    /// Tag rows.
    pub count: u64,
    /// Distinct tags, compared without case and surrounding spaces.
    pub distinct: u64,
    /// Users who tagged.
    pub users: u64,
    /// Movies tagged.
    pub movies: u64,
    /// Most used tags (lower case), most used first.
    pub top: Vec<(String, u64)>,
}

/// Profiles `dataset` (see the module docs).
pub fn profile(dataset: &Dataset) -> Profile {
    let timed =
        |name: &str, stage: Instant| tracing::info!("profile: {name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let movies = MovieTable::new(dataset);
    timed("movies", stage);
    let ratings = &dataset.ratings;

    let stage = Instant::now();
    let mut pass = RatingsPass::run(ratings, &movies);
    timed("ratings pass", stage);
    let stage = Instant::now();
    let user_counts = pass.user_counts(ratings);
    let movie_counts = pass.movie_counts(ratings, &movies);
    let timestamps = pass.sorted_timestamps();
    timed("timestamps sorted", stage);
    let stage = Instant::now();

    let mut files = vec![movies_file(dataset, &movies)];
    if !dataset.links.is_empty() || dataset.dir.join("links.csv").is_file() {
        files.push(links_file(dataset));
    }
    files.push(FileProfile {
        file: "ratings.csv".into(),
        rows: ratings.len() as u64,
        columns: vec![
            id_column("userId", &user_counts, ratings.len() as u64),
            id_column("movieId", &movie_counts, ratings.len() as u64),
            pass.rating_column(),
            sorted_column("timestamp", ColumnKind::Timestamp, &timestamps, 0),
        ],
    });
    drop(timestamps);
    let tags = (!dataset.tags.is_empty() || dataset.dir.join("tags.csv").is_file()).then(|| {
        files.push(tags_file(dataset));
        tags_view(dataset)
    });
    if let Some(genome) = &dataset.genome {
        files.push(genome_file(genome));
    }

    timed("files", stage);
    let stage = Instant::now();
    let user_activity: Vec<u64> = user_counts.counts.iter().map(|&c| u64::from(c)).collect();
    let mut movie_activity: Vec<u64> = movie_counts.counts.iter().map(|&c| u64::from(c)).collect();
    let without_ratings = (movies.ids.len() as u64).saturating_sub(movie_activity.len() as u64);
    movie_activity.extend(std::iter::repeat_n(0, without_ratings as usize));

    let years = pass.year_rows(ratings);
    timed("views", stage);
    Profile {
        dir: dataset.dir.clone(),
        fingerprint: dataset.fingerprint.clone(),
        files,
        skipped: issues(dataset, false),
        same_title: issues(dataset, true),
        merged: dataset
            .movies
            .iter()
            .filter(|m| !m.merged_ids.is_empty())
            .map(|m| MergedFilm {
                movie_id: m.movie_id,
                title: m.title.clone(),
                merged_ids: m.merged_ids.clone(),
            })
            .collect(),
        ratings: pass.ratings_view(),
        per_user: activity(user_activity, 0),
        per_movie: activity(movie_activity, without_ratings),
        genres: pass.genre_rows(&movies),
        decades: decades(&movies),
        years,
        tags,
    }
}

/// The loader's findings as `(file: reason, count)`: titles listed under two ids (`same_title`),
/// or the others.
fn issues(dataset: &Dataset, same_title: bool) -> Vec<(String, usize)> {
    dataset
        .report
        .issues
        .iter()
        .filter(|issue| {
            matches!(
                issue.reason,
                Reason::MergedMovie | Reason::SameTitleKeptApart
            ) == same_title
        })
        .map(|issue| {
            let what = format!("{}: {}", issue.file, issue.reason.describe());
            (what, issue.count as usize)
        })
        .collect()
}

/// `part / whole`, 0 when `whole` is 0.
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The movies as the profile needs them: ids, years, genre masks, and a fast id lookup.
struct MovieTable {
    ids: Vec<u32>,
    years: Vec<Option<u16>>,
    /// Genre names, most frequent first after counting (bit `g` of a mask is `genres[g]`).
    genres: Vec<String>,
    masks: Vec<u64>,
    index: IdIndex,
}

impl MovieTable {
    fn new(dataset: &Dataset) -> MovieTable {
        let ids: Vec<u32> = dataset.movies.iter().map(|m| m.movie_id).collect();
        let years = dataset
            .movies
            .par_iter()
            .map(|m| clean_title(&m.title).year)
            .collect();
        let mut genres: Vec<String> = Vec::new();
        let masks = dataset
            .movies
            .iter()
            .map(|m| {
                m.genres.iter().fold(0u64, |mask, genre| {
                    let g = genres.iter().position(|x| x == genre).unwrap_or_else(|| {
                        genres.push(genre.clone());
                        genres.len() - 1
                    });
                    // MovieLens has 19 genres; any beyond 64 are not broken down.
                    mask | 1u64.checked_shl(g as u32).unwrap_or(0)
                })
            })
            .collect();
        let index = IdIndex::new(&ids);
        MovieTable {
            ids,
            years,
            genres,
            masks,
            index,
        }
    }
}

/// `2023-07-20` (UTC); the number itself if out of the calendar's range.
pub fn format_timestamp(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// `2023-07-20 14:03:09` (UTC); the number itself if out of the calendar's range.
fn format_time_of_day(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| {
            let (h, m, s) = t.to_hms();
            format!("{} {h:02}:{m:02}:{s:02}", t.date())
        })
        .unwrap_or_else(|_| seconds.to_string())
}

/// A decimal without trailing noise: `4.5`, `0.0275`.
fn format_decimal(v: f32) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Profile {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        profile(&crate::data::load(&dir).unwrap())
    }

    fn column<'p>(p: &'p Profile, file: &str, name: &str) -> &'p ColumnProfile {
        p.files
            .iter()
            .find(|f| f.file == file)
            .and_then(|f| f.columns.iter().find(|c| c.name == name))
            .unwrap_or_else(|| panic!("{file} {name}"))
    }

    #[test]
    fn columns_of_the_tiny_release() {
        let p = tiny();
        let files: Vec<&str> = p.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            files,
            ["movies.csv", "links.csv", "ratings.csv", "tags.csv"]
        );

        let genres = column(&p, "movies.csv", "genres");
        assert_eq!((genres.count, genres.missing), (3, 1));
        let year = column(&p, "movies.csv", "year (from title)");
        assert_eq!((year.count, year.missing), (3, 1));
        assert_eq!(year.min.as_deref(), Some("1995"));

        let user = column(&p, "ratings.csv", "userId");
        assert_eq!(user.kind, ColumnKind::Integer);
        assert_eq!(user.missing_share(), 0.0);
        let rating = column(&p, "ratings.csv", "rating");
        assert_eq!(rating.kind, ColumnKind::Decimal);
        assert!(rating.mean.unwrap() > 0.5);
        let time = column(&p, "ratings.csv", "timestamp");
        assert!(time.min.as_deref().unwrap().starts_with("20"), "{time:?}");

        let tmdb = column(&p, "links.csv", "tmdbId");
        assert!(tmdb.missing > 0, "{tmdb:?}");
        // The tag of an unknown movie was skipped and is reported.
        assert!(p
            .skipped
            .iter()
            .any(|(reason, n)| reason.contains("tag") && *n == 1));
    }

    #[test]
    fn counting_helpers() {
        let counts = count_ids(6, |i| [5, 3, 5, 5, 9, 3][i]);
        assert_eq!(counts.ids, [3, 5, 9]);
        assert_eq!(counts.counts, [2, 3, 1]);
        let column = id_column("userId", &counts, 6);
        assert_eq!(column.top[0], ("5".to_string(), 3));
        assert_eq!(column.top[1], ("3".to_string(), 2));
        assert_eq!(column.distinct, 3);
        assert_eq!(column.mean, Some(5.0));

        let top = top_by_count([("b", 2), ("a", 2), ("c", 5), ("d", 1)].into_iter(), 3);
        assert_eq!(top, [("c", 5), ("a", 2), ("b", 2)]);

        let view = activity(vec![1, 1, 2, 3, 100, 0], 1);
        assert_eq!(view.entities, 6);
        assert_eq!(view.without_ratings, 1);
        assert_eq!(view.quantiles.last().unwrap().1, 100);
        assert_eq!(view.bins[0], (0, 0, 1));
        assert_eq!(view.bins[1], (1, 1, 2));
        assert_eq!(view.bins[2], (2, 3, 2));
        assert_eq!(view.bins.last().unwrap(), &(64, 127, 1));
        assert!((view.top_1_percent_share - 100.0 / 107.0).abs() < 1e-9);

        let mut keys: Vec<u32> = (0..50_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) ^ (i >> 3))
            .collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, expected);
        assert_eq!(
            sorted_timestamps([5, -3, 1 << 40, 2].into_iter(), 4),
            [-3, 2, 5, 1 << 40]
        );
        assert_eq!(sorted_timestamps([7, 1, 4].into_iter(), 3), [1, 4, 7]);

        let starts = year_starts();
        for (i, &start) in starts[..starts.len() - 1].iter().enumerate() {
            assert_eq!(year_index(&starts, start), Some(i));
            assert_eq!(year_index(&starts, start - 1), i.checked_sub(1));
        }
        assert_eq!(year_index(&starts, starts[starts.len() - 1]), None);
        assert_eq!(
            year_index(&starts, 964_982_703).map(|y| FIRST_YEAR + y as i32),
            Some(2000)
        );
        assert_eq!(
            year_index(&starts, 946_684_800).map(|y| FIRST_YEAR + y as i32),
            Some(2000)
        );
        assert_eq!(
            year_index(&starts, 946_684_799).map(|y| FIRST_YEAR + y as i32),
            Some(1999)
        );
    }

    #[test]
    fn views_of_a_synthetic_release() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("synth");
        let params = crate::devtools::synth::SynthParams {
            scale: 0.01,
            seed: 5,
            taste: 0.0,
        };
        crate::devtools::synth::write_release(&dir, &params).unwrap();
        let dataset = crate::data::load(&dir).unwrap();
        let p = profile(&dataset);
        assert_eq!(p.ratings.count, dataset.ratings.len() as u64);
        let histogram_total: u64 = p.ratings.histogram.iter().map(|h| h.1).sum();
        assert_eq!(histogram_total, p.ratings.count);
        assert_eq!(p.per_user.entities, params.users() as u64);
        assert_eq!(p.per_movie.entities, params.movies() as u64);
        let binned: u64 = p.per_movie.bins.iter().map(|b| b.2).sum();
        assert_eq!(binned, p.per_movie.entities);
        assert!(p.per_movie.top_10_percent_share > 0.3, "{:?}", p.per_movie);
        assert!(
            p.genres.len() <= 19 && p.genres[0].genre == "Drama",
            "{:?}",
            p.genres
        );
        let per_year: u64 = p.years.iter().map(|y| y.ratings).sum();
        assert_eq!(per_year, p.ratings.count);
        let new_users: u64 = p.years.iter().map(|y| y.new_users).sum();
        assert_eq!(new_users, p.per_user.entities);
        let decades: u64 = p.decades.iter().map(|d| d.movies).sum();
        assert_eq!(decades, params.movies() as u64);
        let tags = p.tags.as_ref().unwrap();
        assert_eq!(tags.count, dataset.tags.len() as u64);
        assert!(tags.top.len() > 5);
    }
}
